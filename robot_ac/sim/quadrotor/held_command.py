"""The rigid body flown with its rotor command held: the experiment of the physics checks.

Why a module: the tests bound energy, momentum and velocity errors of such flights, and
``bench/sim_physics_figures.py`` measures the same flights; both use this one integrator and parameter set.
"""

from __future__ import annotations

import torch

from robot_ac.sim.quadrotor import dynamics
from robot_ac.sim.quadrotor.params import QuadrotorBatchParams, load_quadrotor

# A distinct inertia per axis (the Crazyflie's xy inertia is one value), so that the checks see the coupling terms.
CHECK_INERTIA = (1.4e-5, 2.0e-5, 3.1e-5)


def check_params(n: int = 1, inertia: tuple[float, float, float] = CHECK_INERTIA) -> QuadrotorBatchParams:
    """The nominal Crazyflie for ``n`` bodies, with ``inertia``."""
    p = QuadrotorBatchParams.nominal(load_quadrotor("crazyflie"), n, "cpu")
    p.inertia = torch.tensor([inertia] * n, dtype=torch.float32)
    return p


def fly_held(state: torch.Tensor, p: QuadrotorBatchParams, seconds: float, gravity: float,
             dt: float = 0.01) -> torch.Tensor:
    """``state`` (float64, ``[N, 17]``) after ``seconds`` of RK4 with the rotor command held at its rotor speeds."""
    robot = load_quadrotor("crazyflie")
    rotors = dynamics.RotorGeometry.from_lists(robot.rotor_positions, robot.rotor_yaw_directions, "cpu")
    rpm_cmd = state[:, dynamics.RPM].clone()
    for _ in range(round(seconds / dt)):
        state = dynamics.rk4_step(state, rpm_cmd, dt, 1, p.mass.double(), p.inertia.double(),
                                  p.thrust_coefficient.double(), p.yaw_torque_coefficient.double(),
                                  p.motor_time_constant.double(), p.linear_drag.double(),
                                  p.disturbance_force.double(), p.disturbance_torque.double(), rotors, gravity)
    return state
