"""``robot-ac hil``: fly a policy bundle in the simulator with the policy running on a device over a serial link.

Exit codes: 0 = every episode ran, closed-loop success >= 95% and the device matched onnxruntime; 1 = the run
completed but one of those failed; 3 = the run was stopped by a device or link fault (the report says which);
2 = user error (bad bundle, port absent or busy, firmware that does not build or answer).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_CRITERION = 1
EXIT_USER_ERROR = 2
EXIT_FAULT = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "hil", help="hardware-in-the-loop: simulator on the host, policy on a device (real or emulated)",
        description="Runs the simulator in real time at the policy's control rate, sends each observation as a "
                    "STATE frame, steps the simulator with the device's ACTION, and reports closed-loop success "
                    "(survived 5 s, mean position error over the last second < 5 cm, >= 95%% of episodes), "
                    "round-trip latency, missed cycles, link counters and the largest difference between the "
                    "device's actions and onnxruntime's. Prints a table and writes JSON.")
    p.add_argument("--bundle", required=True, help="policy bundle (.onnx) the device runs")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial port of a device already flashed with this bundle (e.g. /dev/ttyACM0)")
    where.add_argument("--emulate", choices=("host", "qemu"),
                       help="build the reference firmware with the bundle and run it on a pty (host) or in QEMU "
                            "mps2-an386 (Cortex-M4)")
    p.add_argument("--baud", type=int, default=115200, help="baud rate for --port (default 115200)")
    p.add_argument("--episodes", type=int, default=10, help="episodes (default 10)")
    p.add_argument("--episode-s", type=float, default=5.0, help="episode length in seconds (default 5)")
    p.add_argument("--rate", type=float, default=None,
                   help="STATE frames per second (default: the policy's control rate, i.e. real time)")
    p.add_argument("--lockstep", action="store_true",
                   help="no wall-clock pacing: each STATE waits for its ACTION (functional check, not timing)")
    p.add_argument("--link-timeout-ms", type=float, default=200.0,
                   help="stop when no ACTION arrives for this long (default 200, the device watchdog)")
    p.add_argument("--watchdog-ms", type=int, default=None,
                   help="--emulate only: build the firmware with this STATE watchdog instead of 200 ms (QEMU on a "
                        "busy host passes a 597-byte STATE in tens of ms; a lockstep run can exceed 200 ms)")
    p.add_argument("--seed", type=int, default=0, help="seed of the start states and randomization")
    p.add_argument("--no-compare", action="store_true", help="skip the per-step onnxruntime comparison")
    p.add_argument("--compile", action="store_true", help="torch.compile the simulator step (for rates > 200 Hz)")
    p.add_argument("--json", default=None, help="report JSON (default <bundle>.hil.json)")
    p.add_argument("--log", default=None, metavar="FILE.mcap", help="record every cycle into an MCAP flight log")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robot_ac.hardware.emulate import EmulatedDevice, EmulationError
    from robot_ac.hardware.hil import HilConfig, HilError
    from robot_ac.hardware.serial_link import LinkError
    from robot_ac.policy.bundle import BundleError, load_bundle

    try:
        _validate(args)
        bundle = load_bundle(args.bundle)
        config = HilConfig(episodes=args.episodes, episode_s=args.episode_s, rate_hz=args.rate,
                           link_timeout_s=args.link_timeout_ms / 1e3, seed=args.seed,
                           # lockstep: wait for each ACTION up to half the link timeout (two misses in a row stop)
                           reply_timeout_s=max(0.25, args.link_timeout_ms / 2e3),
                           compare_onnx=not args.no_compare, compile_sim=args.compile, realtime=not args.lockstep,
                           target=args.emulate or "device")
        if args.emulate:
            with EmulatedDevice(bundle.path, args.emulate, watchdog_ms=args.watchdog_ms) as device:
                config.handshake_timeout_s = device.handshake_timeout_s
                report = _run_on_port(bundle, device.port, args, config)
        else:
            report = _run_on_port(bundle, args.port, args, config)
    except (BundleError, EmulationError, HilError, LinkError, ValueError, OSError) as err:
        print(f"robot-ac hil: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:  # during the build or start-up; inside the run Ctrl-C ends it with a report
        print("robot-ac hil: interrupted before the run started", file=sys.stderr)
        return 130
    print(report.table())
    out = Path(args.json) if args.json else Path(args.bundle).with_suffix(".hil.json")
    try:
        report.write_json(out, {"bundle": str(args.bundle), "seed": args.seed})
    except OSError as err:
        print(f"robot-ac hil: error: cannot write {out}: {err.strerror or err}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"wrote {out}")
    if report.status != "completed":
        print(f"robot-ac hil: run stopped: {report.reason}", file=sys.stderr)
        return EXIT_FAULT
    return 0 if report.succeeded and report.actions_match is not False else EXIT_CRITERION


def _validate(args: argparse.Namespace) -> None:
    if args.episodes < 1:
        raise ValueError(f"--episodes must be at least 1, got {args.episodes}")
    if not args.episode_s > 0:
        raise ValueError(f"--episode-s must be positive, got {args.episode_s}")
    if args.rate is not None and not 0 < args.rate <= 5000:
        raise ValueError(f"--rate must be in (0, 5000] Hz, got {args.rate}")
    if args.watchdog_ms is not None and not args.emulate:
        raise ValueError("--watchdog-ms changes the emulated firmware build; a real device (--port) keeps its own")
    if args.watchdog_ms is not None and not 1 <= args.watchdog_ms <= 60_000:
        raise ValueError(f"--watchdog-ms must be in [1, 60000], got {args.watchdog_ms}")
    if not args.link_timeout_ms > 0:
        raise ValueError(f"--link-timeout-ms must be positive, got {args.link_timeout_ms}")


def _run_on_port(bundle, port: str, args: argparse.Namespace, config):
    from robot_ac.hardware.hil import run_hil
    from robot_ac.hardware.hil_log import open_flight_log
    from robot_ac.hardware.serial_link import SerialLink

    callbacks = []
    with open_flight_log(args.log, bundle.contract) as log:
        if log is not None:
            callbacks.append(log)
        link = SerialLink(port, args.baud, reconnect_timeout_s=config.link_timeout_s)
        with link:
            return run_hil(bundle, link, config, callbacks=callbacks)
