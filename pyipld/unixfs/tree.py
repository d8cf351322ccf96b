"""Importing file trees exactly like ``ipfs add -r`` (kubo core/coreunix/add.go).

Walk order and output follow kubo: a directory's entries are visited sorted by
raw name bytes (Go ``os.ReadDir``), depth first; every file and symlink is
reported as soon as it is added, and directories are reported at the end,
children before parents (kubo's ``outputDirs``: each directory's children in
its link order — name order, or hash order for a HAMT — then itself), the root
last. Rules (shared/spec/unixfs-importer.md §4–§7):

* dot-files and dot-directories below the top are skipped unless ``params.hidden``;
* symlinks are stored as UnixFS symlink nodes with their target bytes, never
  followed; they get an mtime (never a mode) when one is requested;
* empty sub-directories are kept unless ``params.empty_dirs`` is false (a
  directory is "empty" when nothing is left after the hidden filter; the top
  level is always kept);
* fifos, sockets and devices are refused ("unrecognized file type");
* names are the raw bytes the file system gives (Go strings are bytes and kubo
  stores them unchanged, non-UTF-8 included);
* every file goes through :func:`~pyipld.unixfs.importer.build_file`, so all
  file parameters apply; directories use :class:`~.directory.DirectoryBuilder`.

The walk is iterative (no recursion limit) and keeps, per open directory, one
small tuple per entry — never file or block data.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Literal, Protocol

from ..blockstore import BlockSink, NullSink, file_sink
from ..chunker import BytesLike
from ..cid import CID, DAG_PB
from ..dagpb import encode_pbnode
from ..errors import ConfigError, UnixFSError
from .cache import ImportCache, params_key
from .data import DataType, Mtime, UnixFSData, encode_unixfs_data
from .directory import DirectoryBuilder, DirLink
from .hamt import hamt_order_key
from .importer import ImportResult, _counted, build_file, default_jobs, iter_chunks, iter_file_chunks, metadata_for
from .nodes import FileLink, Metadata
from .params import ImportParams, ResolvedParams

__all__ = ["AddedEntry", "EntryKind", "FileJournal", "NamedStream", "encode_symlink", "import_directory",
           "import_paths"]

EntryKind = Literal["file", "directory", "symlink"]
AddedCallback = Callable[["AddedEntry"], None]
ProgressCallback = Callable[[int], None]
FileRoots = Callable[[bytes, os.stat_result], FileLink | None]
"""Precomputed file roots: ``(path, lstat) -> root link``, or None to hash the file here."""
ExcludeCallback = Callable[[bytes], bool]


class FileJournal(Protocol):
    """Files a resumable output already holds (``add --car`` re-run, :mod:`pyipld.car.resume`).

    ``lookup`` is called before every regular file is read: a link means the file's blocks
    are already in the sink, so it is not read and its blocks are not put again. Otherwise
    the file is read and ``record`` is called once its blocks are all in the sink.
    """

    def lookup(self, path: bytes, st: os.stat_result) -> FileLink | None: ...

    def record(self, path: bytes, before: os.stat_result, after: os.stat_result, link: FileLink,
               started_ns: int) -> None: ...


@dataclass(frozen=True, slots=True)
class NamedStream:
    """A file argument that is not a path in the file system (stdin, an ``http(s)://`` URL):
    added as one file named ``name``; ``open`` is called once, when its turn comes."""

    name: bytes
    open: Callable[[], IO[bytes]]

# Files at most this large are hashed on the calling thread: a thread pool per
# tiny file costs more than it saves.
_THREADED_MIN_BYTES = 8 << 20
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


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


def encode_symlink(target: bytes, mtime: Mtime | None = None) -> bytes:
    """The dag-pb block of a UnixFS symlink (no links; Data = target, + mtime)."""
    return encode_pbnode((), encode_unixfs_data(UnixFSData(DataType.SYMLINK, data=target, mtime=mtime)))


@dataclass(slots=True)
class _DirRecord:
    """What the final directory report needs: children directories and the result."""

    path: bytes
    sharded: bool = False
    cid: bytes = b""
    tsize: int = 0
    children: list[tuple[bytes, _DirRecord]] = field(default_factory=list)


@dataclass(slots=True)
class _Frame:
    fs_path: bytes
    display: bytes
    name: bytes
    entries: Iterator[bytes]
    builder: DirectoryBuilder
    record: _DirRecord


def _join(display: bytes, name: bytes) -> bytes:
    return display + b"/" + name if display else name


class _TreeImporter:
    def __init__(self, params: ImportParams, resolved: ResolvedParams, sink: BlockSink, *,
                 on_added: AddedCallback | None, progress: ProgressCallback | None, jobs: int,
                 exclude: ExcludeCallback | None = None, cache: ImportCache | None = None,
                 file_roots: FileRoots | None = None, journal: FileJournal | None = None) -> None:
        self.exclude = exclude
        self.journal = journal
        self.params = params
        self.resolved = resolved
        self.sink = sink
        self.on_added = on_added
        self.progress = progress
        self.jobs = jobs
        self.cache = cache
        self.cache_key = params_key(params) if cache is not None else ""
        # Cached roots stand in for a file only when nobody needs its blocks.
        self.trust_cache = isinstance(sink, NullSink)
        self.file_roots = file_roots

    # -- leaves of the walk --------------------------------------------------------------
    def _emit(self, path: bytes, cid: bytes, size: int, kind: EntryKind) -> None:
        if self.on_added is not None:
            self.on_added(AddedEntry(path, CID.from_bytes(cid), size, kind))

    def _meta(self, fs_path: bytes) -> Metadata | None:
        if not self.params.has_metadata:
            return None
        return metadata_for(self.params, fs_path)  # type: ignore[arg-type]

    def add_file(self, fs_path: bytes, st: os.stat_result) -> FileLink:
        """A regular file's root: precomputed, from the cache, or hashed here (then recorded)."""
        link = self.file_roots(fs_path, st) if self.file_roots is not None else None
        cache, journal = self.cache, self.journal
        if link is None and journal is not None:
            link = journal.lookup(fs_path, st)
        if link is None and cache is not None and self.trust_cache:
            link = cache.lookup(self.cache_key, fs_path, st)
        if link is not None:
            if self.progress is not None:
                self.progress(link.data_size)
            return link
        if cache is None and journal is None:
            return self.hash_file(fs_path, st.st_size)[0]
        started = cache.clock() if cache is not None else time.time_ns()
        link, before, after = self.hash_file(fs_path, st.st_size)
        if cache is not None:
            cache.record(self.cache_key, fs_path, before, after, link, started)
        if journal is not None:
            journal.record(fs_path, before, after, link, started)
        return link

    def hash_file(self, fs_path: bytes, size_hint: int) -> tuple[FileLink, os.stat_result, os.stat_result]:
        """Import a regular file; returns its root and its fstat before and after reading."""
        meta = self._meta(fs_path)
        # O_NOFOLLOW | O_NONBLOCK: a file swapped for a symlink or a fifo after the lstat
        # is refused instead of followed or waited on.
        fd = os.open(fs_path, _OPEN_FLAGS)
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise UnixFSError(f"{os.fsdecode(fs_path)} changed type while being added")
        except BaseException:
            os.close(fd)
            raise
        with open(fd, "rb", buffering=0) as f, file_sink(self.sink, fs_path, before.st_size) as sink:
            chunks: Iterator[BytesLike] = iter_file_chunks(f, self.resolved.chunker, fs_path)
            if self.progress is not None:
                chunks = _counted(chunks, self.progress)
            jobs = self.jobs if size_hint >= _THREADED_MIN_BYTES else 1
            link = build_file(chunks, self.resolved, sink, meta=meta, jobs=jobs)
            return link, before, os.fstat(fd)

    def add_stream(self, stream: IO[bytes]) -> FileLink:
        """A named pipe given as an argument, stdin or a URL: read to the end as one file."""
        with stream:
            chunks: Iterator[BytesLike] = iter_chunks(stream, self.resolved.chunker)
            if self.progress is not None:
                chunks = _counted(chunks, self.progress)
            return build_file(chunks, self.resolved, self.sink, jobs=self.jobs)

    def add_symlink(self, fs_path: bytes) -> tuple[bytes, int]:
        target = os.readlink(fs_path)
        meta = self._meta(fs_path)
        block = encode_symlink(target, meta.mtime if meta else None)  # symlinks never carry a mode
        cid = self.resolved.cid_builder.cid_bytes(DAG_PB, block)
        self.sink.put(cid, block)
        return cid, len(block)

    # -- directories ---------------------------------------------------------------------
    def _list(self, fs_path: bytes) -> list[bytes]:
        """Entry names, sorted by raw bytes (Go os.ReadDir), hidden ones filtered.

        Only names are kept (not DirEntry objects): a directory of a million entries
        costs its names, and ``lstat`` happens when an entry is visited anyway.
        """
        with os.scandir(fs_path) as it:
            names = [e.name for e in it if (self.params.hidden or not e.name.startswith(b"."))
                     and not (self.exclude and self.exclude(e.name))]
        names.sort()
        return names

    # -- where entries come from: a subclass reads another tree (pyipld.unixfs.remote) ----
    def _child(self, parent: bytes, name: bytes) -> tuple[bytes, os.stat_result]:
        """An entry of a listed directory: its path and lstat."""
        child_path = os.path.join(parent, name)
        return child_path, os.lstat(child_path)

    def lstat(self, path: bytes) -> os.stat_result:
        """A top-level argument's lstat."""
        return os.lstat(path)

    def is_dir(self, path: bytes) -> bool:
        """A top-level argument that needs ``-r`` (missing ones fail later, when imported)."""
        return os.path.isdir(path) and not os.path.islink(path)

    def top_name(self, path: bytes) -> bytes:
        """The entry name of a top-level argument."""
        return _base_name(path)

    def _open_dir(self, fs_path: bytes, display: bytes, name: bytes, entries: list[bytes],
                  meta: Metadata | None) -> _Frame:
        builder = DirectoryBuilder(self.params, self.resolved.cid_builder, meta)
        return _Frame(fs_path, display, name, iter(entries), builder, _DirRecord(display))

    def import_tree(self, fs_path: bytes, display: bytes) -> _DirRecord:
        root_meta = self._meta(fs_path)
        stack = [self._open_dir(fs_path, display, b"", self._list(fs_path), root_meta)]
        while True:
            frame = stack[-1]
            name = next(frame.entries, None)
            if name is None:
                link = frame.builder.finish(self.sink)
                rec = frame.record
                rec.cid, rec.tsize, rec.sharded = link.cid, link.tsize, link.sharded
                stack.pop()
                if not stack:
                    return rec
                parent = stack[-1]
                parent.builder.add(frame.name, link.cid, link.tsize, check=False)
                parent.record.children.append((frame.name, rec))
                continue
            child_path, st = self._child(frame.fs_path, name)
            child_display = _join(frame.display, name)
            if stat.S_ISLNK(st.st_mode):
                cid, tsize = self.add_symlink(child_path)
                frame.builder.add(name, cid, tsize, check=False)
                self._emit(child_display, cid, tsize, "symlink")
            elif stat.S_ISREG(st.st_mode):
                file_link = self.add_file(child_path, st)
                frame.builder.add(name, file_link.cid, file_link.tsize, check=False)
                self._emit(child_display, file_link.cid, file_link.tsize, "file")
            elif stat.S_ISDIR(st.st_mode):
                listing = self._list(child_path)
                if not listing and not self.params.empty_dirs:
                    continue
                meta = self._meta(child_path)
                stack.append(self._open_dir(child_path, child_display, name, listing, meta))
            else:
                raise UnixFSError(f"unrecognized file type for {os.fsdecode(child_path)}: {_kind(st.st_mode)}")

    def report_dirs(self, rec: _DirRecord) -> None:
        """kubo's outputDirs: children (in link order) before the directory itself."""
        if self.on_added is None:
            return
        stack: list[tuple[_DirRecord, Iterator[tuple[bytes, _DirRecord]]]] = [(rec, _link_order(rec))]
        while stack:
            cur, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                self._emit(cur.path, cur.cid, cur.tsize, "directory")
            else:
                stack.append((nxt[1], _link_order(nxt[1])))


def _link_order(rec: _DirRecord) -> Iterator[tuple[bytes, _DirRecord]]:
    if rec.sharded:
        return iter(sorted(rec.children, key=lambda c: hamt_order_key(c[0])))
    return iter(sorted(rec.children, key=lambda c: c[0]))


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return f"mode {mode:o}"


def _base_name(path: bytes) -> bytes:
    """The name kubo shows for a path argument: Go ``filepath.Base`` of the cleaned path
    (``.`` and ``..`` name the directory they stand for)."""
    base = os.path.basename(os.path.normpath(path))
    if base in (b".", b"..", b""):
        base = os.path.basename(os.path.abspath(path)) or b"/"
    return base


def import_paths(
    paths: Sequence[str | os.PathLike[str] | bytes | NamedStream],
    params: ImportParams | None = None,
    sink: BlockSink | None = None,
    *,
    recursive: bool = True,
    wrap: bool = False,
    on_added: AddedCallback | None = None,
    progress: ProgressCallback | None = None,
    jobs: int | None = None,
    exclude: ExcludeCallback | None = None,
    cache: ImportCache | None = None,
    file_roots: FileRoots | None = None,
    journal: FileJournal | None = None,
) -> ImportResult:
    """``ipfs add [-r] [-w] PATH...``: import each path, report every entry, return the last root.

    Without ``wrap`` each path is imported on its own (the result is the last
    one's root, as ``-Q`` prints). With ``wrap`` all of them become entries of
    one new directory (named by their base names) whose root is returned.

    Args:
        paths: files, directories (need ``recursive``) or symlinks.
        params: kubo's add parameters (default: kubo's defaults).
        sink: where blocks go (default: nowhere, like ``--only-hash``).
        recursive: allow directories (``-r``).
        wrap: ``-w/--wrap-with-directory``.
        on_added: called with an :class:`AddedEntry` per file, symlink and directory,
            in kubo's output order.
        progress: called with the byte count of every read.
        jobs: leaf-hashing threads for large files.
        cache: an :class:`~.cache.ImportCache`: unchanged files are not read again
            (only-hash imports; with a sink the cache is only refreshed).
        file_roots: precomputed file roots (the distributed importer's results).
        journal: a :class:`FileJournal` of files the sink already holds (a resumed ``add --car``).
        exclude: called with each entry name found inside a directory; true leaves it out
            (kubo's ``--ignore`` rules; top-level paths are never filtered, as in kubo).

    A :class:`NamedStream` is added as a file of its name, and so is a named pipe given
    as a path (kubo reads a pipe named on the command line; inside a directory it is refused).

    Raises:
        ConfigError: invalid parameters. UnixFSError: an unsupported file type, a
        duplicate wrapped name, a HAMT hash collision. OSError: unreadable input.
    """
    params = params or ImportParams()
    resolved = params.resolve()
    if not paths:
        raise UnixFSError("expected a file argument")
    imp = _TreeImporter(params, resolved, sink if sink is not None else NullSink(), on_added=on_added,
                        progress=progress, jobs=jobs or default_jobs(), exclude=exclude, cache=cache,
                        file_roots=file_roots, journal=journal)
    raw_paths = [p if isinstance(p, NamedStream) else os.fsencode(p) for p in paths]
    return _import_all(imp, raw_paths, recursive=recursive, wrap=wrap)


def _import_all(imp: _TreeImporter, raw_paths: Sequence[bytes | NamedStream], *, recursive: bool,
                wrap: bool) -> ImportResult:
    """``import_paths`` once its importer is made (shared with pyipld.unixfs.remote)."""
    for p in raw_paths:
        if isinstance(p, NamedStream):
            continue
        if not recursive and imp.is_dir(p):
            raise ConfigError(f"{os.fsdecode(p)} is a directory, use the '-r' flag to specify directories")
    if wrap:
        return _import_wrapped(imp, raw_paths)
    result: ImportResult | None = None
    for p in raw_paths:
        name = p.name if isinstance(p, NamedStream) else imp.top_name(p)
        cid, tsize, size, _ = _import_one(imp, p, name)
        result = ImportResult(CID.from_bytes(cid), size, tsize)
    assert result is not None
    return result


def _import_one(imp: _TreeImporter, p: bytes | NamedStream, display: bytes) -> tuple[bytes, int, int, EntryKind]:
    """Import one top-level path; returns (cid, tsize, file bytes, kind)."""
    if isinstance(p, NamedStream):
        link = imp.add_stream(p.open())
        imp._emit(display, link.cid, link.tsize, "file")
        return link.cid, link.tsize, link.data_size, "file"
    st = imp.lstat(p)
    if stat.S_ISFIFO(st.st_mode):
        return _import_one(imp, NamedStream(display, lambda: open(p, "rb")), display)
    if stat.S_ISLNK(st.st_mode):
        cid, tsize = imp.add_symlink(p)
        imp._emit(display, cid, tsize, "symlink")
        return cid, tsize, 0, "symlink"
    if stat.S_ISDIR(st.st_mode):
        rec = imp.import_tree(p, display)
        imp.report_dirs(rec)
        return rec.cid, rec.tsize, 0, "directory"
    if stat.S_ISREG(st.st_mode):
        link = imp.add_file(p, st)
        imp._emit(display, link.cid, link.tsize, "file")
        return link.cid, link.tsize, link.data_size, "file"
    raise UnixFSError(f"unrecognized file type for {os.fsdecode(p)}: {_kind(st.st_mode)}")


def _import_wrapped(imp: _TreeImporter, raw_paths: Sequence[bytes | NamedStream]) -> ImportResult:
    # kubo wraps the arguments in a directory that has no stat of its own, so only
    # explicit --mode/--mtime reach it (core/commands/add.go, coreunix addDir toplevel).
    explicit = Metadata(imp.params.mode, Mtime(*imp.params.mtime) if imp.params.mtime else None)
    wrapper = DirectoryBuilder(imp.params, imp.resolved.cid_builder, explicit if explicit else None)
    record = _DirRecord(b"")
    seen: set[bytes] = set()
    for p in raw_paths:
        name = p.name if isinstance(p, NamedStream) else imp.top_name(p)
        if name in seen:
            raise UnixFSError(f"duplicate name {os.fsdecode(name)!r} in the wrapping directory")
        seen.add(name)
        if not isinstance(p, NamedStream) and stat.S_ISDIR(imp.lstat(p).st_mode):
            rec = imp.import_tree(p, name)
            wrapper.add(name, rec.cid, rec.tsize)
            record.children.append((name, rec))
        else:
            cid, tsize, _, _ = _import_one(imp, p, name)
            wrapper.add(name, cid, tsize)
    link: DirLink = wrapper.finish(imp.sink)
    record.cid, record.tsize, record.sharded = link.cid, link.tsize, link.sharded
    imp.report_dirs(record)
    return ImportResult(CID.from_bytes(link.cid), 0, link.tsize)


def import_directory(
    path: str | os.PathLike[str] | bytes,
    params: ImportParams | None = None,
    sink: BlockSink | None = None,
    *,
    on_added: AddedCallback | None = None,
    progress: ProgressCallback | None = None,
    jobs: int | None = None,
    cache: ImportCache | None = None,
) -> ImportResult:
    """``ipfs add -r PATH`` of one directory: its root CID, 0, and its Tsize.

    See :func:`import_paths` for the arguments and errors.
    """
    raw = os.fsencode(path)
    if not os.path.isdir(raw) or os.path.islink(raw):
        raise NotADirectoryError(20, "not a directory", os.fsdecode(raw))
    return import_paths([raw], params, sink, on_added=on_added, progress=progress, jobs=jobs, cache=cache)
