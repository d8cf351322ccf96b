"""Small I/O helpers shared by the readers."""

from __future__ import annotations

import mmap
import os
from typing import IO

__all__ = ["read_exact", "use_mmap"]


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


def use_mmap() -> bool:
    """Map files only when asked (``PYIPLD_MMAP=1``): a file truncated while mapped kills the
    process with SIGBUS, which Python cannot turn into an error."""
    return hasattr(mmap, "MAP_SHARED") and os.environ.get("PYIPLD_MMAP", "") not in ("", "0")
