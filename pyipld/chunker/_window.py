"""Streaming driver shared by the content-defined chunkers.

A chunker backend only answers one question: given a buffer that starts at a
chunk boundary, where are the next boundaries? ``decide(buf, eof)`` returns the
increasing end offsets of the chunks it can settle. Without ``eof`` it may only
settle a chunk whose start has at least ``lookahead`` bytes (the largest chunk)
behind it in ``buf``, so later bytes cannot change the answer; with ``eof`` it
must settle everything up to ``len(buf)``.

The driver cuts the input into blocks of about ``block_size`` bytes, each starting
at the first unsettled byte of the previous one. A block that lies inside one
read is examined in place; otherwise it is assembled in a fresh buffer (each input
byte is copied there at most once, plus the short unsettled tails). Every byte is
copied once more into its output chunk.

With ``parallel=True`` the next block is decided on a worker thread while the
consumer handles the current block's chunks; the numba and numpy backends release
the GIL, so chunking overlaps with, e.g., the importer hashing the chunks. Memory
stays bounded by about two blocks plus one read, whatever the input size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from . import BytesLike

__all__ = ["Decide", "split_stream"]

Decide = Callable[[BytesLike, bool], Sequence[int]]


def _as_bytes_view(read: BytesLike) -> memoryview:
    view = memoryview(read)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


class _Blocks:
    """Hands out blocks that start where the previous block stopped being settled."""

    def __init__(self, reads: Iterable[BytesLike], block_size: int) -> None:
        self._reads = iter(reads)
        self._block_size = block_size
        self._view = memoryview(b"")  # current read
        self._pos = 0  # next unread byte of the current read
        self._read_no = 0  # how many reads were taken
        self._exhausted = False
        self._in_place: tuple[int, int] | None = None  # (read number, start) of the last block, if in place

    def _refill(self) -> bool:
        """Make the current read non-empty; False at the end of the input."""
        while self._pos >= len(self._view):
            if self._exhausted:
                return False
            try:
                read = next(self._reads)
            except StopIteration:
                self._exhausted = True
                self._view, self._pos = memoryview(b""), 0
                return False
            self._view, self._pos = _as_bytes_view(read), 0
            self._read_no += 1
        return True

    def next_block(self, carry: memoryview) -> tuple[memoryview, bool]:
        """The next block: ``carry`` (the previous block's unsettled tail) then new input.

        Returns ``(block, eof)``; ``eof`` means the input ends with this block. The
        block never changes afterwards, so its chunks can be handed out later: only
        an immutable ``bytes`` read is used in place (a caller may refill a bytearray).
        """
        size = self._block_size
        self._in_place = None
        if (not carry and self._refill() and len(self._view) - self._pos >= size
                and isinstance(self._view.obj, bytes)):
            start = self._pos
            self._pos += size
            self._in_place = (self._read_no, start)
            block = self._view[start : start + size]
            return block, not self._refill()
        buf = bytearray(carry)
        while len(buf) < size and self._refill():
            take = min(len(self._view) - self._pos, size - len(buf))
            buf += self._view[self._pos : self._pos + take]
            self._pos += take
        return memoryview(buf), not self._refill()

    def carry_after(self, block: memoryview, settled: int) -> memoryview:
        """The unsettled tail of ``block`` — or nothing, after stepping back into the
        current read when ``block`` was taken from it in place (so the next block can
        be in place too)."""
        if self._in_place is not None and self._in_place[0] == self._read_no and settled < len(block):
            self._pos = self._in_place[1] + settled
            return memoryview(b"")
        return block[settled:]


def split_stream(
    reads: Iterable[BytesLike], decide: Decide, *, lookahead: int, block_size: int, parallel: bool = False
) -> Iterator[bytes]:
    """Yield the chunks of the concatenation of ``reads`` as ``decide`` cuts them."""
    if block_size <= lookahead:
        raise ValueError("block_size must exceed lookahead so that every block settles a chunk")
    blocks = _Blocks(reads, block_size)
    pool: ThreadPoolExecutor | None = None
    try:
        block, eof = blocks.next_block(memoryview(b""))
        ends = decide(block, eof)
        while True:
            settled = int(ends[-1]) if len(ends) else 0
            if eof:
                if settled != len(block):  # pragma: no cover - a backend bug, never silent data loss
                    raise AssertionError(f"chunker settled {settled} of {len(block)} bytes at EOF")
                yield from _emit(block, ends)
                return
            next_block, next_eof = blocks.next_block(blocks.carry_after(block, settled))
            pending: Future[Sequence[int]] | None = None
            if parallel:
                if pool is None:
                    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyipld-chunker")
                pending = pool.submit(decide, next_block, next_eof)
            yield from _emit(block, ends)
            ends = pending.result() if pending is not None else decide(next_block, next_eof)
            block, eof = next_block, next_eof
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


def _emit(buf: memoryview, ends: Sequence[int]) -> Iterator[bytes]:
    start = 0
    for end in ends:
        end = int(end)
        if not start < end <= len(buf):  # pragma: no cover - a backend bug
            raise AssertionError(f"chunker returned a bad cut {end} after {start}")
        yield bytes(buf[start:end])
        start = end
