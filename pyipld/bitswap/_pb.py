"""A tiny hand-written protobuf codec for the few fixed libp2p schemas.

Only what the libp2p messages need: varint (wire type 0) and length-delimited
(wire type 2) fields on encode; on decode every wire type is understood well
enough to skip unknown fields (0, 1, 2, 5). Groups (3, 4) are rejected.
Spec: https://protobuf.dev/programming-guides/encoding/
"""

from __future__ import annotations

from collections.abc import Iterator

from .._varint import decode_varint, encode_varint
from ..errors import DecodeError, VarintError

__all__ = ["WIRE_LEN", "WIRE_VARINT", "field_bytes", "field_varint", "iter_fields"]

WIRE_VARINT = 0
WIRE_I64 = 1
WIRE_LEN = 2
WIRE_I32 = 5

BytesLike = bytes | bytearray | memoryview


def field_varint(number: int, value: int) -> bytes:
    """Encode a varint field (int32/enum/bool; negatives as 10-byte two's complement)."""
    if value < 0:
        value &= (1 << 64) - 1
    return encode_varint(number << 3 | WIRE_VARINT) + _varint64(value)


def field_bytes(number: int, value: BytesLike | str) -> bytes:
    """Encode a length-delimited field (bytes, string, embedded message)."""
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return encode_varint(number << 3 | WIRE_LEN) + encode_varint(len(raw)) + raw


def _varint64(value: int) -> bytes:
    # protobuf varints may need 10 bytes (negative int32 values); _varint caps at 9
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(data: BytesLike, offset: int, what: str) -> tuple[int, int]:
    # protobuf allows non-minimal varints and up to 10 bytes
    try:
        return decode_varint(data, offset, max_bytes=10)
    except VarintError as exc:
        if "non-minimal" not in str(exc):
            raise DecodeError(f"{what}: {exc}", offset=offset) from exc
    value = shift = 0
    i = offset
    while True:
        byte = data[i]  # truncation would have been reported above
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i - offset


def iter_fields(data: BytesLike, what: str = "protobuf") -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)`` for every field.

    Varints come back as ``int``, length-delimited and fixed fields as ``bytes``.

    Raises:
        DecodeError: truncated input, a group, or field number 0.
    """
    end = len(data)
    off = 0
    while off < end:
        key, n = _read_varint(data, off, what)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise DecodeError(f"{what}: field number 0 at offset {off}", offset=off)
        off += n
        if wire == WIRE_VARINT:
            value, n = _read_varint(data, off, what)
            off += n
            yield number, wire, value
        elif wire == WIRE_LEN:
            length, n = _read_varint(data, off, what)
            off += n
            if off + length > end:
                raise DecodeError(
                    f"{what}: field {number} length {length} runs past the end ({end - off} left)",
                    offset=off,
                )
            yield number, wire, bytes(data[off : off + length])
            off += length
        elif wire in (WIRE_I64, WIRE_I32):
            size = 8 if wire == WIRE_I64 else 4
            if off + size > end:
                raise DecodeError(f"{what}: truncated fixed field {number}", offset=off)
            yield number, wire, bytes(data[off : off + size])
            off += size
        else:
            raise DecodeError(f"{what}: unsupported wire type {wire} at offset {off}", offset=off)
