"""Shared pieces of the hardware tests: the test policy's numpy twin and firmware process handling."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from robot_ac.hardware.protocol import Action, Fault, Heartbeat, Message
from robot_ac.hardware.serial_link import SerialLink

REPO = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO / "hardware" / "firmware"
TEST_POLICY_DIR = FIRMWARE_DIR / "test"
N_OBS, N_ACT = 4, 2


def reference_policy(obs: np.ndarray, step: int) -> np.ndarray:
    """numpy float32 twin of hardware/firmware/test/policy.c; ``step`` counts calls since reset."""
    o = np.asarray(obs, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        a0 = np.float32(0.5) * o[0] - o[1] + np.float32(0.25) * o[2]
        a1 = np.float32(2.0) * o[3] + np.float32(0.125) * np.float32(min(step, 1000))
    return np.array([a0, a1], dtype=np.float32)


def build(target: str, out_dir: Path, policy_dir: Path = TEST_POLICY_DIR, cc: str | None = None) -> Path:
    """Build the firmware into ``out_dir`` for ``policy_dir``; skips with the reason if tools are missing."""
    tools = ["make", "cc"] if target == "host" else ["make", "arm-none-eabi-gcc"]
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"cannot build the {target} firmware: {', '.join(missing)} not installed")
    extra = [f"CC={cc}"] if cc else []
    result = subprocess.run(
        ["make", "-C", str(FIRMWARE_DIR), target, f"BUILD_DIR={out_dir}", f"POLICY_DIR={policy_dir}", *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"firmware build failed:\n{result.stdout}\n{result.stderr}"
    return out_dir / ("firmware_host" if target == "host" else "firmware_mps2.elf")


def start_with_pty(cmd: list[str], timeout: float = 10.0) -> tuple[subprocess.Popen, str]:
    """Start a program that announces its pseudo-terminal on stdout (ours and QEMU's formats)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(r"(/dev/pts/\d+)", line)
        if match:
            return proc, match.group(1)
    stop(proc)
    raise AssertionError(f"{cmd[0]} did not announce a pty; output: {''.join(seen)!r}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def expect(link: SerialLink, kind: type, timeout: float = 1.0) -> Message:
    """Next message, asserting its type; the failure shows what came instead."""
    msg = link.receive(timeout)
    assert isinstance(msg, kind), f"expected {kind.__name__}, got {msg!r}"
    return msg


def handshake(link: SerialLink, timeout: float = 5.0) -> Heartbeat:
    """Ping until the device answers; QEMU's pty backend only notices a reader about once a second."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        link.send(Heartbeat())
        msg = link.receive(0.5)
        if isinstance(msg, Heartbeat):
            while link.receive(0.2) is not None:
                pass  # answers to earlier pings that were queued before the device listened
            return msg
    raise AssertionError("device did not answer HEARTBEAT")


def expect_fault_then_safe(link: SerialLink, code: int, state_seq: int) -> None:
    fault = expect(link, Fault)
    assert (fault.code, fault.ref_seq) == (code, state_seq)
    action = expect(link, Action)
    assert action.state_seq == state_seq
    assert action.action == (0.0,) * N_ACT
