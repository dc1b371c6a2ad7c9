"""Pure pieces of the learners against hand-computed values and published oracles."""

from __future__ import annotations

import math

import pytest
import torch

from robot_ac.algos import regularizers
from robot_ac.algos.gae import generalized_advantages
from robot_ac.algos.normalizer import RunningNormalizer
from robot_ac.algos.replay import ReplayBuffer, fading_mass


def test_gae_matches_a_hand_computed_sequence():
    gamma, lam = 0.9, 0.8
    rewards = torch.tensor([[1.0], [0.0], [2.0], [1.0]])
    values = torch.tensor([[0.5], [1.0], [0.2], [0.4]])
    dones = torch.tensor([[False], [True], [False], [False]])
    last = torch.tensor([0.3])
    # by hand, backwards:
    d3 = 1.0 + 0.9 * 0.3 - 0.4            # 0.87
    a3 = d3
    d2 = 2.0 + 0.9 * 0.4 - 0.2            # 2.16
    a2 = d2 + 0.9 * 0.8 * a3              # 2.7864
    d1 = 0.0 + 0.0 - 1.0                  # episode ends at t=1: no bootstrap
    a1 = d1
    d0 = 1.0 + 0.9 * 1.0 - 0.5            # 1.4
    a0 = d0 + 0.9 * 0.8 * a1              # 0.68
    adv, ret = generalized_advantages(rewards, values, last, dones, gamma, lam)
    torch.testing.assert_close(adv[:, 0], torch.tensor([a0, a1, a2, a3]))
    torch.testing.assert_close(ret, adv + values)


def test_swaddling_descent_converges_to_the_known_fixed_point():
    # Oracle (../shared/reference/regularizers.md): gradient descent on L_sw alone -> sigma ~ 0.364, beta ~ 0.092.
    x_sigma = torch.tensor(0.5, requires_grad=True)
    x_beta = torch.tensor(0.5, requires_grad=True)
    opt = torch.optim.Adam([x_sigma, x_beta], lr=0.01)
    for _ in range(6000):
        sigma = torch.tanh(x_sigma / 2).abs().clamp(1e-3, 1 - 1e-3)
        beta = torch.tanh(x_beta / 2).abs().clamp(1e-3, 1 - 1e-3)
        loss = regularizers.swaddling_loss(sigma, beta)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(sigma.detach()) == pytest.approx(0.364, abs=0.01)
    assert float(beta.detach()) == pytest.approx(0.092, abs=0.01)


def test_harmless_noise_is_bounded():
    noise = regularizers.harmless_noise((100_000,), torch.Generator().manual_seed(0))
    assert noise.abs().max() <= 1.0
    assert 0.25 < noise.std() < 0.4  # N(0,1)/e, barely clipped


def test_fading_weights_match_the_published_oracles():
    w = regularizers.fading_weights(100_000)
    i = torch.arange(100_000) / 100_000
    assert i[(w >= 0.5).nonzero()[0]].item() == pytest.approx(0.255, abs=0.005)
    assert i[(w >= 0.99).nonzero()[0]].item() == pytest.approx(0.455, abs=0.005)
    oldest, newest = fading_mass(0.1, 0.1)
    assert oldest == pytest.approx(0.0015, abs=0.0005)
    assert newest == pytest.approx(0.134, abs=0.003)


def test_fading_replay_samples_new_transitions_more_often():
    buffer = ReplayBuffer(1000, {"age": ()}, torch.device("cpu"), fading=True)
    for start in range(0, 1500, 100):  # wraps around: the oldest 500 are overwritten
        buffer.add(age=torch.arange(start, start + 100).float())
    ages = buffer.sample(50_000, torch.Generator().manual_seed(0))["age"]
    assert ages.min() >= 500
    old = ((ages >= 500) & (ages < 600)).float().mean()
    new = (ages >= 1400).float().mean()
    assert old < 0.005 and 0.12 < new < 0.15


def test_caps_terms():
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    assert regularizers.caps_temporal(a, b).item() == pytest.approx(2.5)
    assert regularizers.caps_temporal(a, b, torch.tensor([False, True])).item() == pytest.approx(0.0)
    assert regularizers.caps_spatial(a, b).item() == pytest.approx(2.5)


def test_running_normalizer_matches_batch_statistics():
    g = torch.Generator().manual_seed(0)
    data = torch.randn(5000, 3, generator=g) * torch.tensor([1.0, 10.0, 0.1]) + torch.tensor([5.0, -2.0, 0.0])
    norm = RunningNormalizer(3)
    for chunk in data.split(137):
        norm.update(chunk)
    torch.testing.assert_close(norm.mean, data.mean(0), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(norm.var, data.var(0, unbiased=False), rtol=1e-3, atol=1e-5)
    assert math.isclose(float(norm(data).std(0).mean()), 1.0, rel_tol=0.01)
