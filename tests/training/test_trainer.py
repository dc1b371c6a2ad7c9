"""The training job as a user runs it: progress, faults, resume, configuration errors."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from robot_ac.config import ConfigError, KeyedValueError
from robot_ac.policy import load_bundle
from robot_ac.training.config import load_train_config
from robot_ac.training.evaluate import EvalResult, Evaluation
from robot_ac.training.runner import (
    CLOSE_EVAL_SLICE_STEPS,
    CLOSE_EVAL_STOPPED_AT_S,
    FAR_EVAL_SLICE_STEPS,
    Trainer,
    TrainingDiverged,
    evaluation_slice_steps,
)

# Eager: the agent file compiles the simulator, which on a fresh machine (CI) takes about a minute per batch size.
FAST = dict(max_seconds=12.0, eval_every_seconds=1000.0, eval_episodes=64, checkpoint_every_seconds=2.0,
            compile_env=False)


def _ppo(**changes):
    cfg = load_train_config("quadrotor-hover", "ppo", **(FAST | changes))
    return dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, num_envs=256, steps_per_env=16),
                               curriculum_every_steps=10_000_000)


def test_ppo_smoke_training_makes_progress_and_exports_a_bundle(tmp_path):
    # A step budget, not a time budget, so that the amount of learning does not depend on the machine's load.
    trainer = Trainer(_ppo(max_seconds=600.0, max_env_steps=250_000), tmp_path, show_progress=False)
    result = trainer.train()
    rows = [json.loads(json.dumps(r)) for r in trainer.logger.rows if "train/episode_length" in r]
    lengths = [r["train/episode_length"] for r in rows if r["train/episode_length"] == r["train/episode_length"]]
    assert len(lengths) > 10
    early, late = sum(lengths[:5]) / 5, sum(lengths[-5:]) / 5
    assert late > 1.3 * early, f"episodes did not get longer: {early:.1f} -> {late:.1f} steps"
    bundle = load_bundle(result.bundle)
    assert bundle.obs_size == 53 and bundle.contract["task"] == "quadrotor-hover"
    for name in ("metrics.csv", "learning_curve.png", "config.yaml", "summary.json", "checkpoint.pt"):
        assert (tmp_path / name).is_file(), name
    assert list((tmp_path / "tensorboard").iterdir())


def test_evaluations_also_come_every_so_many_environment_steps(tmp_path):
    # A time cadence that never comes due: every evaluation here is due to the step cadence (a GPU's case, where a
    # timed cadence let the good policies pass between two evaluations).
    cfg = _ppo(max_seconds=600.0, max_env_steps=60_000, eval_every_env_steps=16_384, eval_episodes=16)
    trainer = Trainer(dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, async_update=False)), tmp_path,
                      show_progress=False)
    trainer.train()
    evaluated_at = [r["env_steps"] for r in trainer.logger.rows if "eval/episodes" in r]
    # 4096 steps per iteration; each evaluation sets the next one 16384 steps later.
    assert evaluated_at == [16_384, 32_768, 49_152]


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_offpolicy_smoke_training_runs_updates(tmp_path, algo):
    # A small batch of environments and updates: this checks the plumbing, not the agent file's sizes.
    cfg = load_train_config("quadrotor-hover", algo, num_envs=64, **(FAST | {"max_seconds": 6.0}))
    cfg = dataclasses.replace(cfg, offpolicy=dataclasses.replace(
        cfg.offpolicy, warmup_critic_steps=2000, warmup_actor_steps=3000, buffer_size=50_000, batch_size=256,
        critic_updates_per_env_step=0.1))
    trainer = Trainer(cfg, tmp_path, show_progress=False)
    result = trainer.train()
    assert trainer.adapter.algo.critic_updates > 50
    critic = [r["losses/critic_loss"] for r in trainer.logger.rows if "losses/critic_loss" in r]
    assert critic and all(c == c and c < 1e6 for c in critic)
    assert load_bundle(result.bundle).action_size == 4


@pytest.mark.parametrize("async_update", [False, True], ids=["in-process", "learner-process"])
def test_nan_in_a_loss_stops_with_a_diagnostic_and_keeps_the_last_good_checkpoint(tmp_path, async_update):
    cfg = _ppo(max_seconds=30.0)
    trainer = Trainer(dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, async_update=async_update)), tmp_path,
                      show_progress=False)
    trainer.adapter.iterate()
    trainer.save_checkpoint()
    good = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["algo"]["policy"]
    step = trainer.env.step

    def nan_rewards(actions):  # a fault upstream of the loss: the rewards go non-finite
        result = step(actions)
        result.reward[:3] = float("nan")
        return result

    trainer.env.step = nan_rewards
    with pytest.raises(TrainingDiverged, match="non-finite PPO loss"):
        trainer.train()
    diagnostic = json.loads((tmp_path / "diverged.json").read_text())
    assert diagnostic["checkpoint_kept"].endswith("checkpoint.pt")
    kept = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["algo"]["policy"]
    for key, value in good.items():
        assert torch.equal(kept[key], value), key
    assert all(torch.isfinite(v).all() for v in kept.values())
    if trainer.adapter.learner is not None:
        assert not trainer.adapter.learner._process.is_alive()


def test_sigkill_then_resume_continues_from_the_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    cmd = [sys.executable, "-m", "robot_ac.cli", "train", "quadrotor-hover", "--algo", "ppo", "--num-envs", "128",
           "--max-seconds", "120", "--eval-every", "1000", "--checkpoint-every", "1", "--out", str(run), "--quiet",
           "--no-compile"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    checkpoint = run / "checkpoint.pt"
    while time.time() < deadline and not (checkpoint.is_file() and checkpoint.stat().st_mtime > 0):
        time.sleep(0.5)
    time.sleep(2.5)  # let it write a few more
    children = _descendants(proc.pid)  # multiprocessing's resource tracker, the learner host, the learner
    assert len(children) >= 3, "the agent file trains with a learner process, forked from the learner host"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in children), "the learner (or its host) outlived the killed trainer"
    assert checkpoint.is_file(), proc.stderr.read().decode()
    steps_at_kill = torch.load(checkpoint, weights_only=False)["env_steps"]
    assert steps_at_kill > 0
    resumed = subprocess.run([sys.executable, "-m", "robot_ac.cli", "train", "quadrotor-hover", "--resume", str(run),
                              "--max-seconds", "0.5", "--quiet"], env=env, capture_output=True, text=True,
                             timeout=120)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env_steps"] > steps_at_kill, resumed.stderr
    assert load_bundle(run / "policy.onnx").obs_size == 53


def _descendants(pid: int) -> list[int]:
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return children + [d for c in children if _alive(c) for d in _descendants(c)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def test_bad_agent_config_names_the_key(tmp_path):
    bad = tmp_path / "agent.yaml"
    bad.write_text("algo: ppo\nppo:\n  num_env: 64\n")
    with pytest.raises(ConfigError, match=r"agent.yaml: key 'ppo.num_env': unknown key"):
        load_train_config("quadrotor-hover", "ppo", bad)
    result = subprocess.run([sys.executable, "-m", "robot_ac.cli", "train", "quadrotor-hover", "--config", str(bad),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "ppo.num_env" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "robot_ac.cli", "train", "quadrotor-hover", "--resume",
                             str(tmp_path / "nothing")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no checkpoint to resume from" in result.stderr


def test_train_start_widens_only_the_training_starts_and_names_a_bad_key(tmp_path):
    trainer = Trainer(_ppo(train_start={"attitude_deg": 120.0}), tmp_path / "run", show_progress=False)
    assert trainer.env.task.start.attitude_deg == 120.0
    assert trainer._evaluation_env().task.start.attitude_deg == 90.0  # the criterion keeps the task's starts
    with pytest.raises(KeyedValueError, match="unknown start setting.*attitude_deg") as err:
        Trainer(_ppo(train_start={"tilt": 120.0}), tmp_path / "run2", show_progress=False)
    assert err.value.key == "train_start.tilt"


def test_train_task_sets_the_training_starts_and_must_keep_the_contract(tmp_path):
    from robot_ac.config import KeyedValueError
    from robot_ac.paths import task_file

    text = task_file("quadrotor-hover").read_text()
    wide = tmp_path / "wide.yaml"
    wide.write_text(text.replace("attitude_deg: 90.0", "attitude_deg: 120.0"))
    trainer = Trainer(_ppo(train_task=str(wide), train_start={}), tmp_path / "run", show_progress=False)
    assert trainer.env.task.start.attitude_deg == 120.0
    other = tmp_path / "other.yaml"
    integral_field = "    - {name: position_error_integral, size: 3, unit: m*s, frame: world}\n"
    assert text.count(integral_field) == 2  # policy and critic
    other.write_text(text.replace(integral_field, "", 1))
    with pytest.raises(KeyedValueError, match="train_task.*different observation contract"):
        Trainer(_ppo(train_task=str(other), train_start={}), tmp_path / "run2", show_progress=False)


def test_background_evaluation_runs_while_waiting_for_the_learner_and_ships_the_actor_it_passed(tmp_path, monkeypatch):
    """With a learner process, evaluations run on a copy of the actor in the time the trainer would wait; when one
    passes, the bundle is that copy, not the actor training has moved on to since."""
    from robot_ac.training import runner

    class PassingAfterTwo(runner.Evaluation):  # the third background evaluation "meets the criterion"
        started = 0

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            PassingAfterTwo.started += 1
            self.passes = PassingAfterTwo.started >= 3
            self.stop_when_hopeless &= not self.passes  # so that it reaches its score

        def _score(self) -> EvalResult:
            result = super()._score()
            return dataclasses.replace(result, succeeded=True, success_rate=1.0) if self.passes else result

    monkeypatch.setattr(runner, "Evaluation", PassingAfterTwo)
    cfg = _ppo(max_seconds=60.0, eval_every_seconds=0.0, eval_episodes=32, until_success=True,
               checkpoint_every_seconds=1000.0)
    trainer = Trainer(cfg, tmp_path, show_progress=False)
    assert trainer.adapter.has_idle_time
    result = trainer.train()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert result.succeeded and PassingAfterTwo.started == 3
    assert summary["eval_seconds"] == 0.0 and summary["background_eval_seconds"] > 0.0
    assert summary["exported_actor"].startswith(runner.BEST_EXPORT)
    shipped = torch.load(tmp_path / runner.BEST_ACTOR, weights_only=True)
    for key, value in shipped.items():
        assert torch.equal(trainer.adapter.actor.state_dict()[key], value), key
    newest = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["algo"]["policy"]["actor.net.0.weight"]
    assert not torch.equal(newest, shipped["net.0.weight"]), "training did not move on past the evaluated copy"
    evals = [r for r in trainer.logger.rows if "eval/success_rate" in r]
    assert len(evals) == 3


def test_a_run_whose_last_evaluation_stopped_early_ships_its_best_actor(tmp_path, monkeypatch):
    """A budget that runs out after the policy collapsed: the last evaluation stops early with no success rate
    (NaN). The bundle must be the best evaluation's actor, not the collapsed last one (a NaN rate once compared as
    not worse than the best, and the last actor shipped)."""
    from robot_ac.training import runner

    class BestFirstThenHopeless(runner.Evaluation):
        started = 0

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            BestFirstThenHopeless.started += 1
            self.first = BestFirstThenHopeless.started == 1  # later ones stop early: a young policy is hopeless
            if self.first:  # a short one that is scored (and made the best yet below)
                self.stop_when_hopeless, self.steps = False, 20

        def _score(self):
            result = super()._score()
            if self.first:
                return dataclasses.replace(result, succeeded=False, success_rate=0.9)
            return dataclasses.replace(result, succeeded=False, success_rate=math.nan, survival_rate=math.nan)

    monkeypatch.setattr(runner, "Evaluation", BestFirstThenHopeless)
    cfg = _ppo(max_seconds=600.0, max_env_steps=60_000, eval_every_seconds=0.0, eval_episodes=32,
               until_success=False, checkpoint_every_seconds=1000.0)
    trainer = Trainer(cfg, tmp_path, show_progress=False)
    trainer.train()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert BestFirstThenHopeless.started >= 2 and math.isnan(summary["last_eval"]["success_rate"])
    assert summary["best_success_rate"] == pytest.approx(0.9)
    assert summary["exported_actor"].startswith(runner.BEST_EXPORT)
    best = torch.load(tmp_path / runner.BEST_ACTOR, weights_only=True)
    for key, value in best.items():
        assert torch.equal(trainer.adapter.actor.state_dict()[key], value), key


def test_a_compiled_training_evaluates_in_its_own_compiled_step(tmp_path):
    """Training and its evaluations start differently but step alike: compiled, they share one graph (one
    compilation fewer), as long as the evaluation is not much larger than what it scores."""
    trainer = Trainer(_ppo(compile_env=True, eval_episodes=250), tmp_path / "run", show_progress=False,
                      read_only=True)
    evaluation_env = trainer._evaluation_env()
    assert evaluation_env.num_envs == trainer.env.num_envs == 256
    assert evaluation_env._graph_key == trainer.env._graph_key
    assert evaluation_env.task.start != trainer.env.task.start  # the agent file's train_start
    small = Trainer(_ppo(compile_env=True, eval_episodes=64), tmp_path / "run2", show_progress=False,
                    read_only=True)
    assert small._evaluation_env().num_envs == 64  # 256 would quadruple every evaluation step
    eager = Trainer(_ppo(eval_episodes=250), tmp_path / "run3", show_progress=False, read_only=True)
    assert eager._evaluation_env().num_envs == 250


def test_a_background_evaluation_runs_longer_slices_once_it_has_lasted_as_long_as_a_close_one():
    def hover(obs: torch.Tensor) -> torch.Tensor:
        return torch.zeros(obs.shape[0], 4)

    def stopped_at(seconds: float | None) -> EvalResult:
        nan = math.nan
        return EvalResult(20, nan, nan, nan, nan, nan, nan, nan, nan, False, stopped_at_s=seconds)

    evaluation = Evaluation(hover, episodes=20, seed=1)
    far = stopped_at(CLOSE_EVAL_STOPPED_AT_S - 0.5)
    assert evaluation_slice_steps(None, evaluation) == FAR_EVAL_SLICE_STEPS
    assert evaluation_slice_steps(far, evaluation) == FAR_EVAL_SLICE_STEPS
    assert evaluation_slice_steps(stopped_at(None), evaluation) == CLOSE_EVAL_SLICE_STEPS  # the last one was full
    steps_to_close = round(CLOSE_EVAL_STOPPED_AT_S * evaluation.env.task.control_rate_hz)
    evaluation.advance(steps_to_close - 1)
    assert evaluation_slice_steps(far, evaluation) == FAR_EVAL_SLICE_STEPS
    evaluation.advance(1)
    assert evaluation_slice_steps(far, evaluation) == CLOSE_EVAL_SLICE_STEPS
    assert CLOSE_EVAL_SLICE_STEPS > FAR_EVAL_SLICE_STEPS
