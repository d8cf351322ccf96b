"""Streaming driver shared by the content-defined chunkers.

A chunker backend only answers one question: given a buffer that starts at a
chunk boundary, where are the next boundaries? ``decide(buf, eof)`` returns the
increasing end offsets of the chunks it can settle. Without ``eof`` it may only
settle a chunk whose start has at least ``lookahead`` bytes (the largest chunk)
behind it in ``buf``, so later bytes cannot change the answer; with ``eof`` it
must settle everything up to ``len(buf)``.

The driver feeds blocks of ``block_size`` bytes (plus the unsettled tail of the
previous block), so memory stays bounded by ``block_size + lookahead`` plus the
backend's temporaries, whatever the sizes of the reads.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Sequence

from . import BytesLike

__all__ = ["Decide", "split_stream"]

Decide = Callable[[BytesLike, bool], Sequence[int]]


def _as_bytes_view(read: BytesLike) -> memoryview:
    view = memoryview(read)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def split_stream(reads: Iterable[BytesLike], decide: Decide, *, lookahead: int, block_size: int) -> Iterator[bytes]:
    """Yield the chunks of the concatenation of ``reads`` as ``decide`` cuts them.

    Every byte is copied once into its output chunk; bytes of small reads are also
    copied once into the pending buffer. A read of at least ``block_size`` bytes
    arriving while nothing is pending is examined in place.
    """
    if block_size <= lookahead:
        raise ValueError("block_size must exceed lookahead so that every block settles a chunk")
    pending = bytearray()
    for read in reads:
        view = _as_bytes_view(read)
        pos, size = 0, len(view)
        while pos < size:
            if not pending and size - pos >= block_size:
                block = view[pos : pos + block_size]
                pos += yield from _emit(block, decide(block, False))
                continue
            take = min(size - pos, block_size - len(pending))
            pending += view[pos : pos + take]
            pos += take
            if len(pending) >= block_size:
                settled = yield from _emit_pending(pending, decide(pending, False))
                del pending[:settled]  # CPython moves the start of a bytearray, no memmove
    if pending:
        settled = yield from _emit_pending(pending, decide(pending, True))
        if settled != len(pending):  # pragma: no cover - a backend bug, never silent data loss
            raise AssertionError(f"chunker settled {settled} of {len(pending)} bytes at EOF")


def _emit_pending(pending: bytearray, ends: Sequence[int]) -> Generator[bytes, None, int]:
    with memoryview(pending) as view:  # released before the caller resizes ``pending``
        return (yield from _emit(view, ends))


def _emit(buf: memoryview, ends: Sequence[int]) -> Generator[bytes, None, int]:
    start = 0
    for end in ends:
        end = int(end)
        if not start < end <= len(buf):  # pragma: no cover - a backend bug
            raise AssertionError(f"chunker returned a bad cut {end} after {start}")
        yield bytes(buf[start:end])
        start = end
    return start
