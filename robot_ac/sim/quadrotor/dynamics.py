"""Batched quadrotor rigid-body dynamics with first-order motors, integrated with RK4.

Pure functions over tensors ``[N, ...]``: no Python loop over environments, the same code on CPU and CUDA,
and ``torch.compile``-friendly (no data-dependent control flow). State layout, per environment (17 floats):

    position (3, world, m) | quaternion (4, w x y z, body->world) | velocity (3, world, m/s)
    | angular velocity (3, body, rad/s) | rotor speeds (4, rpm)

Equations (standard Newton-Euler, as in the Learning-to-Fly and gym-pybullet-drones models):
    p' = v,   v' = (R e_z * sum(kf rpm^2) + F_dist - c_d v) / m - g e_z
    q' = 1/2 q (x) (0, w),   I w' = tau + tau_dist - w x (I w)
    rpm' = (rpm_cmd - rpm) / tau_motor
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

POS, QUAT, VEL, ANGVEL, RPM = slice(0, 3), slice(3, 7), slice(7, 10), slice(10, 13), slice(13, 17)
STATE_SIZE = 17


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


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``[N, 3, 3]`` (body -> world) from unit quaternions ``[N, 4]`` (w, x, y, z)."""
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(*q.shape[:-1], 3, 3)


def rotor_wrench(rpm: torch.Tensor, thrust_coefficient: torch.Tensor, yaw_torque_coefficient: torch.Tensor,
                 rotors: RotorGeometry) -> tuple[torch.Tensor, torch.Tensor]:
    """Total thrust ``[N]`` along body z and body torque ``[N, 3]`` from rotor speeds ``[N, R]``."""
    thrusts = thrust_coefficient[:, None] * rpm * rpm
    total = thrusts.sum(-1)
    torque = torch.stack([
        (thrusts * rotors.y).sum(-1),
        -(thrusts * rotors.x).sum(-1),
        yaw_torque_coefficient * (thrusts * rotors.yaw_direction).sum(-1),
    ], dim=-1)
    return total, torque


def rigid_body_derivative(quat: torch.Tensor, vel: torch.Tensor, angvel: torch.Tensor,
                          force_world: torch.Tensor, torque_body: torch.Tensor, mass: torch.Tensor,
                          inertia: torch.Tensor, gravity: float) -> tuple[torch.Tensor, ...]:
    """Time derivatives (p', q', v', w') of a rigid body with diagonal inertia under a wrench."""
    w, x, y, z = quat.unbind(-1)
    wx, wy, wz = angvel.unbind(-1)
    quat_dot = 0.5 * torch.stack([
        -x * wx - y * wy - z * wz,
        w * wx + y * wz - z * wy,
        w * wy + z * wx - x * wz,
        w * wz + x * wy - y * wx,
    ], dim=-1)
    acc = force_world / mass[:, None]
    acc = acc - torch.tensor([0.0, 0.0, gravity], device=acc.device, dtype=acc.dtype)
    momentum = inertia * angvel
    angacc = (torque_body - torch.linalg.cross(angvel, momentum)) / inertia
    return vel, quat_dot, acc, angacc


def quadrotor_derivative(state: torch.Tensor, rpm_cmd: torch.Tensor, mass: torch.Tensor,
                         inertia: torch.Tensor, thrust_coefficient: torch.Tensor,
                         yaw_torque_coefficient: torch.Tensor, motor_time_constant: torch.Tensor,
                         linear_drag: torch.Tensor, disturbance_force: torch.Tensor,
                         disturbance_torque: torch.Tensor, rotors: RotorGeometry,
                         gravity: float) -> torch.Tensor:
    """d(state)/dt ``[N, 17]`` for the layout in the module docstring."""
    quat, vel, angvel, rpm = state[:, QUAT], state[:, VEL], state[:, ANGVEL], state[:, RPM]
    thrust, torque = rotor_wrench(rpm, thrust_coefficient, yaw_torque_coefficient, rotors)
    w, x, y, z = quat.unbind(-1)
    body_z_world = torch.stack([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], dim=-1)
    force = thrust[:, None] * body_z_world + disturbance_force - linear_drag[:, None] * vel
    pos_dot, quat_dot, acc, angacc = rigid_body_derivative(
        quat, vel, angvel, force, torque + disturbance_torque, mass, inertia, gravity)
    rpm_dot = (rpm_cmd - rpm) / motor_time_constant[:, None]
    return torch.cat([pos_dot, quat_dot, acc, angacc, rpm_dot], dim=-1)


def rk4_step(state: torch.Tensor, rpm_cmd: torch.Tensor, dt: float, substeps: int, mass: torch.Tensor,
             inertia: torch.Tensor, thrust_coefficient: torch.Tensor, yaw_torque_coefficient: torch.Tensor,
             motor_time_constant: torch.Tensor, linear_drag: torch.Tensor, disturbance_force: torch.Tensor,
             disturbance_torque: torch.Tensor, rotors: RotorGeometry, gravity: float) -> torch.Tensor:
    """Advance ``state`` by ``dt`` with ``substeps`` classic RK4 steps, holding the command constant.

    The quaternion is renormalised after each sub-step so that integration error never scales the body.
    """
    h = dt / substeps

    def f(s: torch.Tensor) -> torch.Tensor:
        return quadrotor_derivative(s, rpm_cmd, mass, inertia, thrust_coefficient, yaw_torque_coefficient,
                                    motor_time_constant, linear_drag, disturbance_force, disturbance_torque,
                                    rotors, gravity)

    for _ in range(substeps):
        k1 = f(state)
        k2 = f(state + 0.5 * h * k1)
        k3 = f(state + 0.5 * h * k2)
        k4 = f(state + h * k3)
        state = state + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
        quat = state[:, QUAT]
        quat = quat / quat.norm(dim=-1, keepdim=True)
        state = torch.cat([state[:, :3], quat, state[:, 7:]], dim=-1)
    return state
