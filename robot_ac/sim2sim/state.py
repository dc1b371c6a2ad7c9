"""Typed robot state passed between an engine backend and the controller, independent of any simulator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class QuadrotorState:
    """What a quadrotor's state estimator reports; the frames are those of the observation contract."""

    position: np.ndarray          # (3,) m, world
    quaternion: np.ndarray        # (4,) w, x, y, z, body -> world
    linear_velocity: np.ndarray   # (3,) m/s, world
    angular_velocity: np.ndarray  # (3,) rad/s, body
    rotor_rpm: np.ndarray         # (R,) rpm; not observed by the policy, kept for plots and cross-checks
    stamp: float = 0.0            # s since the episode start at which this state was measured

    def as_vector(self) -> np.ndarray:
        """The training simulator's state layout (position | quaternion | velocity | angular velocity | rpm)."""
        return np.concatenate([self.position, self.quaternion, self.linear_velocity, self.angular_velocity,
                               self.rotor_rpm]).astype(np.float64)

    @staticmethod
    def from_vector(x: np.ndarray, num_rotors: int = 4, stamp: float = 0.0) -> QuadrotorState:
        x = np.asarray(x, dtype=np.float64)
        return QuadrotorState(x[0:3].copy(), x[3:7].copy(), x[7:10].copy(), x[10:13].copy(),
                              x[13:13 + num_rotors].copy(), stamp)

    def is_finite(self) -> bool:
        return bool(np.isfinite(self.as_vector()).all())


def quat_to_rotmat(q: np.ndarray) -> np.ndarray:
    """Body -> world rotation matrix from a unit quaternion (w, x, y, z)."""
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def rotation_angle(q_a: np.ndarray, q_b: np.ndarray) -> float:
    """Angle (rad) of the rotation between two unit quaternions, sign-agnostic."""
    dot = abs(float(np.dot(q_a, q_b)) / (np.linalg.norm(q_a) * np.linalg.norm(q_b)))
    return 2.0 * float(np.arccos(min(1.0, dot)))
