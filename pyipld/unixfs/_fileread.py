"""The input path of a regular file cut into ``size-N`` chunks: private reads, on every core.

When blocks are kept, a file is read with ``os.preadv`` into buffers of the process's own:
a buffer cannot change or vanish under the hasher, so a file that shrinks during the
import is a short read and :class:`~pyipld.errors.FileChangedError`, and one that grows is
caught by the size check at the end. Either way no DAG of another file is ever returned.

:meth:`FileChunks.leaf_links` is the fast path (``jobs`` > 1): each task reads one span
(a multiple of the chunk size, ~2 MiB) *and* hashes its chunks on a worker thread, two at a
time (:meth:`LeafMaker.leaves`) — ``preadv`` and the hashing both release the GIL, so reading
and hashing use every core while the calling thread only stores the results in order. At most
``2 × jobs`` spans are in flight. When blocks are kept, a sink with ``put_parts`` (a CAR writer)
gets views of the very buffer the leaf was hashed from — no copy — and that buffer is read into
again once the sink says it is written (``when_written``; freed otherwise).

Only-hash imports (sha2-256, no inlining) skip the read copy: each span is mapped read-only,
hashed by the two-lane kernel straight from the mapping and unmapped
(:func:`_hash_mapped_span`). The guarded kernel is the only reader of mapped bytes, and it
turns the SIGBUS of a page that vanished (the file was truncated) into
:class:`~pyipld.errors.FileChangedError` (:func:`pyipld._sha256x2.sha256_batch_mapped`); a file
system that cannot map the file is read instead. Measured: ``add -Q -n`` of 1 GiB 1.77 against
1.49 × one-thread sha256 with reads, in the same rounds (benchmarks/README.md).

Iterating a :class:`FileChunks` instead gives the chunks one by one on the calling thread
(views of ~1 MiB reads), for ``jobs=1`` and every other consumer.
"""

from __future__ import annotations

import mmap
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Final

from .._sha256x2 import MappingFault, mapped_hashing_available
from ..blockstore import BlockSink, NullSink
from ..chunker import BytesLike
from ..errors import FileChangedError
from .nodes import FileLink, Leaf, LeafMaker

__all__ = ["SPAN_BYTES", "FileChunks", "Hashed", "hash_batch", "hash_mapped", "pread_exact"]

SPAN_BYTES: Final = 2 << 20  # bytes read and hashed per task: amortizes ~20 µs of task overhead
SERIAL_READ_BYTES: Final = 1 << 20  # one read on the calling thread (jobs=1)

Hashed = tuple[bytes, tuple[BytesLike, ...] | None, int, int]
"""A hashed leaf: ``(cid, block pieces or None when not kept, block length, chunk length)``."""


def hash_batch(leaves: LeafMaker, chunks: list[BytesLike], keep: bool, parts: bool, *,
               private: bool = False) -> list[Hashed]:
    """The leaves of ``chunks`` two at a time, as :data:`Hashed`: block pieces for a sink with
    ``put_parts`` (``parts``; views of a ``private`` buffer handed out as they are), else the
    block when ``keep``."""
    if parts:
        return [(cid, pieces, block_len, len(chunk)) for chunk, (cid, pieces, block_len)
                in zip(chunks, leaves.leaves_parts(chunks, private=private), strict=True)]
    return [(cid, None if block is None else (block,), block_len, len(chunk)) for chunk, (cid, block, block_len)
            in zip(chunks, leaves.leaves(chunks, keep), strict=True)]


def pread_exact(fd: int, view: memoryview, offset: int, size: int, name: str) -> None:
    """Fill ``view`` from ``offset`` of ``fd``; EOF first means the ``size``-byte file shrank."""
    got = 0
    while got < len(view):
        n = os.preadv(fd, [view[got:]], offset + got)
        if n == 0:
            raise FileChangedError(name, size, os.fstat(fd).st_size)
        got += n


def check_unchanged(fd: int, size: int, name: str) -> None:
    """The file still has the size it had when the import started."""
    now = os.fstat(fd).st_size
    if now != size:
        raise FileChangedError(name, size, now)


class FileChunks(Iterator[BytesLike]):
    """The ``chunk_size`` chunks of the first ``size`` bytes of the regular file ``fd``.

    ``name`` is only for errors. The file must keep its size until the last chunk.
    """

    def __init__(self, fd: int, size: int, chunk_size: int, name: str) -> None:
        self.fd, self.size, self.chunk_size, self.name = fd, size, chunk_size, name
        self._serial: Iterator[BytesLike] | None = None
        self.progress: Callable[[int], None] | None = None  # called with each chunk's length

    @property
    def started(self) -> bool:
        """Whether chunks were already taken one by one (the parallel path needs them all)."""
        return self._serial is not None

    def __iter__(self) -> FileChunks:
        return self

    def __next__(self) -> BytesLike:
        if self._serial is None:
            self._serial = self._chunks()
        return next(self._serial)

    def _chunks(self) -> Iterator[BytesLike]:
        for group in self._groups():
            yield from group

    def groups(self) -> Iterator[list[memoryview]]:
        """The chunks a ~1 MiB read at a time, on the calling thread (for hashing them together)."""
        if self.started:
            raise RuntimeError("FileChunks.groups after chunks were taken one by one")
        self._serial = iter(())  # consumed
        return self._groups()

    def _groups(self) -> Iterator[list[memoryview]]:
        chunk, size = self.chunk_size, self.size
        read_size = chunk * max(1, SERIAL_READ_BYTES // chunk)
        for offset in range(0, size, read_size):
            view = memoryview(bytearray(min(read_size, size - offset)))  # fresh: the chunks escape as views
            pread_exact(self.fd, view, offset, size, self.name)
            pieces = [view[start : start + chunk] for start in range(0, len(view), chunk)]
            if self.progress is not None:
                for piece in pieces:
                    self.progress(len(piece))
            yield pieces
        check_unchanged(self.fd, size, self.name)

    def leaf_links(self, leaves: LeafMaker, sink: BlockSink, jobs: int) -> Iterator[FileLink]:
        """The leaves' links in file order, each span read and hashed on one of ``jobs`` threads;
        kept blocks go to ``sink`` on the calling thread, in order."""
        if self.started:
            raise RuntimeError("FileChunks.leaf_links after chunks were taken one by one")
        keep = not isinstance(sink, NullSink)
        put_parts = getattr(sink, "put_parts", None) if keep else None
        fresh = put_parts is not None  # the sink writes views of the buffer: one buffer per span
        when_written: Callable[[Callable[[], None]], None] | None = getattr(sink, "when_written", None)
        chunk, size, fd, name = self.chunk_size, self.size, self.fd, self.name
        span = chunk * max(1, SPAN_BYTES // chunk)
        local = threading.local()
        # span buffers the sink has written out, to read into again (a fresh one costs its page faults)
        written: deque[bytearray] = deque()

        def read_and_hash(offset: int) -> tuple[list[Hashed], bytearray | None]:
            n = min(span, size - offset)
            buf: bytearray | None = None
            if fresh:
                if when_written is not None:
                    try:
                        buf = written.pop()
                    except IndexError:
                        buf = bytearray(span)
                else:
                    buf = bytearray(n)
            else:
                buf = getattr(local, "buf", None)
                if buf is None:
                    buf = local.buf = bytearray(span)
            view = memoryview(buf)[:n]
            pread_exact(fd, view, offset, size, name)
            pieces: list[BytesLike] = [view[start : start + chunk] for start in range(0, n, chunk)]
            return hash_batch(leaves, pieces, keep, fresh, private=True), buf

        task: Callable[[int], tuple[list[Hashed], bytearray | None]] = read_and_hash
        if not keep and leaves.hashes_mapped_views and mapped_hashing_available():
            def task(offset: int) -> tuple[list[Hashed], bytearray | None]:
                try:
                    return _hash_mapped_span(offset, fd=fd, size=size, chunk=chunk, span=span, leaves=leaves,
                                             name=name)
                except OSError:  # a file system that cannot map this file: read it
                    return read_and_hash(offset)
        window: deque[Future[tuple[list[Hashed], bytearray | None]]] = deque()

        progress = self.progress

        def drain() -> Iterator[FileLink]:
            hashed, buf = window.popleft().result()
            for cid, pieces, block_len, data_size in hashed:
                if progress is not None:
                    progress(data_size)
                if pieces is not None:
                    if put_parts is not None:
                        put_parts(cid, pieces)
                    else:
                        sink.put(cid, pieces[0])  # type: ignore[arg-type]  # leaf() blocks are bytes
                yield FileLink(cid, block_len, data_size)
            if fresh and when_written is not None and buf is not None:
                when_written(lambda: written.append(buf))

        self._serial = iter(())  # consumed
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pyipld-read") as pool:
            try:
                for offset in range(0, size, span):
                    window.append(pool.submit(task, offset))
                    if len(window) >= 2 * jobs:
                        yield from drain()
                while window:
                    yield from drain()
            finally:
                for future in window:
                    future.cancel()
        check_unchanged(fd, size, name)


def hash_mapped(fd: int, bounds: Sequence[tuple[int, int]], leaves: LeafMaker, name: str, size: int) -> list[Leaf]:
    """Only-hash leaves of the consecutive chunks ``bounds`` of ``fd``, hashed straight from one
    read-only mapping of their range (no read copy; unmapped on return). The guarded kernel is
    the only reader of the mapped bytes: a file shorter than the range, or truncated meanwhile,
    is :class:`~pyipld.errors.FileChangedError` (``size``: what it had when opened), not SIGBUS.
    OSError: the file system cannot map it (callers read instead)."""
    first, last = bounds[0][0], bounds[-1][1]
    base = first - first % mmap.ALLOCATIONGRANULARITY
    try:
        mapping = mmap.mmap(fd, last - base, offset=base, access=mmap.ACCESS_READ)
    except ValueError:  # "mmap length is greater than file size": it shrank already
        raise FileChangedError(name, size, os.fstat(fd).st_size) from None
    view = memoryview(mapping)
    del mapping  # unmapped with its last view, when this returns
    try:
        return leaves.leaves_mapped([view[a - base : b - base] for a, b in bounds])
    except MappingFault:
        raise FileChangedError(name, size, os.fstat(fd).st_size) from None


def _hash_mapped_span(offset: int, *, fd: int, size: int, chunk: int, span: int, leaves: LeafMaker,
                      name: str) -> tuple[list[Hashed], None]:
    """The span at ``offset`` through :func:`hash_mapped` (resident memory stays a few spans)."""
    end = min(offset + span, size)
    bounds = [(a, min(a + chunk, end)) for a in range(offset, end, chunk)]
    hashed = hash_mapped(fd, bounds, leaves, name, size)
    return [(cid, None, block_len, b - a) for (a, b), (cid, _, block_len) in zip(bounds, hashed, strict=True)], None
