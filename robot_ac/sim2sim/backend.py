"""What every engine backend offers the sim-to-sim runner, and the registry that finds one for a robot.

Backends are keyed by (engine, robot kind) and named by module path, so that importing this package never imports
pybullet, and an arm or humanoid backend plugs in with one ``register_backend`` line and no change to the runner.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from robot_ac.paths import robot_file
from robot_ac.sim.task_config import TaskConfig
from robot_ac.sim2sim.effects import EffectSettings

REFERENCE_ENGINE = "training"  # the batched torch simulator the policy was trained in


class Sim2SimError(ValueError):
    """A sim-to-sim run cannot start: no backend for the robot, a missing URDF, a missing engine. One line."""


@dataclass(frozen=True)
class BackendOptions:
    """Everything a backend factory receives."""

    robot: str                 # robot name (sim/robots/<robot>.yaml) or a path to its YAML
    task: TaskConfig
    effects: EffectSettings
    seed: int = 0
    physics_hz: float = 1000.0
    urdf: Path | None = None   # overrides the URDF next to the robot file


class Backend(ABC):
    """One robot in one engine, advanced one control period at a time."""

    engine: str

    @abstractmethod
    def reset(self, start: Any) -> None:
        """Put the robot in ``start`` (a typed state, e.g. ``QuadrotorState``) at time 0."""

    @abstractmethod
    def step(self, command: np.ndarray) -> float:
        """Hold the normalized ``command`` for one control period; return the seconds that passed."""

    @abstractmethod
    def true_state(self) -> Any:
        """The state now, for scoring."""

    def observed_state(self) -> Any:
        """The state the controller sees (later than ``true_state`` when sensor latency is on)."""
        return self.true_state()

    def fault(self) -> str | None:
        """Why the episode must end beyond the task's bounds (ground contact, non-finite state), or None."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook; most backends hold nothing to release
        """Release engine resources."""


# (engine, robot kind) -> "module:Class"
_REGISTRY: dict[tuple[str, str], str] = {}


def register_backend(engine: str, kind: str, target: str) -> None:
    """Make ``target`` ("package.module:Class") the backend for robots of ``kind`` in ``engine``."""
    _REGISTRY[(engine, kind)] = target


register_backend(REFERENCE_ENGINE, "quadrotor", "robot_ac.sim2sim.training_backend:TrainingQuadrotor")
register_backend("pybullet", "quadrotor", "robot_ac.sim2sim.pybullet_quadrotor:PybulletQuadrotor")


def engines() -> list[str]:
    """Engines a user can compare against the training simulator."""
    return sorted({engine for engine, _ in _REGISTRY if engine != REFERENCE_ENGINE})


def robot_yaml(robot: str) -> Path:
    return Path(robot) if str(robot).endswith((".yaml", ".yml")) else robot_file(str(robot))


def robot_kind(robot: str) -> str:
    """The ``kind`` of a robot file, read without the robot-specific loader (which rejects other kinds)."""
    path = robot_yaml(robot)
    if not path.is_file():
        raise Sim2SimError(f"{path}: robot file for robot {robot!r} not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise Sim2SimError(f"{path}: not valid YAML ({err})") from err
    kind = data.get("kind") if isinstance(data, dict) else None
    if not isinstance(kind, str):
        raise Sim2SimError(f"{path}: key 'kind' missing; cannot tell which backend the robot needs")
    return kind


def backend_target(engine: str, robot: str) -> str:
    """"module:Class" of the backend for ``robot`` in ``engine``, or a one-line ``Sim2SimError`` saying why not."""
    kind = robot_kind(robot)
    target = _REGISTRY.get((engine, kind))
    if target is None:
        kinds = sorted(k for e, k in _REGISTRY if e == engine)
        if not kinds:
            raise Sim2SimError(f"unknown engine {engine!r}; available: {', '.join(engines())}")
        raise Sim2SimError(f"robot {robot!r} is of kind {kind!r}, which has no {engine} backend "
                           f"(backends exist for: {', '.join(kinds)})")
    return target


def create_backend(engine: str, options: BackendOptions) -> Backend:
    """The backend for ``options.robot`` in ``engine``; a missing backend or engine package is a ``Sim2SimError``."""
    module_name, cls_name = backend_target(engine, options.robot).split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise Sim2SimError(f"engine {engine!r} needs the Python package {err.name!r}, which is not installed "
                           f"(pip install {err.name})") from err
    return getattr(module, cls_name)(options)
