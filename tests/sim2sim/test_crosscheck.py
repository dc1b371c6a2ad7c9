"""Cross-check: with every unmodelled effect off, one open-loop motor sequence gives the same 1 s trajectory in the
training simulator and in pybullet.

Stated tolerance over 1 s (pybullet at 1 kHz): position 1 cm, attitude 5 degrees, velocity 5 cm/s, rotor speed
1 rpm. Measured on these sequences (tumbling flights of 3-6 m and ~100 degrees): at most 8 mm, 4.1 degrees,
3.1 cm/s; the residual is pybullet's first-order integrator and shrinks ~4x at 4 kHz, which the second test checks.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from robot_ac.paths import robot_file
from robot_ac.sim.task_config import load_task
from robot_ac.sim2sim.backend import BackendOptions, create_backend
from robot_ac.sim2sim.effects import EffectSettings
from robot_ac.sim2sim.runner import sample_start_states
from robot_ac.sim2sim.state import rotation_angle

POSITION_TOL_M = 0.01
ATTITUDE_TOL_RAD = np.radians(5.0)
VELOCITY_TOL_M_S = 0.05
RPM_TOL = 1.0
EPISODES = 4
STEPS = 100  # 1 s at 100 Hz


def motor_sequences(episodes: int, hover: float) -> np.ndarray:
    """Piecewise-constant (100 ms blocks) random commands around hover: rolls, pitches, yaws and climbs."""
    rng = np.random.default_rng(0)
    blocks = hover + 0.15 * rng.standard_normal((episodes, STEPS // 10, 4))
    return np.clip(np.repeat(blocks, 10, axis=1), -1.0, 1.0)


def max_gaps(robot: str, physics_hz: float, urdf: Path | None = None) -> dict[str, float]:
    """Largest gaps between the engines over the sequences; also how far the flights went (to show they moved)."""
    task = load_task("quadrotor-hover")
    options = BackendOptions(robot, task, EffectSettings(), physics_hz=physics_hz, urdf=urdf)
    reference, pybullet = create_backend("training", options), create_backend("pybullet", options)
    starts = sample_start_states(task, "crazyflie", EPISODES, seed=7)
    gaps = dict.fromkeys(("position", "attitude", "velocity", "rpm", "travel", "rotation"), 0.0)
    try:
        for start, sequence in zip(starts, motor_sequences(EPISODES, reference.env.hover_action), strict=True):
            reference.reset(start)
            pybullet.reset(start)
            for command in sequence:
                reference.step(command)
                pybullet.step(command)
                a, b = reference.true_state(), pybullet.true_state()
                for key, value in (
                    ("position", np.linalg.norm(a.position - b.position)),
                    ("attitude", rotation_angle(a.quaternion, b.quaternion)),
                    ("velocity", np.linalg.norm(a.linear_velocity - b.linear_velocity)),
                    ("rpm", np.abs(a.rotor_rpm - b.rotor_rpm).max()),
                    ("travel", np.linalg.norm(a.position - start.position)),
                    ("rotation", rotation_angle(a.quaternion, start.quaternion)),
                ):
                    gaps[key] = max(gaps[key], float(value))
    finally:
        pybullet.close()
    return gaps


def test_open_loop_trajectories_agree_within_tolerance() -> None:
    gaps = max_gaps("crazyflie", physics_hz=1000.0)
    assert gaps["travel"] > 0.5 and gaps["rotation"] > np.radians(45), f"sequences too tame to prove much: {gaps}"
    assert gaps["position"] < POSITION_TOL_M, gaps
    assert gaps["attitude"] < ATTITUDE_TOL_RAD, gaps
    assert gaps["velocity"] < VELOCITY_TOL_M_S, gaps
    assert gaps["rpm"] < RPM_TOL, gaps


def test_residual_is_integration_error_that_shrinks_with_the_physics_rate() -> None:
    coarse, fine = max_gaps("crazyflie", 1000.0), max_gaps("crazyflie", 4000.0)
    assert fine["position"] < 0.5 * coarse["position"], (coarse, fine)
    assert fine["attitude"] < 0.5 * coarse["attitude"], (coarse, fine)


def test_a_wrong_rotor_model_breaks_the_tolerance(tmp_path: Path) -> None:
    """Teeth: flip the yaw-torque directions in pybullet only and the cross-check must fail."""
    data = yaml.safe_load(robot_file("crazyflie").read_text())
    data["rotor_yaw_directions"] = [-d for d in data["rotor_yaw_directions"]]
    data.pop("randomization")
    flipped = tmp_path / "crazyflie_flipped.yaml"
    flipped.write_text(yaml.safe_dump(data))
    task = load_task("quadrotor-hover")
    options = BackendOptions("crazyflie", task, EffectSettings())
    reference = create_backend("training", options)
    wrong = create_backend("pybullet", dataclasses.replace(options, robot=str(flipped),
                                                           urdf=robot_file("crazyflie").with_suffix(".urdf")))
    start = sample_start_states(task, "crazyflie", 1, seed=7)[0]
    reference.reset(start)
    wrong.reset(start)
    worst = 0.0
    for command in motor_sequences(1, reference.env.hover_action)[0]:
        reference.step(command)
        wrong.step(command)
        worst = max(worst, rotation_angle(reference.true_state().quaternion, wrong.true_state().quaternion))
    wrong.close()
    assert worst > ATTITUDE_TOL_RAD, np.degrees(worst)


@pytest.mark.parametrize("physics_hz", [100.0])
def test_physics_rate_below_240_hz_is_refused(physics_hz: float) -> None:
    from robot_ac.sim2sim.backend import Sim2SimError

    options = BackendOptions("crazyflie", load_task("quadrotor-hover"), EffectSettings(), physics_hz=physics_hz)
    with pytest.raises(Sim2SimError, match="240 Hz"):
        create_backend("pybullet", options)
