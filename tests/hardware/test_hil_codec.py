"""The fast encoders the HIL loop uses at 500 Hz produce the same bytes as the byte-wise reference definitions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from robot_ac.hardware.protocol import cobs_decode, cobs_encode, cobs_encode_reference, crc16, crc16_reference

# Random bytes, and runs built from 0x00 / 0x01 / 0xFF where block boundaries (254) and zeros are likely.
DATA = st.binary(max_size=1100) | st.lists(st.sampled_from([0, 1, 255]), max_size=800).map(bytes)


@settings(max_examples=200, deadline=None)
@given(DATA)
def test_run_wise_cobs_matches_byte_wise_reference(data: bytes) -> None:
    assert cobs_encode(data) == cobs_encode_reference(data)
    assert cobs_decode(cobs_encode(data)) == data


def test_cobs_block_boundaries() -> None:
    for n in (0, 1, 253, 254, 255, 507, 508, 509):
        run = b"\x01" * n
        for data in (run, run + b"\x00", b"\x00" + run, run + b"\x00" + run, run + b"\x00\x00"):
            assert cobs_encode(data) == cobs_encode_reference(data), (n, len(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1100), st.integers(0, 0xFFFF))
def test_crc_hqx_matches_table_reference(data: bytes, init: int) -> None:
    assert crc16(data, init) == crc16_reference(data, init)
    assert crc16(b"123456789") == 0x29B1  # CRC RevEng catalogue check value of CRC-16/CCITT-FALSE
