"""The policy card that ships with a bundle: its single-robot table says how the nominal robot does."""

from __future__ import annotations

import json

from robot_ac.paths import repo_root
from robot_ac.policy.model_card import model_card


def test_the_card_reports_the_nominal_robot_against_the_population(tmp_path):
    rows = [
        {"robot": "randomized (the criterion)", "value": "-", "survival": 0.972, "success": 0.97,
         "settle_error_median_m": 0.01},
        {"robot": "nominal", "value": "-", "survival": 0.869, "success": 0.857, "settle_error_median_m": 0.009},
        {"robot": "motor_time_constant low", "value": 0.06, "survival": 0.995, "success": 0.995,
         "settle_error_median_m": 0.009},
        {"robot": "every parameter at its worse end", "value": {"mass": 0.029, "actuation_delay_steps": 1},
         "survival": 0.73, "success": 0.71, "settle_error_median_m": 0.0096},
    ]
    sensitivity = tmp_path / "parameter_sensitivity.json"
    sensitivity.write_text(json.dumps({"rows": rows}))
    card = model_card(repo_root() / "policies" / "crazyflie_hover" / "policy.onnx", None, None, sensitivity)
    assert "The nominal robot of the robot file scores 85.7% success (86.9% survival) against 97.0%" in card
    assert "| motor_time_constant low | 0.06 | 99.5% | 99.5% |" in card
    assert "| every parameter at its worse end | mass 0.029, actuation_delay_steps 1 | 73.0% | 71.0% |" in card
    assert card.index("## Single robots") < card.index("## Limits")
    assert "## Single robots" not in model_card(repo_root() / "policies" / "crazyflie_hover" / "policy.onnx",
                                                None, None)
