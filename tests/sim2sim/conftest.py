"""Shared fixtures: policy bundles made on the spot (an untrained network and the LQR reference controller)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pybullet", reason="pybullet is not installed (pip install pybullet); sim2sim needs it")

from robot_ac.algos.networks import DeterministicActor  # noqa: E402
from robot_ac.policy import export_bundle  # noqa: E402
from robot_ac.sim.quadrotor.env import QuadrotorEnv  # noqa: E402
from robot_ac.sim2sim.reference_policy import export_reference_policy  # noqa: E402


@pytest.fixture(scope="session")
def hover_env() -> QuadrotorEnv:
    return QuadrotorEnv(num_envs=1, domain_randomization=False, observation_noise=False, curriculum=False)


@pytest.fixture(scope="session")
def lqr_bundle(tmp_path_factory: pytest.TempPathFactory, hover_env: QuadrotorEnv) -> Path:
    path = tmp_path_factory.mktemp("lqr") / "lqr.onnx"
    return export_reference_policy(hover_env.contract.to_dict(), hover_env.robot, path, hover_env.dt)


@pytest.fixture(scope="session")
def untrained_bundle(tmp_path_factory: pytest.TempPathFactory, hover_env: QuadrotorEnv) -> Path:
    actor = DeterministicActor(
        hover_env.observation_size("policy"), 4, [64, 64], "tanh", action_offset=hover_env.hover_action)
    return export_bundle(actor, hover_env.contract.to_dict(), tmp_path_factory.mktemp("untrained") / "p.onnx")
