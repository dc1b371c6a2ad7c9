"""Counter-based Gaussian noise: a pure function of (key, counter, element index).

Why: observation noise is drawn every step for every environment. ``torch.randn`` with a ``torch.Generator``
is stateful, so ``torch.compile`` cannot fuse it into the step; as a separate call it cost as much as the whole
compiled dynamics at 4096 environments. A counter-based generator (the idea of Philox/Threefry, Salmon et al.
2011, "Parallel random numbers: as easy as 1, 2, 3") is stateless: the step graph computes its own noise, the
stream is reproducible from the seed, and the same integer ops run on CPU and CUDA.

Bits come from ``lowbias32`` (Chris Wellons, hash-prospector: xor-shift/multiply mixer with bias 0.17) of the
element index mixed with a per-step key (itself a hash of seed and step counter). All
arithmetic stays below 2^63 in int64 (32x16-bit partial products), so nothing relies on signed overflow.
"""

from __future__ import annotations

import math

import torch

_MASK32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, constant: int) -> torch.Tensor:
    """``(x * constant) mod 2^32`` for ``0 <= x < 2^32`` in int64, without overflow."""
    lo, hi = constant & 0xFFFF, constant >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _MASK32


def lowbias32(x: torch.Tensor) -> torch.Tensor:
    """Wellons' lowbias32 integer hash of 32-bit values held in int64."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def step_key(seed: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
    """One 32-bit key per (seed, step counter); both int64 scalars (tensors, so no recompilation per step)."""
    return lowbias32((lowbias32(seed & _MASK32) + counter) & _MASK32)


def counter_normal(key: torch.Tensor, shape: tuple[int, int], device: torch.device | str) -> torch.Tensor:
    """Standard normal samples ``shape`` for the step ``key``: the same key always gives the same numbers.

    One hash per sample: a pair of hashes gives two 24-bit uniforms, and Box-Muller turns the pair into two
    normals (cosine and sine branch), which halves the transcendental work.
    """
    rows, cols = shape
    pairs = (rows * cols + 1) // 2
    index = torch.arange(pairs, device=device, dtype=torch.int64)
    bits1 = lowbias32(lowbias32(index) ^ key)  # hashing the index first: no two steps share a permuted stream
    bits2 = lowbias32(bits1 ^ 0x5BD1E995)
    u1 = ((bits1 >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))  # (0, 1): log is finite
    angle = (bits2 >> 8).to(torch.float32) * (2.0 * math.pi / (1 << 24))
    radius = torch.sqrt(-2.0 * torch.log(u1))
    normal = torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)])
    return normal[: rows * cols].reshape(rows, cols)
