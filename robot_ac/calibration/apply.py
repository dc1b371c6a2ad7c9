"""Turn calibration results into a new robot file: estimates as nominal values, intervals as randomization ranges.

Why ranges from intervals: the simulator should be centred on the real robot and randomized by about as much as
we are unsure of it. Each calibrated quantity gets the range ``value -/+ max(ci_scale * interval side,
floor * |value|)``; the floor keeps a very precise estimate from collapsing the range (unmodelled effects such
as battery sag are not in the interval). The new file is the base file with the calibrated lines replaced, so its
schema and its per-line source comments stay; it is checked with ``load_quadrotor`` before it is moved into place.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass
from pathlib import Path

from robot_ac.calibration.latency import STEP_TOLERANCE
from robot_ac.calibration.results import CalibrationResult, Estimate
from robot_ac.config import ConfigError, Range
from robot_ac.sim.quadrotor.params import QuadrotorParams, load_quadrotor

# Robot-file keys each step provides, in the order they are applied (a later step overrides an earlier one:
# the in-flight thrust coefficient from a hover log with a weighed mass replaces the stand's).
STEP_KEYS = {
    "thrust": ("thrust_coefficient", "yaw_torque_coefficient", "rpm_min", "rpm_max"),
    "motor": ("motor_time_constant",),
    "hover": ("mass", "thrust_coefficient"),
}
RANDOMIZED = ("mass", "thrust_coefficient", "yaw_torque_coefficient", "motor_time_constant")
MAX_DELAY_STEPS = 16  # QuadrotorRandomization.actuation_delay_steps bound


class ApplyError(ValueError):
    """The results cannot be applied; the message names the file or the key."""


@dataclass
class Change:
    key: str
    old: object
    new: object
    source: str

    def row(self) -> tuple[str, str, str, str]:
        def fmt(v: object) -> str:
            if isinstance(v, Range):
                return f"[{v.low:.6g}, {v.high:.6g}]"
            if isinstance(v, (list, tuple)):
                return "[" + ", ".join(f"{x:.6g}" for x in v) + "]"
            return f"{v:.6g}" if isinstance(v, float) else str(v)
        rel = ""
        if isinstance(self.old, float) and isinstance(self.new, float) and self.old:
            rel = f"{(self.new - self.old) / abs(self.old):+.1%}"
        return self.key, fmt(self.old), fmt(self.new), rel


def randomization_range(e: Estimate, floor: float, ci_scale: float) -> tuple[float, float]:
    lo = e.value - max(ci_scale * (e.value - e.low), floor * abs(e.value))
    hi = e.value + max(ci_scale * (e.high - e.value), floor * abs(e.value))
    return lo, hi


def plan_changes(results: list[tuple[Path, CalibrationResult]], base: QuadrotorParams, floor: float,
                 ci_scale: float, control_rate_hz: float) -> tuple[list[Change], list[str]]:
    """Which keys change to what; notes for results that have no robot-file quantity (IMU)."""
    chosen: dict[str, tuple[Estimate, str]] = {}
    notes: list[str] = []
    order = {step: i for i, step in enumerate(("thrust", "motor", "hover", "latency", "imu"))}
    latency: tuple[Estimate, str] | None = None
    for path, res in sorted(results, key=lambda r: order[r[1].step]):
        for key in STEP_KEYS.get(res.step, ()):
            if key in res.estimates:
                chosen[key] = (res.estimates[key], path.name)
        if res.step == "latency":
            if "latency_spread" not in res.estimates:
                raise ApplyError(f"{path}: key 'estimates.latency_spread': missing")
            latency = (res.estimates["latency_spread"], path.name)
        if res.step == "imu":
            notes.append(f"{path.name}: IMU bias and noise density are not robot-file quantities; use the noise "
                         "densities for the task's observation noise_std and the biases in the state estimator")
    changes: list[Change] = []
    rand = base.randomization
    for key, (est, src) in chosen.items():
        if key in ("mass", "thrust_coefficient", "motor_time_constant", "rpm_max") and est.value <= 0:
            raise ApplyError(f"{src}: key 'estimates.{key}': estimate {est.value:.6g} must be > 0")
        if key in ("rpm_min", "yaw_torque_coefficient") and est.value < 0:
            raise ApplyError(f"{src}: key 'estimates.{key}': estimate {est.value:.6g} must be >= 0 (the simulator's "
                             "linear command->rpm map cannot go below zero rpm)")
        note = f"calibrated: {src}, 95% CI [{est.low:.4g}, {est.high:.4g}]"
        changes.append(Change(key, float(getattr(base, key)), float(est.value), note))
        if key in RANDOMIZED and rand is not None:
            lo, hi = randomization_range(est, floor, ci_scale)
            if lo <= 0:
                raise ApplyError(f"{src}: key 'estimates.{key}': randomization range [{lo:.4g}, {hi:.4g}] reaches "
                                 "zero; the interval is too wide to use")
            changes.append(Change(f"randomization.{key}", getattr(rand, key), Range(lo, hi),
                                  f"calibrated: {src} CI x{ci_scale:g}, floor {floor:.0%}"))
    if latency is not None and rand is not None:
        est, src = latency
        dt = 1.0 / control_rate_hz
        lo = int(math.floor(est.low / dt + STEP_TOLERANCE))
        hi = int(math.ceil(est.high / dt - STEP_TOLERANCE))
        if hi > MAX_DELAY_STEPS:
            raise ApplyError(f"{src}: key 'estimates.latency_spread': {est.high:.4g} s is {hi} control steps at "
                             f"{control_rate_hz:g} Hz, more than the simulator's {MAX_DELAY_STEPS}")
        changes.append(Change("randomization.actuation_delay_steps", rand.actuation_delay_steps, Range(lo, hi),
                              f"calibrated: {src}, latency {est.low * 1e3:.1f}..{est.high * 1e3:.1f} ms "
                              f"at {control_rate_hz:g} Hz"))
    if not changes:
        raise ApplyError("no robot-file quantity in the given results (need thrust, motor, hover or latency)")
    return changes, notes


def _format(value: object) -> str:
    if isinstance(value, Range):
        if float(value.low).is_integer() and float(value.high).is_integer() and abs(value.high) < 1e3:
            return f"[{int(value.low)}, {int(value.high)}]"
        return f"[{value.low:.6g}, {value.high:.6g}]"
    return f"{value:.6g}"


def edit_robot_text(text: str, name: str, changes: list[Change], header: str) -> str:
    """Replace the changed lines of the base file's text; continuation comments of a replaced line go too."""
    lines = text.splitlines()
    for ch in changes:
        rand_start = next((i for i, line in enumerate(lines) if re.match(r"^randomization:\s*(#.*)?$", line)),
                          len(lines))
        section, key = ("randomization", ch.key.split(".", 1)[1]) if "." in ch.key else ("top", ch.key)
        indent = "  " if section == "randomization" else ""
        span = range(rand_start + 1, len(lines)) if section == "randomization" else range(rand_start)
        pattern = re.compile(rf"^{indent}{re.escape(key)}:\s")
        idx = next((i for i in span if pattern.match(lines[i])), None)
        if idx is None:
            raise ApplyError(f"base robot file has no line '{indent}{key}:' to replace")
        body = f"{indent}{key}: {_format(ch.new)}"
        lines[idx] = f"{body:<32} # {ch.source}; was {_format(ch.old)}"
        j = idx + 1
        while j < len(lines) and re.match(r"^\s+#", lines[j]):
            del lines[j]
    out = []
    for line in lines:
        if re.match(r"^name:\s", line):
            line = f"name: {name}"
        out.append(line)
    return header + "\n".join(out) + "\n"


def apply_results(results: list[tuple[Path, CalibrationResult]], base_path: Path, out: Path, floor: float = 0.05,
                  ci_scale: float = 1.0, control_rate_hz: float = 100.0) -> tuple[list[Change], list[str]]:
    """Write ``out`` from ``base_path`` and the results; nothing is written if anything is wrong."""
    if floor < 0 or ci_scale < 0:
        raise ApplyError(f"--floor and --ci-scale must be >= 0, got {floor} and {ci_scale}")
    base = load_quadrotor(base_path)
    if out.resolve() == base_path.resolve():
        raise ApplyError(f"{out}: refusing to overwrite the base robot file; choose another --name or --out")
    changes, notes = plan_changes(results, base, floor, ci_scale, control_rate_hz)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sources = ", ".join(sorted({p.name for p, _ in results}))
    header = (f"# Calibrated robot: `robot-ac calibrate apply` on {stamp} from {sources}.\n"
              f"# Base file: {base_path.name}. Lines marked 'calibrated' hold the estimates (nominal) and ranges from\n"
              f"# their 95% intervals (x{ci_scale:g}, at least +-{floor:.0%}); every other line is the base "
              "file's.\n#\n")
    text = edit_robot_text(base_path.read_text(), out.stem, changes, header)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.yaml")
    tmp.write_text(text)
    try:
        load_quadrotor(tmp)
        tmp.replace(out)
    except ConfigError as err:
        raise ApplyError(f"the calibrated robot would be invalid: {str(err).replace(str(tmp), str(out))}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return changes, notes
