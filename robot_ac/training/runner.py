"""The training loop: collect, update, evaluate, log, checkpoint; the same for every algorithm.

Algorithms are wrapped by small adapters with one method, ``iterate()``, that collects some experience and
learns from it; the runner only orchestrates (as rsl_rl's runner does once logging has moved out).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from tqdm import tqdm

from robot_ac.algos.async_update import AsyncUpdater
from robot_ac.algos.offpolicy import OffPolicy
from robot_ac.algos.ppo import PPO
from robot_ac.config import KeyedValueError, to_mapping
from robot_ac.policy.bundle import export_bundle
from robot_ac.sim.quadrotor.env import REWARD_TERMS, QuadrotorEnv
from robot_ac.sim.task_config import TaskConfig, load_task
from robot_ac.training.actor_average import ActorAverage
from robot_ac.training.config import TrainConfig
from robot_ac.training.evaluate import EvalResult, Evaluation, evaluate_policy
from robot_ac.training.logger import RunLogger

CHECKPOINT = "checkpoint.pt"
BEST_ACTOR = "best_actor.pt"  # the actor of the best evaluation so far
BEST_EXPORT = "best evaluation"  # summary.json "exported_actor" of a run that shipped BEST_ACTOR


class TrainingDiverged(RuntimeError):
    """A loss went non-finite; the last good checkpoint is kept."""


# An evaluation that ran this long before more than 5% of its episodes ended means the policy is close to the
# criterion: early in training they stop at 0.3-1.1 s, and the one before the first full evaluation at ~2 s
# (runs/bench13w/ppo-s0).
CLOSE_EVAL_STOPPED_AT_S = 1.5
# Control steps per background-evaluation slice: far from the criterion, one (the trainer's time goes to the learner's
# minibatches in between); close to it, more (the sooner an evaluation ends, the sooner a run that passes stops).
FAR_EVAL_SLICE_STEPS = 1
CLOSE_EVAL_SLICE_STEPS = 8


def evaluation_slice_steps(last: EvalResult | None, evaluation: Evaluation) -> int:
    """How many control steps the next slice of a background ``evaluation`` runs.

    Close means the last evaluation lasted ``CLOSE_EVAL_STOPPED_AT_S`` or more, or this one has. The first full
    evaluation of a run follows one that stopped at 1.0-1.4 s: at one step a slice it took 6.5-8.7 s (seeds 0-2),
    with this rule 2.5-4.9 s, like the 2.0-3.3 s of those after it (bench/results/eval_slices.json).
    """
    lasted = evaluation.t / evaluation.env.task.control_rate_hz
    close = (lasted >= CLOSE_EVAL_STOPPED_AT_S
             or (last is not None and (last.stopped_at_s is None or last.stopped_at_s >= CLOSE_EVAL_STOPPED_AT_S)))
    return CLOSE_EVAL_SLICE_STEPS if close else FAR_EVAL_SLICE_STEPS

# A compiled training evaluation runs as many environments as training (up to this factor more than it scores), so
# that it shares training's compiled step instead of compiling its own.
SHARED_GRAPH_MAX_EXTRA = 1.25


def shipped_best_actor(run_dir: Path) -> Path | None:
    """The run's ``BEST_ACTOR`` when its ``summary.json`` says it shipped that actor (the budget ran out), else None."""
    summary, best = run_dir / "summary.json", run_dir / BEST_ACTOR
    if not (summary.is_file() and best.is_file()):
        return None
    return best if str(json.loads(summary.read_text()).get("exported_actor", "")).startswith(BEST_EXPORT) else None


def _score_or_floor(result: EvalResult | None) -> float:
    """An evaluation's success rate for comparisons; -1 (below any score) for none, or one that stopped early and
    has no rate (NaN, which every comparison would call not-worse)."""
    if result is None or math.isnan(result.success_rate):
        return -1.0
    return result.success_rate


@dataclass
class TrainResult:
    succeeded: bool
    seconds: float
    env_steps: int
    last_eval: EvalResult | None
    bundle: Path | None
    out_dir: Path
    exported_actor: str = "last"  # or the weight average, or the best evaluation's actor (see ``_train``)


class _EpisodeStats:
    """Running episode returns and lengths for the progress bar and logs."""

    def __init__(self, num_envs: int, device: torch.device) -> None:
        self.returns = torch.zeros(num_envs, device=device)
        self.lengths = torch.zeros(num_envs, device=device)
        self.finished_returns: deque[float] = deque(maxlen=200)
        self.finished_lengths: deque[float] = deque(maxlen=200)

    def add(self, reward: torch.Tensor, done: torch.Tensor) -> None:
        self.returns += reward
        self.lengths += 1
        if done.any():
            self.finished_returns.extend(self.returns[done].tolist())
            self.finished_lengths.extend(self.lengths[done].tolist())
            self.returns[done] = 0
            self.lengths[done] = 0

    def mean_return(self) -> float:
        return sum(self.finished_returns) / len(self.finished_returns) if self.finished_returns else math.nan

    def mean_length(self) -> float:
        return sum(self.finished_lengths) / len(self.finished_lengths) if self.finished_lengths else math.nan


class _PPOAdapter:
    def __init__(self, cfg: TrainConfig, env: QuadrotorEnv, stats: _EpisodeStats, read_only: bool = False) -> None:
        self.env, self.stats = env, stats
        noise = _policy_noise_std(env)
        ppo_cfg = cfg.ppo
        if not cfg.compile_env:
            # Eager throughout (robot-ac train --no-compile). Sharing minibatches needs the compiled simulator:
            # eager evaluation steps (~4.5 ms for 1000 environments) hold the trainer too long between the
            # learner's offers, which then waited on the trainer while evaluations crawled (runs/exp13/shF-u*).
            ppo_cfg = dataclasses.replace(ppo_cfg, share_minibatches=False, compile_update=False)
        self.algo = PPO(ppo_cfg, env.observation_size("policy"), env.observation_size("critic"), env.action_size,
                        env.hover_action, env.device, policy_noise_std=noise)
        self.actor = self.algo.actor
        self.obs = env.reset(seed=cfg.seed)
        # Started now, so that its start-up (a fresh interpreter) overlaps the rest of the set-up.
        overlap = cfg.ppo.async_update and env.device.type == "cpu" and not read_only  # a GPU updates in place
        self.learner = AsyncUpdater(self.algo, seed=cfg.seed, threads=cfg.threads or 1) if overlap else None

    @property
    def has_idle_time(self) -> bool:
        """Whether ``iterate`` waits for a learner process, time it can spend on ``idle`` work."""
        return self.learner is not None

    def iterate(self, idle: Callable[[], bool] | None = None) -> dict[str, float]:
        for _ in range(self.algo.cfg.steps_per_env):
            action = self.algo.act(self.obs)
            result = self.env.step(action)
            self.algo.record(result.reward, result.terminated, result.truncated, result.info["final_observations"],
                             result.observations)
            self.stats.add(result.reward, result.terminated | result.truncated)
            self.obs = result.observations
        if self.learner is not None:
            return self.learner.submit(self.obs, idle)
        return self.algo.update(self.obs)

    def state_dict(self) -> dict:
        return self.learner.state_dict() if self.learner is not None else self.algo.state_dict()

    def stop(self) -> None:
        if self.learner is not None:
            self.learner.stop()

    def close(self) -> None:
        if self.learner is not None:
            self.learner.close()


class _OffPolicyAdapter:
    def __init__(self, cfg: TrainConfig, env: QuadrotorEnv, stats: _EpisodeStats, read_only: bool = False) -> None:
        self.env, self.stats = env, stats
        # Eager throughout without compile_env (robot-ac train --no-compile), as for PPO.
        offpolicy_cfg = cfg.offpolicy if cfg.compile_env else dataclasses.replace(cfg.offpolicy, compile_update=False)
        self.algo = OffPolicy(offpolicy_cfg, env.observation_size("policy"), env.observation_size("critic"),
                              env.action_size, env.hover_action, env.device, reward_fn=env.compute_reward,
                              reward_terms=len(REWARD_TERMS),
                              policy_noise_std=_policy_noise_std(env), seed=cfg.seed)
        self.actor = self.algo.actor
        self.obs = env.reset(seed=cfg.seed)
        self.vector_steps = max(1, 2048 // env.num_envs)

    has_idle_time = False

    def iterate(self, idle: Callable[[], bool] | None = None) -> dict[str, float]:
        stats: dict[str, float] = {}
        for _ in range(self.vector_steps):
            action = self.algo.act(self.obs)
            result = self.env.step(action)
            self.algo.record(self.obs, action, result.reward, result.info["reward_terms"], result.terminated,
                             result.truncated, result.next_observations())
            self.stats.add(result.reward, result.terminated | result.truncated)
            self.obs = result.observations
            stats = self.algo.maybe_update(self.env.reward_weights) or stats
        return stats

    def state_dict(self) -> dict:
        return self.algo.state_dict()

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


def _policy_noise_std(env: QuadrotorEnv) -> torch.Tensor:
    """Per-column measurement noise of the policy group (CAPS's sigma_s)."""
    return torch.cat([torch.full((f.size,), f.noise_std) for f in env.contract.groups["policy"].fields])


def _training_task(cfg: TrainConfig) -> TaskConfig:
    """The task the training environment runs: ``train_task`` (or ``task``) with ``train_start`` over its starts."""
    task = load_task(cfg.train_task or cfg.task)
    if not cfg.train_start:
        return task
    known = {f.name for f in dataclasses.fields(task.start)}
    for key in cfg.train_start:
        if key not in known:
            raise KeyedValueError(f"train_start.{key}", f"unknown start setting; the task's are {sorted(known)}")
    return dataclasses.replace(task, start=dataclasses.replace(task.start, **cfg.train_start))


class Trainer:
    """Runs one training job into ``out_dir``: checkpoints, logs, the learning curve and the policy bundle."""

    def __init__(self, cfg: TrainConfig | None, out_dir: str | Path, resume: bool = False, show_progress: bool = True,
                 resume_overrides: dict | None = None, read_only: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.show_progress = show_progress
        checkpoint = None
        if resume:
            path = self.out_dir / CHECKPOINT
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no checkpoint to resume from")
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
            changes = {k: v for k, v in (resume_overrides or {}).items() if v is not None}
            cfg = dataclasses.replace(checkpoint["config"], **changes)
        self.cfg = cfg
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.device = torch.device(cfg.device)
        self.env = QuadrotorEnv(_training_task(cfg), num_envs=cfg.num_envs, device=self.device, seed=cfg.seed,
                                robot=cfg.robot or None, curriculum_every_steps=cfg.curriculum_every_steps or None,
                                compile=cfg.compile_env, replay_failed_starts=cfg.replay_failed_starts,
                                nominal_fraction=cfg.train_nominal_fraction)
        if cfg.train_task and (QuadrotorEnv(cfg.task, robot=cfg.robot or None).contract.to_dict()
                               != self.env.contract.to_dict()):
            raise KeyedValueError("train_task", f"{cfg.train_task} declares a different observation contract from "
                                                f"the task {cfg.task}, which evaluation and export use")
        self.stats = _EpisodeStats(cfg.num_envs, self.device)
        # before the adapter: a PPO adapter waits for its learner process to start, and this fits in that wait
        self.logger = RunLogger(self.out_dir, tensorboard=not read_only)
        adapter = _PPOAdapter if cfg.algo == "ppo" else _OffPolicyAdapter
        self.adapter = adapter(cfg, self.env, self.stats, read_only=read_only)
        self.elapsed = 0.0
        self.best_success = -1.0
        self.last_eval: EvalResult | None = None
        self._eval_env: QuadrotorEnv | None = None
        self._background_eval: Evaluation | None = None
        self._background_actor: torch.nn.Module | None = None
        self._background_seconds = 0.0
        self._last_eval_of_copy = False
        self._average = (ActorAverage(self.adapter.actor, cfg.eval_actor_average) if cfg.eval_actor_average > 0
                         else None)
        if checkpoint is not None:
            self._restore(checkpoint)
        if not read_only:
            (self.out_dir / "config.yaml").write_text(yaml.safe_dump(to_mapping(cfg), sort_keys=False))

    # ------------------------------------------------------------------------------------------ the loop
    def train(self) -> TrainResult:
        try:
            return self._train()
        finally:
            self.adapter.close()  # the learner process, if any

    def _train(self) -> TrainResult:
        cfg = self.cfg
        start = time.perf_counter() - self.elapsed
        background = self.adapter.has_idle_time and cfg.eval_in_background  # while waiting for the learner
        every = cfg.background_eval_every_seconds if background else cfg.eval_every_seconds
        next_eval = self.elapsed + every
        next_eval_steps = self._next_eval_steps()
        next_checkpoint = self.elapsed + cfg.checkpoint_every_seconds
        eval_seconds = 0.0
        bundle = None
        if cfg.compile_env and self.show_progress:
            tqdm.write("robot-ac: torch.compile builds the simulator and the loss on their first use: about a minute "
                       "the first time on a machine, then loaded from disk in about a second (--no-compile runs eager)")
        bar = tqdm(total=int(cfg.max_seconds), unit="s", disable=not self.show_progress,
                   bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s {postfix}")
        interrupted = False
        previous_handler = signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            while True:
                steps_before = self.env.total_env_steps
                t0 = time.perf_counter()
                try:
                    losses = self.adapter.iterate(self._advance_background_eval if background else None)
                except FloatingPointError as err:
                    self._diverged(err)
                if self._average is not None:
                    self._average.update(self.adapter.actor)
                self.elapsed = time.perf_counter() - start
                sps = (self.env.total_env_steps - steps_before) / max(1e-9, time.perf_counter() - t0)
                self.logger.log(self.env.total_env_steps, {
                    "train/episode_return": self.stats.mean_return(), "train/episode_length": self.stats.mean_length(),
                    "time/seconds": self.elapsed, "time/env_steps_per_s": sps,
                    **{f"losses/{k}": v for k, v in losses.items()}})
                if self._background_eval is not None and self._background_eval.result is not None:
                    self._record_eval(self._background_eval.result, self._background_actor)
                    self._background_eval = self._background_actor = None
                passed = cfg.until_success and self.last_eval is not None and self.last_eval.succeeded
                if self.elapsed >= cfg.max_seconds and not passed:
                    self._background_eval = self._background_actor = None  # the final evaluation is of the last actor
                    t_eval = time.perf_counter()
                    self._record_eval(self.evaluate(), None)
                    eval_seconds += time.perf_counter() - t_eval
                elif (self.elapsed >= next_eval or self.env.total_env_steps >= next_eval_steps) \
                        and self._background_eval is None and not passed:
                    if background:  # run in the time the trainer waits for the learner, on a copy of this actor
                        self._start_background_eval()
                    else:
                        t_eval = time.perf_counter()
                        self._record_eval(self.evaluate(), None)
                        eval_seconds += time.perf_counter() - t_eval
                    next_eval = time.perf_counter() - start + every
                    next_eval_steps = self._next_eval_steps()
                self.elapsed = time.perf_counter() - start
                bar.n = min(int(self.elapsed), int(cfg.max_seconds))
                bar.set_postfix_str(self._postfix(sps))
                if self.elapsed >= next_checkpoint:
                    self._checkpoint_or_diverge()
                    next_checkpoint = self.elapsed + cfg.checkpoint_every_seconds
                if cfg.until_success and self.last_eval is not None and self.last_eval.succeeded:
                    break
                if self.elapsed >= cfg.max_seconds:
                    break
                if cfg.max_env_steps and self.env.total_env_steps >= cfg.max_env_steps:
                    break
        except KeyboardInterrupt:
            interrupted = True
        finally:
            signal.signal(signal.SIGTERM, previous_handler)
            bar.close()
        curve = self.logger.start_learning_curve(f"{cfg.task} / {cfg.algo} / seed {cfg.seed}")  # drawn meanwhile
        self._checkpoint_or_diverge()
        self.adapter.stop()  # the learner's exit overlaps the export
        succeeded = bool(self.last_eval and self.last_eval.succeeded)
        exported = "last"
        if succeeded and self._last_eval_of_copy:
            # The actor that passed is the copy a background evaluation ran, saved then as the best so far.
            self.adapter.actor.load_state_dict(torch.load(self.out_dir / BEST_ACTOR, weights_only=True))
            exported = f"{BEST_EXPORT} (success {self.best_success:.1%})"
        elif not succeeded and self.best_success > _score_or_floor(self.last_eval):
            # The budget ran out: ship the actor of the best evaluation, not wherever training drifted to (also
            # when the last evaluation stopped early and has no success rate: that actor was the worst yet).
            self.adapter.actor.load_state_dict(torch.load(self.out_dir / BEST_ACTOR, weights_only=True))
            exported = f"{BEST_EXPORT} (success {self.best_success:.1%})"
        elif self._average is not None:
            self.adapter.actor.load_state_dict(self._average.state_dict())  # the actor the evaluations judged
            exported = "average"
        bundle = self.export(self.out_dir / "policy.onnx")
        summary = {"succeeded": succeeded, "seconds": self.elapsed, "eval_seconds": eval_seconds,
                   "background_eval_seconds": self._background_seconds,
                   "env_steps": self.env.total_env_steps, "interrupted": interrupted,
                   "last_eval": self.last_eval.to_dict() if self.last_eval else None,
                   "bundle": str(bundle) if bundle else None, "exported_actor": exported,
                   "best_success_rate": self.best_success}
        (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        self.logger.close()
        self.logger.finish_learning_curve(curve)
        return TrainResult(succeeded, self.elapsed, self.env.total_env_steps, self.last_eval, bundle, self.out_dir,
                           exported)

    def _next_eval_steps(self) -> float:
        """The environment step count at which the next evaluation is due (``eval_every_env_steps``), or never."""
        every = self.cfg.eval_every_env_steps
        return self.env.total_env_steps + every if every else math.inf

    @property
    def evaluated_actor(self) -> torch.nn.Module:
        """The actor that evaluations judge and the bundle ships: the weight average, or the current actor."""
        return self._average.model if self._average is not None else self.adapter.actor

    def evaluate(self) -> EvalResult:
        """The success criterion on a fixed set of evaluation episodes (same seed every time)."""
        with torch.no_grad():
            return evaluate_policy(self.evaluated_actor.act, episodes=self.cfg.eval_episodes,
                                   env=self._evaluation_env(),
                                   seed=10_000 + self.cfg.seed, stop_when_hopeless=True)

    def _evaluation_env(self) -> QuadrotorEnv:
        if self._eval_env is None:
            # Compiled, an evaluation as large as training shares its step graph: one compilation fewer (~1.4 s of
            # the trainer's start-up from torch's cache); the extra environments run unscored. The fused C step
            # (CPU) has no graph to share, but keeps this size: the size decides the starts drawn, and so which
            # 1000 episodes the earlier evaluations and benchmarks judged (1000 environments draw another set).
            cfg = self.cfg
            shares = cfg.compile_env and cfg.eval_episodes <= cfg.num_envs <= SHARED_GRAPH_MAX_EXTRA * cfg.eval_episodes
            size = cfg.num_envs if shares else cfg.eval_episodes
            self._eval_env = QuadrotorEnv(self.cfg.task, num_envs=size, device=self.device,
                                          seed=10_000 + self.cfg.seed, curriculum=False, robot=self.cfg.robot or None,
                                          compile=self.cfg.compile_env)
        return self._eval_env

    def _start_background_eval(self) -> None:
        self._background_actor = copy.deepcopy(self.evaluated_actor)
        self._background_eval = Evaluation(self._background_actor.act, episodes=self.cfg.eval_episodes,
                                           env=self._evaluation_env(), seed=10_000 + self.cfg.seed,
                                           stop_when_hopeless=True)

    def _advance_background_eval(self) -> bool:
        """A slice of the background evaluation (``evaluation_slice_steps``); False when there is none to run."""
        if self._background_eval is None or self._background_eval.result is not None:
            return False
        t0 = time.perf_counter()
        self._background_eval.advance(evaluation_slice_steps(self.last_eval, self._background_eval))
        self._background_seconds += time.perf_counter() - t0
        return self._background_eval.result is None

    def _record_eval(self, result: EvalResult, evaluated_copy: torch.nn.Module | None) -> None:
        """Log an evaluation and keep the best actor; ``evaluated_copy`` is the actor a background evaluation ran
        (None: the current actor). Logged at the step count when the result came in."""
        self.last_eval = result
        self._last_eval_of_copy = evaluated_copy is not None
        self.logger.log(self.env.total_env_steps, {
            "time/seconds": self.elapsed, **{f"eval/{k}": float(v) for k, v in result.to_dict().items()}})
        if result.success_rate > self.best_success:
            self.best_success = result.success_rate
            actor = evaluated_copy if evaluated_copy is not None else self.evaluated_actor
            torch.save(actor.state_dict(), self.out_dir / BEST_ACTOR)

    def export(self, path: Path) -> Path:
        contract = self.env.contract.to_dict()
        return export_bundle(self.adapter.actor, contract, path, training_config=to_mapping(self.cfg))

    # ----------------------------------------------------------------------------------- checkpointing
    def save_checkpoint(self) -> Path:
        """Atomic: a crash while writing leaves the previous checkpoint intact."""
        state = {
            "config": self.cfg, "algo": self.adapter.state_dict(), "elapsed": self.elapsed,
            "env_steps": self.env.total_env_steps, "reward_weights": self.env.reward_weights.cpu(),
            "curriculum_level": self.env._curriculum_level, "best_success": self.best_success,
            "torch_rng": torch.get_rng_state(),
            "actor_average": self._average.state_dict() if self._average is not None else None,
        }
        path = self.out_dir / CHECKPOINT
        tmp = path.with_suffix(".pt.tmp")
        torch.save(state, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    def _restore(self, checkpoint: dict) -> None:
        self.adapter.algo.load_state_dict(checkpoint["algo"])
        self.elapsed = checkpoint["elapsed"]
        self.env.total_env_steps = checkpoint["env_steps"]
        self.env.reward_weights = checkpoint["reward_weights"].to(self.device)
        self.env._curriculum_level = checkpoint["curriculum_level"]
        self.best_success = checkpoint["best_success"]
        torch.set_rng_state(checkpoint["torch_rng"])
        if self._average is not None:
            saved = checkpoint.get("actor_average")
            self._average.load_state_dict(saved if saved is not None else self.adapter.actor.state_dict())

    def _checkpoint_or_diverge(self) -> None:
        """A checkpoint waits for the learner's update in flight, which may be the one that diverged."""
        try:
            self.save_checkpoint()
        except FloatingPointError as err:
            self._diverged(err)

    def _diverged(self, err: FloatingPointError) -> None:
        diagnostic = {
            "error": str(err), "env_steps": self.env.total_env_steps, "elapsed_s": self.elapsed,
            "checkpoint_kept": str(self.out_dir / CHECKPOINT) if (self.out_dir / CHECKPOINT).is_file() else None,
            "nonfinite_parameters": [name for name, p in self.adapter.actor.named_parameters()
                                     if not torch.isfinite(p).all()],
        }
        (self.out_dir / "diverged.json").write_text(json.dumps(diagnostic, indent=2))
        raise TrainingDiverged(f"training stopped: {err} at {self.env.total_env_steps} env steps; last good "
                               f"checkpoint kept at {diagnostic['checkpoint_kept']}; details in "
                               f"{self.out_dir / 'diverged.json'}") from err

    def _postfix(self, sps: float) -> str:
        success = "-" if self.last_eval is None or self.last_eval.stopped_at_s is not None else (
            f"{self.last_eval.success_rate:.0%}")
        return (f"steps {self.env.total_env_steps / 1e6:.2f}M | {sps / 1e3:.0f}k steps/s | "
                f"return {self.stats.mean_return():.0f} | success {success}")

