"""Per-file import scheduling: the walk runs ahead, every effect is applied in walk order.

The walk hands each entry to a :class:`Scheduler` as an event. Small regular files (under
:data:`~.files.THREADED_MIN_BYTES`, or of one chunk when a sink keeps the blocks; ``size-N``
chunkers, local trees) are gathered into
batches of :data:`BATCH_FILES` files or :data:`BATCH_BYTES` bytes and read and hashed by
:func:`~.batches.hash_small_files` — on a worker thread when the batch's files average
:data:`THREADED_MEAN_BYTES` or more, on the walking thread otherwise (below that, the
per-file Python work, which holds the GIL, outweighs what a second thread overlaps). Every
effect — the journal's lookup and record, blocks put, the cache record, the link into its
directory, the ``added`` report, a directory finished — is applied in walk order, so the
output, the CAR bytes and the journal are those of one file at a time.

Memory is bounded: at most ``2 × jobs`` batches in flight (each ≤ 64 files or ~1 MiB, one
file < 8 MiB) and at most :data:`MAX_QUEUED` events waiting. While a resume journal may
still skip files (it is replaying), files are not read ahead: each one is looked up when its
turn comes, as before.
"""

from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

from ...blockstore import NullSink, file_sink
from ...chunker.fixed import FixedSize
from ..nodes import FileLink
from .batches import SmallFile, SmallResult, hash_small_files, release_thread_state
from .dircache import DirCache
from .dirs import DirNode, OpenDir, set_result
from .entries import ImportContext
from .files import THREADED_MIN_BYTES, FileImporter
from .source import join_display

__all__ = ["BATCH_BYTES", "BATCH_FILES", "MAX_QUEUED", "THREADED_MEAN_BYTES", "Scheduler"]

BATCH_FILES: Final = 64  # files per batch: amortizes ~20-50 µs of task overhead
BATCH_BYTES: Final = 1 << 20  # file bytes per batch (a larger file is a batch alone)
MAX_QUEUED: Final = 4096  # events waiting for their turn before the walk waits
THREADED_MEAN_BYTES: Final = 128 << 10
"""A batch goes to a worker thread only when its files average this much (measured on 2 cores:
1-64 KiB files were slower on two threads, 64 KiB-2 MiB files faster; benchmarks/README.md)."""

_FILE, _SMALL, _KNOWN, _LINK, _CLOSE, _RECORDED, _SKIP = range(7)


class _Batch:
    """Small files hashed together: their paths, then their results (or the future of them)."""

    __slots__ = ("future", "left", "nbytes", "paths", "results")

    def __init__(self) -> None:
        self.paths: list[bytes] = []
        self.nbytes = 0
        self.left = 0  # events of this batch not applied yet
        self.future: Future[list[SmallResult]] | None = None
        self.results: list[SmallResult] | None = None


class Scheduler:
    """Applies the walk's events in walk order, small files hashed ahead in batches."""

    def __init__(self, ctx: ImportContext, files: FileImporter, dircache: DirCache | None = None) -> None:
        self.ctx = ctx
        self.files = files
        self.dircache = dircache
        chunker = ctx.resolved.chunker
        self.chunk = chunker.chunk_size if isinstance(chunker, FixedSize) and files.batchable else 0
        self.threads = ctx.jobs
        self.pool: ThreadPoolExecutor | None = None
        self.keep = not isinstance(ctx.sink, NullSink)
        # Batched below this size. When a sink keeps the blocks, only one-chunk files: a larger
        # one is better read by FileChunks, whose buffers are reused once the CAR writer has
        # them (a private buffer per file cost ~50 % more CPU on 64-512 KiB files).
        self.small_max = self.chunk + 1 if self.keep else THREADED_MIN_BYTES
        self.queue: deque[tuple[Any, ...]] = deque()
        self.batch = _Batch()
        self.inflight: deque[_Batch] = deque()
        self.root: DirNode | None = None
        self.failed = False  # an event's effect raised: nothing after it is applied

    # -- events from the walk ------------------------------------------------------------------
    def file(self, frame: OpenDir, name: bytes, display: bytes, path: bytes, st: os.stat_result) -> None:
        """A regular file of ``frame``."""
        ctx = self.ctx
        journal = ctx.journal
        if journal is not None and not journal.live:  # replaying: looked up when its turn comes
            self.queue.append((_FILE, frame, name, display, path, st, False))
        elif (known := self.files.known_root(path, st)) is not None:
            self.queue.append((_KNOWN, frame, name, display, known[0], st, known[1]))
        elif self.chunk and st.st_size < self.small_max:
            # The cache's and journal's record time: read before the file is opened.
            started = (ctx.cache.clock() if ctx.cache is not None else
                       time.time_ns() if ctx.journal is not None else 0)
            b = self.batch
            self.queue.append((_SMALL, frame, name, display, path, st, b, len(b.paths), started))
            b.paths.append(path)
            b.nbytes += st.st_size
            if len(b.paths) >= BATCH_FILES or b.nbytes >= BATCH_BYTES:
                self._submit()
        else:  # known_root asked file_roots and the cache already: only hashing is left
            self.queue.append((_FILE, frame, name, display, path, st, True))
        self.poll()

    def symlink(self, frame: OpenDir, name: bytes, display: bytes, path: bytes, st: os.stat_result) -> None:
        """A symlink of ``frame`` (its target is read when its turn comes)."""
        self.queue.append((_LINK, frame, name, display, path, st))
        self.poll()

    def recorded(self, frame: OpenDir, start: int, end: int) -> None:
        """Entries ``start:end`` (files and symlinks) of a directory taken from its cache record:
        reported when their turn comes (nothing to do when nothing is reported)."""
        ctx = self.ctx
        if (ctx.on_added is not None and ctx.nested_reports) or ctx.progress is not None:
            self.queue.append((_RECORDED, frame, start, end))
            self.poll()

    def skipped(self, frame: OpenDir) -> None:
        """An empty sub-directory of ``frame`` left out (noted only in a cache walk)."""
        if frame.cached is not None:
            self.queue.append((_SKIP, frame))

    def close(self, frame: OpenDir, parent: OpenDir | None) -> None:
        """All of ``frame``'s entries are in: finish it when its turn comes."""
        self.queue.append((_CLOSE, frame, parent))
        self.poll()

    def finish(self) -> DirNode:
        """Apply everything left; the root directory's node."""
        self.drain()
        assert self.root is not None
        return self.root

    def drain(self) -> None:
        """Apply everything queued (after a failed walk: what came before the failure, whose own
        error comes first); nothing once an applied event has failed."""
        if self.failed:
            return
        self._submit()
        while self.queue:
            self._apply_head(block=True)

    def shutdown(self) -> None:
        release_thread_state()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    # -- batches ---------------------------------------------------------------------------------
    def _submit(self) -> None:
        b = self.batch
        if not b.paths:
            return
        self.batch = _Batch()
        b.left = len(b.paths)
        args = (b.paths, self.ctx.resolved, self.chunk, self.files.source.meta, self.keep)
        if self.threads <= 1 or b.nbytes < THREADED_MEAN_BYTES * len(b.paths):
            b.results = hash_small_files(*args)
        else:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="pyipld-files")
            b.future = self.pool.submit(hash_small_files, *args)
        self.inflight.append(b)
        while len(self.inflight) > 2 * self.threads:
            self._apply_head(block=True)

    def poll(self) -> None:
        """Apply the ready events at the head (waiting only when too many are queued)."""
        queue = self.queue
        while queue and self._apply_head(block=len(queue) > MAX_QUEUED):
            pass

    def _apply_head(self, block: bool) -> bool:
        """Apply the head event if it is ready (or wait for it); returns whether one was applied."""
        ev = self.queue[0]
        if ev[0] != _SMALL:
            self.queue.popleft()
            try:
                self._apply(ev)
            except BaseException:
                self.failed = True
                raise
            return True
        b: _Batch = ev[6]
        if b.results is None:
            if b is self.batch:
                if not block:
                    return False
                self._submit()
                if not self.queue or self.queue[0] is not ev:
                    return True  # _submit's window drain applied it
            if b.results is None:
                assert b.future is not None
                if not block and not b.future.done():
                    return False
                b.results, b.future = b.future.result(), None
        self.queue.popleft()
        result = b.results[ev[7]]
        b.left -= 1
        if b.left == 0:
            self.inflight.remove(b)
            b.results = None
        try:
            self._small(ev, result)
        except BaseException:
            self.failed = True
            raise
        return True

    # -- effects, in walk order ------------------------------------------------------------------
    def _apply(self, ev: tuple[Any, ...]) -> None:
        kind, frame = ev[0], ev[1]
        ctx = self.ctx
        if kind == _RECORDED:
            state = frame.cached
            assert state is not None and state.record is not None
            entry, names, progress = state.record.entry, state.names, ctx.progress
            report = ctx.on_added is not None and ctx.nested_reports  # else queued for progress alone
            for i in range(ev[2], ev[3]):
                entry_kind, cid, tsize, data_size = entry(i)
                if entry_kind == "f" and progress is not None:
                    progress(data_size)
                if report:
                    ctx.emit_nested(join_display(frame.display, names[i]), cid, tsize,
                                    "file" if entry_kind == "f" else "symlink")
        elif kind == _FILE:
            _, _, name, display, path, st, looked_up = ev
            if looked_up:
                self._journal_mark(path, st)
                link, recorded_ns = self.files.hash_entry(path, st)
            else:
                link, recorded_ns = self.files.add_file_entry(path, st)
            self._added(frame, name, display, link, st, recorded_ns)
        elif kind == _KNOWN:
            _, _, name, display, link, st, recorded_ns = ev
            if ctx.progress is not None:
                ctx.progress(link.data_size)
            self._added(frame, name, display, link, st, recorded_ns)
        elif kind == _LINK:
            _, _, name, display, path, st = ev
            started = ctx.cache.clock() if frame.cached is not None and ctx.cache is not None else 0
            cid, tsize = self.files.add_symlink(path)
            frame.add(name, cid, tsize)
            if frame.cached is not None:
                DirCache.collect(frame.cached, st, started, ("l", cid, tsize, 0))
            ctx.emit_nested(display, cid, tsize, "symlink")
        elif kind == _SKIP:
            assert self.dircache is not None and frame.cached is not None
            self.dircache.sub_added(frame.cached, None)
        else:
            self._close(frame, ev[2])

    def _close(self, frame: OpenDir, parent: OpenDir | None) -> None:
        """A directory whose entries are all applied: its root, linked into its parent."""
        state = frame.cached
        if state is not None:
            assert self.dircache is not None
            link = self.dircache.finish(frame, state)
        else:
            link = frame.builder.finish(self.ctx.sink)
        set_result(frame.node, link)
        if parent is None:
            self.root = frame.node
            return
        parent.node.children.append((frame.name, frame.node))
        pstate = parent.cached
        if pstate is None or pstate.record is None:
            parent.add(frame.name, link.cid, link.tsize)
        if pstate is not None:
            assert self.dircache is not None
            self.dircache.sub_added(pstate, link)

    def _small(self, ev: tuple[Any, ...], result: SmallResult) -> None:
        _, frame, name, display, path, st, _, _, started = ev
        if isinstance(result, Exception):
            raise result
        ctx = self.ctx
        self._journal_mark(path, st)
        small: SmallFile = result
        link, blocks, before, after = small
        if blocks is not None:
            with file_sink(ctx.sink, path, before.st_size) as sink:  # a filestore references the leaves
                put_parts = getattr(sink, "put_parts", None)
                for cid, parts in blocks:
                    if put_parts is not None:
                        put_parts(cid, parts)
                    else:
                        sink.put(cid, parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts))
        if ctx.progress is not None:
            ctx.progress(link.data_size)
        stored = self.files.record(path, before, after, link, started)
        self._added(frame, name, display, link, st, started if stored else None)

    def _journal_mark(self, path: bytes, st: os.stat_result) -> None:
        """A file about to be hashed, after the replay: the live journal is asked (it knows
        nothing new, but asking marks where the file starts)."""
        journal = self.ctx.journal
        if journal is not None:
            journal.lookup(path, st)

    def _added(self, frame: OpenDir, name: bytes, display: bytes, link: FileLink, st: os.stat_result | None = None,
               recorded_ns: int | None = None) -> None:
        frame.add(name, link.cid, link.tsize)
        if frame.cached is not None:
            DirCache.collect(frame.cached, st, recorded_ns, ("f", link.cid, link.tsize, link.data_size))
        self.ctx.emit_nested(display, link.cid, link.tsize, "file")
