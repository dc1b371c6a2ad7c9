"""Batched, device-agnostic simulation: the environment interface, contracts and robot models."""

from robot_ac.sim.contract import Contract, GroupSpec, ObsField
from robot_ac.sim.vec_env import StepResult, VecEnv

__all__ = ["Contract", "GroupSpec", "ObsField", "StepResult", "VecEnv", "make_env"]


def make_env(task: str = "quadrotor-hover", **kwargs) -> VecEnv:
    """Build the environment for a task id; the task file names the robot, the robot file its kind."""
    from robot_ac.sim.quadrotor.env import QuadrotorEnv
    from robot_ac.sim.task_config import load_task

    config = load_task(task)
    from robot_ac.sim.quadrotor.params import load_quadrotor

    robot = kwargs.pop("robot", None) or load_quadrotor(config.robot)
    return QuadrotorEnv(config, robot=robot, **kwargs)
