"""Importing trees that live behind an fsspec URL (``s3://bucket/prefix``, ``gs://``, ``memory://``…)
where they lie: listed and read with ranged requests, never copied to local disk.

Tree semantics for object storage (docs/import.md, "Object storage"):

* a URL names an object (a file) or, when no such object exists, a prefix with objects under
  ``prefix/`` (a directory); a bucket is a directory;
* a directory's entries are the objects and common prefixes one ``/``-level below it, sorted by
  the UTF-8 bytes of their names like any directory; an empty ``dir/`` marker object makes an
  (empty) directory and is not itself an entry; a key with an empty segment (``a//b``) or a
  name that is both an object and a prefix is refused (no file system can hold it);
* there are no symlinks and no modes or mtimes of the objects (explicit ``mode``/``mtime``
  parameters apply, ``preserve_mode``/``preserve_mtime`` are refused);
* hidden names (``.x`` below the top), ``hidden``, ``empty_dirs`` and ``exclude`` (``--ignore``)
  apply exactly as on disk.

So the root CID and every ``added`` line equal ``ipfs add -r`` of the same tree downloaded to
disk. Objects are read in ranged reads of about :data:`READ_BYTES` (a multiple of the chunk size
for ``size-N``); memory per file is one read plus the chunker's window. An object that changes
while it is read — a short read, one more byte than listed, another ETag afterwards — is an
error, never the CID of a mix of versions.

fsspec (and the protocol's package, e.g. ``s3fs``) is imported only when a URL is imported.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ..blockstore import BlockSink, NullSink
from ..chunker import BytesLike, Chunker
from ..chunker.fixed import FixedSize
from ..errors import ConfigError, FileChangedError, NotFoundError, PyipldError, SourceError, UnixFSError
from .importer import ImportResult, _counted, _fixed_views, _split_views, build_file, default_jobs, metadata_for
from .nodes import FileLink, Metadata
from .params import ImportParams, import_params
from .tree.entries import AddedCallback, FileRoots, ImportContext, ProgressCallback
from .tree.files import THREADED_MIN_BYTES, FileImporter
from .tree.paths import import_all
from .tree.walk import TreeImporter

__all__ = ["READ_BYTES", "RemoteSource", "hash_objects", "import_urls", "is_fsspec_url", "list_objects"]

READ_BYTES: Final = 4 << 20
"""Bytes per ranged read (object stores answer 1–16 MiB ranges at full speed)."""
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def is_fsspec_url(text: str | bytes | os.PathLike[str]) -> bool:
    """``protocol://…`` (a text argument with a scheme); local paths and bytes are not URLs."""
    return isinstance(text, str) and _URL.match(text) is not None


def _fingerprint(info: Mapping[str, Any]) -> int:
    """63 bits naming an object's version (its ETag, else its modification time in whole
    seconds: listings and ``info`` give times at different precisions); 0: unknown."""
    token = ""
    for key in ("ETag", "etag", "VersionId"):
        if info.get(key):
            token = f"{key}={info[key]}"
            break
    else:
        seconds = _mtime_ns(info) // 1_000_000_000
        token = f"mtime={seconds}" if seconds else ""
    if not token:
        return 0
    return int.from_bytes(hashlib.sha256(token.encode()).digest()[:8], "big") >> 1


def _mtime_ns(info: Mapping[str, Any]) -> int:
    """The modification time, whole seconds (as ns)."""
    value = info.get("LastModified") or info.get("mtime") or info.get("last_modified") or info.get("created") or 0
    if hasattr(value, "timestamp"):
        value = value.timestamp()
    try:
        return int(float(value)) * 1_000_000_000
    except (TypeError, ValueError):
        return 0


def _stat(info: Mapping[str, Any]) -> os.stat_result:
    """An object's entry as an ``os.stat_result``: type (regular file or directory, no mode
    bits), size, ``st_ino`` = its version fingerprint, ``st_mtime_ns`` = its LastModified."""
    is_dir = info.get("type") == "directory"
    mtime_ns = _mtime_ns(info)
    seconds = mtime_ns // 1_000_000_000
    size = 0 if is_dir else int(info.get("size") or 0)
    return os.stat_result((stat.S_IFDIR if is_dir else stat.S_IFREG, 0 if is_dir else _fingerprint(info), 0, 1, 0, 0,
                           size, seconds, seconds, seconds),
                          {"st_atime_ns": mtime_ns, "st_mtime_ns": mtime_ns, "st_ctime_ns": mtime_ns})


@dataclass(frozen=True)
class RemoteSource:
    """One fsspec file system (protocol + storage options): picklable, so Dask tasks carry it
    (with the URL and byte ranges) and each worker opens its own (fsspec caches instances).

    Storage options travel with every task: prefer credentials from the workers' environment.
    """

    protocol: str
    storage_options: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def for_url(cls, url: str, storage_options: Mapping[str, Any] | None = None) -> RemoteSource:
        match = _URL.match(url)
        if match is None:
            raise ConfigError(f"not a URL: {url!r}")
        return cls(match.group(1).lower(), dict(storage_options or {}))

    def filesystem(self) -> Any:
        """The fsspec file system; a missing package or an unknown protocol is a ConfigError."""
        try:
            import fsspec  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigError(f"{self.protocol}:// URLs need fsspec: pip install 'pyipld[fsspec]'") from exc
        try:
            cls = fsspec.get_filesystem_class(self.protocol)
        except ImportError as exc:
            raise ConfigError(f"{self.protocol}:// needs a package that is not installed: {exc}") from None
        except ValueError:
            raise ConfigError(f"unknown fsspec protocol {self.protocol!r} (not installed or misspelt)") from None
        try:
            return cls(**self.storage_options)
        except TypeError as exc:
            raise ConfigError(f"bad storage options for {self.protocol}://: {exc}") from None

    def url(self, path: str) -> str:
        """``protocol://path`` for messages (``file:///abs`` keeps its root)."""
        if path.startswith(f"{self.protocol}://"):
            return path
        return f"{self.protocol}://{path if self.protocol in ('file', 'local') else path.lstrip('/')}"

    def strip(self, url: str) -> str:
        """The file system's own path of ``url``."""
        fs = self.filesystem()
        return str(fs._strip_protocol(url))

    # -- listing ---------------------------------------------------------------------------
    def info(self, path: str) -> dict[str, Any]:
        with self.errors(path):
            got: dict[str, Any] = self.filesystem().info(path)
        return got

    def list_dir(self, path: str, params: ImportParams, exclude: Callable[[bytes], bool] | None
                 ) -> list[tuple[bytes, str, os.stat_result]]:
        """A directory's entries ``(name, full path, stat)`` sorted by name bytes, with the
        object-storage rules of the module docstring and the hidden/exclude filters applied."""
        fs = self.filesystem()
        with self.errors(path):
            listing = fs.ls(path, detail=True)
        if getattr(fs, "dircache", None) is not None:
            fs.invalidate_cache(path)  # nothing is listed twice by one walk: keep memory bounded
        base = path.rstrip("/")
        prefix = base + "/"
        out: dict[bytes, tuple[bytes, str, os.stat_result]] = {}
        for info in listing:
            full = str(info["name"])
            rel = full[len(prefix):] if full.startswith(prefix) else posixpath.basename(full.rstrip("/"))
            if full.rstrip("/") == base or rel in ("", "/"):
                if info.get("type") == "directory" and full != base:
                    raise UnixFSError(f"{self.url(full)}: an object key with an empty path segment ('//')")
                continue  # the directory's own marker object ("dir/")
            rel = rel.rstrip("/") if info.get("type") == "directory" else rel
            if "/" in rel or not rel:
                raise UnixFSError(f"{self.url(full)}: an object key with an empty path segment ('//')")
            name = rel.encode("utf-8", "surrogateescape")
            if (not params.hidden and name.startswith(b".")) or (exclude is not None and exclude(name)):
                continue
            if name in out:
                raise UnixFSError(f"{self.url(base + '/' + rel)} is both an object and a prefix: "
                                  "no file system can hold both")
            out[name] = (name, full.rstrip("/") if info.get("type") == "directory" else full, _stat(info))
        return [out[n] for n in sorted(out)]

    # -- reading ---------------------------------------------------------------------------
    def read(self, path: str, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` of an object in one ranged request (short if it ends early)."""
        if stop <= start:
            return b""
        with self.errors(path):
            data: bytes = self.filesystem().cat_file(path, start=start, end=stop)
        return data

    def check_version(self, path: str, version: int) -> None:
        """The object still has the version it had when listed (``version`` 0: unknown)."""
        if version:
            now = _fingerprint(self.info(path))
            if now and now != version:
                raise SourceError(f"{self.url(path)} changed while it was being imported (another ETag)")

    def file_chunks(self, path: str, size: int, version: int, chunker: Chunker) -> Iterator[BytesLike]:
        """The chunks of a whole ``size``-byte object, read in ranged reads."""
        if isinstance(chunker, FixedSize):
            read = chunker.chunk_size * max(1, READ_BYTES // chunker.chunk_size)
            return _fixed_views(self._reads(path, size, version, read), chunker.chunk_size)
        return _split_views(chunker, self._reads(path, size, version, READ_BYTES))

    def _reads(self, path: str, size: int, version: int, read_size: int) -> Iterator[bytes]:
        """Exactly ``size`` bytes in reads of ``read_size``; the last asks one byte more, so an
        object that grew is caught; after several reads the version is checked."""
        for a in range(0, size, read_size):
            b = min(a + read_size, size)
            data = self.read(path, a, b + 1 if b == size else b)
            if len(data) != b - a:
                raise FileChangedError(self.url(path), size, a + len(data))
            yield data
        if size > read_size:
            self.check_version(path, version)

    def span_groups(self, path: str, bounds: Iterator[tuple[int, int]], version: int) -> Iterator[list[memoryview]]:
        """The chunks ``bounds`` (consecutive ``(start, end)``) of an object, fetched in ranged
        reads of about :data:`READ_BYTES`, a read's chunks together; the version is checked at the end."""
        group: list[tuple[int, int]] = []
        for a, b in bounds:
            group.append((a, b))
            if b - group[0][0] >= READ_BYTES:
                yield self._group(path, group)
                group = []
        if group:
            yield self._group(path, group)
        self.check_version(path, version)

    def _group(self, path: str, group: list[tuple[int, int]]) -> list[memoryview]:
        start, stop = group[0][0], group[-1][1]
        data = self.read(path, start, stop)
        if len(data) != stop - start:
            raise SourceError(f"{self.url(path)} shrank while it was being imported")
        view = memoryview(data)
        return [view[a - start : b - start] for a, b in group]

    @contextmanager
    def errors(self, path: str) -> Iterator[None]:
        """fsspec's and the backends' errors as pyipld's: NotFoundError, SourceError."""
        try:
            yield
        except PyipldError:
            raise
        except FileNotFoundError as exc:
            detail = str(exc)
            extra = f" ({detail})" if detail and detail.strip("/") not in path and path not in detail else ""
            raise NotFoundError(f"{self.url(path)}: no such object or prefix{extra}") from None
        except PermissionError as exc:
            raise SourceError(f"{self.url(path)}: access denied: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any backend's I/O error (botocore, aiohttp…) at the boundary
            raise SourceError(f"{self.url(path)}: {type(exc).__name__}: {exc}") from None


class _RemoteTreeSource:
    """The tree behind an fsspec URL: listings from the store, entries' stat from the listing."""

    def __init__(self, source: RemoteSource, params: ImportParams, exclude: Callable[[bytes], bool] | None) -> None:
        self.params = params
        self.exclude = exclude
        self.source = source
        self.pending: dict[bytes, dict[bytes, tuple[bytes, os.stat_result]]] = {}
        self.tops: dict[bytes, os.stat_result] = {}

    def lstat(self, path: bytes) -> os.stat_result:
        st = self.tops.get(path)
        if st is None:
            st = self.tops[path] = _stat(self.source.info(_text(path)))
        return st

    def is_dir(self, path: bytes) -> bool:
        return stat.S_ISDIR(self.lstat(path).st_mode)

    def top_name(self, path: bytes) -> bytes:
        return posixpath.basename(path.rstrip(b"/")) or path.strip(b"/") or b"/"

    def list_dir(self, fs_path: bytes) -> list[bytes]:
        entries = self.source.list_dir(_text(fs_path), self.params, self.exclude)
        self.pending[fs_path] = {name: (full.encode("utf-8", "surrogateescape"), st)
                                 for name, full, st in entries}
        return [name for name, _, _ in entries]

    def stat_listing(self, parent: bytes, names: list[bytes]) -> tuple[bytes, bytes] | None:
        return None  # not a local directory: entries' stats come from the listing (child)

    def child(self, parent: bytes, name: bytes) -> tuple[bytes, os.stat_result]:
        listed = self.pending[parent]
        got = listed.pop(name)
        if not listed:
            del self.pending[parent]
        return got

    def meta(self, fs_path: bytes) -> Metadata | None:
        return metadata_for(self.params) if self.params.has_metadata else None

    def readlink(self, path: bytes) -> bytes:  # pragma: no cover - never listed
        raise UnixFSError(f"{_text(path)}: object storage has no symlinks")


class _RemoteFiles(FileImporter):
    """Objects read with ranged requests (no cache, no journal: they key local files by stat data)."""

    source: _RemoteTreeSource
    batchable = False

    def hash_entry(self, fs_path: bytes, st: os.stat_result) -> tuple[FileLink, int | None]:
        ctx = self.ctx
        chunks = self.source.source.file_chunks(_text(fs_path), st.st_size, st.st_ino, ctx.resolved.chunker)
        if ctx.progress is not None:
            chunks = _counted(chunks, ctx.progress)
        jobs = ctx.jobs if st.st_size >= THREADED_MIN_BYTES else 1
        return build_file(chunks, ctx.resolved, ctx.sink, meta=self.source.meta(fs_path), jobs=jobs), None


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _check_params(params: ImportParams) -> None:
    if params.preserve_mode or params.preserve_mtime:
        raise ConfigError("--preserve-mode/--preserve-mtime need a file system: objects have no mode or mtime "
                          "(use --mode/--mtime)")


def _sources(urls: Sequence[str], storage_options: Mapping[str, Any] | None) -> tuple[RemoteSource, list[bytes]]:
    if not urls:
        raise UnixFSError("expected a file argument")
    bad = [u for u in urls if not is_fsspec_url(u)]
    if bad:
        raise ConfigError(f"not an fsspec URL (protocol://…): {bad[0]!r}")
    sources = {RemoteSource.for_url(u).protocol for u in urls}
    if len(sources) != 1:
        raise ConfigError("URLs of one import must share their protocol (and storage options)")
    source = RemoteSource.for_url(urls[0], storage_options)
    fs = source.filesystem()
    return source, [str(fs._strip_protocol(u)).encode("utf-8", "surrogateescape") for u in urls]


def import_urls(
    urls: Sequence[str],
    params: ImportParams | None = None,
    sink: BlockSink | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
    recursive: bool = True,
    wrap: bool = False,
    on_added: AddedCallback | None = None,
    progress: ProgressCallback | None = None,
    jobs: int | None = None,
    exclude: Callable[[bytes], bool] | None = None,
    file_roots: FileRoots | None = None,
    report: Literal["all", "top"] = "all",
) -> ImportResult:
    """:func:`~pyipld.unixfs.tree.import_paths` of fsspec URLs (one protocol), read where they lie.

    ``storage_options``: the file system's arguments (s3fs: ``key``, ``secret``,
    ``endpoint_url``, ``anon``…); fsspec's ``FSSPEC_<PROTOCOL>_<OPTION>`` environment variables
    and the backend's own (``AWS_*``) apply as usual. The other arguments are
    :func:`~pyipld.unixfs.tree.import_paths`'s; ``added`` paths are named from each URL's last
    segment, as kubo names a directory argument.

    Raises:
        ConfigError: bad parameters, an unknown protocol or one whose package is missing.
        NotFoundError: no object and no prefix at a URL. SourceError: refused credentials,
        an unreachable store, an object changed while read. UnixFSError: a tree no file
        system can hold (``a//b``, a name both object and prefix). FileChangedError.
    """
    params = import_params(params)
    resolved = params.resolve()
    _check_params(params)
    source, raw = _sources(urls, storage_options)
    ctx = ImportContext(params, resolved, sink if sink is not None else NullSink(), on_added=on_added,
                        progress=progress, jobs=jobs or default_jobs(), exclude=exclude, file_roots=file_roots,
                        nested_reports=report == "all")
    tree = _RemoteTreeSource(source, params, exclude)
    return import_all(TreeImporter(ctx, tree, _RemoteFiles(ctx, tree)), raw, recursive=recursive, wrap=wrap)


def list_objects(urls: Sequence[str], params: ImportParams, exclude: Callable[[bytes], bool] | None = None,
                 storage_options: Mapping[str, Any] | None = None
                 ) -> tuple[RemoteSource, Iterator[tuple[bytes, os.stat_result]]]:
    """The objects (files) under ``urls`` in walk order, keyed as :func:`import_urls` asks
    ``file_roots`` — :func:`~pyipld.unixfs.parallel.list_files` for object storage."""
    _check_params(params)
    source, raw = _sources(urls, storage_options)

    def walk() -> Iterator[tuple[bytes, os.stat_result]]:
        stack: list[tuple[bytes, os.stat_result | None]] = [(p, None) for p in reversed(raw)]
        while stack:
            path, st = stack.pop()
            if st is None:
                try:
                    st = _stat(source.info(path.decode("utf-8", "surrogateescape")))
                except NotFoundError:
                    continue  # the import proper reports it
            if stat.S_ISREG(st.st_mode):
                yield path, st
                continue
            entries = source.list_dir(path.decode("utf-8", "surrogateescape"), params, exclude)
            stack.extend((full.encode("utf-8", "surrogateescape"), est) for _, full, est in reversed(entries))

    return source, walk()


def hash_objects(source: RemoteSource, items: Sequence[tuple[bytes, int, int]], params: ImportParams
                 ) -> list[FileLink | None]:
    """Worker task: whole-object imports of ``(path, size, version)`` items (None where one
    could not be read: the coordinator reads it again and reports the error). A ConfigError (the
    protocol's package missing on the worker) fails the task: a misconfigured cluster is loud."""
    resolved = params.resolve()
    meta = metadata_for(params) if params.has_metadata else None
    out: list[FileLink | None] = []
    for path, size, version in items:
        try:
            chunks = source.file_chunks(path.decode("utf-8", "surrogateescape"), size, version, resolved.chunker)
            out.append(build_file(chunks, resolved, NullSink(), meta=meta))
        except (OSError, FileChangedError, NotFoundError):
            out.append(None)
    return out

