"""The actor's autograd-free inference path computes exactly what its differentiable forward does."""

from __future__ import annotations

import torch

from robot_ac.algos.networks import DeterministicActor


def _actor() -> DeterministicActor:
    torch.manual_seed(0)
    actor = DeterministicActor(149, 4, [64, 64], "tanh", action_offset=0.33, output_gain=1.0)
    actor.normalizer.update(torch.randn(5000, 149) * 3.0 + 1.0)
    return actor


def test_inference_without_autograd_is_bit_identical_and_leaves_its_input_alone():
    actor = _actor()
    obs = torch.randn(1000, 149) * 40.0  # far outside the statistics: the normalizer's clip acts
    before = obs.clone()
    reference = actor.net(actor.normalizer(obs))
    assert reference.requires_grad
    with torch.no_grad():
        fast = actor(obs)
        action = actor.act(obs)
    assert torch.equal(fast, reference.detach())
    assert torch.equal(action, reference.detach().clamp(-1.0, 1.0))
    assert (action.abs() == 1.0).any()  # the clamp was exercised
    assert torch.equal(obs, before)


def test_with_autograd_the_action_still_has_a_gradient():
    actor = _actor()
    actor.act(torch.randn(8, 149)).sum().backward()
    assert actor.net[0].weight.grad is not None and actor.net[0].weight.grad.abs().sum() > 0
