"""Reserve disk blocks ahead of a file that is being appended to, and give back the rest.

Writing 1 GiB into a new file on ext4 (delayed allocation) cost the kernel 0.24–0.33 s
of system time on our VM, and 6 runs in 13 took 1–4.6 s instead; the same writes into
space reserved beforehand with ``fallocate(FALLOC_FL_KEEP_SIZE)`` cost 0.16–0.37 s, and 1
run in 16 stalled (``benchmarks/README.md``). :class:`SpaceReserver` reserves
``step`` bytes at a time past the end of what is written. ``KEEP_SIZE`` leaves the file's
size alone, so a reader, a crash or a resumed run only ever sees the bytes written;
:meth:`SpaceReserver.release` truncates the file to its size, which frees the reserved
blocks past it.

Best effort: where ``fallocate`` is missing (not Linux, not glibc), refused by the file
system, or short of space, reserving stops quietly and the writes report what the disk
really lacks. ``PYIPLD_NO_PREALLOC=1`` turns it off.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Callable
from typing import Final

__all__ = ["SpaceReserver"]

_FALLOC_FL_KEEP_SIZE: Final = 0x01
_DEFAULT_STEP: Final = 64 << 20  # one fallocate per 64 MiB written; at most this much past the end


def _load_fallocate() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux") or os.environ.get("PYIPLD_NO_PREALLOC") == "1":
        return None
    return _libc_fallocate()


@functools.cache
def _libc_fallocate() -> Callable[[int, int, int, int], int] | None:
    """glibc's ``fallocate``, looked up once per process."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    fn.restype = ctypes.c_int
    return fn


class SpaceReserver:
    """Keep ``step`` bytes reserved past the end of an append-only file descriptor."""

    def __init__(self, fd: int, *, step: int = _DEFAULT_STEP, min_end: int = 0) -> None:
        """``min_end``: reserve nothing until the file reaches this size (spares small files the calls)."""
        self._fd = fd
        self._step = step
        self._min_end = min_end
        self._fallocate = _load_fallocate()
        self._reserved_to = 0  # the file's blocks are reserved up to here (0: nothing reserved)

    @property
    def active(self) -> bool:
        """True while reservations are still being made."""
        return self._fallocate is not None

    def ensure(self, end: int) -> None:
        """Reserve up to at least ``end`` (bytes from the file's start), ``step`` at a time."""
        if self._fallocate is None or end <= self._reserved_to or end < self._min_end:
            return
        start = self._reserved_to
        length = end - start + self._step
        if self._fallocate(self._fd, _FALLOC_FL_KEEP_SIZE, start, length) != 0:
            self._fallocate = None  # EOPNOTSUPP, ENOSPC, EBADF…: the writes will tell what matters
            return
        self._reserved_to = start + length

    def release(self, written_to: int | None = None) -> None:
        """Stop reserving and free what was reserved past the file's end (its size is kept).

        ``written_to``: where our writes ended; if the file is now longer, someone else wrote to
        it too, and it is left as it is (a truncation could race with their next write).
        """
        self._fallocate = None
        if not self._reserved_to:
            return
        self._reserved_to = 0
        try:
            size = os.fstat(self._fd).st_size
            if written_to is None or size == written_to:
                os.ftruncate(self._fd, size)
        except OSError:
            pass  # a closed or special descriptor: nothing was kept for it
