"""Quadrotor physical parameters, their randomization ranges, and per-environment sampling."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from robot_ac.config import KeyedValueError, Range, bounded, load_yaml_config
from robot_ac.paths import robot_file


@dataclass(frozen=True)
class QuadrotorRandomization:
    """Per-episode ranges; each sampled uniformly and independently per environment."""

    mass: Range = bounded(min=0.0, exclusive_min=True)
    inertia_xy: Range = bounded(min=0.0, exclusive_min=True)
    inertia_z: Range = bounded(min=0.0, exclusive_min=True)
    thrust_coefficient: Range = bounded(min=0.0, exclusive_min=True)
    yaw_torque_coefficient: Range = bounded(min=0.0)
    motor_time_constant: Range = bounded(min=0.0, exclusive_min=True)
    actuation_delay_steps: Range = bounded(Range(0, 0), min=0, max=16)
    disturbance_force_std: float = bounded(0.0, min=0.0)
    disturbance_torque_std: float = bounded(0.0, min=0.0)


@dataclass(frozen=True)
class QuadrotorParams:
    """Nominal parameters of one quadrotor (``sim/robots/<name>.yaml``)."""

    name: str
    kind: str
    inertia: tuple[float, float, float]
    rotor_positions: list[tuple[float, float, float]]
    rotor_yaw_directions: list[float]
    mass: float = bounded(min=0.0, exclusive_min=True)
    thrust_coefficient: float = bounded(min=0.0, exclusive_min=True)
    yaw_torque_coefficient: float = bounded(min=0.0)
    rpm_min: float = bounded(min=0.0)
    rpm_max: float = bounded(min=0.0, exclusive_min=True)
    motor_time_constant: float = bounded(min=0.0, exclusive_min=True)
    linear_drag: float = bounded(0.0, min=0.0)
    gravity: float = bounded(9.81, min=0.0)
    randomization: QuadrotorRandomization | None = None

    def validate(self) -> None:
        if self.kind != "quadrotor":
            raise KeyedValueError("kind", f"expected 'quadrotor', got {self.kind!r}")
        if any(i <= 0 for i in self.inertia):
            raise KeyedValueError("inertia", f"every inertia must be > 0, got {list(self.inertia)}")
        if len(self.rotor_positions) != len(self.rotor_yaw_directions):
            raise KeyedValueError("rotor_yaw_directions", "needs one entry per rotor position")
        if self.rpm_min >= self.rpm_max:
            raise KeyedValueError("rpm_min", f"rpm_min {self.rpm_min} must be < rpm_max {self.rpm_max}")
        if any(d not in (-1.0, 1.0) for d in self.rotor_yaw_directions):
            raise KeyedValueError("rotor_yaw_directions", "each direction must be -1 or 1")
        if self.hover_action() >= 1.0:
            raise KeyedValueError("thrust_coefficient", "rotors cannot lift the nominal mass at rpm_max")

    @property
    def num_rotors(self) -> int:
        return len(self.rotor_positions)

    def hover_rpm(self) -> float:
        return (self.mass * self.gravity / (self.num_rotors * self.thrust_coefficient)) ** 0.5

    def hover_action(self) -> float:
        """Normalized motor command in [-1, 1] that holds the nominal robot at hover."""
        return 2.0 * (self.hover_rpm() - self.rpm_min) / (self.rpm_max - self.rpm_min) - 1.0


def load_quadrotor(robot: str | Path) -> QuadrotorParams:
    """Load ``sim/robots/<robot>.yaml`` (or an explicit path)."""
    path = Path(robot) if str(robot).endswith((".yaml", ".yml")) else robot_file(str(robot))
    return load_yaml_config(QuadrotorParams, path)


@dataclass
class QuadrotorBatchParams:
    """Per-environment physical parameters as tensors ``[num_envs, ...]``; what the dynamics consume."""

    mass: torch.Tensor                # [N]
    inertia: torch.Tensor             # [N, 3]
    thrust_coefficient: torch.Tensor  # [N]
    yaw_torque_coefficient: torch.Tensor  # [N]
    motor_time_constant: torch.Tensor  # [N]
    linear_drag: torch.Tensor         # [N]
    delay_steps: torch.Tensor         # [N] int64
    disturbance_force: torch.Tensor   # [N, 3] world frame
    disturbance_torque: torch.Tensor  # [N, 3] body frame

    @staticmethod
    def nominal(params: QuadrotorParams, num_envs: int, device: torch.device | str) -> QuadrotorBatchParams:
        def full(value: float) -> torch.Tensor:
            return torch.full((num_envs,), float(value), device=device)

        return QuadrotorBatchParams(
            mass=full(params.mass),
            inertia=torch.tensor(params.inertia, device=device).expand(num_envs, 3).clone(),
            thrust_coefficient=full(params.thrust_coefficient),
            yaw_torque_coefficient=full(params.yaw_torque_coefficient),
            motor_time_constant=full(params.motor_time_constant),
            linear_drag=full(params.linear_drag),
            delay_steps=torch.zeros(num_envs, dtype=torch.long, device=device),
            disturbance_force=torch.zeros(num_envs, 3, device=device),
            disturbance_torque=torch.zeros(num_envs, 3, device=device),
        )

    def resample(self, env_ids: torch.Tensor, rand: QuadrotorRandomization, generator: torch.Generator) -> None:
        """Draw new parameters for ``env_ids`` only; other environments keep theirs."""
        n = env_ids.numel()
        device = self.mass.device

        def uniform(r: Range, shape: tuple[int, ...] = ()) -> torch.Tensor:
            u = torch.rand((n, *shape), generator=generator, device=device)
            return r.low + (r.high - r.low) * u

        self.mass[env_ids] = uniform(rand.mass)
        ixy = uniform(rand.inertia_xy)
        self.inertia[env_ids] = torch.stack([ixy, ixy, uniform(rand.inertia_z)], dim=-1)
        self.thrust_coefficient[env_ids] = uniform(rand.thrust_coefficient)
        self.yaw_torque_coefficient[env_ids] = uniform(rand.yaw_torque_coefficient)
        self.motor_time_constant[env_ids] = uniform(rand.motor_time_constant)
        lo, hi = int(rand.actuation_delay_steps.low), int(rand.actuation_delay_steps.high)
        self.delay_steps[env_ids] = torch.randint(lo, hi + 1, (n,), generator=generator, device=device)
        self.disturbance_force[env_ids] = rand.disturbance_force_std * torch.randn(
            (n, 3), generator=generator, device=device)
        self.disturbance_torque[env_ids] = rand.disturbance_torque_std * torch.randn(
            (n, 3), generator=generator, device=device)

    def as_ratio_to(self, params: QuadrotorParams) -> torch.Tensor:
        """Randomized parameters relative to nominal, ``[N, 7]``: privileged critic input, unitless."""
        nominal_inertia = torch.tensor(params.inertia, device=self.mass.device)
        return torch.cat([
            (self.mass / params.mass)[:, None],
            self.inertia / nominal_inertia,
            (self.thrust_coefficient / params.thrust_coefficient)[:, None],
            (self.yaw_torque_coefficient / params.yaw_torque_coefficient)[:, None],
            (self.motor_time_constant / params.motor_time_constant)[:, None],
        ], dim=-1)

    def fields(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self)]
