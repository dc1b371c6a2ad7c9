"""The current actor against exponential moving averages of its weights, scored on the success criterion along one
training run (the evidence for the agent file's ``eval_actor_average``).

Trains one PPO seed with the agent file (evaluations as usual), keeps the actor after every iteration between
``--from-steps`` and ``--to-steps``, then scores every ``--every``-th kept actor and the averages at that point on
the training run's own evaluation episodes (1000, seed 10000 + seed). Prints a table and writes JSON.

    python bench/actor_average.py --seed 1 --decays 0.9 0.95
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from robot_ac.sim.quadrotor.env import QuadrotorEnv  # noqa: E402
from robot_ac.training.actor_average import ActorAverage  # noqa: E402
from robot_ac.training.config import load_train_config  # noqa: E402
from robot_ac.training.evaluate import evaluate_policy  # noqa: E402
from robot_ac.training.runner import Trainer  # noqa: E402


def train_keeping_actors(seed: int, first: float, last: float, out: Path) -> tuple[Trainer, list]:
    """Train until ``last`` env steps; the actor's state after each iteration from ``first`` on."""
    cfg = load_train_config("quadrotor-hover", "ppo", seed=seed, until_success=False, max_seconds=3600,
                            max_env_steps=int(last), eval_actor_average=0.0)
    trainer = Trainer(cfg, out, show_progress=True)
    kept = []
    iterate = trainer.adapter.iterate

    def iterate_and_keep(idle=None):
        losses = iterate(idle)
        if trainer.env.total_env_steps >= first:
            kept.append((trainer.env.total_env_steps, copy.deepcopy(trainer.adapter.actor.state_dict())))
        return losses

    trainer.adapter.iterate = iterate_and_keep
    trainer.train()
    return trainer, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--decays", type=float, nargs="+", default=[0.9, 0.95])
    parser.add_argument("--from-steps", type=float, default=1.5e6)
    parser.add_argument("--to-steps", type=float, default=3.0e6)
    parser.add_argument("--every", type=int, default=4, help="score every n-th iteration (16,384 steps each)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(__file__).parent / "results" / f"actor_average_s{args.seed}.json"

    with tempfile.TemporaryDirectory() as run_dir:
        t0 = time.perf_counter()
        trainer, kept = train_keeping_actors(args.seed, args.from_steps, args.to_steps, Path(run_dir))
        train_s = time.perf_counter() - t0
        actor = trainer.adapter.actor.eval()
        env = QuadrotorEnv(num_envs=1000, seed=10_000 + args.seed, curriculum=False, compile=True)
        averages = {d: ActorAverage(actor, d) for d in args.decays}

        def score(state: dict) -> dict:
            actor.load_state_dict(state)
            r = evaluate_policy(actor.act, episodes=1000, env=env, seed=10_000 + args.seed)
            return {"survival": r.survival_rate, "success": r.success_rate}

        rows = []
        names = ["current"] + [f"average {d:g}" for d in args.decays]
        print(f"{'env steps':>10} " + " ".join(f"{n + ' surv/succ':>22}" for n in names))
        for i, (steps, state) in enumerate(kept):
            for average in averages.values():
                if i == 0:
                    average.load_state_dict(state)
                else:
                    actor.load_state_dict(state)
                    average.update(actor)
            if i % args.every != args.every - 1:
                continue
            row = {"env_steps": steps, "current": score(state)}
            for d, average in averages.items():
                row[f"average {d:g}"] = score(copy.deepcopy(average.state_dict()))
            rows.append(row)
            print(f"{steps:>10,} " + " ".join(f"{row[n]['survival']:>13.1%} /{row[n]['success']:>6.1%}"
                                               for n in names), flush=True)

    summary = {}
    for n in names:
        successes = [r[n]["success"] for r in rows]
        passing = [r["env_steps"] for r in rows if r[n]["success"] >= 0.95]
        summary[n] = {"best_success": max(successes), "first_step_at_95": passing[0] if passing else None,
                      "scored_at_95_or_more": f"{len(passing)}/{len(rows)}"}
        print(f"{n:>14}: best {max(successes):.1%}, first >= 95% at {passing[0] if passing else '-'}, "
              f"{len(passing)}/{len(rows)} scored >= 95%")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "actor_average", "seed": args.seed, "decays": args.decays,
                               "training_seconds": train_s, "rows": rows, "summary": summary,
                               "command": f"python bench/actor_average.py --seed {args.seed} --decays "
                                          + " ".join(f"{d:g}" for d in args.decays)}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
