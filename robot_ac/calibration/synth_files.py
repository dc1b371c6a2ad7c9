"""``robot-ac calibrate synth``: one full set of synthetic logs on disk, with the truth beside them.

Why a file set: the closing loop (calibration/loop_demo.py) and anyone trying the commands need real CSV files
and a robot file of the "real" drone to evaluate policies on. The true drone's robot file has zero-width
randomization ranges for the quantities it fixes, so an evaluation with domain randomization on still flies
that one drone (only what calibration does not identify, such as inertia and disturbances, stays random).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from robot_ac.calibration import synth
from robot_ac.calibration.apply import Change, edit_robot_text
from robot_ac.calibration.latency import STEP_TOLERANCE
from robot_ac.calibration.logs import LogTable, write_csv
from robot_ac.config import Range
from robot_ac.sim.quadrotor.params import load_quadrotor

LOGS = ("thrust", "motor", "hover", "imu", "latency")


def write_synthetic_set(out_dir: Path, base_robot: Path, off_nominal: float, seed: int,
                        control_rate_hz: float = 100.0, imu_seconds: float = 60.0) -> list[Path]:
    robot = load_quadrotor(base_robot)
    rng = np.random.default_rng(seed)
    drone = synth.TrueDrone.off_nominal(robot, off_nominal, rng)
    latency_table, latencies = synth.latency_log(drone, rng)
    imu_table, imu_truth = synth.imu_static_log(drone, rng, seconds=imu_seconds)
    tables: dict[str, LogTable] = {
        "thrust": synth.thrust_stand_log(drone, rng),
        "motor": synth.motor_step_log(drone, rng),
        "hover": synth.hover_logs([drone], rng, seconds=20.0, delay_steps=1)[0],
        "imu": imu_table,
        "latency": latency_table,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in tables.items():
        path = out_dir / f"{name}.csv"
        write_csv(path, table.columns, f"synthetic {name} log (robot_ac.calibration.synth, seed {seed})")
        written.append(path)
    truth = {
        "base_robot": base_robot.name, "off_nominal": off_nominal, "seed": seed,
        "mass": drone.mass, "thrust_coefficient": drone.thrust_coefficient,
        "yaw_torque_coefficient": drone.yaw_torque_coefficient, "rpm_min": drone.rpm_min, "rpm_max": drone.rpm_max,
        "motor_time_constants": list(drone.motor_time_constants),
        "motor_delays_s": synth.motor_step_truth(drone),
        "latency_mean_s": float(latencies.mean()), "latency_range_s": [float(latencies.min()),
                                                                        float(latencies.max())],
        "hover_delay_steps": 1,
    } | imu_truth
    truth_path = out_dir / "truth.yaml"
    truth_path.write_text(yaml.safe_dump(_plain(truth), sort_keys=False))
    written.append(truth_path)
    dt = 1.0 / control_rate_hz
    delay = (int(np.floor(latencies.min() / dt + STEP_TOLERANCE)),
             int(np.ceil(latencies.max() / dt - STEP_TOLERANCE)))
    written.append(write_true_robot(out_dir / f"true_{robot.name}.yaml", base_robot, drone, delay))
    return written


def write_true_robot(path: Path, base_robot: Path, drone: synth.TrueDrone, delay_steps: tuple[int, int]) -> Path:
    """Robot file of the synthetic drone: its true values, zero-width ranges for them, its latency in steps."""
    robot = load_quadrotor(base_robot)
    tau = float(np.mean(drone.motor_time_constants))
    values = {"mass": drone.mass, "thrust_coefficient": drone.thrust_coefficient,
              "yaw_torque_coefficient": drone.yaw_torque_coefficient, "rpm_min": drone.rpm_min,
              "rpm_max": drone.rpm_max, "motor_time_constant": tau}
    changes = [Change(k, getattr(robot, k), v, "synthetic true drone") for k, v in values.items()]
    rand = robot.randomization
    if rand is not None:
        for k in ("mass", "thrust_coefficient", "yaw_torque_coefficient", "motor_time_constant"):
            changes.append(Change(f"randomization.{k}", getattr(rand, k), Range(values[k], values[k]),
                                  "synthetic true drone: fixed"))
        changes.append(Change("randomization.actuation_delay_steps", rand.actuation_delay_steps, Range(*delay_steps),
                              "synthetic true drone: its latency in control steps"))
    header = "# The synthetic 'real' drone of robot-ac calibrate synth (not a calibration result).\n#\n"
    path.write_text(edit_robot_text(base_robot.read_text(), path.stem, changes, header))
    load_quadrotor(path)
    return path


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj
