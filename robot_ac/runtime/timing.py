"""Always-on timing statistics of a control loop: compute time, period jitter, deadline misses.

Why preallocated rings: statistics are collected in the control loop itself, so recording must not allocate;
percentiles are computed only when asked (diagnostics at ~1 Hz, end-of-run summary).
"""

from __future__ import annotations

import numpy as np


class TimingStats:
    """Records per step: compute time (s), period between step starts (s), lateness vs scheduled time (s)."""

    def __init__(self, period_s: float, capacity: int = 60_000) -> None:
        self.period_s = float(period_s)
        self.capacity = int(capacity)
        self._compute = np.zeros(self.capacity)
        self._period = np.zeros(self.capacity)
        self._late = np.zeros(self.capacity)
        self.steps = 0
        self.periods = 0
        self.deadline_misses = 0
        self.skipped = 0  # ticks the loop skipped because it woke too late (also counted as misses)
        self._last_start: float | None = None

    def record(self, start: float, end: float, scheduled: float | None = None) -> None:
        i = self.steps % self.capacity
        self._compute[i] = end - start
        if self._last_start is not None:
            self._period[self.periods % self.capacity] = start - self._last_start
            self.periods += 1
        self._last_start = start
        ref = scheduled if scheduled is not None else start
        self._late[i] = start - ref
        # A miss: the command left after the next tick was due (the actuator saw last period's command again).
        if end - ref > self.period_s:
            self.deadline_misses += 1
        self.steps += 1

    def record_skipped(self, ticks: int) -> None:
        """Ticks that passed without a step (the loop was not scheduled): each is a missed deadline."""
        self.skipped += ticks
        self.deadline_misses += ticks

    def restart_period(self) -> None:
        """Forget the last start (after a pause the next gap is not a period)."""
        self._last_start = None

    def summary(self) -> dict:
        n, m = min(self.steps, self.capacity), min(self.periods, self.capacity)
        comp, per, late = self._compute[:n], self._period[:m], self._late[:n]
        jitter = np.abs(per - self.period_s)

        def pct(x: np.ndarray, q: float) -> float:
            return float(np.percentile(x, q)) if x.size else float("nan")

        return {
            "steps": self.steps,
            "compute_p50_us": pct(comp, 50) * 1e6, "compute_p99_us": pct(comp, 99) * 1e6,
            "compute_max_us": (float(comp.max()) * 1e6) if n else float("nan"),
            "period_mean_ms": (float(per.mean()) * 1e3) if m else float("nan"),
            "jitter_p50_us": pct(jitter, 50) * 1e6, "jitter_p99_us": pct(jitter, 99) * 1e6,
            "jitter_max_us": (float(jitter.max()) * 1e6) if m else float("nan"),
            "lateness_p99_us": pct(late, 99) * 1e6,
            "deadline_misses": self.deadline_misses,
            "skipped_ticks": self.skipped,
            "deadline_miss_fraction": (self.deadline_misses / (self.steps + self.skipped)
                                       if self.steps + self.skipped else 0.0),
        }
