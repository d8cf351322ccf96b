"""The depth-first walk of one directory argument, in kubo's order.

A directory's entries are visited sorted by raw name bytes (Go ``os.ReadDir``), depth
first. The walk is iterative (no recursion limit) and keeps, per open directory, its
remaining names and a :class:`~.dirs.OpenDir` — never file or block data. It asks its
:class:`~.source.TreeSource` for listings and stats, its :class:`~.files.FileImporter`
for each file's and symlink's root, and :mod:`.dirs` to assemble directories — through a
:class:`~.schedule.Scheduler`, which applies them in walk order while small files are read
and hashed ahead in batches.
"""

from __future__ import annotations

import os
import stat

from ...errors import UnixFSError
from .dircache import DirCache
from .dirs import DirNode, OpenDir, open_dir
from .entries import ImportContext
from .files import FileImporter
from .readahead import DirectReads, ReadAhead
from .schedule import Scheduler
from .source import LocalSource, TreeSource, join_display, kind_name

__all__ = ["TreeImporter"]


class TreeImporter:
    """Walks trees of ``source`` into ``ctx.sink``, entries imported by ``files``."""

    def __init__(self, ctx: ImportContext, source: TreeSource, files: FileImporter) -> None:
        self.ctx = ctx
        self.source = source
        self.files = files

    def import_tree(self, fs_path: bytes, display: bytes) -> DirNode:
        """Import the directory ``fs_path`` (shown as ``display``); files and symlinks are
        reported as they are added, directories are left to :func:`~.dirs.report_dirs`."""
        dircache = None
        if DirCache.usable(self.ctx, self.files.trust_cache):
            # two directories' system calls at once, beside the walk (local trees only)
            source, jobs = self.source, self.ctx.jobs
            reads = ReadAhead(source, jobs) if isinstance(source, LocalSource) and jobs > 1 else DirectReads(source)
            dircache = DirCache(self.ctx, reads)
        sched = Scheduler(self.ctx, self.files, dircache)
        try:
            try:
                self._walk(fs_path, display, sched, dircache)
            except Exception:
                sched.drain()  # the entries before the failure, as one file at a time would have
                raise
            return sched.finish()
        finally:
            try:
                sched.shutdown()
            finally:
                if dircache is not None:
                    dircache.close()

    def _walk(self, fs_path: bytes, display: bytes, sched: Scheduler, dircache: DirCache | None) -> None:
        source = self.source
        stack = [self._open(fs_path, display, b"", source.list_dir(fs_path), dircache)]
        while stack:
            frame = stack[-1]
            state = frame.cached
            if state is not None and state.record is not None:
                # Taken from its record: its files and symlinks as runs, its sub-directories walked.
                start = state.pos
                found = state.kinds.find(b"d", start)
                end = len(state.kinds) if found < 0 else found
                if end > start:
                    sched.recorded(frame, start, end)
                state.pos = end + 1
                if found < 0:
                    stack.pop()
                    sched.close(frame, stack[-1] if stack else None)
                    continue
                sub = state.names[found]
                self._enter(stack, frame, os.path.join(frame.fs_path, sub), sub, sched, dircache)
                continue
            name = next(frame.entries, None)
            if name is None:
                stack.pop()
                sched.close(frame, stack[-1] if stack else None)
                continue
            if state is None:
                child_path, st = source.child(frame.fs_path, name)
            else:
                assert state.children is not None
                child_path, st = state.children[state.pos]
                state.pos += 1
            if stat.S_ISDIR(st.st_mode):
                self._enter(stack, frame, child_path, name, sched, dircache)
            elif stat.S_ISLNK(st.st_mode):
                sched.symlink(frame, name, join_display(frame.display, name), child_path, st)
            elif stat.S_ISREG(st.st_mode):
                sched.file(frame, name, join_display(frame.display, name), child_path, st)
            else:
                raise UnixFSError(f"unrecognized file type for {os.fsdecode(child_path)}: {kind_name(st.st_mode)}")

    def _enter(self, stack: list[OpenDir], frame: OpenDir, child_path: bytes, name: bytes, sched: Scheduler,
               dircache: DirCache | None) -> None:
        """A sub-directory of ``frame``: walked next, or left out when empty (unless kept)."""
        listing = dircache.list_dir(child_path) if dircache is not None else self.source.list_dir(child_path)
        if not listing and not self.ctx.params.empty_dirs:
            sched.skipped(frame)
        else:
            stack.append(self._open(child_path, join_display(frame.display, name), name, listing, dircache))

    def _open(self, fs_path: bytes, display: bytes, name: bytes, listing: list[bytes],
              dircache: DirCache | None) -> OpenDir:
        """A directory of ``listing`` to walk (matched against its cache record, if any)."""
        frame = open_dir(self.ctx, fs_path, display, name, listing, self.source.meta(fs_path))
        if dircache is not None:
            dircache.open(frame, listing, self.source)
        return frame
