"""Identify message codec, length-prefix helper, ping echo."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld.errors import DecodeError, LimitExceededError
from pyipld.libp2p.identify import (
    MAX_IDENTIFY_BYTES,
    PING_SIZE,
    Identify,
    PingEcho,
    build_identify,
    decode_identify,
    encode_identify,
    encode_lp,
    maybe_decode_lp,
)
from pyipld.libp2p.multiaddr import Multiaddr
from pyipld.libp2p.peer import Identity


def test_roundtrip_and_field_order() -> None:
    ident = Identity.from_seed(bytes(range(32)))
    addr = Multiaddr.parse("/ip4/127.0.0.1/tcp/4001").bytes
    msg = Identify(agent_version="pyipld/0.1.0", public_key=ident.public_key.to_protobuf(),
                   listen_addrs=(addr,), observed_addr=addr, protocols=("/ipfs/bitswap/1.2.0", "/ipfs/id/1.0.0"))
    raw = encode_identify(msg)
    assert decode_identify(raw) == msg
    # field numbers appear in ascending order: 1 publicKey, 2, 3, 4, 5, 6
    assert raw[0] == 0x0A and raw[38] == 0x12
    expected = (b"\x0a\x24" + ident.public_key.to_protobuf() + b"\x12\x08" + addr
                + b"\x1a\x13/ipfs/bitswap/1.2.0\x1a\x0e/ipfs/id/1.0.0\x22\x08" + addr
                + b"\x2a\x0aipfs/0.1.0\x32\x0cpyipld/0.1.0")
    assert raw == expected


def test_build_identify_is_length_prefixed() -> None:
    out = build_identify(public_key=b"k", protocols=["/a"], agent_version="x")
    body, used = maybe_decode_lp(out, 100) or (b"", 0)
    assert used == len(out)
    assert decode_identify(body).protocols == ("/a",)


def test_unknown_fields_are_skipped() -> None:
    raw = b"\x3a\x03abc" + b"\x38\x05" + encode_identify(Identify(protocols=("/p",)))
    assert decode_identify(raw).protocols == ("/p",)


def test_limits_and_errors() -> None:
    with pytest.raises(LimitExceededError):
        decode_identify(b"\x1a\x00" * (MAX_IDENTIFY_BYTES // 2 + 1))
    with pytest.raises(DecodeError):
        decode_identify(b"\x1a\x02\xff\xfe")  # not UTF-8
    with pytest.raises(DecodeError):
        decode_identify(b"\x1a\x05ab")  # truncated
    with pytest.raises(LimitExceededError):
        maybe_decode_lp(b"\xff\xff\x03", 1000)
    assert maybe_decode_lp(b"\x05abc", 10) is None
    assert maybe_decode_lp(b"", 10) is None
    assert maybe_decode_lp(encode_lp(b"abc") + b"rest", 10) == (b"abc", 4)


@given(st.binary(max_size=200))
def test_decode_fuzz(blob: bytes) -> None:
    try:
        decode_identify(blob)
    except DecodeError:
        pass


@given(st.lists(st.integers(1, 50), max_size=20))
def test_ping_echo_any_fragmentation(cuts: list[int]) -> None:
    payload = bytes(range(PING_SIZE)) * 3
    echo = PingEcho()
    out = b""
    pos = 0
    for c in cuts:
        echo.receive_data(payload[pos : pos + c])
        pos += c
        out += echo.data_to_send()
        assert len(out) % PING_SIZE == 0
    echo.receive_data(payload[pos:])
    out += echo.data_to_send()
    assert out == payload and echo.pings == 3
