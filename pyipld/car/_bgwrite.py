"""Write to a file on a worker thread, so an import keeps hashing while the disk catches up.

``write()`` syscalls release the GIL, but the thread that makes them cannot feed the
leaf-hashing workers meanwhile. Handing sections to one writer thread overlaps the two.
Memory is bounded: at most ``max_pending_bytes`` (plus one section) wait in the queue.
An error on the writer thread (disk full…) is raised by the next ``write``/``drain``.

Given the output's file descriptor (a plain file, flushed), the thread writes everything
queued at once with ``os.writev`` (up to 1024 pieces a call) instead of one ``write`` a
piece: a 256 KiB leaf is 2–4 pieces. :meth:`BackgroundWriter.call_when_written` runs a
function once everything queued before it is written, e.g. to reuse the buffer the
pieces were views of.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from typing import IO, Final

from .._prealloc import SpaceReserver
from ..errors import CarError

__all__ = ["BackgroundWriter"]

_DEFAULT_PENDING_BYTES: Final = 8 << 20  # a few blocks: enough to overlap, small next to an import
_IOV_MAX: Final = 1024

_Parts = tuple[bytes | bytearray | memoryview, ...]


class BackgroundWriter:
    """Queue ``(prefix, data)`` pairs for ``out.write`` on a daemon thread."""

    def __init__(self, out: IO[bytes], *, max_pending_bytes: int | None = None,
                 fd: int | None = None) -> None:
        """``fd``: ``out``'s file descriptor, flushed, at its position: written with ``os.writev``.
        ``max_pending_bytes``: default :data:`_DEFAULT_PENDING_BYTES`, read at each call."""
        self._out = out
        self._fd = fd
        self._max = _DEFAULT_PENDING_BYTES if max_pending_bytes is None else max_pending_bytes
        self._queue: deque[_Parts | Callable[[], None] | None] = deque()
        self._pending = 0
        self._cv = threading.Condition()
        self._error: BaseException | None = None
        self._stopped = False
        self._space: SpaceReserver | None = None
        self._position = 0
        if fd is not None:
            try:
                self._position = os.lseek(fd, 0, os.SEEK_CUR)
            except OSError:  # a pipe (stdout): nothing to reserve
                pass
            else:
                self._space = SpaceReserver(fd)
        self._thread = threading.Thread(target=self._run, name="pyipld-car-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                batch: list[bytes | bytearray | memoryview] = []
                calls: list[Callable[[], None]] = []
                stop = False
                while self._queue and len(batch) < _IOV_MAX and not calls:
                    item = self._queue[0]
                    if item is None:
                        stop = True
                        break
                    if callable(item):  # written after the parts before it: next batch, or now
                        if not batch:
                            calls.append(item)
                            self._queue.popleft()
                        break
                    if batch and len(batch) + len(item) > _IOV_MAX:
                        break
                    self._queue.popleft()
                    batch.extend(item)
            size = sum(len(part) for part in batch)
            try:
                if self._error is None and batch:
                    if self._fd is not None:
                        if self._space is not None:
                            self._space.ensure(self._position + size)
                        _writev_all(self._fd, batch)
                        self._position += size
                    else:
                        for part in batch:
                            self._out.write(part)
                for call in calls:
                    call()
            except BaseException as exc:  # noqa: BLE001 - handed to the producer on its next call
                self._error = exc
            with self._cv:
                self._pending -= size
                self._cv.notify_all()
            if stop:
                return

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self._stop()
            raise error

    def _check_running(self) -> None:
        self._raise()
        if self._stopped:
            raise CarError("the CAR writer thread has stopped (after an error or close): nothing more is written")

    def write(self, *parts: bytes | bytearray | memoryview) -> None:
        """Queue ``parts`` to be written in order (blocks while too much is pending)."""
        self._check_running()
        size = sum(len(p) for p in parts)
        with self._cv:
            while self._pending and self._pending + size > self._max and self._error is None:
                self._cv.wait()
            self._pending += size
            self._queue.append(parts)
            self._cv.notify_all()

    def call_when_written(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` (on the writer thread) once everything queued so far is written."""
        self._check_running()
        with self._cv:
            self._queue.append(fn)
            self._cv.notify_all()

    def drain(self) -> None:
        """Wait until everything queued is written; re-raise a writer error."""
        with self._cv:
            while self._pending and self._error is None:
                self._cv.wait()
        self._raise()

    def _stop(self) -> None:
        if self._thread.is_alive():
            with self._cv:
                self._queue.clear()
                self._queue.append(None)
                self._cv.notify_all()
            self._thread.join()
        with self._cv:  # what was still queued is dropped: nothing is pending any more
            self._stopped = True
            self._queue.clear()
            self._pending = 0
            self._cv.notify_all()

    def _release_space(self) -> None:
        if self._space is not None:
            self._space.release(self._position)

    def close(self) -> None:
        """Drain, stop the thread and free the disk space reserved past what was written."""
        try:
            self.drain()
        finally:
            self._stop()
            self._release_space()

    def abort(self) -> None:
        """Stop without writing what is still queued (the reserved space is freed too)."""
        self._error = None
        self._stop()
        self._release_space()


def _writev_all(fd: int, parts: list[bytes | bytearray | memoryview]) -> None:
    """``os.writev`` until every byte of ``parts`` is written."""
    views = [memoryview(p).cast("B") for p in parts]
    while views:
        n = os.writev(fd, views)
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if views and n:
            views[0] = views[0][n:]
