"""Framed message link over a serial port (pyserial), with health counters and reconnection.

POSIX only: reads wait in ``select`` on the port's file descriptor, so ``receive`` returns as soon as a
frame is complete instead of polling; USB serial adapters and pseudo-terminals both work.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType

import serial

from robot_ac.hardware.protocol import FrameDecoder, LinkCounters, Message, encode_frame


class LinkError(RuntimeError):
    """The serial port cannot be used; the message says why and what to check."""


class PortAbsentError(LinkError):
    pass


class PortBusyError(LinkError):
    pass


_BUSY = {errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES}


class SerialLink:
    """Send and receive protocol messages on ``port``; the link numbers outgoing frames itself.

    When the port disappears (USB unplugged, device reset), ``send`` and ``receive`` close it and retry
    opening with exponential backoff, so a control loop survives a short drop-out without restarting.
    """

    def __init__(
        self,
        port: str,
        baudrate: int = 115200,
        *,
        reconnect: bool = True,
        backoff_s: float = 0.02,
        max_backoff_s: float = 0.5,
        reconnect_timeout_s: float = 2.0,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.reconnect = reconnect
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.reconnect_timeout_s = reconnect_timeout_s
        self.counters = LinkCounters()
        self._decoder = FrameDecoder(self.counters)
        self._pending: deque[Message] = deque()
        self._serial: serial.Serial | None = None
        self._seq = 0

    # --- lifecycle
    def open(self) -> SerialLink:
        """Open the port exclusively; raises :class:`PortAbsentError` or :class:`PortBusyError`."""
        if self._serial is None:
            self._serial = self._open_once()
        return self

    def close(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(OSError, serial.SerialException):  # already gone: nothing to release
                self._serial.close()
            self._serial = None

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def __enter__(self) -> SerialLink:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _open_once(self) -> serial.Serial:
        try:
            return serial.Serial(self.port, self.baudrate, timeout=0, write_timeout=1.0, exclusive=True)
        except serial.SerialException as err:
            code = getattr(err, "errno", None)
            if code == errno.ENOENT or not os.path.exists(self.port):
                raise PortAbsentError(
                    f"serial port {self.port!r} does not exist: is the device plugged in and the path right?"
                ) from err
            if code in _BUSY:
                raise PortBusyError(
                    f"serial port {self.port!r} is busy: another process holds it open "
                    f"(the link opens ports exclusively); close it and retry ({err})"
                ) from err
            raise LinkError(f"cannot open serial port {self.port!r}: {err}") from err

    def _reconnect(self, deadline: float) -> bool:
        """Drop the broken port and retry opening it until ``deadline``; True once it is back."""
        self.close()
        self._decoder = FrameDecoder(self.counters)  # a partial frame from before the drop is garbage
        if not self.reconnect:
            return False
        delay = self.backoff_s
        while True:
            try:
                self._serial = self._open_once()
            except LinkError:
                now = time.monotonic()
                if now >= deadline:
                    return False
                time.sleep(min(delay, deadline - now))
                delay = min(delay * 2, self.max_backoff_s)
                continue
            self.counters.reconnects += 1
            return True

    def _ensure_open(self, deadline: float) -> bool:
        return self._serial is not None or self._reconnect(deadline)

    # --- traffic
    def send(self, message: Message, mutate: Callable[[bytes], bytes | None] | None = None) -> int:
        """Send ``message`` with the link's next sequence number and return that number.

        ``mutate`` (fault injection) sees the wire bytes and returns what to write instead; ``None`` drops the
        frame as if lost on the wire, so the sequence number is still used up and the peer sees a gap.
        """
        seq = self._seq
        data = encode_frame(replace(message, seq=seq))
        if mutate is not None:
            data = mutate(data)
            if data is None:
                self._seq = (seq + 1) & 0xFFFF
                return seq
        deadline = time.monotonic() + self.reconnect_timeout_s
        for _ in range(2):
            if not self._ensure_open(deadline):
                break
            try:
                self._serial.write(data)
            except (OSError, serial.SerialException):
                self.close()
                continue
            self._seq = (seq + 1) & 0xFFFF
            return seq
        raise LinkError(f"serial port {self.port!r} is gone and did not come back")

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are, without framing: for fault injection and link tests."""
        if not self._ensure_open(time.monotonic() + self.reconnect_timeout_s):
            raise LinkError(f"serial port {self.port!r} is gone and did not come back")
        self._serial.write(data)

    def receive(self, timeout: float) -> Message | None:
        """Next valid message within ``timeout`` seconds, or None (counted as a timeout)."""
        deadline = time.monotonic() + timeout
        while not self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._ensure_open(deadline):
                self.counters.timeouts += 1
                return None
            try:
                ready, _, _ = select.select([self._serial.fileno()], [], [], remaining)
                if ready:
                    self._pending.extend(self._decoder.feed(self._serial.read(4096)))
            except (OSError, serial.SerialException, ValueError):
                self.close()  # port vanished mid-read; the next loop turn reconnects
        return self._pending.popleft()

    def drain(self) -> list[Message]:
        """Messages already received or waiting in the OS buffer, without blocking."""
        out = list(self._pending)
        self._pending.clear()
        if self._serial is not None:
            try:
                out += self._decoder.feed(self._serial.read(4096))
            except (OSError, serial.SerialException):
                self.close()
        return out
