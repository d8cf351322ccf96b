"""Multiaddr text/binary for the protocols a TCP libp2p dialer needs.

Spec: https://github.com/multiformats/multiaddr — binary is the concatenation
of ``uvarint(code) ‖ value`` for each component. Supported: ``ip4`` (4 bytes),
``ip6`` (16), ``tcp`` (2-byte big-endian port), ``dns``/``dns4``/``dns6``/
``dnsaddr`` (uvarint length ‖ UTF-8) and ``p2p`` (text alias ``ipfs``; uvarint
length ‖ peer-id multihash).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

from .._varint import decode_varint, encode_varint
from ..errors import CIDError, DecodeError
from .peer import PeerId

__all__ = ["Multiaddr"]

# name -> (code, fixed size or -1 for length-prefixed)
_PROTOCOLS: Final = {
    "ip4": (0x04, 4),
    "tcp": (0x06, 2),
    "ip6": (0x29, 16),
    "dns": (0x35, -1),
    "dns4": (0x36, -1),
    "dns6": (0x37, -1),
    "dnsaddr": (0x38, -1),
    "p2p": (0x01A5, -1),
}
_BY_CODE: Final = {code: (name, size) for name, (code, size) in _PROTOCOLS.items()}
_MAX_VALUE: Final = 255  # DNS names are at most 253 bytes, peer ids at most 44


@dataclass(frozen=True, slots=True)
class Multiaddr:
    """An immutable multiaddr as ``((protocol, text value), ...)``."""

    components: tuple[tuple[str, str], ...]

    # -- parsing ------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> Multiaddr:
        """Parse the text form, e.g. ``/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…``.

        Raises:
            DecodeError: unknown protocol or bad value.
        """
        if not text.startswith("/"):
            raise DecodeError(f"multiaddr {text!r} does not start with '/'")
        parts = text.strip("/").split("/")
        out: list[tuple[str, str]] = []
        i = 0
        while i < len(parts):
            name = "p2p" if parts[i] == "ipfs" else parts[i]
            if name not in _PROTOCOLS:
                raise DecodeError(f"unsupported multiaddr protocol {parts[i]!r} in {text!r}")
            if i + 1 >= len(parts):
                raise DecodeError(f"multiaddr {text!r}: /{name} needs a value")
            value = parts[i + 1]
            _encode_value(name, value)  # validate
            if name == "ip6":
                value = str(ipaddress.IPv6Address(value))
            elif name == "p2p":
                value = str(PeerId.decode(value))  # normalise CID form to base58
            out.append((name, value))
            i += 2
        return cls(tuple(out))

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Multiaddr:
        """Parse the binary form (identify's listenAddrs / observedAddr)."""
        out: list[tuple[str, str]] = []
        off = 0
        while off < len(data):
            code, n = decode_varint(data, off)
            off += n
            if code not in _BY_CODE:
                raise DecodeError(f"unsupported multiaddr protocol code 0x{code:x}", offset=off)
            name, size = _BY_CODE[code]
            if size < 0:
                size, n = decode_varint(data, off)
                off += n
                if size > _MAX_VALUE:
                    raise DecodeError(f"multiaddr /{name} value of {size} bytes", offset=off)
            if off + size > len(data):
                raise DecodeError(f"truncated multiaddr /{name} value", offset=off)
            raw = bytes(data[off : off + size])
            off += size
            out.append((name, _decode_value(name, raw)))
        return cls(tuple(out))

    # -- forms ----------------------------------------------------------------------
    def __str__(self) -> str:
        return "".join(f"/{name}/{value}" for name, value in self.components)

    def __repr__(self) -> str:
        return f"Multiaddr({str(self)!r})"

    @property
    def bytes(self) -> bytes:
        out = bytearray()
        for name, value in self.components:
            out += encode_varint(_PROTOCOLS[name][0])
            out += _encode_value(name, value)
        return bytes(out)

    # -- helpers ---------------------------------------------------------------------
    @property
    def peer_id(self) -> PeerId | None:
        """The ``/p2p/`` component, if any."""
        for name, value in self.components:
            if name == "p2p":
                return PeerId.decode(value)
        return None

    def without_peer_id(self) -> Multiaddr:
        return Multiaddr(tuple(c for c in self.components if c[0] != "p2p"))

    def with_peer_id(self, peer: PeerId) -> Multiaddr:
        return Multiaddr(self.without_peer_id().components + (("p2p", str(peer)),))

    def tcp_address(self) -> tuple[str, int]:
        """``(host, port)`` of an ``/ip4|ip6|dns*/…/tcp/PORT`` address.

        Raises:
            DecodeError: the address does not start with a host and a tcp port.
        """
        comps = self.components
        if len(comps) < 2 or comps[1][0] != "tcp" or comps[0][0] not in ("ip4", "ip6", "dns", "dns4", "dns6"):
            raise DecodeError(f"{self} is not a TCP multiaddr (/ip4|ip6|dns*/HOST/tcp/PORT)")
        return comps[0][1], int(comps[1][1])

    @classmethod
    def from_tcp(cls, host: str, port: int, peer: PeerId | None = None) -> Multiaddr:
        """``/ip4|ip6/HOST/tcp/PORT[/p2p/ID]`` for a socket address."""
        ip = ipaddress.ip_address(host.split("%", 1)[0])
        comps: tuple[tuple[str, str], ...] = (("ip4" if ip.version == 4 else "ip6", str(ip)), ("tcp", str(port)))
        if peer is not None:
            comps += (("p2p", str(peer)),)
        return cls(comps)


def _encode_value(name: str, value: str) -> bytes:
    try:
        if name == "ip4":
            return ipaddress.IPv4Address(value).packed
        if name == "ip6":
            return ipaddress.IPv6Address(value).packed
        if name == "tcp":
            if not value.isdigit() or int(value) > 0xFFFF:
                raise ValueError(f"port {value!r}")
            return int(value).to_bytes(2, "big")
        if name == "p2p":
            raw = PeerId.decode(value).multihash
        else:
            raw = value.encode("utf-8")
            if not raw or len(raw) > _MAX_VALUE:
                raise ValueError(f"name of {len(raw)} bytes")
        return encode_varint(len(raw)) + raw
    except (ValueError, CIDError) as exc:
        raise DecodeError(f"bad multiaddr /{name} value {value!r}: {exc}") from exc


def _decode_value(name: str, raw: bytes) -> str:
    try:
        if name == "ip4":
            return str(ipaddress.IPv4Address(raw))
        if name == "ip6":
            return str(ipaddress.IPv6Address(raw))
        if name == "tcp":
            return str(int.from_bytes(raw, "big"))
        if name == "p2p":
            return str(PeerId(raw))
        return raw.decode("utf-8")
    except (ValueError, CIDError) as exc:
        raise DecodeError(f"bad multiaddr /{name} value: {exc}") from exc
