"""Host side of the serial link protocol (``hardware/PROTOCOL.md``): COBS framing, CRC-16, messages.

The same byte layout is implemented in C in ``hardware/firmware/protocol.c``; the tests run both
against each other, so change the two together and bump ``VERSION`` when the layout changes.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum

VERSION = 1
MAX_PAYLOAD = 1024
HEADER = struct.Struct("<BBHH")  # version, type, seq, payload_len
CRC_SIZE = 2
MAX_RAW = HEADER.size + MAX_PAYLOAD + CRC_SIZE
# COBS adds one code byte per started 254-byte block; the receiver buffer must hold one encoded frame.
MAX_ENCODED = MAX_RAW + (MAX_RAW + 253) // 254
DELIMITER = b"\x00"


class MsgType(IntEnum):
    STATE = 0x01
    ACTION = 0x02
    HEARTBEAT = 0x03
    CONFIG = 0x04
    FAULT = 0x05


class FaultCode(IntEnum):
    WATCHDOG_TIMEOUT = 1
    NONFINITE_ACTION = 2
    NONFINITE_OBS = 3
    BAD_FRAME = 4
    NOT_ARMED = 5
    BAD_LENGTH = 6
    BAD_VERSION = 7
    UNKNOWN_TYPE = 8
    OVERRUN = 9


FLAG_ARMED = 0x01


class ProtocolError(ValueError):
    """A frame that cannot be decoded; ``kind`` is ``"framing"`` or ``"crc"`` for the counters."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --- CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0 (check "123456789" = 0x29B1).
def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data``; pass a previous result as ``crc`` to continue a running CRC.

    ``binascii.crc_hqx`` is this CRC (poly 0x1021, MSB first, no final XOR) with the initial value as its second
    argument, in C: ~100x faster than the table loop (:func:`crc16_reference`), which the tests keep as a twin.
    """
    return binascii.crc_hqx(data, crc)


def crc16_reference(data: bytes, crc: int = 0xFFFF) -> int:
    """Table-driven CRC-16/CCITT-FALSE in Python: the readable definition :func:`crc16` is checked against."""
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]
    return crc


# --- COBS (Cheshire & Baker 1999): removes all zero bytes so 0x00 can delimit frames.
def cobs_encode(data: bytes) -> bytes:
    """Encode without the trailing delimiter; a final full 254-byte block gets no extra code byte.

    Works on the zero-free runs between zeros (``bytes.split``) rather than byte by byte: a 146-float STATE frame
    encodes in microseconds, which a 500 Hz loop needs. :func:`cobs_encode_reference` is the byte-wise twin.
    """
    out = bytearray()
    parts = bytes(data).split(b"\x00")
    last = len(parts) - 1
    for i, part in enumerate(parts):
        n = len(part)
        start = 0
        while n - start >= 254:  # full blocks: code 0xFF, no implied zero
            out.append(0xFF)
            out += part[start : start + 254]
            start += 254
        rest = n - start
        if rest or n == 0 or i != last:  # the block that ends with this run's zero (or the data's end)
            out.append(rest + 1)
            out += part[start:]
    return bytes(out)


def cobs_encode_reference(data: bytes) -> bytes:
    """Byte-wise COBS encoder, the readable definition :func:`cobs_encode` is checked against."""
    out = bytearray(b"\x00")
    code_at, code = 0, 1
    for i, byte in enumerate(data):
        if byte:
            out.append(byte)
            code += 1
        if not byte or (code == 0xFF and i + 1 < len(data)):
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
    out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of :func:`cobs_encode`; raises :class:`ProtocolError` on a zero byte or a short block."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise ProtocolError("framing", "zero byte inside COBS data")
        end = i + code
        if end > n:
            raise ProtocolError("framing", "COBS block runs past end of frame")
        block = data[i + 1 : end]
        if 0 in block:
            raise ProtocolError("framing", "zero byte inside COBS data")
        out += block
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


# --- messages. ``seq`` is the frame sequence number; encoders take it from the message.
_F32 = "<{}f"


def _floats(payload: bytes) -> tuple[float, ...]:
    if len(payload) % 4:
        raise ProtocolError("framing", "float payload length is not a multiple of 4")
    return struct.unpack(_F32.format(len(payload) // 4), payload)


def _pack_floats(values: tuple[float, ...]) -> bytes:
    return struct.pack(_F32.format(len(values)), *values)


@dataclass(frozen=True)
class State:
    """Observation vector, float32, in the order of the policy contract (host -> device)."""

    obs: tuple[float, ...]
    seq: int = 0
    TYPE = MsgType.STATE

    def __post_init__(self) -> None:
        object.__setattr__(self, "obs", tuple(float(x) for x in self.obs))

    def payload(self) -> bytes:
        return _pack_floats(self.obs)

    @classmethod
    def parse(cls, payload: bytes, seq: int) -> State:
        return cls(_floats(payload), seq)


@dataclass(frozen=True)
class Action:
    """Policy output answering STATE ``state_seq``; ``compute_us`` is the device's policy time."""

    action: tuple[float, ...]
    state_seq: int
    compute_us: int = 0
    seq: int = 0
    TYPE = MsgType.ACTION
    _FIXED = struct.Struct("<HI")

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", tuple(float(x) for x in self.action))

    def payload(self) -> bytes:
        return self._FIXED.pack(self.state_seq, self.compute_us) + _pack_floats(self.action)

    @classmethod
    def parse(cls, payload: bytes, seq: int) -> Action:
        if len(payload) < cls._FIXED.size:
            raise ProtocolError("framing", "ACTION payload too short")
        state_seq, compute_us = cls._FIXED.unpack_from(payload)
        return cls(_floats(payload[cls._FIXED.size :]), state_seq, compute_us, seq)


@dataclass(frozen=True)
class Heartbeat:
    """Link liveness; ``flags`` bit 0 = armed. Does not feed the device watchdog."""

    time_us: int = 0
    flags: int = 0
    seq: int = 0
    TYPE = MsgType.HEARTBEAT
    _FIXED = struct.Struct("<IB")

    @property
    def armed(self) -> bool:
        return bool(self.flags & FLAG_ARMED)

    def payload(self) -> bytes:
        return self._FIXED.pack(self.time_us, self.flags)

    @classmethod
    def parse(cls, payload: bytes, seq: int) -> Heartbeat:
        if len(payload) != cls._FIXED.size:
            raise ProtocolError("framing", "HEARTBEAT payload has wrong length")
        return cls(*cls._FIXED.unpack(payload), seq=seq)


@dataclass(frozen=True)
class Config:
    """Arm/disarm and the host's nominal STATE rate (0 = unspecified)."""

    arm: bool
    rate_hz: int = 0
    seq: int = 0
    TYPE = MsgType.CONFIG
    _FIXED = struct.Struct("<BH")

    def payload(self) -> bytes:
        return self._FIXED.pack(FLAG_ARMED if self.arm else 0, self.rate_hz)

    @classmethod
    def parse(cls, payload: bytes, seq: int) -> Config:
        if len(payload) != cls._FIXED.size:
            raise ProtocolError("framing", "CONFIG payload has wrong length")
        flags, rate_hz = cls._FIXED.unpack(payload)
        return cls(bool(flags & FLAG_ARMED), rate_hz, seq)


@dataclass(frozen=True)
class Fault:
    """Device fault ``code`` (:class:`FaultCode`) caused by the frame with sequence ``ref_seq``."""

    code: int
    ref_seq: int = 0
    seq: int = 0
    TYPE = MsgType.FAULT
    _FIXED = struct.Struct("<HH")

    def payload(self) -> bytes:
        return self._FIXED.pack(self.code, self.ref_seq)

    @classmethod
    def parse(cls, payload: bytes, seq: int) -> Fault:
        if len(payload) != cls._FIXED.size:
            raise ProtocolError("framing", "FAULT payload has wrong length")
        return cls(*cls._FIXED.unpack(payload), seq=seq)


Message = State | Action | Heartbeat | Config | Fault
_PARSERS = {cls.TYPE: cls.parse for cls in (State, Action, Heartbeat, Config, Fault)}


def encode_frame(msg: Message) -> bytes:
    """Wire bytes for ``msg``: 0x00, COBS(header | payload | CRC little-endian), 0x00.

    The leading delimiter costs one byte and means line noise before a frame ends up in its own
    (rejected) chunk instead of merging into, and destroying, the frame that follows it.
    """
    payload = msg.payload()
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD}-byte limit")
    raw = HEADER.pack(VERSION, msg.TYPE, msg.seq & 0xFFFF, len(payload)) + payload
    raw += crc16(raw).to_bytes(2, "little")
    return DELIMITER + cobs_encode(raw) + DELIMITER


def decode_frame(encoded: bytes) -> Message:
    """Decode one frame without its delimiter; raises :class:`ProtocolError` naming the failure kind."""
    if len(encoded) > MAX_ENCODED:
        raise ProtocolError("framing", "frame longer than the protocol maximum")
    raw = cobs_decode(encoded)
    if len(raw) < HEADER.size + CRC_SIZE:
        raise ProtocolError("framing", "frame shorter than header + CRC")
    body, crc = raw[:-CRC_SIZE], int.from_bytes(raw[-CRC_SIZE:], "little")
    if crc16(body) != crc:
        raise ProtocolError("crc", "CRC mismatch")
    version, mtype, seq, length = HEADER.unpack_from(body)
    if version != VERSION:
        raise ProtocolError("framing", f"unsupported protocol version {version}")
    if length != len(body) - HEADER.size or length > MAX_PAYLOAD:
        raise ProtocolError("framing", "payload length does not match header")
    parse = _PARSERS.get(mtype)
    if parse is None:
        raise ProtocolError("framing", f"unknown message type {mtype}")
    return parse(body[HEADER.size :], seq)


@dataclass
class LinkCounters:
    """Receive-side health counters; every non-empty chunk counts once in ok, crc or framing."""

    frames_ok: int = 0
    crc_errors: int = 0
    framing_errors: int = 0
    seq_gaps: int = 0
    timeouts: int = 0
    reconnects: int = 0


@dataclass
class FrameDecoder:
    """Streaming decoder: feed arbitrary byte chunks, get the complete valid messages back.

    Bytes accumulate until a 0x00 delimiter; anything that fails to decode is counted and dropped,
    and the next delimiter resynchronises the stream, so garbage costs at most the frame it hits.
    """

    counters: LinkCounters = field(default_factory=LinkCounters)
    _buf: bytearray = field(default_factory=bytearray)
    _overflow: bool = False
    _last_seq: int | None = None

    def feed(self, data: bytes) -> list[Message]:
        out: list[Message] = []
        for piece, complete in _split_keep(bytes(data)):
            if not self._overflow:
                self._buf += piece
                if len(self._buf) > MAX_ENCODED:
                    self._buf.clear()
                    self._overflow = True
            if complete:
                msg = self._finish()
                if msg is not None:
                    out.append(msg)
        return out

    def _finish(self) -> Message | None:
        frame, overflow = bytes(self._buf), self._overflow
        self._buf.clear()
        self._overflow = False
        if overflow:
            self.counters.framing_errors += 1
            return None
        if not frame:
            return None  # back-to-back delimiters are a resync marker, not an error
        try:
            msg = decode_frame(frame)
        except ProtocolError as err:
            if err.kind == "crc":
                self.counters.crc_errors += 1
            else:
                self.counters.framing_errors += 1
            return None
        self.counters.frames_ok += 1
        if self._last_seq is not None and msg.seq != (self._last_seq + 1) & 0xFFFF:
            self.counters.seq_gaps += 1
        self._last_seq = msg.seq
        return msg


def _split_keep(data: bytes) -> Iterator[tuple[bytes, bool]]:
    """Yield ``(piece, ends_with_delimiter)`` for each delimiter-separated piece of ``data``."""
    start = 0
    while True:
        end = data.find(0, start)
        if end < 0:
            if start < len(data):
                yield data[start:], False
            return
        yield data[start:end], True
        start = end + 1
