"""Our cyclonedds structs put the same bytes on the wire as ROS 2 does: each message serialized by the IdlStruct
equals the CDR that rosbags' ROS 2 Humble type store (built from the real .msg definitions) produces."""

from __future__ import annotations

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from robot_ac.runtime import ros2_types as rt

TS = get_typestore(Stores.ROS2_HUMBLE)
T = TS.types


def _header(ours: bool):
    if ours:
        return rt.Header(stamp=rt.Time(sec=12, nanosec=345), frame_id="world")
    return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=12, nanosec=345), frame_id="world")


def _vec(ours: bool, cls: str, *v):
    return (getattr(rt, cls) if ours else T[f"geometry_msgs/msg/{cls}"])(*v)


def odometry(ours: bool):
    cov = np.arange(36, dtype=np.float64)
    pose = (rt.Pose if ours else T["geometry_msgs/msg/Pose"])(
        _vec(ours, "Point", 1.0, 2.0, 3.0), _vec(ours, "Quaternion", 0.1, 0.2, 0.3, 0.9))
    twist = (rt.Twist if ours else T["geometry_msgs/msg/Twist"])(
        _vec(ours, "Vector3", 0.5, -0.5, 0.25), _vec(ours, "Vector3", 0.01, 0.02, 0.03))
    if ours:
        return rt.Odometry(_header(True), "base_link", rt.PoseWithCovariance(pose, list(cov)),
                           rt.TwistWithCovariance(twist, list(-cov)))
    return T["nav_msgs/msg/Odometry"](_header(False), "base_link",
                                      T["geometry_msgs/msg/PoseWithCovariance"](pose, cov),
                                      T["geometry_msgs/msg/TwistWithCovariance"](twist, -cov))


def diagnostics(ours: bool):
    if ours:
        return rt.DiagnosticArray(_header(True), [rt.DiagnosticStatus(
            2, "robot_ac/policy_controller", "safe: state stale", "quadrotor",
            [rt.KeyValue("mode", "safe"), rt.KeyValue("compute_p99_us", "120.5")])])
    return T["diagnostic_msgs/msg/DiagnosticArray"](_header(False), [T["diagnostic_msgs/msg/DiagnosticStatus"](
        2, "robot_ac/policy_controller", "safe: state stale", "quadrotor",
        [T["diagnostic_msgs/msg/KeyValue"]("mode", "safe"), T["diagnostic_msgs/msg/KeyValue"]("compute_p99_us",
                                                                                              "120.5")])])


def joint_state(ours: bool):
    names, pos = ["joint1", "joint2", "joint3"], [0.1, -0.2, 0.3]
    if ours:
        return rt.JointStateMsg(_header(True), names, pos, [1.0, 2.0, 3.0], [])
    return T["sensor_msgs/msg/JointState"](_header(False), names, np.array(pos), np.array([1.0, 2.0, 3.0]),
                                           np.array([], dtype=np.float64))


def imu(ours: bool):
    c9 = np.linspace(0, 1, 9)
    if ours:
        return rt.Imu(_header(True), rt.Quaternion(0.0, 0.0, 0.0, 1.0), list(c9), rt.Vector3(1, 2, 3), list(c9),
                      rt.Vector3(0, 0, 9.81), list(c9))
    return T["sensor_msgs/msg/Imu"](_header(False), _vec(False, "Quaternion", 0.0, 0.0, 0.0, 1.0), c9,
                                    _vec(False, "Vector3", 1.0, 2.0, 3.0), c9, _vec(False, "Vector3", 0.0, 0.0, 9.81),
                                    c9)


def multiarray(ours: bool, kind: str = "Float64"):
    data = [0.5, -1.0, 2.25]
    dims = [("motors", 3, 3)]
    if ours:
        cls = getattr(rt, f"{kind}MultiArray")
        return cls(rt.MultiArrayLayout([rt.MultiArrayDimension(*d) for d in dims], 0), data)
    dtype = np.float64 if kind == "Float64" else np.float32
    return T[f"std_msgs/msg/{kind}MultiArray"](T["std_msgs/msg/MultiArrayLayout"](
        [T["std_msgs/msg/MultiArrayDimension"](*d) for d in dims], 0), np.array(data, dtype=dtype))


CASES = {
    "nav_msgs/msg/Odometry": odometry,
    "diagnostic_msgs/msg/DiagnosticArray": diagnostics,
    "sensor_msgs/msg/JointState": joint_state,
    "sensor_msgs/msg/Imu": imu,
    "std_msgs/msg/Float64MultiArray": multiarray,
    "std_msgs/msg/Float32MultiArray": lambda ours: multiarray(ours, "Float32"),
    "std_msgs/msg/String": lambda ours: rt.String("arm") if ours else T["std_msgs/msg/String"]("arm"),
}


@pytest.mark.parametrize("ros_type", sorted(CASES))
def test_same_bytes_as_ros2(ros_type):
    ours = CASES[ros_type](True).serialize()
    reference = bytes(TS.serialize_cdr(CASES[ros_type](False), ros_type))
    assert ours[:4] == b"\x00\x01\x00\x00"  # CDR little endian (XCDR1), as rmw_cyclonedds writes
    assert ours == reference


def test_every_ros_type_has_a_wire_check():
    ros = {k for k in rt.MESSAGE_TYPES if not k.startswith("px4_msgs/")}
    assert ros == set(CASES)
