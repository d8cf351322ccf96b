"""Identify (``/ipfs/id/1.0.0``) messages and the ping (``/ipfs/ping/1.0.0``) echo.

Specs: https://github.com/libp2p/specs/blob/master/identify/README.md and
https://github.com/libp2p/specs/blob/master/ping/ping.md

Identify: the side that *accepts* the stream writes one length-prefixed
protobuf message and closes. js-libp2p requires ``publicKey``; Helia only
sends wants to peers whose ``protocols`` list bitswap, so a server must list
``/ipfs/bitswap/1.2.0``. Messages are capped at 8 KiB (js and go).

Ping: the dialer writes 32 random bytes, the listener echoes every 32-byte
chunk until EOF. :class:`PingEcho` is the sans-I/O listener side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from .._pb import WIRE_LEN, field_bytes, iter_fields
from .._varint import decode_varint, encode_varint
from ..errors import DecodeError, LimitExceededError, VarintError

__all__ = [
    "IDENTIFY_PROTOCOL",
    "IDENTIFY_PUSH_PROTOCOL",
    "MAX_IDENTIFY_BYTES",
    "PING_PROTOCOL",
    "PING_SIZE",
    "PROTOCOL_VERSION",
    "Identify",
    "PingEcho",
    "build_identify",
    "decode_identify",
    "encode_identify",
    "encode_lp",
    "maybe_decode_lp",
]

IDENTIFY_PROTOCOL: Final = "/ipfs/id/1.0.0"
IDENTIFY_PUSH_PROTOCOL: Final = "/ipfs/id/push/1.0.0"
PING_PROTOCOL: Final = "/ipfs/ping/1.0.0"
PING_SIZE: Final = 32
MAX_IDENTIFY_BYTES: Final = 8192  # js-libp2p and go-libp2p identify message limit
PROTOCOL_VERSION: Final = "ipfs/0.1.0"


@dataclass(frozen=True, slots=True)
class Identify:
    """The identify message (all fields optional on the wire)."""

    protocol_version: str | None = PROTOCOL_VERSION
    agent_version: str | None = None
    public_key: bytes | None = None
    listen_addrs: tuple[bytes, ...] = ()
    observed_addr: bytes | None = None
    protocols: tuple[str, ...] = ()
    signed_peer_record: bytes | None = field(default=None, repr=False)


def encode_identify(msg: Identify) -> bytes:
    """The protobuf body (fields in number order; no length prefix)."""
    out = bytearray()
    if msg.public_key is not None:
        out += field_bytes(1, msg.public_key)
    for addr in msg.listen_addrs:
        out += field_bytes(2, addr)
    for proto in msg.protocols:
        out += field_bytes(3, proto)
    if msg.observed_addr is not None:
        out += field_bytes(4, msg.observed_addr)
    if msg.protocol_version is not None:
        out += field_bytes(5, msg.protocol_version)
    if msg.agent_version is not None:
        out += field_bytes(6, msg.agent_version)
    if msg.signed_peer_record is not None:
        out += field_bytes(8, msg.signed_peer_record)
    return bytes(out)


def decode_identify(data: bytes | bytearray | memoryview) -> Identify:
    """Parse an identify protobuf body; unknown fields are skipped.

    Raises:
        DecodeError: malformed protobuf or text that is not UTF-8.
        LimitExceededError: more than 8 KiB.
    """
    if len(data) > MAX_IDENTIFY_BYTES:
        raise LimitExceededError(f"identify message of {len(data)} bytes > {MAX_IDENTIFY_BYTES}")
    pv = av = None
    pk = obs = spr = None
    addrs: list[bytes] = []
    protos: list[str] = []
    try:
        for number, wire, value in iter_fields(data, "Identify"):
            if wire != WIRE_LEN:
                continue
            assert isinstance(value, bytes)
            if number == 1:
                pk = value
            elif number == 2:
                addrs.append(value)
            elif number == 3:
                protos.append(value.decode("utf-8"))
            elif number == 4:
                obs = value
            elif number == 5:
                pv = value.decode("utf-8")
            elif number == 6:
                av = value.decode("utf-8")
            elif number == 8:
                spr = value
    except UnicodeDecodeError as exc:
        raise DecodeError(f"Identify: text field is not UTF-8: {exc}") from None
    return Identify(pv, av, pk, tuple(addrs), obs, tuple(protos), spr)


def encode_lp(body: bytes) -> bytes:
    """``uvarint(len) ‖ body``."""
    return encode_varint(len(body)) + body


def maybe_decode_lp(buf: bytes | bytearray, max_bytes: int) -> tuple[bytes, int] | None:
    """One length-prefixed message from the start of ``buf``, or None if incomplete.

    Returns:
        ``(body, bytes_used)``.

    Raises:
        LimitExceededError: the prefix announces more than ``max_bytes``.
        VarintError: a malformed prefix.
    """
    try:
        length, n = decode_varint(buf, 0)
    except VarintError as exc:
        if "truncated" in str(exc):
            return None
        raise
    if length > max_bytes:
        raise LimitExceededError(f"length-prefixed message of {length} bytes > {max_bytes}")
    if len(buf) < n + length:
        return None
    return bytes(buf[n : n + length]), n + length


def build_identify(
    *,
    public_key: bytes,
    protocols: Sequence[str],
    agent_version: str,
    listen_addrs: Sequence[bytes] = (),
    observed_addr: bytes | None = None,
) -> bytes:
    """The length-prefixed identify answer our side writes."""
    return encode_lp(
        encode_identify(
            Identify(
                protocol_version=PROTOCOL_VERSION,
                agent_version=agent_version,
                public_key=public_key,
                listen_addrs=tuple(listen_addrs),
                observed_addr=observed_addr,
                protocols=tuple(protocols),
            )
        )
    )


class PingEcho:
    """Sans-I/O ping listener: echoes every complete 32-byte payload."""

    def __init__(self) -> None:
        self._in = bytearray()
        self._out = bytearray()
        self.pings = 0

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        self._in += data
        whole = len(self._in) - len(self._in) % PING_SIZE
        if whole:
            self._out += self._in[:whole]
            del self._in[:whole]
            self.pings += whole // PING_SIZE

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out
