"""The training simulator (``QuadrotorEnv``) as a one-robot sim-to-sim backend: the reference side of the report.

Domain randomization and observation noise are off, so both engines fly the nominal robot the URDF describes.
Time and position limits are lifted inside the env: the runner ends episodes by one rule for every engine.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from robot_ac.sim.quadrotor.env import QuadrotorEnv
from robot_ac.sim.quadrotor.params import load_quadrotor
from robot_ac.sim2sim.backend import Backend, BackendOptions, robot_yaml
from robot_ac.sim2sim.state import QuadrotorState

_NO_LIMIT = 1.0e9


def unbounded_env(options: BackendOptions, num_envs: int) -> QuadrotorEnv:
    """The nominal training simulator with no time or position limit (the runner applies the task's)."""
    task = options.task
    unbounded = dataclasses.replace(task, episode_seconds=_NO_LIMIT,
                                    termination=dataclasses.replace(task.termination, position_limit=_NO_LIMIT))
    robot = load_quadrotor(robot_yaml(options.robot))
    return QuadrotorEnv(unbounded, num_envs=num_envs, seed=options.seed, robot=robot, domain_randomization=False,
                        observation_noise=False, curriculum=False)


class TrainingQuadrotor(Backend):
    engine = "training"

    def __init__(self, options: BackendOptions) -> None:
        self.env = unbounded_env(options, num_envs=1)
        self.params = self.env.robot
        self.dt = options.task.dt
        self._fault: str | None = None
        self.time = 0.0
        self.env.reset()

    def reset(self, start: QuadrotorState) -> None:
        self.env.reset()
        self.env.state[0] = torch.as_tensor(start.as_vector(), dtype=torch.float32)
        self.env.history[0] = self.env.hover_action
        self._fault = None
        self.time = 0.0

    def step(self, command: np.ndarray) -> float:
        action = torch.as_tensor(np.asarray(command, dtype=np.float32).reshape(1, -1))
        result = self.env.step(action)
        if bool(result.info["nonfinite_state"][0]):
            self._fault = "non-finite state"
        self.time += self.dt
        return self.dt

    def true_state(self) -> QuadrotorState:
        return QuadrotorState.from_vector(self.env.state[0].double().numpy(), self.params.num_rotors, self.time)

    def fault(self) -> str | None:
        return self._fault
