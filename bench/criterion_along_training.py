"""The success criterion along a training run: the first environment step at which the actor meets it.

Why: PPO training is deterministic per seed in environment steps (the learner's schedule is fixed; only wall-clock
varies), but ``--until-success`` judges the actor only when a background evaluation happens to end, so the step at
which a run stops moves with the machine's speed by 100-300k steps. This benchmark removes that: it trains each seed
with the agent file (or ``--config``), saves the actor after every iteration from ``--from-steps`` on, then scores
every saved actor with the criterion's own evaluation (1000 episodes, the training run's evaluation seed). The first
step that meets it is a property of the configuration and the seed alone, which is what comparing two
configurations needs. Prints a table and writes JSON.

    python bench/criterion_along_training.py --seeds 0 1 2 [--config AGENT.yaml] [--from-steps 1500000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from robot_ac.training.config import TrainConfig, load_train_config  # noqa: E402
from robot_ac.training.runner import Trainer  # noqa: E402

SNAPSHOTS = "snapshots"


def train_with_snapshots(cfg: TrainConfig, out: Path, from_steps: int, every: int) -> dict:
    """Train until the run's own criterion (or its budget) and save the actor every ``every`` iterations."""
    trainer = Trainer(cfg, out, show_progress=False)
    folder = out / SNAPSHOTS
    folder.mkdir(parents=True, exist_ok=True)
    iterate, count = trainer.adapter.iterate, 0

    def iterate_and_save(idle=None):
        nonlocal count
        stats = iterate(idle)
        steps = trainer.env.total_env_steps
        if steps >= from_steps and count % every == 0:
            torch.save(trainer.evaluated_actor.state_dict(), folder / f"{steps:09d}.pt")
        count += 1
        return stats

    trainer.adapter.iterate = iterate_and_save
    result = trainer.train()
    return {"stopped_at_env_steps": result.env_steps, "training_s": result.seconds, "succeeded": result.succeeded}


def score_snapshots(cfg: TrainConfig, out: Path, first_only: bool) -> list[dict]:
    """The criterion for every saved actor, in step order, through the trainer's own ``evaluate``."""
    reader = Trainer(cfg, out / "scoring", show_progress=False, read_only=True)
    reader.adapter.close()
    rows = []
    for path in tqdm(sorted((out / SNAPSHOTS).glob("*.pt")), desc=f"seed {cfg.seed}: scoring", unit="actor"):
        reader.evaluated_actor.load_state_dict(torch.load(path, weights_only=True))
        result = reader.evaluate()
        rows.append({"env_steps": int(path.stem), **result.to_dict()})
        if first_only and result.succeeded:
            break
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", type=Path, help="PPO agent YAML instead of the agent file")
    parser.add_argument("--from-steps", type=int, default=1_500_000, help="save actors from this step count on")
    parser.add_argument("--every", type=int, default=1, help="save every this many iterations")
    parser.add_argument("--max-seconds", type=float, default=150.0, help="training budget per seed")
    parser.add_argument("--all", action="store_true", help="score every saved actor, not only up to the first pass")
    parser.add_argument("--out-root", type=Path, default=Path("runs/criterion_along_training"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "criterion_along_training.json")
    args = parser.parse_args()

    rows = []
    print(f"{'seed':>4} {'first pass':>11} {'stopped at':>11} {'train s':>8}", flush=True)
    for seed in args.seeds:
        cfg = load_train_config("quadrotor-hover", "ppo", args.config, seed=seed, until_success=True,
                                max_seconds=args.max_seconds)
        out = args.out_root / f"seed{seed}"
        t0 = time.perf_counter()
        run = train_with_snapshots(cfg, out, args.from_steps, args.every)
        scored = score_snapshots(cfg, out, first_only=not args.all)
        first = next((r["env_steps"] for r in scored if r["succeeded"]), None)
        rows.append({"seed": seed, "first_passing_env_steps": first, **run, "scored": scored,
                     "wall_s": time.perf_counter() - t0})
        print(f"{seed:>4} {first or 0:>11,} {run['stopped_at_env_steps']:>11,} {run['training_s']:>8.1f}", flush=True)
    firsts = [r["first_passing_env_steps"] for r in rows if r["first_passing_env_steps"] is not None]
    summary = {"seeds": len(rows), "passed": len(firsts),
               "median_first_passing_env_steps": statistics.median(firsts) if firsts else None,
               "median_stopped_at_env_steps": statistics.median(r["stopped_at_env_steps"] for r in rows)}
    print(json.dumps(summary))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "criterion_along_training", "command": " ".join(sys.argv),
                                    "config": str(args.config or "agent file"), "summary": summary, "rows": rows},
                                   indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
