"""Fault injection on the HIL link with the real host firmware on a pty: each fault is one test.

Lost and corrupted STATE frames must cost only their own cycles; a host that stops must leave the device in its
safe action within the 200 ms watchdog; a device that stops or whose port vanishes must end the run with a
report, not a traceback.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from robot_ac.algos.networks import DeterministicActor
from robot_ac.hardware.emulate import EmulatedDevice, build_firmware
from robot_ac.hardware.hil import CycleRecord, FaultInjection, HilConfig, run_hil
from robot_ac.hardware.protocol import Action, Fault, FaultCode, State
from robot_ac.hardware.serial_link import SerialLink
from robot_ac.policy import export_bundle, load_bundle
from robot_ac.sim.quadrotor.env import QuadrotorEnv


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    env = QuadrotorEnv(num_envs=1)
    actor = DeterministicActor(
        env.observation_size("policy"), 4, [64, 64], "tanh", action_offset=env.hover_action)
    return export_bundle(actor, env.contract.to_dict(), tmp_path_factory.mktemp("hilf") / "p.onnx")


# The link-fault tests run in lockstep (each STATE waits up to 0.5 s for its ACTION) against a device with a 5 s
# watchdog: on this shared machine (tests at nice 19 beside the lead's training) a scheduler stall of 200 ms+
# happens and must not end a run that tests something else. The watchdog tests use the real 200 ms build;
# real-time pacing is measured in test_hil.py and bench/hil_latency.py.
RELAXED_MS = 5000


def _build(bundle_path: Path, out: Path, watchdog_ms: int | None) -> Path:
    if shutil.which("cc") is None or shutil.which("make") is None:
        pytest.skip("cannot build the host firmware: cc or make not installed")
    return build_firmware(bundle_path, "host", out, watchdog_ms=watchdog_ms)


@pytest.fixture(scope="module")
def binary(bundle_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(bundle_path, tmp_path_factory.mktemp("fwf"), RELAXED_MS)


@pytest.fixture(scope="module")
def strict_binary(bundle_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(bundle_path, tmp_path_factory.mktemp("fws"), None)


def relaxed(link_timeout_s: float = 3.0, **kw) -> HilConfig:
    return HilConfig(target="host", realtime=False, reply_timeout_s=0.5, link_timeout_s=link_timeout_s, **kw)


def _run(bundle_path: Path, binary: Path, config: HilConfig, inject: FaultInjection | None = None,
         trigger=None, attempts: int = 3, keep_open: bool = False):
    """Fresh device per attempt; ``trigger(device, record, fired)`` runs every cycle and appends to ``fired``
    once it has injected its fault. With ``keep_open`` the caller gets the device and link still open.

    Retries only runs that a stall of this overloaded machine (tests run at nice 19 beside the lead's training)
    ended by timing before the fault under test was injected; a wrong count or mismatch fails at once.
    """
    bundle = load_bundle(bundle_path)
    for attempt in range(1, attempts + 1):
        fired: list[float] = []
        device = EmulatedDevice(None, "host", binary=binary).__enter__()
        link = SerialLink(device.port, reconnect_timeout_s=0.2).open()
        try:
            callbacks = [] if trigger is None else [lambda r, d=device, f=fired: trigger(d, r, f)]
            report = run_hil(bundle, link, config, inject=inject, callbacks=callbacks)
            print(f"\nattempt {attempt}:\n{report.table()}")
        except BaseException:
            link.close()
            device.close()
            raise
        timing = report.status == "device_timeout" or bool(report.device_faults.get("WATCHDOG_TIMEOUT"))
        injected = bool(fired) or report.status == "host_stopped"
        if not (timing and not injected) or attempt == attempts:
            if not keep_open:
                link.close()
                device.close()
            return report, fired, link, device
        link.close()
        device.close()
        if inject is not None:
            inject = FaultInjection(inject.drop_rate, inject.corrupt_rate, inject.stop_host_at_cycle, inject.seed + 1)
    raise AssertionError("unreachable")


def _answered_plus_lost(report) -> int:
    return report.answered + report.missed_cycles - report.host_overruns


def test_five_percent_dropped_states_cost_only_their_cycles(bundle_path: Path, binary: Path) -> None:
    inject = FaultInjection(drop_rate=0.05, seed=3)
    report, *_ = _run(bundle_path, binary, relaxed(episodes=2, episode_s=1.0), inject)
    assert report.status == "completed", report.reason
    assert report.injected_drops >= 1
    assert _answered_plus_lost(report) == report.cycles
    # Every dropped STATE is a missed cycle (its ACTION can never come); the rest were answered (the machine's
    # load may add a few late ones).
    assert report.missed_cycles - report.host_overruns >= report.injected_drops
    assert report.answered >= report.cycles - report.injected_drops - max(3, report.cycles // 20)
    assert report.actions_match
    assert report.link["crc_errors"] == report.link["framing_errors"] == 0


def test_corrupted_states_are_rejected_by_the_device_and_the_run_goes_on(bundle_path: Path, binary: Path) -> None:
    inject = FaultInjection(corrupt_rate=0.05, seed=4)
    report, *_ = _run(bundle_path, binary, relaxed(episodes=2, episode_s=1.0), inject)
    assert report.status == "completed", report.reason
    assert report.injected_corruptions >= 1
    # The device answers each damaged frame with FAULT(BAD_FRAME) (a flipped byte that became 0x00 splits the
    # frame in two, hence >=) and never with an ACTION computed from damaged numbers.
    assert report.device_faults.get("BAD_FRAME", 0) >= report.injected_corruptions
    assert report.missed_cycles - report.host_overruns >= report.injected_corruptions
    assert report.actions_match
    assert _answered_plus_lost(report) == report.cycles
    assert report.link["frames_ok"] == sum(report.received.values())


def test_host_stopping_mid_run_leaves_the_device_in_its_safe_action(bundle_path: Path, strict_binary: Path) -> None:
    last_state: list[float] = []

    def mark(device: EmulatedDevice, record: CycleRecord, fired: list[float]) -> None:
        last_state[:] = [time.monotonic()]  # the cycle's STATE went out before this callback

    report, _, link, device = _run(bundle_path, strict_binary, relaxed(episodes=1, episode_s=2.0),
                                   inject=FaultInjection(stop_host_at_cycle=15), trigger=mark, keep_open=True)
    try:
        assert report.status == "host_stopped", report.reason
        fault = link.receive(1.0)
        silent = time.monotonic() - last_state[-1]
        # The device's watchdog: no STATE for 200 ms -> safe action, FAULT(WATCHDOG_TIMEOUT), disarmed.
        assert isinstance(fault, Fault) and fault.code == FaultCode.WATCHDOG_TIMEOUT, fault
        assert silent < 0.2 + 0.3, f"watchdog fired {silent * 1e3:.0f} ms after the host stopped"
        # It stays latched in the safe action: a late STATE is refused and answered with all zeros.
        seq = link.send(State(np.zeros(53, np.float32)))
        refused = link.receive(1.0)
        assert isinstance(refused, Fault) and refused.code == FaultCode.NOT_ARMED
        safe = link.receive(1.0)
        assert isinstance(safe, Action) and safe.state_seq == seq and safe.action == (0.0,) * 4
    finally:
        link.close()
        device.close()


def test_device_stopping_is_reported_and_the_run_ends_cleanly(bundle_path: Path, binary: Path) -> None:
    def freeze(device: EmulatedDevice, record: CycleRecord, fired: list[float]) -> None:
        if record.cycle == 30 and not fired:
            device.pause()  # SIGSTOP: the port stays, the answers stop
            fired.append(time.monotonic())

    report, fired, *_ = _run(bundle_path, binary, relaxed(link_timeout_s=1.0, episodes=1, episode_s=2.0),
                             trigger=freeze)
    assert fired, "the device was never frozen"
    assert report.status == "device_timeout", report.reason
    assert "stopped answering" in report.reason
    assert report.answered >= 10
    assert report.episodes == []  # the episode did not finish: it is not scored as a success or a failure
    assert not report.succeeded


def test_device_fault_ends_the_run_with_its_name(bundle_path: Path, strict_binary: Path) -> None:
    """A host stall longer than the watchdog makes the device fault; the host reports which fault and stops."""

    def stall(device: EmulatedDevice, record: CycleRecord, fired: list[float]) -> None:
        if record.cycle == 20 and not fired:
            fired.append(time.monotonic())
            time.sleep(0.35)

    report, fired, *_ = _run(bundle_path, strict_binary, relaxed(episodes=1, episode_s=2.0),
                             trigger=stall)
    assert report.status == "device_fault", report.reason
    assert "WATCHDOG_TIMEOUT" in report.reason
    assert report.device_faults["WATCHDOG_TIMEOUT"] == 1


def test_port_vanishing_is_reported_and_the_run_ends_cleanly(bundle_path: Path, binary: Path) -> None:
    def unplug(device: EmulatedDevice, record: CycleRecord, fired: list[float]) -> None:
        if record.cycle == 30 and not fired:
            port = device.port
            device.kill()  # the firmware owns the pty master: killing it removes /dev/pts/N
            device.process.wait()
            fired.append(time.monotonic())
            assert not Path(port).exists()

    start = time.monotonic()
    report, fired, link, _ = _run(bundle_path, binary, relaxed(episodes=1, episode_s=2.0),
                                  trigger=unplug)
    assert fired, "the port was never removed"
    assert report.status == "port_vanished", report.reason
    assert link.port in report.reason and "vanished" in report.reason
    assert time.monotonic() - start < 10
