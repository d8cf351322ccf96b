"""The UnixFS ``Data`` protobuf (boxo ipld/unixfs/pb/unixfs.proto), byte-exact.

Fields are written in field-number order, ``blocksizes`` unpacked, ``filesize``
whenever it is set (even 0), mtime nanos only when > 0, mode only when non-zero —
exactly what boxo emits (shared/spec/unixfs-importer.md §1.4, §6).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .._varint import decode_varint, encode_varint
from ..errors import UnixFSError

__all__ = ["DataType", "Mtime", "UnixFSData", "decode_unixfs_data", "encode_unixfs_data"]

_PB_VARINT_BYTES = 10


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


def _varint_field(tag: int, value: int) -> bytes:
    return bytes((tag,)) + encode_varint(value)


def _int64(value: int) -> int:
    return value & 0xFFFFFFFFFFFFFFFF  # two's complement: negative -> 10-byte varint


def encode_unixfs_data(msg: UnixFSData) -> bytes:
    """Serialize ``msg`` exactly as Go protobuf does."""
    out = bytearray(_varint_field(0x08, int(msg.type)))
    if msg.data is not None:
        out += b"\x12" + encode_varint(len(msg.data)) + msg.data
    if msg.filesize is not None:
        out += _varint_field(0x18, msg.filesize)
    for size in msg.blocksizes:
        out += _varint_field(0x20, size)
    if msg.hash_type is not None:
        out += _varint_field(0x28, msg.hash_type)
    if msg.fanout is not None:
        out += _varint_field(0x30, msg.fanout)
    if msg.mode:
        out += _varint_field(0x38, msg.mode)
    if msg.mtime is not None:
        body = _varint_field(0x08, _int64(msg.mtime.seconds))
        if msg.mtime.nanos > 0:
            body += b"\x15" + msg.mtime.nanos.to_bytes(4, "little")
        out += b"\x42" + encode_varint(len(body)) + body
    return bytes(out)


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_mtime(buf: memoryview) -> Mtime:
    seconds: int | None = None
    nanos = 0
    i = 0
    while i < len(buf):
        key, n = decode_varint(buf, i, max_bytes=_PB_VARINT_BYTES)
        i += n
        if key == 0x08:
            value, n = decode_varint(buf, i, max_bytes=_PB_VARINT_BYTES)
            seconds = _signed64(value)
            i += n
        elif key == 0x15:
            if i + 4 > len(buf):
                raise UnixFSError("truncated mtime nanos")
            nanos = int.from_bytes(buf[i : i + 4], "little")
            i += 4
        else:
            raise UnixFSError(f"unexpected field key {key} in mtime")
    if seconds is None:
        raise UnixFSError("mtime without seconds")
    if nanos >= 1_000_000_000:
        raise UnixFSError(f"mtime nanos {nanos} out of range")
    return Mtime(seconds, nanos)


def decode_unixfs_data(raw: bytes | bytearray | memoryview) -> UnixFSData:
    """Parse a UnixFS Data message.

    Raises:
        UnixFSError: malformed protobuf, unknown type, missing Type.
    """
    buf = memoryview(raw)
    fields: dict[str, object] = {}
    blocksizes: list[int] = []
    i = 0
    try:
        while i < len(buf):
            key, n = decode_varint(buf, i, max_bytes=_PB_VARINT_BYTES)
            i += n
            field, wire = key >> 3, key & 7
            if wire == 0:
                value, n = decode_varint(buf, i, max_bytes=_PB_VARINT_BYTES)
                i += n
                if field == 1:
                    fields["type"] = DataType(value)
                elif field == 3:
                    fields["filesize"] = value
                elif field == 4:
                    blocksizes.append(value)
                elif field == 5:
                    fields["hash_type"] = value
                elif field == 6:
                    fields["fanout"] = value
                elif field == 7:
                    fields["mode"] = value
                else:
                    raise UnixFSError(f"unexpected varint field {field}")
            elif wire == 2:
                length, n = decode_varint(buf, i, max_bytes=_PB_VARINT_BYTES)
                i += n
                if length > len(buf) - i:
                    raise UnixFSError(f"field {field} length {length} runs past the end", offset=i)
                chunk = buf[i : i + length]
                i += length
                if field == 2:
                    fields["data"] = bytes(chunk)
                elif field == 8:
                    fields["mtime"] = _decode_mtime(chunk)
                elif field == 4:  # tolerate packed blocksizes from other writers
                    j = 0
                    while j < len(chunk):
                        value, n = decode_varint(chunk, j, max_bytes=_PB_VARINT_BYTES)
                        blocksizes.append(value)
                        j += n
                else:
                    raise UnixFSError(f"unexpected bytes field {field}")
            else:
                raise UnixFSError(f"unexpected wire type {wire} for field {field}")
    except UnixFSError:
        raise
    except ValueError as exc:  # DataType(value) with an unknown type, varint errors
        raise UnixFSError(f"invalid UnixFS data: {exc}") from exc
    if "type" not in fields:
        raise UnixFSError("UnixFS data without Type")
    return UnixFSData(blocksizes=tuple(blocksizes), **fields)  # type: ignore[arg-type]
