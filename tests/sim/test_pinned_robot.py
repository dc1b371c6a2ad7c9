"""One robot out of the randomized population: every parameter pinned, the population's start states kept."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from robot_ac.config import KeyedValueError
from robot_ac.sim.quadrotor.env import QuadrotorEnv
from robot_ac.sim.quadrotor.params import load_quadrotor


def _env(robot, seed: int = 3) -> QuadrotorEnv:
    env = QuadrotorEnv(num_envs=64, seed=seed, curriculum=False, robot=robot)
    env.reset()
    return env


def test_pinned_ranges_give_the_nominal_robot_from_the_populations_start_states():
    robot = load_quadrotor("crazyflie")
    population = _env(robot)
    pinned = _env(dataclasses.replace(robot, randomization=robot.pinned_randomization()))
    p = pinned.params
    assert torch.all(p.mass == robot.mass) and torch.all(p.motor_time_constant == robot.motor_time_constant)
    assert torch.all(p.inertia == torch.tensor(robot.inertia))
    assert torch.all(p.delay_steps == 0)
    assert torch.all(p.disturbance_force == 0) and torch.all(p.disturbance_torque == 0)
    assert not torch.all(population.params.mass == robot.mass)  # the population does vary
    # same poses and velocities; the rotors start at each robot's own hover speed
    torch.testing.assert_close(pinned.state[:, :13], population.state[:, :13], rtol=0, atol=0)
    torch.testing.assert_close(pinned.state[:, 13:], torch.full((64, 4), robot.hover_rpm()), rtol=1e-6, atol=0)


def test_one_parameter_pinned_elsewhere_and_an_unknown_name_refused():
    robot = load_quadrotor("crazyflie")
    ranges = robot.pinned_randomization(motor_time_constant=0.06, actuation_delay_steps=1)
    env = _env(dataclasses.replace(robot, randomization=ranges))
    assert torch.all(env.params.motor_time_constant == 0.06) and torch.all(env.params.delay_steps == 1)
    assert torch.all(env.params.mass == robot.mass)
    with pytest.raises(KeyedValueError, match="not a randomized parameter.*motor_time_constant") as err:
        robot.pinned_randomization(motor_lag=0.1)
    assert err.value.key == "motor_lag"
