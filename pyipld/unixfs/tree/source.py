"""Where a tree's entries come from: listing directories and stating entries of a local tree.

:class:`LocalSource` answers the walk's questions about the file system — a directory's
entry names (sorted by raw bytes like Go ``os.ReadDir``, hidden and excluded names left
out), an entry's path and ``lstat``, a symlink's target, the mode/mtime metadata asked
for — and nothing else. :mod:`pyipld.unixfs.remote` answers the same questions (:class:`TreeSource`) for an
fsspec URL.
"""

from __future__ import annotations

import os
import stat
from typing import Protocol

from .. import _cache_native
from ..importer import metadata_for
from ..nodes import Metadata
from ..params import ImportParams
from .entries import ExcludeCallback

__all__ = ["LocalSource", "TreeSource", "base_name", "join_display", "kind_name"]


class TreeSource(Protocol):
    """What the walk asks of a tree: :class:`LocalSource` for the local file system,
    :mod:`pyipld.unixfs.remote` for an fsspec URL (every method, none inherited)."""

    def list_dir(self, fs_path: bytes) -> list[bytes]: ...

    def child(self, parent: bytes, name: bytes) -> tuple[bytes, os.stat_result]: ...

    def stat_listing(self, parent: bytes, names: list[bytes]) -> tuple[bytes, bytes] | None: ...

    def lstat(self, path: bytes) -> os.stat_result: ...

    def is_dir(self, path: bytes) -> bool: ...

    def top_name(self, path: bytes) -> bytes: ...

    def readlink(self, path: bytes) -> bytes: ...

    def meta(self, fs_path: bytes) -> Metadata | None: ...


class LocalSource:
    """A tree in the local file system (paths are raw bytes)."""

    def __init__(self, params: ImportParams, exclude: ExcludeCallback | None = None) -> None:
        self.params = params
        self.exclude = exclude

    def list_dir(self, fs_path: bytes) -> list[bytes]:
        """Entry names, sorted by raw bytes (Go os.ReadDir), hidden ones filtered.

        Only names are kept (not DirEntry objects): a directory of a million entries
        costs its names, and ``lstat`` happens when an entry is visited anyway. Read by the
        C helper when it is built (~3× faster), else (or when it fails) by ``os.scandir``.
        """
        hidden, exclude = self.params.hidden, self.exclude
        names = _cache_native.list_names(fs_path, hidden)
        if names is None:
            with os.scandir(fs_path) as it:
                names = [e.name for e in it if hidden or not e.name.startswith(b".")]
        if exclude is not None:
            names = [name for name in names if not exclude(name)]
        names.sort()
        return names

    def child(self, parent: bytes, name: bytes) -> tuple[bytes, os.stat_result]:
        """An entry of a listed directory: its path and lstat."""
        child_path = os.path.join(parent, name)
        return child_path, os.lstat(child_path)

    def stat_listing(self, parent: bytes, names: list[bytes]) -> tuple[bytes, bytes] | None:
        """The lstat records (:func:`~pyipld.unixfs.cache.pack_stats`) and kinds of ``names`` in
        ``parent``, from the C helper; None when it is unavailable or an lstat failed (then the
        caller lstats each entry with :meth:`child`)."""
        return _cache_native.stat_listing(parent, names)

    def read_listing(self, fs_path: bytes) -> tuple[list[bytes], tuple[bytes, bytes] | None]:
        """:meth:`list_dir` and :meth:`stat_listing` of it, in one C call when it can be (one
        open, the sort in C); without an ``exclude`` callback, which runs in Python."""
        if self.exclude is None:
            read = _cache_native.read_listing(fs_path, self.params.hidden)
            if read is not None:
                return read
        names = self.list_dir(fs_path)
        return names, self.stat_listing(fs_path, names)

    def lstat(self, path: bytes) -> os.stat_result:
        """A top-level argument's lstat."""
        return os.lstat(path)

    def is_dir(self, path: bytes) -> bool:
        """A top-level argument that needs ``-r`` (missing ones fail later, when imported)."""
        return os.path.isdir(path) and not os.path.islink(path)

    def top_name(self, path: bytes) -> bytes:
        """The entry name of a top-level argument."""
        return base_name(path)

    def readlink(self, path: bytes) -> bytes:
        """A symlink's target bytes."""
        return os.readlink(path)

    def meta(self, fs_path: bytes) -> Metadata | None:
        """The mode/mtime an entry's node carries (None: no metadata asked for)."""
        if not self.params.has_metadata:
            return None
        return metadata_for(self.params, fs_path)  # type: ignore[arg-type]


def join_display(display: bytes, name: bytes) -> bytes:
    """The display path of ``name`` inside the directory shown as ``display``."""
    return display + b"/" + name if display else name


def kind_name(mode: int) -> str:
    """A refused file's mode as Go's ``os.FileMode.String()`` shows it (``prw-r--r--`` for a
    fifo): boxo's ``files.NewSerialFileWithFilter`` ends its "unrecognized file type" error so."""
    kinds = ((stat.S_ISDIR, "d"), (stat.S_ISLNK, "L"), (stat.S_ISBLK, "D"), (stat.S_ISCHR, "D"),
             (stat.S_ISFIFO, "p"), (stat.S_ISSOCK, "S"))
    letters = "".join(letter for test, letter in kinds if test(mode))
    letters += "".join(letter for bit, letter in ((stat.S_ISUID, "u"), (stat.S_ISGID, "g")) if mode & bit)
    letters += "c" if stat.S_ISCHR(mode) else ""
    letters += "t" if mode & stat.S_ISVTX else ""
    perms = "".join(ch if mode & (1 << (8 - i)) else "-" for i, ch in enumerate("rwxrwxrwx"))
    return (letters or "-") + perms


def base_name(path: bytes) -> bytes:
    """The name kubo shows for a path argument: Go ``filepath.Base`` of the cleaned path
    (``.`` and ``..`` name the directory they stand for)."""
    base = os.path.basename(os.path.normpath(path))
    if base in (b".", b"..", b""):
        base = os.path.basename(os.path.abspath(path)) or b"/"
    return base
