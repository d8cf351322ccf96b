"""One entry's import: a regular file's root (precomputed, journaled, cached or hashed), a
symlink node, a stream argument.

:meth:`FileImporter.add_file` applies the hooks in order — precomputed roots (the
distributed importer), the resume journal (a file the sink already holds), the import cache
(only-hash imports) — and hashes the file otherwise, recording it in the cache and the
journal once its blocks are in the sink.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from typing import IO, Final

from ...blockstore import NullSink, file_sink
from ...chunker import BytesLike
from ...cid import DAG_PB
from ...dagpb import encode_pbnode
from ...errors import UnixFSError
from ..data import DataType, Mtime, UnixFSData, encode_unixfs_data
from ..importer import _counted, build_file, iter_chunks, iter_file_chunks
from ..nodes import FileLink
from .entries import ImportContext
from .source import TreeSource

__all__ = ["OPEN_FLAGS", "THREADED_MIN_BYTES", "FileImporter", "encode_symlink"]

THREADED_MIN_BYTES: Final = 8 << 20
"""Files at least this large get leaf-hashing threads of their own; a thread pool per tiny
file costs more than it saves."""
OPEN_FLAGS: Final = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_CLOEXEC", 0))
"""O_NOFOLLOW | O_NONBLOCK: a file swapped for a symlink or a fifo after its lstat is refused
instead of followed or waited on."""


def encode_symlink(target: bytes, mtime: Mtime | None = None) -> bytes:
    """The dag-pb block of a UnixFS symlink (no links; Data = target, + mtime)."""
    return encode_pbnode((), encode_unixfs_data(UnixFSData(DataType.SYMLINK, data=target, mtime=mtime)))


class FileImporter:
    """Imports the leaves of a tree (files, symlinks, streams) into ``ctx.sink``."""

    def __init__(self, ctx: ImportContext, source: TreeSource) -> None:
        self.ctx = ctx
        self.source = source
        # Cached roots stand in for a file only when nobody needs its blocks.
        self.trust_cache = isinstance(ctx.sink, NullSink)

    batchable = True
    """Small files may be read and hashed in batches (:mod:`.batches`): a local tree."""

    def known_root(self, fs_path: bytes, st: os.stat_result) -> tuple[FileLink, int | None] | None:
        """A regular file's root without reading it: precomputed (recording time None), or a
        trusted cache entry with its recording time (not the journal's: it is asked in walk
        order, by :meth:`add_file` or the scheduler)."""
        ctx = self.ctx
        link = ctx.file_roots(fs_path, st) if ctx.file_roots is not None else None
        if link is not None:
            return link, None
        if ctx.cache is not None and self.trust_cache:
            return ctx.cache.lookup_entry(ctx.cache_key, fs_path, st)
        return None

    def add_file(self, fs_path: bytes, st: os.stat_result) -> FileLink:
        """A regular file's root: precomputed, journaled, from the cache, or hashed here (then recorded)."""
        return self.add_file_entry(fs_path, st)[0]

    def add_file_entry(self, fs_path: bytes, st: os.stat_result) -> tuple[FileLink, int | None]:
        """:meth:`add_file`, with the time its cache entry was recorded (None: not recorded)."""
        ctx = self.ctx
        link = ctx.file_roots(fs_path, st) if ctx.file_roots is not None else None
        cache, journal = ctx.cache, ctx.journal
        if link is None and journal is not None:
            link = journal.lookup(fs_path, st)
        recorded: int | None = None
        if link is None and cache is not None and self.trust_cache:
            found = cache.lookup_entry(ctx.cache_key, fs_path, st)
            if found is not None:
                link, recorded = found
        if link is not None:
            if ctx.progress is not None:
                ctx.progress(link.data_size)
            return link, recorded
        return self.hash_entry(fs_path, st)

    def hash_entry(self, fs_path: bytes, st: os.stat_result) -> tuple[FileLink, int | None]:
        """A file no lookup knew: hashed here, then recorded in the cache and the journal; returns
        its root and the cache entry's recording time (None: not recorded)."""
        ctx = self.ctx
        cache, journal = ctx.cache, ctx.journal
        if cache is None and journal is None:
            return self.hash_file(fs_path, st.st_size)[0], None
        started = cache.clock() if cache is not None else time.time_ns()
        link, before, after = self.hash_file(fs_path, st.st_size)
        return link, started if self.record(fs_path, before, after, link, started) else None

    def record(self, fs_path: bytes, before: os.stat_result, after: os.stat_result, link: FileLink,
               started: int) -> bool:
        """A file hashed and its blocks in the sink: into the cache and the journal; returns
        whether the cache stored it."""
        ctx = self.ctx
        stored = False
        if ctx.cache is not None:
            stored = ctx.cache.record(ctx.cache_key, fs_path, before, after, link, started)
        if ctx.journal is not None:
            ctx.journal.record(fs_path, before, after, link, started)
        return stored

    def hash_file(self, fs_path: bytes, size_hint: int) -> tuple[FileLink, os.stat_result, os.stat_result]:
        """Import a regular file; returns its root and its fstat before and after reading."""
        ctx = self.ctx
        meta = self.source.meta(fs_path)
        fd = os.open(fs_path, OPEN_FLAGS)
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise UnixFSError(f"{os.fsdecode(fs_path)} changed type while being added")
        except BaseException:
            os.close(fd)
            raise
        with open(fd, "rb", buffering=0) as f, file_sink(ctx.sink, fs_path, before.st_size) as sink:
            chunks: Iterator[BytesLike] = iter_file_chunks(f, ctx.resolved.chunker, fs_path)
            if ctx.progress is not None:
                chunks = _counted(chunks, ctx.progress)
            jobs = ctx.jobs if size_hint >= THREADED_MIN_BYTES else 1
            link = build_file(chunks, ctx.resolved, sink, meta=meta, jobs=jobs)
            return link, before, os.fstat(fd)

    def add_stream(self, stream: IO[bytes]) -> FileLink:
        """A named pipe given as an argument, stdin or a URL: read to the end as one file."""
        ctx = self.ctx
        with stream:
            chunks: Iterator[BytesLike] = iter_chunks(stream, ctx.resolved.chunker)
            if ctx.progress is not None:
                chunks = _counted(chunks, ctx.progress)
            return build_file(chunks, ctx.resolved, ctx.sink, jobs=ctx.jobs)

    def add_symlink(self, fs_path: bytes) -> tuple[bytes, int]:
        """A symlink's node (its target, never followed): its CID and block size."""
        return self.put_symlink(fs_path, self.source.readlink(fs_path))

    def put_symlink(self, fs_path: bytes, target: bytes) -> tuple[bytes, int]:
        """The symlink node of ``target`` (+ mtime when asked; symlinks never carry a mode)."""
        meta = self.source.meta(fs_path)
        block = encode_symlink(target, meta.mtime if meta else None)
        cid = self.ctx.resolved.cid_builder.cid_bytes(DAG_PB, block)
        self.ctx.sink.put(cid, block)
        return cid, len(block)
