"""Records a HIL run into the runtime's MCAP flight log (a ROS 2 bag), one cycle callback at a time.

Same topics as ``robot_ac.runtime.controller`` where they mean the same thing (``/observation``, ``/action``),
plus what only HIL has: the onnxruntime reference action, the command the simulator applied and the link timing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from robot_ac.hardware.hil import CycleRecord

TIMING_LABELS = ("episode", "step", "cycle", "latency_ms", "position_error_m", "answered", "terminated")


class HilFlightLog:
    """Callable cycle callback writing into an open ``FlightLog``; time stamps are wall-clock nanoseconds."""

    def __init__(self, log, contract: dict) -> None:
        self.log = log
        self.obs_labels = _labels(contract["observation"]["fields"])
        self.act_labels = _labels(contract["action"]["fields"])
        self._t0_ns = time.time_ns()

    def __call__(self, r: CycleRecord) -> None:
        t_ns = self._t0_ns + int(r.time_s * 1e9)
        self.log.write_array("/observation", t_ns, r.observation, self.obs_labels)
        self.log.write_array("/hil/applied", t_ns, r.applied, self.act_labels)
        if r.action is not None:
            self.log.write_array("/action", t_ns, r.action, self.act_labels)
        if r.onnx_action is not None:
            self.log.write_array("/hil/onnx_action", t_ns, r.onnx_action, self.act_labels)
        latency_ms = np.nan if r.latency_s is None else r.latency_s * 1e3
        timing = [r.episode, r.step, r.cycle, latency_ms, r.position_error_m, r.action is not None, r.terminated]
        self.log.write_array("/hil/timing", t_ns, np.asarray(timing, dtype=np.float32), TIMING_LABELS)


def _labels(fields: list[dict]) -> list[str]:
    out = []
    for f in fields:
        size = int(f["size"])
        out += [f["name"]] if size == 1 else [f"{f['name']}[{i}]" for i in range(size)]
    return out


@contextlib.contextmanager
def open_flight_log(path: str | Path | None, contract: dict) -> Iterator[HilFlightLog | None]:
    """``None`` when ``path`` is None; otherwise a callback whose bag is moved into place on exit."""
    if path is None:
        yield None
        return
    from robot_ac.runtime.flight_log import FlightLog

    with FlightLog(path) as log:
        yield HilFlightLog(log, contract)
