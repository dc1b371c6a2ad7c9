"""A linear hover controller (LQR) packaged as a policy bundle: a known-good policy for checking the sim2sim path.

It reads only the contract's policy observation, so it runs through the same controller and engines as a trained
policy; a pipeline check need not wait for training. Design: discrete LQR on the hover linearisation of the
training simulator's model (small-angle attitude from the rotation matrix's antisymmetric part; rotor speed
estimated from the action history by replaying the first-order motor over it).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
from torch import nn

from robot_ac.policy.bundle import export_bundle
from robot_ac.sim.quadrotor.params import QuadrotorParams

# State: position (3), small-angle attitude (3), velocity (3), body rate (3), motor state in action units (4).
DEFAULT_Q = (40.0, 40.0, 40.0, 4.0, 4.0, 1.0, 4.0, 4.0, 4.0, 0.1, 0.1, 0.1, 0.0, 0.0, 0.0, 0.0)
DEFAULT_R = 10.0


class LinearPolicy(nn.Module):
    """``clamp(W obs + b, -1, 1)``: what ``export_bundle`` needs from an actor."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        super().__init__()
        self.linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
            self.linear.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return self.linear(obs).clamp(-1.0, 1.0)


def hover_model(robot: QuadrotorParams, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Discrete (A, B) of the hover linearisation, input = normalized motor command deviation."""
    n_r = robot.num_rotors
    hover_rpm = robot.hover_rpm()
    rpm_per_action = 0.5 * (robot.rpm_max - robot.rpm_min)
    thrust_per_action = 2.0 * robot.thrust_coefficient * hover_rpm * rpm_per_action  # dT_i / dm_i
    pos = np.asarray(robot.rotor_positions, dtype=np.float64)
    mix = np.stack([pos[:, 1], -pos[:, 0], robot.yaw_torque_coefficient * np.asarray(robot.rotor_yaw_directions)])
    a = np.zeros((12 + n_r, 12 + n_r))
    b = np.zeros((12 + n_r, n_r))
    a[0:3, 6:9] = np.eye(3)
    a[3:6, 9:12] = np.eye(3)
    a[6, 4], a[7, 3] = robot.gravity, -robot.gravity  # tilt -> horizontal acceleration
    a[8, 12:] = thrust_per_action / robot.mass
    a[9:12, 12:] = mix * thrust_per_action / np.asarray(robot.inertia)[:, None]
    a[12:, 12:] = -np.eye(n_r) / robot.motor_time_constant
    b[12:, :] = np.eye(n_r) / robot.motor_time_constant
    block = scipy.linalg.expm(np.block([[a, b], [np.zeros((n_r, 12 + 2 * n_r))]]) * dt)
    return block[: 12 + n_r, : 12 + n_r], block[: 12 + n_r, 12 + n_r:]


def lqr_gain(robot: QuadrotorParams, dt: float, q: tuple[float, ...] = DEFAULT_Q, r: float = DEFAULT_R) -> np.ndarray:
    a, b = hover_model(robot, dt)
    q_mat, r_mat = np.diag(q), r * np.eye(b.shape[1])
    p = scipy.linalg.solve_discrete_are(a, b, q_mat, r_mat)
    return np.linalg.solve(r_mat + b.T @ p @ b, b.T @ p @ a)


def observation_map(contract: dict, robot: QuadrotorParams, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """(M, c) with state = M obs + c, from the contract's field offsets."""
    fields = {f["name"]: (int(f["offset"]), int(f["size"])) for f in contract["observation"]["fields"]}
    n_r = robot.num_rotors
    m = np.zeros((12 + n_r, int(contract["observation"]["size"])))
    c = np.zeros(12 + n_r)
    o = fields["position_error"][0]
    m[0:3, o:o + 3] = np.eye(3)
    o = fields["rotation_matrix"][0]  # row-major R; theta = vee(R - R^T) / 2
    for axis, (plus, minus) in enumerate(((7, 5), (2, 6), (3, 1))):
        m[3 + axis, o + plus], m[3 + axis, o + minus] = 0.5, -0.5
    m[6:9, fields["linear_velocity"][0]:fields["linear_velocity"][0] + 3] = np.eye(3)
    m[9:12, fields["angular_velocity"][0]:fields["angular_velocity"][0] + 3] = np.eye(3)
    o, size = fields["action_history"]
    length = size // n_r
    decay = math.exp(-dt / robot.motor_time_constant)
    weights = (1.0 - decay) * decay ** np.arange(length)
    weights[-1] += decay ** length  # the speed before the window: assume it was the oldest command
    for j, w in enumerate(weights):
        m[12:, o + j * n_r:o + (j + 1) * n_r] = w * np.eye(n_r)
    c[12:] = -robot.hover_action()
    return m, c


def export_reference_policy(contract: dict, robot: QuadrotorParams, path: str | Path, dt: float,
                            q: tuple[float, ...] = DEFAULT_Q, r: float = DEFAULT_R) -> Path:
    """Write the LQR hover controller for ``contract`` as a bundle at ``path``."""
    gain = lqr_gain(robot, dt, q, r)
    m, c = observation_map(contract, robot, dt)
    weight = -gain @ m
    bias = robot.hover_action() - gain @ c
    return export_bundle(LinearPolicy(weight, bias), contract, path, {"reference_policy": "lqr", "q": q, "r": r})
