"""Variants of the inputs: stand without rpm or voltage, custom latency columns, normalized commands, CLI usage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robot_ac.calibration import synth
from robot_ac.calibration.logs import LogTable, write_csv
from robot_ac.calibration.thrust import identify_thrust
from robot_ac.cli import main
from robot_ac.sim.quadrotor.params import load_quadrotor


@pytest.fixture(scope="module")
def robot():
    return load_quadrotor("crazyflie")


def test_stand_without_rpm_uses_the_robot_rpm_range(robot):
    """No rpm sensor: kf is fitted against the robot file's command -> rpm map; the truth uses the same map."""
    hits = 0
    for seed in range(20):
        rng = np.random.default_rng([7, seed])
        drone = synth.TrueDrone.random(robot, rng)
        drone.rpm_min, drone.rpm_max, drone.rpm_voltage_sensitivity = robot.rpm_min, robot.rpm_max, 0.0
        cols = {k: v for k, v in synth.thrust_stand_log(drone, rng).columns.items() if k not in ("rpm", "voltage_v")}
        result, _ = identify_thrust(LogTable(Path("stand.csv"), cols), rpm_range=(robot.rpm_min, robot.rpm_max))
        kf = result.estimates["thrust_coefficient"]
        assert abs(kf.value / drone.thrust_coefficient - 1) < 0.03
        assert "rpm_max" not in result.estimates
        ratio = result.estimates["yaw_torque_coefficient"]
        assert abs(ratio.value / drone.yaw_torque_coefficient - 1) < 0.03
        hits += kf.contains(drone.thrust_coefficient) and ratio.contains(drone.yaw_torque_coefficient)
    assert hits >= 16  # 90% of 20 trials for both intervals together (each nominally 95%)


def test_normalized_command_column_and_cli_report(robot, tmp_path, capsys):
    rng = np.random.default_rng(5)
    drone = synth.TrueDrone.random(robot, rng)
    cols = dict(synth.thrust_stand_log(drone, rng).columns)
    cols["command"] = 2 * cols.pop("pwm") / synth.PWM_MAX - 1
    write_csv(tmp_path / "stand.csv", cols)
    assert main(["calibrate", "thrust", str(tmp_path / "stand.csv"), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "thrust_coefficient" in out and "95% interval" in out
    assert (tmp_path / "stand.thrust.yaml").is_file() and not list(tmp_path.glob("*.png"))


def test_latency_with_named_columns(robot, tmp_path, capsys):
    rng = np.random.default_rng(8)
    drone = synth.TrueDrone.random(robot, rng)
    table, latencies = synth.latency_log(drone, rng, events=8)
    cols = {"time_s": table.columns["time_s"], "motor_cmd": table.columns["command"],
            "rpm_mean": table.columns["response"]}
    write_csv(tmp_path / "hil.csv", cols)
    argv = ["calibrate", "latency", str(tmp_path / "hil.csv"), "--command", "motor_cmd", "--response", "rpm_mean",
            "--control-rate", "200", "--out", str(tmp_path / "lat.yaml"), "--no-plots"]
    assert main(argv) == 0
    from robot_ac.calibration.results import load_result

    result = load_result(tmp_path / "lat.yaml")
    assert abs(result.estimates["latency"].value / latencies.mean() - 1) < 0.03
    lo, hi = result.details["actuation_delay_steps"]
    assert lo <= latencies.min() * 200 + 0.1 and hi >= latencies.max() * 200 - 0.1
    capsys.readouterr()
    rc = main(["calibrate", "latency", str(tmp_path / "hil.csv"), "--out", str(tmp_path / "x.yaml")])
    assert rc == 2 and "column 'command'" in capsys.readouterr().err and not (tmp_path / "x.yaml").exists()


def test_calibrate_without_step_prints_help(capsys):
    assert main(["calibrate"]) == 2
    assert "thrust" in capsys.readouterr().out


def test_reversed_torque_sign_gives_the_magnitude(robot):
    rng = np.random.default_rng(12)
    drone = synth.TrueDrone.random(robot, rng)
    cols = dict(synth.thrust_stand_log(drone, rng).columns)
    cols["torque_nm"] = -cols["torque_nm"]
    result, _ = identify_thrust(LogTable(Path("stand.csv"), cols))
    ratio = result.estimates["yaw_torque_coefficient"]
    assert ratio.low <= ratio.value <= ratio.high
    assert abs(ratio.value / drone.yaw_torque_coefficient - 1) < 0.03


def test_imu_column_below_one_count_is_rejected(robot, tmp_path, capsys):
    table, _ = synth.imu_static_log(synth.TrueDrone.random(robot, np.random.default_rng(1)),
                                    np.random.default_rng(2), seconds=11.0)
    cols = dict(table.columns)
    cols["gyro_z"] = np.zeros_like(cols["gyro_z"])
    write_csv(tmp_path / "imu.csv", cols)
    rc = main(["calibrate", "imu", str(tmp_path / "imu.csv"), "--out", str(tmp_path / "imu.yaml")])
    err = capsys.readouterr().err
    assert rc == 2 and "column 'gyro_z'" in err and "constant" in err
    assert not (tmp_path / "imu.yaml").exists()
