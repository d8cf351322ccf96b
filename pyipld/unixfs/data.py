"""The UnixFS ``Data`` protobuf (boxo ipld/unixfs/pb/unixfs.proto), byte-exact.

Fields are written in field-number order, ``blocksizes`` unpacked, ``filesize``
whenever it is set (even 0), mtime nanos only when > 0, mode only when non-zero —
exactly what boxo emits (shared/spec/unixfs-importer.md §1.4, §6).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .._pb import WIRE_I32, WIRE_LEN, WIRE_VARINT, field_bytes, field_varint, iter_fields, read_pb_varint
from ..errors import UnixFSError

__all__ = ["DataType", "Mtime", "UnixFSData", "decode_unixfs_data", "encode_unixfs_data"]



class DataType(IntEnum):
    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


@dataclass(frozen=True, slots=True)
class Mtime:
    """IPFSTimestamp: seconds since the epoch (may be negative) and nanoseconds."""

    seconds: int
    nanos: int = 0


@dataclass(frozen=True, slots=True)
class UnixFSData:
    """One UnixFS Data message. ``None`` means the optional field is absent."""

    type: DataType
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = ()
    hash_type: int | None = None
    fanout: int | None = None
    mode: int | None = None
    mtime: Mtime | None = None


def encode_unixfs_data(msg: UnixFSData) -> bytes:
    """Serialize ``msg`` exactly as Go protobuf does."""
    out = bytearray(field_varint(1, int(msg.type)))
    if msg.data is not None:
        out += field_bytes(2, msg.data)
    if msg.filesize is not None:
        out += field_varint(3, msg.filesize)
    for size in msg.blocksizes:
        out += field_varint(4, size)
    if msg.hash_type is not None:
        out += field_varint(5, msg.hash_type)
    if msg.fanout is not None:
        out += field_varint(6, msg.fanout)
    if msg.mode:
        out += field_varint(7, msg.mode)
    if msg.mtime is not None:
        body = field_varint(1, msg.mtime.seconds)  # int64: negatives are 10-byte varints
        if msg.mtime.nanos > 0:
            body += b"\x15" + msg.mtime.nanos.to_bytes(4, "little")
        out += field_bytes(8, body)
    return bytes(out)


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_mtime(buf: bytes) -> Mtime:
    seconds: int | None = None
    nanos = 0
    for number, wire, value in iter_fields(buf, "UnixFS mtime"):
        if (number, wire) == (1, WIRE_VARINT):
            assert isinstance(value, int)
            seconds = _signed64(value)
        elif (number, wire) == (2, WIRE_I32):
            assert isinstance(value, bytes)
            nanos = int.from_bytes(value, "little")
        else:
            raise UnixFSError(f"unexpected field {number} (wire type {wire}) in mtime")
    if seconds is None:
        raise UnixFSError("mtime without seconds")
    if nanos >= 1_000_000_000:
        raise UnixFSError(f"mtime nanos {nanos} out of range")
    return Mtime(seconds, nanos)


_VARINT_FIELDS = {1: "type", 3: "filesize", 5: "hash_type", 6: "fanout", 7: "mode"}


def decode_unixfs_data(raw: bytes | bytearray | memoryview) -> UnixFSData:
    """Parse a UnixFS Data message.

    Raises:
        UnixFSError: malformed protobuf, unknown field or type, missing Type.
    """
    fields: dict[str, object] = {}
    blocksizes: list[int] = []
    try:
        for number, wire, value in iter_fields(raw, "UnixFS data"):
            if wire == WIRE_VARINT and number in _VARINT_FIELDS:
                assert isinstance(value, int)
                fields[_VARINT_FIELDS[number]] = DataType(value) if number == 1 else value
            elif (number, wire) == (4, WIRE_VARINT):
                assert isinstance(value, int)
                blocksizes.append(value)
            elif (number, wire) == (2, WIRE_LEN):
                fields["data"] = value
            elif (number, wire) == (8, WIRE_LEN):
                assert isinstance(value, bytes)
                fields["mtime"] = _decode_mtime(value)
            elif (number, wire) == (4, WIRE_LEN):  # tolerate packed blocksizes from other writers
                assert isinstance(value, bytes)
                blocksizes.extend(_iter_packed(value))
            elif wire in (WIRE_VARINT, WIRE_LEN):
                kind = "varint" if wire == WIRE_VARINT else "bytes"
                raise UnixFSError(f"unexpected {kind} field {number}")
            else:
                raise UnixFSError(f"unexpected wire type {wire} for field {number}")
    except UnixFSError:
        raise
    except ValueError as exc:  # DataType(value) with an unknown type, protobuf DecodeError
        raise UnixFSError(f"invalid UnixFS data: {exc}") from exc
    if "type" not in fields:
        raise UnixFSError("UnixFS data without Type")
    return UnixFSData(blocksizes=tuple(blocksizes), **fields)  # type: ignore[arg-type]


def _iter_packed(buf: bytes) -> list[int]:
    values = []
    offset = 0
    while offset < len(buf):
        value, n = read_pb_varint(buf, offset, "UnixFS blocksizes")
        values.append(value)
        offset += n
    return values
