"""The action-safety regularizers' effect, measured: policies trained with and without them, scored by the success
criterion plus mean |delta action| and the share of motor-command power above 10 Hz (issue "Training": target at
least 50% lower with the regularizers, at equal success rate).

    python bench/regularizers.py --with runs/ppo_caps_s0/policy.onnx --without runs/ppo_nocaps_s0/policy.onnx
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from robot_ac.sim.quadrotor.env import QuadrotorEnv  # noqa: E402
from robot_ac.training.evaluate import evaluate_policy  # noqa: E402
from robot_ac.training.policy_source import load_policy  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--with", dest="with_reg", required=True, help="bundle/run trained with the regularizers")
    parser.add_argument("--without", required=True, help="bundle/run trained without them")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "regularizers.json")
    args = parser.parse_args()

    results = {}
    for label, path in (("without", args.without), ("with", args.with_reg)):
        policy, task = load_policy(Path(path))
        env = QuadrotorEnv(task, num_envs=args.episodes, seed=args.seed, curriculum=False)
        results[label] = evaluate_policy(policy, episodes=args.episodes, seed=args.seed, env=env).to_dict()
        results[label]["policy"] = str(path)
    keys = ("success_rate", "survival_rate", "settle_error_median_m", "mean_abs_delta_action",
            "high_frequency_power_share", "motor_saturation_fraction")
    print(f"{'metric':<28} {'without':>10} {'with':>10} {'with/without':>13}")
    ratios = {}
    for key in keys:
        a, b = results["without"][key], results["with"][key]
        ratios[key] = b / a if a else float("nan")
        print(f"{key:<28} {a:>10.4f} {b:>10.4f} {ratios[key]:>13.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "regularizers", "results": results, "ratios": ratios}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
