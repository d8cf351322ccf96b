"""Noise XX machine: fixture vectors, back to back, fragmentation, hostile input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from pyipld.libp2p.noise import (
    MAX_FRAME_BYTES,
    ConnectionClosed,
    DataReceived,
    HandshakeCompleted,
    HandshakePayload,
    NoiseSession,
    State,
    decode_handshake_payload,
    encode_handshake_payload,
)
from pyipld.libp2p.peer import Identity, PeerId
from tests._libp2p_vectors import vectors

YAMUX = "/yamux/1.0.0"
MPLEX = "/mplex/6.7.0"


def _h(v: dict[str, Any], key: str) -> bytes:
    return bytes.fromhex(v[key])


def vector_pair(**kw: Any) -> tuple[NoiseSession, NoiseSession, dict[str, Any]]:
    v = vectors("noise_xx")
    ini = Identity.from_seed(_h(v, "ed25519_seed_initiator"))
    res = Identity.from_seed(_h(v, "ed25519_seed_responder"))
    i = NoiseSession(ini, initiator=True, expected_peer=kw.get("expected", res.peer_id),
                     muxers=[YAMUX], static_private=_h(v, "x25519_static_initiator_priv"),
                     ephemeral_private=_h(v, "x25519_ephemeral_initiator_priv"))
    r = NoiseSession(res, initiator=False, muxers=[YAMUX, MPLEX],
                     static_private=_h(v, "x25519_static_responder_priv"),
                     ephemeral_private=_h(v, "x25519_ephemeral_responder_priv"))
    return i, r, v


def events(s: NoiseSession) -> list[object]:
    out = []
    while (ev := s.next_event()) is not None:
        out.append(ev)
    return out


def test_fixture_vectors_byte_for_byte() -> None:
    i, r, v = vector_pair()
    m1 = i.data_to_send()
    assert m1.hex() == v["wire_msg1_with_len_prefix"]
    assert m1[2:].hex() == v["msg1"]
    r.receive_data(m1)
    m2 = r.data_to_send()
    assert m2[2:].hex() == v["msg2"] and len(m2) - 2 == v["msg2_layout"]["total_len"]
    i.receive_data(m2)
    m3 = i.data_to_send()
    assert m3[2:].hex() == v["msg3"] and len(m3) - 2 == v["msg3_layout"]["total_len"]
    r.receive_data(m3)
    (ei,) = events(i)
    (er,) = events(r)
    assert isinstance(ei, HandshakeCompleted) and isinstance(er, HandshakeCompleted)
    assert ei.handshake_hash.hex() == er.handshake_hash.hex() == v["handshake_hash"]
    assert str(ei.remote_peer) == v["peer_id_responder"]
    assert str(er.remote_peer) == v["peer_id_initiator"]
    assert ei.remote_muxers == (YAMUX, MPLEX) and er.remote_muxers == (YAMUX,)
    assert ei.selected_muxer == er.selected_muxer == YAMUX
    i.send(b"hello")
    c1 = i.data_to_send()
    assert c1[2:].hex() == v["transport_i2r_first_ct_of_hello"]
    r.send(b"world")
    c2 = r.data_to_send()
    assert c2[2:].hex() == v["transport_r2i_first_ct_of_world"]
    r.receive_data(c1)
    i.receive_data(c2)
    assert events(r) == [DataReceived(b"hello")]
    assert events(i) == [DataReceived(b"world")]


def test_payload_plaintext_vectors() -> None:
    v = vectors("noise_xx")
    for key, muxers in (("payload_responder_plain", (YAMUX, MPLEX)), ("payload_initiator_plain", (YAMUX,))):
        raw = _h(v, key)
        p = decode_handshake_payload(raw)
        assert p.stream_muxers == muxers
        assert encode_handshake_payload(p) == raw


def handshake(i: NoiseSession, r: NoiseSession) -> None:
    for _ in range(4):
        out = i.data_to_send()
        if out:
            r.receive_data(out)
        out = r.data_to_send()
        if out:
            i.receive_data(out)


def random_pair(i_muxers: list[str], r_muxers: list[str]) -> tuple[NoiseSession, NoiseSession]:
    a, b = Identity.generate(), Identity.generate()
    return (NoiseSession(a, initiator=True, expected_peer=b.peer_id, muxers=i_muxers),
            NoiseSession(b, initiator=False, muxers=r_muxers))


@pytest.mark.parametrize(
    "i_mux,r_mux,selected,r_sees",
    [
        ([YAMUX], [YAMUX], YAMUX, (YAMUX,)),
        ([YAMUX], [], None, ()),  # responder lists none: initiator sends none (js would abort)
        ([], [YAMUX], None, ()),
        ([YAMUX], [MPLEX], None, ()),
        ([MPLEX, YAMUX], [YAMUX, MPLEX], MPLEX, (MPLEX, YAMUX)),  # initiator's order wins
    ],
)
def test_early_muxer_selection(i_mux: list[str], r_mux: list[str], selected: str | None,
                               r_sees: tuple[str, ...]) -> None:
    i, r = random_pair(i_mux, r_mux)
    handshake(i, r)
    (ei,), (er,) = events(i), events(r)
    assert isinstance(ei, HandshakeCompleted) and isinstance(er, HandshakeCompleted)
    assert ei.selected_muxer == er.selected_muxer == selected
    assert er.remote_muxers == r_sees


def test_wrong_peer_id_is_rejected() -> None:
    other = Identity.generate().peer_id
    i, r, _ = vector_pair(expected=other)
    r.receive_data(i.data_to_send())
    with pytest.raises(RemoteProtocolError, match="expected"):
        i.receive_data(r.data_to_send())
    assert i.state is State.CLOSED
    with pytest.raises(LocalProtocolError):
        i.receive_data(b"\x00")


class _BadSigner(NoiseSession):
    def _our_payload(self, muxers: Any) -> bytes:
        sig = self.identity.sign(b"noise-libp2p-static-key:" + b"\x00" * 32)  # signs the wrong key
        return encode_handshake_payload(HandshakePayload(self.identity.public_key.to_protobuf(), sig, ()))


class _OtherKeyClaimer(NoiseSession):
    def _our_payload(self, muxers: Any) -> bytes:  # claims a key it cannot sign for
        impostor = Identity.generate()
        sig = self.identity.sign(b"noise-libp2p-static-key:" + self._s_pub)
        return encode_handshake_payload(HandshakePayload(impostor.public_key.to_protobuf(), sig, ()))


@pytest.mark.parametrize("cls", [_BadSigner, _OtherKeyClaimer])
def test_bad_signature_rejected_by_initiator(cls: type[NoiseSession]) -> None:
    i = NoiseSession(Identity.generate(), initiator=True)
    r = cls(Identity.generate(), initiator=False)
    r.receive_data(i.data_to_send())
    with pytest.raises(RemoteProtocolError, match="signature"):
        i.receive_data(r.data_to_send())


def test_bad_signature_rejected_by_responder() -> None:
    i = _BadSigner(Identity.generate(), initiator=True)
    r = NoiseSession(Identity.generate(), initiator=False)
    r.receive_data(i.data_to_send())
    i.receive_data(r.data_to_send())
    with pytest.raises(RemoteProtocolError, match="signature"):
        r.receive_data(i.data_to_send())


def test_tampered_messages() -> None:
    i, r, _ = vector_pair()
    r.receive_data(i.data_to_send())
    m2 = bytearray(r.data_to_send())
    m2[100] ^= 1
    with pytest.raises(RemoteProtocolError, match="decrypt"):
        i.receive_data(bytes(m2))
    i, r, _ = vector_pair()
    handshake(i, r)
    i.send(b"secret")
    ct = bytearray(i.data_to_send())
    ct[-1] ^= 1
    with pytest.raises(RemoteProtocolError, match="decrypt"):
        r.receive_data(bytes(ct))


def test_replayed_frame_fails() -> None:
    i, r, _ = vector_pair()
    handshake(i, r)
    i.send(b"x")
    ct = i.data_to_send()
    r.receive_data(ct)
    with pytest.raises(RemoteProtocolError):
        r.receive_data(ct)  # nonce moved on


def test_short_and_truncated() -> None:
    r = NoiseSession(Identity.generate(), initiator=False)
    with pytest.raises(RemoteProtocolError, match="message 1"):
        r.receive_data(b"\x00\x05hello")
    r = NoiseSession(Identity.generate(), initiator=False)
    r.receive_data(b"\x00\x20abc")
    with pytest.raises(RemoteProtocolError, match="EOF"):
        r.receive_data(b"")
    i, r, _ = vector_pair()
    handshake(i, r)
    with pytest.raises(RemoteProtocolError, match="tag"):
        r.receive_data(b"\x00\x03abc")


def test_clean_eof_and_local_misuse() -> None:
    i, r, _ = vector_pair()
    with pytest.raises(LocalProtocolError):
        i.send(b"too early")
    handshake(i, r)
    r.receive_data(b"")
    assert events(r)[-1] == ConnectionClosed()
    assert r.state is State.REMOTE_CLOSED
    r.send(b"still allowed")  # like a TCP half-close, our direction stays open
    i.receive_data(r.data_to_send())
    assert events(i)[-1] == DataReceived(b"still allowed")
    with pytest.raises(LocalProtocolError):
        r.receive_data(b"\x00")


def test_large_send_is_split_into_max_frames() -> None:
    i, r, _ = vector_pair()
    handshake(i, r)
    data = bytes(range(256)) * 1000  # 256000 bytes -> 4 frames
    i.send(data)
    wire = i.data_to_send()
    pos, sizes = 0, []
    while pos < len(wire):
        n = int.from_bytes(wire[pos : pos + 2], "big")
        sizes.append(n)
        pos += 2 + n
    assert max(sizes) == MAX_FRAME_BYTES and len(sizes) == 4
    r.receive_data(wire)
    assert b"".join(e.data for e in events(r) if isinstance(e, DataReceived)) == data


@settings(max_examples=40)
@given(st.lists(st.integers(1, 200), max_size=30), st.binary(max_size=3000))
def test_fragmentation(cuts: list[int], payload: bytes) -> None:
    """The handshake and transport give the same results however the bytes are split."""
    i, r, _ = vector_pair()
    wire1 = i.data_to_send()

    def feed(machine: NoiseSession, wire: bytes) -> None:
        pos = 0
        for c in cuts:
            machine.receive_data(wire[pos : pos + c]) if wire[pos : pos + c] else None
            pos += c
        if wire[pos:]:
            machine.receive_data(wire[pos:])

    feed(r, wire1)
    feed(i, r.data_to_send())
    feed(r, i.data_to_send())
    assert i.state is State.TRANSPORT and r.state is State.TRANSPORT
    i.send(payload)
    i.send(b"!")
    feed(r, i.data_to_send())
    evs = events(r)
    assert isinstance(evs[0], HandshakeCompleted)
    assert b"".join(e.data for e in evs[1:] if isinstance(e, DataReceived)) == payload + b"!"


@settings(max_examples=60)
@given(st.binary(max_size=400))
def test_responder_fuzz(blob: bytes) -> None:
    r = NoiseSession(Identity.generate(), initiator=False)
    try:
        r.receive_data(blob)
        r.receive_data(b"")
    except RemoteProtocolError:
        assert r.state is State.CLOSED


def test_payload_decode_errors() -> None:
    with pytest.raises(DecodeError):
        decode_handshake_payload(b"\x0a\x01\x00")  # no signature
    p = decode_handshake_payload(b"\x0a\x00\x12\x00\x1a\x02hi\x22\x04\x12\x02/a")  # field 3 skipped
    assert p.stream_muxers == ("/a",)


def test_peer_id_from_handshake_is_remote_key() -> None:
    i, r = random_pair([], [])
    handshake(i, r)
    (ei,) = events(i)
    assert isinstance(ei, HandshakeCompleted)
    assert ei.remote_peer == PeerId.from_public_key(ei.remote_public_key) == r.identity.peer_id


@settings(max_examples=30)
@given(st.lists(st.integers(1, 300), max_size=30), st.binary(max_size=5000))
def test_fragments_in_a_reused_buffer(cuts: list[int], payload: bytes) -> None:
    """Split frames are completed from the next read; nothing kept aliases the caller's buffer."""
    i, r, _ = vector_pair()

    def feed(machine: NoiseSession, wire: bytes) -> None:
        pos = 0
        for c in [*cuts, len(wire)]:
            buf = bytearray(wire[pos : pos + c])
            pos += c
            if buf:
                machine.receive_data(buf)
                buf[:] = b"\xff" * len(buf)  # the caller reuses its buffer

    feed(r, i.data_to_send())
    feed(i, r.data_to_send())
    feed(r, i.data_to_send())
    for _ in range(3):
        i.send(payload)
    feed(r, i.data_to_send())
    got = b"".join(e.data for e in events(r) if isinstance(e, DataReceived))
    assert got == payload * 3
