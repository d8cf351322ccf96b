"""The vocabulary of a tree import: its inputs, its output events and the hooks it takes.

No logic: what :mod:`.paths` accepts and reports, shared by the walk (:mod:`.walk`), the
per-file import (:mod:`.files`) and the sources (:mod:`.source`, :mod:`pyipld.unixfs.remote`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Literal, Protocol

from ...blockstore import BlockSink
from ...cid import CID
from ..cache import ImportCache, params_key
from ..nodes import FileLink
from ..params import ImportParams, ResolvedParams

__all__ = ["AddedCallback", "AddedEntry", "EntryKind", "ExcludeCallback", "FileJournal", "FileRoots",
           "ImportContext", "NamedStream", "ProgressCallback"]

EntryKind = Literal["file", "directory", "symlink"]
AddedCallback = Callable[["AddedEntry"], None]
ProgressCallback = Callable[[int], None]
FileRoots = Callable[[bytes, os.stat_result], FileLink | None]
"""Precomputed file roots: ``(path, lstat) -> root link``, or None to hash the file here."""
ExcludeCallback = Callable[[bytes], bool]


class FileJournal(Protocol):
    """Files a resumable output already holds (``add --car`` re-run, :mod:`pyipld.car.resume`).

    ``lookup`` is called before every regular file is read, in walk order, when the blocks
    of every file before it are in the sink: a link means the file's blocks are already
    there, so it is not read and its blocks are not put again. Otherwise the file is read
    and ``record`` is called once its blocks are all in the sink. ``live`` is true once no
    file can be skipped any more: files are then read ahead of their turn (their ``lookup``
    still comes in walk order, just before their blocks are put).
    """

    @property
    def live(self) -> bool: ...

    def lookup(self, path: bytes, st: os.stat_result) -> FileLink | None: ...

    def record(self, path: bytes, before: os.stat_result, after: os.stat_result, link: FileLink,
               started_ns: int) -> None: ...


@dataclass(frozen=True, slots=True)
class NamedStream:
    """A file argument that is not a path in the file system (stdin, an ``http(s)://`` URL):
    added as one file named ``name``; ``open`` is called once, when its turn comes."""

    name: bytes
    open: Callable[[], IO[bytes]]


@dataclass(frozen=True, slots=True)
class AddedEntry:
    """One ``added <cid> <path>`` event.

    Attributes:
        path: kubo's display path as raw bytes (``base/sub/file``; ``b""`` for a wrapper).
        cid: the entry's root CID.
        size: its cumulative DAG size (kubo's ``Size``).
        kind: ``file``, ``directory`` or ``symlink``.
    """

    path: bytes
    cid: CID
    size: int
    kind: EntryKind

    @property
    def name(self) -> str:
        """``path`` decoded for display (undecodable bytes as surrogate escapes)."""
        return os.fsdecode(self.path)


@dataclass(slots=True)
class ImportContext:
    """What every part of one tree import shares: parameters, the sink, callbacks and hooks."""

    params: ImportParams
    resolved: ResolvedParams
    sink: BlockSink
    on_added: AddedCallback | None = None
    progress: ProgressCallback | None = None
    jobs: int = 1
    exclude: ExcludeCallback | None = None
    cache: ImportCache | None = None
    file_roots: FileRoots | None = None
    journal: FileJournal | None = None
    nested_reports: bool = True
    """False: ``on_added`` hears only top-level entries (and a wrapper), what ``add -Q`` prints;
    the entries inside directories are not reported, nor taken from cache records to be."""
    cache_key: str = field(init=False, default="")

    def __post_init__(self) -> None:
        if self.cache is not None:
            self.cache_key = params_key(self.params)

    def emit(self, path: bytes, cid: bytes, size: int, kind: EntryKind) -> None:
        """Report one entry (``added``): a top-level one, or a wrapper's."""
        if self.on_added is not None:
            self.on_added(AddedEntry(path, CID.from_bytes(cid), size, kind))

    def emit_nested(self, path: bytes, cid: bytes, size: int, kind: EntryKind) -> None:
        """Report an entry inside a walked directory: only with :attr:`nested_reports`."""
        if self.on_added is not None and self.nested_reports:
            self.on_added(AddedEntry(path, CID.from_bytes(cid), size, kind))
