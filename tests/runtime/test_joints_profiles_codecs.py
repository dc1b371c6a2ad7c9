"""Joint robots (wrong-sized JointState), profiles vs bundle contracts, and message frame conversions."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import yaml

from robot_ac.cli import main as cli_main
from robot_ac.runtime import ros2_types as rt
from robot_ac.runtime.codecs import odometry_to_state, px4_odometry_to_state, state_to_odometry
from robot_ac.runtime.controller import ControllerConfig, Mode, PolicyController
from robot_ac.runtime.node_core import NodeCore
from robot_ac.runtime.profiles import PROFILE_DIR, ProfileError, load_profile
from robot_ac.runtime.state import JointState

JOINTS = [f"joint{i}" for i in range(1, 8)]
HOME = [0.0, 0.1, 0.2, -1.0, 0.3, 1.0, 0.4, 0.0]  # inside the Panda limits of launch/arm.yaml


def _joint_msg(n: int = 7, names: list[str] | None = None) -> rt.JointStateMsg:
    names = JOINTS[:n] if names is None else names
    msg = rt.JointStateMsg(name=names, position=HOME[:n], velocity=[0.0] * n)
    return rt.JointStateMsg.deserialize(msg.serialize())


@pytest.mark.parametrize("bad", ["short", "long", "mismatched_arrays", "unknown_names"])
def test_wrong_sized_joint_state_holds_last_commanded_position(arm_bundle, bad, caplog):
    profile = load_profile("arm")
    c = PolicyController(arm_bundle, profile.controller_config())
    core = NodeCore(c, profile, auto_arm=True)
    core.on_state(_joint_msg(), 0.0)
    cmd, values, _ = core.tick(0.0)
    assert cmd.mode is Mode.RUNNING
    held = list(values)
    msg = {"short": _joint_msg(6), "long": rt.JointStateMsg(name=JOINTS, position=HOME, velocity=[0.0] * 7),
           "mismatched_arrays": rt.JointStateMsg(name=JOINTS, position=[0.0] * 6, velocity=[0.0] * 7),
           "unknown_names": _joint_msg(7, [f"j{i}" for i in range(7)])}[bad]
    with caplog.at_level(logging.ERROR, logger="robot_ac.runtime"):
        core.on_state(msg, 0.01)
        cmd, values, mode_text = core.tick(0.01)
    assert cmd.mode is Mode.SAFE and "bad sensor_msgs/msg/JointState message" in mode_text
    assert values == held  # arm safe mode: hold the last commanded position
    assert np.isfinite(values).all() and "mode running -> safe: bad sensor_msgs/msg/JointState" in caplog.text
    assert core.rejected == 1


def test_joint_state_is_reordered_by_name(arm_bundle):
    profile = load_profile("arm")
    core = NodeCore(PolicyController(arm_bundle, profile.controller_config()), profile)
    msg = rt.JointStateMsg(name=list(reversed(JOINTS)), position=list(reversed(HOME[:7])), velocity=[0.0] * 7)
    core.on_state(msg, 0.0)
    np.testing.assert_allclose(core.latest.position, HOME[:7])


def test_humanoid_safe_mode_is_damping_towards_measured_positions(arm_bundle):
    c = PolicyController(arm_bundle, ControllerConfig(kind="humanoid", attitude_limit_deg=None))
    s = JointState(np.linspace(-0.5, 0.5, 7), np.zeros(7), 0.0)
    c.step(s, 0.0)
    c.arm(0.0)
    c.start(0.0)
    c.step(s, 0.01)
    moved = JointState(np.linspace(-1.0, 1.0, 7), np.zeros(7), 0.02)
    c.step(moved, 0.02)
    cmd = c.step(None, 0.5)  # stale: damping mode
    assert cmd.mode is Mode.SAFE
    np.testing.assert_allclose(cmd.physical, moved.position, atol=1e-9)


def test_profiles_load_and_accept_their_bundles(quad_bundle, arm_bundle):
    from robot_ac.policy import load_bundle

    for name in ("quadrotor", "quadrotor_px4"):
        load_profile(name).check_contract(load_bundle(quad_bundle).contract, quad_bundle)
    load_profile("arm").check_contract(load_bundle(arm_bundle).contract, arm_bundle)
    assert load_profile("humanoid").imu_type == "sensor_msgs/msg/Imu"


def test_bundle_contract_vs_profile_mismatch(quad_bundle, arm_bundle):
    from robot_ac.policy import load_bundle

    quad = load_bundle(quad_bundle).contract
    with pytest.raises(ProfileError, match=r"quad.onnx vs profile .*arm.yaml: bundle has 4 actions, profile 'arm'"):
        load_profile("arm").check_contract(quad, quad_bundle)
    with pytest.raises(ProfileError, match=r"observation fields \['joint_position', 'joint_velocity'\] cannot be"):
        load_profile("quadrotor").check_contract(load_bundle(arm_bundle).contract | {"action": quad["action"]},
                                                 arm_bundle)


def test_cli_run_refuses_a_mismatched_bundle_with_one_line(quad_bundle, capsys):
    code = cli_main(["run", "--bundle", quad_bundle, "--profile", "arm", "--no-log", "--duration", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("robot-ac run: error: bundle ") and "bundle has 4 actions, profile 'arm' drives 7" in err


@pytest.mark.parametrize("argv, message", [
    (["--profile", "nope"], "no such profile (known profiles: arm, humanoid, quadrotor, quadrotor_px4)"),
    (["--bundle", "missing.onnx"], "missing.onnx: no such policy bundle"),
])
def test_cli_run_bad_inputs(quad_bundle, capsys, argv, message):
    args = ["run", "--bundle", quad_bundle, "--no-log", *argv]
    assert cli_main(args) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("edit, message", [
    (lambda p: p.pop("robot_kind"), "robot_kind missing"),
    (lambda p: p.update(robot_kind="boat"), "robot_kind 'boat' unknown"),
    (lambda p: p["safety"].update(max_speed=1.0), "safety keys ['max_speed'] unknown"),
    (lambda p: p.update(state_type="sensor_msgs/msg/LaserScan"), "state_type 'sensor_msgs/msg/LaserScan'"),
    (lambda p: p["topics"].update(state="odom"), "topics.state must be an absolute topic name"),
])
def test_bad_profile_files(tmp_path, edit, message):
    data = yaml.safe_load((PROFILE_DIR / "quadrotor.yaml").read_text())
    edit(data["policy_node"]["ros__parameters"])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match=str(path).replace(".", r"\.")) as info:
        load_profile(path)
    assert message in str(info.value)


def test_odometry_twist_is_body_frame_and_round_trips():
    yaw = math.radians(90)
    q = [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]
    msg = rt.Odometry()
    state_to_odometry(msg, [1.0, 2.0, 3.0], q, [1.0, 0.0, 0.0], [0.1, 0.2, 0.3])
    assert msg.twist.twist.linear.y == pytest.approx(-1.0)  # world +x is body -y when yawed +90 deg
    s = odometry_to_state(rt.Odometry.deserialize(msg.serialize()), 5.0)
    np.testing.assert_allclose(s.linear_velocity, [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(s.position, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(s.angular_velocity, [0.1, 0.2, 0.3])
    assert s.stamp == 5.0


def test_px4_ned_frd_is_converted_to_enu_flu():
    # Level, nose east: in NED that is yaw +90 deg about down; in ENU/FLU the body axes equal the world axes.
    half = math.radians(90) / 2
    msg = rt.VehicleOdometry(position=[1.0, 2.0, -3.0], q=[math.cos(half), 0.0, 0.0, math.sin(half)],
                             velocity=[0.0, 1.0, -0.5], angular_velocity=[0.1, 0.2, 0.3])
    s = px4_odometry_to_state(rt.VehicleOdometry.deserialize(msg.serialize()), 0.0)
    np.testing.assert_allclose(s.position, [2.0, 1.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(s.linear_velocity, [1.0, 0.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(s.rotation, np.eye(3), atol=1e-6)
    np.testing.assert_allclose(s.angular_velocity, [0.1, -0.2, -0.3], atol=1e-6)


def test_ros2_wire_names():
    assert rt.dds_topic("/odom") == "rt/odom"
    assert rt.Odometry.__idl_typename__ == "nav_msgs::msg::dds_::Odometry_"
    assert rt.DiagnosticArray.__idl_typename__ == "diagnostic_msgs::msg::dds_::DiagnosticArray_"
    assert rt.JointStateMsg.__idl_typename__ == "sensor_msgs::msg::dds_::JointState_"
    # std_msgs/Float32MultiArray with no dims and data [1, 2]: empty dim sequence, data_offset, 2 floats (XCDR1)
    assert rt.Float32MultiArray(data=[1.0, 2.0]).serialize()[4:] == bytes.fromhex("00000000 00000000 02000000"
                                                                                  "0000803f 00000040")
