"""The figures issue #2's physics checks bound, measured (the tests assert the bounds; this prints the values).

Hover drift after 10 s, the angular acceleration against I^-1 tau, free-fall energy and velocity, spinning-body
momentum and energy, and the batched step against a per-environment step. Prints a table and writes JSON.

    python bench/sim_physics_figures.py [--out bench/results/sim_physics_figures.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from robot_ac.sim.quadrotor import dynamics
from robot_ac.sim.quadrotor.env import QuadrotorEnv
from robot_ac.sim.quadrotor.held_command import check_params, fly_held
from robot_ac.sim.task_config import load_task


def hover_drift_m() -> float:
    task = dataclasses.replace(load_task("quadrotor-hover"), episode_seconds=20.0)
    env = QuadrotorEnv(task, num_envs=2, domain_randomization=False, observation_noise=False)
    env.reset(seed=0)
    env.state.zero_()
    env.state[:, 3] = 1.0
    env.state[:, dynamics.RPM] = env.robot.hover_rpm()
    action = torch.full((2, 4), env.hover_action)
    for _ in range(1000):  # 10 s at 100 Hz
        env.step(action)
    return env.position.norm(dim=-1).max().item()


def torque_relative_error() -> float:
    p = check_params(3)
    quat, zeros = torch.tensor([[1.0, 0, 0, 0]] * 3), torch.zeros(3, 3)
    torque = torch.tensor([[1e-6, 0, 0], [0, -2e-6, 0], [3e-7, 4e-7, -5e-7]])
    _, _, _, angacc = dynamics.rigid_body_derivative(quat, zeros, zeros, zeros, torque, p.mass, p.inertia, 0.0)
    expected = torque / p.inertia
    nonzero = expected != 0
    return ((angacc - expected)[nonzero] / expected[nonzero]).abs().max().item()


def free_fall() -> dict:
    p, g = check_params(), 9.81
    m = p.mass.double()[0]
    state = torch.zeros(1, 17, dtype=torch.float64)
    state[0, 3] = 1.0
    state[0, dynamics.VEL] = torch.tensor([0.3, -0.2, 1.0], dtype=torch.float64)

    def energy(s: torch.Tensor) -> torch.Tensor:
        return 0.5 * m * (s[0, dynamics.VEL] ** 2).sum() + m * g * s[0, 2]

    end = fly_held(state, p, 1.0, g, 0.01)
    expected_v = state[0, dynamics.VEL] + torch.tensor([0.0, 0.0, -g], dtype=torch.float64)
    return {"energy_relative_change": ((energy(end) - energy(state)) / energy(state)).abs().item(),
            "velocity_error_m_s": (end[0, dynamics.VEL] - expected_v).abs().max().item()}


def spinning_body() -> dict:
    p = check_params()
    inertia = p.inertia.double()[0]
    state = torch.zeros(1, 17, dtype=torch.float64)
    state[0, 3] = 1.0
    state[0, dynamics.ANGVEL] = torch.tensor([3.0, -2.0, 5.0], dtype=torch.float64)

    def momentum(s: torch.Tensor) -> torch.Tensor:
        return dynamics.quat_to_rotmat(s[:, dynamics.QUAT])[0] @ (inertia * s[0, dynamics.ANGVEL])

    def energy(s: torch.Tensor) -> torch.Tensor:
        return 0.5 * (inertia * s[0, dynamics.ANGVEL] ** 2).sum()

    end = fly_held(state, p, 1.0, 0.0, 0.001)
    return {"momentum_relative_change": ((momentum(end) - momentum(state)).norm() / momentum(state).norm()).item(),
            "energy_relative_change": ((energy(end) - energy(state)) / energy(state)).abs().item()}


def batched_against_per_environment(n: int = 64) -> float:
    """Largest difference of the batched step's state from a per-environment RK4 step (both float32)."""
    env = QuadrotorEnv(num_envs=n, seed=3)
    env.reset()
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        env.step(torch.rand(n, 4, generator=generator) * 2 - 1)
    before, history_before = env.state.clone(), env.history.clone()
    actions = torch.rand(n, 4, generator=generator) * 2 - 1
    env.step(actions)
    worst = 0.0
    for i in range(n):
        if env.episode_step[i] == 0:
            continue  # reset this step
        history = torch.cat([actions[i:i + 1, None], history_before[i:i + 1, :-1]], dim=1)
        applied = history[0, env.params.delay_steps[i]][None]
        rpm_cmd = env.robot.rpm_min + (applied + 1) * 0.5 * (env.robot.rpm_max - env.robot.rpm_min)
        p = env.params
        ref = dynamics.rk4_step(before[i:i + 1], rpm_cmd, env.dt, 1, p.mass[i:i + 1], p.inertia[i:i + 1],
                                p.thrust_coefficient[i:i + 1], p.yaw_torque_coefficient[i:i + 1],
                                p.motor_time_constant[i:i + 1], p.linear_drag[i:i + 1],
                                p.disturbance_force[i:i + 1], p.disturbance_torque[i:i + 1], env.rotors,
                                env.robot.gravity)
        worst = max(worst, (env.state[i:i + 1] - ref).abs().max().item())
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sim_physics_figures.json")
    args = parser.parse_args()
    rows = {"hover_drift_after_10_s_m (bound 1e-3)": hover_drift_m(),
            "pure_torque_angular_acceleration_relative_error (bound 1e-6)": torque_relative_error(),
            **{f"free_fall_{k}": v for k, v in free_fall().items()},
            **{f"spinning_body_{k}": v for k, v in spinning_body().items()},
            "batched_vs_per_environment_max_abs_difference (bound 1e-6)": batched_against_per_environment()}
    for name, value in rows.items():
        print(f"{name:>70} {value:.3e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "sim_physics_figures", "figures": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
