"""Timing shared by the benchmarks: blocks of calls, one mean per block, so a median over blocks drops stalls; and a
probe of how fast the machine runs at the moment."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
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


PROBE = """
import json, time, torch
torch.set_num_threads(1)
a, w = torch.randn(1024, 149), torch.randn(149, 64)
for _ in range(50):
    a @ w
start = time.perf_counter()
for _ in range(2000):
    a @ w
matmul = (time.perf_counter() - start) / 2000 * 1e6
start, x = time.perf_counter(), 0
for i in range(2_000_000):
    x += i
print(json.dumps({"matmul_1024x149x64_us": matmul, "python_loop_2m_ms": (time.perf_counter() - start) * 1e3}))
"""


def machine_probe() -> dict:
    """How fast this machine runs right now, in a fresh process: one thread's [1024, 149] x [149, 64] product (the
    actor's first layer on a rollout step) and a 2M-iteration Python loop, with the UTC time.

    Why: this VM's speed drifts by up to 2x within an hour (the same simulator cell measured 4.6M and 2.3M
    env-steps/s 14 minutes apart), so a benchmark's JSON records the probe before and after its runs, and results
    from different hours can be told apart from changes in the code.
    """
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        probe = {"error": result.stderr[-500:]}
    else:
        probe = json.loads(result.stdout.strip().splitlines()[-1])
    return {"utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **probe}
