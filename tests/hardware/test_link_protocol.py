"""Codec tests against published check values, plus property and fuzz tests of the stream decoder."""

from __future__ import annotations

import math
import struct
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robot_ac.hardware.protocol import (
    CRC_SIZE,
    HEADER,
    MAX_ENCODED,
    MAX_PAYLOAD,
    VERSION,
    Action,
    Config,
    Fault,
    FrameDecoder,
    Heartbeat,
    MsgType,
    ProtocolError,
    State,
    cobs_decode,
    cobs_encode,
    crc16,
    decode_frame,
    encode_frame,
)


# --- CRC-16/CCITT-FALSE. 0x29B1 is the catalogue check value (CRC RevEng, CRC-16/IBM-3740); "A" -> 0xB915
# and 256 x "A" -> 0xEA0B are the 0xFFFF-initialised column of J. Geluso, "CRC-CCITT -- 16-bit"
# (srecord.sourceforge.net/crc16-ccitt.html); the empty string gives the initial value.
@pytest.mark.parametrize(
    ("data", "crc"),
    [(b"123456789", 0x29B1), (b"A", 0xB915), (b"", 0xFFFF), (b"A" * 256, 0xEA0B)],
    ids=["123456789", "A", "empty", "256xA"],
)
def test_crc_published_check_values(data: bytes, crc: int) -> None:
    assert crc16(data) == crc


def test_crc_is_incremental() -> None:
    assert crc16(b"6789", crc16(b"12345")) == 0x29B1


# --- COBS examples of Cheshire & Baker as tabulated on Wikipedia ("Consistent Overhead Byte Stuffing").
_R = bytes(range(256))
COBS_VECTORS = [
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (_R[1:255], b"\xff" + _R[1:255]),
    (_R[0:255], b"\x01\xff" + _R[1:255]),
    (_R[1:256], b"\xff" + _R[1:255] + b"\x02\xff"),
    (_R[2:256] + b"\x00", b"\xff" + _R[2:256] + b"\x01\x01"),
    (_R[3:256] + b"\x00\x01", b"\xfe" + _R[3:256] + b"\x02\x01"),
]


@pytest.mark.parametrize(("raw", "encoded"), COBS_VECTORS, ids=range(1, len(COBS_VECTORS) + 1))
def test_cobs_published_examples(raw: bytes, encoded: bytes) -> None:
    assert cobs_encode(raw) == encoded
    assert cobs_decode(encoded) == raw


@given(st.binary(max_size=1200))
@settings(max_examples=200, deadline=timedelta(milliseconds=2000))
def test_cobs_round_trip_has_no_zeros_and_bounded_overhead(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert len(encoded) <= len(data) + len(data) // 254 + 1
    assert cobs_decode(encoded) == data


@pytest.mark.parametrize("bad", [b"\x03\x11", b"\x02\x00", b"\x00"])
def test_cobs_rejects_truncated_or_zero(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        cobs_decode(bad)


# --- messages
f32 = st.floats(width=32, allow_nan=False)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
messages = st.one_of(
    st.builds(State, st.lists(f32, max_size=MAX_PAYLOAD // 4).map(tuple), u16),
    st.builds(Action, st.lists(f32, max_size=(MAX_PAYLOAD - 6) // 4).map(tuple), u16, u32, u16),
    st.builds(Heartbeat, u32, st.integers(0, 255), u16),
    st.builds(Config, st.booleans(), u16, u16),
    st.builds(Fault, u16, u16, u16),
)


@given(messages)
@settings(max_examples=300, deadline=timedelta(milliseconds=2000))
def test_message_round_trip(msg) -> None:
    wire = encode_frame(msg)
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    assert len(wire) <= MAX_ENCODED + 2
    assert decode_frame(wire[1:-1]) == msg


def test_nan_and_inf_survive_bit_exact() -> None:
    values = (math.nan, math.inf, -math.inf, -0.0)
    decoded = decode_frame(encode_frame(State(values, 7))[1:-1])
    assert struct.pack("<4f", *decoded.obs) == struct.pack("<4f", *values)


def test_payload_limit_is_enforced() -> None:
    encode_frame(State((0.0,) * (MAX_PAYLOAD // 4)))
    with pytest.raises(ValueError, match="exceeds"):
        encode_frame(State((0.0,) * (MAX_PAYLOAD // 4 + 1)))


def _raw(mtype: int, payload: bytes, version: int = VERSION, length: int | None = None) -> bytes:
    body = HEADER.pack(version, mtype, 0, len(payload) if length is None else length) + payload
    return cobs_encode(body + crc16(body).to_bytes(CRC_SIZE, "little"))


@pytest.mark.parametrize(
    "encoded",
    [
        _raw(MsgType.STATE, b"\x00" * 4, version=2),  # unknown version
        _raw(0x7F, b""),  # unknown type
        _raw(MsgType.STATE, b"\x00" * 4, length=8),  # header length disagrees with the frame
        _raw(MsgType.STATE, b"\x00" * 3),  # not a whole number of floats
        _raw(MsgType.FAULT, b"\x00" * 3),  # fixed-size message of the wrong size
        cobs_encode(b"\x01\x02\x03"),  # shorter than header + CRC
    ],
)
def test_malformed_frames_are_framing_errors(encoded: bytes) -> None:
    with pytest.raises(ProtocolError) as err:
        decode_frame(encoded)
    assert err.value.kind == "framing"


# --- corruption detection
SAMPLES = [
    State((0.25, -1.5, 3.0e-3, 42.0), seq=513),
    Action((0.1, -0.2, 0.3, -0.4), state_seq=513, compute_us=87, seq=9),
    Heartbeat(123456, 1, seq=0xFFFF),
    Config(True, 500, seq=2),
    Fault(1, 77, seq=3),
]


def _reencode(raw: bytes) -> bytes:
    return b"\x00" + cobs_encode(raw) + b"\x00"


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_single_byte_corruption_of_the_raw_frame_is_detected(msg) -> None:
    """A 16-bit CRC catches every error burst of at most 16 bits, so every byte substitution."""
    raw = cobs_decode(encode_frame(msg)[1:-1])
    for pos in range(len(raw)):
        for value in range(256):
            if value == raw[pos]:
                continue
            bad = raw[:pos] + bytes([value]) + raw[pos + 1 :]
            with pytest.raises(ProtocolError):
                decode_frame(cobs_encode(bad))


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_single_byte_corruption_on_the_wire_is_detected(msg) -> None:
    """Substituting any wire byte (a zero included, which splits the frame) never yields a message."""
    wire = encode_frame(msg)
    after = Heartbeat(seq=(msg.seq + 1) & 0xFFFF)
    good = encode_frame(after)
    for pos in range(len(wire)):
        for value in range(256):
            if value == wire[pos]:
                continue
            decoder = FrameDecoder()
            assert decoder.feed(wire[:pos] + bytes([value]) + wire[pos + 1 :]) == []
            assert decoder.counters.frames_ok == 0
            # and the stream recovers at the next frame
            assert decoder.feed(good) == [after]


# --- stream decoding
def test_sequence_gaps_are_counted() -> None:
    decoder = FrameDecoder()
    stream = b"".join(encode_frame(Fault(1, seq=s)) for s in (0xFFFE, 0xFFFF, 0, 1, 5, 6, 2))
    assert len(decoder.feed(stream)) == 7
    assert decoder.counters.seq_gaps == 2  # 1 -> 5 and 6 -> 2; the wrap 0xFFFF -> 0 is not a gap


def test_overlong_garbage_is_dropped_and_the_stream_resyncs() -> None:
    decoder = FrameDecoder()
    msg = State((1.0, 2.0), seq=1)
    out = decoder.feed(b"\x55" * (3 * MAX_ENCODED) + encode_frame(msg))
    assert out == [msg]
    assert decoder.counters.framing_errors == 1


@given(
    st.lists(st.tuples(messages, st.binary(max_size=300)), max_size=12),
    st.lists(st.integers(1, 64), min_size=1, max_size=8),
)
@settings(max_examples=150, deadline=timedelta(milliseconds=2000))
def test_garbage_between_frames_loses_no_intact_frame(pairs, chunk_sizes) -> None:
    stream = b"".join(garbage + encode_frame(msg) for msg, garbage in pairs)
    decoder = FrameDecoder()
    out, pos, i = [], 0, 0
    while pos < len(stream):  # deliver in uneven chunks, as a UART driver would
        size = chunk_sizes[i % len(chunk_sizes)]
        out += decoder.feed(stream[pos : pos + size])
        pos, i = pos + size, i + 1
    assert out == [msg for msg, _ in pairs]


def _complete_chunks(stream: bytes) -> int:
    """Non-empty delimiter-terminated pieces: each must be counted exactly once by the decoder."""
    return sum(1 for piece in stream.split(b"\x00")[:-1] if piece)


@given(st.lists(st.one_of(st.binary(max_size=200), messages.map(encode_frame)), max_size=20))
@settings(max_examples=300, deadline=timedelta(milliseconds=2000))
def test_decoder_fuzz_never_raises_and_counts_consistently(parts) -> None:
    stream = b"".join(parts)
    decoder = FrameDecoder()
    out = decoder.feed(stream)
    c = decoder.counters
    assert c.frames_ok == len(out)
    assert c.frames_ok + c.crc_errors + c.framing_errors == _complete_chunks(stream)
    assert 0 <= c.seq_gaps <= max(c.frames_ok - 1, 0)
    # byte-at-a-time feeding gives the same result
    again = FrameDecoder()
    assert [m for b in stream for m in again.feed(bytes([b]))] == out
    assert again.counters == c


def test_documented_heartbeat_vector() -> None:
    """The worked example at the end of hardware/PROTOCOL.md."""
    wire = bytes.fromhex("00 04 01 03 01 02 05 01 01 01 01 01 03 0D 2F 00")
    assert encode_frame(Heartbeat(0, 0, seq=1)) == wire
    assert cobs_decode(wire[1:-1]) == bytes.fromhex("01 03 01 00 05 00 00 00 00 00 00 0D 2F")
