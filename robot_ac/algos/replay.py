"""Replay buffer on the training device, with uniform or Symphony "fading" sampling."""

from __future__ import annotations

import math

import torch

from robot_ac.algos.regularizers import fading_weights


class ReplayBuffer:
    """Fixed-capacity ring buffer of named tensors; every add writes a batch ``[N, ...]`` of transitions."""

    def __init__(self, capacity: int, shapes: dict[str, tuple[int, ...]], device: torch.device,
                 dtypes: dict[str, torch.dtype] | None = None, fading: bool = False) -> None:
        dtypes = dtypes or {}
        self.capacity = capacity
        self.data = {k: torch.zeros((capacity, *s), dtype=dtypes.get(k, torch.float32), device=device)
                     for k, s in shapes.items()}
        self.device = device
        self.ptr = 0
        self.size = 0
        self.fading = fading
        if fading:
            # Weights depend only on the relative age i/N, so one inverse CDF over a fine grid serves every size.
            grid = fading_weights(8192, device)
            self._cdf = torch.cumsum(grid, 0) / grid.sum()

    def add(self, **batch: torch.Tensor) -> None:
        n = next(iter(batch.values())).shape[0]
        idx = (self.ptr + torch.arange(n, device=self.device)) % self.capacity
        for key, value in batch.items():
            self.data[key][idx] = value
        self.ptr = (self.ptr + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        if self.size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        u = torch.rand(batch_size, generator=generator, device=self.device)
        if self.fading:
            cell = torch.searchsorted(self._cdf, u).clamp_max(self._cdf.numel() - 1)
            jitter = torch.rand(batch_size, generator=generator, device=self.device)
            age_rank = ((cell.float() + jitter) / self._cdf.numel() * self.size).long().clamp_max(self.size - 1)
        else:
            age_rank = (u * self.size).long().clamp_max(self.size - 1)
        oldest = self.ptr if self.size == self.capacity else 0
        idx = (oldest + age_rank) % self.capacity
        return {k: v[idx] for k, v in self.data.items()}

    def state_dict(self) -> dict:
        return {"data": {k: v[: self.size].clone() if self.size < self.capacity else v for k, v in self.data.items()},
                "ptr": self.ptr, "size": self.size}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state["data"].items():
            self.data[k][: v.shape[0]] = v.to(self.device)
        self.ptr, self.size = state["ptr"], state["size"]


def fading_mass(fraction_oldest: float, fraction_newest: float) -> tuple[float, float]:
    """Sampling mass of the oldest and newest fractions of a fading buffer (test oracle helper)."""
    w = fading_weights(100_000)
    total = float(w.sum())
    k_old, k_new = math.floor(fraction_oldest * w.numel()), math.floor(fraction_newest * w.numel())
    return float(w[:k_old].sum()) / total, float(w[-k_new:].sum()) / total
