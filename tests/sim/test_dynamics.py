"""Physics sanity of the quadrotor model: hover, torque response, conservation laws."""

from __future__ import annotations

import dataclasses

import torch

from robot_ac.sim.quadrotor import dynamics
from robot_ac.sim.quadrotor.env import QuadrotorEnv
from robot_ac.sim.quadrotor.held_command import check_params, fly_held
from robot_ac.sim.quadrotor.params import QuadrotorBatchParams, load_quadrotor
from robot_ac.sim.task_config import load_task


def _still_env(seconds: float) -> QuadrotorEnv:
    task = dataclasses.replace(load_task("quadrotor-hover"), episode_seconds=seconds)
    env = QuadrotorEnv(task, num_envs=2, domain_randomization=False, observation_noise=False)
    env.reset(seed=0)
    hover_rpm = env.robot.hover_rpm()
    env.state.zero_()
    env.state[:, 3] = 1.0
    env.state[:, dynamics.RPM] = hover_rpm
    return env


def test_hover_thrust_holds_a_level_drone_still_for_ten_seconds():
    env = _still_env(seconds=20.0)
    action = torch.full((2, 4), env.hover_action)
    for _ in range(1000):  # 10 s at 100 Hz
        result = env.step(action)
        assert not (result.terminated | result.truncated).any()
    drift = env.position.norm(dim=-1).max().item()
    assert drift < 1e-3, f"hover drift {drift} m after 10 s"


def test_pure_torque_gives_inverse_inertia_times_torque():
    p = check_params(3)
    quat = torch.tensor([[1.0, 0, 0, 0]] * 3)
    zeros = torch.zeros(3, 3)
    torque = torch.tensor([[1e-6, 0, 0], [0, -2e-6, 0], [3e-7, 4e-7, -5e-7]])
    _, _, _, angacc = dynamics.rigid_body_derivative(quat, zeros, zeros, zeros, torque, p.mass, p.inertia, 0.0)
    torch.testing.assert_close(angacc, torque / p.inertia, rtol=1e-6, atol=0)


def test_differential_rotor_speeds_produce_the_expected_body_torque():
    robot = load_quadrotor("crazyflie")
    rotors = dynamics.RotorGeometry.from_lists(robot.rotor_positions, robot.rotor_yaw_directions, "cpu")
    p = QuadrotorBatchParams.nominal(robot, 1, "cpu")
    rpm = torch.tensor([[15000.0, 16000.0, 17000.0, 18000.0]])
    total, torque = dynamics.rotor_wrench(rpm, p.thrust_coefficient, p.yaw_torque_coefficient, rotors)
    thrusts = robot.thrust_coefficient * rpm[0].double() ** 2
    pos = torch.tensor(robot.rotor_positions, dtype=torch.float64)
    expected_roll = (thrusts * pos[:, 1]).sum()
    expected_pitch = -(thrusts * pos[:, 0]).sum()
    expected_yaw = robot.yaw_torque_coefficient * (thrusts * torch.tensor(robot.rotor_yaw_directions)).sum()
    torch.testing.assert_close(total.double(), thrusts.sum()[None], rtol=1e-6, atol=0)
    torch.testing.assert_close(torque[0].double(), torch.stack([expected_roll, expected_pitch, expected_yaw]),
                               rtol=1e-5, atol=1e-12)


def test_free_fall_conserves_energy_and_follows_gravity():
    p = check_params()
    state = torch.zeros(1, 17, dtype=torch.float64)
    state[0, 3] = 1.0
    state[0, dynamics.VEL] = torch.tensor([0.3, -0.2, 1.0], dtype=torch.float64)
    g, m = 9.81, p.mass.double()[0]

    def energy(s: torch.Tensor) -> torch.Tensor:
        return 0.5 * m * (s[0, dynamics.VEL] ** 2).sum() + m * g * s[0, 2]

    end = fly_held(state, p, 1.0, g)
    torch.testing.assert_close(energy(end), energy(state), rtol=1e-9, atol=1e-12)
    expected_v = state[0, dynamics.VEL] + torch.tensor([0.0, 0.0, -g], dtype=torch.float64)
    torch.testing.assert_close(end[0, dynamics.VEL], expected_v, rtol=0, atol=1e-9)


def test_torque_free_spinning_body_conserves_angular_momentum_and_energy():
    p = check_params()
    inertia = p.inertia.double()[0]
    state = torch.zeros(1, 17, dtype=torch.float64)
    state[0, 3] = 1.0
    state[0, dynamics.ANGVEL] = torch.tensor([3.0, -2.0, 5.0], dtype=torch.float64)

    def momentum_world(s: torch.Tensor) -> torch.Tensor:
        rot = dynamics.quat_to_rotmat(s[:, dynamics.QUAT])[0]
        return rot @ (inertia * s[0, dynamics.ANGVEL])

    def rotational_energy(s: torch.Tensor) -> torch.Tensor:
        return 0.5 * (inertia * s[0, dynamics.ANGVEL] ** 2).sum()

    end = fly_held(state, p, 1.0, gravity=0.0, dt=0.001)
    torch.testing.assert_close(momentum_world(end), momentum_world(state), rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(rotational_energy(end), rotational_energy(state), rtol=1e-6, atol=0)
