"""SerialLink over real pseudo-terminals: the test holds the master side and plays the device."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from robot_ac.hardware.protocol import Action, Config, FrameDecoder, Heartbeat, State, encode_frame
from robot_ac.hardware.serial_link import LinkError, PortAbsentError, PortBusyError, SerialLink


def _pty() -> tuple[int, str]:
    master, slave = os.openpty()
    name = os.ttyname(slave)
    os.close(slave)  # the link opens the slave by name, like a real serial device
    return master, name


@pytest.fixture()
def pty() -> Iterator[tuple[int, str]]:
    master, name = _pty()
    yield master, name
    os.close(master)


def _read_frames(master: int, count: int, timeout: float = 2.0) -> list:
    decoder, out = FrameDecoder(), []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        out += decoder.feed(os.read(master, 4096))
    return out


def test_send_numbers_frames_and_receive_decodes(pty) -> None:
    master, name = pty
    with SerialLink(name) as link:
        assert link.send(Config(True, 200)) == 0
        assert link.send(State((1.0, -2.0, 0.5))) == 1
        assert _read_frames(master, 2) == [Config(True, 200, seq=0), State((1.0, -2.0, 0.5), seq=1)]
        reply = Action((0.25, -0.75), state_seq=1, compute_us=42, seq=7)
        os.write(master, b"\x13\x37" + encode_frame(reply) + encode_frame(Heartbeat(5, 1, seq=8)))
        assert link.receive(1.0) == reply
        assert link.receive(1.0) == Heartbeat(5, 1, seq=8)
        assert link.counters.frames_ok == 2
        assert link.counters.framing_errors == 1  # the two stray bytes before the first frame
        assert link.counters.seq_gaps == 0


def test_receive_timeout_is_counted_and_prompt(pty) -> None:
    _, name = pty
    with SerialLink(name) as link:
        start = time.monotonic()
        assert link.receive(0.05) is None
        elapsed = time.monotonic() - start
        assert 0.05 <= elapsed < 0.5
        assert link.counters.timeouts == 1


def test_absent_port_gives_a_clear_error(tmp_path: Path) -> None:
    port = str(tmp_path / "ttyACM9")
    with pytest.raises(PortAbsentError, match="does not exist"), SerialLink(port):
        pass


def test_busy_port_gives_a_clear_error(pty) -> None:
    _, name = pty
    with SerialLink(name), pytest.raises(PortBusyError, match="busy"):
        SerialLink(name).open()


def test_reconnects_after_the_port_disappears(tmp_path: Path) -> None:
    """A stable symlink (as udev gives USB adapters) is re-pointed at a new pty after the old one dies."""
    link_path = tmp_path / "ttyROBOT"
    master, name = _pty()
    link_path.symlink_to(name)
    with SerialLink(str(link_path), backoff_s=0.01) as link:
        os.write(master, encode_frame(Heartbeat(seq=0)))
        assert link.receive(1.0) == Heartbeat(seq=0)
        os.close(master)  # device unplugged
        new_master, new_name = _pty()
        try:
            tmp = tmp_path / "ttyROBOT.new"
            tmp.symlink_to(new_name)
            os.replace(tmp, link_path)  # device plugged back in
            assert link.receive(0.3) is None  # notices the hang-up and reopens within the wait
            assert link.counters.reconnects == 1
            os.write(new_master, encode_frame(Heartbeat(seq=1)))
            assert link.receive(1.0) == Heartbeat(seq=1)
            link.send(State((3.0,)))
            assert _read_frames(new_master, 1) == [State((3.0,), seq=0)]
        finally:
            os.close(new_master)


def test_send_fails_clearly_when_the_port_stays_gone(tmp_path: Path) -> None:
    master, name = _pty()
    link_path = tmp_path / "ttyGONE"
    link_path.symlink_to(name)
    link = SerialLink(str(link_path), reconnect_timeout_s=0.2).open()
    os.close(master)
    link_path.unlink()
    with pytest.raises(LinkError, match="gone"):
        for _ in range(3):  # the first write after a hang-up may still be accepted by the kernel
            link.send(Heartbeat())
    link.close()
