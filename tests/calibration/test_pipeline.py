"""The command line end to end: synth -> thrust, motor, imu, latency, hover -> apply -> a loadable robot file.

Checks the reports (YAML, Markdown, PNG), that the calibrated robot file keeps the base schema and comments, that
its nominal values are the estimates and its ranges hold the truth, and that apply refuses bad requests without
writing anything.
"""

from __future__ import annotations

import pytest
import yaml

from robot_ac.calibration.results import load_result
from robot_ac.cli import main
from robot_ac.paths import robot_file
from robot_ac.sim.quadrotor.env import QuadrotorEnv
from robot_ac.sim.quadrotor.params import load_quadrotor


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    d = tmp_path_factory.mktemp("calibration")
    assert main(["calibrate", "synth", str(d), "--seed", "3"]) == 0
    steps = [
        ["thrust", str(d / "thrust.csv"), "--out", str(d / "thrust.yaml")],
        ["motor", str(d / "motor.csv"), "--out", str(d / "motor.yaml")],
        ["imu", str(d / "imu.csv"), "--out", str(d / "imu.yaml")],
        ["latency", str(d / "latency.csv"), "--out", str(d / "latency.yaml")],
        ["hover", str(d / "hover.csv"), "--thrust", str(d / "thrust.yaml"), "--motor", str(d / "motor.yaml"),
         "--imu", str(d / "imu.yaml"), "--out", str(d / "hover.yaml")],
    ]
    for argv in steps:
        assert main(["calibrate", *argv]) == 0, argv
    return d


def test_every_step_writes_numbers_report_and_plots(pipeline):
    for step in ("thrust", "motor", "imu", "latency", "hover"):
        result = load_result(pipeline / f"{step}.yaml")
        assert result.step == step and result.estimates
        report = (pipeline / f"{step}.md").read_text()
        assert "95% interval" in report
        pngs = sorted(pipeline.glob(f"{step}_*.png"))
        assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs), step
        for png in pngs:
            assert f"({png.name})" in report


def test_apply_writes_loadable_robot_centred_on_estimates(pipeline, capsys):
    truth = yaml.safe_load((pipeline / "truth.yaml").read_text())
    robots = pipeline / "robots"
    results = [str(pipeline / f"{s}.yaml") for s in ("thrust", "motor", "hover", "latency", "imu")]
    capsys.readouterr()
    assert main(["calibrate", "apply", *results, "--robot", "crazyflie", "--robots-dir", str(robots),
                 "--name", "cf_cal", "--floor", "0.05"]) == 0
    printed = capsys.readouterr().out
    assert "mass" in printed and "0.027" in printed and "note: imu.yaml" in printed
    path = robots / "cf_cal.yaml"
    robot = load_quadrotor(path)
    base = load_quadrotor("crazyflie")
    assert robot.name == "cf_cal"
    hover, thrust, motor = (load_result(pipeline / f"{s}.yaml") for s in ("hover", "thrust", "motor"))
    assert robot.mass == pytest.approx(hover.estimates["mass"].value, rel=1e-5)
    assert robot.thrust_coefficient == pytest.approx(thrust.estimates["thrust_coefficient"].value, rel=1e-5)
    assert robot.motor_time_constant == pytest.approx(motor.estimates["motor_time_constant"].value, rel=1e-5)
    # Uncalibrated quantities are the base file's; calibrated ones moved by about the synthetic 15%.
    assert robot.inertia == base.inertia and robot.rotor_positions == base.rotor_positions
    assert abs(robot.mass / base.mass - 1) == pytest.approx(0.15, abs=0.01)
    r = robot.randomization
    for key in ("mass", "thrust_coefficient", "yaw_torque_coefficient"):
        rng_ = getattr(r, key)
        value = getattr(robot, key)
        assert rng_.low <= truth[key] <= rng_.high, key
        assert rng_.high - value >= 0.05 * value * 0.999 and value - rng_.low >= 0.05 * value * 0.999, key
    lo, hi = truth["latency_range_s"]
    assert r.actuation_delay_steps.low <= lo * 100 + 0.1 and r.actuation_delay_steps.high >= hi * 100 - 0.1
    text = path.read_text()
    assert "calibrated: hover.yaml" in text and "# kg m^2, diag(Ixx, Iyy, Izz)" in text
    # The simulator runs on it.
    env = QuadrotorEnv(num_envs=4, robot=path)
    env.reset(seed=0)
    assert env.hover_action == pytest.approx(robot.hover_action())


def test_apply_refuses_to_overwrite_the_base_file(pipeline, capsys):
    before = robot_file("crazyflie").read_text()
    rc = main(["calibrate", "apply", str(pipeline / "thrust.yaml"), "--robot", "crazyflie",
               "--out", str(robot_file("crazyflie"))])
    assert rc == 2 and "refusing to overwrite" in capsys.readouterr().err
    assert robot_file("crazyflie").read_text() == before


def test_apply_rejects_an_impossible_result_and_writes_nothing(pipeline, tmp_path, capsys):
    data = yaml.safe_load((pipeline / "thrust.yaml").read_text())
    data["estimates"]["rpm_min"] = {"value": -500.0, "ci95": [-600.0, -400.0], "unit": "rpm"}
    bad = tmp_path / "thrust_bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    out = tmp_path / "robots" / "x.yaml"
    rc = main(["calibrate", "apply", str(bad), "--robot", "crazyflie", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "thrust_bad.yaml" in err and "rpm_min" in err
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_apply_rejects_robot_that_cannot_hover(pipeline, tmp_path, capsys):
    data = yaml.safe_load((pipeline / "hover.yaml").read_text())
    data["estimates"]["mass"] = {"value": 0.5, "ci95": [0.49, 0.51], "unit": "kg"}
    heavy = tmp_path / "hover_heavy.yaml"
    heavy.write_text(yaml.safe_dump(data))
    out_dir = tmp_path / "robots"
    rc = main(["calibrate", "apply", str(heavy), "--robot", "crazyflie", "--robots-dir", str(out_dir)])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot lift" in err, err
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_malformed_result_names_file_and_key(tmp_path, capsys):
    bad = tmp_path / "r.yaml"
    bad.write_text("format: robot_ac_calibration\nstep: thrust\nestimates:\n  mass: {value: 1.0}\n")
    rc = main(["calibrate", "apply", str(bad), "--robot", "crazyflie", "--robots-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and str(bad) in err and "estimates.mass" in err
