"""The one-copy CAR splitter gives what CarV1Decoder gives, for any chunking; bad input is a typed error."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld._varint import encode_varint
from pyipld.car.v1 import CarEnded, CarV1Decoder, HeaderRead, encode_header
from pyipld.errors import CarError, DecodeError, IntegrityError, LimitExceededError
from pyipld.http._car_stream import CarSplitter

from ._gateway import raw_cid, section

ROOT = raw_cid(b"root")


def car(blocks: list[bytes]) -> bytes:
    return encode_header([ROOT]) + b"".join(section(raw_cid(b), b) for b in blocks)


def split(body: bytes, cuts: list[int], limit: int = 1 << 20) -> list[tuple[bytes, bytes]]:
    splitter = CarSplitter(max_section_bytes=limit)
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    out: list[tuple[bytes, bytes]] = []
    for a, b in itertools.pairwise(points):
        out.extend(splitter.feed(body[a:b]))
    splitter.close()
    return out


def reference(body: bytes) -> list[tuple[bytes, bytes]]:
    dec = CarV1Decoder()
    dec.receive_data(body)
    dec.receive_data(b"")
    out = []
    while True:
        ev = dec.next_event()
        if ev is None or isinstance(ev, CarEnded):
            return out
        if not isinstance(ev, HeaderRead):
            out.append((ev.cid, ev.data))


@settings(max_examples=200, deadline=None)
@given(blocks=st.lists(st.binary(min_size=1, max_size=3000), max_size=8),
       cuts=st.lists(st.integers(0, 1 << 16), max_size=30))
def test_same_sections_as_reference_for_any_chunking(blocks: list[bytes], cuts: list[int]) -> None:
    body = car(blocks)
    assert split(body, cuts) == reference(body)


@settings(max_examples=300, deadline=None)
@given(junk=st.binary(max_size=200), cuts=st.lists(st.integers(0, 300), max_size=5))
def test_garbage_is_a_decode_error(junk: bytes, cuts: list[int]) -> None:
    try:
        split(encode_header([ROOT]) + junk, cuts)
    except (DecodeError, IntegrityError):
        pass


def test_errors() -> None:
    body = car([b"a" * 100, b"b" * 50])
    with pytest.raises(CarError):
        split(body[:-1], [])  # ends inside a section
    with pytest.raises(CarError):
        split(encode_header([ROOT])[:5], [])  # inside the header
    with pytest.raises(LimitExceededError):
        split(body, [], limit=80)  # checked before the section is buffered
    with pytest.raises(CarError):
        split(encode_header([ROOT]) + b"\x00", [])
    bad = encode_header([ROOT]) + encode_varint(36 + 3) + raw_cid(b"abc") + b"abd"
    with pytest.raises(IntegrityError):
        split(bad, [7])


def test_one_copy_of_large_blocks() -> None:
    """A 2 MiB block arriving in 64 KiB pieces comes out whole and correct."""
    big = hashlib.sha256(b"x").digest() * (1 << 16)
    body = car([big])
    assert split(body, list(range(0, len(body), 65536)), limit=(2 << 20) + 64) == [(raw_cid(big), big)]
