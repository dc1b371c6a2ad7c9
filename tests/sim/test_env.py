"""Batched environment behaviour: batching, resets, determinism, fault isolation, the contract."""

from __future__ import annotations

import pytest
import torch

from robot_ac.sim import make_env
from robot_ac.sim.quadrotor import dynamics
from robot_ac.sim.quadrotor.env import QuadrotorEnv
from robot_ac.sim.task_config import load_task


def _random_actions(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, 4), generator=g) * 2 - 1


def test_observation_groups_follow_the_declared_contract():
    env = QuadrotorEnv(num_envs=8)
    obs = env.reset(seed=1)
    # 3 + 9 + 3 + 3 as in Learning to Fly, the 3-value position-error integral and 8 x 4 past actions (L2F: 32 x 4)
    assert obs["policy"].shape == (8, 53)
    assert obs["critic"].shape == (8, env.observation_size("critic"))
    names = [f.name for f in env.contract.groups["policy"].fields]
    assert names == ["position_error", "rotation_matrix", "linear_velocity", "angular_velocity",
                     "position_error_integral", "action_history"]
    offsets = env.contract.groups["policy"].offsets()
    assert offsets["action_history"] == (21, 53)
    clean = env.contract.groups["critic"].offsets()
    # the critic sees the true position; the policy sees it with 1 mm noise
    torch.testing.assert_close(obs["critic"][:, :3], env.position)
    diff = (obs["policy"][:, :3] - env.position).abs()
    assert 0 < diff.max() < 0.01
    assert "disturbance_force" in clean and "parameter_ratios" in clean
    contract = env.contract.to_dict()
    assert contract["observation"]["size"] == 53 and contract["action"]["size"] == 4


def test_batched_step_equals_a_per_environment_reference_step():
    n = 16
    env = QuadrotorEnv(num_envs=n, seed=3)
    env.reset()
    for _ in range(3):
        env.step(_random_actions(n, 0))
    state_before = env.state.clone()
    history_before = env.history.clone()
    actions = _random_actions(n, 1)
    env.step(actions)
    for i in range(n):
        history = torch.cat([actions[i:i + 1, None], history_before[i:i + 1, :-1]], dim=1)
        applied = history[0, env.params.delay_steps[i]][None]
        rpm_cmd = env.robot.rpm_min + (applied + 1) * 0.5 * (env.robot.rpm_max - env.robot.rpm_min)
        p = env.params
        ref = dynamics.rk4_step(
            state_before[i:i + 1], rpm_cmd, env.dt, 1, p.mass[i:i + 1], p.inertia[i:i + 1],
            p.thrust_coefficient[i:i + 1], p.yaw_torque_coefficient[i:i + 1], p.motor_time_constant[i:i + 1],
            p.linear_drag[i:i + 1], p.disturbance_force[i:i + 1], p.disturbance_torque[i:i + 1], env.rotors,
            env.robot.gravity)
        if env.episode_step[i] == 0:
            continue  # that environment ended and was reset
        torch.testing.assert_close(env.state[i:i + 1], ref, rtol=1e-6, atol=1e-6)


def test_resets_only_touch_the_environments_that_ended():
    env = QuadrotorEnv(num_envs=6, seed=4)
    env.reset()
    env.state[2, 0] = 0.59
    env.state[2, dynamics.VEL] = torch.tensor([5.0, 0.0, 0.0])
    params_before = env.params.mass.clone()
    steps_before = env.episode_step.clone()
    result = env.step(torch.full((6, 4), env.hover_action))
    assert result.terminated.tolist() == [False, False, True, False, False, False]
    assert result.info["out_of_bounds"][2]
    assert env.episode_step[2] == 0 and (env.episode_step[[0, 1, 3, 4, 5]] == steps_before[[0, 1, 3, 4, 5]] + 1).all()
    assert env.params.mass[2] != params_before[2]
    assert torch.equal(env.params.mass[[0, 1, 3, 4, 5]], params_before[[0, 1, 3, 4, 5]])
    assert result.info["final_observations"]["critic"][2, 0] > 0.6  # the terminal observation, before the reset
    assert result.observations["critic"][2, 0].abs() <= 0.2  # the new episode's start
    reached = result.next_observation("critic")
    assert reached[2, 0] > 0.6
    torch.testing.assert_close(reached[[0, 1, 3, 4, 5]], result.observations["critic"][[0, 1, 3, 4, 5]])


def test_episodes_truncate_at_the_time_limit():
    env = QuadrotorEnv(num_envs=4, seed=5, domain_randomization=False)
    env.reset()
    env.state[:, :3] = 0.0
    env.state[:, 3:7] = torch.tensor([1.0, 0, 0, 0])
    env.state[:, 7:13] = 0.0
    for step in range(env.episode_steps):
        result = env.step(torch.full((4, 4), env.hover_action))
        if step < env.episode_steps - 1:
            assert not result.truncated.any()
    assert result.truncated.all() and not result.terminated.any()


def test_same_seed_same_trajectory_and_different_seed_differs():
    def rollout(seed: int) -> torch.Tensor:
        env = QuadrotorEnv(num_envs=32, seed=seed)
        obs = [env.reset()["policy"]]
        for t in range(60):
            obs.append(env.step(_random_actions(32, t)).observations["policy"])
        return torch.stack(obs)

    assert torch.equal(rollout(7), rollout(7))
    assert not torch.equal(rollout(7), rollout(8))


def test_nan_actions_terminate_only_that_environment():
    env = QuadrotorEnv(num_envs=5, seed=6)
    env.reset()
    actions = _random_actions(5, 2)
    twin = QuadrotorEnv(num_envs=5, seed=6)
    twin.reset()
    bad = actions.clone()
    bad[3, 1] = float("nan")
    bad[1, 0] = float("inf")
    result = env.step(bad)
    reference = twin.step(torch.where(torch.isfinite(bad), bad, env.hover_action))
    assert result.info["nonfinite_action"].tolist() == [False, True, False, True, False]
    assert result.terminated[1] and result.terminated[3]
    for key, value in result.observations.items():
        assert torch.isfinite(value).all(), key
    assert torch.isfinite(result.reward).all()
    torch.testing.assert_close(env.state[[0, 2, 4]], twin.state[[0, 2, 4]])
    assert not reference.terminated[[0, 2, 4]].any()


def test_diverged_state_is_flagged_and_contained():
    env = QuadrotorEnv(num_envs=3, seed=9)
    env.reset()
    env.state[1, dynamics.ANGVEL] = float("inf")
    result = env.step(torch.full((3, 4), env.hover_action))
    assert result.info["nonfinite_state"].tolist() == [False, True, False]
    assert result.terminated[1]
    assert all(torch.isfinite(v).all() for v in result.next_observations().values())
    assert torch.isfinite(env.state).all()


def test_domain_randomization_spans_both_published_parameter_sets():
    env = QuadrotorEnv(num_envs=4096, seed=0)
    env.reset()
    ixx = env.params.inertia[:, 0]
    assert ixx.min() < 5e-6 and ixx.max() > 1.3e-5  # L2F 3.85e-6 .. system identification 1.4e-5
    km = env.params.yaw_torque_coefficient
    assert km.min() < 0.007 and km.max() > 0.024  # L2F 0.00596 .. cf2x.urdf 0.0251
    assert set(env.params.delay_steps.unique().tolist()) == {0, 1}
    assert env.params.disturbance_force.std() == pytest.approx(0.0132, rel=0.1)


def test_start_states_within_declared_ranges():
    env = QuadrotorEnv(num_envs=2048, seed=1)
    env.reset()
    s = env.state
    assert s[:, dynamics.POS].abs().max() <= 0.2 and s[:, dynamics.VEL].abs().max() <= 1.0
    tilt = 2 * torch.acos(s[:, 3].clamp(-1, 1))
    assert tilt.max() <= torch.pi / 2 + 1e-4 and tilt.max() > 1.4
    at_rest = (s[:, dynamics.POS].abs().sum(-1) == 0).float().mean()
    assert 0.05 < at_rest < 0.15


def test_reward_curriculum_grows_weights_to_their_caps():
    env = QuadrotorEnv(num_envs=1000, seed=0)
    env.reset()
    start = env.reward_weights.clone()
    env.set_total_env_steps(10_000_000)
    assert torch.allclose(env.reward_weights, torch.tensor([40.0, 5.0, 1.0, 1.0]))
    assert (env.reward_weights >= start).all()


def test_reward_floor_bounds_the_shaped_reward_and_keeps_the_termination_penalty():
    import dataclasses

    env = QuadrotorEnv(num_envs=4, seed=0)
    cfg = dataclasses.replace(env.task.reward, floor=0.0, termination_penalty=3.0)
    env.task = dataclasses.replace(env.task, reward=cfg)
    terms = torch.tensor([[0.0] * 7, [0.3, 0.5, 4.0, 1.0, 0.0, 0.0, 0.3**0.5]]).repeat(2, 1)
    terminated = torch.tensor([False, False, True, True])
    weights = torch.tensor([40.0, 5.0, 1.0, 1.0])
    reward = env.compute_reward(terms, terminated, weights)
    unfloored = cfg.constant - cfg.scale * (terms[:, :4] * weights).sum(-1)
    assert unfloored[1] < 0  # the far, fast state would pay less than ending the episode without the floor
    assert torch.allclose(reward, unfloored.clamp_min(0.0) - 3.0 * terminated.float())


def test_linear_position_term_keeps_a_gradient_near_the_target():
    import dataclasses

    env = QuadrotorEnv(num_envs=2, seed=0)
    env.task = dataclasses.replace(env.task, reward=dataclasses.replace(env.task.reward, position_linear=1.0))
    result = env.step(torch.full((2, 4), env.hover_action))
    terms = result.info["reward_terms"]
    assert torch.allclose(terms[:, 6], terms[:, 0].sqrt())  # |p| of the step, beside |p|^2
    near = torch.tensor([[0.03**2, 0, 0, 0, 0, 0, 0.03], [0.02**2, 0, 0, 0, 0, 0, 0.02]])
    reward = env.compute_reward(near, torch.zeros(2, dtype=torch.bool), torch.tensor([5.0, 5.0, 0.01, 0.01]))
    # 1 cm closer pays 0.01 from the linear term, 25x what the squared term (scale 0.5, weight 5) pays.
    assert float(reward[1] - reward[0]) == pytest.approx(0.01 + 0.5 * 5 * (0.03**2 - 0.02**2), rel=1e-4)


def test_make_env_builds_resets_and_steps_every_task():
    env = make_env("quadrotor-hover", num_envs=4)
    obs = env.reset(seed=0)
    result = env.step(torch.zeros(4, env.action_size))
    for group in ("policy", "critic"):
        assert obs[group].shape == result.observations[group].shape
        assert torch.isfinite(result.observations[group]).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine: GPU path not run")
def test_cuda_matches_cpu():
    cpu = QuadrotorEnv(num_envs=64, seed=2, observation_noise=False, domain_randomization=False)
    gpu = QuadrotorEnv(num_envs=64, seed=2, observation_noise=False, domain_randomization=False, device="cuda")
    cpu.reset()
    gpu.reset()
    gpu.state.copy_(cpu.state)
    a = _random_actions(64, 0)
    cpu.step(a)
    gpu.step(a.cuda())
    torch.testing.assert_close(gpu.state.cpu(), cpu.state, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device", ["cpu", "cpu-inductor", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine: GPU path not run"))])
def test_compiled_step_matches_eager_through_resets(device, monkeypatch):
    if device == "cpu-inductor":  # the CPU's fallback where no C compiler works: torch.compile, as on CUDA
        monkeypatch.setenv("ROBOT_AC_NATIVE_STEP", "0")
        device = "cpu"
    eager = QuadrotorEnv(num_envs=64, seed=2, device=device)
    compiled = QuadrotorEnv(num_envs=64, seed=2, compile=True, device=device)
    eager.reset()
    compiled.reset()
    resets = 0
    # Triton's fused kernels order float operations differently: on an H200, 1000 environments differed by up to
    # 1.5e-4 in an observation over 60 steps (2026-11-27), against 1e-6 on this CPU.
    tol = 1e-4 if device == "cpu" else 1e-3
    for t in range(40):  # random motor commands crash most drones within 40 steps: resets happen in the graph
        a = _random_actions(64, t).to(device)
        r1, r2 = eager.step(a), compiled.step(a)
        resets += int((r1.terminated | r1.truncated).sum())
        assert torch.equal(r1.terminated, r2.terminated)
        torch.testing.assert_close(r2.reward, r1.reward, rtol=tol / 10, atol=tol / 10)
        for key in ("policy", "critic"):
            torch.testing.assert_close(r2.observations[key], r1.observations[key], rtol=tol, atol=tol)
            torch.testing.assert_close(r2.next_observation(key), r1.next_observation(key), rtol=tol, atol=tol)
    assert resets > 20


def test_start_pool_refills_deterministically_and_stays_in_range():
    def rollout(seed: int) -> tuple[torch.Tensor, int]:
        env = QuadrotorEnv(num_envs=4, seed=seed)  # a pool of 64 starts: topped up many times
        env.reset()
        starts, resets = [], 0
        for t in range(1200):
            result = env.step(_random_actions(4, t))
            done = result.terminated | result.truncated
            resets += int(done.sum())
            starts.append(env.state[done].clone())
        assert torch.all(env.episode_step[done] == 0)
        return torch.cat(starts), resets

    starts, resets = rollout(11)
    assert resets > 64  # more resets than the pool holds, so it was topped up
    assert starts[:, dynamics.POS].abs().max() <= 0.2 and starts[:, dynamics.VEL].abs().max() <= 1.0
    again, _ = rollout(11)
    assert torch.equal(starts, again)
    assert len({tuple(row.tolist()) for row in starts}) == len(starts)  # no start state drawn twice

    # Every environment ending every step takes the whole pool between two top-ups: still no start drawn twice.
    env = QuadrotorEnv(num_envs=4, seed=11)
    env.reset()
    taken = [env.state.clone()]
    for _ in range(100):
        assert env.step(torch.full((4, 4), float("nan"))).terminated.all()
        taken.append(env.state.clone())
    assert len({tuple(row.tolist()) for row in torch.cat(taken)}) == 4 * 101


def test_position_integral_field_integrates_clamps_and_resets():
    from robot_ac.sim.quadrotor.env import INTEGRAL_LIMIT_M_S

    env = QuadrotorEnv(num_envs=3, seed=0, observation_noise=False, domain_randomization=False)
    env.reset()
    start, end = env.contract.groups["policy"].offsets()["position_error_integral"]
    env.state[:, :3] = torch.tensor([[0.1, 0.0, 0.0], [0.0, -0.2, 0.0], [0.0, 0.0, 0.0]])
    env.state[:, 3:7] = torch.tensor([1.0, 0.0, 0.0, 0.0])
    env.state[:, 7:13] = 0.0
    obs = env.step(torch.full((3, 4), env.hover_action)).observations["policy"]
    torch.testing.assert_close(obs[:, start:end], env.position * env.dt, rtol=1e-3, atol=1e-7)
    env.position_integral.fill_(10.0)
    obs = env.step(torch.full((3, 4), env.hover_action)).observations["policy"]
    assert obs[:, start:end].abs().max() <= INTEGRAL_LIMIT_M_S
    env.state[1, 0] = 0.7  # leaves the box: reset zeroes its integral
    obs = env.step(torch.full((3, 4), env.hover_action)).observations["policy"]
    assert torch.all(obs[1, start:end] == 0) and torch.all(obs[0, start:end] != 0)


def test_compiled_environments_with_different_configurations_do_not_share_a_graph():
    noisy = QuadrotorEnv(num_envs=8, seed=0, compile=True)
    clean = QuadrotorEnv(num_envs=8, seed=0, compile=True, observation_noise=False)
    noisy.reset()
    clean.reset()
    hover = torch.full((8, 4), noisy.hover_action)
    a, b = noisy.step(hover).observations, clean.step(hover).observations
    assert (a["policy"][:, :3] - a["critic"][:, :3]).abs().max() > 0
    assert torch.equal(b["policy"][:, :3], b["critic"][:, :3])


def test_task_with_another_history_length_builds_that_contract():
    """An older bundle's contract (L2F's 32 past actions) can be rebuilt from today's task file."""
    task = load_task("quadrotor-hover")
    longer = task.with_action_history(32)
    env = QuadrotorEnv(longer, num_envs=2)
    assert env.observation_size("policy") == 149 and env.contract.to_dict()["action_history"]["length"] == 32
    assert task.with_action_history(task.action_history) is task
