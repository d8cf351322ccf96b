"""MurmurHash3 x64_128 (seed 0), the half boxo's HAMT uses.

boxo ``ipld/unixfs/hamt`` hashes entry names with spaolacci/murmur3 ``New64``,
whose ``Sum`` is **h1** of x64_128 written big-endian (shared/spec/unixfs-importer.md
§4.3). :func:`murmur3_h1` returns that h1 as an integer, so the 8-byte digest is
``h1.to_bytes(8, "big")`` and level ``k`` of a fanout-2**b HAMT reads bits
``[k*b, (k+1)*b)`` from the top. Pinned by known answers in tests/test_hamt.py.
"""

from __future__ import annotations

from typing import Final

__all__ = ["murmur3_digest", "murmur3_h1"]

_C1: Final = 0x87C37B91114253D5
_C2: Final = 0x4CF5AD432745937F
_M: Final = 0xFFFFFFFFFFFFFFFF


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _M
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _M
    k ^= k >> 33
    return k


def murmur3_h1(data: bytes | bytearray | memoryview, seed: int = 0) -> int:
    """The first 64-bit half (h1) of MurmurHash3_x64_128 of ``data``."""
    data = bytes(data)
    n = len(data)
    h1 = h2 = seed & _M
    nblocks = n // 16
    from_bytes = int.from_bytes
    for i in range(0, nblocks * 16, 16):
        k1 = from_bytes(data[i : i + 8], "little")
        k2 = from_bytes(data[i + 8 : i + 16], "little")
        k1 = (k1 * _C1) & _M
        k1 = ((k1 << 31) | (k1 >> 33)) & _M
        k1 = (k1 * _C2) & _M
        h1 ^= k1
        h1 = ((h1 << 27) | (h1 >> 37)) & _M
        h1 = (h1 + h2) & _M
        h1 = (h1 * 5 + 0x52DCE729) & _M
        k2 = (k2 * _C2) & _M
        k2 = ((k2 << 33) | (k2 >> 31)) & _M
        k2 = (k2 * _C1) & _M
        h2 ^= k2
        h2 = ((h2 << 31) | (h2 >> 33)) & _M
        h2 = (h2 + h1) & _M
        h2 = (h2 * 5 + 0x38495AB5) & _M
    tail = data[nblocks * 16 :]
    rest = len(tail)
    if rest > 8:
        k2 = from_bytes(tail[8:], "little")
        k2 = (k2 * _C2) & _M
        k2 = ((k2 << 33) | (k2 >> 31)) & _M
        k2 = (k2 * _C1) & _M
        h2 ^= k2
    if rest > 0:
        k1 = from_bytes(tail[:8], "little")
        k1 = (k1 * _C1) & _M
        k1 = ((k1 << 31) | (k1 >> 33)) & _M
        k1 = (k1 * _C2) & _M
        h1 ^= k1
    h1 ^= n
    h2 ^= n
    h1 = (h1 + h2) & _M
    h2 = (h2 + h1) & _M
    h1 = _fmix(h1)
    h2 = _fmix(h2)
    h1 = (h1 + h2) & _M
    return h1


def murmur3_digest(data: bytes | bytearray | memoryview) -> bytes:
    """The 8-byte digest boxo's HAMT uses: h1 big-endian."""
    return murmur3_h1(data).to_bytes(8, "big")
