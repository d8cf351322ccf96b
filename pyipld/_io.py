"""Small I/O helpers shared by the readers."""

from __future__ import annotations

import errno
import mmap
import os
import stat
from typing import IO, Final

__all__ = ["PLAIN_FILE_FLAGS", "read_exact", "read_plain_file", "use_mmap"]

PLAIN_FILE_FLAGS: Final = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
                           | getattr(os, "O_CLOEXEC", 0))
"""Open a file that must be a plain one: a symlink is refused (ELOOP), a FIFO not waited on."""


def read_exact(stream: IO[bytes], n: int) -> bytes:
    """Read ``n`` bytes, retrying short reads (pipes, raw files); fewer only at EOF (Go io.ReadFull)."""
    data = stream.read(n) or b""
    if len(data) == n:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = stream.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def read_plain_file(path: str | os.PathLike[str], max_bytes: int) -> bytes | None:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``, else None (a
    symlink, which is not followed, a FIFO, a device, a file too large or changing size while
    read): a side input that is a link to /dev/zero must not be read until memory runs out.

    Raises:
        OSError: ``path`` cannot be opened (missing, no permission…).
    """
    try:
        fd = os.open(path, PLAIN_FILE_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
            return None
        data = os.read(fd, st.st_size + 1)  # one read for a file that does not change meanwhile
        while len(data) < st.st_size and (more := os.read(fd, st.st_size + 1 - len(data))):
            data += more
        return data if len(data) == st.st_size else None
    finally:
        os.close(fd)


def use_mmap() -> bool:
    """Map files only when asked (``PYIPLD_MMAP=1``): a file truncated while mapped kills the
    process with SIGBUS, which Python cannot turn into an error."""
    return hasattr(mmap, "MAP_SHARED") and os.environ.get("PYIPLD_MMAP", "") not in ("", "0")
