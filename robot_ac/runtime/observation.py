"""Build the ``policy`` observation vector from typed state exactly as a bundle's contract declares it.

Why here and only here: the contract (field names, sizes, frames, offsets, action-history layout, initial action,
position target) travels in the bundle; this module is the single place that turns robot state into that vector,
for the ROS 2 node, the DDS process, the HIL harness and the simulator alike. Buffers are preallocated.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from robot_ac.runtime.state import JointState, QuadrotorState, StateError


class ContractError(ValueError):
    """The bundle's contract asks for something this runtime or profile cannot provide."""


# field name -> (expected frame or None for any, writer(builder, state, out_slice))
Writer = Callable[["ObservationBuilder", object, np.ndarray], None]


def _quad(state) -> QuadrotorState:
    if not isinstance(state, QuadrotorState):
        raise StateError(f"expected QuadrotorState, got {type(state).__name__}")
    return state


def _joint(state) -> JointState:
    if not isinstance(state, JointState):
        raise StateError(f"expected JointState, got {type(state).__name__}")
    return state


def _position_error(b: ObservationBuilder, s, out: np.ndarray) -> None:
    np.subtract(_vec(_quad(s).position, 3, "position"), b.position_target, out=out)


def _rotation(b: ObservationBuilder, s, out: np.ndarray) -> None:
    _quad(s).rotation_matrix(b._rot)
    out[:] = b._rot.reshape(9)  # row-major R (body -> world), as the simulator's reshape(-1, 9)


def _linear_velocity(b: ObservationBuilder, s, out: np.ndarray) -> None:
    out[:] = _vec(_quad(s).linear_velocity, 3, "linear_velocity")


def _angular_velocity(b: ObservationBuilder, s, out: np.ndarray) -> None:
    out[:] = _vec(_quad(s).angular_velocity, 3, "angular_velocity")


def _joint_position(b: ObservationBuilder, s, out: np.ndarray) -> None:
    out[:] = _vec(_joint(s).position, out.size, "joint_position")


def _joint_velocity(b: ObservationBuilder, s, out: np.ndarray) -> None:
    out[:] = _vec(_joint(s).velocity, out.size, "joint_velocity")


def _imu_angular_velocity(b: ObservationBuilder, s, out: np.ndarray) -> None:
    js = _joint(s)
    if js.imu_angular_velocity is None:
        raise StateError("contract needs base_angular_velocity but the state carries no IMU")
    out[:] = _vec(js.imu_angular_velocity, 3, "imu angular_velocity")


def _projected_gravity(b: ObservationBuilder, s, out: np.ndarray) -> None:
    js = _joint(s)
    if js.imu_quaternion_wxyz is None:
        raise StateError("contract needs projected_gravity but the state carries no IMU orientation")
    from robot_ac.runtime.state import quat_to_rotmat

    r = quat_to_rotmat(np.asarray(js.imu_quaternion_wxyz, dtype=np.float64), b._rot)
    out[:] = -r[2, :]  # world gravity direction (0, 0, -1) expressed in the body frame: R^T g


def _position_error_integral(b: ObservationBuilder, s, out: np.ndarray) -> None:
    """Clamped running sum of position error x control period, as the simulator keeps it.

    The simulator's first observation of an episode carries 0 and every later one includes the current error,
    so the first build after ``reset`` writes 0 and each later build adds the current error first.
    """
    if b._integral_started:
        error = _vec(_quad(s).position, 3, "position") - b.position_target
        np.clip(b.integral + error * b.control_period, -b.integral_limit, b.integral_limit, out=b.integral)
    b._integral_started = True
    out[:] = b.integral


def _action_history(b: ObservationBuilder, s, out: np.ndarray) -> None:
    out[:] = b.history.reshape(-1)


FIELDS: dict[str, tuple[str | None, Writer]] = {
    "position_error": ("world", _position_error),
    "rotation_matrix": ("body_to_world_row_major", _rotation),
    "linear_velocity": ("world", _linear_velocity),
    "angular_velocity": ("body", _angular_velocity),
    "joint_position": (None, _joint_position),
    "joint_velocity": (None, _joint_velocity),
    "base_angular_velocity": ("body", _imu_angular_velocity),
    "projected_gravity": ("body", _projected_gravity),
    "action_history": (None, _action_history),
    "position_error_integral": ("world", _position_error_integral),
}


def _vec(values, size: int, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size != size:
        raise StateError(f"{what} has {arr.size} values, expected {size}")
    return arr


class ObservationBuilder:
    """Fills a preallocated float32 ``[1, n_obs]`` buffer; owns the action history (newest first)."""

    def __init__(self, contract: dict) -> None:
        obs = contract["observation"]
        self.size = int(obs["size"])
        self.action_size = int(contract["action"]["size"])
        hist = contract.get("action_history") or {"length": 0}
        self.history_length = int(hist.get("length", 0))
        if self.history_length and hist.get("layout", "newest_first") != "newest_first":
            raise ContractError(f"action_history layout {hist.get('layout')!r} unsupported (newest_first only)")
        initial = contract.get("initial_action")
        self.initial_action = (np.asarray(initial, dtype=np.float64) if initial is not None
                               else np.zeros(self.action_size))
        if self.initial_action.shape != (self.action_size,):
            raise ContractError(f"initial_action has {self.initial_action.size} values, action size is "
                                f"{self.action_size}")
        self.position_target = np.asarray(contract.get("position_target", [0.0, 0.0, 0.0]), dtype=np.float64)
        self.control_period = 1.0 / float(contract["control_rate_hz"])
        self.integral_limit = float(contract.get("position_error_integral_limit", 0.5))
        self.integral = np.zeros(3)
        self._integral_started = False
        self.history = np.empty((self.history_length, self.action_size))
        self.buffer = np.zeros((1, self.size), dtype=np.float32)
        self._rot = np.empty((3, 3))
        self._plan: list[tuple[Writer, np.ndarray]] = []
        offset = 0
        for f in obs["fields"]:
            name, size = f["name"], int(f["size"])
            if name not in FIELDS:
                raise ContractError(f"observation field {name!r} cannot be built by this runtime "
                                    f"(known: {sorted(FIELDS)})")
            frame, writer = FIELDS[name]
            if frame is not None and f.get("frame") not in (None, "", frame):
                raise ContractError(f"observation field {name!r} declares frame {f.get('frame')!r}, "
                                    f"this runtime builds {frame!r}")
            if int(f.get("offset", offset)) != offset:
                raise ContractError(f"observation field {name!r} declares offset {f.get('offset')}, "
                                    f"fields before it add up to {offset}")
            if name == "action_history" and size != self.history_length * self.action_size:
                raise ContractError(f"action_history field has size {size}, expected length "
                                    f"{self.history_length} x {self.action_size} actions")
            self._plan.append((writer, np.empty(size)))
            offset += size
        self._scratch_offsets = np.cumsum([0] + [p[1].size for p in self._plan])
        self.reset()

    def reset(self) -> None:
        """Start of an episode: history filled with the contract's initial action (as the simulator does)."""
        self.history[:] = self.initial_action
        self.integral[:] = 0.0
        self._integral_started = False

    def push_action(self, action_normalized: np.ndarray) -> None:
        """Record the action actually commanded (normalized), newest first."""
        if self.history_length:
            self.history[1:] = self.history[:-1]
            self.history[0] = action_normalized

    def build(self, state) -> np.ndarray:
        """Observation ``[1, n_obs]`` float32 (the same buffer every call); StateError if the state is malformed."""
        for (writer, scratch), start in zip(self._plan, self._scratch_offsets, strict=False):
            writer(self, state, scratch)
            self.buffer[0, start:start + scratch.size] = scratch
        return self.buffer
