"""Whole-directory records of the import cache (:mod:`pyipld.unixfs.cache`) in the walk.

When a directory is opened, its listing is lstat'ed at once and matched against its record
(:meth:`~pyipld.unixfs.cache.ImportCache.take_dir`: names and stat data byte-equal, nothing
racy). A matching directory's files and symlinks are taken from the record — no per-file
lookups, no walk step per file (runs of them are one scheduler event, and none when nothing is
reported), no directory re-encoding when its sub-directories (walked as usual: they have records
of their own) come out as recorded. Any other directory collects what a new record needs while
its entries are applied in walk order, and is recorded when finished (or its old record is
dropped when an entry could not be recorded: an unstable read, a racy file).

Used only in only-hash imports (a sink needs the blocks of every file) without precomputed
roots, a journal or mode/mtime parameters, and with the cache's default comparison.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..cache import NO_SLACK, DirEntry, DirRecord, dir_signature, pack_stats
from ..directory import DirLink
from .dirs import OpenDir
from .entries import ImportContext
from .readahead import DirReads, sub_directories
from .source import TreeSource

__all__ = ["DirCache", "DirState"]


@dataclass(slots=True)
class DirState:
    """A directory's cache state while it is walked."""

    names: list[bytes]
    kinds: bytes
    """One byte per entry: ``d`` directory, ``f`` file, ``l`` symlink, ``o`` anything else."""
    children: list[tuple[bytes, os.stat_result]] | None
    """Without a record: each entry's path and lstat, taken when the directory was opened."""
    signature: bytes
    record: DirRecord | None
    """A matching record: its entries stand in for the files and symlinks."""
    pos: int = 0  # entries visited by the walk
    collect: list[DirEntry] | None = field(default_factory=list)
    """Without a record: the entries for a new one (None: this directory cannot be recorded)."""
    slack: int = NO_SLACK
    sub_links: list[tuple[bytes, int] | None] = field(default_factory=list)
    """With a record: the sub-directories' links as they came out (None: an empty one left out)."""


class DirCache:
    """Matches, collects and records whole directories (see the module docstring)."""

    def __init__(self, ctx: ImportContext, reads: DirReads) -> None:
        """``reads``: the source's listings and lstat records, read ahead of the walk
        (:class:`~.readahead.ReadAhead`: told which sub-directories of a directory taken from its
        record come next) or not (:class:`~.readahead.DirectReads`); closed by :meth:`close`."""
        assert ctx.cache is not None
        self.cache = ctx.cache
        self.key = ctx.cache_key
        self.sink = ctx.sink
        self.reads = reads

    def list_dir(self, path: bytes) -> list[bytes]:
        """The source's listing of ``path`` (read ahead when it was)."""
        return self.reads.list_dir(path)

    def close(self) -> None:
        """Stop reading ahead."""
        self.reads.close()

    @staticmethod
    def usable(ctx: ImportContext, trust_cache: bool) -> bool:
        """Whether this import can use directory records."""
        return (ctx.cache is not None and ctx.cache.dirs_usable and trust_cache and ctx.file_roots is None
                and ctx.journal is None and not ctx.params.has_metadata)

    def open(self, frame: OpenDir, names: list[bytes], source: TreeSource) -> None:
        """lstat the listing; with a matching record, take it.

        A directory with a record is first lstat'ed by the source's C helper (no ``os.stat_result``
        per entry); when that does not match, or fails, the listing is lstat'ed again entry by
        entry, and that is what the walk uses and a new record describes."""
        cache, key, path, reads = self.cache, self.key, frame.fs_path, self.reads
        row = cache.dir_row(key, path)
        native = reads.stat_listing(path, names) if row is not None else None
        if row is not None and native is not None:
            signature = dir_signature(names, native[0])
            record = cache.take_dir(key, path, row, signature, names, native[1])
            if record is not None:
                frame.cached = DirState(names, native[1], None, signature, record, collect=None)
                reads.want(sub_directories(path, names, native[1]))
                return
        children = [source.child(path, name) for name in names]
        records, kinds = pack_stats([st for _, st in children])
        signature = dir_signature(names, records)
        record = None
        if row is not None and native is None:
            record = cache.take_dir(key, path, row, signature, names, kinds)
            if record is not None:
                reads.want(sub_directories(path, names, kinds))
        frame.cached = DirState(names, kinds, None if record is not None else children, signature, record,
                                collect=None if record is not None else [])

    @staticmethod
    def collect(state: DirState, st: os.stat_result | None, recorded_ns: int | None, entry: DirEntry) -> None:
        """An entry of a directory without a record is in: note it (a file or symlink without a
        recording time — an unstable read — leaves the directory unrecorded)."""
        if state.collect is None:
            return
        if st is not None:
            if recorded_ns is None:
                state.collect = None
                return
            state.slack = min(state.slack, recorded_ns - max(st.st_mtime_ns, st.st_ctime_ns))
        state.collect.append(entry)

    def sub_added(self, state: DirState, link: DirLink | None) -> None:
        """A sub-directory of a cache-walked directory is finished (None: an empty one left out)."""
        if state.record is not None:
            state.sub_links.append(None if link is None else (link.cid, link.tsize))
        else:
            self.collect(state, None, None, ("d", b"", 0, 0) if link is None else ("d", link.cid, link.tsize, 0))

    def finish(self, frame: OpenDir, state: DirState) -> DirLink:
        """The directory's root: its record's when its sub-directories came out as recorded,
        else built from its entries (and recorded)."""
        record = state.record
        if record is None:
            link = frame.builder.finish(self.sink)
            if state.collect is not None:
                self.cache.record_dir(self.key, frame.fs_path, state.collect, link.cid, link.tsize, link.sharded,
                                      state.signature, state.slack)
            else:
                self.cache.forget_dir(self.key, frame.fs_path)
            return link
        kinds = record.kinds
        subs: list[int] = []
        j = kinds.find(b"d")
        while j >= 0:
            subs.append(j)
            j = kinds.find(b"d", j + 1)
        recorded = [(e[1], e[2]) if e[1] else None for e in map(record.entry, subs)]
        if recorded == state.sub_links:
            return DirLink(record.cid, record.tsize, record.sharded)
        sub_links = iter(state.sub_links)
        entries: list[DirEntry] = []
        for i, name in enumerate(state.names):
            entry = record.entry(i)
            if entry[0] == "d":
                sub = next(sub_links)
                entry = ("d", b"", 0, 0) if sub is None else ("d", sub[0], sub[1], 0)
            entries.append(entry)
            if entry[1]:
                frame.add(name, entry[1], entry[2])
        link = frame.builder.finish(self.sink)
        self.cache.record_dir(self.key, frame.fs_path, entries, link.cid, link.tsize, link.sharded,
                              record.signature, record.slack)
        return link
