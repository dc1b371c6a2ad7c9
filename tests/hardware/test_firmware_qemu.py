"""Cortex-M4 build of the reference firmware in QEMU (mps2-an386), UART0 on a pty, driven by SerialLink."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import numpy as np
import pytest
from fw_helpers import N_OBS, build, expect, handshake, reference_policy, start_with_pty, stop

from robot_ac.hardware.protocol import Action, Config, Fault, FaultCode, Heartbeat, State
from robot_ac.hardware.serial_link import SerialLink

QEMU = "qemu-system-arm"


@pytest.fixture(scope="module")
def qemu_device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SerialLink]:
    if shutil.which(QEMU) is None:
        pytest.skip(f"{QEMU} not installed (Debian: apt-get install qemu-system-arm)")
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed (Debian: apt-get install gcc-arm-none-eabi "
                    "libnewlib-arm-none-eabi)")
    elf = build("qemu", tmp_path_factory.mktemp("fw_qemu"))
    cmd = [QEMU, "-M", "mps2-an386", "-display", "none", "-monitor", "none", "-serial", "pty",
           "-kernel", str(elf)]
    proc, pty = start_with_pty(cmd)
    try:
        with SerialLink(pty) as link:
            handshake(link, timeout=10.0)
            yield link
    finally:
        stop(proc)


def test_qemu_state_to_action_round_trip(qemu_device: SerialLink) -> None:
    link = qemu_device
    link.send(Config(True, 0))
    assert expect(link, Heartbeat).armed
    rng = np.random.default_rng(1)
    latencies = []
    for step in range(200):
        obs = rng.normal(size=N_OBS).astype(np.float32)
        t0 = time.perf_counter()
        seq = link.send(State(obs))
        reply = expect(link, Action, timeout=2.0)
        latencies.append(time.perf_counter() - t0)
        assert reply.state_seq == seq
        np.testing.assert_array_equal(np.float32(reply.action), reference_policy(obs, step))
    p50, p99 = np.percentile(latencies, [50, 99]) * 1e3
    print(f"\nQEMU mps2-an386 over pty, 200 STATE->ACTION: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    assert link.counters.crc_errors == link.counters.framing_errors == 0


def test_qemu_watchdog_fault(qemu_device: SerialLink) -> None:
    link = qemu_device
    link.send(Config(True, 0))
    assert expect(link, Heartbeat).armed
    seq = link.send(State((0.0,) * N_OBS))
    expect(link, Action, timeout=2.0)
    start = time.monotonic()
    fault = expect(link, Fault, timeout=2.0)
    assert (fault.code, fault.ref_seq) == (FaultCode.WATCHDOG_TIMEOUT, seq)
    assert 0.15 <= time.monotonic() - start < 1.0  # QEMU's clock follows the host's, loosely
