"""Fly one bundle from the same start states in the training simulator and in an independent engine.

Start states come from the training simulator's own reset (nominal robot, no domain randomization, no observation
noise in either engine, so the two runs differ only by the engine and the effects switched on). Every engine is
driven by the same controller, one control period at a time, and every episode ends by the same rule: the task's
position limit, a backend fault (ground contact, non-finite state) or time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from robot_ac.policy.bundle import Bundle, load_bundle
from robot_ac.sim.quadrotor.env import QuadrotorEnv
from robot_ac.sim.task_config import TaskConfig, load_task
from robot_ac.sim2sim.backend import (
    REFERENCE_ENGINE,
    Backend,
    BackendOptions,
    backend_target,
    create_backend,
    robot_kind,
)
from robot_ac.sim2sim.controller import Controller, make_controller
from robot_ac.sim2sim.effects import EffectSettings
from robot_ac.sim2sim.state import QuadrotorState
from robot_ac.sim2sim.training_backend import unbounded_env


@dataclass
class Episode:
    """One flown episode: per control step after the step (time, position error vector, command, rotor rpm)."""

    start: QuadrotorState
    times: np.ndarray       # [T] s since the start
    positions: np.ndarray   # [T, 3] m, relative to the target
    actions: np.ndarray     # [T, A] normalized commands
    rpm: np.ndarray         # [T, R]
    end_reason: str | None  # None: flew the whole episode

    @property
    def survived(self) -> bool:
        return self.end_reason is None


@dataclass
class EngineRun:
    """All episodes of one engine (and one set of effects)."""

    engine: str
    effects: EffectSettings
    episodes: list[Episode] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.engine == REFERENCE_ENGINE:
            return "training sim"
        return self.engine if not self.effects.active else f"{self.engine} +{self.effects.label()}"


@dataclass
class Sim2SimResult:
    bundle: Path
    robot: str
    task: TaskConfig
    engine: str
    seed: int
    steps: int
    physics_hz: float
    hover_action: float
    runs: list[EngineRun]

    @property
    def reference(self) -> EngineRun:
        return self.runs[0]


def sample_start_states(task: TaskConfig, robot: str, episodes: int, seed: int) -> list[QuadrotorState]:
    """The training simulator's start distribution, with the nominal robot (hover rpm, no randomization)."""
    env = QuadrotorEnv(task, num_envs=episodes, seed=seed, robot=robot, domain_randomization=False,
                       observation_noise=False, curriculum=False)
    env.reset(seed=seed)
    states = env.state.double().numpy()
    return [QuadrotorState.from_vector(states[i], env.num_rotors) for i in range(episodes)]


def _safe_mode(controller: Controller) -> str | None:
    reason = controller.safe_reason
    return None if reason is None else f"controller safe mode ({reason})"


def fly_episode(backend: Backend, controller: Controller, start: QuadrotorState, steps: int,
                position_limit: float, target: np.ndarray) -> Episode:
    """Reset both, then alternate controller and engine for ``steps`` control periods or until the episode ends."""
    backend.reset(start)
    controller.reset()
    times, positions, actions, rpms = [], [], [], []
    now, reason = 0.0, None
    for _ in range(steps):
        action = controller.act(backend.observed_state(), now)
        now += backend.step(action)
        state = backend.true_state()
        times.append(now)
        positions.append(state.position - target)
        actions.append(action)
        rpms.append(state.rotor_rpm)
        reason = backend.fault() or _safe_mode(controller)
        if reason is None and bool((np.abs(state.position - target) > position_limit).any()):
            reason = "out of bounds"
        if reason is not None:
            break
    return Episode(start, np.asarray(times), np.asarray(positions), np.asarray(actions), np.asarray(rpms), reason)


def fly_training_batch(options: BackendOptions, bundle: Bundle, starts: list[QuadrotorState], steps: int,
                       target: np.ndarray, bar: tqdm | None = None) -> EngineRun:
    """The reference run: every start state at once in the batched training simulator, one controller per robot.

    Same episode rule and records as ``fly_episode``; batching only saves the simulator's per-call overhead.
    """
    env = unbounded_env(options, len(starts))
    env.reset()
    env.state[:] = torch.as_tensor(np.stack([s.as_vector() for s in starts]), dtype=torch.float32)
    env.history[:] = env.hover_action
    controllers = [make_controller(bundle) for _ in starts]
    for controller in controllers:
        controller.reset()
    n, rotors, limit = len(starts), env.num_rotors, options.task.termination.position_limit
    positions, actions = np.zeros((steps, n, 3)), np.zeros((steps, n, env.action_size), dtype=np.float32)
    rpm = np.zeros((steps, n, rotors))
    flown, reasons, alive = np.full(n, steps), [None] * n, np.ones(n, dtype=bool)
    idle = np.full(env.action_size, env.hover_action, dtype=np.float32)  # fed to robots whose episode ended
    for t in range(steps):
        states, now = env.state.double().numpy(), t * options.task.dt
        actions[t] = np.stack([controllers[i].act(QuadrotorState.from_vector(states[i], rotors, now), now)
                               if alive[i] else idle for i in range(n)])
        result = env.step(torch.as_tensor(actions[t]))
        after = env.state.double().numpy()
        nonfinite = result.info["nonfinite_state"].numpy()
        positions[t], rpm[t] = after[:, :3] - target, after[:, 13:13 + rotors]
        for i in np.flatnonzero(alive):
            reason = ("non-finite state" if nonfinite[i] else _safe_mode(controllers[i])
                      or ("out of bounds" if bool((np.abs(positions[t, i]) > limit).any()) else None))
            if reason is not None:
                reasons[i], flown[i], alive[i] = reason, t + 1, False
                if bar is not None:
                    bar.update()
        if not alive.any():
            break
    if bar is not None:
        bar.update(int(alive.sum()))
    times = options.task.dt * np.arange(1, steps + 1)
    episodes = [Episode(starts[i], times[:flown[i]], positions[:flown[i], i], actions[:flown[i], i],
                        rpm[:flown[i], i], reasons[i]) for i in range(n)]
    return EngineRun(REFERENCE_ENGINE, EffectSettings(), episodes)


def run_sim2sim(bundle: Bundle | str | Path, engine: str = "pybullet", episodes: int = 100,
                effects: list[EffectSettings] | None = None, seed: int = 12345, seconds: float | None = None,
                physics_hz: float = 1000.0, urdf: Path | None = None, progress: bool = True) -> Sim2SimResult:
    """Fly ``episodes`` start states in the training simulator and in ``engine`` once per entry of ``effects``."""
    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    robot = str(bundle.contract["robot"])
    for name in (engine, REFERENCE_ENGINE):  # a missing robot file or backend fails before anything else loads
        backend_target(name, robot)
    variants = effects or [EffectSettings()]
    # The task as the bundle was trained on it: its history length may predate the task file's.
    history = (bundle.contract.get("action_history") or {}).get("length")
    task = load_task(bundle.contract["task"])
    task = task.with_action_history(int(history)) if history is not None else task
    steps = task.episode_steps if seconds is None else max(1, round(seconds * task.control_rate_hz))
    target = np.asarray(bundle.contract.get("position_target", [0.0, 0.0, 0.0]), dtype=np.float64)
    controller = make_controller(bundle, robot_kind(robot))
    backends: list[tuple[str, EffectSettings, Backend]] = []
    try:
        # Every backend is built before any episode is flown, so a missing backend or URDF fails in a second.
        for fx in variants:
            options = BackendOptions(robot, task, fx, seed=seed, physics_hz=physics_hz, urdf=urdf)
            backends.append((engine, fx, create_backend(engine, options)))
        starts = sample_start_states(task, robot, episodes, seed)
        with tqdm(total=episodes * (1 + len(backends)), desc="sim2sim", unit="ep", disable=not progress) as bar:
            bar.set_postfix_str("training sim")
            reference_options = BackendOptions(robot, task, EffectSettings(), seed=seed)
            runs = [fly_training_batch(reference_options, bundle, starts, steps, target, bar)]
            for name, fx, backend in backends:
                run = EngineRun(name, fx)
                bar.set_postfix_str(run.label)
                for start in starts:
                    run.episodes.append(fly_episode(backend, controller, start, steps,
                                                    task.termination.position_limit, target))
                    bar.update()
                runs.append(run)
    finally:
        for _, _, backend in backends:
            backend.close()
    hover = float(np.mean(bundle.contract.get("initial_action", [math.nan])))
    return Sim2SimResult(Path(bundle.path), robot, task, engine, seed, steps, physics_hz, hover, runs)
