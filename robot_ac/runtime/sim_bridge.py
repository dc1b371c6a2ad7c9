"""The simulator as a DDS peer: publishes nav_msgs/Odometry of one QuadrotorEnv at the control rate, flies the
latest received motor command. The other side of the two-process closed loop (``robot-ac run`` answers).

Why a separate process: the closed-loop test and benchmark must cross a real process boundary and real DDS on
loopback, as the robot would. The drone is held still (as on the ground) until the controller reports
``running`` on its mode topic, then it flies; a termination (out of bounds) ends the flight.

Fault injection for tests: ``--pause-at/--pause-for`` stops publishing (stale stream), ``--nan-at`` sends one
message with NaN position and ``--inf-at`` one with an infinite angular velocity.

``python -m robot_ac.runtime.sim_bridge --duration 5 --summary out.json``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m robot_ac.runtime.sim_bridge", description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="quadrotor")
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--duration", type=float, default=5.0,
                   help="simulated seconds of flight after the controller runs (fault times are simulated too)")
    p.add_argument("--wait", type=float, default=20.0, help="give up if the controller is not running after this")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", action=argparse.BooleanOptionalAction, default=True, help="observation noise")
    p.add_argument("--randomize", action=argparse.BooleanOptionalAction, default=False,
                   help="domain randomization of the simulated robot")
    p.add_argument("--at-rest", action="store_true", help="start at the origin, level and still")
    p.add_argument("--domain-id", type=int, default=0)
    p.add_argument("--pause-at", type=float, default=None)
    p.add_argument("--pause-for", type=float, default=0.0)
    p.add_argument("--nan-at", type=float, default=None, help="NaN position from this flight time on ...")
    p.add_argument("--inf-at", type=float, default=None, help="infinite angular velocity from this time on ...")
    p.add_argument("--fault-for", type=float, default=0.1,
                   help="... for this long (a sensor fault repeats; one lone sample may be superseded by the next "
                        "valid one before the controller reads it, which is harmless)")
    p.add_argument("--lockstep-timeout", type=float, default=0.0,
                   help="if > 0: before each physics step wait up to this long for a command newer than the last "
                        "published state (keeps the plant fair when both processes are starved of CPU; 0: pure "
                        "real time, the world steps with whatever command arrived last)")
    p.add_argument("--summary", default=None, help="write the flight summary JSON here")
    args = p.parse_args(argv)

    import torch
    from cyclonedds.core import Policy, Qos
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic

    from robot_ac.runtime import ros2_types as rt
    from robot_ac.runtime.codecs import state_to_odometry
    from robot_ac.runtime.dds_node import LATCHED_QOS, SENSOR_QOS
    from robot_ac.runtime.profiles import load_profile
    from robot_ac.sim.quadrotor.env import QuadrotorEnv

    torch.set_num_threads(1)
    profile = load_profile(args.profile)
    env = QuadrotorEnv(num_envs=1, seed=args.seed, observation_noise=args.noise,
                       domain_randomization=args.randomize, curriculum=False)
    env.episode_steps = 10**9  # the flight ends by duration or crash, never by the training episode length
    env.reset(seed=args.seed)
    if args.at_rest:
        env.state[0, :13] = torch.tensor([0.0] * 3 + [1.0, 0.0, 0.0, 0.0] + [0.0] * 6)
    stds = {f["name"]: float(f["noise_std"]) for f in env.contract.to_dict()["observation"]["fields"]}
    rng = np.random.default_rng(args.seed)

    dp = DomainParticipant(args.domain_id)
    topics = profile.topics
    writer = DataWriter(dp, Topic(dp, rt.dds_topic(topics["state"]), rt.Odometry), qos=SENSOR_QOS)
    cmd_reader = DataReader(dp, Topic(dp, rt.dds_topic(topics["command"]), rt.Float32MultiArray),
                            qos=Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(1)))
    mode_reader = DataReader(dp, Topic(dp, rt.dds_topic(topics["mode"]), rt.String), qos=LATCHED_QOS)

    period = 1.0 / args.rate
    msg = rt.Odometry(header=rt.Header(frame_id="world"), child_frame_id="base_link")
    action = torch.full((1, 4), float(env.hover_action))
    modes: list[str] = []
    errors, heights, commands, publish_times = [], [], [], []
    nonfinite_commands = out_of_limit = lockstep_timeouts = 0
    flying_since: float | None = None
    crashed = None
    t0 = time.monotonic()
    k = 0
    while True:
        k += 1
        deadline = t0 + k * period
        delay = deadline - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = time.monotonic()
        modes.extend(s.data for s in mode_reader.take(N=16) if isinstance(s, rt.String))
        running = bool(modes) and modes[-1].startswith("running")
        samples = [s for s in cmd_reader.take(N=4) if isinstance(s, rt.Float32MultiArray)]
        if not samples and running and args.lockstep_timeout > 0:
            waited_until = time.monotonic() + args.lockstep_timeout
            while not samples and time.monotonic() < waited_until:
                time.sleep(0.0005)
                samples = [s for s in cmd_reader.take(N=4) if isinstance(s, rt.Float32MultiArray)]
            lockstep_timeouts += not samples
        if samples:
            values = np.asarray(samples[-1].data, dtype=np.float64)
            if not np.isfinite(values).all():
                nonfinite_commands += 1
            elif values.size != 4 or (np.abs(values) > 1.0 + 1e-6).any():
                out_of_limit += 1
            else:
                action = torch.tensor(values, dtype=torch.float32)[None]
            commands.append(values.tolist())
        if flying_since is None and running:
            flying_since = now
        if flying_since is None and now - t0 > args.wait:
            crashed = "controller never reported running"
            break
        flown = len(errors) * period  # simulated flight time: the world's clock, whatever the CPU allows
        if flying_since is not None:
            if flown >= args.duration - 1e-9:
                break
            result = env.step(action)
            if bool(result.terminated[0]):
                crashed = f"terminated after {flown:.2f} s (out of bounds or non-finite)"
                break
            errors.append(float(result.info["position_error"][0]))
        s = env.state[0].double().numpy()
        heights.append(float(s[2]))
        pos, quat, vel, angvel = s[0:3].copy(), s[3:7].copy(), s[7:10].copy(), s[10:13].copy()
        if args.noise:
            pos += rng.normal(0.0, stds.get("position_error", 0.0), 3)
            vel += rng.normal(0.0, stds.get("linear_velocity", 0.0), 3)
            angvel += rng.normal(0.0, stds.get("angular_velocity", 0.0), 3)
            quat[1:] += rng.normal(0.0, stds.get("rotation_matrix", 0.0) / 2.0, 3)
            quat /= np.linalg.norm(quat)
        if args.pause_at is not None and args.pause_at <= flown < args.pause_at + args.pause_for:
            continue  # publisher paused: the controller's state goes stale
        if args.nan_at is not None and args.nan_at <= flown < args.nan_at + args.fault_for:
            pos[:] = float("nan")
        if args.inf_at is not None and args.inf_at <= flown < args.inf_at + args.fault_for:
            angvel[0] = float("inf")
        wall = time.time()
        msg.header.stamp = rt.Time(sec=int(wall), nanosec=int((wall - int(wall)) * 1e9))
        state_to_odometry(msg, pos, quat, vel, angvel)
        writer.write(msg)
        publish_times.append(now)

    time.sleep(0.2)
    modes.extend(s.data for s in mode_reader.take(N=16) if isinstance(s, rt.String))
    last_second = max(1, round(args.rate))
    periods = np.diff(publish_times) if len(publish_times) > 1 else np.zeros(1)
    summary = {
        "flown_s": len(errors) * period,
        "wall_s": (time.monotonic() - flying_since) if flying_since is not None else 0.0,
        "steps": len(errors),
        "crashed": crashed,
        "modes": modes,
        "commands_received": len(commands),
        "lockstep_timeouts": lockstep_timeouts,
        "nonfinite_commands": nonfinite_commands,
        "out_of_limit_commands": out_of_limit,
        "min_height_m": min(heights) if heights else math.nan,
        "final_position_error_m": errors[-1] if errors else math.nan,
        "mean_error_last_second_m": float(np.mean(errors[-last_second:])) if errors else math.nan,
        "max_error_m": max(errors) if errors else math.nan,
        "publish_period_p50_ms": float(np.percentile(periods, 50)) * 1e3,
        "publish_period_p99_ms": float(np.percentile(periods, 99)) * 1e3,
        "rate_hz": args.rate,
    }
    text = json.dumps(summary, indent=2)
    if args.summary:
        Path(args.summary).write_text(text)
    print(text)
    return 0 if crashed is None else 1


if __name__ == "__main__":
    sys.exit(main())
