"""How a policy bundle does on single robots instead of the randomized population: the nominal robot, and each
randomized parameter pinned at either end of its range with the others nominal.

Why: the success criterion averages over the randomization ranges, and the robot that flies is one point in them,
which we do not know yet. A corner of the ranges that the population average hides is a risk for the real robot.
Each row runs the criterion's 1000 start states (seed 12345) with observation noise on, randomization off
(every parameter fixed, no disturbance) except the pinned one. The last row pins every parameter at its worse end.
Prints a table and writes JSON.

    python bench/parameter_sensitivity.py [--policy policies/crazyflie_hover/policy.onnx]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from robot_ac.config import Range  # noqa: E402
from robot_ac.policy import load_bundle  # noqa: E402
from robot_ac.sim.quadrotor.env import QuadrotorEnv  # noqa: E402
from robot_ac.sim.quadrotor.params import QuadrotorParams, QuadrotorRandomization, load_quadrotor  # noqa: E402
from robot_ac.training.evaluate import evaluate_policy  # noqa: E402

PINNED = ("mass", "inertia_xy", "inertia_z", "thrust_coefficient", "yaw_torque_coefficient", "motor_time_constant",
          "actuation_delay_steps")


def score(policy, robot: QuadrotorParams, ranges: QuadrotorRandomization, task: str) -> dict:
    env = QuadrotorEnv(task, num_envs=1000, seed=12345, curriculum=False, domain_randomization=True,
                       robot=dataclasses.replace(robot, randomization=ranges))
    result = evaluate_policy(policy, task, episodes=1000, env=env, seed=12345)
    return {"survival": result.survival_rate, "success": result.success_rate,
            "settle_error_median_m": result.settle_error_median_m}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", type=Path, default=Path("policies/crazyflie_hover/policy.onnx"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "parameter_sensitivity.json")
    args = parser.parse_args()

    bundle = load_bundle(args.policy)
    task = bundle.contract["task"]
    robot = load_quadrotor(bundle.contract["robot"])
    if robot.randomization is None:
        raise SystemExit(f"robot {robot.name!r} has no randomization ranges to pin")
    policy = bundle.torch_policy()
    nominal = robot.pinned_randomization()
    rows = [{"robot": "randomized (the criterion)", "value": "-", **score(policy, robot, robot.randomization, task)},
            {"robot": "nominal", "value": "-", **score(policy, robot, nominal, task)}]
    worse_end = {}
    for name in PINNED:
        span: Range = getattr(robot.randomization, name)
        ends = {}
        for label, value in (("low", span.low), ("high", span.high)):
            ends[label] = score(policy, robot, robot.pinned_randomization(**{name: value}), task)
            rows.append({"robot": f"{name} {label}", "value": value, **ends[label]})
            print(f"{rows[-1]['robot']:>30} {value:>12.4g}  survival {ends[label]['survival']:6.1%}  "
                  f"success {ends[label]['success']:6.1%}", flush=True)
        worse = min(ends, key=lambda e: ends[e]["success"])
        worse_end[name] = getattr(span, worse)
    corner = robot.pinned_randomization(**worse_end)
    rows.append({"robot": "every parameter at its worse end", "value": worse_end,
                 **score(policy, robot, corner, task)})

    print(f"\n{'robot':>34} {'value':>12} {'survival':>9} {'success':>8} {'settle cm':>9}")
    for r in rows:
        value = r["value"] if isinstance(r["value"], str) else (f"{r['value']:.4g}" if not isinstance(r["value"], dict)
                                                                else "see JSON")
        print(f"{r['robot']:>34} {value:>12} {r['survival']:>9.1%} {r['success']:>8.1%} "
              f"{r['settle_error_median_m'] * 100:>9.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "parameter_sensitivity", "policy": str(args.policy),
                                    "episodes": 1000, "seed": 12345, "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
