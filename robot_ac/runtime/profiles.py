"""Robot profiles: which messages carry state and commands, topic names, safety limits; checked against a bundle.

Why YAML in ROS 2 parameter-file form (``policy_node: ros__parameters: ...``): one file serves ``ros2 launch``
(``--params-file``) and ``robot-ac run``. A bundle whose contract cannot be served by the profile (action size,
robot kind, observation fields the profile's messages cannot provide, robot name) is refused with one line
naming both files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from robot_ac.runtime.controller import KINDS, ControllerConfig
from robot_ac.runtime.ros2_types import MESSAGE_TYPES

PROFILE_DIR = Path(__file__).resolve().parents[2] / "launch"

# Observation fields each state message type can provide (after frame conversion).
_POSE_TWIST = {"position_error", "rotation_matrix", "linear_velocity", "angular_velocity", "position_error_integral"}
PROVIDES = {
    "nav_msgs/msg/Odometry": _POSE_TWIST,
    "px4_msgs/msg/VehicleOdometry": _POSE_TWIST,
    "sensor_msgs/msg/JointState": {"joint_position", "joint_velocity"},
    "sensor_msgs/msg/Imu": {"base_angular_velocity", "projected_gravity"},
}
ALWAYS = {"action_history"}
SAFETY_KEYS = {"max_state_age_periods", "max_action_rate", "attitude_limit_deg", "geofence_min", "geofence_max",
               "joint_position_min", "joint_position_max", "joint_velocity_max", "motors_off_after_s"}
COMMAND_UNITS = ("normalized", "physical", "unit_interval")


class ProfileError(ValueError):
    """A profile file is malformed or does not fit a bundle; the message names the file(s)."""


@dataclass
class Profile:
    path: Path
    name: str
    robot_kind: str
    robot: str
    action_size: int
    rate_hz: float
    state_type: str
    command_type: str
    command_units: str
    topics: dict[str, str]
    safety: dict
    joint_names: list[str] = field(default_factory=list)
    imu_type: str | None = None

    def controller_config(self) -> ControllerConfig:
        return ControllerConfig(kind=self.robot_kind, rate_hz=self.rate_hz or None, **self.safety)

    def check_contract(self, contract: dict, bundle_path: str | Path) -> None:
        """Raise ProfileError when the bundle's contract cannot run under this profile."""
        where = f"bundle {bundle_path} vs profile {self.path}"
        n_act = int(contract["action"]["size"])
        if n_act != self.action_size:
            raise ProfileError(f"{where}: bundle has {n_act} actions, profile '{self.name}' drives {self.action_size}")
        if self.robot and contract.get("robot") != self.robot:
            raise ProfileError(f"{where}: bundle is for robot {contract.get('robot')!r}, profile wants {self.robot!r}")
        available = set(ALWAYS) | PROVIDES.get(self.state_type, set())
        if self.imu_type:
            available |= PROVIDES.get(self.imu_type, set())
        missing = [f["name"] for f in contract["observation"]["fields"] if f["name"] not in available]
        if missing:
            raise ProfileError(f"{where}: observation fields {missing} cannot be built from {self.state_type}"
                               + (f" + {self.imu_type}" if self.imu_type else "") + f" (provides {sorted(available)})")
        if self.joint_names:
            for f in contract["observation"]["fields"]:
                if f["name"].startswith("joint_") and int(f["size"]) != len(self.joint_names):
                    raise ProfileError(f"{where}: field {f['name']} has {f['size']} joints, profile names "
                                       f"{len(self.joint_names)}")


def resolve_profile_path(name_or_path: str | Path) -> Path:
    """A path to a YAML file, or a profile name looked up in the top-level launch/ folder."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    return PROFILE_DIR / f"{p.name}.yaml"


def load_profile(name_or_path: str | Path) -> Profile:
    path = resolve_profile_path(name_or_path)
    if not path.is_file():
        known = sorted(q.stem for q in PROFILE_DIR.glob("*.yaml")) if PROFILE_DIR.is_dir() else []
        raise ProfileError(f"{path}: no such profile (known profiles: {', '.join(known)})")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ProfileError(f"{path}: not valid YAML ({err})") from err
    try:
        params = raw["policy_node"]["ros__parameters"]
    except (KeyError, TypeError) as err:
        raise ProfileError(f"{path}: expected 'policy_node: ros__parameters:' at the top") from err

    def need(key: str, kind: type | tuple):
        if key not in params:
            raise ProfileError(f"{path}: policy_node.ros__parameters.{key} missing")
        value = params[key]
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise ProfileError(f"{path}: {key} must be {getattr(kind, '__name__', kind)}, got {value!r}")
        return value

    kind = need("robot_kind", str)
    if kind not in KINDS:
        raise ProfileError(f"{path}: robot_kind {kind!r} unknown; known: {', '.join(KINDS)}")
    state_type, command_type = need("state_type", str), need("command_type", str)
    for key, t in (("state_type", state_type), ("command_type", command_type)):
        if t not in MESSAGE_TYPES:
            raise ProfileError(f"{path}: {key} {t!r} unsupported; supported: {', '.join(sorted(MESSAGE_TYPES))}")
    units = params.get("command_units", "normalized")
    if units not in COMMAND_UNITS:
        raise ProfileError(f"{path}: command_units {units!r} unknown; known: {', '.join(COMMAND_UNITS)}")
    topics = need("topics", dict)
    for key in ("state", "command", "diagnostics", "mode", "control"):
        if not isinstance(topics.get(key), str) or not topics[key].startswith("/"):
            raise ProfileError(f"{path}: topics.{key} must be an absolute topic name like /odom, "
                               f"got {topics.get(key)!r}")
    safety = params.get("safety") or {}
    unknown = set(safety) - SAFETY_KEYS
    if unknown:
        raise ProfileError(f"{path}: safety keys {sorted(unknown)} unknown; known: {sorted(SAFETY_KEYS)}")
    rate = params.get("rate_hz", 0.0)
    if not isinstance(rate, (int, float)) or rate < 0:
        raise ProfileError(f"{path}: rate_hz must be >= 0 (0: the bundle's rate), got {rate!r}")
    imu = params.get("imu_type") or None
    if imu is not None and imu not in MESSAGE_TYPES:
        raise ProfileError(f"{path}: imu_type {imu!r} unsupported")
    if imu and "imu" not in topics:
        raise ProfileError(f"{path}: imu_type set but topics.imu missing")
    return Profile(path=path, name=str(params.get("profile", path.stem)), robot_kind=kind,
                   robot=str(params.get("robot", "") or ""), action_size=int(need("action_size", int)),
                   rate_hz=float(rate), state_type=state_type, command_type=command_type, command_units=units,
                   topics=dict(topics), safety=dict(safety), joint_names=list(params.get("joint_names") or []),
                   imu_type=imu)
