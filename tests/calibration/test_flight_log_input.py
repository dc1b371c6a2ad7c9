"""MCAP flight logs (robot_ac.runtime.flight_log, a real ROS 2 bag via rosbags) are a calibration input too."""

from __future__ import annotations

import numpy as np
import pytest

from robot_ac.calibration import synth
from robot_ac.calibration.results import load_result
from robot_ac.cli import main
from robot_ac.sim.quadrotor.params import load_quadrotor

flight_log = pytest.importorskip("robot_ac.runtime.flight_log", reason="rosbags (flight-log writer) not installed")


def test_latency_from_a_flight_log_bag(tmp_path, capsys):
    rng = np.random.default_rng(21)
    drone = synth.TrueDrone.random(load_quadrotor("crazyflie"), rng)
    table, latencies = synth.latency_log(drone, rng, events=8)
    t_ns = (table.columns["time_s"] * 1e9).round().astype(np.int64) + 1_700_000_000_000_000_000
    bag = tmp_path / "flight"
    with flight_log.FlightLog(bag) as log:
        for i, t in enumerate(t_ns):
            if i % 10 == 0:  # the host sends commands at 100 Hz, the robot streams its state at 1 kHz
                log.write_array("/hil/action", int(t), [table.columns["command"][i]], labels=["motor_cmd"])
            log.write_array("/hil/state", int(t) + 1, [table.columns["response"][i]], labels=["rpm_mean"])
    out = tmp_path / "lat.yaml"
    argv = ["calibrate", "latency", str(bag), "--command", "motor_cmd", "--response", "rpm_mean", "--out", str(out),
            "--no-plots"]
    assert main(argv) == 0, capsys.readouterr().err
    result = load_result(out)
    # The state sample stamped 1 ns after the command carries it; bag time stamps are the log's own clock.
    assert abs(result.estimates["latency"].value / latencies.mean() - 1) < 0.03


def test_bag_without_the_column_names_it(tmp_path, capsys):
    bag = tmp_path / "flight"
    with flight_log.FlightLog(bag) as log:
        for i in range(50):
            log.write_array("/imu", 1_000_000 * i, [0.0, 0.0, 9.81], labels=["accel_x", "accel_y", "accel_z"])
    rc = main(["calibrate", "imu", str(bag), "--out", str(tmp_path / "imu.yaml")])
    err = capsys.readouterr().err
    assert rc == 2 and str(bag) in err and "column 'gyro_x'" in err and "missing column" in err
    assert not (tmp_path / "imu.yaml").exists()
