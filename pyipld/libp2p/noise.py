"""Sans-I/O Noise XX (``/noise``) with the libp2p handshake payload.

Specs: https://noiseprotocol.org/noise.html (rev 34) and
https://github.com/libp2p/specs/blob/master/noise/README.md

Theory of operation
-------------------
Protocol ``Noise_XX_25519_ChaChaPoly_SHA256``, empty prologue. Every message,
handshake or transport, is framed as ``uint16_be(len) ‖ message`` with
``len <= 65535``. The XX pattern::

    -> e                        (32 bytes, empty payload)
    <- e, ee, s, es             (responder's signed payload)
    -> s, se                    (initiator's signed payload), then Split()

States (initiator on the left, responder on the right)::

    AWAIT_MSG2 --msg2--> TRANSPORT        AWAIT_MSG1 --msg1--> AWAIT_MSG3 --msg3--> TRANSPORT
    TRANSPORT --frame--> TRANSPORT        TRANSPORT --EOF--> REMOTE_CLOSED (event ConnectionClosed;
                                                              we may still send, like TCP half-close)

The initiator queues message 1 at construction. The payload carries the
libp2p identity key and its signature over ``"noise-libp2p-static-key:" ‖
static_pub``; a bad key or signature, or a peer id other than
``expected_peer``, raises :class:`~pyipld.errors.RemoteProtocolError`, as does
any failed decryption, truncated frame or EOF during the handshake. The
machine then stays CLOSED. The early stream-muxer extension: the responder
lists its muxers in message 2; the initiator lists its own in message 3 only
when they share one (js-libp2p aborts otherwise); the selected muxer is the
first of the initiator's list that the responder listed.

Transport: :meth:`NoiseSession.send` encrypts into frames of at most 65519
plaintext bytes; nonces count from 0 per direction, little-endian in the last
8 of 12 nonce bytes. Randomness (static and ephemeral X25519 keys) is
injectable, so the fixture vectors replay byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum, auto
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .._pb import WIRE_LEN, field_bytes, iter_fields
from ..errors import DecodeError, LocalProtocolError, RemoteProtocolError
from .peer import Identity, PeerId, PublicKey, decode_public_key

__all__ = [
    "MAX_FRAME_BYTES",
    "MAX_PLAINTEXT_BYTES",
    "PROTOCOL_ID",
    "PROTOCOL_NAME",
    "SIGNATURE_PREFIX",
    "ConnectionClosed",
    "DataReceived",
    "Event",
    "HandshakeCompleted",
    "HandshakePayload",
    "NoiseSession",
    "State",
    "decode_handshake_payload",
    "encode_handshake_payload",
]

PROTOCOL_NAME: Final = b"Noise_XX_25519_ChaChaPoly_SHA256"  # 32 bytes: used as h without hashing
PROTOCOL_ID: Final = "/noise"  # the multistream id of this security protocol
SIGNATURE_PREFIX: Final = b"noise-libp2p-static-key:"
MAX_FRAME_BYTES: Final = 65535  # 2-byte length prefix
_TAG: Final = 16
MAX_PLAINTEXT_BYTES: Final = MAX_FRAME_BYTES - _TAG
_DH_LEN: Final = 32
_MAX_NONCE: Final = 2**64 - 1  # Noise reserves 2^64-1; never use it


@dataclass(frozen=True, slots=True)
class HandshakePayload:
    """``NoiseHandshakePayload`` (identity_key = 1, identity_sig = 2, extensions = 4)."""

    identity_key: bytes
    identity_sig: bytes
    stream_muxers: tuple[str, ...] = ()


def encode_handshake_payload(payload: HandshakePayload) -> bytes:
    out = field_bytes(1, payload.identity_key) + field_bytes(2, payload.identity_sig)
    if payload.stream_muxers:
        ext = b"".join(field_bytes(2, m) for m in payload.stream_muxers)
        out += field_bytes(4, ext)
    return out


def decode_handshake_payload(data: bytes) -> HandshakePayload:
    """Parse a handshake payload; unknown fields are skipped.

    Raises:
        DecodeError: malformed protobuf or missing identity fields.
    """
    key = sig = None
    muxers: list[str] = []
    for number, wire, value in iter_fields(data, "NoiseHandshakePayload"):
        if wire != WIRE_LEN:
            continue
        assert isinstance(value, bytes)
        if number == 1:
            key = value
        elif number == 2:
            sig = value
        elif number == 4:
            for n2, w2, v2 in iter_fields(value, "NoiseExtensions"):
                if n2 == 2 and w2 == WIRE_LEN:
                    assert isinstance(v2, bytes)
                    try:
                        muxers.append(v2.decode("utf-8"))
                    except UnicodeDecodeError:
                        raise DecodeError("NoiseExtensions: stream muxer is not UTF-8") from None
    if key is None or sig is None:
        raise DecodeError("NoiseHandshakePayload: identity_key and identity_sig are required")
    return HandshakePayload(key, sig, tuple(muxers))


@dataclass(frozen=True, slots=True)
class HandshakeCompleted:
    """The peer proved its identity; transport messages may flow.

    Attributes:
        remote_peer: the peer id derived from the remote identity key.
        remote_public_key: that key.
        remote_muxers: the remote's early-muxer list (maybe empty).
        selected_muxer: the muxer agreed in the handshake, or None (use multistream).
        handshake_hash: the final Noise ``h`` (channel binding).
    """

    remote_peer: PeerId
    remote_public_key: PublicKey
    remote_muxers: tuple[str, ...]
    selected_muxer: str | None
    handshake_hash: bytes


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Decrypted application bytes (all complete frames of one ``receive_data`` call)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the connection cleanly (EOF on a frame boundary)."""


Event = HandshakeCompleted | DataReceived | ConnectionClosed


class State(Enum):
    AWAIT_MSG1 = auto()
    AWAIT_MSG2 = auto()
    AWAIT_MSG3 = auto()
    TRANSPORT = auto()
    REMOTE_CLOSED = auto()
    CLOSED = auto()


class _In(Enum):
    MSG1 = auto()
    MSG2 = auto()
    MSG3 = auto()
    FRAME = auto()
    EOF = auto()


_TRANSITIONS: Final = {
    (State.AWAIT_MSG1, _In.MSG1): State.AWAIT_MSG3,
    (State.AWAIT_MSG2, _In.MSG2): State.TRANSPORT,
    (State.AWAIT_MSG3, _In.MSG3): State.TRANSPORT,
    (State.TRANSPORT, _In.FRAME): State.TRANSPORT,
    (State.TRANSPORT, _In.EOF): State.REMOTE_CLOSED,
}
_EXPECTED_INPUT: Final = {
    State.AWAIT_MSG1: _In.MSG1,
    State.AWAIT_MSG2: _In.MSG2,
    State.AWAIT_MSG3: _In.MSG3,
    State.TRANSPORT: _In.FRAME,
}


def _hkdf2(ck: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    temp = hmac.digest(ck, ikm, "sha256")
    o1 = hmac.digest(temp, b"\x01", "sha256")
    o2 = hmac.digest(temp, o1 + b"\x02", "sha256")
    return o1, o2


def _pub(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class _Cipher:
    """A Noise CipherState: ChaCha20-Poly1305 key plus a 64-bit counter."""

    __slots__ = ("aead", "n")

    def __init__(self, key: bytes) -> None:
        self.aead = ChaCha20Poly1305(key)
        self.n = 0

    def _nonce(self) -> bytes:
        if self.n >= _MAX_NONCE:
            raise LocalProtocolError("noise: nonce space exhausted; reconnect")
        nonce = b"\x00\x00\x00\x00" + self.n.to_bytes(8, "little")
        self.n += 1
        return nonce

    def encrypt(self, ad: bytes | None, plaintext: bytes | memoryview) -> bytes:
        return self.aead.encrypt(self._nonce(), plaintext, ad)  # any buffer: no copy first

    def decrypt(self, ad: bytes | None, ciphertext: bytes | memoryview) -> bytes:
        return self.aead.decrypt(self._nonce(), ciphertext, ad)


class NoiseSession:
    """One side of a libp2p Noise channel, from handshake to transport.

    Args:
        identity: our libp2p identity (signs the static key).
        initiator: True for the TCP dialer.
        expected_peer: the peer id the remote must prove (from ``/p2p/``); None accepts any.
        muxers: our early-muxer list (e.g. ``["/yamux/1.0.0"]``); empty disables it.
        static_private / ephemeral_private: fixed X25519 keys (test vectors).
        randbytes: randomness for keys not given (static first, then ephemeral).
    """

    def __init__(
        self,
        identity: Identity,
        *,
        initiator: bool,
        expected_peer: PeerId | None = None,
        muxers: Sequence[str] = (),
        static_private: bytes | None = None,
        ephemeral_private: bytes | None = None,
        randbytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.identity = identity
        self.initiator = initiator
        self.expected_peer = expected_peer
        self.muxers = tuple(muxers)
        self._s = X25519PrivateKey.from_private_bytes(static_private or randbytes(32))
        self._e = X25519PrivateKey.from_private_bytes(ephemeral_private or randbytes(32))
        self._s_pub = _pub(self._s)
        self._e_pub = _pub(self._e)
        self._re: X25519PublicKey | None = None
        self._rs: bytes = b""
        self._h = PROTOCOL_NAME
        self._ck = PROTOCOL_NAME
        self._k: _Cipher | None = None
        self._mix_hash(b"")  # empty prologue
        self._send: _Cipher | None = None
        self._recv: _Cipher | None = None
        self._in = bytearray()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self.remote_peer: PeerId | None = None
        self.remote_public_key: PublicKey | None = None
        self.selected_muxer: str | None = None
        self.handshake_hash: bytes | None = None
        if initiator:
            self.state = State.AWAIT_MSG2
            self._write_msg1()
        else:
            self.state = State.AWAIT_MSG1

    # -- symmetric state ------------------------------------------------------------
    def _mix_hash(self, data: bytes) -> None:
        self._h = hashlib.sha256(self._h + data).digest()

    def _mix_key(self, ikm: bytes) -> None:
        self._ck, key = _hkdf2(self._ck, ikm)
        self._k = _Cipher(key)

    def _encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ct = plaintext if self._k is None else self._k.encrypt(self._h, plaintext)
        self._mix_hash(ct)
        return ct

    def _decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        if self._k is None:
            pt = ciphertext
        else:
            try:
                pt = self._k.decrypt(self._h, ciphertext)
            except InvalidTag:
                raise self._fail("handshake message failed to decrypt") from None
        self._mix_hash(ciphertext)
        return pt

    def _dh(self, priv: X25519PrivateKey, pub: X25519PublicKey | bytes) -> bytes:
        try:
            key = pub if isinstance(pub, X25519PublicKey) else X25519PublicKey.from_public_bytes(pub)
            return priv.exchange(key)
        except ValueError as exc:  # low-order point -> all-zero secret
            raise self._fail(f"bad X25519 key from peer: {exc}") from exc

    def _split(self) -> None:
        k1, k2 = _hkdf2(self._ck, b"")
        first, second = _Cipher(k1), _Cipher(k2)
        self._send, self._recv = (first, second) if self.initiator else (second, first)
        self.handshake_hash = self._h
        self._k = None

    # -- payloads ---------------------------------------------------------------------
    def _our_payload(self, muxers: Sequence[str]) -> bytes:
        sig = self.identity.sign(SIGNATURE_PREFIX + self._s_pub)
        return encode_handshake_payload(
            HandshakePayload(self.identity.public_key.to_protobuf(), sig, tuple(muxers))
        )

    def _check_payload(self, raw: bytes) -> HandshakePayload:
        try:
            payload = decode_handshake_payload(raw)
            key = decode_public_key(payload.identity_key)
        except DecodeError as exc:
            raise self._fail(f"bad handshake payload: {exc}") from exc
        if not key.verify(SIGNATURE_PREFIX + self._rs, payload.identity_sig):
            raise self._fail("identity signature over the static key does not verify")
        peer = PeerId.from_public_key(key)
        if self.expected_peer is not None and peer != self.expected_peer:
            raise self._fail(f"remote is {peer}, expected {self.expected_peer}")
        self.remote_peer = peer
        self.remote_public_key = key
        return payload

    # -- handshake messages ---------------------------------------------------------------
    def _frame(self, message: bytes) -> None:
        if len(message) > MAX_FRAME_BYTES:
            raise LocalProtocolError(f"noise message of {len(message)} bytes > {MAX_FRAME_BYTES}")
        self._out += len(message).to_bytes(2, "big") + message

    def _write_msg1(self) -> None:
        self._mix_hash(self._e_pub)
        self._frame(self._e_pub + self._encrypt_and_hash(b""))

    def _read_msg1(self, msg: bytes) -> None:
        if len(msg) < _DH_LEN:
            raise self._fail(f"message 1 of {len(msg)} bytes < {_DH_LEN}")
        self._re = self._load_pub(msg[:_DH_LEN])
        self._mix_hash(msg[:_DH_LEN])
        self._decrypt_and_hash(msg[_DH_LEN:])  # libp2p: empty; content ignored
        # message 2: e, ee, s, es + payload
        out = bytearray(self._e_pub)
        self._mix_hash(self._e_pub)
        self._mix_key(self._dh(self._e, self._re))
        out += self._encrypt_and_hash(self._s_pub)
        self._mix_key(self._dh(self._s, self._re))
        out += self._encrypt_and_hash(self._our_payload(self.muxers))
        self._frame(bytes(out))

    def _read_msg2(self, msg: bytes) -> None:
        if len(msg) < _DH_LEN + _DH_LEN + _TAG + _TAG:
            raise self._fail(f"message 2 of {len(msg)} bytes is too short")
        self._re = self._load_pub(msg[:_DH_LEN])
        self._mix_hash(msg[:_DH_LEN])
        self._mix_key(self._dh(self._e, self._re))
        self._rs = self._decrypt_and_hash(msg[_DH_LEN : 2 * _DH_LEN + _TAG])
        self._mix_key(self._dh(self._e, self._rs))
        payload = self._check_payload(self._decrypt_and_hash(msg[2 * _DH_LEN + _TAG :]))
        shared = [m for m in self.muxers if m in payload.stream_muxers]
        self.selected_muxer = shared[0] if shared else None
        # message 3: s, se + payload (our muxers only when we share one: js aborts otherwise)
        out = bytearray(self._encrypt_and_hash(self._s_pub))
        self._mix_key(self._dh(self._s, self._re))
        out += self._encrypt_and_hash(self._our_payload(self.muxers if shared else ()))
        self._frame(bytes(out))
        self._split()
        self._complete(payload)

    def _read_msg3(self, msg: bytes) -> None:
        if len(msg) < _DH_LEN + _TAG + _TAG:
            raise self._fail(f"message 3 of {len(msg)} bytes is too short")
        self._rs = self._decrypt_and_hash(msg[: _DH_LEN + _TAG])
        self._mix_key(self._dh(self._e, self._rs))
        payload = self._check_payload(self._decrypt_and_hash(msg[_DH_LEN + _TAG :]))
        shared = [m for m in payload.stream_muxers if m in self.muxers]
        self.selected_muxer = shared[0] if shared else None
        self._split()
        self._complete(payload)

    def _load_pub(self, raw: bytes) -> X25519PublicKey:
        try:
            return X25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            raise self._fail(f"bad X25519 public key: {exc}") from exc

    def _complete(self, payload: HandshakePayload) -> None:
        assert self.remote_peer is not None and self.remote_public_key is not None
        assert self.handshake_hash is not None
        self._events.append(
            HandshakeCompleted(
                self.remote_peer,
                self.remote_public_key,
                payload.stream_muxers,
                self.selected_muxer,
                self.handshake_hash,
            )
        )

    # -- the sans-I/O surface ---------------------------------------------------------------
    def _fail(self, message: str) -> RemoteProtocolError:
        self.state = State.CLOSED
        return RemoteProtocolError(f"noise: {message}")

    def _move(self, inp: _In) -> None:
        nxt = _TRANSITIONS.get((self.state, inp))
        if nxt is None:
            raise self._fail(f"unexpected {inp.name} in state {self.state.name}")
        self.state = nxt

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the peer; ``b""`` means EOF.

        Raises:
            RemoteProtocolError: authentication, decryption or framing failure.
            LocalProtocolError: the session is already CLOSED.
        """
        if self.state in (State.CLOSED, State.REMOTE_CLOSED):
            raise LocalProtocolError(f"noise: receive_data in state {self.state.name}")
        if not data:
            if self._in or self.state is not State.TRANSPORT:
                raise self._fail(f"EOF in state {self.state.name} with {len(self._in)} bytes pending")
            self._move(_In.EOF)
            self._events.append(ConnectionClosed())
            return
        # Frames are decrypted straight out of an immutable ``bytes`` (no copy into our
        # buffer first). A frame split across calls waits in ``_in`` and is completed from
        # the head of the next ``data``; the rest is decrypted in place again.
        buf = data if isinstance(data, bytes) else bytes(data)
        plain: list[bytes] = []
        pos = 0
        end = len(buf)
        view = memoryview(buf)
        try:
            if self._in:
                if len(self._in) < 2:
                    self._in += view[: 2 - len(self._in)]
                    pos = 1
                length = (self._in[0] << 8) | self._in[1]
                take = min(end - pos, 2 + length - len(self._in))
                self._in += view[pos : pos + take]
                pos += take
                if len(self._in) < 2 + length:
                    return
                frame = bytes(self._in)
                self._in.clear()
                self._handle_frame(frame, 2, len(frame), plain)
            while end - pos >= 2:
                length = (buf[pos] << 8) | buf[pos + 1]
                if end - pos - 2 < length:
                    break
                start = pos + 2
                pos = start + length
                if self.state is State.TRANSPORT:
                    plain.append(self._decrypt_frame(view[start:pos]))
                    continue
                self._handle_frame(buf, start, pos, plain)
            if pos < end:
                self._in += view[pos:]
        finally:
            if plain:
                self._events.append(DataReceived(plain[0] if len(plain) == 1 else b"".join(plain)))

    def _handle_frame(self, buf: bytes, start: int, stop: int, plain: list[bytes]) -> None:
        """One whole frame ``buf[start:stop]`` (without its length prefix)."""
        if self.state is State.TRANSPORT:
            plain.append(self._decrypt_frame(memoryview(buf)[start:stop]))
            return
        inp = _EXPECTED_INPUT.get(self.state)
        if inp is None:
            raise self._fail(f"frame in state {self.state.name}")
        handler = {_In.MSG1: self._read_msg1, _In.MSG2: self._read_msg2, _In.MSG3: self._read_msg3}[inp]
        handler(buf[start:stop])
        self._move(inp)

    def _decrypt_frame(self, msg: bytes | memoryview) -> bytes:
        if len(msg) < _TAG:
            raise self._fail(f"transport frame of {len(msg)} bytes < tag size")
        assert self._recv is not None
        try:
            return self._recv.decrypt(None, msg)
        except InvalidTag:
            raise self._fail("transport frame failed to decrypt") from None

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    @property
    def buffered_bytes(self) -> int:
        """Bytes held: a partial inbound frame plus output not yet taken."""
        return len(self._in) + len(self._out)

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt application bytes into transport frames (queued for data_to_send).

        Raises:
            LocalProtocolError: the handshake is not complete or the session is closed.
        """
        if self.state not in (State.TRANSPORT, State.REMOTE_CLOSED) or self._send is None:
            raise LocalProtocolError(f"noise: send in state {self.state.name}")
        view = memoryview(data)
        for start in range(0, len(view), MAX_PLAINTEXT_BYTES):
            ct = self._send.encrypt(None, view[start : start + MAX_PLAINTEXT_BYTES])
            self._out += len(ct).to_bytes(2, "big")
            self._out += ct
