"""Safety filter and watchdog between the policy and the actuators.

Why a separate layer: the policy is a learned function and the state stream is a network; neither may put a
non-finite, out-of-limit or too-fast command on a motor. Everything here works in the normalized action space
of the contract ([low, high] per component) so it is the same for every robot; the envelope check is per robot
kind (quadrotor: attitude and geofence; joint robots: joint position/velocity limits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from robot_ac.runtime.state import JointState, QuadrotorState


@dataclass
class SafetyLimits:
    """Limits from the profile; ``None`` disables a check. Rates are in normalized units per control step."""

    action_low: np.ndarray
    action_high: np.ndarray
    max_action_rate: float | None = None
    attitude_limit_deg: float | None = None        # quadrotor tilt from upright
    geofence_min: np.ndarray | None = None         # quadrotor world position box
    geofence_max: np.ndarray | None = None
    joint_position_min: np.ndarray | None = None   # joint robots
    joint_position_max: np.ndarray | None = None
    joint_velocity_max: np.ndarray | None = None
    max_state_age_s: float = 0.03
    extra: dict = field(default_factory=dict)


class SafetyFilter:
    """``filter(action)`` -> safe normalized action or a fault reason; ``check_state(state)`` -> fault or None."""

    def __init__(self, limits: SafetyLimits) -> None:
        self.limits = limits
        self.low = np.asarray(limits.action_low, dtype=np.float64)
        self.high = np.asarray(limits.action_high, dtype=np.float64)
        self._cos_tilt = (math.cos(math.radians(limits.attitude_limit_deg))
                          if limits.attitude_limit_deg is not None else None)
        self._rot = np.empty((3, 3))
        self.clipped = 0
        self.rate_limited = 0

    def filter(self, action: np.ndarray, previous: np.ndarray | None, out: np.ndarray) -> str | None:
        """Write the safe action into ``out``; return a fault reason (and leave ``out`` untouched) if non-finite."""
        if not np.isfinite(action).all():
            return f"policy output not finite: {np.asarray(action).tolist()}"
        np.clip(action, self.low, self.high, out=out)
        if not np.array_equal(out, action):
            self.clipped += 1
        rate = self.limits.max_action_rate
        if rate is not None and previous is not None:
            lo, hi = previous - rate, previous + rate
            if (out < lo).any() or (out > hi).any():
                self.rate_limited += 1
                np.clip(out, lo, hi, out=out)
                np.clip(out, self.low, self.high, out=out)
        return None

    def check_state(self, state) -> str | None:
        """Envelope and finiteness of the incoming state; a reason string means fault."""
        if isinstance(state, QuadrotorState):
            return self._check_quadrotor(state)
        if isinstance(state, JointState):
            return self._check_joints(state)
        return f"unknown state type {type(state).__name__}"

    def _check_quadrotor(self, s: QuadrotorState) -> str | None:
        for name in ("position", "linear_velocity", "angular_velocity", "quaternion_wxyz", "rotation"):
            value = getattr(s, name)
            if value is not None and not _finite(value):
                return f"state {name} not finite: {np.asarray(value).tolist()}"
        lim = self.limits
        if self._cos_tilt is not None:
            r = s.rotation_matrix(self._rot)
            if r[2, 2] < self._cos_tilt:
                tilt = math.degrees(math.acos(max(-1.0, min(1.0, float(r[2, 2])))))
                return f"attitude {tilt:.1f} deg beyond limit {lim.attitude_limit_deg:g} deg"
        pos = np.asarray(s.position, dtype=np.float64)
        if lim.geofence_min is not None and (pos < lim.geofence_min).any() or (
                lim.geofence_max is not None and (pos > lim.geofence_max).any()):
            return f"position {np.round(pos, 3).tolist()} outside geofence " \
                   f"[{_fmt(lim.geofence_min)}, {_fmt(lim.geofence_max)}]"
        return None

    def _check_joints(self, s: JointState) -> str | None:
        for name in ("position", "velocity", "imu_quaternion_wxyz", "imu_angular_velocity"):
            value = getattr(s, name)
            if value is not None and not _finite(value):
                return f"state {name} not finite: {np.asarray(value).tolist()}"
        lim = self.limits
        if lim.joint_position_min is not None and (s.position < lim.joint_position_min).any():
            return f"joint position {np.round(s.position, 3).tolist()} below limit {_fmt(lim.joint_position_min)}"
        if lim.joint_position_max is not None and (s.position > lim.joint_position_max).any():
            return f"joint position {np.round(s.position, 3).tolist()} above limit {_fmt(lim.joint_position_max)}"
        if lim.joint_velocity_max is not None and (np.abs(s.velocity) > lim.joint_velocity_max).any():
            return f"joint velocity {np.round(s.velocity, 3).tolist()} beyond limit {_fmt(lim.joint_velocity_max)}"
        return None


class Watchdog:
    """State older than ``max_age_s`` (on the controller's clock) is a fault: the stream stalled."""

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = float(max_age_s)

    def check(self, stamp: float | None, now: float) -> str | None:
        if stamp is None:
            return "no state received"
        age = now - stamp
        if not math.isfinite(age):
            return f"state stamp not finite ({stamp!r})"
        if age > self.max_age_s:
            return f"state stale: {age * 1e3:.1f} ms old > {self.max_age_s * 1e3:.1f} ms"
        return None


def _finite(value) -> bool:
    """All finite, via one sum (a NaN or inf in any entry makes the sum non-finite; so would 1e308 values)."""
    try:
        return math.isfinite(float(np.sum(value)))
    except (TypeError, ValueError):
        return False


def _fmt(v) -> str:
    return "none" if v is None else str(np.round(np.asarray(v), 3).tolist())
