"""Timing shared by the benchmarks: blocks of calls, one mean per block, so a median over blocks drops stalls."""

from __future__ import annotations

import time
from collections.abc import Callable


def block_means_ms(fn: Callable[[], object], block: int, repeats: int, warmup: int = 1) -> list[float]:
    """Mean milliseconds per call of ``fn`` in each of ``repeats`` blocks of ``block`` calls, after ``warmup``
    calls (which compile, or warm the allocator)."""
    for _ in range(warmup):
        fn()
    means = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(block):
            fn()
        means.append((time.perf_counter() - start) / block * 1e3)
    return means
