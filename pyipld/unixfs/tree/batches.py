"""Small regular files read and hashed in batches, on the walking thread or a worker thread.

A tree of many small files spends most of its time in per-file work: open, fstat, read,
hash, leaf encoding, close. :func:`hash_small_files` does that for a batch of files with
the least Python per file — one ``preadv`` of the whole file into a reused buffer, a
one-chunk file encoded straight by the :class:`~pyipld.unixfs.nodes.LeafMaker` (a balanced
one-leaf file is its leaf), no layout machinery — and gives back each file's root, the
blocks it made (only when a sink keeps them, in put order) and its fstat before and after
reading. ``os`` calls and ``hashlib`` release the GIL, so a batch can also run on a worker
thread while the walk goes on; :mod:`.schedule` puts the results into the sink in walk order.

A file must keep its size while it is read: :class:`~pyipld.errors.FileChangedError`
otherwise (as for large files), never the root of a mix of versions.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Sequence

from ..._sha256x2 import BATCH_MIN_BYTES
from ...blockstore import NullSink
from ...chunker import BytesLike
from ...errors import FileChangedError, UnixFSError
from .. import _fileread
from ..importer import build_file, leaf_maker
from ..nodes import ChunkGroups, FileLink, LeafMaker, Metadata
from ..params import ResolvedParams
from .files import OPEN_FLAGS

__all__ = ["Blocks", "SmallFile", "SmallResult", "hash_small_file", "hash_small_files"]

Blocks = list[tuple[bytes, tuple[BytesLike, ...]]]
"""Blocks in put order, each as the pieces its bytes are the concatenation of."""
SmallFile = tuple[FileLink, Blocks | None, os.stat_result, os.stat_result]
"""One file's ``(root, blocks or None, fstat before, fstat after)``."""
SmallResult = SmallFile | Exception
"""A file's result, or the error that stopped its batch (raised when its turn comes)."""

_local = threading.local()


def _thread_state(resolved: ResolvedParams) -> tuple[LeafMaker, list[bytearray]]:
    """This thread's leaf encoder for ``resolved`` and its two reusable read buffers (a file
    waiting for a partner to be hashed with keeps the first)."""
    state = getattr(_local, "state", None)
    if state is None or state[0] is not resolved:
        state = _local.state = (resolved, leaf_maker(resolved), [bytearray(), bytearray()])
    return state[1], state[2]


def release_thread_state() -> None:
    """Drop this thread's read buffers (up to the batching limit): the walking thread's outlive
    no import (the pool's threads end with the pool)."""
    _local.state = None


class _Collect:
    """A sink that keeps blocks, in order, for the walking thread to store."""

    __slots__ = ("blocks",)

    def __init__(self) -> None:
        self.blocks: Blocks = []

    def put(self, cid: bytes, data: bytes) -> None:
        self.blocks.append((cid, (data,)))

    def put_parts(self, cid: bytes, parts: Sequence[BytesLike]) -> None:
        self.blocks.append((cid, tuple(parts)))


def _read_whole(fs_path: bytes, buf: bytearray | None) -> tuple[memoryview, os.stat_result, os.stat_result]:
    """A regular file's bytes (into ``buf``, grown as needed; a buffer of their own when None)
    and its fstat before and after reading; its size must not change meanwhile."""
    fd = os.open(fs_path, OPEN_FLAGS)
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise UnixFSError(f"{os.fsdecode(fs_path)} changed type while being added")
        size = before.st_size
        if buf is None:
            buf = bytearray(size)
        elif len(buf) < size:
            buf.extend(bytes(size - len(buf)))
        view = memoryview(buf)[:size]
        if size:
            _fileread.pread_exact(fd, view, 0, size, os.fsdecode(fs_path))  # by module: tests hook it
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if after.st_size != size:
        raise FileChangedError(os.fsdecode(fs_path), size, after.st_size)
    return view, before, after


def _one_leaf(size: int, chunk_size: int, meta: Metadata | None, resolved: ResolvedParams) -> bool:
    """A balanced one-chunk file without metadata is its leaf (layout_balanced): no layout machinery."""
    return 0 < size <= chunk_size and meta is None and resolved.layout == "balanced"


def hash_small_file(fs_path: bytes, resolved: ResolvedParams, chunk_size: int, meta: Metadata | None,
                    keep: bool) -> SmallFile:
    """Import one regular file read whole, cut into ``chunk_size`` chunks (a ``size-N`` chunker)."""
    leaves, buffers = _thread_state(resolved)
    view, before, after = _read_whole(fs_path, None if keep else buffers[0])  # kept blocks: a buffer of their own
    return _encode(view, before, after, leaves, resolved, chunk_size, meta, keep)


def _encode(view: memoryview, before: os.stat_result, after: os.stat_result, leaves: LeafMaker,
            resolved: ResolvedParams, chunk_size: int, meta: Metadata | None, keep: bool) -> SmallFile:
    size = len(view)
    if _one_leaf(size, chunk_size, meta, resolved):
        if keep:
            cid, parts, block_len = leaves.leaf_parts(view, private=True)
            return FileLink(cid, block_len, size), [(cid, parts)], before, after
        cid, _, block_len = leaves.leaf(view, False)
        return FileLink(cid, block_len, size), None, before, after
    chunks = ChunkGroups([[view[i : i + chunk_size] for i in range(0, size, chunk_size)]])  # hashed two at a time
    if keep:
        sink = _Collect()
        return build_file(chunks, resolved, sink, meta=meta), sink.blocks, before, after
    return build_file(chunks, resolved, NullSink(), meta=meta), None, before, after


def hash_small_files(paths: Sequence[bytes], resolved: ResolvedParams, chunk_size: int,
                     meta_for: Callable[[bytes], Metadata | None], keep: bool) -> list[SmallResult]:
    """:func:`hash_small_file` of each path in order; stops at the first error (returned last).

    Only-hash one-leaf files of at least :data:`~pyipld._sha256x2.BATCH_MIN_BYTES` are hashed
    two at a time: the first waits in this thread's first buffer while the next one is read
    into the second."""
    if keep:
        return _each(paths, resolved, chunk_size, meta_for, keep)
    leaves, buffers = _thread_state(resolved)
    out: list[SmallResult | None] = []
    waiting: tuple[int, memoryview, os.stat_result, os.stat_result] | None = None

    def flush(partner: tuple[int, memoryview, os.stat_result, os.stat_result] | None = None) -> None:
        nonlocal waiting
        assert waiting is not None
        pair = [waiting] if partner is None else [waiting, partner]
        for (index, view, before, after), (cid, _, block_len) in zip(
                pair, leaves.leaves([p[1] for p in pair], False), strict=True):
            out[index] = (FileLink(cid, block_len, len(view)), None, before, after)
        waiting = None

    for path in paths:
        try:
            meta = meta_for(path)
            view, before, after = _read_whole(path, buffers[1] if waiting is not None else buffers[0])
            if len(view) >= BATCH_MIN_BYTES and _one_leaf(len(view), chunk_size, meta, resolved):
                out.append(None)
                if waiting is None:
                    waiting = (len(out) - 1, view, before, after)
                else:
                    flush((len(out) - 1, view, before, after))
            else:
                out.append(_encode(view, before, after, leaves, resolved, chunk_size, meta, False))
            del view  # a buffer with a view cannot grow for the next file
        except Exception as exc:  # noqa: BLE001 - raised by the walking thread when the file's turn comes
            out.append(exc)
            break
    if waiting is not None:
        flush()
    assert all(result is not None for result in out)
    return out  # type: ignore[return-value]  # every None was filled by flush


def _each(paths: Sequence[bytes], resolved: ResolvedParams, chunk_size: int,
          meta_for: Callable[[bytes], Metadata | None], keep: bool) -> list[SmallResult]:
    out: list[SmallResult] = []
    for path in paths:
        try:
            out.append(hash_small_file(path, resolved, chunk_size, meta_for(path), keep))
        except Exception as exc:  # noqa: BLE001 - raised by the walking thread when the file's turn comes
            out.append(exc)
            break
    return out
