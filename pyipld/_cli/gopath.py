"""Go's ``path`` / ``path/filepath`` functions for POSIX paths, where output must match a Go tool."""

from __future__ import annotations

import os

__all__ = ["clean", "join"]


def clean(path: str) -> str:
    """Go's ``path.Clean`` (``filepath.Clean`` on POSIX): ``os.path.normpath``, except that a
    leading ``//`` becomes ``/`` as in Go."""
    cleaned = os.path.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def join(*elements: str) -> str:
    """Go's ``path.Join``: the non-empty elements joined by ``/`` and cleaned; ``""`` when all
    are empty. Unlike ``posixpath.join``, an element starting with ``/`` does not discard the ones
    before it, and ``..`` is resolved."""
    joined = "/".join(e for e in elements if e)
    return clean(joined) if joined else ""
