"""Cost of one PPO rollout step on the trainer's core: the compiled simulator step, ``PPO.act`` and its parts.

Why: the trainer collects rollouts, evaluates and helps the learner on one core, so every millisecond of a rollout
step is taken from the others. One torch thread, as the agent file trains; the agent file's environment count.
Each cell is the median over repeats of the mean time of a block of calls, in one process. The last rows compare the
normalizer's batch variance (two passes) with ``Tensor.var`` (torch's CPU Welford loop) on the same data.

    python bench/rollout_step.py            # prints a table, writes bench/results/rollout_step.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from bench_timing import block_means_ms  # noqa: E402  (beside this script)

from robot_ac.algos.ppo import PPO  # noqa: E402
from robot_ac.sim.quadrotor.env import QuadrotorEnv  # noqa: E402
from robot_ac.training.config import load_train_config  # noqa: E402


def median_ms(fn: Callable[[], object], calls: int, repeats: int) -> tuple[float, float, float]:
    """(median, min, max) over ``repeats`` of the mean milliseconds per call of a block of ``calls``."""
    means = block_means_ms(fn, calls, repeats, warmup=max(3, calls // 10))
    return statistics.median(means), min(means), max(means)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "rollout_step.json")
    args = parser.parse_args()

    torch.set_num_threads(1)
    cfg = load_train_config("quadrotor-hover", "ppo")
    env = QuadrotorEnv(cfg.task, num_envs=cfg.ppo.num_envs, seed=0, compile=cfg.compile_env)
    obs = env.reset(seed=0)
    algo = PPO(cfg.ppo, env.observation_size("policy"), env.observation_size("critic"), env.action_size,
               env.hover_action, env.device)
    action = torch.zeros(env.num_envs, env.action_size)

    def act() -> None:
        algo.step = 0  # stays inside the rollout storage
        algo.act(obs)

    policy, critic = obs["policy"], obs["critic"]
    with torch.no_grad():
        rows = {
            "simulator step (compiled)" if cfg.compile_env else "simulator step": lambda: env.step(action),
            "PPO.act (whole)": act,
            "  normalizer updates (both groups)": lambda: (algo.actor.normalizer.update(policy),
                                                           algo.critic.normalizer.update(critic)),
            "  actor distribution": lambda: algo.policy.distribution(policy),
            "batch variance, policy group: two passes": lambda: (policy - policy.mean(0)).square().mean(0),
            "batch variance, policy group: Tensor.var": lambda: policy.var(0, unbiased=False),
        }
        results = []
        print(f"{'step part':>45} {'ms (median)':>12} {'min':>8} {'max':>8}   N = {env.num_envs}, 1 thread")
        for name, fn in rows.items():
            median, low, high = median_ms(fn, args.calls, args.repeats)
            results.append({"part": name.strip(), "ms": median, "min_ms": low, "max_ms": high})
            print(f"{name:>45} {median:>12.3f} {low:>8.3f} {high:>8.3f}")
    ratio = results[-1]["ms"] / results[-2]["ms"]
    print(f"Tensor.var / two passes: {ratio:.1f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "rollout_step", "num_envs": env.num_envs, "threads": 1,
                                    "compile_env": cfg.compile_env, "cpu_count": os.cpu_count(),
                                    "torch": torch.__version__, "rows": results,
                                    "var_over_two_pass_ratio": ratio}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
