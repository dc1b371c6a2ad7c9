"""Replay buffer on the training device, with uniform or Symphony "fading" sampling."""

from __future__ import annotations

import math

import torch

from robot_ac.algos.regularizers import fading_weights


class ReplayBuffer:
    """Fixed-capacity ring buffer of named fields; every add writes a batch ``[N, ...]`` of transitions.

    All fields of a transition share one float32 row (each field a range of columns), so a minibatch is one
    gather: with a gather per field, sampling took 0.38 ms of a 3.2 ms TD3 critic update here. Non-float fields
    (flags) are stored as 0/1 and converted back on sampling; integers are exact up to 2^24.
    """

    def __init__(self, capacity: int, shapes: dict[str, tuple[int, ...]], device: torch.device,
                 dtypes: dict[str, torch.dtype] | None = None, fading: bool = False) -> None:
        dtypes = dtypes or {}
        self.capacity = capacity
        self.fields: dict[str, tuple[slice, tuple[int, ...], torch.dtype]] = {}
        offset = 0
        for key, shape in shapes.items():
            width = math.prod(shape)
            self.fields[key] = (slice(offset, offset + width), tuple(shape), dtypes.get(key, torch.float32))
            offset += width
        self.rows = torch.zeros((capacity, offset), device=device)
        self.device = device
        self.ptr = 0
        self.size = 0
        self.fading = fading
        if fading:
            # Weights depend only on the relative age i/N, so one inverse CDF over a fine grid serves every size.
            grid = fading_weights(8192, device)
            self._cdf = torch.cumsum(grid, 0) / grid.sum()

    def add(self, **batch: torch.Tensor) -> None:
        if batch.keys() != self.fields.keys():
            missing, extra = self.fields.keys() - batch.keys(), batch.keys() - self.fields.keys()
            raise KeyError(f"replay buffer add: missing fields {sorted(missing)}, unknown fields {sorted(extra)}")
        n = next(iter(batch.values())).shape[0]
        rows = torch.cat([batch[key].reshape(n, -1).to(torch.float32) for key in self.fields], dim=1)
        idx = (self.ptr + torch.arange(n, device=self.device)) % self.capacity
        self.rows[idx] = rows
        self.ptr = (self.ptr + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample_rows(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[batch_size, width]`` packed transitions; ``unpack`` names their fields."""
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
        # index_select copies whole rows: 21 us against 64 us for rows[idx] on [300k, 388] here
        return torch.index_select(self.rows, 0, (oldest + age_rank) % self.capacity)

    def unpack(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named fields of packed rows ``[B, width]``, each ``[B, *shape]`` in its own dtype."""
        out = {}
        for key, (columns, shape, dtype) in self.fields.items():
            value = rows[:, columns].reshape(rows.shape[0], *shape)
            out[key] = value if dtype == torch.float32 else value.to(dtype)
        return out

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return self.unpack(self.sample_rows(batch_size, generator))

    def state_dict(self) -> dict:
        return {"rows": self.rows[: self.size].clone() if self.size < self.capacity else self.rows,
                "ptr": self.ptr, "size": self.size}

    def load_state_dict(self, state: dict) -> None:
        if "rows" not in state or state["rows"].shape[1:] != self.rows.shape[1:]:
            raise ValueError("replay buffer state does not match this buffer's fields (a checkpoint from an older "
                             "robot_ac?)")
        self.rows[: state["rows"].shape[0]] = state["rows"].to(self.device)
        self.ptr, self.size = state["ptr"], state["size"]


def fading_mass(fraction_oldest: float, fraction_newest: float) -> tuple[float, float]:
    """Sampling mass of the oldest and newest fractions of a fading buffer (test oracle helper)."""
    w = fading_weights(100_000)
    total = float(w.sum())
    k_old, k_new = math.floor(fraction_oldest * w.numel()), math.floor(fraction_newest * w.numel())
    return float(w[:k_old].sum()) / total, float(w[-k_new:].sum()) / total
