"""Unsigned varints: known bytes, round trips, and every way a varint can be wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld._varint import MAX_VARINT_BYTES, decode_varint, encode_varint, varint_size
from pyipld.errors import DecodeError, VarintError

KNOWN = [(0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (255, "ff01"), (300, "ac02"),
         (16384, "808001"), (2**63 - 1, "ffffffffffffffff7f")]


@pytest.mark.parametrize(("value", "hexbytes"), KNOWN)
def test_known_bytes(value: int, hexbytes: str) -> None:
    assert encode_varint(value).hex() == hexbytes
    assert decode_varint(bytes.fromhex(hexbytes)) == (value, len(hexbytes) // 2)
    assert varint_size(value) == len(hexbytes) // 2


@given(st.integers(0, 2**63 - 1), st.binary(max_size=4), st.binary(max_size=4))
def test_round_trip_at_offset(value: int, before: bytes, after: bytes) -> None:
    enc = encode_varint(value)
    assert len(enc) == varint_size(value)
    assert decode_varint(before + enc + after, len(before)) == (value, len(enc))


@pytest.mark.parametrize(("hexbytes", "why"), [
    ("", "truncated"), ("80", "truncated"), ("ff80", "truncated"),
    ("8000", "non-minimal"), ("ff00", "non-minimal"),
    ("ffffffffffffffffff01", "longer than"),
])
def test_bad_varints(hexbytes: str, why: str) -> None:
    with pytest.raises(VarintError, match=why):
        decode_varint(bytes.fromhex(hexbytes))


def test_max_bytes_is_nine() -> None:
    assert MAX_VARINT_BYTES == 9
    with pytest.raises(VarintError):
        decode_varint(b"\xff" * 9 + b"\x01")
    assert decode_varint(b"\xff" * 9 + b"\x01", max_bytes=10)[1] == 10


def test_negative_is_refused() -> None:
    with pytest.raises(ValueError):
        encode_varint(-1)


@given(st.binary(max_size=12))
def test_garbage_returns_or_raises_decode_error(data: bytes) -> None:
    try:
        value, n = decode_varint(data)
    except DecodeError:
        return
    assert encode_varint(value) == data[:n]
