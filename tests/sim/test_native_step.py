"""The fused C step (robot_ac/sim/quadrotor/native_step.c) against the torch step it replaces on the CPU.

The torch step (``compile=False``) is the reference. The C step performs the same float32 operations in the same
order, so states, rewards, flags and the critic group agree exactly; only the noise differs by float rounding
(its logarithm and sine/cosine are polynomials, not torch's), by less than 1e-6 on the policy group.
"""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch

from robot_ac.c_source import host_compiler
from robot_ac.config import Range
from robot_ac.sim.contract import ObsField
from robot_ac.sim.quadrotor import native
from robot_ac.sim.quadrotor.env import QuadrotorEnv
from robot_ac.sim.quadrotor.params import load_quadrotor
from robot_ac.sim.task_config import load_task

pytestmark = pytest.mark.skipif(host_compiler() is None, reason="no host C compiler (cc or $CC) on this machine")


def _random_actions(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, 4), generator=g) * 2 - 1


def _assert_same_steps(reference: QuadrotorEnv, fused: QuadrotorEnv, steps: int, nan_env: int | None = None,
                       counts: dict[str, int] | None = None) -> int:
    """Step both with the same actions; returns how many episodes ended (resets happen inside the step) and adds
    the truncated ones to ``counts["truncated"]``."""
    assert not isinstance(reference._core, type(fused._core))
    reference.reset()
    fused.reset()
    buffer = fused.history
    ended = 0
    for t in range(steps):
        actions = _random_actions(reference.num_envs, t)
        if nan_env is not None and t % 7 == 3:
            actions[nan_env, t % 4] = float("nan")
        a, b = reference.step(actions), fused.step(actions)
        ended += int((a.terminated | a.truncated).sum())
        if counts is not None:
            counts["truncated"] = counts.get("truncated", 0) + int(a.truncated.sum())
        for key in ("terminated", "truncated"):
            assert torch.equal(getattr(a, key), getattr(b, key)), (t, key)
        assert torch.equal(a.reward, b.reward), t
        for key in ("reward_terms", "out_of_bounds", "nonfinite_state", "nonfinite_action", "position_error",
                    "episode_step"):
            assert torch.equal(a.info[key], b.info[key]), (t, key)
        for group in reference.contract.groups:
            done = a.terminated | a.truncated  # final observations are defined where an episode ended
            for x, y in ((a.observations[group], b.observations[group]),
                         (a.info["final_observations"][group][done], b.info["final_observations"][group][done]),
                         (a.next_observation(group), b.next_observation(group))):
                if group == "policy" and reference.observation_noise:
                    torch.testing.assert_close(y, x, rtol=0.0, atol=1e-6)
                else:
                    assert torch.equal(x, y), (t, group)
        assert torch.equal(reference.state, fused.state), t
        assert torch.equal(reference.history, fused.history), t
        assert fused.history is buffer  # the fused step shifts the history in place
        assert torch.equal(reference.params.values, fused.params.values), t
        assert torch.equal(reference.params.delay_steps, fused.params.delay_steps), t
        assert torch.equal(reference._pool_cursor, fused._pool_cursor), t
    return ended


def test_the_hover_task_steps_exactly_as_the_torch_step_through_resets():
    reference = QuadrotorEnv(num_envs=64, seed=2)
    fused = QuadrotorEnv(num_envs=64, seed=2, compile=True)
    assert fused.uses_native_step
    assert _assert_same_steps(reference, fused, 120) > 100  # random commands crash most drones within 40 steps


def test_every_observation_field_delays_substeps_and_reward_terms_match():
    """A task that uses every field this robot provides, in both groups, noise on an odd number of columns, a
    longer actuation delay, two RK4 sub-steps, drag, every reward term and short episodes (truncation): the header
    generator's paths."""
    hover = load_task("quadrotor-hover")
    short_history = dataclasses.replace(hover, action_history=5, observations={
        group: [f for f in fields if f.name != "action_history"] for group, fields in hover.observations.items()})
    every = [ObsField(name, size, unit, frame) for name, (size, unit, frame, _) in
             QuadrotorEnv(short_history, num_envs=1)._providers.items()]
    policy = [dataclasses.replace(f, noise_std=0.01) if f.name in ("linear_velocity", "rotor_speeds") else f
              for f in reversed(every)]  # noise on 3 + 4 columns with a row field between: 7 noisy columns
    reward = dataclasses.replace(hover.reward, action_rate=0.3, action_magnitude=0.2, termination_penalty=5.0,
                                 floor=-1.0)
    task = dataclasses.replace(short_history, substeps=2, episode_seconds=0.3,
                               observations={"policy": policy, "critic": every}, reward=reward)
    robot = load_quadrotor("crazyflie")
    robot = dataclasses.replace(robot, linear_drag=0.01, randomization=dataclasses.replace(
        robot.randomization, actuation_delay_steps=Range(0, 3)))
    reference = QuadrotorEnv(task, num_envs=37, seed=5, robot=robot)
    fused = QuadrotorEnv(task, num_envs=37, seed=5, robot=robot, compile=True)
    assert fused._max_delay == 3 and fused._buffer_length == 5
    counts: dict[str, int] = {}
    assert _assert_same_steps(reference, fused, 60, counts=counts) > 20
    assert counts["truncated"] > 0  # 30-step episodes: some survive to their end


def test_a_non_finite_action_ends_only_its_own_episode():
    reference = QuadrotorEnv(num_envs=16, seed=3, observation_noise=False)
    fused = QuadrotorEnv(num_envs=16, seed=3, observation_noise=False, compile=True)
    _assert_same_steps(reference, fused, 30, nan_env=5)
    fused.reset()
    actions = torch.full((16, 4), fused.hover_action)
    actions[5, 2] = float("inf")
    result = fused.step(actions)
    assert result.terminated.tolist() == [i == 5 for i in range(16)]
    assert result.info["nonfinite_action"][5] and not result.info["nonfinite_state"][5]
    assert torch.isfinite(result.observations["policy"]).all() and torch.isfinite(fused.state).all()


def test_batches_split_across_threads_match_one_thread():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # 1000 environments: above the size where the step uses several threads
        reference = QuadrotorEnv(num_envs=1000, seed=9)
        fused = QuadrotorEnv(num_envs=1000, seed=9, compile=True)
        assert _assert_same_steps(reference, fused, 40) > 200  # resets in both threads' halves: the pool order
    finally:
        torch.set_num_threads(threads)


def test_the_library_is_built_once_per_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    header = native.generate_header(QuadrotorEnv(num_envs=4))
    first = native.library_for(header)
    assert first.parent.parent == tmp_path and first.is_file()
    mtime = first.stat().st_mtime_ns
    assert native.library_for(header) == first and first.stat().st_mtime_ns == mtime
    other = native.generate_header(QuadrotorEnv(num_envs=4, observation_noise=False))
    assert native.library_for(other) != first
    assert not list(tmp_path.rglob("step_config.h"))  # the build directory is gone


def test_without_a_working_compiler_the_environment_compiles_the_torch_step(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    header = native.generate_header(QuadrotorEnv(num_envs=4))
    monkeypatch.setenv("CC", "no-such-compiler")
    with pytest.raises(native.NativeStepUnavailable, match="no-such-compiler"):
        native.library_for(header)
    monkeypatch.setenv("CC", "false")  # a compiler that fails
    with pytest.raises(native.NativeStepUnavailable, match="could not build"):
        native.library_for(header)
    assert not list(tmp_path.rglob("*.so"))  # nothing half-written
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = QuadrotorEnv(num_envs=4, compile=True)
    assert type(env._core).__name__ == "_Precompiled"  # torch.compile, compiled at its first call
    assert not env.uses_native_step
    assert any("native CPU step is not available" in str(w.message) for w in caught)


def test_a_wrong_dtype_is_refused_with_the_input_named():
    env = QuadrotorEnv(num_envs=4, compile=True)
    env.reset()
    env.episode_step = env.episode_step.float()
    with pytest.raises(ValueError, match="episode_step must be a torch.int64"):
        env.step(torch.zeros(4, 4))


def test_a_compiler_without_openmp_builds_the_portable_single_threaded_step(tmp_path, monkeypatch):
    """clang without OpenMP, or a toolchain that refuses -march=native: the step is built without them."""
    wrapper = tmp_path / "cc-without-openmp"
    wrapper.write_text('#!/bin/sh\nfor a in "$@"; do case "$a" in -fopenmp|-march=native) '
                       'echo "unsupported: $a" >&2; exit 1;; esac; done\nexec cc "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(wrapper))
    reference = QuadrotorEnv(num_envs=300, seed=4)  # above the size where the OpenMP build splits the batch
    fused = QuadrotorEnv(num_envs=300, seed=4, compile=True)
    assert len(list((tmp_path / "cache").rglob("*.so"))) == 1
    assert _assert_same_steps(reference, fused, 40) > 50
