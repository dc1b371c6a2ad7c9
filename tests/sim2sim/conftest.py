"""Shared fixtures: policy bundles made on the spot (an untrained network and the LQR reference controller)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pybullet", reason="pybullet is not installed (pip install pybullet); sim2sim needs it")

from robot_ac.algos.networks import DeterministicActor  # noqa: E402
from robot_ac.policy import export_bundle  # noqa: E402
from robot_ac.sim.quadrotor.env import QuadrotorEnv  # noqa: E402
from robot_ac.sim.task_config import load_task  # noqa: E402
from robot_ac.sim2sim.reference_policy import export_reference_policy  # noqa: E402


@pytest.fixture(scope="session")
def hover_env() -> QuadrotorEnv:
    # L2F's 32 past actions: the LQR reference estimates the rotor speeds from the history by replaying the motor
    # lag (0.15 s) over it, and the task's 8 steps (0.08 s) are too short for that (nominal robot, no noise: 96.5% of
    # starts held with 32, 12.5% with 16, 2.5% with 8); sim2sim flies each bundle with its own history length.
    task = load_task("quadrotor-hover").with_action_history(32)
    return QuadrotorEnv(task, num_envs=1, domain_randomization=False, observation_noise=False, curriculum=False)


@pytest.fixture(scope="session")
def lqr_bundle(tmp_path_factory: pytest.TempPathFactory, hover_env: QuadrotorEnv) -> Path:
    path = tmp_path_factory.mktemp("lqr") / "lqr.onnx"
    return export_reference_policy(hover_env.contract.to_dict(), hover_env.robot, path, hover_env.dt)


@pytest.fixture(scope="session")
def untrained_bundle(tmp_path_factory: pytest.TempPathFactory, hover_env: QuadrotorEnv) -> Path:
    actor = DeterministicActor(
        hover_env.observation_size("policy"), 4, [64, 64], "tanh", action_offset=hover_env.hover_action)
    return export_bundle(actor, hover_env.contract.to_dict(), tmp_path_factory.mktemp("untrained") / "p.onnx")
