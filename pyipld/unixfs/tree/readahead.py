"""Sub-directories listed and lstat'ed ahead of the walk, on threads (cached re-imports).

A cached re-import of an unchanged tree does little besides one ``readdir`` and one
``lstat`` per entry, in C with the GIL released (:mod:`pyipld.unixfs._cache_native`),
and a little Python per directory. When a directory is taken from its record, the walk
knows which sub-directories it will enter next; :class:`ReadAhead` lists and lstats them
on ``threads`` worker threads while the walk matches the directories before them, so the
system calls of two directories run at once and beside the walk's Python.

Read-ahead follows the walk's depth-first order (the sub-directories of the directory just
opened go first) and keeps at most ``window`` directories read but not yet taken. A
directory the walk reaches before its read-ahead was started, or whose read failed, is read
on the walk's thread as without read-ahead, so errors surface where they always did. An
``exclude`` callback of the source is then also called on the worker threads.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Final, Protocol

from .source import LocalSource, TreeSource

__all__ = ["DirReads", "DirectReads", "ReadAhead", "sub_directories"]

DEFAULT_WINDOW: Final = 16  # directories read ahead and not yet taken

_Read = tuple[list[bytes], tuple[bytes, bytes] | None]


class DirReads(Protocol):
    """How a cached walk reads a directory: its listing, then its lstat records; ``want`` names
    the directories it enters next (a hint), ``close`` ends the walk."""

    def list_dir(self, path: bytes) -> list[bytes]: ...

    def stat_listing(self, path: bytes, names: list[bytes]) -> tuple[bytes, bytes] | None: ...

    def want(self, paths: Sequence[bytes]) -> None: ...

    def close(self) -> None: ...


class DirectReads:
    """The source's reads on the walk's thread, when there is nothing to read ahead with."""

    def __init__(self, source: TreeSource) -> None:
        self.list_dir = source.list_dir
        self.stat_listing = source.stat_listing

    def want(self, paths: Sequence[bytes]) -> None:
        """Nothing is read ahead."""

    def close(self) -> None:
        """Nothing to stop."""


class ReadAhead:
    """Listings (``source.list_dir``) and lstat records (``source.stat_listing``) read ahead
    (both by ``source.read_listing``)."""

    def __init__(self, source: LocalSource, threads: int, window: int = DEFAULT_WINDOW) -> None:
        self._source = source
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pyipld-readahead")
        self._window = window
        self._queue: deque[bytes] = deque()  # wanted, not yet started, in walk order
        self._started: dict[bytes, Future[_Read | None]] = {}
        self._listed: tuple[bytes, tuple[bytes, bytes] | None] | None = None  # the last listing's records

    def want(self, paths: Sequence[bytes]) -> None:
        """Directories the walk enters next, in its order (before any wanted earlier)."""
        self._queue.extendleft(reversed(paths))
        self._start()

    def list_dir(self, path: bytes) -> list[bytes]:
        """``source.list_dir(path)``, from the read-ahead when it was started."""
        future = self._started.pop(path, None)
        if future is None and self._queue and self._queue[0] == path:
            self._queue.popleft()  # the walk caught up with the read-ahead
        read = future.result() if future is not None else None
        self._start()
        self._listed = None
        if read is None:  # not started (or failed): read here, as without read-ahead
            return self._source.list_dir(path)
        names, stats = read
        self._listed = (path, stats)
        return names

    def stat_listing(self, path: bytes, names: list[bytes]) -> tuple[bytes, bytes] | None:
        """``source.stat_listing(path, names)``, read with the listing when it was read ahead."""
        listed, self._listed = self._listed, None
        if listed is not None and listed[0] == path:
            return listed[1]
        return self._source.stat_listing(path, names)

    def close(self) -> None:
        """Stop: nothing more is started; reads under way finish on their threads."""
        self._queue.clear()
        for future in self._started.values():
            future.cancel()
        self._started.clear()
        self._listed = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _start(self) -> None:
        while self._queue and len(self._started) < self._window:
            path = self._queue.popleft()
            if path not in self._started:
                self._started[path] = self._pool.submit(self._read, path)

    def _read(self, path: bytes) -> _Read | None:
        try:
            return self._source.read_listing(path)
        except (OSError, ValueError):  # read again on the walk's thread, which raises it there
            return None


def sub_directories(path: bytes, names: Sequence[bytes], kinds: bytes) -> list[bytes]:
    """The paths of the entries of kind ``d`` of a directory's listing."""
    found = kinds.find(b"d")
    subs = []
    while found >= 0:
        subs.append(os.path.join(path, names[found]))
        found = kinds.find(b"d", found + 1)
    return subs
