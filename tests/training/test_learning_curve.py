"""The learning curve is drawn in its own process, from metrics.csv; a failure there never fails the run."""

from __future__ import annotations

import subprocess
import sys

from robot_ac.training.logger import RunLogger


def test_the_curve_process_draws_a_png_from_the_logged_metrics(tmp_path):
    logger = RunLogger(tmp_path, tensorboard=False)
    for step in range(1, 6):
        logger.log(step * 1000, {"train/episode_return": float(step), "time/seconds": float(step)})
    logger.log(5000, {"eval/success_rate": 0.5, "eval/survival_rate": 0.9, "time/seconds": 5.0})
    logger.finish_learning_curve(logger.start_learning_curve("test run"))
    png = (tmp_path / "learning_curve.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert not list(tmp_path.glob("*.partial"))


def test_a_failed_drawing_is_reported_not_raised(tmp_path, capsys):
    logger = RunLogger(tmp_path, tensorboard=False)  # no metrics.csv was ever written
    logger.finish_learning_curve(logger.start_learning_curve("test run"))
    err = capsys.readouterr().err
    assert "the learning curve was not drawn" in err and "metrics.csv" in err
    assert not (tmp_path / "learning_curve.png").exists()


def test_the_curve_command_explains_its_arguments():
    result = subprocess.run([sys.executable, "-m", "robot_ac.training.learning_curve"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 2 and "usage:" in result.stderr
