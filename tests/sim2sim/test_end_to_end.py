"""A small sim2sim run from the command line produces a complete report; the controller matches the simulator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_ac.cli import main
from robot_ac.policy import load_bundle
from robot_ac.sim.quadrotor.env import QuadrotorEnv
from robot_ac.sim2sim.controller import DeploymentController
from robot_ac.sim2sim.state import QuadrotorState

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_small_run_writes_the_report(lqr_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    code = main(["sim2sim", str(lqr_bundle), "--engine", "pybullet", "--episodes", "6", "--seconds", "2",
                 "--effects", "drag,latency", "--each-effect", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "sim2sim" in captured.err and "ep" in captured.err  # the tqdm progress bar
    assert sorted(p.name for p in out.iterdir()) == [
        "error_histograms.png", "motor_commands.png", "report.md", "summary.json", "trajectories.png"]
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000, png
    report = (out / "report.md").read_text()
    for row in ("success rate", "survival", "settle error", "RMS position error", "control effort",
                "action smoothness"):
        assert row in report, row
    assert "| metric | training sim | pybullet | pybullet +drag | pybullet +latency |" in report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 6 and summary["physics_hz"] == 1000.0
    runs = {r["label"]: r for r in summary["runs"]}
    assert set(runs) == {"training sim", "pybullet", "pybullet +drag", "pybullet +latency"}
    # The LQR reference controller holds most starts in both engines, and the effect-free engines agree.
    assert runs["training sim"]["success_rate"] >= 0.8
    assert abs(runs["pybullet"]["success_rate"] - runs["training sim"]["success_rate"]) <= 0.05
    assert runs["pybullet"]["divergence_median_m"] < 0.01
    assert runs["pybullet +drag"]["effects"] == ["drag"]
    for r in summary["runs"]:
        assert sum(r["end_reasons"].values()) == 6


def test_report_folder_is_replaced_whole(untrained_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "stale.txt").write_text("from an older run")
    code = main(["sim2sim", str(untrained_bundle), "--episodes", "2", "--seconds", "0.5", "--out", str(out),
                 "--no-progress"])
    assert not (out / "stale.txt").exists() and (out / "report.md").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report")]  # no temporary folder left
    # An untrained network drifts off: both engines fail alike, so the gap check passes (exit 0).
    assert code == 0


def test_controller_builds_the_simulator_observation(lqr_bundle: Path, hover_env: QuadrotorEnv) -> None:
    """The deployment controller's observation from typed state equals the training simulator's own (noise off)."""
    env = QuadrotorEnv(hover_env.task, num_envs=3, seed=5, domain_randomization=False, observation_noise=False,
                       curriculum=False)
    obs = env.reset()["policy"]
    controllers = [DeploymentController(load_bundle(lqr_bundle)) for _ in range(3)]
    for controller in controllers:
        controller.reset()
    for step in range(40):
        actions = []
        for i, controller in enumerate(controllers):
            now = step * env.dt
            actions.append(controller.act(QuadrotorState.from_vector(env.state[i].double().numpy(), stamp=now), now))
            np.testing.assert_allclose(controller.observation[0], obs[i].numpy(), atol=1e-5)
            assert controller.safe_reason is None
        obs = env.step(torch.as_tensor(np.stack(actions))).observations["policy"]


def test_controller_goes_safe_on_a_non_finite_state_and_a_new_episode_rearms(lqr_bundle: Path) -> None:
    controller = DeploymentController(load_bundle(lqr_bundle))
    controller.reset()
    good = QuadrotorState(np.zeros(3), np.array([1.0, 0, 0, 0]), np.zeros(3), np.zeros(3), np.zeros(4))
    assert np.isfinite(controller.act(good, 0.0)).all() and controller.safe_reason is None
    bad = QuadrotorState(np.array([np.nan, 0, 0]), np.array([1.0, 0, 0, 0]), np.zeros(3), np.zeros(3), np.zeros(4),
                         stamp=0.01)
    action = controller.act(bad, 0.01)
    assert np.isfinite(action).all() and (action == -1.0).all()  # quadrotor safe command: motors off
    assert "not finite" in controller.safe_reason
    controller.reset()
    good.stamp = 0.02
    assert controller.safe_reason is None and np.isfinite(controller.act(good, 0.02)).all()
    assert controller.safe_reason is None


def test_stale_state_trips_the_watchdog(lqr_bundle: Path) -> None:
    """The simulated clock reaches the watchdog: a state 5 periods old (3 allowed) puts the controller in safe mode."""
    controller = DeploymentController(load_bundle(lqr_bundle))
    controller.reset()
    state = QuadrotorState(np.zeros(3), np.array([1.0, 0, 0, 0]), np.zeros(3), np.zeros(3), np.zeros(4), stamp=0.0)
    controller.act(state, 0.0)
    assert controller.safe_reason is None
    controller.act(state, 0.05)
    assert controller.safe_reason is not None
