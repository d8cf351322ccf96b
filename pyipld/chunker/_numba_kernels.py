"""numba-compiled scans for the rabin and buzhash chunkers (optional backend).

Each kernel is the sequential loop of the library kubo uses, over a whole
buffer: it settles every chunk whose start has ``lookahead`` bytes behind it (or
all of them at EOF) and writes the chunk ends into an array. Like the libraries,
it starts rolling only ``MIN − window`` bytes into each chunk, so the bytes that
can never end a chunk are not hashed at all. All state is uint64 (numba widens
uint32 arithmetic); ``nogil`` lets the importer's hashing threads run meanwhile.

Imported only when the ``numba`` backend is chosen (``import numba`` is slow).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from . import BytesLike
from ._window import Decide
from .buzhash import BUZ_MASK, BUZ_MAX, BUZ_MIN, BYTEHASH
from .rabin import MOD_TABLE, OUT_TABLE

__all__ = ["buzhash_decide", "make_rabin_decide"]

_U64 = np.uint64


def _jit(fn: Callable[..., Any]) -> Any:
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # pragma: no cover - no writable cache location
        return numba.njit(nogil=True)(fn)


def _rabin_prime(data: Any, end: int, mod_table: Any) -> Any:  # pragma: no cover - compiled
    """Digest of the 16-byte window ending at ``end`` (rolled in from a zero state)."""
    digest = _U64(0)
    for i in range(end - 16, end):
        digest = ((digest << _U64(8)) | _U64(data[i])) ^ mod_table[digest >> _U64(45)]
    return digest


def _rabin_first(data: Any, lo: int, hi: int, mask: Any, out_table: Any, mod_table: Any) -> int:  # pragma: no cover
    """First window end e in [lo, hi] with fp16 & mask == 0, else hi.

    The rolling step is a chain of dependent loads (~9 cycles a byte), so long
    ranges are scanned as four interleaved segments of 2048 ends, each with its own
    digest: the CPU overlaps the four chains. The earliest hit wins.
    """
    seg = 2048
    e = lo
    while hi - e + 1 >= 4 * seg:
        a0, a1, a2, a3 = e, e + seg, e + 2 * seg, e + 3 * seg
        d0 = _rabin_prime(data, a0, mod_table)
        d1 = _rabin_prime(data, a1, mod_table)
        d2 = _rabin_prime(data, a2, mod_table)
        d3 = _rabin_prime(data, a3, mod_table)
        f1 = f2 = f3 = -1
        for t in range(seg):
            if (d0 & mask) == 0:
                return a0 + t
            if f1 < 0 and (d1 & mask) == 0:
                f1 = a1 + t
            if f2 < 0 and (d2 & mask) == 0:
                f2 = a2 + t
            if f3 < 0 and (d3 & mask) == 0:
                f3 = a3 + t
            p0, p1, p2, p3 = a0 + t, a1 + t, a2 + t, a3 + t
            d0 ^= out_table[data[p0 - 16]]
            d1 ^= out_table[data[p1 - 16]]
            d2 ^= out_table[data[p2 - 16]]
            d3 ^= out_table[data[p3 - 16]]
            d0 = ((d0 << _U64(8)) | _U64(data[p0])) ^ mod_table[d0 >> _U64(45)]
            d1 = ((d1 << _U64(8)) | _U64(data[p1])) ^ mod_table[d1 >> _U64(45)]
            d2 = ((d2 << _U64(8)) | _U64(data[p2])) ^ mod_table[d2 >> _U64(45)]
            d3 = ((d3 << _U64(8)) | _U64(data[p3])) ^ mod_table[d3 >> _U64(45)]
        if f1 >= 0:
            return f1
        if f2 >= 0:
            return f2
        if f3 >= 0:
            return f3
        e += 4 * seg
    digest = _rabin_prime(data, e, mod_table)
    while (digest & mask) != 0 and e < hi:
        digest ^= out_table[data[e - 16]]
        digest = ((digest << _U64(8)) | _U64(data[e])) ^ mod_table[digest >> _U64(45)]
        e += 1
    return e


def _rabin_scan(data: Any, n: int, eof: bool, min_size: int, max_size: int, mask: Any,
                out_table: Any, mod_table: Any, ends: Any) -> int:  # pragma: no cover - compiled
    count = 0
    start = 0
    while start < n and (eof or n - start >= max_size):
        end = min(n, start + max_size)
        if end - start < min_size:  # EOF before MIN: the remainder is the last chunk
            start = end
        else:
            start = _rabin_first_jit(data, start + min_size, end, mask, out_table, mod_table)
        ends[count] = start
        count += 1
    return count


def _rotl64(x: Any, k: int) -> Any:  # pragma: no cover - compiled
    return (x << _U64(k)) | (x >> _U64(64 - k))


def _buzhash_scan(data: Any, n: int, eof: bool, doubled: Any, ends: Any) -> int:  # pragma: no cover - compiled
    """boxo's loop on a uint64 holding the 32-bit state twice (s << 32 | s).

    Rotating that word left by k rotates both copies, so rotl32 becomes one 64-bit
    rotate instruction; ``doubled`` holds T | T << 32. The state is linear in the
    table values, so four steps are taken at once: S+4 = rotl(S, 4) ^ Y4 with Y4
    built from the bytes alone. The state chain then costs one rotate and one xor per
    four bytes (one step costs two or three, all on the chain), and the three
    intermediate states, needed for the checks, branch off it. Indices are unsigned
    so that no negative-index wraparound code is emitted. 1.7x faster than one step.
    """
    count = 0
    start = 0
    mask = _U64(BUZ_MASK)
    while start < n and (eof or n - start >= BUZ_MAX):
        avail = min(n - start, BUZ_MAX)
        if avail < BUZ_MIN:
            start += avail
        else:
            state = _U64(0)
            for i in range(start + BUZ_MIN - 32, start + BUZ_MIN):
                state = _rotl64_jit(state, 1) ^ doubled[data[i]]
            i = start + BUZ_MIN - 32
            last = start + avail - 33  # boxo: max := b.n + n - 32 - 1
            while i + 3 <= last:
                u = _U64(i)
                x0 = doubled[data[u]] ^ doubled[data[u + _U64(32)]]
                x1 = doubled[data[u + _U64(1)]] ^ doubled[data[u + _U64(33)]]
                x2 = doubled[data[u + _U64(2)]] ^ doubled[data[u + _U64(34)]]
                x3 = doubled[data[u + _U64(3)]] ^ doubled[data[u + _U64(35)]]
                y2 = _rotl64_jit(x0, 1) ^ x1
                y3 = _rotl64_jit(y2, 1) ^ x2
                s1 = _rotl64_jit(state, 1) ^ x0
                s2 = _rotl64_jit(state, 2) ^ y2
                s3 = _rotl64_jit(state, 3) ^ y3
                if ((state & mask) == 0) | ((s1 & mask) == 0) | ((s2 & mask) == 0) | ((s3 & mask) == 0):
                    break  # a cut within these four: the single steps below find it
                state = _rotl64_jit(state, 4) ^ (_rotl64_jit(y3, 1) ^ x3)
                i += 4
            while i <= last and (state & mask) != 0:
                state = _rotl64_jit(state, 1) ^ doubled[data[i]] ^ doubled[data[i + 32]]
                i += 1
            start = i + 32
        ends[count] = start
        count += 1
    return count


_rotl64_jit = _jit(_rotl64)
_rabin_prime = _jit(_rabin_prime)
_rabin_first_jit = _jit(_rabin_first)
_rabin_kernel = _jit(_rabin_scan)
_buzhash_kernel = _jit(_buzhash_scan)
_OUT = np.array(OUT_TABLE, dtype=np.uint64)
_MOD = np.array(MOD_TABLE, dtype=np.uint64)
_BYTEHASH = np.array(BYTEHASH, dtype=np.uint64)
_DOUBLED = _BYTEHASH | (_BYTEHASH << np.uint64(32))


def make_rabin_decide(min_size: int, max_size: int, mask: int) -> Decide:
    """A ``decide(buf, eof)`` for :mod:`pyipld.chunker._window` (MIN ≥ 16)."""
    mask64 = _U64(mask)

    def decide(buf: BytesLike, eof: bool) -> list[int]:
        data = np.frombuffer(buf, dtype=np.uint8)
        ends = np.empty(len(buf) // min_size + 2, dtype=np.int64)
        count = _rabin_kernel(data, len(buf), eof, min_size, max_size, mask64, _OUT, _MOD, ends)
        return ends[:count].tolist()  # type: ignore[no-any-return]

    return decide


def buzhash_decide(buf: BytesLike, eof: bool) -> list[int]:
    """``decide(buf, eof)`` for the buzhash splitter."""
    data = np.frombuffer(buf, dtype=np.uint8)
    ends = np.empty(len(buf) // BUZ_MIN + 2, dtype=np.int64)
    count = _buzhash_kernel(data, len(buf), eof, _DOUBLED, ends)
    return ends[:count].tolist()  # type: ignore[no-any-return]
