"""Message <-> typed state/command conversion, including frame conversion.

Why duck-typed: rclpy messages and the ``cyclonedds`` structs in ros2_types have the same attribute names, so
the rclpy node and the DDS process share these functions (and their tests). Conventions:
- nav_msgs/Odometry: pose in the world frame (``header.frame_id``), twist in the body frame (``child_frame_id``);
  the contract wants world linear velocity, so v_world = R v_body.
- px4_msgs/VehicleOdometry: NED world / FRD body (PX4 "Frames" docs); converted to ENU world / FLU body.
"""

from __future__ import annotations

import numpy as np

from robot_ac.runtime.state import JointState, QuadrotorState, StateError, joint_state_from_names, quat_to_rotmat

NED_TO_ENU = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
FLU_TO_FRD = np.diag([1.0, -1.0, -1.0])


def _xyz(v) -> np.ndarray:
    return np.array([v.x, v.y, v.z], dtype=np.float64)


def odometry_to_state(msg, stamp: float) -> QuadrotorState:
    """nav_msgs/Odometry -> QuadrotorState (world position/velocity, body rates)."""
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    quat = np.array([q.w, q.x, q.y, q.z], dtype=np.float64)
    if not np.isfinite(quat).all():
        raise StateError(f"odometry orientation not finite: {quat.tolist()}")
    rot = quat_to_rotmat(quat)
    return QuadrotorState(position=_xyz(p), linear_velocity=rot @ _xyz(msg.twist.twist.linear),
                          angular_velocity=_xyz(msg.twist.twist.angular), stamp=stamp, rotation=rot)


def state_to_odometry(msg, position, quaternion_wxyz, velocity_world, angular_velocity_body) -> None:
    """Fill an Odometry message (simulator side): twist in the body frame, as nav_msgs/Odometry defines."""
    q = np.asarray(quaternion_wxyz, dtype=np.float64)
    rot = quat_to_rotmat(q)
    v_body = rot.T @ np.asarray(velocity_world, dtype=np.float64)
    pose, twist = msg.pose.pose, msg.twist.twist
    pose.position.x, pose.position.y, pose.position.z = (float(x) for x in position)
    pose.orientation.w, pose.orientation.x, pose.orientation.y, pose.orientation.z = (float(x) for x in q)
    twist.linear.x, twist.linear.y, twist.linear.z = (float(x) for x in v_body)
    twist.angular.x, twist.angular.y, twist.angular.z = (float(x) for x in angular_velocity_body)


def px4_odometry_to_state(msg, stamp: float) -> QuadrotorState:
    """px4_msgs/VehicleOdometry (NED/FRD) -> QuadrotorState (ENU world, FLU body)."""
    if int(msg.pose_frame) != 1:
        raise StateError(f"VehicleOdometry pose_frame {msg.pose_frame} unsupported (1 = NED)")
    if int(msg.velocity_frame) != 1:
        raise StateError(f"VehicleOdometry velocity_frame {msg.velocity_frame} unsupported (1 = NED)")
    q = np.asarray(msg.q, dtype=np.float64)
    if not np.isfinite(q).all():
        raise StateError(f"VehicleOdometry q not finite: {q.tolist()}")
    r_ned_frd = quat_to_rotmat(q)
    rot = NED_TO_ENU @ r_ned_frd @ FLU_TO_FRD
    return QuadrotorState(position=NED_TO_ENU @ np.asarray(msg.position, dtype=np.float64),
                          linear_velocity=NED_TO_ENU @ np.asarray(msg.velocity, dtype=np.float64),
                          angular_velocity=FLU_TO_FRD @ np.asarray(msg.angular_velocity, dtype=np.float64),
                          stamp=stamp, rotation=rot)


def joint_state_to_state(msg, joint_names: list[str], stamp: float) -> JointState:
    """sensor_msgs/JointState -> JointState in the profile's joint order (StateError on wrong sizes/names)."""
    return joint_state_from_names(list(msg.name), list(msg.position), list(msg.velocity), joint_names, stamp,
                                  list(msg.effort) if len(msg.effort) else None)


def attach_imu(state: JointState, imu) -> JointState:
    q = imu.orientation
    state.imu_quaternion_wxyz = np.array([q.w, q.x, q.y, q.z], dtype=np.float64)
    state.imu_angular_velocity = _xyz(imu.angular_velocity)
    return state


def command_values(units: str, action: np.ndarray, physical: np.ndarray, low: np.ndarray,
                   high: np.ndarray) -> list[float]:
    """The numbers a command message carries: normalized, physical or [0, 1] (PX4 ActuatorMotors)."""
    if units == "normalized":
        values = action
    elif units == "physical":
        values = physical
    elif units == "unit_interval":
        values = (action - low) / (high - low)
    else:
        raise ValueError(f"command units {units!r} unknown")
    return [float(x) for x in values]
