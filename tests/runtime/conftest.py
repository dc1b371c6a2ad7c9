"""Runtime test fixtures: small untrained bundles (quadrotor from the simulator's contract, a synthetic arm)."""

from __future__ import annotations

import copy

import pytest
import torch

from robot_ac.algos.networks import DeterministicActor
from robot_ac.policy import export_bundle
from robot_ac.sim.quadrotor.env import QuadrotorEnv

ARM_JOINTS = 7
ARM_HISTORY = 2


@pytest.fixture(scope="session")
def quad_env_contract() -> tuple[float, dict]:
    env = QuadrotorEnv(num_envs=1, observation_noise=False, domain_randomization=False, curriculum=False)
    return env.hover_action, env.contract.to_dict()


@pytest.fixture(scope="session")
def quad_bundle(tmp_path_factory, quad_env_contract) -> str:
    """Untrained actor around hover (outputs ~0.334 on every motor)."""
    torch.manual_seed(0)
    hover, contract = quad_env_contract
    actor = DeterministicActor(contract["observation"]["size"], 4, [64, 64], "tanh", action_offset=hover)
    return str(export_bundle(actor, contract, tmp_path_factory.mktemp("bundles") / "quad.onnx"))


@pytest.fixture(scope="session")
def hover_bundle(tmp_path_factory, quad_env_contract) -> str:
    """Last layer zeroed: exactly the contract's hover action whatever the input. With domain randomization off
    it holds a drone started at rest in the air, so a closed loop that delivers commands on time stays airborne
    (late or missing commands, or motors-off, would let it fall)."""
    hover, contract = quad_env_contract
    actor = DeterministicActor(contract["observation"]["size"], 4, [64, 64], "tanh", action_offset=hover)
    with torch.no_grad():
        actor.net[-1].weight.zero_()
    return str(export_bundle(actor, contract, tmp_path_factory.mktemp("bundles") / "hover.onnx"))


def arm_contract() -> dict:
    """A 7-joint arm contract: joint positions/velocities and two past actions; actions are radians targets."""
    n = ARM_JOINTS
    fields = [
        {"name": "joint_position", "size": n, "unit": "rad", "frame": "joint", "offset": 0, "noise_std": 0.0},
        {"name": "joint_velocity", "size": n, "unit": "rad/s", "frame": "joint", "offset": n, "noise_std": 0.0},
        {"name": "action_history", "size": n * ARM_HISTORY, "unit": "normalized", "frame": "joint",
         "offset": 2 * n, "noise_std": 0.0},
    ]
    return {
        "version": 1, "robot": "panda", "task": "arm-reach", "control_rate_hz": 100.0,
        "observation": {"size": n * (2 + ARM_HISTORY), "fields": fields},
        "action": {"size": n, "fields": [{"name": "joint_position_target", "size": n, "unit": "normalized",
                                          "low": -1.0, "high": 1.0, "physical_low": -2.9, "physical_high": 2.9}]},
        "action_history": {"length": ARM_HISTORY, "layout": "newest_first", "field": "action_history"},
        "initial_action": [0.0] * n,
    }


@pytest.fixture(scope="session")
def arm_bundle(tmp_path_factory) -> str:
    torch.manual_seed(1)
    contract = arm_contract()
    actor = DeterministicActor(contract["observation"]["size"], ARM_JOINTS, [32], "tanh")
    return str(export_bundle(actor, copy.deepcopy(contract), tmp_path_factory.mktemp("bundles") / "arm.onnx"))
