"""Safety filter (non-finite guard, clipping, rate limit, envelope) and watchdog."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_ac.runtime.safety import SafetyFilter, SafetyLimits, Watchdog
from robot_ac.runtime.state import JointState, QuadrotorState


def _limits(**kw) -> SafetyLimits:
    return SafetyLimits(action_low=-np.ones(4), action_high=np.ones(4), **kw)


def _quad(pos=(0.0, 0.0, 0.0), tilt_deg: float = 0.0, **kw) -> QuadrotorState:
    half = math.radians(tilt_deg) / 2
    q = np.array([math.cos(half), math.sin(half), 0.0, 0.0])
    return QuadrotorState(np.array(pos, dtype=float), np.zeros(3), np.zeros(3), 0.0, quaternion_wxyz=q, **kw)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_policy_output_is_a_fault_and_out_is_untouched(bad):
    f = SafetyFilter(_limits())
    out = np.full(4, 7.0)
    reason = f.filter(np.array([0.1, bad, 0.2, 0.3]), None, out)
    assert reason is not None and "not finite" in reason
    assert (out == 7.0).all()


def test_clip_to_actuator_limits():
    f = SafetyFilter(_limits())
    out = np.empty(4)
    assert f.filter(np.array([1.5, -3.0, 0.2, 1.0]), None, out) is None
    np.testing.assert_array_equal(out, [1.0, -1.0, 0.2, 1.0])
    assert f.clipped == 1


def test_rate_limit_bounds_the_step_and_stays_within_limits():
    f = SafetyFilter(_limits(max_action_rate=0.1))
    out = np.empty(4)
    prev = np.array([0.0, 0.0, 0.95, -0.95])
    assert f.filter(np.array([1.0, -1.0, 1.0, -1.0]), prev, out) is None
    np.testing.assert_allclose(out, [0.1, -0.1, 1.0, -1.0])
    assert f.rate_limited == 1


def test_attitude_limit():
    f = SafetyFilter(_limits(attitude_limit_deg=60.0))
    assert f.check_state(_quad(tilt_deg=59.0)) is None
    reason = f.check_state(_quad(tilt_deg=61.0))
    assert reason is not None and "attitude 61.0 deg" in reason


def test_geofence():
    f = SafetyFilter(_limits(geofence_min=np.array([-1.0, -1.0, 0.0]), geofence_max=np.array([1.0, 1.0, 2.0])))
    assert f.check_state(_quad((0.5, -0.5, 1.0))) is None
    reason = f.check_state(_quad((0.5, -0.5, 2.5)))
    assert reason is not None and "outside geofence" in reason
    assert f.check_state(_quad((-1.2, 0.0, 1.0))) is not None


@pytest.mark.parametrize("field", ["position", "linear_velocity", "angular_velocity"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_state_is_a_fault(field, bad):
    s = _quad()
    getattr(s, field)[1] = bad
    reason = SafetyFilter(_limits()).check_state(s)
    assert reason is not None and field in reason and "not finite" in reason


def test_joint_limits():
    lim = SafetyLimits(action_low=-np.ones(2), action_high=np.ones(2), joint_position_min=np.array([-1.0, -1.0]),
                       joint_position_max=np.array([1.0, 1.0]), joint_velocity_max=np.array([2.0, 2.0]))
    f = SafetyFilter(lim)
    assert f.check_state(JointState(np.array([0.5, -0.5]), np.array([1.0, -1.0]), 0.0)) is None
    assert "above limit" in f.check_state(JointState(np.array([1.5, 0.0]), np.zeros(2), 0.0))
    assert "below limit" in f.check_state(JointState(np.array([0.0, -1.5]), np.zeros(2), 0.0))
    assert "velocity" in f.check_state(JointState(np.zeros(2), np.array([0.0, -2.5]), 0.0))
    assert "not finite" in f.check_state(JointState(np.array([np.nan, 0.0]), np.zeros(2), 0.0))


def test_watchdog():
    w = Watchdog(0.03)
    assert w.check(1.0, 1.02) is None
    assert "stale" in w.check(1.0, 1.031)
    assert w.check(None, 1.0) == "no state received"
    assert "not finite" in w.check(float("nan"), 1.0)
