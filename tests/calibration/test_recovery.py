"""Recovery on synthetic logs from the project's own dynamics: 50 seeded trials per identification step.

Acceptance (robot_ac issue "Calibration"): every estimate within 3% of the truth (time constants within 5%) and
the truth inside the reported 95% interval in at least 90% of the trials. Each trial draws a new drone around the
robot file (TrueDrone.random) and new sensor noise.
"""

from __future__ import annotations

import numpy as np
import pytest

from robot_ac.calibration import synth
from robot_ac.calibration.hover import identify_hover
from robot_ac.calibration.imu import identify_imu
from robot_ac.calibration.latency import identify_latency
from robot_ac.calibration.motor import identify_motor
from robot_ac.calibration.thrust import identify_thrust
from robot_ac.sim.quadrotor.params import load_quadrotor

TRIALS = 50
TOLERANCE = 0.03
TIME_CONSTANT_TOLERANCE = 0.05
COVERAGE_REQUIRED = 0.90


class Tally:
    """Per quantity: worst relative error and how often the interval held the truth."""

    def __init__(self) -> None:
        self.errors: dict[str, list[float]] = {}
        self.covered: dict[str, list[bool]] = {}

    def add(self, name: str, estimate, truth: float) -> None:
        self.errors.setdefault(name, []).append(abs(estimate.value - truth) / abs(truth))
        self.covered.setdefault(name, []).append(estimate.low <= truth <= estimate.high)

    def check(self, tolerance: dict[str, float] | None = None) -> None:
        tolerance = tolerance or {}
        report = []
        for name, errs in self.errors.items():
            tol = tolerance.get(name, TOLERANCE)
            coverage = float(np.mean(self.covered[name]))
            report.append(f"{name}: worst error {max(errs):.2%} (tolerance {tol:.0%}), coverage {coverage:.0%}")
            assert len(errs) >= TRIALS
            assert max(errs) <= tol, "\n".join(report)
            assert coverage >= COVERAGE_REQUIRED, "\n".join(report)
        print("\n".join(report))


@pytest.fixture(scope="module")
def robot():
    return load_quadrotor("crazyflie")


def _drones(robot, salt: int) -> list[tuple[synth.TrueDrone, np.random.Generator]]:
    out = []
    for seed in range(TRIALS):
        rng = np.random.default_rng([salt, seed])
        out.append((synth.TrueDrone.random(robot, rng), rng))
    return out


def test_thrust_curve_recovery(robot):
    tally = Tally()
    for drone, rng in _drones(robot, 1):
        result, _ = identify_thrust(synth.thrust_stand_log(drone, rng))
        for key in ("thrust_coefficient", "yaw_torque_coefficient", "rpm_min", "rpm_max"):
            tally.add(key, result.estimates[key], getattr(drone, key))
    tally.check()


def test_motor_dynamics_recovery(robot):
    tally = Tally()
    for drone, rng in _drones(robot, 2):
        result, _ = identify_motor(synth.motor_step_log(drone, rng))
        for i, (tau, delay) in enumerate(zip(drone.motor_time_constants, synth.motor_step_truth(drone),
                                             strict=True)):
            tally.add("motor_time_constant", result.estimates[f"motor_time_constant_{i}"], tau)
            tally.add("motor_delay", result.estimates[f"motor_delay_{i}"], delay)
    tally.check({"motor_time_constant": TIME_CONSTANT_TOLERANCE, "motor_delay": TIME_CONSTANT_TOLERANCE})


def test_imu_recovery(robot):
    tally = Tally()
    for drone, rng in _drones(robot, 3):
        table, truth = synth.imu_static_log(drone, rng, seconds=20.0)
        result, _ = identify_imu(table, gravity=drone.gravity, with_allan=False)
        for key, value in truth.items():
            tally.add(key.rsplit("_", 1)[0], result.estimates[key], value)
    tally.check()


def test_latency_recovery(robot):
    tally = Tally()
    for drone, rng in _drones(robot, 4):
        table, latencies = synth.latency_log(drone, rng)
        result, _ = identify_latency(table)
        tally.add("latency", result.estimates["latency"], float(latencies.mean()))
        spread = result.estimates["latency_spread"]
        assert spread.low <= latencies.min() + 1e-3 and spread.high >= latencies.max() - 1e-3
    tally.check()


def _hover_inputs(robot, salt: int, scale: bool):
    """Drones with their stand and IMU calibrations, and one batched hover flight of all of them."""
    trials = _drones(robot, salt)
    drones, stands, imus = [], [], []
    for drone, rng in trials:
        if scale:
            drone = drone.with_scale(float(rng.uniform(0.9, 1.1)))
        drones.append(drone)
        stands.append(identify_thrust(synth.thrust_stand_log(drone, rng))[0])
        imus.append(identify_imu(synth.imu_static_log(drone, rng, seconds=20.0)[0], with_allan=False)[0])
    logs = synth.hover_logs(drones, np.random.default_rng(salt), seconds=10.0, delay_steps=1)
    return zip(drones, stands, imus, logs, strict=True)


def _hover(drone, stand, imu, log, mass=None):
    tmap = stand.details["thrust_map"]
    bias = imu.estimates["accel_bias_z"]
    tau = float(np.mean(drone.motor_time_constants))
    return identify_hover(log, tmap["b0_b1_kf"], tmap["covariance"], tau, delay_s=0.01, mass=mass,
                          accel_bias_z=(bias.value, bias.half_width / 1.96))[0]


def test_hover_mass_recovery(robot):
    tally = Tally()
    for drone, stand, imu, log in _hover_inputs(robot, 5, scale=False):
        tally.add("mass", _hover(drone, stand, imu, log).estimates["mass"], drone.mass)
    tally.check()


def test_hover_thrust_scale_recovery_with_weighed_mass(robot):
    tally = Tally()
    for drone, stand, imu, log in _hover_inputs(robot, 6, scale=True):
        result = _hover(drone, stand, imu, log, mass=drone.mass)
        tally.add("thrust_scale", result.estimates["thrust_scale"], drone.thrust_scale)
        tally.add("thrust_coefficient", result.estimates["thrust_coefficient"],
                  drone.thrust_scale * drone.thrust_coefficient)
    tally.check()
