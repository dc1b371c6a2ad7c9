"""Host build of the reference firmware on a pseudo-terminal, driven through SerialLink."""

from __future__ import annotations

import math
import os
import subprocess
import time
import tty

import numpy as np
from fw_helpers import (
    N_ACT,
    N_OBS,
    expect,
    expect_fault_then_safe,
    handshake,
    reference_policy,
    start_with_pty,
    stop,
)

from robot_ac.hardware.protocol import (
    Action,
    Config,
    Fault,
    FaultCode,
    FrameDecoder,
    Heartbeat,
    State,
    encode_frame,
)
from robot_ac.hardware.serial_link import SerialLink


def _arm(link: SerialLink, rate_hz: int = 0) -> None:
    link.send(Config(True, rate_hz))
    assert expect(link, Heartbeat).armed


def test_state_in_action_out_matches_the_policy(device: SerialLink) -> None:
    handshake(device)
    _arm(device)
    rng = np.random.default_rng(0)
    for step in range(50):
        obs = rng.normal(scale=3.0, size=N_OBS).astype(np.float32)
        seq = device.send(State(obs))
        reply = expect(device, Action)
        assert reply.state_seq == seq
        np.testing.assert_array_equal(np.float32(reply.action), reference_policy(obs, step))
    assert device.counters.crc_errors == device.counters.framing_errors == device.counters.seq_gaps == 0


def test_state_while_disarmed_gets_fault_and_safe_action(device: SerialLink) -> None:
    handshake(device)
    seq = device.send(State((1.0, 2.0, 3.0, 4.0)))
    expect_fault_then_safe(device, FaultCode.NOT_ARMED, seq)


def test_watchdog_faults_after_200ms_without_state_and_disarms(device: SerialLink) -> None:
    handshake(device)
    _arm(device)
    seq = device.send(State((1.0, 2.0, 3.0, 4.0)))
    expect(device, Action)
    start = time.monotonic()
    fault = expect(device, Fault, timeout=1.0)
    silent = time.monotonic() - start
    assert (fault.code, fault.ref_seq) == (FaultCode.WATCHDOG_TIMEOUT, seq)
    assert 0.19 <= silent < 0.4, f"watchdog fired after {silent * 1e3:.0f} ms"
    device.send(Heartbeat())
    assert not expect(device, Heartbeat).armed  # latched off until the host re-arms
    seq = device.send(State((1.0, 2.0, 3.0, 4.0)))
    expect_fault_then_safe(device, FaultCode.NOT_ARMED, seq)


def test_watchdog_stays_quiet_while_states_keep_coming(device: SerialLink) -> None:
    handshake(device)
    _arm(device)
    end = time.monotonic() + 0.6
    while time.monotonic() < end:
        device.send(State((0.0,) * N_OBS))
        expect(device, Action)
        time.sleep(0.05)
    assert device.receive(0.05) is None


def test_nonfinite_observation_gets_fault_and_safe_action(device: SerialLink) -> None:
    handshake(device)
    _arm(device)
    for bad in (math.nan, math.inf, -math.inf):
        seq = device.send(State((0.0, bad, 0.0, 0.0)))
        expect_fault_then_safe(device, FaultCode.NONFINITE_OBS, seq)


def test_nonfinite_action_gets_fault_safe_action_and_policy_reset(device: SerialLink) -> None:
    handshake(device)
    _arm(device)
    for _ in range(3):
        device.send(State((0.0,) * N_OBS))
        expect(device, Action)
    seq = device.send(State((3e38, -3e38, 0.0, 0.0)))  # finite inputs, 0.5*3e38 + 3e38 overflows
    expect_fault_then_safe(device, FaultCode.NONFINITE_ACTION, seq)
    device.send(State((0.0, 0.0, 0.0, 1.0)))
    assert expect(device, Action).action == (0.0, 2.0)  # step counter back to 0 after policy_reset


def test_bad_frames_and_wrong_lengths_are_reported(device: SerialLink) -> None:
    handshake(device)
    _arm(device)
    device.send_raw(b"\x00\x42\x42\x42\x00")  # garbage between delimiters
    assert expect(device, Fault).code == FaultCode.BAD_FRAME
    seq = device.send(State((1.0, 2.0, 3.0)))  # one observation short
    expect_fault_then_safe(device, FaultCode.BAD_LENGTH, seq)
    seq = device.send(Action((0.0,), state_seq=0))  # wrong direction
    fault = expect(device, Fault)
    assert (fault.code, fault.ref_seq) == (FaultCode.UNKNOWN_TYPE, seq)


def test_tty_path_argument_and_round_trip_latency(host_firmware: str) -> None:
    """The firmware opens a tty by path; the test owns the pty master, checks the C encoder's bytes
    against the Python encoder and prints the round-trip latency (run pytest with -s to see it)."""
    master, slave = os.openpty()
    tty.setraw(slave)  # bytes written before the firmware configures the tty must not be cooked
    proc = subprocess.Popen([host_firmware, os.ttyname(slave)])
    decoder = FrameDecoder()
    assert os.read(master, 1) == b"\x00"  # the firmware's start-up resync byte: it is listening

    def exchange(msg, timeout: float = 2.0):
        os.write(master, encode_frame(msg))
        deadline, wire = time.monotonic() + timeout, b""
        while time.monotonic() < deadline:
            chunk = os.read(master, 4096)
            wire += chunk
            out = decoder.feed(chunk)
            if out:
                assert len(out) == 1, out
                assert wire == encode_frame(out[0])  # the C encoder produces the Python bytes exactly
                return out[0]
        raise AssertionError(f"no reply to {msg!r}")

    try:
        assert isinstance(exchange(Heartbeat(seq=0)), Heartbeat)
        assert exchange(Config(True, 0, seq=1)).armed
        latencies, computes = [], []
        for i in range(1000):
            t0 = time.perf_counter()
            reply = exchange(State((float(i), 0.0, 0.0, 0.0), seq=(i + 2) & 0xFFFF))
            latencies.append(time.perf_counter() - t0)
            computes.append(reply.compute_us)
            assert reply.state_seq == (i + 2) & 0xFFFF and reply.action[0] == np.float32(0.5 * i)
        p50, p99 = np.percentile(latencies, [50, 99]) * 1e6
        print(f"\nhost firmware over pty, 1000 STATE->ACTION: p50 {p50:.0f} us, p99 {p99:.0f} us, "
              f"device compute max {max(computes)} us")
        assert p99 < 50_000
        assert len(latencies) == 1000 and N_ACT == 2
    finally:
        stop(proc)
        os.close(master)
        os.close(slave)


def test_overrun_is_reported_but_the_action_still_sent(device: SerialLink) -> None:
    handshake(device)
    _arm(device, rate_hz=1000)  # 1 ms period; the test policy burns a few ms on this input
    seq = device.send(State((-12345.0, 0.0, 0.0, 0.0)))
    fault = expect(device, Fault)
    assert (fault.code, fault.ref_seq) == (FaultCode.OVERRUN, seq)
    reply = expect(device, Action)
    assert reply.state_seq == seq and reply.compute_us > 1000
    np.testing.assert_array_equal(np.float32(reply.action), reference_policy((-12345.0, 0, 0, 0), 0))


def test_sanitized_firmware_survives_garbage_and_corrupted_frames(sanitized_firmware: str) -> None:
    """Random bytes and every-which-way corrupted frames into an ASan/UBSan build: no crash, no UB,
    every bad chunk answered with BAD_FRAME, and the link still works afterwards."""
    rng = np.random.default_rng(5)
    good = encode_frame(State((1.0, 2.0, 3.0, 4.0), seq=1))
    corrupted = []
    for _ in range(200):
        bad = bytearray(good)
        pos = rng.integers(1, len(good) - 1)  # keep the delimiters
        bad[pos] = rng.choice([v for v in range(1, 256) if v != good[pos]])
        corrupted.append(bytes(bad))
    overlong = b"\x00" + b"\x07" * 3000 + b"\x00"
    noise = rng.integers(0, 256, size=20_000, dtype=np.uint8).tobytes()
    proc, pty = start_with_pty([sanitized_firmware, "--pty"])
    try:
        with SerialLink(pty) as link:
            handshake(link)
            faults = []
            for blob in (noise, overlong, *corrupted):
                for i in range(0, len(blob), 512):
                    link.send_raw(blob[i : i + 512])
                    faults += link.drain()  # keep the reply direction flowing
            while (msg := link.receive(0.3)) is not None:
                faults.append(msg)
            assert faults and all(isinstance(f, Fault) for f in faults), [f for f in faults if type(f) is not Fault]
            assert {f.code for f in faults} <= {FaultCode.BAD_FRAME, FaultCode.BAD_VERSION,
                                                FaultCode.UNKNOWN_TYPE}
            _arm(link)
            link.send(State((0.0, 0.0, 0.0, 1.0)))
            assert expect(link, Action).action == (0.0, 2.0)
        assert proc.poll() is None, "firmware died"
    finally:
        stop(proc)
        out = proc.stdout.read()
        assert "ERROR: AddressSanitizer" not in out and "runtime error" not in out, out
