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
            algo.record(result.reward, result.terminated, result.truncated, result.info["final_observations"],
                        result.observations)
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
        algo.record(obs, action, result.reward, torch.zeros(64, 1), result.terminated, result.truncated,
                    result.next_observations())
        algo.maybe_update()
        obs = result.observations
    # TD3's deterministic gain lands within ~35% of the optimum in this budget; the closed loop a - b K must be
    # stable and close to the optimal one.
    gain = _gain(algo.actor)
    assert gain == pytest.approx(optimal, rel=0.35)
    assert abs(env.a - env.b * gain) < 0.9


def test_ppo_minibatch_rows_unpack_to_the_stored_tensors():
    from robot_ac.algos.ppo import minibatch_layout, pack_rows, unpack_rows

    layout = minibatch_layout(3, 2, 2, behavior_lags=True)
    n = 10
    flat = {"policy_obs": torch.randn(n, 3), "critic_obs": torch.randn(n, 2), "actions": torch.randn(n, 2),
            "means": torch.randn(n, 2), "log_probs": torch.randn(n), "dones": torch.rand(n) > 0.5,
            "advantages": torch.randn(n), "returns": torch.randn(n), "values": torch.randn(n),
            "behavior_weights": torch.rand(n), "not_in_the_layout": torch.randn(n)}
    rows = pack_rows(flat, layout).index_select(0, torch.tensor([7, 2, 5]))
    out = unpack_rows(rows, layout)
    assert set(out) == set(flat) - {"not_in_the_layout"}
    for key, value in out.items():
        assert value.dtype == flat[key].dtype and torch.equal(value, flat[key][[7, 2, 5]]), key


def test_ppo_caps_on_a_sample_fraction_uses_the_first_rows_of_the_minibatch():
    from robot_ac.algos import regularizers

    torch.manual_seed(0)
    caps = regularizers.CapsConfig(temporal=0.5, spatial=0.0, sample_fraction=0.25)
    algo = PPO(PPOConfig(num_envs=8, steps_per_env=2, caps=caps), 3, 2, 2, 0.0, torch.device("cpu"))
    algo._rollout_std = algo.policy.log_std.exp().detach()
    n = 16
    mb = {"policy_obs": torch.randn(n, 3), "next_policy_obs": torch.randn(n, 3), "critic_obs": torch.randn(n, 2),
          "actions": torch.randn(n, 2), "means": torch.randn(n, 2), "log_probs": torch.randn(n),
          "values": torch.randn(n), "returns": torch.randn(n), "advantages": torch.randn(n),
          "dones": torch.zeros(n, dtype=torch.bool)}
    losses = algo._minibatch_losses(mb)
    with torch.no_grad():
        net = algo.actor.net
        quarter = regularizers.caps_temporal(net(mb["policy_obs"][:4]), net(mb["next_policy_obs"][:4]))
        whole = regularizers.caps_temporal(net(mb["policy_obs"]), net(mb["next_policy_obs"]))
    assert float(losses["caps_temporal"]) == pytest.approx(float(quarter), rel=1e-6)
    assert float(quarter) != pytest.approx(float(whole), rel=1e-3)


def test_ppo_kl_adapted_learning_rate_stays_under_its_ceiling():
    algo = PPO(PPOConfig(num_envs=4, learning_rate=1e-3, max_learning_rate=3e-3), 3, 2, 2, 0.0, torch.device("cpu"))
    for _ in range(10):
        algo._adapt_learning_rate(torch.tensor(0.0001))  # far below the target KL: the rate grows
    assert algo.learning_rate == pytest.approx(3e-3)
    assert all(group["lr"] == pytest.approx(3e-3) for group in algo.optimizer.param_groups)


def test_ppo_late_kl_target_applies_after_its_samples_and_survives_a_checkpoint():
    cfg = PPOConfig(num_envs=4, learning_rate=1e-3, desired_kl=0.01, late_desired_kl=0.002, late_after_samples=100)
    algo = PPO(cfg, 3, 2, 2, 0.0, torch.device("cpu"))
    algo._adapt_learning_rate(torch.tensor(0.005))  # within [target / 2, 2 target] of 0.01: unchanged
    assert algo.learning_rate == pytest.approx(1e-3)
    algo.samples_learned = 100
    algo._adapt_learning_rate(torch.tensor(0.005))  # above 2 x 0.002: the rate shrinks
    assert algo.learning_rate == pytest.approx(1e-3 / 1.5)
    resumed = PPO(cfg, 3, 2, 2, 0.0, torch.device("cpu"))
    resumed.load_state_dict(algo.state_dict())
    assert resumed.samples_learned == 100 and resumed.learning_rate == pytest.approx(1e-3 / 1.5)


def test_ppo_update_counts_the_samples_it_learned_from():
    torch.manual_seed(0)
    algo = PPO(PPOConfig(num_envs=4, steps_per_env=3, epochs=1, minibatches=1), 3, 2, 2, 0.0, torch.device("cpu"))
    obs = {"policy": torch.randn(4, 3), "critic": torch.randn(4, 2)}
    for _ in range(3):
        algo.act(obs)
        algo.record(torch.ones(4), torch.zeros(4, dtype=torch.bool), torch.zeros(4, dtype=torch.bool), obs, obs)
    algo.update(obs)
    assert algo.samples_learned == 12


def test_ppo_observation_statistics_stop_after_normalizer_samples():
    algo = PPO(PPOConfig(num_envs=4, steps_per_env=8, normalizer_samples=8), 3, 2, 2, 0.0, torch.device("cpu"))
    obs = {"policy": torch.randn(4, 3), "critic": torch.randn(4, 2)}
    algo.act(obs)
    algo.act({k: v + 1.0 for k, v in obs.items()})
    assert algo.normalizers_learning is False
    mean, count = algo.actor.normalizer.mean.clone(), float(algo.actor.normalizer.count)
    algo.act({k: v + 5.0 for k, v in obs.items()})  # past the limit: the statistics stay
    torch.testing.assert_close(algo.actor.normalizer.mean, mean)
    assert float(algo.actor.normalizer.count) == count
    assert PPO(PPOConfig(num_envs=4), 3, 2, 2, 0.0, torch.device("cpu")).normalizers_learning
