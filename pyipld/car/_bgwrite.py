"""Write to a file on a worker thread, so an import keeps hashing while the disk catches up.

``write()`` syscalls release the GIL, but the thread that makes them cannot feed the
leaf-hashing workers meanwhile. Handing sections to one writer thread overlaps the two.
Memory is bounded: at most ``max_pending_bytes`` (plus one section) wait in the queue.
An error on the writer thread (disk full…) is raised by the next ``write``/``drain``.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import IO, Final

__all__ = ["BackgroundWriter"]

_DEFAULT_PENDING_BYTES: Final = 8 << 20  # a few blocks: enough to overlap, small next to an import


class BackgroundWriter:
    """Queue ``(prefix, data)`` pairs for ``out.write`` on a daemon thread."""

    def __init__(self, out: IO[bytes], *, max_pending_bytes: int = _DEFAULT_PENDING_BYTES) -> None:
        self._out = out
        self._max = max_pending_bytes
        self._queue: deque[tuple[bytes | bytearray | memoryview, ...] | None] = deque()
        self._pending = 0
        self._cv = threading.Condition()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pyipld-car-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                item = self._queue.popleft()
            if item is None:
                return
            size = sum(len(part) for part in item)
            try:
                if self._error is None:
                    for part in item:
                        self._out.write(part)
            except BaseException as exc:  # noqa: BLE001 - handed to the producer on its next call
                self._error = exc
            with self._cv:
                self._pending -= size
                self._cv.notify_all()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self._stop()
            raise error

    def write(self, *parts: bytes | bytearray | memoryview) -> None:
        """Queue ``parts`` to be written in order (blocks while too much is pending)."""
        self._raise()
        size = sum(len(p) for p in parts)
        with self._cv:
            while self._pending and self._pending + size > self._max and self._error is None:
                self._cv.wait()
            self._pending += size
            self._queue.append(parts)
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

    def close(self) -> None:
        """Drain and stop the thread."""
        try:
            self.drain()
        finally:
            self._stop()

    def abort(self) -> None:
        """Stop without writing what is still queued."""
        self._error = None
        self._stop()
