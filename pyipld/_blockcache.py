"""A thread-safe in-memory LRU of blocks, bounded by their total bytes.

Shared by the ``ipfs://`` filesystem's source chain and the gateway block source: recently
verified blocks, so a range read or a ``has()`` then ``get()`` costs one fetch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["Bytes", "MemoryBlockCache"]

Bytes = bytes | memoryview


class MemoryBlockCache:
    """A thread-safe LRU of verified blocks, bounded by total bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._blocks: OrderedDict[bytes, Bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, cid: bytes) -> Bytes | None:
        with self._lock:
            data = self._blocks.get(cid)
            if data is not None:
                self._blocks.move_to_end(cid)
            return data

    def put(self, cid: bytes, data: Bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            if cid in self._blocks:
                return
            self._blocks[cid] = data
            self._bytes += len(data)
            while self._bytes > self.max_bytes:
                _, old = self._blocks.popitem(last=False)
                self._bytes -= len(old)

    def __len__(self) -> int:
        return len(self._blocks)
