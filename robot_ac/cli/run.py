"""``robot-ac run --bundle B --profile P --transport dds``: fly a policy bundle over ROS 2-wire DDS, without ROS."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run", help="run a policy bundle in real time (ROS 2 wire format over Cyclone DDS, no ROS needed)",
        description="Loads the bundle, checks its contract against the profile (launch/<profile>.yaml), subscribes "
                    "to the profile's state topic, runs the controller on absolute deadlines and publishes "
                    "commands, the mode (std_msgs/String, latched) and diagnostic_msgs/DiagnosticArray. Arm over "
                    "plain DDS by publishing std_msgs/String 'arm' then 'start' on the control topic "
                    "(/robot_ac/control), or pass --arm. Every run writes a ROS 2 MCAP bag flight log. For ROS 2 "
                    "use `ros2 launch robot_ac_ros quadrotor.launch.py policy:=...` instead.")
    p.add_argument("--bundle", required=True, help="policy bundle (.onnx)")
    p.add_argument("--profile", default="quadrotor",
                   help="profile name in launch/ (quadrotor, quadrotor_px4, arm, humanoid) or a YAML path")
    p.add_argument("--transport", default="dds", choices=["dds"],
                   help="dds: Cyclone DDS with ROS 2 topic/type names (the rclpy node is ros_ws/src/robot_ac_ros)")
    p.add_argument("--domain-id", type=int, default=0, help="DDS domain (ROS_DOMAIN_ID)")
    p.add_argument("--rate", type=float, default=0.0, help="control rate in Hz (default: profile, then bundle)")
    p.add_argument("--arm", action="store_true", help="arm and start as soon as a fresh, valid state arrives")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: until Ctrl-C)")
    p.add_argument("--log", default=None, help="flight log bag directory (default runs/flight_logs/<time>)")
    p.add_argument("--no-log", action="store_true", help="do not write a flight log")
    p.add_argument("--summary-json", default=None, help="write the final timing/safety summary here")
    p.add_argument("--rt-priority", type=int, default=0,
                   help="SCHED_FIFO priority 1-99 for the control loop (on the robot, with permission; 0: normal "
                        "scheduling). Never on a shared development machine: it starves everything else")
    p.add_argument("--quiet", action="store_true", help="warnings and errors only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from robot_ac.policy.bundle import BundleError, load_bundle
    from robot_ac.runtime.flight_log import FlightLog, FlightLogError
    from robot_ac.runtime.observation import ContractError
    from robot_ac.runtime.profiles import ProfileError, load_profile

    def fail(message: str) -> int:
        print(f"robot-ac run: error: {message}", file=sys.stderr)
        return 2

    if args.rate < 0 or args.duration < 0:
        return fail("--rate and --duration must be >= 0")
    if not 0 <= args.rt_priority <= 99:
        return fail(f"--rt-priority must be 0..99, got {args.rt_priority}")
    try:
        profile = load_profile(args.profile)
        bundle = load_bundle(args.bundle)
        profile.check_contract(bundle.contract, args.bundle)
    except (ProfileError, BundleError) as err:
        return fail(str(err))
    if args.rate:
        profile.rate_hz = args.rate
    log_path = None if args.no_log else Path(args.log or f"runs/flight_logs/{time.strftime('%Y%m%d-%H%M%S')}")
    flight_log = None
    try:
        if log_path is not None:
            flight_log = FlightLog(log_path).open()
        from robot_ac.runtime.controller import PolicyController
        from robot_ac.runtime.dds_node import DdsPolicyNode
        from robot_ac.runtime.node_core import NodeCore

        controller = PolicyController(bundle, profile.controller_config(), flight_log=flight_log)
        node = DdsPolicyNode(NodeCore(controller, profile, auto_arm=args.arm), domain_id=args.domain_id)
    except (FlightLogError, ContractError) as err:
        if flight_log is not None:
            flight_log.close()
        return fail(str(err))
    except Exception as err:  # DDS setup errors (bad CYCLONEDDS_URI, no interface)
        if flight_log is not None:
            flight_log.close()
        return fail(f"cannot start DDS ({type(err).__name__}: {err}); check CYCLONEDDS_URI")

    def on_signal(signum, frame) -> None:
        node.stop()

    if args.rt_priority:
        try:  # real-time scheduling: the standard Linux way to bound wake-up jitter of a control loop
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(args.rt_priority))
        except (PermissionError, OSError) as err:
            node.close()
            if flight_log is not None:
                flight_log.close()
            return fail(f"cannot set SCHED_FIFO priority {args.rt_priority} ({err}); run with CAP_SYS_NICE or "
                        "drop --rt-priority")
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    logging.getLogger("robot_ac.runtime").info(
        "running %s with profile %s at %.1f Hz (state %s, command %s)", args.bundle, profile.name,
        controller.rate_hz, profile.topics["state"], profile.topics["command"])
    try:
        summary = node.run(args.duration)
    finally:
        node.close()
        if flight_log is not None:
            flight_log.close()
    summary["flight_log"] = str(log_path) if log_path else None
    summary["transitions"] = [f"{t.source.value} -> {t.target.value}: {t.reason}" for t in controller.transitions]
    print(f"mode {summary['mode']} ({summary['reason']}); steps {summary['steps']}, compute p50/p99 "
          f"{summary['compute_p50_us']:.0f}/{summary['compute_p99_us']:.0f} us, jitter p50/p99 "
          f"{summary['jitter_p50_us']:.0f}/{summary['jitter_p99_us']:.0f} us, deadline misses "
          f"{summary['deadline_misses']}, CPU {summary['cpu_percent']:.1f}%"
          + (f"; flight log {log_path}" if log_path else ""))
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary, indent=2, default=str))
    return 0
