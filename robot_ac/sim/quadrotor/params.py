"""Quadrotor physical parameters, their randomization ranges, and per-environment sampling."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from robot_ac.config import KeyedValueError, Range, bounded, load_yaml_config
from robot_ac.paths import robot_file
from robot_ac.sim.quadrotor import dynamics


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

    def pinned_randomization(self, **values: float) -> QuadrotorRandomization:
        """Ranges that fix every randomized parameter at its nominal value (no actuation delay, no disturbance), or
        at ``values[name]``: one robot out of the population. Sampled like the population's ranges, so episodes
        start from the same states as the randomized task's with the same seed."""
        point = {"mass": self.mass, "inertia_xy": self.inertia[0], "inertia_z": self.inertia[2],
                 "thrust_coefficient": self.thrust_coefficient, "yaw_torque_coefficient": self.yaw_torque_coefficient,
                 "motor_time_constant": self.motor_time_constant, "actuation_delay_steps": 0.0}
        unknown = sorted(set(values) - set(point))
        if unknown:
            raise KeyedValueError(unknown[0], f"not a randomized parameter; these are {sorted(point)}")
        point.update(values)
        return QuadrotorRandomization(**{name: Range(v, v) for name, v in point.items()})


def load_quadrotor(robot: str | Path) -> QuadrotorParams:
    """Load ``sim/robots/<robot>.yaml`` (or an explicit path)."""
    path = Path(robot) if str(robot).endswith((".yaml", ".yml")) else robot_file(str(robot))
    return load_yaml_config(QuadrotorParams, path)


# Rows of QuadrotorBatchParams.values: one [14, N] tensor, so the step graph takes one input, not nine.
PARAMETER_ROWS: dict[str, int | slice] = {
    "mass": 0, "inertia": slice(1, 4), "thrust_coefficient": 4, "yaw_torque_coefficient": 5,
    "motor_time_constant": 6, "linear_drag": 7, "disturbance_force": slice(8, 11), "disturbance_torque": slice(11, 14),
}
NUM_PARAMETER_ROWS = 14
BODY_PARAMETER_ROWS = slice(0, 7)  # mass to motor time constant: the robot itself, not its surroundings


def _parameter_view(name: str) -> property:
    """``[N]`` (or ``[N, 3]`` for per-axis values) view of one parameter; assignment writes in place."""
    row = PARAMETER_ROWS[name]

    def get(self: QuadrotorBatchParams) -> torch.Tensor:
        return self.values[row].T if isinstance(row, slice) else self.values[row]

    def set_(self: QuadrotorBatchParams, value: torch.Tensor) -> None:
        get(self).copy_(torch.as_tensor(value, dtype=self.values.dtype, device=self.values.device))

    return property(get, set_, doc=f"per-environment {name}")


class QuadrotorBatchParams:
    """Per-environment physical parameters ``[14, N]`` (named views below) and delays ``[N]``: what the
    dynamics consume. Per-axis parameters (inertia, disturbance force in the world frame and torque in the
    body frame) read as ``[N, 3]``; every view writes through to ``values``.
    """

    mass = _parameter_view("mass")
    inertia = _parameter_view("inertia")
    thrust_coefficient = _parameter_view("thrust_coefficient")
    yaw_torque_coefficient = _parameter_view("yaw_torque_coefficient")
    motor_time_constant = _parameter_view("motor_time_constant")
    linear_drag = _parameter_view("linear_drag")
    disturbance_force = _parameter_view("disturbance_force")
    disturbance_torque = _parameter_view("disturbance_torque")

    def __init__(self, values: torch.Tensor, delay_steps: torch.Tensor) -> None:
        if values.dim() != 2 or values.shape[0] != NUM_PARAMETER_ROWS or delay_steps.shape != values.shape[1:]:
            raise ValueError(f"parameters must be [{NUM_PARAMETER_ROWS}, N] with delays [N], got "
                             f"{tuple(values.shape)} and {tuple(delay_steps.shape)}")
        self.values = values
        self.delay_steps = delay_steps  # [N] int64, control steps of pure actuation delay

    @property
    def num_envs(self) -> int:
        return self.values.shape[1]

    @staticmethod
    def nominal(params: QuadrotorParams, num_envs: int, device: torch.device | str) -> QuadrotorBatchParams:
        column = [params.mass, *params.inertia, params.thrust_coefficient, params.yaw_torque_coefficient,
                  params.motor_time_constant, params.linear_drag, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        values = torch.tensor(column, dtype=torch.float32, device=device)[:, None].expand(-1, num_envs).clone()
        return QuadrotorBatchParams(values, torch.zeros(num_envs, dtype=torch.long, device=device))

    @staticmethod
    def sample(params: QuadrotorParams, num_envs: int, generator: torch.Generator,
               randomize: bool, nominal_fraction: float = 0.0) -> QuadrotorBatchParams:
        """``num_envs`` parameter sets: drawn from the robot's ranges, or all nominal when not ``randomize``.

        ``nominal_fraction`` of the drawn sets (each independently) get the nominal robot's own parameters, mass to
        motor time constant; their delay and disturbance stay drawn. Training uses it: the nominal robot sits at a
        corner of the ranges that uniform draws rarely reach (bench/parameter_sensitivity.py).
        """
        batch = QuadrotorBatchParams.nominal(params, num_envs, generator.device)
        if randomize and params.randomization is not None:
            body = batch.values[BODY_PARAMETER_ROWS]
            nominal_body = body.clone() if nominal_fraction > 0.0 else None
            batch.resample(slice(None), params.randomization, generator)
            if nominal_body is not None:
                pick = torch.rand(num_envs, generator=generator, device=generator.device) < nominal_fraction
                body.copy_(torch.where(pick, nominal_body, body))
        return batch

    def resample(self, env_ids: torch.Tensor | slice, rand: QuadrotorRandomization,
                 generator: torch.Generator) -> None:
        """Draw new parameters for ``env_ids`` (indices, or a slice: written in place without indexing, which made
        refilling the environment's start pool several times slower); other environments keep theirs."""
        n = self.delay_steps[env_ids].numel()
        device = self.values.device

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

    def body_columns(self) -> dynamics.BodyColumns:
        """The parameters as the per-axis columns the dynamics consume."""
        v = self.values
        return dynamics.BodyColumns(v[0], v[1:4].unbind(0), v[4], v[5], v[6], v[7], v[8:11].unbind(0),
                                    v[11:14].unbind(0))

    def where(self, mask: torch.Tensor, other: QuadrotorBatchParams) -> QuadrotorBatchParams:
        """``other``'s parameters where ``mask [N]`` holds, these elsewhere (new tensors)."""
        return QuadrotorBatchParams(torch.where(mask[None], other.values, self.values),
                                    torch.where(mask, other.delay_steps, self.delay_steps))

    def gather(self, index: torch.Tensor) -> QuadrotorBatchParams:
        """The parameter sets at ``index [N]`` (for drawing resets from a pre-sampled pool)."""
        return QuadrotorBatchParams(self.values[:, index], self.delay_steps[index])

    def put_(self, index: torch.Tensor, other: QuadrotorBatchParams) -> None:
        """Overwrite the parameter sets at ``index [k]`` with ``other``'s ``k``, in place."""
        self.values[:, index] = other.values
        self.delay_steps[index] = other.delay_steps

    def ratio_columns(self) -> torch.Tensor:
        """The seven randomized parameters ``[7, N]``: mass, inertia x y z, kf, km, motor tau."""
        return self.values[0:7]

    @staticmethod
    def ratio_scale(params: QuadrotorParams) -> torch.Tensor:
        """1 / nominal for each row of ``ratio_columns``."""
        nominal = [params.mass, *params.inertia, params.thrust_coefficient, params.yaw_torque_coefficient,
                   params.motor_time_constant]
        return 1.0 / torch.tensor(nominal, dtype=torch.float64)

    def as_ratio_to(self, params: QuadrotorParams) -> torch.Tensor:
        """Randomized parameters relative to nominal, ``[N, 7]``: privileged critic input, unitless."""
        scale = self.ratio_scale(params).to(device=self.values.device, dtype=self.values.dtype)
        return (self.ratio_columns() * scale[:, None]).T
