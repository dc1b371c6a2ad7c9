"""Each unmodelled effect does what it says, in the direction physics says, and only when switched on."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from robot_ac.cli import main
from robot_ac.sim.task_config import load_task
from robot_ac.sim2sim.backend import BackendOptions, create_backend
from robot_ac.sim2sim.effects import EffectError, EffectSettings, parse_effects
from robot_ac.sim2sim.state import QuadrotorState

HOVER = 0.334053  # normalized hover command of the nominal Crazyflie


def backend(**effects):
    settings = replace(EffectSettings(), **effects)
    return create_backend("pybullet", BackendOptions("crazyflie", load_task("quadrotor-hover"), settings))


def level_state(position=(0.0, 0.0, 0.0), velocity=(0.0, 0.0, 0.0)) -> QuadrotorState:
    hover_rpm = 14476.3
    return QuadrotorState(np.array(position, float), np.array([1.0, 0, 0, 0]), np.array(velocity, float),
                          np.zeros(3), np.full(4, hover_rpm))


def fly(b, start: QuadrotorState, steps: int) -> QuadrotorState:
    b.reset(start)
    for _ in range(steps):
        b.step(np.full(4, HOVER))
    state = b.true_state()
    b.close()
    return state


def test_parse_effects() -> None:
    assert parse_effects("drag, latency").active == ("drag", "latency")
    assert parse_effects("none").active == () and parse_effects("").active == ()
    with pytest.raises(EffectError, match="'wind'"):
        parse_effects("wind")


def test_no_effect_hover_holds_still() -> None:
    state = fly(backend(), level_state(), 50)
    assert np.linalg.norm(state.position) < 2e-3 and np.linalg.norm(state.linear_velocity) < 5e-3


def test_drag_slows_a_sideways_glide() -> None:
    start = level_state(velocity=(1.0, 0.0, 0.0))
    free, dragged = fly(backend(), start, 50), fly(backend(drag=True), start, 50)
    assert free.linear_velocity[0] == pytest.approx(1.0, abs=0.01)
    # 0.5 s at ~5.6 mN per m/s (9.18e-7 kg/rad x 6063 rad/s summed rotor speed) on 27 g: roughly 10% slower
    assert 0.85 < dragged.linear_velocity[0] < 0.95


def test_ground_effect_pushes_up_near_the_floor_only() -> None:
    near, far = level_state(position=(0, 0, -0.25)), level_state(position=(0, 0, 0.2))
    assert fly(backend(ground=True), near, 20).linear_velocity[2] > 0.05  # 5 cm over the floor: ~10% more lift
    assert abs(fly(backend(ground=True), far, 20).linear_velocity[2]) < 0.01


def test_ground_contact_ends_the_episode() -> None:
    b = backend(ground=True)
    b.reset(level_state(position=(0, 0, -0.2)))
    for _ in range(60):
        b.step(np.full(4, -1.0))  # motors off: it drops onto the floor 0.3 m below the target
        if b.fault():
            break
    assert b.fault() == "ground contact"
    b.close()


def test_latency_delays_what_the_controller_sees() -> None:
    b = backend(latency=True)
    b.reset(level_state(velocity=(0.5, 0.0, 0.0)))
    for _ in range(5):
        b.step(np.full(4, HOVER))
    seen, now = b.observed_state(), b.true_state()
    assert now.stamp - seen.stamp == pytest.approx(0.015, abs=1e-9)
    assert now.position[0] - seen.position[0] == pytest.approx(0.5 * 0.015, rel=0.05)
    b.close()


def test_jitter_varies_the_control_period_within_its_bound() -> None:
    b = backend(jitter=True)
    b.reset(level_state())
    periods = np.array([b.step(np.full(4, HOVER)) for _ in range(200)])
    b.close()
    assert periods.min() >= 0.008 - 1e-9 and periods.max() <= 0.012 + 1e-9
    assert len(np.unique(np.round(periods, 6))) >= 3 and abs(periods.mean() - 0.01) < 5e-4


def test_effect_magnitudes_on_the_command_line_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sim2sim", "missing.onnx", "--latency-ms", "-5", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "--latency-ms must be zero or more" in err
