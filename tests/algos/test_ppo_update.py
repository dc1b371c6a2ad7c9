"""PPO's update variants: the decoupled objective, and the update in a learner process."""

from __future__ import annotations

import copy
import time

import pytest
import torch

from robot_ac.algos import regularizers
from robot_ac.algos.async_update import AsyncUpdater
from robot_ac.algos.ppo import PPO, PPOConfig

CPU = torch.device("cpu")
SIZES = (6, 4, 2, 0.0)  # policy obs, critic obs, actions, action offset


def _rollout(ppo: PPO, seed: int) -> dict[str, torch.Tensor]:
    """Fill ``ppo.storage`` with one rollout of random observations and rewards; return the last observation."""
    g = torch.Generator().manual_seed(seed)
    n = ppo.cfg.num_envs

    def obs() -> dict[str, torch.Tensor]:
        return {"policy": torch.randn(n, SIZES[0], generator=g), "critic": torch.randn(n, SIZES[1], generator=g)}

    current = obs()
    for t in range(ppo.cfg.steps_per_env):
        ppo.act(current)
        final = obs()
        truncated = torch.zeros(n, dtype=torch.bool)
        truncated[t % n] = True
        reward, terminated = torch.randn(n, generator=g), torch.rand(n, generator=g) < 0.05
        current = obs()
        ppo.record(reward, terminated, truncated, final, current)
    return current


def _cfg(**changes) -> PPOConfig:
    defaults = dict(num_envs=32, steps_per_env=4, epochs=2, minibatches=2)
    return PPOConfig(**(defaults | changes))


def _parameters(ppo: PPO) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in ppo.policy.named_parameters()}


def test_decoupled_objective_weights_each_sample_by_prox_over_behavior():
    torch.manual_seed(0)
    ppo = PPO(_cfg(caps=regularizers.CapsConfig(temporal=0.0, spatial=0.0)), *SIZES, CPU)
    ppo._rollout_std = ppo.policy.log_std.exp().detach()
    n = 16
    mb = {"policy_obs": torch.randn(n, 6), "next_policy_obs": torch.randn(n, 6), "critic_obs": torch.randn(n, 4),
          "actions": torch.randn(n, 2), "means": torch.randn(n, 2), "log_probs": torch.randn(n),
          "values": torch.randn(n), "returns": torch.randn(n), "advantages": torch.randn(n),
          "dones": torch.zeros(n, dtype=torch.bool)}
    plain = ppo._minibatch_losses(mb)["surrogate"]
    weighted = ppo._minibatch_losses(mb | {"behavior_weights": torch.full((n,), 2.0)})["surrogate"]
    assert float(weighted) == pytest.approx(2 * float(plain), rel=1e-6)
    assert float(plain) != 0.0


def test_lagging_behavior_takes_the_trust_region_around_the_current_policy():
    """With behavior == current policy, the decoupled update is the plain update (all weights 1)."""
    torch.manual_seed(0)
    plain = PPO(_cfg(), *SIZES, CPU)
    plain.actor.normalizer.frozen = True  # so the rollout's log-probabilities are exactly the current policy's
    last = _rollout(plain, seed=1)
    decoupled = copy.deepcopy(plain)
    decoupled.behavior_lags = True
    torch.manual_seed(2)
    plain.update(last)
    torch.manual_seed(2)
    decoupled.update(last)
    for key, value in _parameters(plain).items():
        torch.testing.assert_close(_parameters(decoupled)[key], value, rtol=1e-4, atol=1e-6, msg=key)


def test_learner_process_computes_the_same_update_as_in_process_and_hands_it_back_one_rollout_later():
    torch.manual_seed(0)
    ppo = PPO(_cfg(), *SIZES, CPU)
    last = _rollout(ppo, seed=1)
    reference = copy.deepcopy(ppo)  # the learner rebuilds the same PPO under the same seed, then loads the state
    updater = AsyncUpdater(ppo, seed=7)
    try:
        initial = _parameters(ppo)
        first_last = last
        assert updater.submit(last) == {}  # nothing learned yet: the next rollout uses the initial weights
        for key, value in _parameters(ppo).items():
            assert torch.equal(value, initial[key]), key
        last = _rollout(ppo, seed=3)
        stats = updater.submit(last)
        assert {"surrogate", "value_loss", "kl", "learning_rate"} <= stats.keys()
        torch.manual_seed(7)
        rebuilt = PPO(_cfg(), *SIZES, CPU)
        rebuilt.load_state_dict(reference.state_dict())
        rebuilt.storage = reference.storage
        rebuilt.behavior_lags = True
        expected = rebuilt.update(first_last)
        assert stats["surrogate"] == pytest.approx(expected["surrogate"], rel=1e-4, abs=1e-7)
        for key, value in _parameters(rebuilt).items():
            torch.testing.assert_close(_parameters(ppo)[key], value, rtol=1e-5, atol=1e-6, msg=key)
        state = updater.state_dict()  # waits for the second update; the local weights stay those of the first
        assert set(state) >= {"policy", "critic", "optimizer"}
        for key, value in _parameters(rebuilt).items():
            torch.testing.assert_close(_parameters(ppo)[key], value, rtol=1e-5, atol=1e-6, msg=key)
    finally:
        updater.close()
    assert not updater._process.is_alive()


def _shared_update(helping: bool) -> tuple[dict, int]:
    """One update in a learner process that shares minibatches; the trainer takes offers only when ``helping``."""
    torch.manual_seed(0)
    caps = regularizers.CapsConfig(temporal=0.1, spatial=0.05, sample_fraction=0.5)
    cfg = _cfg(num_envs=64, epochs=8, minibatches=4, caps=caps, share_minibatches=True)
    ppo = PPO(cfg, *SIZES, CPU, policy_noise_std=torch.tensor([0.1, 0.1, 0.0, 0.0, 0.2, 0.0]))
    updater = AsyncUpdater(ppo, seed=7)
    try:
        updater.submit(_rollout(ppo, seed=1))
        helped = 0
        deadline = time.monotonic() + 30
        while helping and helped < 3 and time.monotonic() < deadline and not updater._conn.poll():
            helped += updater.help()
        state = updater.state_dict()  # waits for the update; offers not taken by now the learner computes itself
    finally:
        updater.close()
    return state, helped


def test_minibatches_shared_with_the_trainer_give_the_update_the_learner_computes_alone():
    shared, helped = _shared_update(helping=True)
    alone, not_helped = _shared_update(helping=False)
    assert helped > 0 and not_helped == 0
    for part in ("policy", "critic"):
        for key, value in alone[part].items():
            torch.testing.assert_close(shared[part][key], value, rtol=1e-6, atol=1e-7, msg=f"{part}.{key}")


def test_a_compiled_loss_takes_the_same_update_as_the_eager_one():
    """``compile_update`` changes the speed, not the update (to float rounding); the first update compiles."""
    caps = regularizers.CapsConfig(temporal=0.1, spatial=0.05, sample_fraction=0.5)
    noise = torch.tensor([0.1, 0.1, 0.0, 0.0, 0.2, 0.0])
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        ppo = PPO(_cfg(caps=caps, compile_update=compiled), *SIZES, CPU, policy_noise_std=noise)
        state = torch.get_rng_state()
        ppo.warm_up_update()  # compiles, on zeros: whenever it runs, the run's random numbers stay the same
        assert torch.equal(torch.get_rng_state(), state)
        torch.manual_seed(1)
        last = _rollout(ppo, seed=1)
        torch.manual_seed(2)
        stats = ppo.update(last)
        results.append((_parameters(ppo), stats))
    (eager, eager_stats), (compiled, compiled_stats) = results
    assert compiled_stats["surrogate"] == pytest.approx(eager_stats["surrogate"], rel=1e-4, abs=1e-6)
    for key, value in eager.items():
        torch.testing.assert_close(compiled[key], value, rtol=1e-4, atol=1e-5, msg=key)


def test_a_nonfinite_loss_in_the_learner_process_surfaces_as_the_same_error():
    torch.manual_seed(0)
    ppo = PPO(_cfg(), *SIZES, CPU)
    last = _rollout(ppo, seed=1)
    ppo.storage["rewards"][0, 0] = float("nan")
    updater = AsyncUpdater(ppo, seed=7)
    try:
        updater.submit(last)
        last = _rollout(ppo, seed=3)
        with pytest.raises(FloatingPointError, match="non-finite PPO loss"):
            updater.submit(last)
    finally:
        updater.close()


def test_adam_takes_the_same_steps_as_torch_adam():
    from robot_ac.algos.adam import Adam

    torch.manual_seed(0)
    ours, theirs = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    theirs.load_state_dict(ours.state_dict())
    mine, reference = Adam(ours.parameters(), lr=3e-3), torch.optim.Adam(theirs.parameters(), lr=3e-3)
    for step in range(50):
        x = torch.randn(16, 5)
        for net, optimizer in ((ours, mine), (theirs, reference)):
            optimizer.zero_grad()
            (net(x) ** 2).mean().backward()
            if step == 20:
                optimizer.param_groups[0]["lr"] = 1e-3  # the KL schedule changes it between steps
            optimizer.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    restored = Adam(ours.parameters(), lr=0.0)
    restored.load_state_dict(mine.state_dict())
    assert restored.steps == 50 and restored.param_groups[0]["lr"] == 1e-3


@pytest.mark.parametrize("separate", [False, True])
def test_gradient_clipping_keeps_the_critic_from_shrinking_the_actor_step_when_separate(separate):
    ppo = PPO(_cfg(separate_grad_clip=separate, max_grad_norm=1.0), *SIZES, CPU)
    for p in ppo.policy.parameters():
        p.grad = torch.full_like(p, 1.0)
    for p in ppo.critic.parameters():
        p.grad = torch.full_like(p, 100.0)

    def norm(module: torch.nn.Module) -> float:
        return float(torch.cat([p.grad.flatten() for p in module.parameters()]).norm())

    actor_before = norm(ppo.policy)
    total_before = (actor_before**2 + norm(ppo.critic) ** 2) ** 0.5
    ppo._clip_gradients()
    if separate:
        assert norm(ppo.policy) == pytest.approx(1.0, rel=1e-5)
        assert norm(ppo.critic) == pytest.approx(1.0, rel=1e-5)
    else:  # one scale for both, set by the critic's 100x larger gradient
        assert norm(ppo.policy) == pytest.approx(actor_before / total_before, rel=1e-4)
        assert norm(ppo.policy) < 0.02


def test_value_clip_zero_is_the_plain_squared_error():
    torch.manual_seed(0)
    ppo = PPO(_cfg(value_clip=0.0, caps=regularizers.CapsConfig(temporal=0.0, spatial=0.0)), *SIZES, CPU)
    ppo._rollout_std = ppo.policy.log_std.exp().detach()
    n = 16
    mb = {"policy_obs": torch.randn(n, 6), "next_policy_obs": torch.randn(n, 6), "critic_obs": torch.randn(n, 4),
          "actions": torch.randn(n, 2), "means": torch.randn(n, 2), "log_probs": torch.randn(n),
          "values": torch.full((n,), 50.0), "returns": torch.randn(n), "advantages": torch.randn(n),
          "dones": torch.zeros(n, dtype=torch.bool)}
    with torch.no_grad():
        expected = ((ppo.critic.net(mb["critic_obs"]).squeeze(-1) - mb["returns"]) ** 2).mean()
    assert float(ppo._minibatch_losses(mb)["value_loss"]) == pytest.approx(float(expected), rel=1e-6)


def test_record_stores_the_state_reached_not_the_reset_observation():
    """Where an episode ended the next observation is the final one; elsewhere the one acted on next. The final
    observations' other rows are unspecified (the fused CPU step leaves them unwritten): here NaN, never stored."""
    ppo = PPO(_cfg(num_envs=4, steps_per_env=1), *SIZES, torch.device("cpu"))
    ppo.act({"policy": torch.zeros(4, SIZES[0]), "critic": torch.zeros(4, SIZES[1])})
    terminated = torch.tensor([False, True, False, False])
    truncated = torch.tensor([False, False, True, False])
    groups = dict(zip(("policy", "critic"), SIZES[:2], strict=True))
    final = {group: torch.full((4, size), float("nan")) for group, size in groups.items()}
    final["policy"][1:3] = 7.0
    final["critic"][1:3] = 7.0
    following = {group: torch.ones(4, size) for group, size in groups.items()}
    ppo.record(torch.zeros(4), terminated, truncated, final, following)
    stored = ppo.storage["next_policy_obs"][0]
    assert torch.equal(stored[[1, 2]], torch.full((2, SIZES[0]), 7.0))
    assert torch.equal(stored[[0, 3]], torch.ones(2, SIZES[0]))
    assert torch.equal(ppo.storage["next_critic_obs"][0][2], torch.full((SIZES[1],), 7.0))  # the time-out
