"""Bad configuration fails at load time, naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from robot_ac.config import ConfigError
from robot_ac.paths import robot_file, task_file
from robot_ac.sim.quadrotor.env import QuadrotorEnv
from robot_ac.sim.quadrotor.params import load_quadrotor
from robot_ac.sim.task_config import load_task


def _robot_with(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(robot_file("crazyflie").read_text())
    edit(data)
    path = tmp_path / "bad_robot.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _task_with(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(task_file("quadrotor-hover").read_text())
    edit(data)
    path = tmp_path / "bad_task.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("edit", "key", "phrase"), [
    (lambda d: d.update(mas=0.03), "mas", "unknown key"),
    (lambda d: d.update(mass=-0.027), "mass", "must be > 0"),
    (lambda d: d["randomization"].update(mass=[0.03, 0.02]), "randomization.mass", "min 0.03 > max 0.02"),
    (lambda d: d["randomization"].update(inertia_xy=[-1e-6, 1e-5]), "randomization.inertia_xy", "must be > 0"),
    (lambda d: d.update(inertia=[1e-5, 0.0, 1e-5]), "inertia", "must be > 0"),
    (lambda d: d.update(rpm_max="fast"), "rpm_max", "expected a number"),
    (lambda d: d["randomization"].update(wind=1.0), "randomization.wind", "unknown key"),
    (lambda d: d.pop("mass"), "mass", "required key is missing"),
])
def test_bad_robot_file_names_file_and_key(tmp_path, edit, key, phrase):
    path = _robot_with(tmp_path, edit)
    with pytest.raises(ConfigError) as err:
        load_quadrotor(path)
    message = str(err.value)
    assert str(path) in message and f"key '{key}'" in message and phrase in message, message


@pytest.mark.parametrize(("edit", "key", "phrase"), [
    (lambda d: d.update(episode_second=5), "episode_second", "unknown key"),
    (lambda d: d["start"].update(attitude_deg=270), "start.attitude_deg", "must be <= 180"),
    (lambda d: d["reward"]["start_weights"].update(position=-1), "reward.start_weights.position", "must be >= 0"),
    (lambda d: d["observations"].pop("critic"), "observations", "group 'critic' is required"),
])
def test_bad_task_file_names_file_and_key(tmp_path, edit, key, phrase):
    path = _task_with(tmp_path, edit)
    with pytest.raises(ConfigError) as err:
        load_task(path)
    message = str(err.value)
    assert str(path) in message and f"key '{key}'" in message and phrase in message, message


def test_observation_field_that_does_not_match_the_robot_is_rejected(tmp_path):
    def edit(d):
        d["observations"]["policy"][0]["size"] = 4

    with pytest.raises(ConfigError, match=r"observations.policy\[0\].size.*has size 3"):
        QuadrotorEnv(load_task(_task_with(tmp_path, edit)))

    def unknown(d):
        d["observations"]["critic"].append({"name": "wind_speed", "size": 1})

    with pytest.raises(ConfigError, match=r"unknown field 'wind_speed'"):
        QuadrotorEnv(load_task(_task_with(tmp_path, unknown)))


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_task(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("task: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_task(broken)
