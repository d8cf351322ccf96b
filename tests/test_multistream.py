"""multistream-select machines: vectors, back to back, fragmentation, hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld._varint import encode_varint
from pyipld.errors import LocalProtocolError, RemoteProtocolError
from pyipld.libp2p.multistream import (
    PROTOCOL_ID,
    Dialer,
    Event,
    Listener,
    NegotiationFailed,
    ProtocolAgreed,
    ProtocolRefused,
    ProtocolRejected,
    State,
    encode_line,
)
from tests._libp2p_vectors import vectors


def drain(m: Dialer | Listener) -> list[Event]:
    out = []
    while (ev := m.next_event()) is not None:
        out.append(ev)
    return out


def shuttle(d: Dialer, l: Listener, rounds: int = 20) -> None:
    for _ in range(rounds):
        a, b = d.data_to_send(), l.data_to_send()
        if not a and not b:
            return
        if a and l.state not in (State.AGREED, State.FAILED):
            l.receive_data(a)
        if b and d.state not in (State.AGREED, State.FAILED):
            d.receive_data(b)


def test_line_vectors() -> None:
    for line, hexed in vectors("multistream").items():
        assert encode_line(line).hex() == hexed


def test_dialer_first_bytes() -> None:
    d = Dialer(["/noise"])
    v = vectors("multistream")
    assert d.data_to_send().hex() == v["/multistream/1.0.0"] + v["/noise"]


def test_back_to_back_with_fallback() -> None:
    d = Dialer(["/mplex/6.7.0", "/yamux/1.0.0"])
    l = Listener({"/yamux/1.0.0"})
    shuttle(d, l)
    assert drain(d) == [ProtocolRejected("/mplex/6.7.0"), ProtocolAgreed("/yamux/1.0.0")]
    assert drain(l) == [ProtocolRefused("/mplex/6.7.0"), ProtocolAgreed("/yamux/1.0.0")]
    assert d.state is State.AGREED and l.state is State.AGREED


def test_all_refused_is_an_event() -> None:
    d = Dialer(["/a", "/b"])
    l = Listener(set())
    shuttle(d, l)
    evs = drain(d)
    assert evs[-1] == NegotiationFailed(("/a", "/b"))
    assert d.state is State.FAILED
    with pytest.raises(LocalProtocolError):
        d.receive_data(b"x")


def test_trailing_data_after_agreement() -> None:
    # go-libp2p lazy mode: header, proposal and the first application bytes in one write
    l = Listener(["/ipfs/bitswap/1.2.0"])
    l.receive_data(encode_line(PROTOCOL_ID) + encode_line("/ipfs/bitswap/1.2.0") + b"\x05hello")
    assert drain(l) == [ProtocolAgreed("/ipfs/bitswap/1.2.0")]
    assert l.trailing_data() == b"\x05hello"
    v = vectors("multistream")
    assert l.data_to_send().hex() == v["/multistream/1.0.0"] + v["/ipfs/bitswap/1.2.0"]


def test_ls_answer_matches_helia() -> None:
    l = Listener(["/ipfs/bitswap/1.2.0", "/ipfs/id/1.0.0"])
    l.data_to_send()
    l.receive_data(encode_line(PROTOCOL_ID) + encode_line("ls"))
    body = bytes.fromhex(vectors("multistream_ls_response_helia_body"))
    assert l.data_to_send() == encode_varint(len(body)) + body


@given(st.lists(st.integers(1, 30), max_size=40))
def test_fragmentation_gives_same_events(cuts: list[int]) -> None:
    wire = encode_line(PROTOCOL_ID) + encode_line("/x") + encode_line("ls") + encode_line("/y") + b"tail"
    l = Listener(["/y"])
    pos = 0
    for c in cuts:
        if l.state is State.AGREED:
            break
        l.receive_data(wire[pos : pos + c])
        pos += c
    if l.state is not State.AGREED:
        l.receive_data(wire[pos:])
        pos = len(wire)
    assert drain(l) == [ProtocolRefused("/x"), ProtocolAgreed("/y")]
    assert l.trailing_data() + wire[pos:] == b"tail"


@pytest.mark.parametrize(
    "wire",
    [
        encode_line("/multistream/2.0.0"),  # wrong header
        b"\x05/noise",  # no newline
        encode_varint(1025) + b"a" * 1025,  # too long
        b"\xff\xff\xff",  # bad length varint
        encode_line(PROTOCOL_ID) + b"\x03\xff\xfe\n",  # not UTF-8
        encode_line(PROTOCOL_ID) + encode_line(PROTOCOL_ID),  # header twice
    ],
)
def test_listener_hostile(wire: bytes) -> None:
    l = Listener(["/noise"])
    with pytest.raises(RemoteProtocolError):
        l.receive_data(wire)
    assert l.state is State.CLOSED
    with pytest.raises(LocalProtocolError):
        l.receive_data(b"")


def test_dialer_hostile_answer() -> None:
    d = Dialer(["/noise"])
    with pytest.raises(RemoteProtocolError):
        d.receive_data(encode_line(PROTOCOL_ID) + encode_line("/tls/1.0.0"))


def test_eof_before_agreement() -> None:
    d = Dialer(["/noise"])
    d.receive_data(encode_line(PROTOCOL_ID))
    with pytest.raises(RemoteProtocolError):
        d.receive_data(b"")


def test_listener_caps_refusals() -> None:
    l = Listener([], max_proposals=3)
    l.receive_data(encode_line(PROTOCOL_ID))
    with pytest.raises(RemoteProtocolError):
        for i in range(10):
            l.receive_data(encode_line(f"/p{i}"))
    assert i == 3


def test_local_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        Dialer([])
    with pytest.raises(LocalProtocolError):
        encode_line("x" * 2000)


@given(st.binary(max_size=200))
def test_listener_fuzz(blob: bytes) -> None:
    l = Listener(["/a"])
    try:
        l.receive_data(blob)
    except RemoteProtocolError:
        assert l.state is State.CLOSED
