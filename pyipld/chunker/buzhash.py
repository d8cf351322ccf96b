"""Buzhash chunker ``buzhash`` — cuts where kubo cuts (boxo ``chunker/buzhash.go``).

Spec: ``shared/spec/chunkers.md`` §4. Fixed parameters: chunks of 128 KiB to
512 KiB, a 32-byte window, a uint32 hash ``H(w) = XOR_k rotl(T[w[k]], 31−k)``
and a cut where ``H & 0x1FFFF == 0``:

    B = min(remaining, 512 KiB); if B < 128 KiB the remainder is the last chunk;
    else L = smallest L in [128 KiB, B−1] with H(chunk[L-32:L]) & 0x1FFFF == 0, else B.

The table ``T`` (``buzhash_table.txt``, one ``0x%08x`` per line) is boxo's
``bytehash``, generated once by boxo ``chunker/gen/main.go`` with Go's math/rand
seeded 0: another table changes every CID, so it is shipped as data and its
sha256 is pinned by the tests.

Backends (see :mod:`pyipld._accel`): ``python`` transcribes boxo's loop;
``numpy`` finds every candidate at once with a prefix-XOR (since rotations
compose, ``H(e) = rotl(C[e] ^ C[e−32], e−1)`` where ``C`` is the running XOR of
``rotr(T[d[i]], i mod 32)``: one gather, one shift, one accumulate); ``numba``
compiles boxo's loop, which only scans from 128 KiB − 32 into each chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import resources
from typing import Any, Final

from .._accel import Backend, resolve_backend
from . import BytesLike, register_chunker
from ._numpy_search import NumpyCandidateSearch
from ._window import MAPPED_BLOCKS, Decide, split_stream, split_stream_views
from ._window import split_mapped as _split_mapped

__all__ = ["BUZ_MASK", "BUZ_MAX", "BUZ_MIN", "BYTEHASH", "WINDOW_SIZE", "Buzhash", "buzhash32", "parse_buzhash"]

BUZ_MIN: Final = 128 << 10  # boxo buzhash.go buzMin
BUZ_MAX: Final = 512 << 10  # boxo buzhash.go buzMax (also the splitter's buffer size)
BUZ_MASK: Final = (1 << 17) - 1  # boxo buzhash.go buzMask
WINDOW_SIZE: Final = 32
_U32: Final = 0xFFFFFFFF


def _load_table() -> tuple[int, ...]:
    text = resources.files(__package__).joinpath("buzhash_table.txt").read_text("ascii")
    table = tuple(int(line, 16) for line in text.split())
    if len(table) != 256:  # pragma: no cover - a damaged install
        raise RuntimeError(f"buzhash_table.txt has {len(table)} entries, expected 256")
    return table


BYTEHASH: Final[tuple[int, ...]] = _load_table()


def _rotl(value: int, shift: int) -> int:
    shift %= 32
    return ((value << shift) | (value >> (32 - shift))) & _U32


def buzhash32(window: BytesLike) -> int:
    """H of a 32-byte window (oldest byte first): ``XOR_k rotl(T[w[k]], 31 − k)``."""
    data = bytes(window)
    if len(data) != WINDOW_SIZE:
        raise ValueError(f"buzhash window must be {WINDOW_SIZE} bytes, got {len(data)}")
    value = 0
    for k, byte in enumerate(data):
        value ^= _rotl(BYTEHASH[byte], WINDOW_SIZE - 1 - k)
    return value


class Buzhash:
    """kubo's buzhash splitter.

    Args:
        backend: ``"python"``, ``"numpy"`` or ``"numba"``; default: the best available.
        block_size: bytes examined per step by the streaming driver (memory bound).
    """

    def __init__(self, *, backend: str | None = None, block_size: int = 4 << 20) -> None:
        self.backend: Backend = resolve_backend(backend)
        self._block_size = max(block_size, 2 * BUZ_MAX + 1)
        self._decide = self._make_decide()

    @property
    def max_chunk_size(self) -> int:
        return BUZ_MAX

    def __repr__(self) -> str:
        return f"Buzhash(backend={self.backend!r})"

    def split(self, reads: Iterable[BytesLike]) -> Iterator[bytes]:
        return split_stream(reads, self._decide, lookahead=BUZ_MAX, block_size=self._block_size,
                            parallel=self.backend != "python")  # numpy and numba release the GIL

    def split_views(self, reads: Iterable[BytesLike]) -> Iterator[memoryview]:
        """:meth:`split` yielding memoryviews instead of ``bytes`` copies (for the importer).

        The views stay valid: their bytes are immutable reads or private buffers.
        """
        return split_stream_views(reads, self._decide, lookahead=BUZ_MAX, block_size=self._block_size,
                                  parallel=self.backend != "python")

    def split_mapped(self, fd: int, length: int) -> Iterator[memoryview]:
        """The chunks of the first ``length`` bytes of the regular file ``fd``, as views
        of read-only mappings: no byte is copied (for the importer). Blocks are
        ``MAPPED_BLOCKS`` times larger than for reads: each new mapping faults in again
        the previous block's unsettled tail (up to MAX bytes), and mapped blocks cost
        page-cache pages, not private memory."""
        return _split_mapped(fd, length, self._decide, lookahead=BUZ_MAX, block_size=MAPPED_BLOCKS * self._block_size,
                            parallel=self.backend != "python")

    def _make_decide(self) -> Decide:
        if self.backend == "python":
            return _decide_py
        if self.backend == "numba":
            from ._native import buzhash_decide as native

            decide = native()  # the same scan in C: no numba import at start-up
            if decide is not None:
                return decide
            from ._numba_kernels import buzhash_decide

            return buzhash_decide
        return _NumpyBuzhash().decide


def _decide_py(buf: BytesLike, eof: bool) -> list[int]:
    ends: list[int] = []
    start, n = 0, len(buf)
    while start < n and (eof or n - start >= BUZ_MAX):
        start += _chunk_len_py(buf, start)
        ends.append(start)
    return ends


def _chunk_len_py(buf: BytesLike, start: int) -> int:
    """boxo Buzhash.NextBytes for the chunk at ``start`` (needs 512 KiB after it, or EOF)."""
    table = BYTEHASH
    avail = min(len(buf) - start, BUZ_MAX)
    if avail < BUZ_MIN:
        return avail
    state = 0
    for i in range(start + BUZ_MIN - WINDOW_SIZE, start + BUZ_MIN):
        state = (((state << 1) | (state >> 31)) & _U32) ^ table[buf[i]]
    i = start + BUZ_MIN - WINDOW_SIZE
    last = start + avail - WINDOW_SIZE - 1  # boxo: max := b.n + n - 32 - 1
    while i <= last:
        if state & BUZ_MASK == 0:
            break
        # The outgoing byte needs no rotation: rotating by 32 is the identity.
        state = (((state << 1) | (state >> 31)) & _U32) ^ table[buf[i]] ^ table[buf[i + WINDOW_SIZE]]
        i += 1
    return i + WINDOW_SIZE - start


class _NumpyBuzhash(NumpyCandidateSearch):
    """Candidates with one gather, one shift and one prefix XOR per byte."""

    window = WINDOW_SIZE

    def __init__(self) -> None:
        # Windows ending at s+B are never tested by boxo, but then L = B anyway: last_ok = BUZ_MAX.
        super().__init__(BUZ_MIN, BUZ_MAX, BUZ_MAX, sparse=True)
        np = self.np
        table = np.array(BYTEHASH, dtype=np.uint64)
        # T | T<<32: the low 32 bits of (that >> r) are rotr(T, r), with one shift.
        self.doubled = table | (table << np.uint64(32))
        self.shifts = np.arange(32, dtype=np.uint64)
        # End e = e0 + m is tested as (X & rotr(mask, (m + 31) % 32)) == 0.
        masks = np.array([_rotl(BUZ_MASK, -((m + 31) % 32)) for m in range(32)], dtype=np.uint64)
        self.mask_pattern = np.tile(masks, self.segment // 32 + 1)

    def scan(self, data: Any, e0: int, e1: int) -> Any:
        np = self.np
        m = e1 - e0
        width = m + WINDOW_SIZE - 1  # bytes of the windows ending in [e0, e1); local phase 0 at e0 - 32
        vals = np.zeros(-(-width // 32) * 32, dtype=np.uint64)
        np.take(self.doubled, data[e0 - WINDOW_SIZE : e0 - WINDOW_SIZE + width], out=vals[:width], mode="clip")
        grid = vals.reshape(-1, 32)
        np.right_shift(grid, self.shifts, out=grid)  # byte i' rotated right by i' % 32
        run = vals[:width]
        np.bitwise_xor.accumulate(run, out=run)
        xs = np.empty(m, dtype=np.uint64)
        xs[0] = run[31]
        np.bitwise_xor(run[32 : 31 + m], run[: m - 1], out=xs[1:])
        np.bitwise_and(xs, self.mask_pattern[:m], out=xs)
        return np.flatnonzero(xs == 0)


def parse_buzhash(spec: str) -> Buzhash:
    """``buzhash``: fixed parameters; like boxo, anything after ``buzhash-`` is ignored."""
    return Buzhash()


register_chunker("buzhash", parse_buzhash)
