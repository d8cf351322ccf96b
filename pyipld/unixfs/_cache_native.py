"""The import cache's directory-record helpers in C (``_cache_native.c``), built once with the
system compiler (:mod:`pyipld._native_build`) and called through ctypes.

:func:`list_names` lists a directory (the tree walk's listings), :func:`stat_listing` lstats a
directory's listing relative to one open directory and packs the records
:func:`pyipld.unixfs.cache.pack_stats` packs from ``os.lstat`` results, :func:`read_listing` does
both (and the sort) in one call; :func:`index_entries` finds the entries of a record's packed
blob. All return None when the library is unavailable (no compiler, ``PYIPLD_PUREPYTHON=1``),
and the callers use their Python paths, which give the same bytes (tests compare them).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Final

from .._native_build import load_library

__all__ = ["STAT_RECORD_BYTES", "available", "index_entries", "list_names", "read_listing", "stat_listing"]

STAT_RECORD_BYTES: Final = 56  # _cache_native.c RECORD_BYTES; cache._STAT.size
_LIST_BYTES: Final = 64 << 10  # a first listing buffer: ~4,000 names of 15 bytes
_LIST_ENTRIES: Final = 4096  # read_listing's first record buffers
_SOURCE = Path(__file__).with_name("_cache_native.c")


@lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL | None:
    c_char_p, c_long, c_void_p = ctypes.c_char_p, ctypes.c_long, ctypes.c_void_p
    return load_library(_SOURCE, {
        "pyipld_stat_listing": (ctypes.c_int, [c_char_p, c_char_p, c_long, c_void_p, c_void_p]),
        "pyipld_index_entries": (ctypes.c_int, [c_char_p, c_long, c_long, c_void_p, c_void_p]),
        "pyipld_list_names": (c_long, [c_char_p, ctypes.c_int, c_void_p, c_long]),
        "pyipld_read_listing": (ctypes.c_int, [c_char_p, ctypes.c_int, c_void_p, c_long, c_long, c_void_p, c_void_p,
                                               c_void_p, c_void_p]),
    })


class _ListingBuffers(threading.local):
    """One thread's :func:`read_listing` buffers, kept between calls (not zeroed for each
    directory) and grown when a directory needs more."""

    def __init__(self) -> None:
        self.resize(_LIST_BYTES, _LIST_ENTRIES)

    def resize(self, cap: int, entries: int) -> None:
        self.cap, self.entries = cap, entries
        self.names = ctypes.create_string_buffer(cap)
        self.records = ctypes.create_string_buffer(entries * STAT_RECORD_BYTES)
        self.kinds = ctypes.create_string_buffer(entries)


_buffers = _ListingBuffers()


def available() -> bool:
    """Whether the C helpers are built and loaded."""
    return _lib() is not None


def list_names(path: bytes, hidden: bool) -> list[bytes] | None:
    """The entry names of directory ``path`` in readdir order (what ``os.scandir`` gives, dot-names
    only when ``hidden``); None when unavailable or when it failed (the caller's ``os.scandir``
    then raises the error)."""
    lib = _lib()
    if lib is None:
        return None
    cap = _LIST_BYTES
    while True:
        buf = ctypes.create_string_buffer(cap)
        used = lib.pyipld_list_names(path, hidden, buf, cap)
        if used < 0:
            return None
        if used <= cap:
            return ctypes.string_at(buf, used).split(b"\0")[:-1] if used else []
        cap = used + used // 8  # grew meanwhile: read it again, with room


def stat_listing(parent: bytes, names: Sequence[bytes]) -> tuple[bytes, bytes] | None:
    """The packed lstat records of ``names`` in directory ``parent`` and their kind bytes
    (``d f l o``); None when unavailable or when any lstat failed (the caller's Python path
    then raises the same error, or gets the same answer if the failure was transient)."""
    lib = _lib()
    if lib is None:
        return None
    n = len(names)
    out = ctypes.create_string_buffer(n * STAT_RECORD_BYTES)
    kinds = ctypes.create_string_buffer(n)
    joined = b"\0".join(names) + b"\0"
    if lib.pyipld_stat_listing(parent, joined, n, out, kinds) != 0:
        return None
    return out.raw, kinds.raw


def read_listing(path: bytes, hidden: bool) -> tuple[list[bytes], tuple[bytes, bytes] | None] | None:
    """:func:`list_names` sorted, and :func:`stat_listing` of them, in one call: the names and
    their records and kinds (None in place of those when an lstat failed); None when unavailable
    or when the listing failed (the caller's Python path then raises the error)."""
    lib = _lib()
    if lib is None:
        return None
    buf = _buffers
    used, count = ctypes.c_long(), ctypes.c_long()
    while True:
        status = lib.pyipld_read_listing(path, hidden, buf.names, buf.cap, buf.entries, buf.records, buf.kinds,
                                         ctypes.byref(used), ctypes.byref(count))
        if status != -1:
            break
        buf.resize(max(buf.cap, used.value + used.value // 8), max(buf.entries, count.value + count.value // 8))
    if status > 0:
        return None
    n = count.value
    names = ctypes.string_at(buf.names, used.value).split(b"\0")[:-1] if n else []
    if status == -2:
        return names, None
    return names, (ctypes.string_at(buf.records, n * STAT_RECORD_BYTES), ctypes.string_at(buf.kinds, n))


def index_entries(blob: bytes, n: int) -> tuple[bytes, list[int]] | None:
    """The kind byte and offset of each of the ``n`` packed entries of ``blob``; None when
    unavailable.

    Raises:
        ValueError: ``blob`` is not exactly ``n`` well-formed entries.
    """
    lib = _lib()
    if lib is None:
        return None
    kinds = ctypes.create_string_buffer(n)
    offsets = (ctypes.c_int64 * n)()
    if lib.pyipld_index_entries(blob, len(blob), n, kinds, offsets) != 0:
        raise ValueError(f"not {n} well-formed directory entries")
    return kinds.raw, offsets[:]
