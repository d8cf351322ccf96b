"""The import cache's directory-record helpers in C (``_cache_native.c``), built once with the
system compiler (:mod:`pyipld._native_build`) and called through ctypes.

:func:`list_names` lists a directory (the tree walk's listings), :func:`stat_listing` lstats a directory's listing relative to one open directory and packs the
records :func:`pyipld.unixfs.cache.pack_stats` packs from ``os.lstat`` results;
:func:`index_entries` finds the entries of a record's packed blob. Both return None when the
library is unavailable (no compiler, ``PYIPLD_PUREPYTHON=1``), and the callers use their Python
paths, which give the same bytes (tests compare them).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Final

from .._native_build import load_library

__all__ = ["STAT_RECORD_BYTES", "available", "index_entries", "list_names", "stat_listing"]

STAT_RECORD_BYTES: Final = 56  # _cache_native.c RECORD_BYTES; cache._STAT.size
_LIST_BYTES: Final = 64 << 10  # a first listing buffer: ~4,000 names of 15 bytes
_SOURCE = Path(__file__).with_name("_cache_native.c")


@lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL | None:
    c_char_p, c_long, c_void_p = ctypes.c_char_p, ctypes.c_long, ctypes.c_void_p
    return load_library(_SOURCE, {
        "pyipld_stat_listing": (ctypes.c_int, [c_char_p, c_char_p, c_long, c_void_p, c_void_p]),
        "pyipld_index_entries": (ctypes.c_int, [c_char_p, c_long, c_long, c_void_p, c_void_p]),
        "pyipld_list_names": (c_long, [c_char_p, ctypes.c_int, c_void_p, c_long]),
    })


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
