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


def test_training_can_put_a_fraction_of_episodes_on_the_nominal_robot():
    """``nominal_fraction`` (training only) gives that share of episodes the nominal robot's own parameters, with
    delay and disturbance still drawn; without it the draws are unchanged."""
    robot = load_quadrotor("crazyflie")
    n = 4000

    def drawn(**kwargs):
        env = QuadrotorEnv(num_envs=n, seed=5, curriculum=False, **kwargs)
        env.reset()
        return env.params

    always = drawn(nominal_fraction=1.0)
    assert torch.all(always.mass == torch.tensor(robot.mass)) and torch.all(
        always.motor_time_constant == torch.tensor(robot.motor_time_constant))
    assert torch.all(always.inertia == torch.tensor(robot.inertia))
    assert always.delay_steps.float().mean().item() == pytest.approx(0.5, abs=0.05)  # still drawn from [0, 1]
    assert always.disturbance_force.std().item() > 0
    some = drawn(nominal_fraction=0.3)
    on_nominal = (some.mass == torch.tensor(robot.mass)) & (some.motor_time_constant == torch.tensor(
        robot.motor_time_constant))
    assert on_nominal.float().mean().item() == pytest.approx(0.3, abs=0.03)
    default = drawn()
    assert (default.mass == torch.tensor(robot.mass)).float().mean() < 0.01
    reference = drawn(nominal_fraction=0.0)
    assert torch.equal(default.values, reference.values)
