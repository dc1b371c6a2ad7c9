"""Bad logs are rejected with one line naming the file and the column, and nothing is written.

Each case starts from a valid synthetic log written to disk, breaks one thing, and runs the real command
(``robot-ac calibrate <step> LOG --out DIR/result.yaml``) in-process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robot_ac.calibration import synth
from robot_ac.calibration.logs import write_csv
from robot_ac.cli import main
from robot_ac.sim.quadrotor.params import load_quadrotor


@pytest.fixture(scope="module")
def drone():
    return synth.TrueDrone.random(load_quadrotor("crazyflie"), np.random.default_rng(11))


def _write(path: Path, columns: dict[str, np.ndarray]) -> Path:
    write_csv(path, columns)
    return path


def _run(capsys, tmp_path: Path, argv: list[str]) -> tuple[int, str]:
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    rc = main(["calibrate", *argv, "--out", str(out_dir / "result.yaml")])
    err = capsys.readouterr().err
    assert list(out_dir.iterdir()) == [], "a rejected input must leave nothing behind"
    return rc, err


def _assert_rejected(rc: int, err: str, path: Path, column: str | None, phrase: str) -> None:
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in err and phrase in err, err
    if column:
        assert f"column '{column}'" in err, err
    assert "Traceback" not in err


def test_empty_file(capsys, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    rc, err = _run(capsys, tmp_path, ["thrust", str(path)])
    _assert_rejected(rc, err, path, None, "empty log")


def test_header_only(capsys, tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("pwm,rpm,thrust_n\n")
    rc, err = _run(capsys, tmp_path, ["thrust", str(path)])
    _assert_rejected(rc, err, path, "pwm", "empty log")


def test_missing_column(capsys, tmp_path, drone):
    cols = dict(synth.thrust_stand_log(drone, np.random.default_rng(0)).columns)
    del cols["thrust_n"]
    path = _write(tmp_path / "stand.csv", cols)
    rc, err = _run(capsys, tmp_path, ["thrust", str(path)])
    _assert_rejected(rc, err, path, "thrust_n", "missing column")


def test_missing_imu_column(capsys, tmp_path, drone):
    table, _ = synth.imu_static_log(drone, np.random.default_rng(0), seconds=12.0)
    cols = {k: v for k, v in table.columns.items() if k != "gyro_y"}
    path = _write(tmp_path / "imu.csv", cols)
    rc, err = _run(capsys, tmp_path, ["imu", str(path)])
    _assert_rejected(rc, err, path, "gyro_y", "missing column")


def test_nan(capsys, tmp_path, drone):
    cols = dict(synth.motor_step_log(drone, np.random.default_rng(0), hold_s=0.5).columns)
    cols["rpm_2"] = cols["rpm_2"].copy()
    cols["rpm_2"][100] = np.nan
    path = _write(tmp_path / "motor.csv", cols)
    rc, err = _run(capsys, tmp_path, ["motor", str(path)])
    _assert_rejected(rc, err, path, "rpm_2", "NaN")


def test_not_a_number(capsys, tmp_path):
    path = tmp_path / "stand.csv"
    path.write_text("pwm,thrust_n\n100,0.01\n200,abc\n")
    rc, err = _run(capsys, tmp_path, ["thrust", str(path)])
    _assert_rejected(rc, err, path, "thrust_n", "not a number")


def test_saturated_motor_in_hover(capsys, tmp_path, drone):
    robot = load_quadrotor("crazyflie")
    log = synth.hover_logs([drone], np.random.default_rng(0), seconds=7.0)[0]
    cols = dict(log.columns)
    cols["pwm_3"] = cols["pwm_3"].copy()
    cols["pwm_3"][200:300] = synth.PWM_MAX
    path = _write(tmp_path / "hover.csv", cols)
    stand = tmp_path / "stand.yaml"
    assert main(["calibrate", "thrust", str(_write(tmp_path / "stand.csv", synth.thrust_stand_log(
        drone, np.random.default_rng(1)).columns)), "--out", str(stand), "--no-plots"]) == 0
    capsys.readouterr()
    rc, err = _run(capsys, tmp_path, ["hover", str(path), "--thrust", str(stand), "--robot", robot.name])
    _assert_rejected(rc, err, path, "pwm_3", "motor saturated")


def test_saturated_rpm_in_step_log(capsys, tmp_path, drone):
    cols = dict(synth.motor_step_log(drone, np.random.default_rng(0), hold_s=0.5).columns)
    rpm = cols["rpm_1"].copy()
    cols["rpm_1"] = np.minimum(rpm, np.percentile(rpm, 80))
    path = _write(tmp_path / "motor.csv", cols)
    rc, err = _run(capsys, tmp_path, ["motor", str(path)])
    _assert_rejected(rc, err, path, "rpm_1", "saturated")


def test_clipped_load_cell(capsys, tmp_path, drone):
    cols = dict(synth.thrust_stand_log(drone, np.random.default_rng(0)).columns)
    cols["thrust_n"] = np.minimum(cols["thrust_n"], 0.08)
    path = _write(tmp_path / "stand.csv", cols)
    rc, err = _run(capsys, tmp_path, ["thrust", str(path)])
    _assert_rejected(rc, err, path, "thrust_n", "saturated")


def test_too_short_motor_log(capsys, tmp_path, drone):
    cols = synth.motor_step_log(drone, np.random.default_rng(0), hold_s=0.5).columns
    n = int(0.9 * 500)  # less than one full hold: no command step at all
    path = _write(tmp_path / "motor.csv", {k: v[:n] for k, v in cols.items()})
    rc, err = _run(capsys, tmp_path, ["motor", str(path)])
    _assert_rejected(rc, err, path, "pwm_0", "too short to identify")


def test_too_short_imu_log(capsys, tmp_path, drone):
    table, _ = synth.imu_static_log(drone, np.random.default_rng(0), seconds=3.0)
    path = _write(tmp_path / "imu.csv", table.columns)
    rc, err = _run(capsys, tmp_path, ["imu", str(path)])
    _assert_rejected(rc, err, path, "time_s", "too short to identify")


def test_too_short_latency_log(capsys, tmp_path, drone):
    table, _ = synth.latency_log(drone, np.random.default_rng(0), events=2)
    path = _write(tmp_path / "lat.csv", table.columns)
    rc, err = _run(capsys, tmp_path, ["latency", str(path)])
    _assert_rejected(rc, err, path, "command", "too short to identify")


def test_thrust_too_few_levels(capsys, tmp_path):
    path = tmp_path / "stand.csv"
    rows = "\n".join(f"{p},{r},{t}" for p, r, t in [(30000, 9000, 0.02)] * 6 + [(40000, 12000, 0.04)] * 6)
    path.write_text("pwm,rpm,thrust_n\n" + rows + "\n")
    rc, err = _run(capsys, tmp_path, ["thrust", str(path)])
    _assert_rejected(rc, err, path, "pwm", "too short to identify")


@pytest.mark.parametrize("step", ["motor", "imu", "latency"])
def test_non_monotonic_time(capsys, tmp_path, drone, step):
    rng = np.random.default_rng(0)
    table = {"motor": lambda: synth.motor_step_log(drone, rng, hold_s=0.5),
             "imu": lambda: synth.imu_static_log(drone, rng, seconds=12.0)[0],
             "latency": lambda: synth.latency_log(drone, rng)[0]}[step]()
    cols = dict(table.columns)
    t = cols["time_s"].copy()
    t[300], t[301] = t[301], t[300]
    cols["time_s"] = t
    path = _write(tmp_path / f"{step}.csv", cols)
    rc, err = _run(capsys, tmp_path, [step, str(path)])
    _assert_rejected(rc, err, path, "time_s", "not strictly increasing at data row 302")


def test_command_out_of_range(capsys, tmp_path, drone):
    cols = dict(synth.thrust_stand_log(drone, np.random.default_rng(0)).columns)
    cols["pwm"] = cols["pwm"].copy()
    cols["pwm"][5] = 70000
    path = _write(tmp_path / "stand.csv", cols)
    rc, err = _run(capsys, tmp_path, ["thrust", str(path)])
    _assert_rejected(rc, err, path, "pwm", "outside [0, 65535]")


def test_missing_file(capsys, tmp_path):
    path = tmp_path / "nope.csv"
    rc, err = _run(capsys, tmp_path, ["imu", str(path)])
    _assert_rejected(rc, err, path, None, "file not found")
