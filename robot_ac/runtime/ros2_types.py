"""ROS 2 message types on the DDS wire, declared for the PyPI ``cyclonedds`` package (no ROS installed).

Why: ``robot-ac run --transport dds`` must interoperate with ROS 2 nodes using a DDS middleware. The ROS 2 wire
rule (checked against a real ROS 2 Humble + rmw_cyclonedds_cpp, shared/reference/ros2-wire.md): ROS topic ``/x``
is DDS topic ``rt/x``; ROS type ``pkg/msg/T`` is ``pkg::msg::dds_::T_``; fields in the ``.msg`` order with ROS 2
IDL types (``builtin_interfaces/Time`` = int32 sec, uint32 nanosec; ``string`` unbounded; ``T[]`` a sequence;
``T[N]`` an array; ``byte`` an octet). Field layouts follow the ROS 2 Humble message definitions (common_interfaces,
px4_msgs for PX4 v1.14).
"""


from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import array, byte, float32, float64, int8, int32, sequence, uint8, uint16, uint32, uint64


def dds_topic(ros_topic: str) -> str:
    """ROS 2 topic name -> DDS topic name (``/odom`` -> ``rt/odom``)."""
    return "rt/" + ros_topic.lstrip("/")


@dataclass
class Time(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: int32 = 0
    nanosec: uint32 = 0


@dataclass
class Header(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Time = field(default_factory=Time)
    frame_id: str = ""


@dataclass
class String(IdlStruct, typename="std_msgs::msg::dds_::String_"):
    data: str = ""


@dataclass
class Point(IdlStruct, typename="geometry_msgs::msg::dds_::Point_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@dataclass
class Vector3(IdlStruct, typename="geometry_msgs::msg::dds_::Vector3_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@dataclass
class Quaternion(IdlStruct, typename="geometry_msgs::msg::dds_::Quaternion_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0
    w: float64 = 1.0


@dataclass
class Pose(IdlStruct, typename="geometry_msgs::msg::dds_::Pose_"):
    position: Point = field(default_factory=Point)
    orientation: Quaternion = field(default_factory=Quaternion)


@dataclass
class PoseWithCovariance(IdlStruct, typename="geometry_msgs::msg::dds_::PoseWithCovariance_"):
    pose: Pose = field(default_factory=Pose)
    covariance: array[float64, 36] = field(default_factory=lambda: [0.0] * 36)


@dataclass
class Twist(IdlStruct, typename="geometry_msgs::msg::dds_::Twist_"):
    linear: Vector3 = field(default_factory=Vector3)
    angular: Vector3 = field(default_factory=Vector3)


@dataclass
class TwistWithCovariance(IdlStruct, typename="geometry_msgs::msg::dds_::TwistWithCovariance_"):
    twist: Twist = field(default_factory=Twist)
    covariance: array[float64, 36] = field(default_factory=lambda: [0.0] * 36)


@dataclass
class Odometry(IdlStruct, typename="nav_msgs::msg::dds_::Odometry_"):
    """Pose in ``header.frame_id`` (world); twist in ``child_frame_id`` (body), per nav_msgs/Odometry.msg."""

    header: Header = field(default_factory=Header)
    child_frame_id: str = ""
    pose: PoseWithCovariance = field(default_factory=PoseWithCovariance)
    twist: TwistWithCovariance = field(default_factory=TwistWithCovariance)


@dataclass
class MultiArrayDimension(IdlStruct, typename="std_msgs::msg::dds_::MultiArrayDimension_"):
    label: str = ""
    size: uint32 = 0
    stride: uint32 = 0


@dataclass
class MultiArrayLayout(IdlStruct, typename="std_msgs::msg::dds_::MultiArrayLayout_"):
    dim: sequence[MultiArrayDimension] = field(default_factory=list)
    data_offset: uint32 = 0


@dataclass
class Float32MultiArray(IdlStruct, typename="std_msgs::msg::dds_::Float32MultiArray_"):
    layout: MultiArrayLayout = field(default_factory=MultiArrayLayout)
    data: sequence[float32] = field(default_factory=list)


@dataclass
class Float64MultiArray(IdlStruct, typename="std_msgs::msg::dds_::Float64MultiArray_"):
    layout: MultiArrayLayout = field(default_factory=MultiArrayLayout)
    data: sequence[float64] = field(default_factory=list)


@dataclass
class KeyValue(IdlStruct, typename="diagnostic_msgs::msg::dds_::KeyValue_"):
    key: str = ""
    value: str = ""


@dataclass
class DiagnosticStatus(IdlStruct, typename="diagnostic_msgs::msg::dds_::DiagnosticStatus_"):
    level: byte = 0   # OK=0, WARN=1, ERROR=2, STALE=3
    name: str = ""
    message: str = ""
    hardware_id: str = ""
    values: sequence[KeyValue] = field(default_factory=list)


@dataclass
class DiagnosticArray(IdlStruct, typename="diagnostic_msgs::msg::dds_::DiagnosticArray_"):
    header: Header = field(default_factory=Header)
    status: sequence[DiagnosticStatus] = field(default_factory=list)


@dataclass
class JointStateMsg(IdlStruct, typename="sensor_msgs::msg::dds_::JointState_"):
    header: Header = field(default_factory=Header)
    name: sequence[str] = field(default_factory=list)
    position: sequence[float64] = field(default_factory=list)
    velocity: sequence[float64] = field(default_factory=list)
    effort: sequence[float64] = field(default_factory=list)


@dataclass
class Imu(IdlStruct, typename="sensor_msgs::msg::dds_::Imu_"):
    header: Header = field(default_factory=Header)
    orientation: Quaternion = field(default_factory=Quaternion)
    orientation_covariance: array[float64, 9] = field(default_factory=lambda: [0.0] * 9)
    angular_velocity: Vector3 = field(default_factory=Vector3)
    angular_velocity_covariance: array[float64, 9] = field(default_factory=lambda: [0.0] * 9)
    linear_acceleration: Vector3 = field(default_factory=Vector3)
    linear_acceleration_covariance: array[float64, 9] = field(default_factory=lambda: [0.0] * 9)


# PX4 v1.14 uORB messages as px4_msgs exposes them over uXRCE-DDS (px4_msgs/msg/*.msg).
@dataclass
class VehicleOdometry(IdlStruct, typename="px4_msgs::msg::dds_::VehicleOdometry_"):
    """NED world frame (pose_frame 1), FRD body frame; velocity_frame 1 = NED world."""

    timestamp: uint64 = 0
    timestamp_sample: uint64 = 0
    pose_frame: uint8 = 1
    position: array[float32, 3] = field(default_factory=lambda: [0.0] * 3)
    q: array[float32, 4] = field(default_factory=lambda: [1.0, 0.0, 0.0, 0.0])   # w, x, y, z (FRD -> NED)
    velocity_frame: uint8 = 1
    velocity: array[float32, 3] = field(default_factory=lambda: [0.0] * 3)
    angular_velocity: array[float32, 3] = field(default_factory=lambda: [0.0] * 3)
    position_variance: array[float32, 3] = field(default_factory=lambda: [0.0] * 3)
    orientation_variance: array[float32, 3] = field(default_factory=lambda: [0.0] * 3)
    velocity_variance: array[float32, 3] = field(default_factory=lambda: [0.0] * 3)
    reset_counter: uint8 = 0
    quality: int8 = 0


@dataclass
class OffboardControlMode(IdlStruct, typename="px4_msgs::msg::dds_::OffboardControlMode_"):
    timestamp: uint64 = 0
    position: bool = False
    velocity: bool = False
    acceleration: bool = False
    attitude: bool = False
    body_rate: bool = False
    actuator: bool = False


@dataclass
class ActuatorMotors(IdlStruct, typename="px4_msgs::msg::dds_::ActuatorMotors_"):
    """``control``: motor commands in [0, 1] (NaN = disarmed/off for that motor), up to 12 motors."""

    timestamp: uint64 = 0
    timestamp_sample: uint64 = 0
    reversible_flags: uint16 = 0
    control: array[float32, 12] = field(default_factory=lambda: [0.0] * 12)


MESSAGE_TYPES = {
    "nav_msgs/msg/Odometry": Odometry,
    "std_msgs/msg/Float32MultiArray": Float32MultiArray,
    "std_msgs/msg/Float64MultiArray": Float64MultiArray,
    "std_msgs/msg/String": String,
    "diagnostic_msgs/msg/DiagnosticArray": DiagnosticArray,
    "sensor_msgs/msg/JointState": JointStateMsg,
    "sensor_msgs/msg/Imu": Imu,
    "px4_msgs/msg/VehicleOdometry": VehicleOdometry,
    "px4_msgs/msg/OffboardControlMode": OffboardControlMode,
    "px4_msgs/msg/ActuatorMotors": ActuatorMotors,
}
