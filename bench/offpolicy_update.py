"""Cost of one off-policy update (TD3 and SAC), eager against compiled (``offpolicy.compile_update``).

One torch thread, as the agent files train. The replay buffer holds transitions of the hover task (random actions);
each cell is the median over repeats of the mean time of a block of updates, in one process.

    python bench/offpolicy_update.py            # prints a table, writes bench/results/offpolicy_update.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from bench_timing import block_means_ms  # noqa: E402  (beside this script)

from robot_ac.algos.offpolicy import OffPolicy  # noqa: E402
from robot_ac.sim.quadrotor.env import REWARD_TERMS, QuadrotorEnv  # noqa: E402
from robot_ac.training.config import load_train_config  # noqa: E402


def filled_learner(variant: str, compiled: bool, env: QuadrotorEnv, transitions: int) -> OffPolicy:
    cfg = load_train_config("quadrotor-hover", variant).offpolicy
    cfg = dataclasses.replace(cfg, compile_update=compiled)
    policy_noise = torch.cat([torch.full((f.size,), f.noise_std) for f in env.contract.groups["policy"].fields])
    algo = OffPolicy(cfg, env.observation_size("policy"), env.observation_size("critic"), env.action_size,
                     env.hover_action, env.device, reward_fn=env.compute_reward, reward_terms=len(REWARD_TERMS),
                     policy_noise_std=policy_noise, seed=0)
    obs = env.reset(seed=0)
    generator = torch.Generator().manual_seed(0)
    while algo.buffer.size < transitions:
        action = torch.rand((env.num_envs, env.action_size), generator=generator) * 2 - 1
        result = env.step(action)
        algo.actor.normalizer.update(obs["policy"])
        algo.critics[0].normalizer.update(obs["critic"])
        algo.record(obs, action, result.reward, result.info["reward_terms"], result.terminated, result.truncated,
                    result.next_observations())
        obs = result.observations
    return algo


def median_ms(update, block: int, repeats: int) -> float:
    return statistics.median(block_means_ms(update, block, repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["td3", "sac"], choices=["td3", "sac"])
    parser.add_argument("--block", type=int, default=200, help="updates per timed block")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "offpolicy_update.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = QuadrotorEnv("quadrotor-hover", num_envs=1024, seed=0)
    rows = []
    print(f"{'variant':<8} {'mode':<9} {'critic ms':>10} {'critic+actor ms':>16} {'first s':>8}")
    for variant in args.variants:
        for compiled in (False, True):
            algo = filled_learner(variant, compiled, env, 50_000)
            start = time.perf_counter()
            algo.update(env.reward_weights, update_actor=True)
            first = time.perf_counter() - start
            critic = median_ms(lambda a=algo: a.update(env.reward_weights, update_actor=False), args.block,
                               args.repeats)
            both = median_ms(lambda a=algo: a.update(env.reward_weights, update_actor=True), args.block, args.repeats)
            mode = "compiled" if compiled else "eager"
            rows.append({"variant": variant, "mode": mode, "critic_update_ms": critic,
                         "critic_and_actor_update_ms": both, "first_update_s": first})
            print(f"{variant:<8} {mode:<9} {critic:>10.3f} {both:>16.3f} {first:>8.1f}")
    ratios = {}
    for variant in args.variants:
        eager, compiled = (next(r for r in rows if r["variant"] == variant and r["mode"] == m)
                           for m in ("eager", "compiled"))
        ratios[variant] = {k: eager[k] / compiled[k] for k in ("critic_update_ms", "critic_and_actor_update_ms")}
        print(f"{variant}: eager/compiled {ratios[variant]['critic_update_ms']:.2f}x (critic), "
              f"{ratios[variant]['critic_and_actor_update_ms']:.2f}x (critic + actor)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "offpolicy_update", "torch": torch.__version__, "threads": 1,
                                    "block": args.block, "repeats": args.repeats, "rows": rows, "ratios": ratios},
                                   indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
