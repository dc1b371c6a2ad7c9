"""Learners on a problem with a known answer, and short smoke trainings that must show progress."""

from __future__ import annotations

import pytest
import torch

from robot_ac.algos.offpolicy import OffPolicy, OffPolicyConfig
from robot_ac.algos.ppo import PPO, PPOConfig
from robot_ac.sim.lqr import ScalarLQREnv, lqr_optimal_gain

GAMMA = 0.9


def _gain(actor) -> float:
    x = torch.linspace(-0.5, 0.5, 21)[:, None]
    with torch.no_grad():
        u = actor.act(x)[:, 0]
    return float(-(u * x[:, 0]).sum() / (x[:, 0] ** 2).sum())


def test_ppo_learns_the_lqr_optimal_gain():
    torch.manual_seed(0)
    env = ScalarLQREnv(256, seed=0, r=1.0, episode_steps=30)
    optimal = lqr_optimal_gain(env.a, env.b, env.q, env.r, GAMMA)
    cfg = PPOConfig(num_envs=256, steps_per_env=30, epochs=5, minibatches=4, gamma=GAMMA, lam=0.95, init_std=0.3,
                    actor_hidden=[16], critic_hidden=[64, 64], critic_activation="tanh", learning_rate=3e-3)
    algo = PPO(cfg, 1, 1, 1, 0.0, torch.device("cpu"))
    obs = env.reset()
    assert abs(_gain(algo.actor)) < 0.1  # starts far from the answer
    for _ in range(35):
        for _ in range(cfg.steps_per_env):
            action = algo.act(obs)
            result = env.step(action)
            algo.record(result.reward, result.terminated, result.truncated, result.info["final_observations"])
            obs = result.observations
        algo.update(obs)
    assert _gain(algo.actor) == pytest.approx(optimal, rel=0.15)


@pytest.mark.parametrize("variant", ["td3", "sac"])
def test_offpolicy_learns_a_stabilising_lqr_gain(variant):
    torch.manual_seed(0)
    env = ScalarLQREnv(64, seed=0, r=1.0, episode_steps=30)
    optimal = lqr_optimal_gain(env.a, env.b, env.q, env.r, GAMMA)
    cfg = OffPolicyConfig(variant=variant, num_envs=64, warmup_critic_steps=2000, warmup_actor_steps=4000,
                          critic_updates_per_env_step=0.25, actor_hidden=[32], critic_hidden=[64, 64], gamma=GAMMA,
                          recompute_rewards=False, exploration_std=0.2, buffer_size=50_000)
    algo = OffPolicy(cfg, 1, 1, 1, 0.0, torch.device("cpu"))
    obs = env.reset()
    for _ in range(250):
        action = algo.act(obs)
        result = env.step(action)
        algo.record(obs, action, result.reward, torch.zeros(64, 6), result.terminated, result.truncated,
                    result.info["final_observations"])
        algo.maybe_update()
        obs = result.observations
    # TD3's deterministic gain lands within ~35% of the optimum in this budget; the closed loop a - b K must be
    # stable and close to the optimal one.
    gain = _gain(algo.actor)
    assert gain == pytest.approx(optimal, rel=0.35)
    assert abs(env.a - env.b * gain) < 0.9
