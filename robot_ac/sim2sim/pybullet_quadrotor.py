"""The quadrotor in pybullet: an independent rigid-body engine with our rotor and motor model on top.

pybullet integrates the rigid body (its own semi-implicit integrator at ``physics_hz``, DIRECT mode, no GUI);
this module supplies only what pybullet has no notion of: first-order motors, per-rotor thrust applied as an
external force at each rotor's position, the rotor yaw torque, and the optional unmodelled effects. Every
parameter comes from the same robot YAML as the training simulator; mass and inertia come from the URDF, which
must agree with that YAML.
"""

from __future__ import annotations

import collections
import contextlib
import math
from pathlib import Path

import numpy as np

from robot_ac.sim.quadrotor.params import load_quadrotor
from robot_ac.sim2sim.backend import Backend, BackendOptions, Sim2SimError, robot_yaml
from robot_ac.sim2sim.state import QuadrotorState, quat_to_rotmat

_RELATIVE_TOLERANCE = 1e-6  # URDF mass/inertia vs the robot YAML
RPM_TO_RAD_S = 2.0 * math.pi / 60.0


def urdf_for(robot: str, override: Path | None) -> Path:
    """The URDF beside the robot YAML (``sim/robots/<robot>.urdf``), or ``override``; it must exist."""
    path = Path(override) if override is not None else robot_yaml(robot).with_suffix(".urdf")
    if not path.is_file():
        raise Sim2SimError(f"{path}: URDF for robot {robot!r} not found (the pybullet backend loads the rigid body "
                           "from it; pass --urdf or add the file)")
    return path


class PybulletQuadrotor(Backend):
    engine = "pybullet"

    def __init__(self, options: BackendOptions) -> None:
        import pybullet
        from pybullet_utils.bullet_client import BulletClient

        self.params = load_quadrotor(robot_yaml(options.robot))
        self.urdf = urdf_for(options.robot, options.urdf)
        self.effects = options.effects
        self.control_dt = options.task.dt
        self.position_target = np.zeros(3)
        if options.physics_hz < 240.0:
            raise Sim2SimError(f"physics rate {options.physics_hz} Hz is below pybullet's 240 Hz default; use more")
        self.substeps = max(1, round(options.physics_hz / options.task.control_rate_hz))
        self.h = self.control_dt / self.substeps
        self._rng = np.random.default_rng(options.seed)

        self.client = BulletClient(connection_mode=pybullet.DIRECT)
        self._p = pybullet
        self.client.setGravity(0.0, 0.0, -self.params.gravity)
        self.client.setTimeStep(self.h)
        try:
            self.body = self.client.loadURDF(str(self.urdf), flags=pybullet.URDF_USE_INERTIA_FROM_FILE)
        except pybullet.error as err:
            self.client.disconnect()
            raise Sim2SimError(f"{self.urdf}: pybullet cannot load this URDF ({err})") from err
        # pybullet damps every body by default (0.04); the robot model has no such term.
        self.client.changeDynamics(self.body, -1, linearDamping=0.0, angularDamping=0.0)
        self._check_inertia()
        self.floor = None
        if self.effects.ground:
            shape = self.client.createCollisionShape(pybullet.GEOM_PLANE)
            self.floor = self.client.createMultiBody(0.0, shape, basePosition=[0, 0, -self.effects.ground_distance])

        p = self.params
        self.rotor_positions = np.asarray(p.rotor_positions, dtype=np.float64)
        self.yaw_directions = np.asarray(p.rotor_yaw_directions, dtype=np.float64)
        self.rpm = np.zeros(p.num_rotors)
        self.time = 0.0
        self._latency_steps = round(self.effects.latency_s / self.h) if self.effects.latency else 0
        self._history: collections.deque[QuadrotorState] = collections.deque(maxlen=self._latency_steps + 1)

    def _check_inertia(self) -> None:
        info = self.client.getDynamicsInfo(self.body, -1)
        mass, inertia = info[0], info[2]
        expected = {"mass": (mass, self.params.mass)}
        for axis, got, want in zip("xyz", inertia, self.params.inertia, strict=True):
            expected[f"i{axis}{axis}"] = (got, want)
        for name, (got, want) in expected.items():
            if abs(got - want) > _RELATIVE_TOLERANCE * abs(want):
                raise Sim2SimError(f"{self.urdf}: {name} is {got:g} but the robot file says {want:g}; the URDF must "
                                   "carry the same system-identification values as the robot YAML")

    # -------------------------------------------------------------------------------------------- Backend
    def reset(self, start: QuadrotorState) -> None:
        w, x, y, z = start.quaternion
        rotation = quat_to_rotmat(start.quaternion)
        self.client.resetBasePositionAndOrientation(self.body, start.position.tolist(), [x, y, z, w])
        self.client.resetBaseVelocity(self.body, start.linear_velocity.tolist(),
                                      (rotation @ start.angular_velocity).tolist())
        self.rpm = np.asarray(start.rotor_rpm, dtype=np.float64).copy()
        self.time = 0.0
        self._history.clear()
        self._history.append(self.true_state())

    def step(self, command: np.ndarray) -> float:
        p = self.params
        command = np.clip(np.asarray(command, dtype=np.float64), -1.0, 1.0)
        rpm_cmd = p.rpm_min + (command + 1.0) * 0.5 * (p.rpm_max - p.rpm_min)
        steps = self.substeps
        if self.effects.jitter:
            period = self.control_dt + self._rng.uniform(-self.effects.jitter_s, self.effects.jitter_s)
            steps = max(1, round(period / self.h))
        for _ in range(steps):
            self._physics_step(rpm_cmd)
        return steps * self.h

    def true_state(self) -> QuadrotorState:
        pos, orn = self.client.getBasePositionAndOrientation(self.body)
        vel, angvel_world = self.client.getBaseVelocity(self.body)
        quat = np.array([orn[3], orn[0], orn[1], orn[2]])
        rotation = quat_to_rotmat(quat)
        return QuadrotorState(np.array(pos), quat, np.array(vel), rotation.T @ np.array(angvel_world),
                              self.rpm.copy(), self.time)

    def observed_state(self) -> QuadrotorState:
        if not self._latency_steps:
            return self.true_state()
        return self._history[0]  # the oldest kept state: latency_steps physics steps ago (or the start state)

    def fault(self) -> str | None:
        if self.floor is not None and self.client.getContactPoints(self.body, self.floor):
            return "ground contact"
        if not self.true_state().is_finite():
            return "non-finite state"
        return None

    def close(self) -> None:
        with contextlib.suppress(self._p.error):
            self.client.disconnect()

    # ------------------------------------------------------------------------------------------ internals
    def _physics_step(self, rpm_cmd: np.ndarray) -> None:
        p, fx = self.params, self.effects
        # First-order motor, solved exactly over the step; thrust uses the mid-step speed (rpm' = (cmd - rpm)/tau).
        decay_half = math.exp(-0.5 * self.h / p.motor_time_constant)
        rpm_mid = rpm_cmd + (self.rpm - rpm_cmd) * decay_half
        self.rpm = rpm_cmd + (self.rpm - rpm_cmd) * decay_half * decay_half

        pos, orn = self.client.getBasePositionAndOrientation(self.body)
        position = np.asarray(pos)
        rotation = quat_to_rotmat(np.array([orn[3], orn[0], orn[1], orn[2]]))
        thrusts = p.thrust_coefficient * rpm_mid * rpm_mid
        lift = thrusts.copy()
        if fx.ground:
            lift += thrusts * self._ground_factor(position, rotation)
        body_z = rotation[:, 2]
        for i in range(p.num_rotors):
            at = position + rotation @ self.rotor_positions[i]
            self.client.applyExternalForce(self.body, -1, (body_z * lift[i]).tolist(), at.tolist(),
                                           self._p.WORLD_FRAME)
        yaw = p.yaw_torque_coefficient * float(np.dot(thrusts, self.yaw_directions))
        self.client.applyExternalTorque(self.body, -1, (rotation[:, 2] * yaw).tolist(), self._p.WORLD_FRAME)
        if fx.drag:
            vel, _ = self.client.getBaseVelocity(self.body)
            speed_sum = float(np.sum(rpm_mid)) * RPM_TO_RAD_S
            coeff = np.array([fx.drag_coeff_xy, fx.drag_coeff_xy, fx.drag_coeff_z])
            drag_body = -coeff * speed_sum * (rotation.T @ np.asarray(vel))
            self.client.applyExternalForce(self.body, -1, (rotation @ drag_body).tolist(), position.tolist(),
                                           self._p.WORLD_FRAME)
        self.client.stepSimulation()
        self.time += self.h
        if self._latency_steps:
            self._history.append(self.true_state())

    def _ground_factor(self, position: np.ndarray, rotation: np.ndarray) -> np.ndarray:
        """Relative extra thrust per rotor from the floor (image-rotor model; see effects.py for the source)."""
        fx = self.effects
        rotor_heights = position[2] + (rotation @ self.rotor_positions.T)[2] + fx.ground_distance
        heights = np.maximum(rotor_heights, fx.ground_min_height)
        return fx.ground_effect_coeff * (fx.propeller_radius / (4.0 * heights)) ** 2
