"""PolicyController: bundle + observation builder + safety filter + watchdog + state machine + timing.

Why one class with no ROS in it: the ROS 2 node, the ROS-free DDS process, the HIL harness and the simulator all
call ``step(state, now)`` on this same object, so what is tested is what flies. It never raises out of ``step``
and never returns a non-finite or out-of-limit command: any fault (stale state, malformed or non-finite state,
envelope violation, non-finite policy output, internal error) moves it to ``safe``.

State machine: ``inactive -> armed -> running -> safe``; ``disarm`` goes back to ``inactive`` from any mode and
``reset`` leaves ``safe`` for ``inactive``. Every transition is logged with its reason (python logging, the
``transitions`` list and the flight log topic ``/safety_state``).

Safe behaviour per robot kind (what the actuators get whenever the mode is not ``running``):
- quadrotor: motors off (normalized -1, rpm_min); with ``motors_off_after_s`` > 0 the contract's initial (hover)
  action is held that long first, as the Crazyflie commander keeps thrust briefly before shutting the motors off
  when setpoints stop (crazyflie-firmware src/modules/src/commander.c, COMMANDER_WDT_TIMEOUT_SHUTDOWN).
- arm: hold the last commanded position (or the measured one if nothing was commanded yet).
- humanoid: damping mode; position targets follow the measured joint positions (no stiffness towards any pose).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from robot_ac.policy import Bundle, load_bundle
from robot_ac.runtime.observation import ContractError, ObservationBuilder
from robot_ac.runtime.safety import SafetyFilter, SafetyLimits, Watchdog
from robot_ac.runtime.state import JointState, StateError
from robot_ac.runtime.timing import TimingStats

LOG = logging.getLogger("robot_ac.runtime")
KINDS = ("quadrotor", "arm", "humanoid")


class Mode(str, Enum):
    INACTIVE = "inactive"
    ARMED = "armed"
    RUNNING = "running"
    SAFE = "safe"


@dataclass
class Command:
    """One control step's output: normalized and physical action (always finite, within limits)."""

    action: np.ndarray
    physical: np.ndarray
    mode: Mode
    reason: str


@dataclass
class ControllerConfig:
    """Robot-kind and safety settings (from a profile). ``None`` disables a check."""

    kind: str = "quadrotor"
    rate_hz: float | None = None                # default: the contract's control rate
    max_state_age_periods: float = 3.0
    max_action_rate: float | None = None        # normalized units per step
    attitude_limit_deg: float | None = 60.0
    geofence_min: list[float] | None = None
    geofence_max: list[float] | None = None
    joint_position_min: list[float] | None = None
    joint_position_max: list[float] | None = None
    joint_velocity_max: list[float] | None = None
    motors_off_after_s: float = 0.0
    extra: dict = field(default_factory=dict)


@dataclass
class Transition:
    t: float
    source: Mode
    target: Mode
    reason: str


class PolicyController:
    """Run a policy bundle safely in real time; see the module docstring for modes and safe behaviour."""

    def __init__(self, bundle: Bundle | str | Path, config: ControllerConfig | None = None,
                 flight_log=None, clock=time.monotonic) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.contract = self.bundle.contract
        self.config = config or ControllerConfig()
        if self.config.kind not in KINDS:
            raise ContractError(f"robot kind {self.config.kind!r} unknown; known: {KINDS}")
        self.rate_hz = float(self.config.rate_hz or self.contract["control_rate_hz"])
        self.period_s = 1.0 / self.rate_hz
        self.builder = ObservationBuilder(self.contract)
        self.n_act = self.builder.action_size
        low, high, plow, phigh = (np.empty(self.n_act) for _ in range(4))
        i = 0
        for f in self.contract["action"]["fields"]:
            sl = slice(i, i + int(f["size"]))
            low[sl], high[sl] = f.get("low", -1.0), f.get("high", 1.0)
            plow[sl], phigh[sl] = f.get("physical_low", low[sl]), f.get("physical_high", high[sl])
            i += int(f["size"])
        self.low, self.high, self.physical_low, self.physical_high = low, high, plow, phigh
        c = self.config
        arr = (lambda v: None if v is None else np.asarray(v, dtype=np.float64))  # noqa: E731
        self.limits = SafetyLimits(
            action_low=low, action_high=high, max_action_rate=c.max_action_rate,
            attitude_limit_deg=c.attitude_limit_deg if c.kind == "quadrotor" else None,
            geofence_min=arr(c.geofence_min), geofence_max=arr(c.geofence_max),
            joint_position_min=arr(c.joint_position_min), joint_position_max=arr(c.joint_position_max),
            joint_velocity_max=arr(c.joint_velocity_max),
            max_state_age_s=c.max_state_age_periods * self.period_s)
        self.safety = SafetyFilter(self.limits)
        self.watchdog = Watchdog(self.limits.max_state_age_s)
        self.timing = TimingStats(self.period_s)
        self.flight_log = flight_log
        self.clock = clock
        self._perf = time.perf_counter

        import onnxruntime as ort

        self.session = self.bundle.session(threads=1)
        self._out = np.zeros((1, self.n_act), dtype=np.float32)
        self._io = self.session.io_binding()
        self._io.bind_ortvalue_input("obs", ort.OrtValue.ortvalue_from_numpy(self.builder.buffer))
        self._io.bind_ortvalue_output("action", ort.OrtValue.ortvalue_from_numpy(self._out))
        self._action = np.empty(self.n_act)
        self._last_action: np.ndarray | None = None
        self._last_state = None
        self._safe_since = 0.0
        self.mode = Mode.INACTIVE
        self.reason = "created"
        self.transitions: list[Transition] = []
        self.faults = 0
        self._log_transition(Transition(clock(), Mode.INACTIVE, Mode.INACTIVE, "created"))

    # --------------------------------------------------------------------------------------- operator commands
    def arm(self, now: float | None = None, state=None) -> tuple[bool, str]:
        """inactive -> armed, only with a fresh, valid state; otherwise rejected (mode unchanged, logged)."""
        now = self.clock() if now is None else now
        if state is not None:
            self._last_state = state
        if self.mode is not Mode.INACTIVE:
            return self._reject("arm", f"mode is {self.mode.value}" +
                                (" (reset first)" if self.mode is Mode.SAFE else ""), now)
        problem = self._state_problem(self._last_state, now)
        if problem:
            return self._reject("arm", problem, now)
        self._transition(Mode.ARMED, "armed by operator", now)
        return True, "armed"

    def start(self, now: float | None = None) -> tuple[bool, str]:
        """armed -> running: the policy takes over from the contract's initial action history."""
        now = self.clock() if now is None else now
        if self.mode is not Mode.ARMED:
            return self._reject("start", f"not armed (mode is {self.mode.value})", now)
        self.builder.reset()
        self._last_action = None
        self.timing.restart_period()
        self._transition(Mode.RUNNING, "started by operator", now)
        return True, "running"

    def disarm(self, now: float | None = None, reason: str = "disarmed by operator") -> tuple[bool, str]:
        now = self.clock() if now is None else now
        if self.mode is Mode.INACTIVE:
            return True, "already inactive"
        self._transition(Mode.INACTIVE, reason, now)
        return True, "inactive"

    def reset(self, now: float | None = None) -> tuple[bool, str]:
        """safe -> inactive after the operator has looked at the reason."""
        now = self.clock() if now is None else now
        if self.mode is not Mode.SAFE:
            return self._reject("reset", f"not in safe mode (mode is {self.mode.value})", now)
        self._transition(Mode.INACTIVE, "reset by operator", now)
        return True, "inactive"

    def report_fault(self, reason: str, now: float | None = None) -> None:
        """A transport-level fault (undecodable or malformed message): safe mode if armed/running, else logged."""
        now = self.clock() if now is None else now
        if self.mode in (Mode.ARMED, Mode.RUNNING):
            self._fault(reason, now)
        else:
            self.faults += 1
            LOG.warning("fault while %s (no mode change): %s", self.mode.value, reason)

    def command(self, name: str, now: float | None = None) -> tuple[bool, str]:
        """Text command from a transport ("arm", "start", "disarm", "reset"); unknown ones are rejected."""
        handler = {"arm": self.arm, "start": self.start, "disarm": self.disarm, "reset": self.reset}.get(
            name.strip().lower())
        if handler is None:
            return self._reject(repr(name), "unknown command (arm, start, disarm, reset)",
                                self.clock() if now is None else now)
        return handler(now)

    # ------------------------------------------------------------------------------------------- control step
    def step(self, state, now: float | None = None, scheduled: float | None = None) -> Command:
        """One control step with the latest state (or None); never raises, never returns a bad command."""
        t0 = self._perf()
        now = self.clock() if now is None else now
        try:
            cmd = self._step(state, now)
        except Exception as err:  # the last line of defence: an internal error is a fault, not a crash
            self.faults += 1
            if self.mode is not Mode.SAFE:
                self._transition(Mode.SAFE, f"internal error: {type(err).__name__}: {err}", now)
            cmd = self._safe_command(now)
        t1 = self._perf()
        self.timing.record(t0, t1, None if scheduled is None else t0 - (now - scheduled))
        if self.flight_log is not None:
            self._log_step(now, cmd, t1 - t0)
        return cmd

    def _step(self, state, now: float) -> Command:
        if state is not None:
            self._last_state = state
        state = self._last_state  # nothing new: the watchdog judges the age of the last one
        if self.mode is not Mode.RUNNING:
            if self.mode is Mode.ARMED:
                problem = self._state_problem(state, now)
                if problem:
                    self._fault(problem, now)
            return self._safe_command(now)
        problem = self._state_problem(state, now)
        if problem:
            self._fault(problem, now)
            return self._safe_command(now)
        try:
            self.builder.build(state)
        except StateError as err:
            self._fault(f"malformed state: {err}", now)
            return self._safe_command(now)
        self.session.run_with_iobinding(self._io)
        previous = self._last_action if self._last_action is not None else self.builder.initial_action
        problem = self.safety.filter(self._out[0], previous, self._action)
        if problem:
            self._fault(problem, now)
            return self._safe_command(now)
        action = self._action.copy()
        self._last_action = action
        self.builder.push_action(action)
        return Command(action, self._to_physical(action), Mode.RUNNING, self.reason)

    # ------------------------------------------------------------------------------------------------ helpers
    def _state_problem(self, state, now: float) -> str | None:
        if state is None:
            return "no state received"
        problem = self.watchdog.check(getattr(state, "stamp", None), now)
        return problem or self.safety.check_state(state)

    def _fault(self, reason: str, now: float) -> None:
        self.faults += 1
        self._transition(Mode.SAFE, reason, now)

    def _to_physical(self, action: np.ndarray) -> np.ndarray:
        frac = (action - self.low) / (self.high - self.low)
        return self.physical_low + frac * (self.physical_high - self.physical_low)

    def _from_physical(self, physical: np.ndarray) -> np.ndarray:
        frac = (physical - self.physical_low) / (self.physical_high - self.physical_low)
        return np.clip(self.low + frac * (self.high - self.low), self.low, self.high)

    def safe_action(self, now: float) -> np.ndarray:
        """The normalized action of the current non-running mode (see module docstring)."""
        kind = self.config.kind
        if kind == "quadrotor":
            hold = self.mode is Mode.SAFE and now - self._safe_since < self.config.motors_off_after_s
            return np.clip(self.builder.initial_action, self.low, self.high) if hold else self.low.copy()
        measured = self._measured_joint_action()
        if kind == "arm" and self._last_action is not None:
            return self._last_action.copy()
        if measured is not None:
            return measured
        if self._last_action is not None:
            return self._last_action.copy()
        return np.clip(self.builder.initial_action, self.low, self.high)

    def _measured_joint_action(self) -> np.ndarray | None:
        s = self._last_state
        if not isinstance(s, JointState) or s.position.size != self.n_act or not np.isfinite(s.position).all():
            return None
        return self._from_physical(s.position)

    def _safe_command(self, now: float) -> Command:
        action = self.safe_action(now)
        if not np.isfinite(action).all():  # cannot happen by construction; keep the promise anyway
            action = self.low.copy()
        return Command(action, self._to_physical(action), self.mode, self.reason)

    def _reject(self, what: str, why: str, now: float) -> tuple[bool, str]:
        message = f"{what} rejected: {why}"
        LOG.warning("%s (mode stays %s)", message, self.mode.value)
        if self.flight_log is not None:
            self.flight_log.write_text("/safety_state", int(now * 1e9), f"{self.mode.value}: {message}")
        return False, message

    def _transition(self, target: Mode, reason: str, now: float) -> None:
        tr = Transition(now, self.mode, target, reason)
        self.mode, self.reason = target, reason
        if target is Mode.SAFE:
            self._safe_since = now
        self.transitions.append(tr)
        self._log_transition(tr)

    def _log_transition(self, tr: Transition) -> None:
        level = logging.ERROR if tr.target is Mode.SAFE else logging.INFO
        LOG.log(level, "mode %s -> %s: %s", tr.source.value, tr.target.value, tr.reason)
        if self.flight_log is not None:
            self.flight_log.write_text("/safety_state", int(tr.t * 1e9),
                                       f"{tr.source.value} -> {tr.target.value}: {tr.reason}")

    def _log_step(self, now: float, cmd: Command, compute_s: float) -> None:
        t_ns = int(now * 1e9)
        try:
            if cmd.mode is Mode.RUNNING:
                self.flight_log.write_array("/observation", t_ns, self.builder.buffer[0])
            self.flight_log.write_array("/action", t_ns, cmd.action)
            self.flight_log.write_array("/command", t_ns, cmd.physical)
            self.flight_log.write_array("/timing", t_ns, [compute_s * 1e6, float(cmd.mode is Mode.RUNNING)],
                                        labels=TIMING_LABELS)
        except Exception as err:  # a full disk must not stop the controller
            LOG.error("flight log write failed, logging stopped: %s", err)
            self.flight_log = None

    def diagnostics(self) -> dict:
        """Timing statistics and safety state as flat key/values (DiagnosticArray, logs, benchmarks)."""
        out = {"mode": self.mode.value, "reason": self.reason, "faults": self.faults,
               "clipped": self.safety.clipped, "rate_limited": self.safety.rate_limited,
               "rate_hz": self.rate_hz}
        out.update(self.timing.summary())
        return out


TIMING_LABELS = ("compute_us", "running")

