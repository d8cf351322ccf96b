"""Plain reference CommP: obviously correct, slow (≈1 % of hashlib). For tests only.

Straight from shared/spec/commp.md: zero-extend the payload to the unpadded piece
size, fr32-expand each 127-byte quad with Python integers, then hash the whole
binary tree level by level with sha256-trunc254-padded.
"""

from __future__ import annotations

import hashlib

__all__ = ["ref_commp", "ref_fr32_pad", "ref_fr32_unpad", "ref_node", "ref_padded_size"]

_MASK254 = (1 << 254) - 1


def ref_node(left: bytes, right: bytes) -> bytes:
    d = bytearray(hashlib.sha256(left + right).digest())
    d[31] &= 0x3F
    return bytes(d)


def ref_fr32_pad(data: bytes) -> bytes:
    assert len(data) % 127 == 0
    out = []
    for i in range(0, len(data), 127):
        x = int.from_bytes(data[i : i + 127], "little")
        y = sum(((x >> (254 * k)) & _MASK254) << (256 * k) for k in range(4))
        out.append(y.to_bytes(128, "little"))
    return b"".join(out)


def ref_fr32_unpad(data: bytes) -> bytes:
    assert len(data) % 128 == 0
    out = []
    for i in range(0, len(data), 128):
        y = int.from_bytes(data[i : i + 128], "little")
        x = sum(((y >> (256 * k)) & _MASK254) << (254 * k) for k in range(4))
        out.append(x.to_bytes(127, "little"))
    return b"".join(out)


def ref_padded_size(n: int) -> int:
    quads = max(1, -(-n // 127))
    p = 128
    while p < quads * 128:
        p *= 2
    return p


def ref_commp(data: bytes, piece_size: int | None = None) -> tuple[bytes, int]:
    """(root, padded piece size) of ``data``, padded to ``piece_size`` if given."""
    p = piece_size or ref_padded_size(len(data))
    payload = data + bytes(p // 128 * 127 - len(data))
    leaves = ref_fr32_pad(payload)
    level = [leaves[i : i + 32] for i in range(0, len(leaves), 32)]
    while len(level) > 1:
        level = [ref_node(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0], p
