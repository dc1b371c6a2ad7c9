"""The off-policy learner's functional update against the textbook autograd one, compiled against eager, faults."""

from __future__ import annotations

import copy

import pytest
import torch

from robot_ac.algos.offpolicy import OffPolicy, OffPolicyConfig
from robot_ac.algos.regularizers import CapsConfig, caps_spatial, caps_temporal
from robot_ac.algos.replay import ReplayBuffer

CPU = torch.device("cpu")
POLICY_OBS, CRITIC_OBS, ACTIONS, OFFSET = 12, 9, 4, 0.3
BATCH = 64


def _learner(**changes) -> OffPolicy:
    cfg = OffPolicyConfig(batch_size=BATCH, buffer_size=2000, **changes)
    torch.manual_seed(0)
    noise_std = torch.full((POLICY_OBS,), 0.05)
    algo = OffPolicy(cfg, POLICY_OBS, CRITIC_OBS, ACTIONS, OFFSET, CPU, policy_noise_std=noise_std, seed=0)
    g = torch.Generator().manual_seed(1)
    for _ in range(8):  # 512 random transitions, about 10% of them terminal
        n = 64
        obs = {"policy": torch.randn(n, POLICY_OBS, generator=g), "critic": torch.randn(n, CRITIC_OBS, generator=g)}
        final = {"policy": torch.randn(n, POLICY_OBS, generator=g), "critic": torch.randn(n, CRITIC_OBS, generator=g)}
        algo.actor.normalizer.update(obs["policy"])
        algo.critics[0].normalizer.update(obs["critic"])
        algo.record(obs, torch.rand(n, ACTIONS, generator=g) * 2 - 1, torch.randn(n, generator=g), torch.zeros(n, 1),
                    torch.rand(n, generator=g) < 0.1, torch.rand(n, generator=g) < 0.05, final)
    return algo


def _parameters(*modules: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for m in modules for p in m.parameters()]


def _assert_close(ours: list[torch.Tensor], reference: list[torch.Tensor], **tolerance) -> None:
    assert len(ours) == len(reference)
    for a, b in zip(ours, reference, strict=True):
        torch.testing.assert_close(a, b, **(tolerance or {"rtol": 1e-5, "atol": 1e-6}))


def test_a_td3_critic_update_is_the_textbook_autograd_step():
    algo = _learner()
    reference = copy.deepcopy(algo.critics)
    optimizer = torch.optim.Adam(reference.parameters(), lr=algo.cfg.critic_lr)
    draws = torch.Generator().set_state(algo.generator.get_state())  # the learner's next random numbers
    algo.update(None, update_actor=False)

    batch = algo.buffer.unpack(algo.buffer.sample_rows(BATCH, draws))
    noise = torch.randn((BATCH, ACTIONS), generator=draws)
    cfg = algo.cfg
    with torch.no_grad():
        smoothing = (noise * cfg.target_noise).clamp(-cfg.target_noise_clip, cfg.target_noise_clip)
        next_action = (algo.actor_target(batch["next_policy_obs"])[0] + smoothing).clamp(-1, 1)
        q_next = torch.min(*(c(batch["next_critic_obs"], next_action) for c in algo.critics_target))
        target = batch["reward"] + cfg.gamma * (~batch["terminated"]).float() * q_next
    q1, q2 = (c(batch["critic_obs"], batch["action"]) for c in reference)
    (((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean()).backward()
    optimizer.step()
    _assert_close(_parameters(algo.critics), _parameters(reference))


def test_a_td3_actor_update_with_caps_is_the_textbook_step_and_moves_the_targets_by_polyak():
    algo = _learner(caps=CapsConfig(temporal=0.5, spatial=0.1))
    actor, critic = copy.deepcopy(algo.actor), algo.critics[0]
    optimizer = torch.optim.Adam(actor.parameters(), lr=algo.cfg.actor_lr)
    targets_before = _parameters(algo.actor_target, algo.critics_target)
    rows = algo.buffer.sample_rows(BATCH)
    draws = torch.Generator().set_state(algo.generator.get_state())
    stats = algo._update_actor(rows)

    batch = algo.buffer.unpack(rows)
    obs = batch["policy_obs"]
    perturbed = obs + torch.randn(obs.shape, generator=draws) * 0.05 * algo.cfg.caps.spatial_sigma_scale
    action = actor(obs)[0]
    q_loss = -critic(batch["critic_obs"], action).mean()
    temporal = caps_temporal(action, actor.act(batch["next_policy_obs"]), batch["episode_continues"])
    spatial = caps_spatial(action, actor.act(perturbed))
    (q_loss + 0.5 * temporal + 0.1 * spatial).backward()
    optimizer.step()
    _assert_close(_parameters(algo.actor), _parameters(actor))
    temporal, spatial = temporal.detach(), spatial.detach()
    assert stats["caps_temporal"] == pytest.approx(temporal.item(), rel=1e-5)
    assert stats["caps_spatial"] == pytest.approx(spatial.item(), rel=1e-5)
    tau = algo.cfg.tau
    expected = [t + tau * (p - t) for t, p in zip(targets_before, _parameters(algo.actor, algo.critics), strict=True)]
    _assert_close(_parameters(algo.actor_target, algo.critics_target), expected)


SWADDLED_CAPS = {"variant": "td3", "swaddling": 0.5, "caps": CapsConfig(temporal=0.5, spatial=0.1)}


@pytest.mark.parametrize("changes", [SWADDLED_CAPS, {"variant": "sac"}], ids=["td3-swaddled-caps", "sac"])
def test_compiled_updates_equal_eager_ones_and_skip_a_non_finite_loss(changes):
    """``compile_update`` changes the speed, not the update (to float rounding); a NaN leaves the learner as it was."""
    eager, compiled = _learner(**changes), _learner(compile_update=True, **changes)
    for step in range(4):
        for algo in (eager, compiled):
            algo.update(None, update_actor=step % 2 == 1)
    everything = ("actor", "critics", "actor_target", "critics_target")
    _assert_close(_parameters(*(getattr(compiled, m) for m in everything)),
                  _parameters(*(getattr(eager, m) for m in everything)), rtol=1e-4, atol=1e-5)
    assert compiled.log_alpha.item() == pytest.approx(eager.log_alpha.item(), rel=1e-5)

    before = _parameters(compiled.actor, compiled.critics)
    compiled.buffer.rows[:, compiled.buffer.fields["reward"][0]] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite critic loss"):
        compiled.update(None, update_actor=False)
    _assert_close(_parameters(compiled.actor, compiled.critics), before, rtol=0, atol=0)


def test_replay_rows_unpack_to_what_was_added_in_each_field_dtype():
    buffer = ReplayBuffer(10, {"obs": (2, 3), "done": (), "reward": ()}, CPU, dtypes={"done": torch.bool})
    obs, done, reward = torch.randn(4, 2, 3), torch.tensor([True, False, True, False]), torch.randn(4)
    buffer.add(obs=obs, done=done, reward=reward)
    batch = buffer.unpack(buffer.rows[:4])
    torch.testing.assert_close(batch["obs"], obs)
    assert batch["done"].dtype == torch.bool and batch["done"].tolist() == done.tolist()
    torch.testing.assert_close(batch["reward"], reward)
    with pytest.raises(KeyError, match=r"missing fields \['done'\], unknown fields \['dones'\]"):
        buffer.add(obs=obs, dones=done, reward=reward)
