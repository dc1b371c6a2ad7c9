"""Failed-start replay: replayed episodes restart exactly where terminated episodes started, and only in training."""

from __future__ import annotations

import pytest
import torch

from robot_ac.sim.quadrotor.env import QuadrotorEnv


def _run(env: QuadrotorEnv, steps: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flight; returns the starts (state and parameters) of the episodes that left the box."""
    gen = torch.Generator().manual_seed(seed)
    env.reset()
    state, values = env.state.clone(), env.params.values.T.clone()
    failed_state, failed_values = [], []
    for _ in range(steps):
        result = env.step(torch.rand(env.num_envs, 4, generator=gen) * 2 - 1)
        oob = result.info["out_of_bounds"]
        failed_state.append(state[oob])
        failed_values.append(values[oob])
        done = result.terminated | result.truncated
        state[done], values[done] = env.state[done], env.params.values.T[done]
    return torch.cat(failed_state), torch.cat(failed_values)


def test_replayed_starts_are_starts_of_terminated_episodes_with_their_parameters():
    env = QuadrotorEnv(num_envs=64, seed=0, replay_failed_starts=0.5)
    failed_state, failed_values = _run(env, 200)
    assert len(failed_state) > 50
    pool_state, pool_values = env._pool_state.T, env._pool_params.values.T
    is_replay = (pool_state[:, None] == failed_state[None]).all(-1).any(-1)
    assert 0 < int(is_replay.sum()) < len(pool_state)
    # a replayed start carries the parameters its episode had (mass, inertia, motor lag, disturbance, ...)
    for i in is_replay.nonzero().squeeze(-1)[:20].tolist():
        j = (pool_state[i] == failed_state).all(-1).nonzero()[0, 0]
        assert torch.equal(pool_values[i], failed_values[j])


def test_without_replay_no_start_repeats_and_fraction_is_checked():
    env = QuadrotorEnv(num_envs=64, seed=0)
    failed_state, _ = _run(env, 200)
    # the starts still to be taken (entries already taken stay in the ring until the next refill)
    cursor, size = int(env._pool_cursor), env._pool_size
    upcoming = [(cursor + k) % size for k in range(size - (cursor - env._pool_refilled))]
    assert len(upcoming) >= env.num_envs
    pool_state = env._pool_state.T[upcoming]
    assert not (pool_state[:, None] == failed_state[None]).all(-1).any()
    with pytest.raises(ValueError, match="replay fraction"):
        QuadrotorEnv(num_envs=4, replay_failed_starts=1.5)
