"""rclpy node: a thin shell over robot_ac.runtime (PolicyController + NodeCore).

Why thin: rclpy cannot be installed on the machines that build this project, so everything with logic (decoding,
frame conversion, safety, watchdog, state machine, arming, diagnostics content) lives in robot_ac.runtime and is
tested there; this file only moves ROS messages in and out.

Parameters: ``policy`` (bundle .onnx), ``profile_file`` (launch/<profile>.yaml, the same file passed as
--params-file), ``rate_hz`` (0: profile, then bundle), ``auto_arm`` (arm and start at the first fresh state),
``log_dir`` ("" for none). Interfaces: state subscription (sensor-data QoS: best effort, keep last 1), command
publisher, ``/diagnostics`` (DiagnosticArray, 1 Hz), mode (std_msgs/String, transient local), ``~/arm``
(std_srvs/SetBool: true = arm and start, false = disarm) and the String control topic (arm/start/disarm/reset).
"""

from __future__ import annotations

import importlib
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from std_msgs.msg import String
from std_srvs.srv import SetBool

from robot_ac.policy import load_bundle
from robot_ac.runtime.controller import PolicyController
from robot_ac.runtime.flight_log import FlightLog
from robot_ac.runtime.node_core import NodeCore
from robot_ac.runtime.profiles import load_profile

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                     history=HistoryPolicy.KEEP_LAST)


def message_class(ros_type: str):
    """'nav_msgs/msg/Odometry' -> nav_msgs.msg.Odometry."""
    pkg, _, name = ros_type.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


class PolicyNode(Node):
    def __init__(self) -> None:
        super().__init__("policy_node", automatically_declare_parameters_from_overrides=True)
        param = self._param
        profile = load_profile(param("profile_file", "quadrotor"))
        bundle_path = param("policy", "")
        bundle = load_bundle(bundle_path)
        profile.check_contract(bundle.contract, bundle_path)
        if float(param("rate_hz", 0.0)) > 0:
            profile.rate_hz = float(param("rate_hz", 0.0))
        log_dir = param("log_dir", "")
        self.flight_log = FlightLog(f"{log_dir}/{time.strftime('%Y%m%d-%H%M%S')}").open() if log_dir else None
        controller = PolicyController(bundle, profile.controller_config(), flight_log=self.flight_log,
                                      clock=time.monotonic)
        self.core = NodeCore(controller, profile, auto_arm=bool(param("auto_arm", False)))
        self.profile = profile
        topics = profile.topics
        self.command_class = message_class(profile.command_type)
        self.create_subscription(message_class(profile.state_type), topics["state"],
                                 lambda msg: self.core.on_state(msg, time.monotonic()), qos_profile_sensor_data)
        if profile.imu_type:
            self.create_subscription(message_class(profile.imu_type), topics["imu"], self.core.on_imu,
                                     qos_profile_sensor_data)
        self.create_subscription(String, topics["control"],
                                 lambda msg: self.core.on_control(msg.data, time.monotonic()), 10)
        self.command_pub = self.create_publisher(self.command_class, topics["command"], 1)
        self.offboard_pub = None
        if profile.command_type == "px4_msgs/msg/ActuatorMotors":
            self.offboard_class = message_class("px4_msgs/msg/OffboardControlMode")
            self.offboard_pub = self.create_publisher(self.offboard_class,
                                                      topics.get("offboard_mode", "/fmu/in/offboard_control_mode"),
                                                      qos_profile_sensor_data)
        self.diag_pub = self.create_publisher(DiagnosticArray, topics["diagnostics"], 10)
        self.mode_pub = self.create_publisher(String, topics["mode"], LATCHED)
        self.create_service(SetBool, "~/arm", self._on_arm)
        self.period = controller.period_s
        self.t0 = time.monotonic()
        self.k = 0
        # rcl timers fire at t0 + k * period on the steady clock (absolute deadlines, no drift accumulation)
        self.create_timer(self.period, self._tick)
        self.create_timer(1.0, self._diagnostics)
        self.get_logger().info(f"policy {bundle_path} with profile {profile.name} at {controller.rate_hz:.1f} Hz")

    def _param(self, name: str, default):
        return self.get_parameter(name).value if self.has_parameter(name) else default

    def _on_arm(self, request, response):
        response.success, response.message = self.core.set_armed(bool(request.data), time.monotonic())
        return response

    def _tick(self) -> None:
        self.k += 1
        cmd, values, mode_text = self.core.tick(time.monotonic(), scheduled=self.t0 + self.k * self.period)
        stamp = self.get_clock().now()
        if self.offboard_pub is not None:
            us = stamp.nanoseconds // 1000
            mode = self.offboard_class(timestamp=us)
            for field in ("direct_actuator", "actuator"):  # px4_msgs v1.15 / v1.14 name of the same flag
                if hasattr(mode, field):
                    setattr(mode, field, True)
                    break
            self.offboard_pub.publish(mode)
            self.command_pub.publish(self.command_class(
                timestamp=us, timestamp_sample=us, control=values + [float("nan")] * (12 - len(values))))
        else:
            self.command_pub.publish(self.command_class(data=values))
        if mode_text is not None:
            self.mode_pub.publish(String(data=mode_text))

    def _diagnostics(self) -> None:
        level, message, values = self.core.diagnostic_status()
        status = DiagnosticStatus(level=bytes([level]), name="robot_ac/policy_controller", message=message,
                                  hardware_id=self.profile.name,
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)

    def destroy_node(self) -> None:
        if self.flight_log is not None:
            self.flight_log.close()
        super().destroy_node()


def main(args=None) -> None:
    rclpy.init(args=args)
    node = PolicyNode()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
