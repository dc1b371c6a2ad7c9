"""Hardware-in-the-loop against the reference firmware, built with a real exported bundle, on real ptys and QEMU.

Episodes are short (1 s at 100 Hz) to keep the suite fast; the success criterion itself needs 5 s episodes and
the trained hover policy, which has its own test below.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from robot_ac.algos.networks import DeterministicActor
from robot_ac.cli import main
from robot_ac.hardware.emulate import EmulatedDevice, build_firmware
from robot_ac.hardware.hil import HilConfig, run_hil
from robot_ac.hardware.hil_log import open_flight_log
from robot_ac.hardware.serial_link import SerialLink
from robot_ac.policy import export_bundle, load_bundle
from robot_ac.sim.quadrotor.env import QuadrotorEnv

REPO = Path(__file__).resolve().parents[2]
TRAINED = REPO / "policies" / "crazyflie_hover" / "policy.onnx"
# Device watchdog for these tests: 5 s instead of 200 ms, because on this shared machine (tests at nice 19 beside
# the lead's training) the emulating process can stall for 200 ms+. The 200 ms watchdog itself is tested in
# test_hil_faults.py. Exact-match checks run in lockstep; real-time pacing has its own test.
RELAXED_MS = 5000


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained actor (outputs about hover) exported as a real bundle."""
    torch.manual_seed(0)
    env = QuadrotorEnv(num_envs=1)
    actor = DeterministicActor(
        env.observation_size("policy"), 4, [64, 64], "tanh", action_offset=env.hover_action)
    return export_bundle(actor, env.contract.to_dict(), tmp_path_factory.mktemp("hil") / "p.onnx")


@pytest.fixture(scope="module")
def host_binary(bundle_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("cc") is None or shutil.which("make") is None:
        pytest.skip("cannot build the host firmware: cc or make not installed")
    return build_firmware(bundle_path, "host", tmp_path_factory.mktemp("fw"), watchdog_ms=RELAXED_MS)


def assert_counters_consistent(report) -> None:
    """Every decoded frame is accounted for once, and every cycle was answered or missed."""
    assert report.link["frames_ok"] == sum(report.received.values())
    assert report.link["crc_errors"] == report.link["framing_errors"] == report.link["seq_gaps"] == 0
    assert report.received.get("ACTION", 0) == report.answered + report.late_replies
    assert report.cycles == report.answered + report.missed_cycles - report.host_overruns
    assert len(report.latencies_s) == len(report.compute_us) == report.answered


def run_with_retries(bundle, binary: Path | None, target: str, config: HilConfig, attempts: int = 3,
                     callbacks_for=lambda: [], watchdog_ms: int | None = None):
    """Run on a fresh device; retry only runs stopped by timing (watchdog, silence) on this overloaded machine.

    The lead's training holds both cores and tests run at nice 19, so a host or QEMU stall of 200 ms+ is a
    fact of this machine, not a bug; anything else (a mismatch, a wrong count) fails at once.
    """
    bundle_obj = load_bundle(bundle)
    for attempt in range(1, attempts + 1):
        with EmulatedDevice(bundle if binary is None else None, target, binary=binary,
                            watchdog_ms=watchdog_ms) as device, \
                SerialLink(device.port, reconnect_timeout_s=0.2) as link:
            config.handshake_timeout_s = device.handshake_timeout_s
            report = run_hil(bundle_obj, link, config, callbacks=callbacks_for())
        print(f"\nattempt {attempt}:\n{report.table()}")
        timing = report.status == "device_timeout" or report.device_faults.get("WATCHDOG_TIMEOUT")
        if report.status == "completed" or not timing:
            return report
    return report


def test_hil_host_closed_loop_matches_onnxruntime(bundle_path: Path, host_binary: Path, tmp_path: Path) -> None:
    config = HilConfig(episodes=2, episode_s=1.0, target="host", realtime=False, reply_timeout_s=2.0,
                       link_timeout_s=3.0)
    logs = []

    def log_callback():
        path = tmp_path / f"hil{len(logs)}.mcap"
        ctx = open_flight_log(path, load_bundle(bundle_path).contract)
        logs.append((path, ctx))
        return [ctx.__enter__()]

    try:
        report = run_with_retries(bundle_path, host_binary, "host", config, callbacks_for=log_callback)
    finally:
        for _, ctx in logs:
            ctx.__exit__(None, None, None)
    assert report.status == "completed", report.reason
    assert len(report.episodes) == 2
    assert report.answered == report.cycles  # lockstep: every STATE answered
    assert report.action_max_abs_diff is not None and report.action_max_abs_diff <= 1e-5
    assert report.actions_compared == report.answered  # every answered STATE was checked
    assert report.actions_match
    lat = report.latency_ms()
    assert 0 < lat["p50"] <= lat["p99"] < 1000
    assert_counters_consistent(report)
    assert report.received["HEARTBEAT"] >= 5  # handshake, then disarm + arm per episode
    assert not report.device_faults

    from robot_ac.runtime.flight_log import read_flight_log

    logged = read_flight_log(logs[-1][0])
    assert logged["/action"]["values"].shape == (report.answered, 4)
    assert logged["/observation"]["values"].shape[1] == 53
    assert logged["/hil/timing"]["labels"][3] == "latency_ms"


def test_hil_host_real_time_at_100hz_measures_latency(bundle_path: Path, host_binary: Path) -> None:
    config = HilConfig(episodes=1, episode_s=1.0, target="host", link_timeout_s=3.0)
    report = run_with_retries(bundle_path, host_binary, "host", config)
    assert report.status == "completed", report.reason
    assert report.mode == "realtime" and report.rate_hz == 100.0
    assert report.answered > 0
    lat = report.latency_ms()
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"]
    assert len(report.send_lag_s) == report.cycles
    assert_counters_consistent(report)
    assert report.actions_match


def test_hil_cli_emulate_host_prints_table_and_writes_json(bundle_path: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "report.json"
    code = main(["hil", "--bundle", str(bundle_path), "--emulate", "host", "--episodes", "1", "--episode-s", "0.5",
                 "--lockstep", "--json", str(out)])
    printed = capsys.readouterr()
    assert "round trip p50 / p99" in printed.out and "link counters" in printed.out
    data = json.loads(out.read_text())
    assert data["mode"] == "lockstep" and data["latency_ms"]["p50"] > 0
    if data["status"] != "completed":  # the 200 ms device watchdog can fire when this shared machine stalls
        assert code == 3 and "run stopped" in printed.err
        return
    assert data["actions_match"] is True
    # An untrained policy is scored, not excused: 1 = ran but the closed-loop criterion failed.
    assert code == (0 if data["succeeded"] else 1)


def test_hil_cli_user_errors_are_one_line(bundle_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["hil", "--bundle", str(tmp_path / "missing.onnx"), "--emulate", "host"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robot-ac hil: error:") and "missing.onnx" in err and "\n" not in err
    assert main(["hil", "--bundle", str(bundle_path), "--port", "/dev/ttyNOPE9"]) == 2
    err = capsys.readouterr().err.strip()
    assert "/dev/ttyNOPE9" in err and "does not exist" in err and "\n" not in err
    assert main(["hil", "--bundle", str(bundle_path), "--emulate", "host", "--episodes", "0"]) == 2
    assert "--episodes" in capsys.readouterr().err


def test_hil_qemu_closed_loop_matches_onnxruntime(bundle_path: Path) -> None:
    for tool in ("qemu-system-arm", "arm-none-eabi-gcc"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (Debian: qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi)")
    # QEMU's CMSDK UART holds one byte and its pty backend hands over one byte per main-loop turn, so a ~223-byte
    # STATE takes tens of ms (hundreds on this loaded machine): lockstep, generous timeouts.
    config = HilConfig(episodes=1, episode_s=0.1, realtime=False, reply_timeout_s=3.0, link_timeout_s=6.0,
                       target="qemu")
    report = run_with_retries(bundle_path, None, "qemu", config, watchdog_ms=10_000)
    assert report.status == "completed", report.reason
    assert report.answered == report.cycles
    assert report.actions_match and report.action_max_abs_diff <= 1e-5
    assert max(report.compute_us) > 0  # the Cortex-M4 really ran the policy (QEMU's timer counts it)
    assert report.link["crc_errors"] == report.link["framing_errors"] == 0
    assert report.link["frames_ok"] == sum(report.received.values())


def simulated_episodes(bundle, config: HilConfig) -> list[tuple[bool, float]]:
    """The same episodes as a HIL run (same env, seed and call sequence), with onnxruntime as the controller."""
    from robot_ac.hardware.hil import make_env

    env, session = make_env(bundle.contract, config), bundle.session()
    steps, window = round(config.episode_s * 100), round(config.settle_window_s * 100)
    obs = env.reset(seed=config.seed)["policy"]
    out = []
    for _ in range(config.episodes):
        err_sum, alive = 0.0, True
        for step in range(steps):
            action = torch.from_numpy(session.run(["action"], {"obs": obs.numpy()})[0]).clamp(-1, 1)
            result = env.step(action)
            if step >= steps - window:
                err_sum += float(result.info["position_error"][0])
            obs = result.observations["policy"]
            if bool(result.terminated[0]):
                alive = False
                break
        settle = err_sum / window if alive else float("inf")
        out.append((alive, settle))
        obs = env.reset()["policy"]
    return out


def test_hil_trained_hover_policy_scores_as_in_simulation(tmp_path: Path) -> None:
    """The shipped hover policy on the device, closed loop, scored by the simulation criterion: the same episodes
    flown in pure simulation with onnxruntime give the same outcome. (Its own evaluation, policies/crazyflie_hover/
    eval.json, is 54% success: below the 95% criterion, so HIL reports FAIL as simulation does.)"""
    if not TRAINED.exists():
        pytest.skip(f"no trained hover policy at {TRAINED.relative_to(REPO)} (written by the training run)")
    binary = build_firmware(TRAINED, "host", tmp_path, watchdog_ms=RELAXED_MS)
    config = HilConfig(episodes=2, episode_s=5.0, target="host", realtime=False, reply_timeout_s=2.0,
                       link_timeout_s=3.0, seed=7)
    report = run_with_retries(TRAINED, binary, "host", config)
    assert report.status == "completed", report.reason
    assert report.answered == report.cycles and report.actions_match
    reference = simulated_episodes(load_bundle(TRAINED), config)
    for hil, (alive, settle) in zip(report.episodes, reference, strict=True):
        assert hil.survived == alive
        if alive:
            assert abs(hil.settle_error_m - settle) < 2e-3, (hil.settle_error_m, settle)
    print(f"HIL episodes {[vars(e) for e in report.episodes]}; simulation {reference}")
