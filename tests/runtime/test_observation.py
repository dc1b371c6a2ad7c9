"""The runtime's observation builder reproduces the simulator's own policy observation (noise off)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from robot_ac.runtime.observation import ContractError, ObservationBuilder
from robot_ac.runtime.state import QuadrotorState, StateError
from robot_ac.sim.quadrotor.env import QuadrotorEnv


def _state(row: np.ndarray, stamp: float = 0.0) -> QuadrotorState:
    return QuadrotorState(position=row[0:3], quaternion_wxyz=row[3:7], linear_velocity=row[7:10],
                          angular_velocity=row[10:13], stamp=stamp)


def test_builder_matches_simulator_over_a_rollout_with_resets():
    # The default contract includes position_error_integral, so this also checks its integration and resets.
    env = QuadrotorEnv(num_envs=1, seed=3, observation_noise=False, domain_randomization=False, curriculum=False)
    env.episode_steps = 60  # force truncation resets inside the rollout
    builder = ObservationBuilder(env.contract.to_dict())
    obs = env.reset(seed=3)
    gen = torch.Generator().manual_seed(0)
    worst, resets = 0.0, 0
    for _ in range(150):
        row = env.state[0].double().numpy()
        built = builder.build(_state(row))
        worst = max(worst, float(np.abs(built[0] - obs["policy"][0].numpy()).max()))
        action = (env.hover_action + 0.3 * (torch.rand(1, 4, generator=gen) - 0.5)).clamp(-1, 1)
        result = env.step(action)
        builder.push_action(action[0].double().numpy())
        if bool(result.terminated[0] | result.truncated[0]):
            builder.reset()
            resets += 1
        obs = result.observations
    assert resets >= 2
    assert worst < 1e-6


def test_rotation_matrix_given_directly_equals_quaternion_path():
    q = np.array([0.9, 0.1, -0.3, 0.2])
    contract = QuadrotorEnv(num_envs=1, observation_noise=False).contract.to_dict()
    a, b = ObservationBuilder(contract), ObservationBuilder(contract)
    s = _state(np.r_[np.zeros(3), q, np.zeros(6)])
    rot = s.rotation_matrix().copy()
    s2 = QuadrotorState(np.zeros(3), np.zeros(3), np.zeros(3), 0.0, rotation=rot)
    np.testing.assert_allclose(a.build(s)[0], b.build(s2)[0], atol=1e-7)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)  # the quaternion was normalized first


def test_history_starts_at_initial_action_newest_first(quad_env_contract):
    hover, contract = quad_env_contract
    b = ObservationBuilder(contract)
    start = contract["observation"]["fields"][-1]["offset"]
    s = _state(np.r_[np.zeros(3), [1.0, 0, 0, 0], np.zeros(6)])
    np.testing.assert_allclose(b.build(s)[0, start:], hover, atol=1e-7)
    b.push_action(np.array([0.1, 0.2, 0.3, 0.4]))
    b.push_action(np.array([0.5, 0.6, 0.7, 0.8]))
    out = b.build(s)[0, start:]
    np.testing.assert_allclose(out[:8], [0.5, 0.6, 0.7, 0.8, 0.1, 0.2, 0.3, 0.4], atol=1e-7)
    np.testing.assert_allclose(out[8:], hover, atol=1e-7)


def test_position_target_is_subtracted(quad_env_contract):
    _, contract = quad_env_contract
    contract = copy.deepcopy(contract) | {"position_target": [1.0, 2.0, 3.0]}
    b = ObservationBuilder(contract)
    out = b.build(_state(np.r_[[1.5, 2.0, 2.0], [1.0, 0, 0, 0], np.zeros(6)]))
    np.testing.assert_allclose(out[0, :3], [0.5, 0.0, -1.0], atol=1e-7)


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["observation"]["fields"].append({"name": "lidar", "size": 1, "offset": 53}), "lidar"),
    (lambda c: c["observation"]["fields"][1].update(frame="world_to_body"), "frame"),
    (lambda c: c["observation"]["fields"][2].update(offset=99), "offset"),
    (lambda c: c["action_history"].update(layout="oldest_first"), "layout"),
    (lambda c: c.update(initial_action=[0.0, 0.0]), "initial_action"),
])
def test_contract_the_runtime_cannot_build_is_refused(quad_env_contract, mutate, message):
    contract = copy.deepcopy(quad_env_contract[1])
    mutate(contract)
    with pytest.raises(ContractError, match=message):
        ObservationBuilder(contract)


def test_wrong_sized_state_field_is_a_state_error(quad_env_contract):
    b = ObservationBuilder(quad_env_contract[1])
    s = QuadrotorState(np.zeros(2), np.zeros(3), np.zeros(3), 0.0, quaternion_wxyz=np.array([1.0, 0, 0, 0]))
    with pytest.raises(StateError, match="position has 2 values"):
        b.build(s)
