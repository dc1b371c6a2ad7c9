"""The counter-based observation noise: standard normal, independent across steps and columns, reproducible."""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from robot_ac.sim.counter_rng import counter_normal, lowbias32, step_key


def _draw(seed: int, step: int, shape: tuple[int, int] = (18, 4096)) -> torch.Tensor:
    return counter_normal(step_key(torch.tensor(seed), torch.tensor(step)), shape, "cpu")


def test_samples_are_standard_normal():
    x = torch.cat([_draw(3, t).flatten() for t in range(8)]).double().numpy()
    assert abs(x.mean()) < 4 / np.sqrt(x.size)
    assert abs(x.std() - 1.0) < 0.01
    assert stats.kstest(x, "norm").pvalue > 1e-3
    assert np.abs(x).max() < 6.5  # 24-bit uniforms bound the tail at ~5.9 sigma


def test_steps_columns_and_seeds_are_uncorrelated():
    a, b, other_seed = _draw(3, 10), _draw(3, 11), _draw(4, 10)
    limit = 4 / np.sqrt(a.numel())
    for x, y in ((a, b), (a, other_seed), (a[:9], a[9:])):
        assert abs(np.corrcoef(x.flatten(), y.flatten())[0, 1]) < limit


def test_same_key_same_numbers():
    assert torch.equal(_draw(5, 7), _draw(5, 7))
    assert not torch.equal(_draw(5, 7), _draw(5, 8))


def test_hash_matches_the_published_lowbias32_reference_values():
    # Reference: the 32-bit arithmetic of Wellons' lowbias32 evaluated with numpy uint32 (wrap-around multiply)
    x = np.array([0, 1, 2, 12345, 0xFFFFFFFF], dtype=np.uint64)

    def reference(v: np.ndarray) -> np.ndarray:
        m = np.uint64(0xFFFFFFFF)
        v = v ^ (v >> np.uint64(16))
        v = (v * np.uint64(0x7FEB352D)) & m
        v = v ^ (v >> np.uint64(15))
        v = (v * np.uint64(0x846CA68B)) & m
        return v ^ (v >> np.uint64(16))

    ours = lowbias32(torch.tensor(x.astype(np.int64)))
    assert ours.tolist() == reference(x).astype(np.int64).tolist()
