"""A tiny hand-written protobuf codec for the fixed schemas pyipld parses (UnixFS, libp2p).

Only what the libp2p messages need: varint (wire type 0) and length-delimited
(wire type 2) fields on encode; on decode every wire type is understood well
enough to skip unknown fields (0, 1, 2, 5). Groups (3, 4) are rejected.
Spec: https://protobuf.dev/programming-guides/encoding/
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, Literal, overload

from ._varint import encode_varint
from .errors import DecodeError

__all__ = [
    "WIRE_I32", "WIRE_I64", "WIRE_LEN", "WIRE_VARINT", "encode_pb_varint", "field_bytes", "field_varint", "iter_fields", "read_pb_varint",
]

WIRE_VARINT = 0
WIRE_I64 = 1
WIRE_LEN = 2
WIRE_I32 = 5

BytesLike = bytes | bytearray | memoryview
_MASK64: Final = (1 << 64) - 1


def encode_pb_varint(value: int) -> bytes:
    """A protobuf varint: int32/int64 negatives sign-extended to 64 bits (10 bytes)."""
    return encode_varint(value & _MASK64 if value < 0 else value)


def field_varint(number: int, value: int) -> bytes:
    """Encode a varint field (int32/enum/bool; negatives as 10-byte two's complement)."""
    return encode_varint(number << 3 | WIRE_VARINT) + encode_pb_varint(value)


def field_bytes(number: int, value: BytesLike | str) -> bytes:
    """Encode a length-delimited field (bytes, string, embedded message)."""
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return encode_varint(number << 3 | WIRE_LEN) + encode_varint(len(raw)) + raw


def read_pb_varint(data: BytesLike, offset: int, what: str = "protobuf") -> tuple[int, int]:
    """A protobuf varint at ``offset`` (non-minimal allowed, up to 10 bytes, kept to 64 bits).

    Returns ``(value, bytes_read)``; raises :class:`DecodeError` naming ``what``.
    """
    value = shift = 0
    end = len(data)
    i = offset
    while True:
        if i >= end:
            raise DecodeError(f"{what}: truncated varint at offset {offset}", offset=offset)
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & _MASK64, i - offset
        shift += 7
        if shift >= 70:
            raise DecodeError(f"{what}: varint longer than 10 bytes at offset {offset}", offset=offset)


@overload
def iter_fields(
    data: BytesLike, what: str = ..., *, copy: Literal[True] = ...
) -> Iterator[tuple[int, int, int | bytes]]: ...
@overload
def iter_fields(
    data: BytesLike, what: str = ..., *, copy: Literal[False]
) -> Iterator[tuple[int, int, int | memoryview]]: ...
def iter_fields(
    data: BytesLike, what: str = "protobuf", *, copy: bool = True
) -> Iterator[tuple[int, int, int | bytes | memoryview]]:
    """Yield ``(field_number, wire_type, value)`` for every field.

    Varints come back as ``int``, length-delimited and fixed fields as ``bytes``
    (``copy=False``: as zero-copy ``memoryview`` slices of ``data``, for large payloads).

    Raises:
        DecodeError: truncated input, a group, or field number 0.
    """
    buf = data if isinstance(data, memoryview) else memoryview(data)
    end = len(buf)
    off = 0
    while off < end:
        key, n = read_pb_varint(buf, off, what)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise DecodeError(f"{what}: field number 0 at offset {off}", offset=off)
        off += n
        if wire == WIRE_VARINT:
            value, n = read_pb_varint(buf, off, what)
            off += n
            yield number, wire, value
        elif wire == WIRE_LEN:
            length, n = read_pb_varint(buf, off, what)
            off += n
            if off + length > end:
                raise DecodeError(
                    f"{what}: field {number} length {length} runs past the end ({end - off} left)",
                    offset=off,
                )
            yield number, wire, bytes(buf[off : off + length]) if copy else buf[off : off + length]
            off += length
        elif wire in (WIRE_I64, WIRE_I32):
            size = 8 if wire == WIRE_I64 else 4
            if off + size > end:
                raise DecodeError(f"{what}: truncated fixed field {number}", offset=off)
            yield number, wire, bytes(buf[off : off + size]) if copy else buf[off : off + size]
            off += size
        else:
            raise DecodeError(f"{what}: unsupported wire type {wire} at offset {off}", offset=off)
