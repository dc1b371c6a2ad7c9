"""PolicyController state machine and faults: each ends in the documented safe behaviour, a clear log line,
no exception out of ``step`` and never a non-finite or out-of-limit command."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from robot_ac.runtime import ros2_types as rt
from robot_ac.runtime.codecs import state_to_odometry
from robot_ac.runtime.controller import Command, ControllerConfig, Mode, PolicyController
from robot_ac.runtime.flight_log import FlightLog, read_flight_log
from robot_ac.runtime.node_core import NodeCore
from robot_ac.runtime.profiles import load_profile
from robot_ac.runtime.state import QuadrotorState

PERIOD = 0.01


def _state(t: float, pos=(0.0, 0.0, 0.0)) -> QuadrotorState:
    return QuadrotorState(np.array(pos, dtype=float), np.zeros(3), np.zeros(3), t,
                          quaternion_wxyz=np.array([1.0, 0.0, 0.0, 0.0]))


def _ok(cmd: Command, c: PolicyController) -> bool:
    return bool(np.isfinite(cmd.action).all() and np.isfinite(cmd.physical).all()
                and (cmd.action >= c.low).all() and (cmd.action <= c.high).all())


def _running(bundle, **kw) -> PolicyController:
    c = PolicyController(bundle, ControllerConfig(**kw))
    c.step(_state(0.0), 0.0)
    assert c.arm(0.0) == (True, "armed")
    assert c.start(0.0) == (True, "running")
    return c


def test_state_machine_inactive_armed_running_safe_reset(quad_bundle):
    c = PolicyController(quad_bundle)
    assert c.mode is Mode.INACTIVE
    cmd = c.step(_state(0.0), 0.0)
    assert cmd.mode is Mode.INACTIVE and (cmd.action == -1.0).all() and (cmd.physical == 0.0).all()
    assert c.arm(0.0)[0] and c.mode is Mode.ARMED
    assert (c.step(_state(0.01), 0.01).action == -1.0).all()  # armed: motors still off until start
    assert c.start(0.01)[0] and c.mode is Mode.RUNNING
    cmd = c.step(_state(0.02), 0.02)
    assert cmd.mode is Mode.RUNNING and np.allclose(cmd.action, 0.334, atol=0.02) and _ok(cmd, c)
    np.testing.assert_allclose(cmd.physical, (cmd.action + 1) / 2 * 21702.0)
    cmd = c.step(None, 0.2)  # no new state for 180 ms
    assert cmd.mode is Mode.SAFE and (cmd.action == -1.0).all()
    assert c.arm(0.2) == (False, "arm rejected: mode is safe (reset first)")
    assert c.reset(0.3)[0] and c.mode is Mode.INACTIVE
    assert [(t.source.value, t.target.value) for t in c.transitions] == [
        ("inactive", "armed"), ("armed", "running"), ("running", "safe"),
        ("safe", "inactive")]
    assert all(t.reason for t in c.transitions)


def test_start_before_arm_and_arm_without_state_are_rejected(quad_bundle, caplog):
    c = PolicyController(quad_bundle)
    with caplog.at_level(logging.WARNING, logger="robot_ac.runtime"):
        assert c.start(0.0) == (False, "start rejected: not armed (mode is inactive)")
        assert c.arm(0.0) == (False, "arm rejected: no state received")
        c.step(_state(0.0), 0.0)
        assert c.arm(0.5) == (False, "arm rejected: state stale: 500.0 ms old > 30.0 ms")
        assert c.command("launch", 0.5)[0] is False
    assert c.mode is Mode.INACTIVE
    assert "start rejected: not armed (mode is inactive) (mode stays inactive)" in caplog.text
    assert "arm rejected: no state received" in caplog.text
    cmd = c.step(_state(0.6), 0.6)
    assert cmd.mode is Mode.INACTIVE and (cmd.action == -1.0).all()


def test_stale_state_stream_goes_safe_with_motors_off(quad_bundle, caplog):
    c = _running(quad_bundle)
    t = 0.0
    for _ in range(10):
        t += PERIOD
        assert c.step(_state(t), t).mode is Mode.RUNNING
    last = t
    with caplog.at_level(logging.ERROR, logger="robot_ac.runtime"):
        for _ in range(5):  # publisher paused: step with no new state
            t += PERIOD
            cmd = c.step(None, t)
            assert _ok(cmd, c)
    assert c.mode is Mode.SAFE and (cmd.action == -1.0).all()
    assert "mode running -> safe: state stale" in caplog.text
    # fresh state again does not re-arm by itself
    assert c.step(_state(t + PERIOD), t + PERIOD).mode is Mode.SAFE
    assert t - last > 3 * PERIOD


def test_motors_off_after_timeout_holds_hover_first(quad_bundle):
    c = _running(quad_bundle, motors_off_after_s=0.05)
    c.step(_state(0.01), 0.01)
    hold = c.step(None, 0.06)
    assert hold.mode is Mode.SAFE and np.allclose(hold.action, c.builder.initial_action)
    assert (c.step(None, 0.12).action == -1.0).all()


@pytest.mark.parametrize("where", ["position", "orientation", "linear", "angular"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_inf_in_an_odometry_message(quad_bundle, where, bad, caplog):
    profile = load_profile("quadrotor")
    c = PolicyController(quad_bundle, profile.controller_config())
    core = NodeCore(c, profile, auto_arm=True)
    msg = rt.Odometry()
    state_to_odometry(msg, [0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0] * 3, [0.0] * 3)
    core.on_state(rt.Odometry.deserialize(msg.serialize()), 0.0)
    assert core.tick(0.0)[0].mode is Mode.RUNNING
    target = {"position": msg.pose.pose.position, "orientation": msg.pose.pose.orientation,
              "linear": msg.twist.twist.linear, "angular": msg.twist.twist.angular}[where]
    target.y = bad
    with caplog.at_level(logging.ERROR, logger="robot_ac.runtime"):
        core.on_state(rt.Odometry.deserialize(msg.serialize()), 0.01)
        cmd, values, mode_text = core.tick(0.01)
    assert cmd.mode is Mode.SAFE and (cmd.action == -1.0).all() and np.isfinite(values).all()
    assert mode_text.startswith("safe: ") and "not finite" in mode_text
    assert "-> safe" in caplog.text and "not finite" in caplog.text


def test_internal_error_is_a_fault_not_a_crash(quad_bundle, caplog):
    """Fault injection: the inference backend raises (e.g. a corrupted session); step must not raise."""
    c = _running(quad_bundle)

    class Broken:
        def run_with_iobinding(self, io):
            raise RuntimeError("injected onnxruntime failure")

    c.session = Broken()
    with caplog.at_level(logging.ERROR, logger="robot_ac.runtime"):
        cmd = c.step(_state(0.01), 0.01)
    assert cmd.mode is Mode.SAFE and _ok(cmd, c) and (cmd.action == -1.0).all()
    assert "internal error: RuntimeError: injected onnxruntime failure" in caplog.text


def test_envelope_violation_goes_safe(quad_bundle):
    c = _running(quad_bundle, geofence_min=[-1, -1, -1], geofence_max=[1, 1, 1])
    cmd = c.step(_state(0.01, pos=(0.0, 0.0, 1.5)), 0.01)
    assert cmd.mode is Mode.SAFE and "outside geofence" in cmd.reason


def test_timing_stats_always_collected(quad_bundle):
    c = _running(quad_bundle)
    for i in range(1, 50):
        c.step(_state(i * PERIOD), i * PERIOD, scheduled=i * PERIOD)
    d = c.diagnostics()
    assert d["steps"] == 50 and d["compute_p50_us"] > 0 and d["compute_p99_us"] >= d["compute_p50_us"]
    assert d["deadline_misses"] <= 2  # only a scheduler preemption longer than a period could count here
    for i in range(50, 60):  # each step starts 1.5 periods after its scheduled time: all missed
        c.step(_state(i * PERIOD), i * PERIOD, scheduled=(i - 1.5) * PERIOD)
    assert c.diagnostics()["deadline_misses"] - d["deadline_misses"] == 10
    c.timing.record_skipped(40)  # the loop woke 40 ticks late: 100 scheduled ticks in all
    d = c.diagnostics()
    assert d["skipped_ticks"] == 40 and d["deadline_miss_fraction"] == pytest.approx(d["deadline_misses"] / 100)


def test_transitions_and_steps_in_the_flight_log(quad_bundle, tmp_path):
    with FlightLog(tmp_path / "bag") as log:
        c = PolicyController(quad_bundle, flight_log=log, clock=lambda: 0.0)
        c.step(_state(0.0), 0.0)
        c.arm(0.0)
        c.start(0.0)
        for i in range(1, 6):
            c.step(_state(i * PERIOD), i * PERIOD)
        c.step(None, 1.0)
    bag = read_flight_log(tmp_path / "bag")
    text = bag["/safety_state"]["values"]
    assert text[0] == "inactive -> inactive: created" and text[-1].startswith("running -> safe: state stale")
    assert bag["/observation"]["values"].shape == (5, 53)
    assert bag["/action"]["values"].shape == (7, 4) and np.isfinite(bag["/action"]["values"]).all()
    assert bag["/timing"]["labels"] == ["compute_us", "running"]
