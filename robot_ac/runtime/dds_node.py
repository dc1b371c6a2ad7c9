"""The policy controller as a plain Cyclone DDS process speaking the ROS 2 wire format (no ROS installed).

Why a loop of its own: rclpy is not installable here, but a ROS 2 graph only sees DDS topics ``rt/<name>`` with
ROS-named types, so this process is indistinguishable from a ROS 2 node to its peers. The loop runs on absolute
deadlines (``t0 + k * period``; a late tick does not shift later ones) and, between deadlines, waits on a DDS
WaitSet so each state sample is stamped on arrival (the watchdog measures real staleness).

Topics (names from the profile): state in (best-effort, keep-last-1, as ROS 2 sensor-data QoS), command out
(reliable, keep-last-1, matches reliable and best-effort readers), diagnostics out (DiagnosticArray at 1 Hz),
mode out (std_msgs/String, reliable + transient-local: late joiners get the current mode), control in
(std_msgs/String "arm" / "start" / "disarm" / "reset": the plain-DDS stand-in for the rclpy node's SetBool
service).
"""

from __future__ import annotations

import logging
import os
import resource
import time

from cyclonedds.core import InstanceState, Policy, Qos, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.domain import DomainParticipant
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic

from robot_ac.runtime import ros2_types as rt
from robot_ac.runtime.node_core import NodeCore

LOG = logging.getLogger("robot_ac.runtime")

SENSOR_QOS = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(1))
COMMAND_QOS = Qos(Policy.Reliability.Reliable(max_blocking_time=0), Policy.History.KeepLast(1))
RELIABLE_QOS = Qos(Policy.Reliability.Reliable(max_blocking_time=10_000_000), Policy.History.KeepLast(10))
LATCHED_QOS = Qos(Policy.Reliability.Reliable(max_blocking_time=10_000_000), Policy.History.KeepLast(1),
                  Policy.Durability.TransientLocal)
_ANY = SampleState.Any | ViewState.Any | InstanceState.Any


def _stamp(now_wall: float) -> rt.Time:
    sec = int(now_wall)
    return rt.Time(sec=sec, nanosec=int((now_wall - sec) * 1e9))


class DdsPolicyNode:
    """Wire ``NodeCore`` to Cyclone DDS; ``run(duration_s)`` until the duration ends or ``stop()``."""

    def __init__(self, core: NodeCore, domain_id: int = 0, clock=time.monotonic) -> None:
        self.core = core
        self.profile = core.profile
        self.clock = clock
        topics = self.profile.topics
        self.participant = DomainParticipant(domain_id)
        dp = self.participant
        state_type = rt.MESSAGE_TYPES[self.profile.state_type]
        command_type = rt.MESSAGE_TYPES[self.profile.command_type]
        self.state_reader = DataReader(dp, Topic(dp, rt.dds_topic(topics["state"]), state_type), qos=SENSOR_QOS)
        self.control_reader = DataReader(dp, Topic(dp, rt.dds_topic(topics["control"]), rt.String),
                                         qos=RELIABLE_QOS)
        self.command_writer = DataWriter(dp, Topic(dp, rt.dds_topic(topics["command"]), command_type),
                                         qos=COMMAND_QOS)
        self.diag_writer = DataWriter(dp, Topic(dp, rt.dds_topic(topics["diagnostics"]), rt.DiagnosticArray),
                                      qos=RELIABLE_QOS)
        self.mode_writer = DataWriter(dp, Topic(dp, rt.dds_topic(topics["mode"]), rt.String), qos=LATCHED_QOS)
        self.imu_reader = None
        self.offboard_writer = None
        if self.profile.imu_type:
            self.imu_reader = DataReader(dp, Topic(dp, rt.dds_topic(topics["imu"]),
                                                   rt.MESSAGE_TYPES[self.profile.imu_type]), qos=SENSOR_QOS)
        if self.profile.command_type == "px4_msgs/msg/ActuatorMotors":
            self.offboard_writer = DataWriter(
                dp, Topic(dp, rt.dds_topic(topics.get("offboard_mode", "/fmu/in/offboard_control_mode")),
                          rt.OffboardControlMode), qos=COMMAND_QOS)
        self._command_type = command_type
        self._state_type = state_type
        self._imu_type = rt.MESSAGE_TYPES[self.profile.imu_type] if self.profile.imu_type else type(None)
        self.waitset = WaitSet(dp)
        self._conditions = []
        for reader in (self.state_reader, self.control_reader, self.imu_reader):
            if reader is not None:
                cond = ReadCondition(reader, _ANY)
                self.waitset.attach(cond)
                self._conditions.append(cond)
        self._stop = False
        self.cpu_seconds = 0.0
        self.wall_seconds = 0.0

    def stop(self) -> None:
        self._stop = True

    # ------------------------------------------------------------------------------------------------ inputs
    def _drain(self) -> None:
        # take() also returns InvalidSample entries (a writer went away): only real messages count.
        for sample in self.control_reader.take(N=16):
            if isinstance(sample, rt.String):
                self.core.on_control(sample.data, self.clock())
        if self.imu_reader is not None:
            samples = [s for s in self.imu_reader.take(N=4) if isinstance(s, self._imu_type)]
            if samples:
                self.core.on_imu(samples[-1])
        samples = [s for s in self.state_reader.take(N=4) if isinstance(s, self._state_type)]
        if samples:
            self.core.on_state(samples[-1], self.clock())

    def _wait_until(self, deadline: float) -> None:
        while not self._stop:
            remaining = deadline - self.clock()
            if remaining <= 0:
                return
            if self.waitset.wait(int(remaining * 1e9)) > 0:
                self._drain()

    # ----------------------------------------------------------------------------------------------- outputs
    def _publish(self, values: list[float], mode_text: str | None) -> None:
        if self._command_type is rt.ActuatorMotors:
            now_us = int(time.time() * 1e6)
            control = values + [float("nan")] * (12 - len(values))  # NaN: motor unused (px4_msgs ActuatorMotors)
            self.offboard_writer.write(rt.OffboardControlMode(timestamp=now_us, actuator=True))
            self.command_writer.write(rt.ActuatorMotors(timestamp=now_us, timestamp_sample=now_us, control=control))
        else:
            self.command_writer.write(self._command_type(data=values))
        if mode_text is not None:
            self.mode_writer.write(rt.String(data=mode_text))

    def publish_diagnostics(self) -> None:
        level, message, values = self.core.diagnostic_status()
        status = rt.DiagnosticStatus(level=level, name="robot_ac/policy_controller", message=message,
                                     hardware_id=self.profile.name,
                                     values=[rt.KeyValue(key=k, value=v) for k, v in values.items()])
        self.diag_writer.write(rt.DiagnosticArray(header=rt.Header(stamp=_stamp(time.time())), status=[status]))

    # -------------------------------------------------------------------------------------------------- loop
    def run(self, duration_s: float = 0.0, diagnostics_period_s: float = 1.0) -> dict:
        """Control loop on absolute deadlines; returns the controller's diagnostics at the end."""
        period = self.core.controller.period_s
        t0 = self.clock()
        cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        k, next_diag = 1, t0
        try:
            while not self._stop:
                deadline = t0 + k * period
                if duration_s and deadline - t0 > duration_s:
                    break
                self._wait_until(deadline)
                if self._stop:
                    break
                now = self.clock()
                self._drain()
                cmd, values, mode_text = self.core.tick(now, scheduled=deadline)
                self._publish(values, mode_text)
                if now >= next_diag:
                    self.publish_diagnostics()
                    next_diag += diagnostics_period_s
                k += 1
                behind = int((self.clock() - t0) / period) + 1
                if behind > k:  # ticks that passed while we were late are skipped (and counted), not bunched up
                    self.core.controller.timing.record_skipped(behind - k)
                    k = behind
        finally:
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            self.cpu_seconds = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
            self.wall_seconds = time.perf_counter() - wall0
        self.publish_diagnostics()
        out = self.core.controller.diagnostics()
        out["cpu_percent"] = 100.0 * self.cpu_seconds / max(self.wall_seconds, 1e-9)
        out["wall_s"] = self.wall_seconds
        out["state_messages"], out["state_rejected"] = self.core.received, self.core.rejected
        out["pid"] = os.getpid()
        return out

    def close(self) -> None:
        for cond in self._conditions:
            self.waitset.detach(cond)
        self._conditions.clear()
