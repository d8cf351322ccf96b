"""The ``ipfs://`` file cache: an LRU of blocks plus a read-ahead that owns no thread.

fsspec's ``background`` cache (what :class:`~pyipld.fs.core.IPFSFile` used before) keeps a
one-thread executor per open file and joins it in ``close()``. A file dropped in a reference
cycle is closed by the garbage collector, which may run while CPython's ``threading`` holds
its internal shutdown lock (inside ``Thread.start`` of a new thread): the join then waits
for that lock forever and the process hangs (pyarrow's dataset reads hit it). This cache
schedules its read-ahead on a pool the filesystem owns and never waits for it on close:
an abandoned prefetch just finishes and is dropped.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from fsspec.caching import BaseCache  # type: ignore[import-untyped]

__all__ = ["ReadAheadCache"]

Fetcher = Callable[[int, int], bytes]
Submit = Callable[[Fetcher, int, int], "Future[bytes]"]


class ReadAheadCache(BaseCache):  # type: ignore[misc]  # fsspec is untyped
    """Blocks of ``blocksize`` bytes in an LRU of ``maxblocks``; a read that continues the
    previous one schedules the next block through ``submit`` (no thread of its own)."""

    name = "prefetch"

    def __init__(self, blocksize: int, fetcher: Fetcher, size: int, maxblocks: int = 8,
                 submit: Submit | None = None) -> None:
        super().__init__(blocksize, fetcher, size)
        self.nblocks = -(-size // blocksize) if blocksize else 0
        self.maxblocks = max(2, int(maxblocks))
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._ahead: dict[int, Future[bytes]] = {}
        self._submit = submit
        self._last = -2

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_blocks=OrderedDict(), _ahead={}, _submit=None)  # futures and pools stay here
        return state

    def _fetch(self, start: int | None, stop: int | None) -> bytes:
        start = 0 if start is None else start
        stop = self.size if stop is None else min(stop, self.size)
        if start >= self.size or start >= stop:
            return b""
        first, last = start // self.blocksize, (stop - 1) // self.blocksize
        sequential = first in (self._last, self._last + 1)
        parts = [self._block(n) for n in range(first, last + 1)]
        self._last = last
        if sequential:
            self._prefetch(last + 1)
        offset = first * self.blocksize
        if len(parts) == 1:
            return parts[0][start - offset:stop - offset]
        return b"".join(parts)[start - offset:stop - offset]

    def _span(self, n: int) -> tuple[int, int]:
        return n * self.blocksize, min(self.size, (n + 1) * self.blocksize)

    def _block(self, n: int) -> bytes:
        data = self._blocks.get(n)
        if data is not None:
            self._blocks.move_to_end(n)
            self.hit_count += 1
            return data
        pending = self._ahead.pop(n, None)
        data = None
        if pending is not None:
            try:
                data = pending.result()
                self.hit_count += 1
            except Exception:  # noqa: BLE001 - the read below raises the error where it belongs
                data = None
        if data is None:
            self.miss_count += 1
            start, end = self._span(n)
            self.total_requested_bytes += end - start
            data = self.fetcher(start, end)
        self._blocks[n] = data
        while len(self._blocks) > self.maxblocks:
            self._blocks.popitem(last=False)
        return data

    def _prefetch(self, n: int) -> None:
        for stale in [k for k in self._ahead if k < n - self.maxblocks or k > n + self.maxblocks]:
            self._ahead.pop(stale).cancel()
        if self._submit is None or n >= self.nblocks or n in self._blocks or n in self._ahead:
            return
        start, end = self._span(n)
        self.total_requested_bytes += end - start
        self._ahead[n] = self._submit(self.fetcher, start, end)
