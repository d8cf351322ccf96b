"""Unsigned LEB128 varints as multiformats and protobuf use them.

Only the minimal form is accepted on decode and at most 9 bytes (63 bits),
as the multiformats unsigned-varint spec requires.
"""

from __future__ import annotations

from .errors import VarintError

__all__ = ["MAX_VARINT_BYTES", "decode_varint", "encode_varint", "varint_size"]

MAX_VARINT_BYTES = 9  # multiformats unsigned-varint: at most 63 bits


def encode_varint(value: int) -> bytes:
    """Encode a non-negative int as an unsigned varint."""
    if value < 0:
        raise ValueError(f"varint must be non-negative, got {value}")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def varint_size(value: int) -> int:
    """Number of bytes ``encode_varint(value)`` produces."""
    return max(1, (value.bit_length() + 6) // 7)


def decode_varint(
    data: bytes | bytearray | memoryview, offset: int = 0, *, max_bytes: int = MAX_VARINT_BYTES
) -> tuple[int, int]:
    """Decode one varint at ``offset``.

    Returns:
        ``(value, bytes_read)``.

    Raises:
        VarintError: truncated, non-minimal, or longer than ``max_bytes``.
    """
    value = 0
    shift = 0
    end = len(data)
    i = offset
    while True:
        if i >= end:
            raise VarintError(f"truncated varint at offset {offset}", offset=offset)
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and i - offset > 1:
                raise VarintError(f"non-minimal varint at offset {offset}", offset=offset)
            return value, i - offset
        shift += 7
        if i - offset >= max_bytes:
            raise VarintError(
                f"varint longer than {max_bytes} bytes at offset {offset}", offset=offset
            )
