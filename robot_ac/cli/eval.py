"""``robot-ac eval CHECKPOINT|BUNDLE``: score a policy against the success criterion."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a policy bundle (.onnx) or a run's checkpoint against the success criterion",
        description="Runs N episodes of 5 s from randomized start states with domain randomization and observation "
                    "noise, and reports survival rate, settle error (mean position error over the last second), "
                    "success rate (survived and settled within 5 cm), mean |delta action|, motor saturation "
                    "fraction and the share of motor-command power above 10 Hz. Writes JSON next to the policy.")
    p.add_argument("policy", help="policy.onnx bundle, a run folder, or its checkpoint.pt")
    p.add_argument("--episodes", type=int, default=1000, help="episodes (default 1000)")
    p.add_argument("--seed", type=int, default=12345, help="seed of the evaluation episodes")
    p.add_argument("--task", default=None, help="task to evaluate on (default: the policy's own)")
    p.add_argument("--robot", default=None, help="robot file to fly (sim/robots/<name>.yaml or a path)")
    p.add_argument("--json", default=None, help="output JSON (default <policy>.eval.json)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robot_ac.config import ConfigError
    from robot_ac.policy.bundle import BundleError
    from robot_ac.training.evaluate import evaluate_policy
    from robot_ac.training.policy_source import load_policy

    try:
        policy, task = load_policy(Path(args.policy))
        from robot_ac.sim.quadrotor.env import QuadrotorEnv

        env = QuadrotorEnv(args.task or task, num_envs=args.episodes, seed=args.seed, curriculum=False,
                           robot=args.robot)
        result = evaluate_policy(policy, episodes=args.episodes, seed=args.seed, env=env)
    except (BundleError, ConfigError, FileNotFoundError) as err:
        print(f"robot-ac eval: error: {err}", file=sys.stderr)
        return 2
    out = Path(args.json) if args.json else Path(args.policy).with_suffix(".eval.json")
    if Path(args.policy).is_dir():
        out = Path(args.json) if args.json else Path(args.policy) / "eval.json"
    rows = result.to_dict()
    width = max(len(k) for k in rows)
    for key, value in rows.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    # Strict JSON: a metric with no surviving episode to measure (NaN/inf) is written as null.
    strict = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in rows.items()}
    out.write_text(json.dumps(strict | {"policy": str(args.policy), "seed": args.seed}, indent=2))
    print(f"wrote {out}")
    return 0 if result.succeeded else 1
