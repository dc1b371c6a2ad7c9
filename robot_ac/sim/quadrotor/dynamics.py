"""Batched quadrotor rigid-body dynamics with first-order motors, integrated with RK4.

State layout, per environment (17 floats):

    position (3, world, m) | quaternion (4, w x y z, body->world) | velocity (3, world, m/s)
    | angular velocity (3, body, rad/s) | rotor speeds (4, rpm)

Equations (standard Newton-Euler, as in the Learning-to-Fly and gym-pybullet-drones models):
    p' = v,   v' = (R e_z * sum(kf rpm^2) + F_dist - c_d v) / m - g e_z
    q' = 1/2 q (x) (0, w),   I w' = tau + tau_dist - w x (I w)
    rpm' = (rpm_cmd - rpm) / tau_motor

The math is written once, on *columns*: a list of 17 tensors ``[N]``, one per state variable. Fed from a
structure-of-arrays state ``[17, N]`` (what the environment stores), every column is contiguous and
``torch.compile`` vectorizes across environments (measured 7x faster than the same equations on ``[N, 17]``
rows at N = 4096). ``rk4_step`` keeps the row layout ``[N, 17]`` for callers that hold single trajectories.
No data-dependent control flow; the same code on CPU and CUDA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

POS, QUAT, VEL, ANGVEL, RPM = slice(0, 3), slice(3, 7), slice(7, 10), slice(10, 13), slice(13, 17)
STATE_SIZE = 17

Columns = list[torch.Tensor]


@dataclass(frozen=True)
class RotorGeometry:
    """Rotor positions in the body frame and yaw-torque directions, shared by every environment."""

    x: torch.Tensor          # [R]
    y: torch.Tensor          # [R]
    yaw_direction: torch.Tensor  # [R]

    @staticmethod
    def from_lists(positions: list, directions: list, device: torch.device | str) -> RotorGeometry:
        pos = torch.tensor(positions, dtype=torch.float32, device=device)
        return RotorGeometry(pos[:, 0].contiguous(), pos[:, 1].contiguous(),
                             torch.tensor(directions, dtype=torch.float32, device=device))

    def constants(self) -> RotorConstants:
        """The geometry as Python floats, which ``torch.compile`` folds into the generated code."""
        return RotorConstants(tuple(self.x.tolist()), tuple(self.y.tolist()), tuple(self.yaw_direction.tolist()))


@dataclass(frozen=True)
class RotorConstants:
    x: tuple[float, ...]
    y: tuple[float, ...]
    yaw_direction: tuple[float, ...]


@dataclass(frozen=True)
class BodyColumns:
    """Per-environment physical parameters as columns ``[N]`` (inertia and disturbances split per axis)."""

    mass: torch.Tensor
    inertia: Sequence[torch.Tensor]          # Ixx, Iyy, Izz
    thrust_coefficient: torch.Tensor
    yaw_torque_coefficient: torch.Tensor
    motor_time_constant: torch.Tensor
    linear_drag: torch.Tensor
    disturbance_force: Sequence[torch.Tensor]   # world frame, x y z
    disturbance_torque: Sequence[torch.Tensor]  # body frame, x y z


def quat_to_rotmat_columns(qw: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor, qz: torch.Tensor) -> Columns:
    """Row-major body->world rotation matrix of a unit quaternion, as 9 columns."""
    return [
        1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qw * qz), 2 * (qx * qz + qw * qy),
        2 * (qx * qy + qw * qz), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qw * qx),
        2 * (qx * qz - qw * qy), 2 * (qy * qz + qw * qx), 1 - 2 * (qx * qx + qy * qy),
    ]


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``[N, 3, 3]`` (body -> world) from unit quaternions ``[N, 4]`` (w, x, y, z)."""
    return torch.stack(quat_to_rotmat_columns(*q.unbind(-1)), dim=-1).reshape(*q.shape[:-1], 3, 3)


def rotor_wrench_columns(rpm: Columns, thrust_coefficient: torch.Tensor, yaw_torque_coefficient: torch.Tensor,
                         rotors: RotorConstants) -> Columns:
    """Total thrust along body z and body torque (x, y, z): 4 columns from one rpm column per rotor."""
    thrusts = [thrust_coefficient * r * r for r in rpm]
    total = sum(thrusts[1:], thrusts[0])
    roll = sum(t * y for t, y in zip(thrusts, rotors.y, strict=True))
    pitch = -sum(t * x for t, x in zip(thrusts, rotors.x, strict=True))
    yaw = yaw_torque_coefficient * sum(t * d for t, d in zip(thrusts, rotors.yaw_direction, strict=True))
    return [total, roll, pitch, yaw]


def rotor_wrench(rpm: torch.Tensor, thrust_coefficient: torch.Tensor, yaw_torque_coefficient: torch.Tensor,
                 rotors: RotorGeometry) -> tuple[torch.Tensor, torch.Tensor]:
    """Total thrust ``[N]`` along body z and body torque ``[N, 3]`` from rotor speeds ``[N, R]``."""
    total, *torque = rotor_wrench_columns(list(rpm.unbind(-1)), thrust_coefficient, yaw_torque_coefficient,
                                          rotors.constants())
    return total, torch.stack(torque, dim=-1)


def rigid_body_columns(quat: Columns, angvel: Columns, force_world: Columns, torque_body: Columns,
                       mass: torch.Tensor, inertia: Sequence[torch.Tensor], gravity: float) -> Columns:
    """(q', v', w'): 10 columns for a rigid body with diagonal inertia under a wrench."""
    qw, qx, qy, qz = quat
    wx, wy, wz = angvel
    ixx, iyy, izz = inertia
    inv_mass = 1.0 / mass
    return [
        0.5 * (-qx * wx - qy * wy - qz * wz),
        0.5 * (qw * wx + qy * wz - qz * wy),
        0.5 * (qw * wy + qz * wx - qx * wz),
        0.5 * (qw * wz + qx * wy - qy * wx),
        force_world[0] * inv_mass,
        force_world[1] * inv_mass,
        force_world[2] * inv_mass - gravity,
        # I w' = tau - w x (I w), component by component
        (torque_body[0] - (wy * izz * wz - wz * iyy * wy)) / ixx,
        (torque_body[1] - (wz * ixx * wx - wx * izz * wz)) / iyy,
        (torque_body[2] - (wx * iyy * wy - wy * ixx * wx)) / izz,
    ]


def rigid_body_derivative(quat: torch.Tensor, vel: torch.Tensor, angvel: torch.Tensor,
                          force_world: torch.Tensor, torque_body: torch.Tensor, mass: torch.Tensor,
                          inertia: torch.Tensor, gravity: float) -> tuple[torch.Tensor, ...]:
    """Time derivatives (p', q', v', w') of a rigid body with diagonal inertia, on rows ``[N, k]``."""
    d = rigid_body_columns(list(quat.unbind(-1)), list(angvel.unbind(-1)), list(force_world.unbind(-1)),
                           list(torque_body.unbind(-1)), mass, inertia.unbind(-1), gravity)
    return vel, torch.stack(d[0:4], -1), torch.stack(d[4:7], -1), torch.stack(d[7:10], -1)


def quadrotor_derivative_columns(state: Columns, rpm_cmd: Columns, body: BodyColumns, rotors: RotorConstants,
                                 gravity: float) -> Columns:
    """d(state)/dt as 17 columns, for the layout in the module docstring."""
    quat, vel, angvel, rpm = state[QUAT], state[VEL], state[ANGVEL], state[RPM]
    qw, qx, qy, qz = quat
    thrust, *torque = rotor_wrench_columns(rpm, body.thrust_coefficient, body.yaw_torque_coefficient, rotors)
    body_z_world = (2 * (qx * qz + qw * qy), 2 * (qy * qz - qw * qx), 1 - 2 * (qx * qx + qy * qy))
    force = [thrust * b + f - body.linear_drag * v
             for b, f, v in zip(body_z_world, body.disturbance_force, vel, strict=True)]
    torque = [t + d for t, d in zip(torque, body.disturbance_torque, strict=True)]
    derivative = rigid_body_columns(quat, angvel, force, torque, body.mass, body.inertia, gravity)
    rpm_dot = [(c - r) / body.motor_time_constant for c, r in zip(rpm_cmd, rpm, strict=True)]
    return [*vel, *derivative, *rpm_dot]


def rk4_columns(state: Columns, rpm_cmd: Columns, dt: float, substeps: int, body: BodyColumns,
                rotors: RotorConstants, gravity: float) -> Columns:
    """Advance 17 state columns by ``dt`` with ``substeps`` classic RK4 steps, holding the command constant.

    The quaternion is renormalised after each sub-step so that integration error never scales the body. The
    stage combinations run on the stacked ``[17, N]`` state: one op each instead of 17 (eager mode is op-bound).
    """
    h = dt / substeps
    s = torch.stack(state)

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.stack(quadrotor_derivative_columns(list(x.unbind(0)), rpm_cmd, body, rotors, gravity))

    for _ in range(substeps):
        k1 = f(s)
        k2 = f(s + (0.5 * h) * k1)
        k3 = f(s + (0.5 * h) * k2)
        k4 = f(s + h * k3)
        s = s + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
        quat = s[QUAT]
        s = torch.cat([s[POS], quat * torch.rsqrt((quat * quat).sum(0, keepdim=True)), s[7:]])
    return list(s.unbind(0))


def rk4_step(state: torch.Tensor, rpm_cmd: torch.Tensor, dt: float, substeps: int, mass: torch.Tensor,
             inertia: torch.Tensor, thrust_coefficient: torch.Tensor, yaw_torque_coefficient: torch.Tensor,
             motor_time_constant: torch.Tensor, linear_drag: torch.Tensor, disturbance_force: torch.Tensor,
             disturbance_torque: torch.Tensor, rotors: RotorGeometry, gravity: float) -> torch.Tensor:
    """``rk4_columns`` on rows: ``state [N, 17]``, ``rpm_cmd [N, R]``, ``inertia`` and disturbances ``[N, 3]``."""
    body = BodyColumns(mass, inertia.unbind(-1), thrust_coefficient, yaw_torque_coefficient, motor_time_constant,
                       linear_drag, disturbance_force.unbind(-1), disturbance_torque.unbind(-1))
    out = rk4_columns(list(state.unbind(-1)), list(rpm_cmd.unbind(-1)), dt, substeps, body, rotors.constants(),
                      gravity)
    return torch.stack(out, dim=-1)
