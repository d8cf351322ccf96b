"""Go's ``path`` / ``path/filepath`` functions for POSIX paths, where output must match a Go tool."""

from __future__ import annotations

import os

from ..errors import ConfigError

__all__ = ["clean", "ipfs_path", "join"]


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


def ipfs_path(text: str) -> str:
    """An ``ipfs-path`` argument as kubo 0.22 reads it (boxo v0.11 ``path.ParsePath``, then
    ``Path.Segments``, which applies ``path.Clean``): ``CID[/name...]`` with ``.``, ``..`` and
    empty components resolved lexically. A leading ``/`` needs a namespace (``/ipfs/CID``).

    Raises:
        ConfigError: kubo's ``invalid path "…": …`` (a bad CID is left to the resolver).
    """
    parts = text.split("/")
    if parts[0]:
        text_ipfs = "/ipfs/" + text
    elif len(parts) < 3:
        raise ConfigError(f'invalid path "{text}": invalid ipfs path')
    elif parts[1] != "ipfs":
        raise ConfigError(f"unsupported path namespace: {parts[1]}" if parts[1] in ("ipns", "ipld")
                          else f'invalid path "{text}": unknown namespace "{parts[1]}"')
    elif not parts[2]:
        raise ConfigError(f'invalid path "{text}": not enough path components')
    else:
        text_ipfs = text
    segments = clean(text_ipfs).split("/")[1:]  # after the leading ""; "ipfs" unless ".." went above it
    if segments[:1] == ["ipfs"]:
        segments = segments[1:]
    if not segments:
        raise ConfigError(f'invalid path "{text}": empty')
    return "/".join(segments)
