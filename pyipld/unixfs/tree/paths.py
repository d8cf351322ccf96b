"""Importing file trees exactly like ``ipfs add -r`` (kubo core/coreunix/add.go): the arguments.

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
  file parameters apply; directories use :class:`~pyipld.unixfs.directory.DirectoryBuilder`.

This module handles the arguments (``-r``, ``-w``, streams, top-level files); the walk is
:mod:`.walk`, listing :mod:`.source`, one file's import :mod:`.files`, directories :mod:`.dirs`.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from typing import Literal

from ...blockstore import BlockSink, NullSink, check_sink
from ...cid import CID
from ...errors import ConfigError, UnixFSError
from ..cache import ImportCache, keys_from_cwd
from ..data import Mtime
from ..directory import DirectoryBuilder, DirLink
from ..importer import ImportResult, check_jobs, default_jobs
from ..nodes import Metadata
from ..params import ImportParams, import_params
from .dirs import DirNode, report_dirs, set_result
from .entries import (
    AddedCallback,
    EntryKind,
    ExcludeCallback,
    FileJournal,
    FileRoots,
    ImportContext,
    NamedStream,
    ProgressCallback,
)
from .files import FileImporter
from .source import LocalSource, kind_name
from .walk import TreeImporter

__all__ = ["check_paths_list", "import_all", "import_directory", "import_paths"]


def check_paths_list(paths: object) -> None:
    """Refuse one path where a list of them is expected (a str would be taken letter by letter).

    Raises:
        ConfigError: ``paths`` is a single str, bytes or path object.
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise ConfigError(f"paths must be a list of paths, not one {type(paths).__name__}: pass [{paths!r}]")


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
    report: Literal["all", "top"] = "all",
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
        report: ``"top"``: ``on_added`` hears only the top-level entries (and the wrapper), the
            last of which ``add -Q`` prints; nothing is done per entry inside a directory to
            report it (a cached re-import then takes whole directories without visiting them).
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
    params = import_params(params)
    check_sink(sink)
    resolved = params.resolve()
    check_paths_list(paths)
    if not paths:
        raise UnixFSError("expected a file argument")
    check_jobs(jobs)
    ctx = ImportContext(params, resolved, sink if sink is not None else NullSink(), on_added=on_added,
                        progress=progress, jobs=jobs or default_jobs(), exclude=exclude, cache=cache,
                        file_roots=file_roots, journal=journal, nested_reports=report == "all")
    source = LocalSource(params, exclude)
    imp = TreeImporter(ctx, source, FileImporter(ctx, source))
    raw_paths = [p if isinstance(p, NamedStream) else os.fsencode(p) for p in paths]
    if cache is None:
        return import_all(imp, raw_paths, recursive=recursive, wrap=wrap)
    with keys_from_cwd():  # the cache keys relative paths from the directory the walk opens them in
        return import_all(imp, raw_paths, recursive=recursive, wrap=wrap)


def import_all(imp: TreeImporter, raw_paths: Sequence[bytes | NamedStream], *, recursive: bool,
                wrap: bool) -> ImportResult:
    """``import_paths`` once its importer is made (shared with pyipld.unixfs.remote)."""
    for p in raw_paths:
        if isinstance(p, NamedStream):
            continue
        if not recursive and imp.source.is_dir(p):
            raise ConfigError(f"{os.fsdecode(p)} is a directory, use the '-r' flag to specify directories")
    if wrap:
        return _import_wrapped(imp, raw_paths)
    result: ImportResult | None = None
    for p in raw_paths:
        name = p.name if isinstance(p, NamedStream) else imp.source.top_name(p)
        cid, tsize, size, _ = _import_one(imp, p, name)
        result = ImportResult(CID.from_bytes(cid), size, tsize)
    assert result is not None
    return result


def _import_one(imp: TreeImporter, p: bytes | NamedStream, display: bytes) -> tuple[bytes, int, int, EntryKind]:
    """Import one top-level path; returns (cid, tsize, file bytes, kind)."""
    ctx = imp.ctx
    if isinstance(p, NamedStream):
        link = imp.files.add_stream(p.open())
        ctx.emit(display, link.cid, link.tsize, "file")
        return link.cid, link.tsize, link.data_size, "file"
    st = imp.source.lstat(p)
    if stat.S_ISFIFO(st.st_mode):
        return _import_one(imp, NamedStream(display, lambda: open(p, "rb")), display)
    if stat.S_ISLNK(st.st_mode):
        cid, tsize = imp.files.add_symlink(p)
        ctx.emit(display, cid, tsize, "symlink")
        return cid, tsize, 0, "symlink"
    if stat.S_ISDIR(st.st_mode):
        node = imp.import_tree(p, display)
        report_dirs(ctx, node)
        return node.cid, node.tsize, 0, "directory"
    if stat.S_ISREG(st.st_mode):
        link = imp.files.add_file(p, st)
        ctx.emit(display, link.cid, link.tsize, "file")
        return link.cid, link.tsize, link.data_size, "file"
    raise UnixFSError(f"unrecognized file type for {os.fsdecode(p)}: {kind_name(st.st_mode)}")


def _wrapped_clash(is_dir: bool) -> str:
    """kubo's error for a second -w entry of a name already taken (only stdin's or a URL's name
    can clash with a path's): boxo mfs ``Mkdir`` gives ``os.ErrExist`` for a directory over a
    file, ``Directory.AddChild`` gives ``ErrDirExists`` for a file (boxo v0.11.0 mfs)."""
    return "file already exists" if is_dir else "directory already has entry by that name"


def _import_wrapped(imp: TreeImporter, raw_paths: Sequence[bytes | NamedStream]) -> ImportResult:
    # kubo wraps the arguments in a directory that has no stat of its own, so only
    # explicit --mode/--mtime reach it (core/commands/add.go, coreunix addDir toplevel).
    ctx = imp.ctx
    params = ctx.params
    explicit = Metadata(params.mode, Mtime(*params.mtime) if params.mtime else None)
    wrapper = DirectoryBuilder(params, ctx.resolved.cid_builder, explicit if explicit else None)
    record = DirNode(b"")
    seen: set[bytes] = set()
    for p in raw_paths:
        name = p.name if isinstance(p, NamedStream) else imp.source.top_name(p)
        directory = None if isinstance(p, NamedStream) or not stat.S_ISDIR(imp.source.lstat(p).st_mode) else p
        if name in seen:
            raise UnixFSError(_wrapped_clash(directory is not None))
        seen.add(name)
        if directory is not None:
            node = imp.import_tree(directory, name)
            wrapper.add(name, node.cid, node.tsize)
            record.children.append((name, node))
        else:
            cid, tsize, _, _ = _import_one(imp, p, name)
            wrapper.add(name, cid, tsize)
    link: DirLink = wrapper.finish(ctx.sink)
    set_result(record, link)
    report_dirs(ctx, record)
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
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise ConfigError(f"import_directory takes one path, not a {type(path).__name__}"
                          " (several: import_paths([...]))")
    raw = os.fsencode(path)
    if not os.path.lexists(raw):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), os.fsdecode(raw))
    if not os.path.isdir(raw) or os.path.islink(raw):
        raise NotADirectoryError(20, "not a directory", os.fsdecode(raw))
    return import_paths([raw], params, sink, on_added=on_added, progress=progress, jobs=jobs, cache=cache)
