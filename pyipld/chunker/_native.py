"""The buzhash cut search in C (``_buzhash_native.c``), built once with the system compiler
into the cache (:mod:`pyipld._native_build`, as the CommP accelerator), and called through ctypes (which releases the GIL).

It is what ``backend="numba"`` uses when it can: the same answers (tests compare every
backend), ~numba's speed, and no numba import at start-up (~0.5 s of every
``pyipld add -s buzhash``). Unavailable (no compiler, ``PYIPLD_PUREPYTHON``): None.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from pathlib import Path

from .._native_build import load_library
from . import BytesLike
from ._window import Decide

__all__ = ["buzhash_decide"]

_SOURCE = Path(__file__).with_name("_buzhash_native.c")


@lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL | None:
    c_long, c_void_p = ctypes.c_long, ctypes.c_void_p
    return load_library(_SOURCE, {"pyipld_buzhash_decide": (
        c_long, [c_void_p, c_long, ctypes.c_int, c_void_p, c_long, c_long, ctypes.c_uint32, c_void_p])})


def buzhash_decide() -> Decide | None:
    """A ``decide(buf, eof)`` for :mod:`pyipld.chunker._window`, or None when not built."""
    lib = _lib()
    if lib is None:
        return None
    from .buzhash import BUZ_MASK, BUZ_MAX, BUZ_MIN, BYTEHASH

    table = (ctypes.c_uint32 * 256)(*BYTEHASH)
    scan = lib.pyipld_buzhash_decide

    def decide(buf: BytesLike, eof: bool) -> list[int]:
        n = len(buf)
        ends = (ctypes.c_int64 * (n // BUZ_MIN + 2))()
        if isinstance(buf, bytes):
            count = scan(buf, n, eof, table, BUZ_MIN, BUZ_MAX, BUZ_MASK, ends)
        else:
            view = memoryview(buf).cast("B")
            if view.readonly:  # ctypes takes no address of a read-only buffer
                data: object = bytes(view)
                count = scan(data, n, eof, table, BUZ_MIN, BUZ_MAX, BUZ_MASK, ends)
            else:
                arr = (ctypes.c_char * n).from_buffer(view)
                try:
                    count = scan(arr, n, eof, table, BUZ_MIN, BUZ_MAX, BUZ_MASK, ends)
                finally:
                    del arr
        return ends[:count]

    return decide
