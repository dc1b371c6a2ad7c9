"""Transport-independent node logic: decode incoming messages, run the controller per tick, shape outputs.

Why: the rclpy node and the plain-DDS process differ only in how bytes arrive and leave; everything a test must
reach (decoding faults, arming, auto-start, diagnostics content, command values) lives here.
"""

from __future__ import annotations

import logging

from robot_ac.runtime import codecs
from robot_ac.runtime.controller import Command, Mode, PolicyController
from robot_ac.runtime.profiles import Profile
from robot_ac.runtime.state import StateError

LOG = logging.getLogger("robot_ac.runtime")

LEVEL_OK, LEVEL_WARN, LEVEL_ERROR = 0, 1, 2


class NodeCore:
    """Holds the latest decoded state; ``tick(now, scheduled)`` returns the command to publish."""

    def __init__(self, controller: PolicyController, profile: Profile, auto_arm: bool = False) -> None:
        self.controller = controller
        self.profile = profile
        self.auto_arm = auto_arm
        self.latest = None
        self._imu = None
        self.received = 0
        self.rejected = 0
        self._last_mode: Mode | None = None
        self._tried = -1

    # ------------------------------------------------------------------------------------------------ inputs
    def on_state(self, msg, now: float) -> None:
        """A state message arrived (``now`` on the controller's clock); a malformed one is a fault."""
        self.received += 1
        try:
            t = self.profile.state_type
            if t == "nav_msgs/msg/Odometry":
                state = codecs.odometry_to_state(msg, now)
            elif t == "px4_msgs/msg/VehicleOdometry":
                state = codecs.px4_odometry_to_state(msg, now)
            elif t == "sensor_msgs/msg/JointState":
                state = codecs.joint_state_to_state(msg, self.profile.joint_names, now)
                if self.profile.imu_type:
                    if self._imu is None:
                        raise StateError("no IMU message received yet")
                    codecs.attach_imu(state, self._imu)
            else:
                raise StateError(f"state type {t} has no decoder")
        except (StateError, ValueError, TypeError, AttributeError) as err:
            self.rejected += 1
            self.controller.report_fault(f"bad {self.profile.state_type} message: {err}", now)
            return
        self.latest = state

    def on_imu(self, msg) -> None:
        self._imu = msg

    def on_control(self, text: str, now: float) -> tuple[bool, str]:
        ok, message = self.controller.command(text, now)
        LOG.info("control %r: %s", text, message)
        return ok, message

    def set_armed(self, armed: bool, now: float) -> tuple[bool, str]:
        """std_srvs/SetBool semantics: true = arm and start, false = disarm."""
        if not armed:
            return self.controller.disarm(now)
        ok, message = self.controller.arm(now)
        if ok:
            ok, message = self.controller.start(now)
        return ok, message

    # ----------------------------------------------------------------------------------------------- per tick
    def tick(self, now: float, scheduled: float | None = None) -> tuple[Command, list[float], str | None]:
        """Step the controller; return (command, message values, new mode text or None if unchanged)."""
        c = self.controller
        if self.auto_arm and c.mode is Mode.INACTIVE and self.latest is not None and self.received != self._tried:
            self._tried = self.received  # one attempt per new state message, not one rejection per tick
            if c.arm(now, self.latest)[0] and c.start(now)[0]:
                self.auto_arm = False
        cmd = c.step(self.latest, now, scheduled)
        values = codecs.command_values(self.profile.command_units, cmd.action, cmd.physical, c.low, c.high)
        changed = None
        if cmd.mode is not self._last_mode:
            self._last_mode = cmd.mode
            changed = f"{cmd.mode.value}: {cmd.reason}"
        return cmd, values, changed

    def diagnostic_status(self) -> tuple[int, str, dict[str, str]]:
        """(level, message, key/values) for a diagnostic_msgs/DiagnosticStatus."""
        d = self.controller.diagnostics()
        mode = d["mode"]
        level = LEVEL_OK if mode == "running" else LEVEL_ERROR if mode == "safe" else LEVEL_WARN
        d["state_messages"], d["state_rejected"] = self.received, self.rejected
        values = {k: (f"{v:.3f}" if isinstance(v, float) else str(v)) for k, v in d.items()}
        return level, f"{mode}: {d['reason']}", values
