"""Keep glibc from returning and re-faulting the heap on every large network message.

A bitswap fetch allocates and frees a few 64 KiB-4 MiB buffers per block (a decrypted
read, a message, a block). glibc serves them from the top of the heap and, whenever the
free space there passes ``M_TRIM_THRESHOLD`` (by default twice the dynamic mmap threshold:
~0.5 MiB here), gives it back to the kernel; the next block faults it in again, zeroed.
Fetching 256 MiB from kubo took ~180,000 minor page faults and ~0.6 s of system time that
way, ~1/3 of the process's CPU; with the thresholds below, ~20,000 and ~0.2 s.

:func:`tune_for_streaming` is called by the command-line verbs that talk to peers (their
process is ours); library users may call it in theirs. The heap may then keep up to
``trim_bytes`` free above what is in use. A no-op where ``mallopt`` is not glibc's, or
with ``PYIPLD_NO_MALLOPT=1``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["tune_for_streaming"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def tune_for_streaming(*, trim_bytes: int = 32 << 20, mmap_bytes: int = 8 << 20) -> bool:
    """Raise glibc's trim and mmap thresholds once per process; True when applied."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("PYIPLD_NO_MALLOPT") == "1":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mmap first: setting it also turns off glibc's dynamic adjustment of both thresholds
    ok = bool(mallopt(_M_MMAP_THRESHOLD, mmap_bytes) == 1 and mallopt(_M_TRIM_THRESHOLD, trim_bytes) == 1)
    _done = ok
    return ok
