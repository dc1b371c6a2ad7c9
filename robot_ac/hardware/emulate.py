"""Emulated devices for hardware-in-the-loop: the reference firmware with a bundle's policy, on a pty.

``--emulate host`` builds ``hardware/firmware`` for POSIX and runs it on a new pseudo-terminal; ``--emulate qemu``
builds the Cortex-M4 image and runs it in QEMU ``mps2-an386`` with UART0 on a pty. Either way the HIL harness
then talks to a path like ``/dev/pts/7`` exactly as it would to a USB serial adapter.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "hardware" / "firmware"
TARGETS = ("host", "qemu")
QEMU = "qemu-system-arm"
_PTY = re.compile(r"(/dev/pts/\d+)")


class EmulationError(RuntimeError):
    """The firmware could not be built or started; the message names the step and the tool output."""


def _require(tools: list[str], target: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        hint = " (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)" if target == "qemu" else ""
        raise EmulationError(f"cannot emulate '{target}': {', '.join(missing)} not installed{hint}")


def build_firmware(bundle_path: str | Path, target: str, work_dir: str | Path, watchdog_ms: int | None = None) -> Path:
    """Export ``bundle_path`` to C under ``work_dir/policy`` and build the firmware; returns the binary.

    ``watchdog_ms`` overrides the device's 200 ms STATE watchdog (tests on a shared machine only).
    """
    from robot_ac.export.onnx_graph import ExportError
    from robot_ac.export.onnx_to_c import export_onnx_to_c

    if target not in TARGETS:
        raise EmulationError(f"unknown emulation target {target!r}; choose one of {', '.join(TARGETS)}")
    _require(["make", "cc"] if target == "host" else ["make", "arm-none-eabi-gcc", QEMU], target)
    work = Path(work_dir)
    try:
        export_onnx_to_c(bundle_path, work / "policy")
    except ExportError as err:
        raise EmulationError(f"cannot export {bundle_path} to C: {err}") from err
    build = work / f"build_{target}"
    cmd = ["make", "-C", str(FIRMWARE_DIR), target, f"POLICY_DIR={work / 'policy'}", f"BUILD_DIR={build}"]
    if watchdog_ms is not None:
        compiler = "CC=cc" if target == "host" else "ARM_CC=arm-none-eabi-gcc"
        cmd.append(f"{compiler} -DWATCHDOG_US={int(watchdog_ms) * 1000}u")
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as err:
        raise EmulationError(f"firmware build for '{target}' took longer than 300 s") from err
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise EmulationError(f"firmware build for '{target}' failed:\n" + "\n".join(tail))
    return build / ("firmware_host" if target == "host" else "firmware_mps2.elf")


def launch_command(target: str, binary: Path) -> list[str]:
    """Command line that starts ``binary`` with its UART on a new pty announced on stdout/stderr."""
    if target == "host":
        return [str(binary), "--pty"]
    return [QEMU, "-M", "mps2-an386", "-display", "none", "-monitor", "none", "-serial", "pty", "-kernel", str(binary)]


class EmulatedDevice:
    """Builds and runs the firmware for a bundle; ``port`` is its pty once entered. Cleans up on exit.

    The process writes into a log file rather than a pipe, so nobody has to keep reading it for it to run.
    """

    def __init__(self, bundle_path: str | Path | None, target: str, start_timeout_s: float = 15.0,
                 binary: str | Path | None = None, watchdog_ms: int | None = None) -> None:
        if bundle_path is None and binary is None:
            raise ValueError("EmulatedDevice needs a bundle to build or a prebuilt firmware binary")
        self.bundle_path = Path(bundle_path) if bundle_path is not None else None
        self.binary = Path(binary) if binary is not None else None
        self.target = target
        self.watchdog_ms = watchdog_ms
        self.start_timeout_s = start_timeout_s
        self.port: str | None = None
        self.process: subprocess.Popen | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    @property
    def handshake_timeout_s(self) -> float:
        """QEMU's pty backend notices a new reader only about once a second."""
        return 10.0 if self.target == "qemu" else 3.0

    def __enter__(self) -> EmulatedDevice:
        self._tmp = tempfile.TemporaryDirectory(prefix=f"robot_ac_hil_{self.target}_")
        try:
            binary = self.binary or build_firmware(self.bundle_path, self.target, self._tmp.name,
                                                        self.watchdog_ms)
            self._start(binary, Path(self._tmp.name) / "device.log")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _start(self, binary: Path, log_path: Path) -> None:
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(launch_command(self.target, binary), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            text = log_path.read_text(errors="replace")
            match = _PTY.search(text)
            if match:
                self.port = match.group(1)
                return
            if self.process.poll() is not None:
                raise EmulationError(f"{self.target} firmware exited with code {self.process.returncode}: {text!r}")
            time.sleep(0.02)
        raise EmulationError(f"{self.target} firmware did not announce its pty within {self.start_timeout_s:g} s")

    def pause(self) -> None:
        """Freeze the device (SIGSTOP): it stops answering but its port stays, like a hung board."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def kill(self) -> None:
        """Kill the device: its pty disappears, like a board unplugged from USB."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    def close(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)
                self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
