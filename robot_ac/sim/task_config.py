"""Task descriptions (``sim/tasks/<task>.yaml``) as typed, validated configuration."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from robot_ac.config import KeyedValueError, bounded, load_yaml_config
from robot_ac.paths import task_file
from robot_ac.sim.contract import ObsField


@dataclass(frozen=True)
class StartConfig:
    position: float = bounded(0.2, min=0.0)
    attitude_deg: float = bounded(90.0, min=0.0, max=180.0)
    velocity: float = bounded(1.0, min=0.0)
    angular_velocity: float = bounded(1.0, min=0.0)
    at_rest_fraction: float = bounded(0.1, min=0.0, max=1.0)


@dataclass(frozen=True)
class TerminationConfig:
    position_limit: float = bounded(0.6, min=0.0, exclusive_min=True)


@dataclass(frozen=True)
class RewardWeights:
    position: float = bounded(min=0.0)
    orientation: float = bounded(min=0.0)
    velocity: float = bounded(min=0.0)
    action: float = bounded(min=0.0)

    def as_list(self) -> list[float]:
        return [self.position, self.orientation, self.velocity, self.action]


@dataclass(frozen=True)
class RewardConfig:
    start_weights: RewardWeights
    target_weights: RewardWeights
    growth: RewardWeights
    constant: float = 2.0
    scale: float = bounded(0.5, min=0.0)
    curriculum_every_steps: int = bounded(100_000, min=1)
    action_rate: float = bounded(0.0, min=0.0)
    action_magnitude: float = bounded(0.0, min=0.0)
    termination_penalty: float = bounded(0.0, min=0.0)
    position_linear: float = bounded(0.0, min=0.0, doc="weight of |p| (m), outside the curriculum: near the target "
                                                       "it keeps the gradient the squared term loses")
    floor: float = bounded(-math.inf, doc="lowest shaped reward of a step, before the termination penalty: with "
                                       "floor >= 0 staying alive never pays less than ending the episode")


@dataclass(frozen=True)
class TaskConfig:
    """One task: which robot, how episodes start and end, what each observation group holds, the reward."""

    task: str
    robot: str
    control_rate_hz: float = bounded(min=0.0, exclusive_min=True)
    episode_seconds: float = bounded(min=0.0, exclusive_min=True)
    substeps: int = bounded(1, min=1)
    action_history: int = bounded(32, min=0)
    domain_randomization: bool = True
    observation_noise: bool = True
    start: StartConfig = StartConfig()
    termination: TerminationConfig = TerminationConfig()
    observations: dict[str, list[ObsField]] | None = None
    reward: RewardConfig | None = None

    def validate(self) -> None:
        groups = self.observations or {}
        for required in ("policy", "critic"):
            if required not in groups:
                raise KeyedValueError("observations", f"group '{required}' is required")
        for group, fields in groups.items():
            names = [f.name for f in fields]
            duplicate = {n for n in names if names.count(n) > 1}
            if duplicate:
                raise KeyedValueError(f"observations.{group}", f"field listed twice: {sorted(duplicate)}")
        if self.reward is None:
            raise KeyedValueError("reward", "required key is missing")

    def with_action_history(self, length: int) -> TaskConfig:
        """This task with ``length`` past actions in its observations (their ``action_history`` fields resized).

        Why: a bundle carries the history length it was trained with; checking an older bundle (sim-to-sim) needs
        the task as it was then, not as the task file says now.
        """
        if length == self.action_history:
            return self
        if self.action_history == 0:
            raise KeyedValueError("action_history", f"task {self.task} has no action history to resize")
        observations = {group: [dataclasses.replace(f, size=f.size // self.action_history * length)
                                if f.name == "action_history" else f for f in fields]
                        for group, fields in (self.observations or {}).items()}
        return dataclasses.replace(self, action_history=length, observations=observations)

    @property
    def dt(self) -> float:
        return 1.0 / self.control_rate_hz

    @property
    def episode_steps(self) -> int:
        return int(round(self.episode_seconds * self.control_rate_hz))


def load_task(task: str | Path) -> TaskConfig:
    """Load ``sim/tasks/<task>.yaml`` (``quadrotor-hover`` -> ``quadrotor_hover.yaml``) or an explicit path."""
    path = Path(task) if str(task).endswith((".yaml", ".yml")) else task_file(str(task))
    return load_yaml_config(TaskConfig, path)
