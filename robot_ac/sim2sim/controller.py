"""The deployment controller, driven on simulated time: ``robot_ac.runtime.PolicyController`` behind a small adapter.

What flies in sim2sim is what flies on the robot: the same observation builder, onnxruntime session, safety filter,
watchdog and state machine. The adapter only supplies a simulated clock, arms and starts the controller at the
beginning of each episode, and converts the engine's typed state into the runtime's.

Envelope checks (attitude limit, geofence) are off: the training start distribution itself tilts up to 90 degrees,
beyond any sensible deployment envelope, and the runner applies the task's own position limit to every engine.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from robot_ac.policy.bundle import Bundle
from robot_ac.runtime.controller import ControllerConfig, Mode, PolicyController
from robot_ac.runtime.state import QuadrotorState as RuntimeQuadrotorState
from robot_ac.sim2sim.state import QuadrotorState


class Controller(Protocol):
    def reset(self) -> None: ...

    def act(self, state: QuadrotorState, now: float) -> np.ndarray: ...

    @property
    def safe_reason(self) -> str | None: ...


class DeploymentController:
    """``PolicyController`` on simulated time; ``act`` returns its normalized command (always finite, in limits)."""

    def __init__(self, bundle: Bundle, kind: str = "quadrotor") -> None:
        self.now = 0.0
        config = ControllerConfig(kind=kind, attitude_limit_deg=None, geofence_min=None, geofence_max=None)
        self.inner = PolicyController(bundle, config, clock=lambda: self.now)
        self._started = False

    def reset(self) -> None:
        """Back to ``inactive``; the next ``act`` arms and starts with that state (a fresh episode)."""
        if self.inner.mode is Mode.SAFE:
            self.inner.reset(self.now)
        self.inner.disarm(self.now, reason="sim2sim: new episode")
        self._started = False

    def act(self, state: QuadrotorState, now: float) -> np.ndarray:
        self.now = now
        runtime_state = RuntimeQuadrotorState(state.position, state.linear_velocity, state.angular_velocity,
                                              stamp=state.stamp, quaternion_wxyz=state.quaternion)
        if not self._started:
            self._started = True
            self.inner.arm(now, runtime_state)
            self.inner.start(now)
        return self.inner.step(runtime_state, now).action

    @property
    def safe_reason(self) -> str | None:
        """Why the controller is in safe mode (motors off), or None while it runs."""
        return self.inner.reason if self.inner.mode is Mode.SAFE else None

    @property
    def observation(self) -> np.ndarray:
        """The last policy observation the controller built (``[1, n_obs]``)."""
        return self.inner.builder.buffer


def make_controller(bundle: Bundle, kind: str = "quadrotor") -> Controller:
    return DeploymentController(bundle, kind)
