"""The one protobuf mini-codec shared by bitswap messages, identify, noise and peer records."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld._pb import encode_pb_varint, field_bytes, field_varint, iter_fields, read_pb_varint
from pyipld.errors import DecodeError


def test_varint_forms() -> None:
    assert encode_pb_varint(-1) == b"\xff" * 9 + b"\x01"  # int32 -1: sign-extended to 10 bytes
    assert read_pb_varint(b"\x81\x00", 0) == (1, 2)  # non-minimal is legal protobuf
    assert read_pb_varint(b"\xff" * 9 + b"\x7f", 0) == ((1 << 64) - 1, 10)  # kept to 64 bits
    with pytest.raises(DecodeError, match="x: varint longer than 10 bytes"):
        read_pb_varint(b"\xff" * 11, 0, "x")
    with pytest.raises(DecodeError, match="x: truncated varint at offset 1"):
        read_pb_varint(b"\x00\x80", 1, "x")


@given(st.integers(-(1 << 63), (1 << 64) - 1), st.binary(max_size=40))
def test_fields_round_trip(number: int, blob: bytes) -> None:
    msg = field_varint(1, number) + field_bytes(2, blob)
    fields = list(iter_fields(msg))
    assert fields == [(1, 0, number & ((1 << 64) - 1)), (2, 2, blob)]
    assert isinstance(fields[1][2], bytes)
    views = list(iter_fields(msg, copy=False))
    assert isinstance(views[1][2], memoryview) and bytes(views[1][2]) == blob


@pytest.mark.parametrize("hexmsg", ["12", "1205aa", "08", "0b", "00", "0d0000"])
def test_bad_messages(hexmsg: str) -> None:
    with pytest.raises(DecodeError):
        list(iter_fields(bytes.fromhex(hexmsg)))
