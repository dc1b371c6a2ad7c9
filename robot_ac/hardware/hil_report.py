"""What a hardware-in-the-loop run measured: closed-loop success, link timing, counters, why it ended.

Kept apart from the loop so the CLI, the benchmark and the tests read one structure and one table format.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

# How a run ended. Only "completed" ran every requested episode.
COMPLETED = "completed"
DEVICE_FAULT = "device_fault"  # the device sent a FAULT that ends the run (watchdog, non-finite, not armed, ...)
DEVICE_TIMEOUT = "device_timeout"  # no ACTION for longer than the link timeout while the port stayed
PORT_VANISHED = "port_vanished"  # the serial port disappeared and did not come back
HOST_STOPPED = "host_stopped"  # fault injection: the host stopped sending mid-run (device watchdog takes over)
INTERRUPTED = "interrupted"  # Ctrl-C
LINK_ERROR = "link_error"  # the device answered with something unusable (wrong action size, non-finite action)


@dataclass
class EpisodeResult:
    survived: bool
    settle_error_m: float  # mean position error over the last settle window; inf when not survived
    steps: int
    success: bool


@dataclass
class HilReport:
    status: str
    reason: str
    port: str
    target: str  # "host", "qemu" or "device"
    mode: str  # "realtime" (absolute deadlines at rate_hz) or "lockstep" (each STATE waits for its ACTION)
    rate_hz: float  # STATE frames per wall-clock second; 0 in lockstep
    control_rate_hz: float  # the policy's control rate: simulated seconds advance 1/control_rate per cycle
    episodes_requested: int
    episode_s: float
    episodes: list[EpisodeResult] = field(default_factory=list)
    cycles: int = 0  # STATE frames the host meant to send (including injected drops)
    answered: int = 0  # cycles whose ACTION arrived before the next deadline
    missed_cycles: int = 0  # cycles without an ACTION by the next deadline, plus cycles the host overran
    host_overruns: int = 0  # whole periods the host itself fell behind (its deadlines were skipped)
    late_replies: int = 0  # ACTIONs that arrived after their cycle had ended (discarded)
    clamped_actions: int = 0  # device actions outside [-1, 1] (clamped before the simulator)
    injected_drops: int = 0
    injected_corruptions: int = 0
    latencies_s: list[float] = field(default_factory=list, repr=False)
    send_lag_s: list[float] = field(default_factory=list, repr=False)
    compute_us: list[int] = field(default_factory=list, repr=False)
    action_max_abs_diff: float | None = None  # device vs onnxruntime on the same STATE; None when not compared
    actions_compared: int = 0
    action_atol: float = 1e-5
    device_faults: dict[str, int] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)  # valid frames the host decoded, by type
    link: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    # --- derived figures
    @property
    def success_rate(self) -> float:
        return sum(e.success for e in self.episodes) / len(self.episodes) if self.episodes else 0.0

    @property
    def succeeded(self) -> bool:
        """Same rule as simulation: every requested episode ran and at least 95% succeeded."""
        from robot_ac.training.evaluate import SUCCESS_RATE_REQUIRED

        return (self.status == COMPLETED and len(self.episodes) == self.episodes_requested
                and self.success_rate >= SUCCESS_RATE_REQUIRED)

    @property
    def actions_match(self) -> bool | None:
        if self.action_max_abs_diff is None:
            return None
        return self.action_max_abs_diff <= self.action_atol

    @property
    def scheduled_cycles(self) -> int:
        """Deadlines that passed: cycles run plus those the host skipped while it was behind."""
        return self.cycles + self.host_overruns

    @property
    def missed_fraction(self) -> float:
        return self.missed_cycles / self.scheduled_cycles if self.scheduled_cycles else 0.0

    def latency_ms(self) -> dict[str, float]:
        return _stats_ms(self.latencies_s)

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in ("latencies_s", "send_lag_s", "compute_us"):
            data.pop(key)
        compute = np.asarray(self.compute_us, dtype=float)
        data.update(
            success_rate=self.success_rate,
            succeeded=self.succeeded,
            actions_match=self.actions_match,
            missed_fraction=self.missed_fraction,
            scheduled_cycles=self.scheduled_cycles,
            latency_ms=self.latency_ms(),
            send_lag_ms=_stats_ms(self.send_lag_s),
            device_compute_us={"p50": float(np.median(compute)), "max": float(compute.max())} if compute.size else {},
            realtime_factor=self.rate_hz / self.control_rate_hz if self.mode == "realtime" else None,
        )
        return _finite_json(data)

    def table(self) -> str:
        """Human-readable summary, one figure per line."""
        lat, lag = self.latency_ms(), _stats_ms(self.send_lag_s)
        settle = [e.settle_error_m for e in self.episodes if e.survived]
        rows = [
            ("status", f"{self.status}: {self.reason}"),
            ("device", f"{self.target} on {self.port}"),
            ("rate", f"{self.rate_hz:g} Hz (policy control rate {self.control_rate_hz:g} Hz)" if self.mode == "realtime"
             else f"lockstep (no wall-clock pacing; policy control rate {self.control_rate_hz:g} Hz)"),
            ("episodes", f"{len(self.episodes)}/{self.episodes_requested} of {self.episode_s:g} s"),
            ("closed-loop success", f"{self.success_rate:.1%} ({'PASS' if self.succeeded else 'FAIL'}, need 95%)"),
            ("survived", f"{sum(e.survived for e in self.episodes)}/{len(self.episodes)}"),
            ("settle error median", f"{np.median(settle) * 100:.2f} cm" if settle else "-"),
            ("round trip p50 / p99 / max", _fmt_triple(lat)),
            ("STATE send lag p50 / p99 / max", _fmt_triple(lag)),
            ("cycles / answered", f"{self.cycles} / {self.answered} (deadlines {self.scheduled_cycles})"),
            ("missed cycles", f"{self.missed_cycles} ({self.missed_fraction:.3%}), host overruns {self.host_overruns}"),
            ("late replies", str(self.late_replies)),
        ]
        if self.compute_us:
            rows.append(("device compute p50 / max", f"{np.median(self.compute_us):.0f} / {max(self.compute_us)} us"))
        if self.action_max_abs_diff is not None:
            verdict = "match" if self.actions_match else "MISMATCH"
            rows.append(("device vs onnxruntime", f"max |diff| {self.action_max_abs_diff:.2e} over "
                                                  f"{self.actions_compared} actions ({verdict}, tolerance "
                                                  f"{self.action_atol:g})"))
        else:
            rows.append(("device vs onnxruntime", "not compared (no answered STATE, or --no-compare)"))
        if self.injected_drops or self.injected_corruptions:
            rows.append(("injected", f"{self.injected_drops} dropped, {self.injected_corruptions} corrupted STATEs"))
        if self.clamped_actions:
            rows.append(("clamped actions", str(self.clamped_actions)))
        rows.append(("device faults", _fmt_counts(self.device_faults)))
        rows.append(("frames received", _fmt_counts(self.received)))
        rows.append(("link counters", _fmt_counts(self.link)))
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)

    def write_json(self, path: str | Path, extra: dict | None = None) -> Path:
        """Write the report atomically (temp file, then rename): a reader never sees half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict() | (extra or {}), indent=2) + "\n")
        os.replace(tmp, path)
        return path


def _stats_ms(values_s: list[float]) -> dict[str, float]:
    if not values_s:
        return {}
    arr = np.asarray(values_s) * 1e3
    p50, p99 = np.percentile(arr, [50, 99])
    return {"p50": float(p50), "p99": float(p99), "max": float(arr.max()), "mean": float(arr.mean()), "n": len(arr)}


def _fmt_triple(stats: dict[str, float]) -> str:
    if not stats:
        return "-"
    return f"{stats['p50']:.3f} / {stats['p99']:.3f} / {stats['max']:.3f} ms"


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "none"


def _finite_json(value):
    """JSON has no inf/nan: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_json(v) for v in value]
    return value
