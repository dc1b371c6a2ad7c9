"""Two processes over real Cyclone DDS on loopback: the simulator publishes nav_msgs/Odometry at 100 Hz,
``robot-ac run`` answers with motor commands. Each test uses its own random DDS domain so concurrent runs on
this machine cannot cross-talk; CYCLONEDDS_URI (tests/conftest.py) keeps all traffic on loopback."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from robot_ac.runtime.flight_log import read_flight_log

ROOT = Path(__file__).resolve().parents[2]
HOVER_POLICY = ROOT / "policies" / "crazyflie_hover" / "policy.onnx"


def _profile(tmp_path: Path, max_age_periods: float = 40.0) -> Path:
    """The quadrotor profile with a looser watchdog (400 ms): these tests share 2 cores with training at nice 19,
    where 100 ms scheduling gaps happen; the stale-stream fault below pauses for 1.5 s, far beyond the limit.
    The default 3-period limit itself is tested in test_controller.py."""
    data = yaml.safe_load((ROOT / "launch" / "quadrotor.yaml").read_text())
    data["policy_node"]["ros__parameters"]["safety"]["max_state_age_periods"] = max_age_periods
    path = tmp_path / "quadrotor_test.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _start_run(bundle: str, profile: Path, domain: int, tmp_path: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "robot_ac.cli", "run", "--bundle", bundle, "--profile", str(profile),
           "--domain-id", str(domain), "--log", str(tmp_path / "bag"), "--summary-json", str(tmp_path / "run.json"),
           *extra]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run_sim(profile: Path, domain: int, tmp_path: Path, *extra: str, timeout: float = 120) -> dict:
    cmd = [sys.executable, "-m", "robot_ac.runtime.sim_bridge", "--profile", str(profile), "--domain-id",
           str(domain), "--summary", str(tmp_path / "sim.json"), "--wait", "60", *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert (tmp_path / "sim.json").exists(), proc.stderr[-3000:]
    return json.loads((tmp_path / "sim.json").read_text())


def _stop(proc: subprocess.Popen, tmp_path: Path) -> tuple[dict, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    return json.loads((tmp_path / "run.json").read_text()), err


def _domain() -> int:
    return random.Random(os.getpid() ^ time.monotonic_ns()).randint(1, 200)


def test_closed_loop_arming_over_the_control_topic(hover_bundle, tmp_path):
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.sub import DataReader
    from cyclonedds.topic import Topic

    from robot_ac.runtime import ros2_types as rt
    from robot_ac.runtime.dds_node import LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS

    domain, profile = _domain(), _profile(tmp_path)
    run = _start_run(hover_bundle, profile, domain, tmp_path)
    sim = subprocess.Popen([sys.executable, "-m", "robot_ac.runtime.sim_bridge", "--profile", str(profile),
                            "--domain-id", str(domain), "--summary", str(tmp_path / "sim.json"), "--wait", "60",
                            "--duration", "3", "--at-rest", "--seed", "1"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        dp = DomainParticipant(domain)
        control = DataWriter(dp, Topic(dp, "rt/robot_ac/control", rt.String), qos=RELIABLE_QOS)
        modes_reader = DataReader(dp, Topic(dp, "rt/robot_ac/mode", rt.String), qos=LATCHED_QOS)
        diag_reader = DataReader(dp, Topic(dp, "rt/diagnostics", rt.DiagnosticArray), qos=RELIABLE_QOS)
        modes: list[str] = []

        def wait_mode(prefix: str, timeout: float) -> bool:
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                modes.extend(s.data for s in modes_reader.take(N=16) if isinstance(s, rt.String))
                if modes and modes[-1].startswith(prefix):
                    return True
                time.sleep(0.05)
            return False

        assert wait_mode("inactive", 90), f"robot-ac run never published its mode; stderr: {run.stderr}"
        odom = DataReader(dp, Topic(dp, "rt/odom", rt.Odometry), qos=SENSOR_QOS)
        end = time.monotonic() + 90
        while not [s for s in odom.take(N=4) if isinstance(s, rt.Odometry)] and time.monotonic() < end:
            time.sleep(0.05)  # the simulator process is up and publishing
        control.write(rt.String(data="start"))  # before arming: rejected, mode stays inactive
        assert not wait_mode("running", 1.0)
        for _ in range(20):  # arming needs a fresh state at the controller; retry while the stream settles
            control.write(rt.String(data="arm"))
            if wait_mode("armed", 0.5):
                break
        control.write(rt.String(data="start"))
        assert wait_mode("running", 10), modes
        sim.communicate(timeout=120)
        diagnostics = [d for d in diag_reader.take(N=64) if isinstance(d, rt.DiagnosticArray)]
        summary = json.loads((tmp_path / "sim.json").read_text())
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.communicate()
        run_summary, err = _stop(run, tmp_path)
    assert "start rejected: not armed (mode is inactive)" in err
    running = [d.status[0] for d in diagnostics if d.status[0].message.startswith("running")]
    assert running and running[-1].level == 0 and running[-1].name == "robot_ac/policy_controller"
    values = {kv.key: kv.value for kv in running[-1].values}
    assert {"compute_p50_us", "compute_p99_us", "jitter_p99_us", "deadline_misses", "faults"} <= set(values)
    assert float(values["compute_p50_us"]) > 0
    assert summary["nonfinite_commands"] == 0 and summary["out_of_limit_commands"] == 0
    assert summary["crashed"] is None, summary
    # The simulator is the world: one 10 ms physics step per tick; starved of CPU it falls behind wall time,
    # so only the controller's own period is held to the rate below.
    assert summary["steps"] == 300 and summary["min_height_m"] > -0.6
    assert 9.0 < summary["publish_period_p50_ms"] < 11.0
    transitions = run_summary["transitions"]
    assert transitions[:2] == ["inactive -> armed: armed by operator", "armed -> running: started by operator"]
    # after the flight the simulator stops publishing; the only later transition allowed is the watchdog's
    assert all(t.startswith("running -> safe: state stale") for t in transitions[2:]), transitions
    assert run_summary["steps"] > 300
    # At rate: the median period is 10 ms (jitter p50 small); the mean also counts the ticks skipped when the
    # process got no CPU at nice 19 next to training, so it only has to stay within 30%.
    assert run_summary["jitter_p50_us"] < 2000 and 9.0 < run_summary["period_mean_ms"] < 13.0
    assert run_summary["state_rejected"] == 0
    bag = read_flight_log(tmp_path / "bag")
    assert any(t.startswith("armed -> running") for t in bag["/safety_state"]["values"])
    actions = bag["/action"]["values"]
    assert np.isfinite(actions).all() and (np.abs(actions) <= 1.0).all()


@pytest.mark.parametrize("fault, args, reason", [
    ("stale", ["--pause-at", "0.5", "--pause-for", "1.0"], "state stale"),
    ("nan", ["--nan-at", "0.5"], "not finite"),  # inf in every field: test_controller.py, real IDL messages
])
def test_fault_over_dds_goes_safe(hover_bundle, tmp_path, fault, args, reason):
    domain, profile = _domain(), _profile(tmp_path)
    run = _start_run(hover_bundle, profile, domain, tmp_path, "--arm")
    try:
        summary = _run_sim(profile, domain, tmp_path, "--duration", "2", "--at-rest", *args)
    finally:
        run_summary, err = _stop(run, tmp_path)
    assert summary["nonfinite_commands"] == 0 and summary["out_of_limit_commands"] == 0
    assert summary["modes"][-1].startswith("safe: ") and reason in summary["modes"][-1], summary["modes"]
    assert run_summary["mode"] == "safe" and reason in run_summary["reason"]
    assert "mode running -> safe: " in err and reason in err
    bag = read_flight_log(tmp_path / "bag")
    actions = bag["/action"]["values"]
    assert np.isfinite(actions).all()
    safe_at = [t for t in bag["/safety_state"]["values"] if t.startswith("running -> safe")]
    assert len(safe_at) == 1
    assert (actions[-10:] == -1.0).all()  # motors off after the fault


def test_hover_policy_holds_for_10_s_over_dds(tmp_path):
    if not HOVER_POLICY.exists():
        pytest.skip(f"no trained hover policy at {HOVER_POLICY} (produced by the training issue)")
    domain, profile = _domain(), _profile(tmp_path)
    run = _start_run(str(HOVER_POLICY), profile, domain, tmp_path, "--arm")
    try:
        # Start level and still, as a real take-off hand-over; noise on, as the robot's estimator would be.
        # Lockstep (wait up to 50 ms for the answer before each physics step): on this CPU-starved machine the
        # two processes otherwise drift out of phase and the plant sees multi-step command delays the policy was
        # not trained for; the state stream is still published at the control rate when the CPU allows.
        summary = _run_sim(profile, domain, tmp_path, "--duration", "10", "--seed", "2", "--at-rest",
                           "--lockstep-timeout", "0.05", timeout=240)
    finally:
        _stop(run, tmp_path)
    print(json.dumps(summary))
    assert summary["crashed"] is None, (summary["crashed"], summary["modes"], summary)
    assert summary["flown_s"] >= 10.0 and summary["steps"] == 1000
    assert summary["mean_error_last_second_m"] < 0.05, summary
    assert summary["nonfinite_commands"] == 0 and summary["out_of_limit_commands"] == 0
    assert "running: started by operator" in summary["modes"]
    assert not any(m.startswith("safe") for m in summary["modes"]), summary["modes"]
