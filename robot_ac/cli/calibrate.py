"""``robot-ac calibrate``: system identification from robot logs, and robot files built from the results.

Sub-commands ``thrust``, ``motor``, ``hover``, ``imu`` and ``latency`` each read one CSV log and write a result YAML
(estimates with 95% intervals), a Markdown report and PNG plots of data against fit; ``apply`` turns results into a
new robot file under ``sim/robots/``; ``synth`` writes synthetic logs of a known drone. Bad input ends with one
line naming the file and the column on stderr, exit code 2, and nothing written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_USER_ERROR = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "calibrate", help="identify simulator parameters from robot logs and write a calibrated robot file",
        description="System identification for the quadrotor simulator. Log formats: calibration/README.md.")
    sub = p.add_subparsers(dest="calibrate_command", metavar="STEP")

    def step(name: str, help_: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help_, description=help_)
        s.add_argument("log", help="CSV log (header row; columns in calibration/README.md) or MCAP flight-log folder")
        s.add_argument("--out", default=None, help="result YAML (default: <log>.<step>.yaml next to the log); "
                                                   "the report <stem>.md and plots <stem>_*.png go beside it")
        s.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
        return s

    s = step("thrust", "thrust-stand log -> command->rpm map, thrust and yaw-torque coefficients")
    s.add_argument("--pwm-max", type=float, default=65535.0, help="PWM full scale when the log has 'pwm'")
    s.add_argument("--robot", default="crazyflie", help="robot whose rpm range is assumed when the log has no rpm")
    s.add_argument("--voltage-ref", type=float, default=None, help="battery voltage the estimates refer to "
                                                                    "(default: median of voltage_v)")
    s.set_defaults(func=_thrust)

    s = step("motor", "step-response log -> motor time constant and pure delay per motor")
    s.add_argument("--pwm-max", type=float, default=65535.0)
    s.set_defaults(func=_motor)

    s = step("hover", "hover log (motor commands + IMU) -> mass, or thrust scale with a weighed mass")
    s.add_argument("--thrust", required=True, help="result of 'calibrate thrust' (the thrust curve)")
    s.add_argument("--motor", default=None, help="result of 'calibrate motor' (default: robot file's time constant)")
    s.add_argument("--imu", default=None, help="result of 'calibrate imu' (removes the accelerometer z bias)")
    s.add_argument("--mass", type=float, default=None, help="weighed mass [kg]: identify the thrust scale instead")
    s.add_argument("--robot", default="crazyflie", help="robot file for the default motor time constant")
    s.add_argument("--pwm-max", type=float, default=65535.0)
    s.set_defaults(func=_hover)

    s = step("imu", "static, level IMU log -> gyro/accel bias and noise density, Allan deviation")
    s.add_argument("--gravity", type=float, default=9.81, help="local gravity [m/s^2]")
    s.set_defaults(func=_imu)

    s = step("latency", "HIL or flight log -> end-to-end latency (command sent -> first response)")
    s.add_argument("--command", default="command", help="command column (default: command)")
    s.add_argument("--response", default="response", help="response column (default: response)")
    s.add_argument("--control-rate", type=float, default=100.0, help="control rate [Hz] for the delay in steps")
    s.set_defaults(func=_latency)

    s = sub.add_parser("apply", help="write a calibrated robot file from result YAMLs",
                       description="Nominal values become the estimates; randomization ranges come from the 95% "
                                   "intervals (times --ci-scale, at least +-floor); prints what changed.")
    s.add_argument("results", nargs="+", help="result YAML files from the other calibrate steps")
    s.add_argument("--robot", default="crazyflie", help="base robot (sim/robots/<name>.yaml or a path)")
    s.add_argument("--name", default=None, help="new robot name (default: <robot>_calibrated)")
    s.add_argument("--robots-dir", default=None, help="folder for the new file (default: sim/robots)")
    s.add_argument("--out", default=None, help="explicit output path (overrides --name/--robots-dir)")
    s.add_argument("--floor", type=float, default=0.05, help="smallest randomization half-width, relative (0.05)")
    s.add_argument("--ci-scale", type=float, default=1.0, help="randomization half-width in units of the interval")
    s.add_argument("--control-rate", type=float, default=100.0, help="control rate [Hz] for the delay in steps")
    s.set_defaults(func=_apply)

    s = sub.add_parser("synth", help="write synthetic logs of a drone off the robot file by a known amount",
                       description="Logs from the project's own dynamics with realistic noise, delay and "
                                   "quantization, plus truth.yaml and the true drone as a robot file.")
    s.add_argument("out_dir", help="output folder")
    s.add_argument("--robot", default="crazyflie", help="base robot")
    s.add_argument("--off-nominal", type=float, default=0.15, help="relative offset of each parameter (0.15)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--imu-seconds", type=float, default=60.0, help="length of the static IMU log (60)")
    s.set_defaults(func=_synth)
    p.set_defaults(func=lambda args: (p.print_help(), EXIT_USER_ERROR)[1])


# --------------------------------------------------------------------------------------------------- helpers
def _errors() -> tuple[type[Exception], ...]:
    from robot_ac.calibration.apply import ApplyError
    from robot_ac.calibration.logs import LogError
    from robot_ac.calibration.results import ResultError
    from robot_ac.config import ConfigError

    return LogError, ResultError, ApplyError, ConfigError, OSError


def _guard(fn):
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except _errors() as err:
            print(f"robot-ac calibrate {args.calibrate_command}: error: {err}", file=sys.stderr)
            return EXIT_USER_ERROR
    return run


def _out(args: argparse.Namespace, step: str) -> Path:
    log = Path(args.log)
    return Path(args.out) if args.out else log.with_name(f"{log.stem}.{step}.yaml")


def _finish(args: argparse.Namespace, result, make_figures) -> int:
    from robot_ac.calibration.results import write_result

    figures = {} if args.no_plots else make_figures()
    written = write_result(result, _out(args, result.step), figures)
    print(result.table())
    for path in written:
        print(f"wrote {path}")
    return 0


def _robot_file(name: str) -> Path:
    from robot_ac.paths import robot_file

    return Path(name) if name.endswith((".yaml", ".yml")) else robot_file(name)


def _load(path: str, step: str):
    from robot_ac.calibration.results import ResultError, load_result

    res = load_result(path)
    if res.step != step:
        raise ResultError(path, "step", f"expected a '{step}' result, got '{res.step}'")
    return res


# ------------------------------------------------------------------------------------------------- commands
@_guard
def _thrust(args: argparse.Namespace) -> int:
    from robot_ac.calibration.logs import read_log
    from robot_ac.calibration.thrust import identify_thrust, thrust_figures
    from robot_ac.sim.quadrotor.params import load_quadrotor

    table = read_log(args.log)
    rpm_range = None
    if not table.has("rpm"):
        robot = load_quadrotor(_robot_file(args.robot))
        rpm_range = (robot.rpm_min, robot.rpm_max)
    result, data = identify_thrust(table, args.pwm_max, rpm_range, args.voltage_ref)
    return _finish(args, result, lambda: thrust_figures(result, data))


@_guard
def _motor(args: argparse.Namespace) -> int:
    from robot_ac.calibration.logs import read_log
    from robot_ac.calibration.motor import identify_motor, motor_figures

    result, fits = identify_motor(read_log(args.log), args.pwm_max)
    return _finish(args, result, lambda: motor_figures(result, fits))


@_guard
def _hover(args: argparse.Namespace) -> int:
    from robot_ac.calibration.hover import hover_figures, identify_hover
    from robot_ac.calibration.logs import read_log
    from robot_ac.calibration.results import ResultError
    from robot_ac.sim.quadrotor.params import load_quadrotor

    thrust = _load(args.thrust, "thrust")
    tmap = thrust.details.get("thrust_map")
    if not isinstance(tmap, dict) or "b0_b1_kf" not in tmap or "covariance" not in tmap:
        raise ResultError(args.thrust, "details.thrust_map", "missing (re-run 'robot-ac calibrate thrust')")
    if args.motor:
        motor = _load(args.motor, "motor")
        tau, delay = motor.estimates["motor_time_constant"].value, motor.estimates["motor_delay"].value
    else:
        tau, delay = load_quadrotor(_robot_file(args.robot)).motor_time_constant, 0.0
    bias = (0.0, 0.0)
    if args.imu:
        e = _load(args.imu, "imu").estimates["accel_bias_z"]
        bias = (e.value, e.half_width / 1.96)
    if args.mass is not None and args.mass <= 0:
        raise ResultError("--mass", "", f"must be > 0, got {args.mass}")
    table = read_log(args.log)
    result, data = identify_hover(table, tmap["b0_b1_kf"], tmap["covariance"], tau, delay, args.mass, bias,
                                  args.pwm_max)
    return _finish(args, result, lambda: hover_figures(result, data))


@_guard
def _imu(args: argparse.Namespace) -> int:
    from robot_ac.calibration.imu import identify_imu, imu_figures
    from robot_ac.calibration.logs import read_log

    result, allan = identify_imu(read_log(args.log), args.gravity, with_allan=True)
    return _finish(args, result, lambda: imu_figures(result, allan))


@_guard
def _latency(args: argparse.Namespace) -> int:
    from robot_ac.calibration.latency import identify_latency, latency_figures
    from robot_ac.calibration.logs import read_log

    result, fit = identify_latency(read_log(args.log), args.command, args.response, args.control_rate)
    return _finish(args, result, lambda: latency_figures(result, fit))


@_guard
def _apply(args: argparse.Namespace) -> int:
    from robot_ac.calibration.apply import apply_results
    from robot_ac.calibration.results import load_result
    from robot_ac.paths import robot_file

    base = _robot_file(args.robot)
    name = args.name or f"{base.stem}_calibrated"
    if args.out:
        out = Path(args.out)
    elif args.robots_dir:
        out = Path(args.robots_dir) / f"{name}.yaml"
    else:
        out = robot_file(name)
    results = [(Path(p), load_result(p)) for p in args.results]
    changes, notes = apply_results(results, base, out, args.floor, args.ci_scale, args.control_rate)
    rows = [("key", "old", "new", "change")] + [c.row() for c in changes]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {out}")
    return 0


@_guard
def _synth(args: argparse.Namespace) -> int:
    from robot_ac.calibration.synth_files import write_synthetic_set

    written = write_synthetic_set(Path(args.out_dir), _robot_file(args.robot), args.off_nominal, args.seed,
                                  imu_seconds=args.imu_seconds)
    for path in written:
        print(f"wrote {path}")
    return 0
