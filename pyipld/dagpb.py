"""dag-pb: a hand-written, byte-exact PBNode/PBLink codec.

Encoding follows go-codec-dagpb as boxo uses it: every link before Data, and
inside a link Hash, Name, Tsize in that order, each written when present (kubo
always sets Name and Tsize, so a file link carries ``12 00``). The decoder is
strict (ipld specs/codecs/dag-pb/spec.md): known fields only, in order, no
duplicates, a Hash that parses as a CID. Links are never re-sorted on decode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._varint import decode_varint, encode_varint
from .cid import CID
from .errors import DagPBError, DecodeError, VarintError

__all__ = ["PBLink", "PBNode", "decode_pbnode", "encode_pblink", "encode_pbnode"]

_PB_VARINT_BYTES = 10  # protobuf varints carry up to 64 bits


@dataclass(frozen=True, slots=True)
class PBLink:
    """One dag-pb link.

    Attributes:
        cid: the binary CID of the target block.
        name: the link name as raw bytes, ``None`` if absent.
        tsize: cumulative size of the target sub-DAG, ``None`` if absent.
    """

    cid: bytes
    name: bytes | None = b""
    tsize: int | None = None

    @property
    def target(self) -> CID:
        """The target as a :class:`~pyipld.cid.CID`."""
        return CID.from_bytes(self.cid)


@dataclass(frozen=True, slots=True)
class PBNode:
    """A dag-pb node: ordered links and optional data."""

    links: tuple[PBLink, ...] = ()
    data: bytes | None = None


def _field_bytes(tag: int, value: bytes) -> bytes:
    return bytes((tag,)) + encode_varint(len(value)) + value


def encode_pblink(link: PBLink) -> bytes:
    """The PBLink message body (without the enclosing field header)."""
    out = _field_bytes(0x0A, link.cid)
    if link.name is not None:
        out += _field_bytes(0x12, link.name)
    if link.tsize is not None:
        out += b"\x18" + encode_varint(link.tsize)
    return out


def encode_pbnode(links: Sequence[PBLink], data: bytes | None) -> bytes:
    """Encode a node: links in the given order, then Data when not ``None``."""
    parts = [_field_bytes(0x12, encode_pblink(link)) for link in links]
    if data is not None:
        parts.append(_field_bytes(0x0A, data))
    return b"".join(parts)


def _read_key(buf: memoryview, i: int, where: str) -> tuple[int, int, int]:
    try:
        key, n = decode_varint(buf, i, max_bytes=_PB_VARINT_BYTES)
    except VarintError as exc:
        raise DagPBError(f"{where}: bad field key at offset {i}: {exc}", offset=i) from exc
    return key >> 3, key & 7, i + n


def _read_bytes(buf: memoryview, i: int, where: str) -> tuple[memoryview, int]:
    try:
        length, n = decode_varint(buf, i, max_bytes=_PB_VARINT_BYTES)
    except VarintError as exc:
        raise DagPBError(f"{where}: bad length at offset {i}: {exc}", offset=i) from exc
    start = i + n
    if length > len(buf) - start:
        raise DagPBError(f"{where}: length {length} runs past the end at offset {i}", offset=i)
    return buf[start : start + length], start + length


def _decode_link(buf: memoryview, base: int) -> PBLink:
    cid: bytes | None = None
    name: bytes | None = None
    tsize: int | None = None
    i = 0
    last_field = 0
    while i < len(buf):
        field, wire, i = _read_key(buf, i, "PBLink")
        if field <= last_field:
            raise DagPBError(f"PBLink: field {field} out of order or duplicated", offset=base + i)
        last_field = field
        if field == 1 and wire == 2:
            raw, i = _read_bytes(buf, i, "PBLink.Hash")
            try:
                CID.from_bytes(raw)
            except DecodeError as exc:
                raise DagPBError(f"Invalid Hash field found in link, expected CID ({exc})", offset=base) from exc
            cid = bytes(raw)
        elif field == 2 and wire == 2:
            raw, i = _read_bytes(buf, i, "PBLink.Name")
            name = bytes(raw)
        elif field == 3 and wire == 0:
            try:
                tsize, n = decode_varint(buf, i, max_bytes=_PB_VARINT_BYTES)
            except VarintError as exc:
                raise DagPBError(f"PBLink.Tsize: {exc}", offset=base + i) from exc
            i += n
        else:
            raise DagPBError(f"PBLink: unexpected field {field} wire type {wire}", offset=base + i)
    if cid is None:
        raise DagPBError("Invalid Hash field found in link, expected CID", offset=base)
    return PBLink(cid, name, tsize)


def decode_pbnode(block: bytes | bytearray | memoryview) -> PBNode:
    """Strictly decode a dag-pb block.

    Raises:
        DagPBError: anything that is not canonical-compatible dag-pb.
    """
    buf = memoryview(block)
    links: list[PBLink] = []
    data: bytes | None = None
    links_before_data = False
    i = 0
    while i < len(buf):
        field, wire, i = _read_key(buf, i, "PBNode")
        if field == 1 and wire == 2:
            if data is not None:
                raise DagPBError("duplicate Data section", offset=i)
            raw, i = _read_bytes(buf, i, "PBNode.Data")
            data = bytes(raw)
            links_before_data = bool(links)
        elif field == 2 and wire == 2:
            if links_before_data:
                raise DagPBError("duplicate Links section", offset=i)
            start = i
            raw, i = _read_bytes(buf, i, "PBNode.Links")
            links.append(_decode_link(raw, start))
        else:
            raise DagPBError(f"PBNode: unexpected field {field} wire type {wire}", offset=i)
    return PBNode(tuple(links), data)
