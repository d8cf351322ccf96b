"""CIDs: text and binary forms, v0/v1 rules, the builder, verification."""

from __future__ import annotations

import hashlib

import multiformats
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld.cid import (
    CID,
    DAG_PB,
    RAW,
    CidBuilder,
    b32decode,
    b32encode,
    b58decode,
    b58encode,
)
from pyipld.errors import CIDError, ConfigError, DecodeError
from pyipld.multihash import SHA2_256

V0 = "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"
V1_RAW = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
HELLO_LEAF = bytes.fromhex("0a110802120b68656c6c6f20776f726c64180b")


def test_v0_round_trip_and_fields() -> None:
    cid = CID.decode(V0)
    assert (cid.version, cid.codec, cid.hash_code) == (0, DAG_PB, 0x12)
    assert str(cid) == V0 and len(cid.bytes) == 34
    assert cid.verify(HELLO_LEAF)
    assert cid.to_v1().encode() == "bafybeihykld7uyxzogax6vgyvag42y7464eywpf55gxi5qpoisibh3c5wa"


def test_v1_raw() -> None:
    cid = CID.decode(V1_RAW)
    assert (cid.version, cid.codec) == (1, RAW) and len(cid.bytes) == 36
    assert cid.digest == hashlib.sha256(b"hello world").digest()
    assert CID.from_bytes(cid.bytes) == cid and CID.parse(cid.bytes) == cid and CID.parse(cid) is cid


def test_other_multibases_through_multiformats() -> None:
    cid = CID.decode(V1_RAW)
    b58 = multiformats.CID.decode(V1_RAW).encode("base58btc")
    assert CID.decode(b58) == cid
    b64 = multiformats.CID.decode(V1_RAW).encode("base64")
    assert CID.decode(b64) == cid


def test_matches_multiformats_bytes() -> None:
    for text in (V0, V1_RAW):
        assert CID.decode(text).bytes == bytes(multiformats.CID.decode(text))


@pytest.mark.parametrize("bad", ["", "Qm", "bafy!", "xyz", "Qm" + "0" * 44, "zzzz"])
def test_bad_text(bad: str) -> None:
    with pytest.raises(CIDError):
        CID.decode(bad)


def test_bad_binary() -> None:
    with pytest.raises(CIDError, match="unsupported CID version"):
        CID.from_bytes(b"\x02\x55\x12\x20" + bytes(32))
    with pytest.raises(CIDError, match="trailing"):
        CID.from_bytes(CID.decode(V1_RAW).bytes + b"\x00")
    with pytest.raises(CIDError, match="truncated"):
        CID.from_bytes(b"\x12\x20" + bytes(10))
    with pytest.raises(CIDError):
        CID(0, RAW, b"\x12\x20" + bytes(32))


def test_builder_rules() -> None:
    v0 = CidBuilder.create(0)
    assert v0.cid_bytes(DAG_PB, HELLO_LEAF) == CID.decode(V0).bytes
    assert v0.cid_bytes(RAW, b"hello world") == CID.decode(V1_RAW).bytes  # raw leaves are always v1
    inline = CidBuilder.create(1, inline_limit=32)
    assert str(inline.cid(RAW, b"")) == "bafkqaaa"
    with pytest.raises(ConfigError, match="unknown CID version"):
        CidBuilder(2)
    with pytest.raises(ConfigError, match="CIDv0 only supports sha2-256"):
        CidBuilder.create(0, "sha2-512")
    assert CidBuilder().hash is SHA2_256


def test_decode_prefix_reads_one_cid() -> None:
    a, b = CID.decode(V0), CID.decode(V1_RAW)
    buf = a.bytes + b.bytes
    first, n = CID.decode_prefix(buf)
    second, m = CID.decode_prefix(buf, n)
    assert (first, second, n + m) == (a, b, len(buf))


@pytest.mark.parametrize("n", [0, 1, 57, 58, 59, 3363, 3364, 3365, 195111, 195112, 58**4 - 1, 58**4])
def test_b58_at_digit_pair_boundaries(n: int) -> None:
    for width in (4, 6):  # with leading zero bytes ("1"s)
        data = n.to_bytes(width, "big")
        assert "z" + b58encode(data) == multiformats.multibase.encode(data, "base58btc")


@given(st.binary(max_size=40))
def test_base_codecs_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data
    assert "z" + b58encode(data) == multiformats.multibase.encode(data, "base58btc")  # an independent encoder
    assert b32decode(b32encode(data)) == data


@given(st.binary(max_size=60))
def test_garbage_binary(data: bytes) -> None:
    try:
        cid = CID.from_bytes(data)
    except DecodeError:
        return
    assert cid.bytes == data
