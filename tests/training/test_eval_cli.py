"""``robot-ac eval`` as a user runs it: on the shipped bundle, and on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robot_ac.cli import main
from robot_ac.paths import repo_root


def test_eval_scores_the_shipped_bundle_and_writes_json(tmp_path, capsys):
    bundle = repo_root() / "policies" / "crazyflie_hover" / "policy.onnx"
    out = tmp_path / "eval.json"
    rc = main(["eval", str(bundle), "--episodes", "100", "--json", str(out)])
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert rc in (0, 1) and rc == (0 if data["succeeded"] else 1)
    for key in ("survival_rate", "success_rate", "settle_error_median_m", "mean_abs_delta_action",
                "motor_saturation_fraction", "high_frequency_power_share"):
        assert key in printed and key in data
    # the shipped policy flies: most episodes survive and settle within centimetres
    assert data["survival_rate"] > 0.7 and data["settle_error_median_m"] < 0.05


def test_eval_of_a_missing_or_foreign_file_is_a_clear_error(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nope.onnx")]) == 2
    assert "no such policy bundle" in capsys.readouterr().err
    text = tmp_path / "policy.txt"
    text.write_text("hello")
    assert main(["eval", str(Path(text))]) == 2
    assert "expected a .onnx bundle" in capsys.readouterr().err


def test_training_evaluation_stops_once_the_criterion_cannot_hold():
    import math

    import torch

    from robot_ac.training.evaluate import evaluate_policy

    def motors_off(obs: torch.Tensor) -> torch.Tensor:  # every episode falls out of the box
        return torch.full((obs.shape[0], 4), -1.0)

    stopped = evaluate_policy(motors_off, episodes=40, seed=3, stop_when_hopeless=True)
    full = evaluate_policy(motors_off, episodes=40, seed=3)
    assert stopped.stopped_at_s is not None and 0 < stopped.stopped_at_s < 5.0
    assert math.isnan(stopped.success_rate) and math.isnan(stopped.survival_rate) and not stopped.succeeded
    assert full.stopped_at_s is None and full.success_rate == 0.0 and full.survival_rate == 0.0
    assert "could not hold" in stopped.summary()


def test_an_evaluation_run_in_slices_scores_as_one_run():
    from robot_ac.policy import load_bundle
    from robot_ac.training.evaluate import Evaluation, evaluate_policy

    policy = load_bundle(repo_root() / "policies" / "crazyflie_hover" / "policy.onnx").torch_policy()
    whole = evaluate_policy(policy, episodes=50, seed=4)
    evaluation = Evaluation(policy, episodes=50, seed=4)
    slices = 0
    while evaluation.advance(7) is None:
        slices += 1
    assert slices == 500 // 7
    assert evaluation.result == whole
    assert whole.survival_rate > 0.5  # a flying policy, so the comparison covers settle errors too


def test_environments_past_the_scored_episodes_run_along_without_changing_the_score():
    """Training evaluates in an environment as large as its own (to share its compiled step) and scores only the
    first ``episodes``: what the extra environments do must not matter, even a policy gone non-finite there."""
    from robot_ac.policy import load_bundle
    from robot_ac.sim.quadrotor.env import QuadrotorEnv
    from robot_ac.training.evaluate import Evaluation

    policy = load_bundle(repo_root() / "policies" / "crazyflie_hover" / "policy.onnx").torch_policy()

    def nan_past_50(obs):
        action = policy(obs).clone()
        action[50:] = float("nan")
        return action

    def scored(fn):
        env = QuadrotorEnv(num_envs=64, seed=4, curriculum=False)
        return Evaluation(fn, episodes=50, seed=4, env=env, record=True).finish()

    assert scored(policy) == scored(nan_past_50)
    assert scored(policy).episodes == 50
    with pytest.raises(ValueError, match="need at least 50"):
        Evaluation(policy, episodes=50, env=QuadrotorEnv(num_envs=40, seed=4, curriculum=False))
