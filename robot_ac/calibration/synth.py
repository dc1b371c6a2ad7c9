"""Synthetic calibration logs from the project's own dynamics, with known parameters and realistic sensor defects.

Why: identification code is only trustworthy if it recovers parameters it did not see. Every log here comes from
``robot_ac.sim.quadrotor.dynamics`` (rotor_wrench for the stand, rk4_step for motors and flight) driven by a "true"
drone, then gets the defects of real logs: 16-bit PWM quantization, integer rpm telemetry with noise, load-cell
noise, IMU white noise + bias + 16-bit quantization, pure delays and per-event jitter. Generators are batched
over trials (the recovery tests run 50 seeded trials at once).

Noise levels are assumptions of the right order for a Crazyflie-class bench (noted per constant); the IMU values
are the order of the Bosch BMI088 (Crazyflie 2.1 IMU) datasheet figures (gyro ~0.014 deg/s/sqrt(Hz), accel
~175 ug/sqrt(Hz)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from scipy import signal

from robot_ac.calibration.logs import LogTable
from robot_ac.sim.quadrotor import dynamics
from robot_ac.sim.quadrotor.params import QuadrotorParams

PWM_MAX = 65535.0                 # 16-bit motor command (Crazyflie motors take a 16-bit ratio)
RPM_NOISE_STAND = 20.0            # rpm, std of the stand's averaged rpm reading (assumption)
RPM_NOISE_TELEMETRY = 30.0        # rpm, std of per-sample rpm telemetry in step/latency logs (assumption)
THRUST_NOISE = 5e-4               # N, load-cell noise (~0.05 g; assumption)
TORQUE_NOISE = 1e-5               # N m, torque-cell noise (assumption)
GYRO_DENSITY = math.radians(0.014)  # rad/s/sqrt(Hz), BMI088-class gyro
ACCEL_DENSITY = 175e-6 * 9.81     # (m/s^2)/sqrt(Hz), BMI088-class accelerometer
GYRO_LSB = math.radians(2000.0) / 32768  # rad/s per count, +-2000 deg/s 16-bit
ACCEL_LSB = 24 * 9.81 / 32768     # m/s^2 per count, +-24 g 16-bit


@dataclass
class TrueDrone:
    """The parameters a synthetic log is generated from (what calibration should recover)."""

    mass: float
    thrust_coefficient: float
    yaw_torque_coefficient: float
    rpm_min: float
    rpm_max: float
    motor_time_constants: tuple[float, ...]
    motor_delays_s: tuple[float, ...]
    latency_s: float                   # end-to-end latency before jitter
    latency_jitter_s: float            # uniform extra latency per command, [0, jitter]
    rpm_voltage_sensitivity: float = 0.0  # rpm per volt at full command
    thrust_scale: float = 1.0          # in-flight thrust relative to the stand (ground effect, props, ...)
    gyro_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)
    accel_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gravity: float = 9.81
    robot: QuadrotorParams | None = field(default=None, repr=False)

    @staticmethod
    def off_nominal(robot: QuadrotorParams, factor: float, rng: np.random.Generator) -> TrueDrone:
        """A drone whose main parameters are each ``factor`` (e.g. 0.15) off the robot file, with random sign."""
        def off(x: float) -> float:
            return x * (1.0 + factor * rng.choice([-1.0, 1.0]))
        tau = off(robot.motor_time_constant)
        return TrueDrone(
            mass=off(robot.mass), thrust_coefficient=off(robot.thrust_coefficient),
            yaw_torque_coefficient=off(robot.yaw_torque_coefficient),
            rpm_min=robot.rpm_min + 0.05 * robot.rpm_max, rpm_max=robot.rpm_max * (1 - factor),
            motor_time_constants=tuple(tau * (1 + 0.03 * rng.standard_normal(4))),
            motor_delays_s=tuple(0.004 + 0.002 * rng.random(4)), latency_s=0.010, latency_jitter_s=0.006,
            rpm_voltage_sensitivity=0.1 * robot.rpm_max,
            gyro_bias=tuple(rng.uniform(-0.02, 0.02, 3)), accel_bias=tuple(rng.uniform(-0.2, 0.2, 3)),
            gravity=robot.gravity, robot=robot)

    @staticmethod
    def random(robot: QuadrotorParams, rng: np.random.Generator) -> TrueDrone:
        """A drone drawn around the robot file (the recovery tests' truth)."""
        tau = rng.uniform(0.04, 0.15)
        sign = rng.choice([-1.0, 1.0], size=6)
        return TrueDrone(
            mass=robot.mass * rng.uniform(0.85, 1.15),
            thrust_coefficient=robot.thrust_coefficient * rng.uniform(0.85, 1.15),
            yaw_torque_coefficient=rng.uniform(0.006, 0.03),
            rpm_min=rng.uniform(1500.0, 3000.0), rpm_max=robot.rpm_max * rng.uniform(0.9, 1.1),
            motor_time_constants=tuple(tau * (1 + 0.05 * rng.standard_normal(4))),
            motor_delays_s=tuple(rng.uniform(0.003, 0.015, 4)),
            latency_s=rng.uniform(0.008, 0.03), latency_jitter_s=rng.uniform(0.0, 0.006),
            rpm_voltage_sensitivity=rng.uniform(0.0, 0.15) * robot.rpm_max,
            gyro_bias=tuple(sign[:3] * rng.uniform(0.01, 0.03, 3)),
            accel_bias=tuple(sign[3:] * rng.uniform(0.05, 0.2, 3)), gravity=robot.gravity, robot=robot)

    def with_scale(self, scale: float) -> TrueDrone:
        return replace(self, thrust_scale=scale)


def _table(name: str, columns: dict[str, np.ndarray]) -> LogTable:
    from pathlib import Path
    return LogTable(Path(name), {k: np.asarray(v, dtype=float) for k, v in columns.items()})


def _pwm(u: np.ndarray) -> np.ndarray:
    return np.round(np.clip(u, 0.0, 1.0) * PWM_MAX)


# ------------------------------------------------------------------------------------------------- thrust stand
def thrust_stand_log(drone: TrueDrone, rng: np.random.Generator, levels: int = 19, sweeps: int = 2,
                     name: str = "synthetic_thrust.csv") -> LogTable:
    """Up-and-down PWM sweeps on a one-motor stand; averaged readings per level while the battery drains."""
    u_levels = np.linspace(0.1, 1.0, levels)
    u_target = np.concatenate([np.concatenate([u_levels, u_levels[::-1]]) for _ in range(sweeps)])
    pwm = _pwm(u_target)
    u = pwm / PWM_MAX
    n = len(u)
    voltage = np.linspace(4.15, 3.75, n) - 0.25 * u**2 + 0.005 * rng.standard_normal(n)
    voltage = np.round(voltage, 3)  # mV resolution
    v_ref = float(np.median(voltage))
    rpm_true = drone.rpm_min + u * (drone.rpm_max - drone.rpm_min) + drone.rpm_voltage_sensitivity * u * (
        voltage - v_ref)
    # One rotor at the origin, spinning with yaw direction +1: the simulator's own force/torque model.
    rotor = dynamics.RotorGeometry.from_lists([[0.0, 0.0, 0.0]], [1.0], "cpu")
    thrust, torque = dynamics.rotor_wrench(torch.tensor(rpm_true, dtype=torch.float64)[:, None],
                                           torch.full((n,), drone.thrust_coefficient, dtype=torch.float64),
                                           torch.full((n,), drone.yaw_torque_coefficient, dtype=torch.float64),
                                           dynamics.RotorGeometry(rotor.x.double(), rotor.y.double(),
                                                                  rotor.yaw_direction.double()))
    return _table(name, {
        "pwm": pwm,
        "voltage_v": voltage,
        "rpm": np.round(rpm_true + RPM_NOISE_STAND * rng.standard_normal(n)),
        "thrust_n": thrust.numpy() + THRUST_NOISE * rng.standard_normal(n),
        "torque_nm": torque[:, 2].numpy() + TORQUE_NOISE * rng.standard_normal(n),
    })


# ---------------------------------------------------------------------------------------------- motor response
def motor_propagator(time_constants: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """One rk4_step of the simulator's motor model as ``rpm' = a rpm + b cmd`` per time constant.

    The motor part of the dynamics is linear and time invariant, so probing ``dynamics.rk4_step`` twice (rpm=1,
    cmd=0 and rpm=0, cmd=1) gives its exact discrete propagator; long logs are then filtered with it instead of
    stepping the whole rigid body thousands of times.
    """
    m = len(time_constants)
    state = torch.zeros(2 * m, dynamics.STATE_SIZE, dtype=torch.float64)
    state[:, 3] = 1.0
    state[:m, dynamics.RPM] = 1.0
    cmd = torch.zeros(2 * m, 4, dtype=torch.float64)
    cmd[m:] = 1.0
    zeros, ones = torch.zeros(2 * m, dtype=torch.float64), torch.ones(2 * m, dtype=torch.float64)
    tau = torch.tensor(np.concatenate([time_constants, time_constants]), dtype=torch.float64)
    rotors = dynamics.RotorGeometry(torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64),
                                    torch.ones(4, dtype=torch.float64))
    out = dynamics.rk4_step(state, cmd, h, 1, ones, ones[:, None].expand(2 * m, 3), zeros, zeros, tau, zeros,
                            torch.zeros(2 * m, 3, dtype=torch.float64), torch.zeros(2 * m, 3, dtype=torch.float64),
                            rotors, 0.0)
    rpm = out[:, 13].numpy()
    return rpm[:m], rpm[m:]


def motor_response(cmd: np.ndarray, time_constant: float, h: float) -> np.ndarray:
    """rpm on the simulation grid for a held command per grid step, starting at rest at ``cmd[0]``."""
    a, b = motor_propagator(np.array([time_constant]), h)
    return cmd[0] + signal.lfilter([0.0, b[0]], [1.0, -a[0]], cmd - cmd[0])


def motor_step_log(drone: TrueDrone, rng: np.random.Generator, steps: int = 10, hold_s: float | None = None,
                   rate_hz: float = 1000.0, name: str = "synthetic_motor.csv") -> LogTable:
    """Four motors, each commanded through random PWM steps; rpm telemetry logged at ``rate_hz``.

    Each step is held 5 time constants of the slowest motor (at least 0.3 s) unless ``hold_s`` is given.
    """
    hold_s = hold_s or max(0.3, 5.0 * max(drone.motor_time_constants))
    sub = 4
    h = 1.0 / (rate_hz * sub)
    per_step = int(round(hold_s * rate_hz))
    n_log = steps * per_step
    cols: dict[str, np.ndarray] = {"time_s": np.arange(n_log) / rate_hz}
    for i, (tau, delay) in enumerate(zip(drone.motor_time_constants, drone.motor_delays_s, strict=True)):
        levels = _pwm(rng.uniform(0.15, 0.95, steps))
        pwm_log = np.repeat(levels, per_step)
        pwm_fine = np.repeat(pwm_log, sub)
        shift = int(round(delay / h))
        delayed = np.concatenate([np.full(shift, pwm_fine[0]), pwm_fine[: len(pwm_fine) - shift]])
        rpm_cmd = drone.rpm_min + delayed / PWM_MAX * (drone.rpm_max - drone.rpm_min)
        rpm = motor_response(rpm_cmd, tau, h)[::sub]
        cols[f"pwm_{i}"] = pwm_log
        cols[f"rpm_{i}"] = np.round(rpm + RPM_NOISE_TELEMETRY * rng.standard_normal(n_log))
    return _table(name, cols)


def motor_step_truth(drone: TrueDrone, rate_hz: float = 1000.0) -> list[float]:
    """Delays as generated: rounded to the simulation grid of ``motor_step_log``."""
    h = 1.0 / (rate_hz * 4)
    return [round(d / h) * h for d in drone.motor_delays_s]


def latency_log(drone: TrueDrone, rng: np.random.Generator, events: int = 20, period_s: float = 0.25,
                rate_hz: float = 1000.0, name: str = "synthetic_latency.csv") -> tuple[LogTable, np.ndarray]:
    """HIL log: the host toggles a collective motor command; the robot's rpm telemetry answers after a latency.

    Returns the log and the true latency of each event (grid-rounded) for the recovery test.
    """
    sub = 4
    h = 1.0 / (rate_hz * sub)
    hold = int(round(period_s * rate_hz))
    n_log = events * hold + hold
    low, high = _pwm(np.array([0.35, 0.55]))
    pwm_log = np.full(n_log, low)
    for k in range(events):
        pwm_log[(k + 1) * hold: (k + 2) * hold] = high if k % 2 == 0 else low
    latencies = drone.latency_s + drone.latency_jitter_s * rng.random(events)
    shifts = np.round(latencies / h).astype(int)
    fine_applied = np.full(n_log * sub, low)
    for k in range(events):
        start = (k + 1) * hold * sub + shifts[k]
        fine_applied[start:] = pwm_log[(k + 1) * hold]
    tau = float(np.mean(drone.motor_time_constants))
    rpm_cmd = drone.rpm_min + fine_applied / PWM_MAX * (drone.rpm_max - drone.rpm_min)
    rpm = motor_response(rpm_cmd, tau, h)[::sub]
    table = _table(name, {"time_s": np.arange(n_log) / rate_hz, "command": 2 * pwm_log / PWM_MAX - 1,
                          "response": np.round(rpm + RPM_NOISE_TELEMETRY * rng.standard_normal(n_log))})
    return table, shifts * h


# ---------------------------------------------------------------------------------------------------------- IMU
def imu_static_log(drone: TrueDrone, rng: np.random.Generator, seconds: float = 30.0, rate_hz: float = 1000.0,
                   bias_walk: float = 0.0, name: str = "synthetic_imu.csv") -> tuple[LogTable, dict[str, float]]:
    """IMU lying level and still: gravity on +z, white noise, bias (+ optional random walk), 16-bit counts.

    Returns the log and the true bias of each channel averaged over the log (what a static log can identify).
    """
    n = int(seconds * rate_hz)
    cols: dict[str, np.ndarray] = {"time_s": np.arange(n) / rate_hz}
    truth: dict[str, float] = {}
    specific_force = (0.0, 0.0, drone.gravity)  # at rest, level: the table pushes up with g
    for kind, bias, density, lsb, base in (("gyro", drone.gyro_bias, GYRO_DENSITY, GYRO_LSB, (0.0, 0.0, 0.0)),
                                           ("accel", drone.accel_bias, ACCEL_DENSITY, ACCEL_LSB, specific_force)):
        for axis, b, b0 in zip("xyz", bias, base, strict=True):
            walk = np.cumsum(bias_walk * math.sqrt(1 / rate_hz) * rng.standard_normal(n)) if bias_walk else 0.0
            true_bias = b + walk
            signal_ = b0 + true_bias + density * math.sqrt(rate_hz) * rng.standard_normal(n)
            cols[f"{kind}_{axis}"] = np.round(signal_ / lsb) * lsb
            truth[f"{kind}_bias_{axis}"] = float(np.mean(true_bias))
            truth[f"{kind}_noise_density_{axis}"] = density
    return _table(name, cols), truth


# -------------------------------------------------------------------------------------------------------- hover
def hover_logs(drones: list[TrueDrone], rng: np.random.Generator, seconds: float = 20.0, delay_steps: int = 1,
               names: list[str] | None = None) -> list[LogTable]:
    """Vertical hover flights of several drones at once with ``dynamics.rk4_step`` at 100 Hz.

    An altitude PID that believes the robot file (not the true drone) commands all four motors equally, so the
    flight stays level; the log holds the 16-bit PWM commands and the IMU's body-z specific force.
    """
    robot = drones[0].robot
    assert robot is not None, "TrueDrone.robot is needed for hover logs"
    n, dt = len(drones), 0.01
    steps = int(seconds / dt)
    f64 = torch.float64

    def col(values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=f64)

    mass = col([d.mass for d in drones])
    kf_flight = col([d.thrust_coefficient * d.thrust_scale for d in drones])
    km = col([d.yaw_torque_coefficient for d in drones])
    tau = col([float(np.mean(d.motor_time_constants)) for d in drones])
    rpm_lo, rpm_hi = col([d.rpm_min for d in drones]), col([d.rpm_max for d in drones])
    rotors = dynamics.RotorGeometry.from_lists(robot.rotor_positions, robot.rotor_yaw_directions, "cpu")
    rotors = dynamics.RotorGeometry(rotors.x.double(), rotors.y.double(), rotors.yaw_direction.double())
    inertia = torch.tensor(robot.inertia, dtype=f64).expand(n, 3)
    zeros3 = torch.zeros(n, 3, dtype=f64)
    hover_rpm = torch.sqrt(mass * drones[0].gravity / (4 * kf_flight))
    state = torch.zeros(n, dynamics.STATE_SIZE, dtype=f64)
    state[:, 3] = 1.0
    state[:, dynamics.RPM] = hover_rpm[:, None]
    setpoints = torch.tensor([0.0, 0.3, -0.2, 0.1, 0.0], dtype=f64)
    seg = max(1, steps // len(setpoints))
    integral = torch.zeros(n, dtype=f64)
    u_hover_hold = ((hover_rpm - rpm_lo) / (rpm_hi - rpm_lo)).numpy()
    queue = [torch.tensor(_pwm(u_hover_hold), dtype=f64)] * delay_steps
    pwm_log, az_log = np.zeros((steps, n)), np.zeros((steps, n))
    for k in range(steps):
        z, vz = state[:, 2], state[:, 9]
        target = setpoints[min(k // seg, len(setpoints) - 1)]
        integral = integral + (target - z) * dt
        acc_cmd = 6.0 * (target - z) - 4.0 * vz + 2.0 * integral
        thrust_each = (robot.mass * (robot.gravity + acc_cmd) / 4).clamp_min(0.0)
        rpm_des = torch.sqrt(thrust_each / robot.thrust_coefficient)
        u = (rpm_des - robot.rpm_min) / (robot.rpm_max - robot.rpm_min)
        pwm = torch.tensor(_pwm(u.numpy()), dtype=f64)
        queue.append(pwm)
        applied = queue.pop(0)
        # IMU sample at the start of the step: specific force along body z from the current rotor speeds.
        total, _ = dynamics.rotor_wrench(state[:, dynamics.RPM], kf_flight, km, rotors)
        az_log[k] = (total / mass).numpy()
        pwm_log[k] = pwm.numpy()
        rpm_cmd = (rpm_lo + applied / PWM_MAX * (rpm_hi - rpm_lo))[:, None].expand(n, 4)
        state = dynamics.rk4_step(state, rpm_cmd, dt, 1, mass, inertia, kf_flight, km, tau,
                                  torch.zeros(n, dtype=f64), zeros3, zeros3, rotors, drones[0].gravity)
    rate = 1 / dt
    tables = []
    for i, d in enumerate(drones):
        noise = ACCEL_DENSITY * math.sqrt(rate) * rng.standard_normal((steps, 3))
        accel = np.column_stack([np.zeros(steps), np.zeros(steps), az_log[:, i]]) + np.array(d.accel_bias) + noise
        accel = np.round(accel / ACCEL_LSB) * ACCEL_LSB
        cols = {"time_s": np.arange(steps) * dt}
        cols |= {f"pwm_{j}": pwm_log[:, i] for j in range(4)}
        cols |= {"accel_x": accel[:, 0], "accel_y": accel[:, 1], "accel_z": accel[:, 2]}
        tables.append(_table(names[i] if names else f"synthetic_hover_{i}.csv", cols))
    return tables
