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

from .buzhash import BUZ_MASK, BUZ_MAX, BUZ_MIN, BYTEHASH
from .rabin import MOD_TABLE, OUT_TABLE

__all__ = ["buzhash_decide", "make_rabin_decide"]

_U64 = np.uint64


def _jit(fn: Callable[..., Any]) -> Any:
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # pragma: no cover - no writable cache location
        return numba.njit(nogil=True)(fn)


def _rabin_scan(data: Any, n: int, eof: bool, min_size: int, max_size: int, mask: Any,
                out_table: Any, mod_table: Any, ends: Any) -> int:  # pragma: no cover - compiled
    count = 0
    start = 0
    shift8 = _U64(8)
    pol_shift = _U64(45)
    while start < n and (eof or n - start >= max_size):
        end = min(n, start + max_size)
        if end - start < min_size:  # EOF before MIN: the remainder is the last chunk
            start = end
        else:
            digest = _U64(0)
            for i in range(start + min_size - 16, start + min_size):
                digest = ((digest << shift8) | _U64(data[i])) ^ mod_table[digest >> pol_shift]
            pos = start + min_size
            while (digest & mask) != 0 and pos < end:
                digest ^= out_table[data[pos - 16]]
                digest = ((digest << shift8) | _U64(data[pos])) ^ mod_table[digest >> pol_shift]
                pos += 1
            start = pos
        ends[count] = start
        count += 1
    return count


def _buzhash_scan(data: Any, n: int, eof: bool, table: Any, ends: Any) -> int:  # pragma: no cover - compiled
    count = 0
    start = 0
    u32 = _U64(0xFFFFFFFF)
    one = _U64(1)
    thirty_one = _U64(31)
    mask = _U64(BUZ_MASK)
    while start < n and (eof or n - start >= BUZ_MAX):
        avail = min(n - start, BUZ_MAX)
        if avail < BUZ_MIN:
            start += avail
        else:
            state = _U64(0)
            for i in range(start + BUZ_MIN - 32, start + BUZ_MIN):
                state = (((state << one) | (state >> thirty_one)) & u32) ^ table[data[i]]
            i = start + BUZ_MIN - 32
            last = start + avail - 33
            while i <= last and (state & mask) != 0:
                state = (((state << one) | (state >> thirty_one)) & u32) ^ table[data[i]] ^ table[data[i + 32]]
                i += 1
            start = i + 32
        ends[count] = start
        count += 1
    return count


_rabin_kernel = _jit(_rabin_scan)
_buzhash_kernel = _jit(_buzhash_scan)
_OUT = np.array(OUT_TABLE, dtype=np.uint64)
_MOD = np.array(MOD_TABLE, dtype=np.uint64)
_BYTEHASH = np.array(BYTEHASH, dtype=np.uint64)


def make_rabin_decide(min_size: int, max_size: int, mask: int) -> Callable[[bytes, bool], list[int]]:
    """A ``decide(buf, eof)`` for :mod:`pyipld.chunker._window` (MIN ≥ 16)."""
    mask64 = _U64(mask)

    def decide(buf: bytes, eof: bool) -> list[int]:
        data = np.frombuffer(buf, dtype=np.uint8)
        ends = np.empty(len(buf) // min_size + 2, dtype=np.int64)
        count = _rabin_kernel(data, len(buf), eof, min_size, max_size, mask64, _OUT, _MOD, ends)
        return ends[:count].tolist()  # type: ignore[no-any-return]

    return decide


def buzhash_decide(buf: bytes, eof: bool) -> list[int]:
    """``decide(buf, eof)`` for the buzhash splitter."""
    data = np.frombuffer(buf, dtype=np.uint8)
    ends = np.empty(len(buf) // BUZ_MIN + 2, dtype=np.int64)
    count = _buzhash_kernel(data, len(buf), eof, _BYTEHASH, ends)
    return ends[:count].tolist()  # type: ignore[no-any-return]
