"""``ipfs://`` for fsspec: UnixFS paths read from a chain of verified block sources.

Paths are ``CID[/name…]`` (also ``/ipfs/CID/…`` and ``ipfs://CID/…``) through basic and
HAMT-sharded directories; a path whose first component is not a CID names the in-process
staging tree that writes go to (:mod:`pyipld.fs.staging`). UnixFS reading is
:mod:`pyipld.unixfs` (resolve/walk/hamt/reader); this module maps fsspec calls onto it,
caches what content addressing makes immutable (path -> entry, directory nodes, file
readers), and keeps per-process state (sources, thread pool) rebuilt after ``fork``.

The filesystem is synchronous (``AbstractFileSystem``): every source blocks, so threads
give the concurrency (``cat_ranges``, listings), fork needs no event loop to forget, and
zarr wraps it in fsspec's ``AsyncFileSystemWrapper``. See docs/fsspec.md.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import IO, Any, Final, Generic, TypeVar, cast

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem  # type: ignore[import-untyped]

from .._args import index_arg
from ..blockstore import BlockSource, DirectoryBlockstore, MemoryBlockstore
from ..cid import CID, RAW
from ..errors import BlockUnavailableError, CIDError, ConfigError, NotFoundError, UnixFSError, UnsafePathError
from ..unixfs.importer import import_bytes, import_file
from ..unixfs.params import ImportParams
from ..unixfs.reader import UnixFSReader
from ..unixfs.walk import UnixFSNode, iter_directory, load_node, lookup
from .readahead import ReadAheadCache
from .sources import (
    DEFAULT_MEMORY_CACHE_BYTES,
    PeerSource,
    RoutedSource,
    SourceChain,
    directory_source,
    env_defaults,
    gateway_source,
    open_car_source,
)
from .staging import StagedFile, StagingTree, TreeSource, cumulative_size, fill_store

__all__ = ["IPFSFile", "IPFSFileSystem", "IPFSWriteFile"]

_SOURCE_KEYS: Final = ("cars", "blockstore", "peers", "gateways", "routing")
_OPTIONS: Final = frozenset({*_SOURCE_KEYS, "cache", "sink", "add", "memory_cache", "peer_timeout", "http_timeout",
                             "use_env", "block_size", "cache_type", "cache_options"})
# what fsspec itself may pass to any filesystem (AbstractFileSystem / DirCache / the instance cache)
_FSSPEC_OPTIONS: Final = frozenset({"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths",
                                    "asynchronous", "loop", "add_docs", "add_aliases"})
_ENTRY_CACHE: Final = 65536  # resolved path -> entry (a few hundred bytes each)
_NODE_CACHE: Final = 512  # decoded directory nodes / HAMT roots
_READER_CACHE: Final = 256  # file readers (each keeps up to 256 internal nodes)
_WORKERS: Final = 8  # threads for listings and cat_ranges (I/O bound on remote sources)
DEFAULT_FILE_BLOCK: Final = 1 << 20  # 4 leaves of kubo's default 256 KiB chunks
# A read this large is cut into pieces walked (fetched, hashed) on several threads: sha256 releases
# the GIL, so verification runs on every core. Pieces are 1 MiB-aligned (whole kubo leaves) and
# joined once, so the bytes are still copied only once.
_SPLIT_MIN: Final = 4 << 20
_SPLIT_PIECE: Final = 2 << 20
_SPLIT_WORKERS: Final = max(1, min(4, os.cpu_count() or 1))
# Pieces of one read submitted at a time, per split thread: enough to keep the threads busy, while
# memory and the work wasted after a failure stay bounded whatever size a file's root claims.
_WINDOW_PER_WORKER: Final = 2

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


class _LRU(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            v = self._d.get(key)
            if v is not None:
                self._d.move_to_end(key)
            return v

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def pop(self, key: K) -> None:
        with self._lock:
            self._d.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


@dataclass(frozen=True, slots=True)
class _Entry:
    """What a path resolves to."""

    cid: bytes
    kind: str  # file | directory | symlink | other
    size: int
    mode: int | None = None
    mtime: float | None = None
    target: str | None = None


def _entry_of(node: UnixFSNode) -> _Entry:
    kind = node.kind
    mode = mtime = target = None
    if node.data is not None:
        mode = node.data.mode
        if node.data.mtime is not None:
            mtime = node.data.mtime.seconds + node.data.mtime.nanos / 1e9
        if kind == "symlink":
            target = (node.data.data or b"").decode("utf-8", "surrogateescape")
    size = node.file_size if kind == "file" else (len(target or "") if kind == "symlink" else 0)
    return _Entry(node.cid, kind, size, mode, mtime, target)


class _Slot(Generic[T]):
    """One piece of a large read in :meth:`IPFSFileSystem._run_pieces`'s window: submitted to the
    pool, or (its future cancelled before it started) run by the reading thread."""

    __slots__ = ("future", "known", "mine", "piece")

    def __init__(self, piece: tuple[int, int], future: Future[T]) -> None:
        self.piece = piece
        self.future = future
        self.known = False
        self.mine: T | BaseException | None = None  # the result when this thread ran it

    def take(self, run: Callable[[int, int], T | BaseException]) -> None:
        self.mine = run(*self.piece)
        self.known = True

    @property
    def running(self) -> bool:
        """Neither run here nor finished on the pool (maybe not started yet)."""
        return not self.known and not self.future.done()

    @property
    def finished(self) -> bool:
        return self.known or (self.future.done() and not self.future.cancelled())

    @property
    def value(self) -> T | BaseException | None:
        """The result or error of a finished piece."""
        if self.known:
            return self.mine
        return self.future.exception() or self.future.result()


class _Views:
    """The chain as the file reader's BlockSource: leaves from a mapped CAR come as views, so the
    only copy of file bytes is the one that assembles the answer."""

    def __init__(self, chain: SourceChain) -> None:
        self.get = chain.get_view
        self.has = chain.has
        self._chain = chain

    def get_many(self, cids: list[bytes]) -> list[Any]:
        """Several blocks, verified two at a time: the reader asks for a node's raw leaves so."""
        return self._chain.get_views(cids)


class _State:
    """Everything that must not cross a fork: sources, caches, the thread pool."""

    def __init__(self, chain: SourceChain) -> None:
        self.pid = os.getpid()
        self.chain = chain
        self.views = _Views(chain)
        self.entries: _LRU[str, _Entry] = _LRU(_ENTRY_CACHE)
        self.nodes: _LRU[str, UnixFSNode] = _LRU(_NODE_CACHE)
        self.readers: _LRU[bytes, UnixFSReader] = _LRU(_READER_CACHE)
        self._pool: ThreadPoolExecutor | None = None
        self._split: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        # close file handles when the filesystem goes, even from a reference cycle
        # (weakref callbacks run before the handles' own finalizers would warn)
        self._finalizer = weakref.finalize(self, chain.close)

    @property
    def pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="pyipld-fs")
            return self._pool

    @property
    def split_pool(self) -> ThreadPoolExecutor:
        """Threads for the pieces of one large read (separate from :attr:`pool`, whose tasks may
        start a large read: a task never waits on its own pool)."""
        with self._lock:
            if self._split is None:
                self._split = ThreadPoolExecutor(_SPLIT_WORKERS, thread_name_prefix="pyipld-fs-split")
            return self._split

    def close(self) -> None:
        if self._split is not None:
            self._split.shutdown(wait=False)
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        self._finalizer()


def _remove_staging(path: str, pid: int) -> None:
    if os.getpid() == pid:
        shutil.rmtree(path, ignore_errors=True)


def _norm(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["ipfs"] and len(parts) > 1 and (path.startswith("/") or _is_cid(parts[1])):
        parts = parts[1:]  # /ipfs/CID/…, and ipfs://ipfs/CID/… (a URL with the path form)
    return "/".join(parts)


def _number(value: Any, name: str, *, zero: bool) -> float:
    """A numeric storage option: positive (or, with ``zero``, not negative)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(out) or out < 0 or (out == 0 and not zero):
        raise ConfigError(f"{name}: expected a {'non-negative' if zero else 'positive'} number, got {value!r}")
    return out


def _unavailable(what: str, exc: NotFoundError, path: str | None = None) -> BlockUnavailableError:
    """A block the chain could not supply, as the fs layer reports it: never a ``FileNotFoundError``
    or ``KeyError`` (``NotFoundError``), which mappers and zarr would read as an absent key."""
    return BlockUnavailableError(f"{what}: {exc}", path=path)


def _is_cid(text: str) -> bool:
    try:
        CID.decode(text)
    except (CIDError, ValueError):
        return False
    return True


def _cache_store(path: Any) -> DirectoryBlockstore:
    """The ``cache`` directory's store, made if missing; ``~`` is the home directory (as in the docs'
    ``cache="~/.cache/pyipld-blocks"``, which made a directory named ``~`` in the working one).

    Raises:
        ConfigError: ``path`` exists and is not a directory (it was FileExistsError: File exists).
    """
    path = os.path.expanduser(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"cache {path}: not a directory (a CAR file goes in cars=[...])")
    return DirectoryBlockstore(path)


def _spec_items(key: str, spec: Any) -> list[Any]:
    """A source option as a list: one path (str or ``Path``), URL or dict, or a list of them.

    Raises:
        ConfigError: an entry that is none of these (a number; ``Path`` was iterated and failed).
    """
    if isinstance(spec, (str, dict, os.PathLike)):
        spec = [spec]
    if not isinstance(spec, Iterable | None):
        raise ConfigError(f"{key}: expected a path, URL or a list of them, not a {type(spec).__name__}")
    items = list(spec or [])
    for item in items if key in ("cars", "blockstore") else ():  # peers and URLs: checked where opened
        if not isinstance(item, (str, dict, os.PathLike)):
            raise ConfigError(f"{key}: expected a path or URL, not a {type(item).__name__}: {item!r}")
    return [os.fspath(i) if isinstance(i, os.PathLike) else i for i in items]


class IPFSFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """An fsspec filesystem for ``ipfs://`` (see docs/fsspec.md for every option).

    Storage options (sources are tried in the order given, after ``cache``):
        cars: CAR files — paths, fsspec URLs, or ``{"url", "index", "storage_options"}``.
        blockstore: a :class:`~pyipld.blockstore.DirectoryBlockstore` directory (or a list).
        peers: bitswap peer multiaddrs; ``peer_timeout`` seconds per block (default 30).
        gateways: trustless HTTP gateway URLs (:class:`pyipld.http.GatewayBlockSource`).
        routing: delegated routing v1 URLs: providers' gateways and bitswap peers (``http_timeout``).
        cache: a block-cache directory shared by processes (read first, filled with verified blocks).
        sink: where writes go — ``*.car`` (a CARv2 written by :meth:`commit`) or a blockstore directory.
        add: ``pyipld add`` parameters for writes (:class:`~pyipld.unixfs.ImportParams` fields, ``profile``).
        memory_cache: bytes of verified blocks kept in memory (default 64 MiB).
        block_size: default read block of opened files (default 1 MiB).
        cache_type, cache_options: default fsspec cache of opened files (default: our read-ahead).
        use_env: take sources from ``IPFS_GATEWAY``/``PYIPLD_BLOCKSTORE``/``PYIPLD_FS_CACHE`` when
            none is given (default True).
    """

    protocol = ("ipfs",)
    root_marker = ""
    sep = "/"
    blocksize = DEFAULT_FILE_BLOCK
    cachable = True

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - _OPTIONS - _FSSPEC_OPTIONS)
        if unknown:  # a misspelled source would otherwise leave the filesystem without it, silently
            close = [m for k in unknown for m in difflib.get_close_matches(str(k), _OPTIONS, n=1)]
            raise ConfigError(f"ipfs:// storage option{'s' if len(unknown) > 1 else ''} "
                              f"{', '.join(map(repr, unknown))} not recognised"
                              f"{' (did you mean ' + ', '.join(map(repr, close)) + '?)' if close else ''}; "
                              f"accepted: {', '.join(sorted(_OPTIONS))} (and fsspec's {', '.join(sorted(_FSSPEC_OPTIONS))})")
        options.pop("asynchronous", None)  # zarr asks for it; we are sync and get wrapped
        options.pop("loop", None)
        self._source_specs: list[tuple[str, Any]] = [(k, options.pop(k)) for k in list(options)
                                                     if k in _SOURCE_KEYS]
        self._cache_dir: str | None = options.pop("cache", None)
        self._sink: str | None = options.pop("sink", None)
        self._add: dict[str, Any] = dict(options.pop("add", None) or {})
        self._memory_cache = int(_number(options.pop("memory_cache", DEFAULT_MEMORY_CACHE_BYTES), "memory_cache",
                                         zero=True))
        block_size = options.pop("block_size", None)  # `fsspec.open(url, block_size=…)` passes it here
        if block_size is not None:
            size = _number(block_size, "block_size", zero=False)
            if size != int(size):
                raise ConfigError(f"block_size: expected a whole number of bytes, got {block_size!r}")
            self.blocksize = int(size)
        # `fsspec.open(url, cache_type=…, cache_options=…)` passes these here too (http://, s3:// take
        # them as the defaults of the files they open)
        self._cache_type: str | None = options.pop("cache_type", None)
        self._cache_options: dict[str, Any] | None = options.pop("cache_options", None)
        if self._cache_options is not None and not isinstance(self._cache_options, dict):
            raise ConfigError(f"cache_options: expected a dict, got {type(self._cache_options).__name__}")
        self._peer_timeout = _number(options.pop("peer_timeout", 30.0), "peer_timeout", zero=False)
        self._http_timeout = _number(options.pop("http_timeout", 30.0), "http_timeout", zero=False)
        use_env = bool(options.pop("use_env", True))
        if use_env and not self._source_specs:
            env = env_defaults()
            self._cache_dir = self._cache_dir or env.pop("cache", None)
            self._source_specs = list(env.items())
        super().__init__(**options)
        self.params = self._import_params()
        self.last_cid: CID | None = None
        self.staging = StagingTree()
        self._staging_store: DirectoryBlockstore | MemoryBlockstore | None = None
        self._state: _State | None = None
        self._state_pid = -1
        self._st()  # open sources now: a bad option fails at construction

    # -- configuration ------------------------------------------------------------------------------
    def _import_params(self) -> ImportParams:
        opts = dict(self._add)
        profile = opts.pop("profile", None)
        if "mtime" in opts and isinstance(opts["mtime"], list):
            opts["mtime"] = tuple(opts["mtime"])
        try:
            params = ImportParams.from_profile(profile, **opts) if profile else ImportParams(**opts)
            params.resolve()  # a bad chunker or profile combination fails here, not at the first write
            return params
        except TypeError as exc:
            raise ConfigError(f"add: {exc}") from None

    def _build_sources(self) -> list[tuple[str, BlockSource]]:
        out: list[tuple[str, BlockSource]] = []
        store = self._staging()
        if store is not None:
            out.append((f"sink:{self._sink}", store))
        for key, spec in self._source_specs:
            items = _spec_items(key, spec)
            if key == "cars":
                out.extend(open_car_source(item) for item in items)
            elif key == "blockstore":
                out.extend(directory_source(os.fspath(item)) for item in items)
            elif key == "peers":
                if items:
                    peers = PeerSource(items, timeout=self._peer_timeout)  # checks each multiaddr
                    out.append((f"peers:{','.join(items)}", peers))
            else:
                out.extend(self._http_sources(key, items))
        return out

    def _http_sources(self, key: str, items: list[Any]) -> list[tuple[str, BlockSource]]:
        if not items:
            return []
        if not all(isinstance(u, str) for u in items):
            raise ConfigError(f"{key}: expected URL strings, got {items!r}")
        if key == "gateways":
            return [gateway_source(items, timeout=self._http_timeout)]
        return [(f"routing:{','.join(items)}",
                 RoutedSource(items, timeout=self._http_timeout, peer_timeout=self._peer_timeout))]

    def _staging(self) -> DirectoryBlockstore | MemoryBlockstore | None:
        if self._sink is None:
            return None
        if self._staging_store is None:
            if self._sink.endswith(".car"):
                parent = os.path.dirname(os.path.abspath(self._sink))
                os.makedirs(parent, exist_ok=True)
                staging = tempfile.mkdtemp(prefix=".pyipld-staging-", dir=parent)
                self._staging_store = DirectoryBlockstore(staging)
                # removed when this filesystem goes (or at exit), by the process that made it only
                weakref.finalize(self, _remove_staging, staging, os.getpid())
            else:
                self._staging_store = DirectoryBlockstore(self._sink)
        return self._staging_store

    def _st(self) -> _State:
        st = self._state
        if st is not None and st.pid == os.getpid():
            return st
        # first use, or a forked child: every handle is re-opened in this process
        cache = _cache_store(self._cache_dir) if self._cache_dir else None
        st = _State(SourceChain(self._build_sources(), cache=cache, memory_cache_bytes=self._memory_cache))
        self._state = st
        return st

    @property
    def chain(self) -> SourceChain:
        """This process's source chain (``chain.failures`` lists integrity failures)."""
        return self._st().chain

    @property
    def fsid(self) -> str:
        return "ipfs"  # content addressing: the same path means the same bytes everywhere

    # -- paths ----------------------------------------------------------------------------------------
    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise ConfigError(f"an ipfs path is a str (CID/a/b), not a {type(path).__name__}")
        path = os.fsdecode(path)
        for proto in ("ipfs://", "ipfs::"):
            path = path.removeprefix(proto)
        return _norm(path)

    def unstrip_protocol(self, name: str) -> str:
        return name if name.startswith("ipfs://") else f"ipfs://{name}"

    @staticmethod
    def _is_ipfs(path: str) -> bool:
        return _is_cid(path.split("/", 1)[0]) if path else False

    # -- resolution -----------------------------------------------------------------------------------
    def _resolve(self, path: str) -> _Entry:
        """The entry at a normalized path (IPFS or staged).

        ``FileNotFoundError`` only for a name that a directory which *was* loaded does not hold
        (and for ``.``/``..`` and staged paths); a block on the way that no source could supply,
        the root's included, is :class:`~pyipld.errors.BlockUnavailableError`: whether the path
        exists cannot be told without it.
        """
        st = self._st()
        hit = st.entries.get(path)
        if hit is not None:
            return hit
        if not self._is_ipfs(path):
            return self._resolve_staged(path)
        parts = path.split("/")
        if any(p in (".", "..") for p in parts):
            raise FileNotFoundError(f"{path}: '.' and '..' are not allowed in IPFS paths")
        # start from the deepest cached directory above the path
        i = len(parts) - 1
        node: UnixFSNode | None = None
        while i >= 1:
            node = st.nodes.get("/".join(parts[:i]))
            if node is not None:
                break
            i -= 1
        try:
            if node is None:
                node = self._load(st, parts[0], CID.decode(parts[0]).bytes)
                i = 1
            for j in range(i, len(parts)):
                if node.kind != "directory":
                    raise NotADirectoryError(f"{'/'.join(parts[:j])} is a {node.kind}, not a directory")
                entry = lookup(st.chain, node, parts[j].encode("utf-8", "surrogateescape"))
                if entry is None:
                    raise FileNotFoundError(path)
                here = "/".join(parts[: j + 1])
                if entry.cid.codec == RAW and entry.tsize is not None:
                    # a raw block is a whole file of tsize bytes, as ls lists it: described without
                    # its block (which a read needs, and then checks)
                    raw = _Entry(entry.cid.bytes, "file", entry.tsize)
                    st.entries.put(here, raw)
                    if j + 1 < len(parts):
                        raise NotADirectoryError(f"{here} is a file, not a directory")
                    return raw
                node = self._load(st, here, entry.cid.bytes)
        except NotFoundError as exc:  # a HAMT shard on the name's path
            raise _unavailable(path, exc, path) from exc
        hit = st.entries.get(path)
        assert hit is not None
        return hit

    def _load(self, st: _State, path: str, cid: bytes) -> UnixFSNode:
        try:
            node = load_node(st.chain, cid)
        except NotFoundError as exc:
            raise _unavailable(path, exc, path) from exc
        st.entries.put(path, _entry_of(node))
        if node.kind == "directory":
            st.nodes.put(path, node)
        return node

    def _dir_node(self, path: str) -> UnixFSNode:
        st = self._st()
        node = st.nodes.get(path)
        if node is None:
            entry = self._resolve(path)
            if entry.kind != "directory":
                raise NotADirectoryError(path)
            node = st.nodes.get(path)
            if node is None:  # evicted meanwhile
                node = self._load(st, path, entry.cid)
        return node

    def _resolve_staged(self, path: str) -> _Entry:
        f = self.staging.files.get(path)
        if f is not None:
            return _Entry(f.cid, "file", f.size)
        if self.staging.is_dir(path):
            return _Entry(b"", "directory", 0)
        parts = path.split("/")
        for i in range(1, len(parts)):  # a path into a staged file: as for IPFS paths
            above = "/".join(parts[:i])
            if above in self.staging.files:
                raise NotADirectoryError(f"{above} is a file, not a directory")
        raise FileNotFoundError(path)

    def _info_of(self, path: str, e: _Entry) -> dict[str, Any]:
        out: dict[str, Any] = {"name": path, "size": e.size, "type": "other" if e.kind == "symlink" else e.kind}
        if e.cid:
            cid = str(CID.from_bytes(e.cid))
            out["CID"] = cid
            out["ETag"] = cid
        out["islink"] = e.kind == "symlink"
        if e.target is not None:
            out["destination"] = e.target
        if e.mode is not None:
            out["mode"] = e.mode
        if e.mtime is not None:
            out["mtime"] = e.mtime
        return out

    # -- reading: metadata ----------------------------------------------------------------------------
    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        return self._info_of(path, self._resolve(path))

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        if not self._is_ipfs(path):
            return self._ls_staged(path, detail)
        entry = self._resolve(path)
        if entry.kind != "directory":
            return [self._info_of(path, entry)] if detail else [path]
        st = self._st()
        node = self._dir_node(path)
        try:
            children = list(iter_directory(st.chain, node))
        except NotFoundError as exc:  # a HAMT shard
            raise _unavailable(path, exc, path) from exc
        names = [f"{path}/{c.name.decode('utf-8', 'surrogateescape')}" for c in children]
        if not detail:
            return names

        def one(name: str, cid: CID, tsize: int | None) -> dict[str, Any]:
            hit = st.entries.get(name)
            if hit is None and cid.codec == RAW and tsize is not None:
                hit = _Entry(cid.bytes, "file", tsize)  # a raw block is a whole file of tsize bytes
                st.entries.put(name, hit)
            if hit is None:
                hit = _entry_of(self._load(st, name, cid.bytes))
            return self._info_of(name, hit)

        args = [(n, c.cid, c.tsize) for n, c in zip(names, children)]
        if len(args) <= 1 or all(st.entries.get(n) is not None for n, _, _ in args):
            return [one(*a) for a in args]
        return list(st.pool.map(lambda a: one(*a), args))

    def _ls_staged(self, path: str, detail: bool) -> list[Any]:
        entry = self._resolve_staged(path)
        if entry.kind != "directory":
            return [self._info_of(path, entry)] if detail else [path]
        kids = self.staging.children(path)
        if not detail:
            return [p for p, _ in kids]
        return [self._info_of(p, _Entry(f.cid, "file", f.size) if f else _Entry(b"", "directory", 0))
                for p, f in kids]

    def exists(self, path: str, **kwargs: Any) -> bool:
        """False only for a path that is not there; a block needed to tell that no source could
        supply raises :class:`~pyipld.errors.BlockUnavailableError` (fsspec's own returns False)."""
        try:
            self.info(path)
        except (FileNotFoundError, NotADirectoryError, UnsafePathError):
            return False
        return True

    def isdir(self, path: str) -> bool:
        """Like fsspec's, but an unavailable block raises instead of answering False."""
        try:
            return bool(self.info(path)["type"] == "directory")
        except (FileNotFoundError, NotADirectoryError, UnsafePathError):
            return False

    def isfile(self, path: str) -> bool:
        """Like fsspec's, but an unavailable block raises instead of answering False."""
        try:
            return bool(self.info(path)["type"] == "file")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, UnsafePathError):
            return False

    def walk(self, path: str, maxdepth: int | None = None, topdown: bool = True, on_error: Any = "omit",
             **kwargs: Any) -> Any:
        """fsspec's walk (and so ``find``, ``glob``, ``du``), except that with the default
        ``on_error="omit"`` an unavailable block still raises: omitting its directory would
        silently drop files from the listing."""
        if on_error == "omit":
            def on_error(exc: BaseException) -> None:
                if isinstance(exc, BlockUnavailableError):
                    raise exc
        yield from super().walk(path, maxdepth=maxdepth, topdown=topdown, on_error=on_error, **kwargs)

    def ukey(self, path: str) -> str:
        """The CID: content addressing makes it the ideal cache key."""
        info = self.info(path)
        return str(info.get("CID") or hashlib.sha256(repr(sorted(info.items())).encode()).hexdigest())

    def checksum(self, path: str) -> int:
        return int.from_bytes(hashlib.sha256(self.ukey(path).encode()).digest()[:8], "big")

    def modified(self, path: str) -> Any:
        info = self.info(path)
        if "mtime" not in info:
            raise NotImplementedError("this UnixFS entry has no mtime")
        import datetime

        return datetime.datetime.fromtimestamp(info["mtime"], tz=datetime.UTC)

    # -- reading: bytes ---------------------------------------------------------------------------------
    def _reader(self, cid: bytes) -> UnixFSReader:
        st = self._st()
        reader = st.readers.get(cid)
        if reader is None:
            reader = UnixFSReader(st.views, cid, verify=False)  # type: ignore[arg-type]  # the chain verifies
            st.readers.put(cid, reader)
        return reader

    def _file_entry(self, path: str) -> _Entry:
        entry = self._resolve(path)
        if entry.kind == "directory":
            raise IsADirectoryError(path)
        if entry.kind != "file":
            raise UnixFSError(f"{path} is a UnixFS {entry.kind}, not a file")
        return entry

    @staticmethod
    def _span(size: int, start: int | None, end: int | None) -> tuple[int, int]:
        """Slice semantics: ``[start:end)`` of ``size`` bytes as absolute, clamped offsets."""
        start, end = index_arg(start, "start", none=True), index_arg(end, "end", none=True)
        s = 0 if start is None else (max(0, size + start) if start < 0 else min(start, size))
        e = size if end is None else (max(0, size + end) if end < 0 else min(end, size))
        return s, max(s, e)

    @staticmethod
    def _split(s: int, e: int) -> bool:
        """Whether ``[s, e)`` is worth cutting into pieces for several threads."""
        return e - s >= _SPLIT_MIN and _SPLIT_WORKERS >= 2

    @staticmethod
    def _pieces(s: int, e: int) -> Iterator[tuple[int, int]]:
        """``[s, e)`` cut at multiples of the split piece (whole kubo leaves), lazily (a claimed
        size of 2**60 bytes costs nothing until read), or one piece when the range is too small
        to be worth several threads."""
        if not IPFSFileSystem._split(s, e):
            yield s, e
            return
        a, b = s, (s // _SPLIT_PIECE + 1) * _SPLIT_PIECE
        while a < e:
            yield a, min(b, e)
            a, b = b, b + _SPLIT_PIECE

    def _checked_reader(self, cid: bytes, size: int) -> UnixFSReader:
        """The file's reader, once its root is known to hold ``size`` bytes: a root whose
        ``filesize`` disagrees with its ``blocksizes`` (or a link's size with the file) is refused
        before any piece of the claimed range is read."""
        reader = self._reader(cid)
        if reader.size != size:  # decoding the root checks filesize == len(Data) + sum(blocksizes)
            raise UnixFSError(f"file {CID.from_bytes(cid)}: its root holds {reader.size} bytes, "
                              f"its entry says {size}")
        return reader

    def read_cid(self, cid: bytes, size: int, start: int | None = None, end: int | None = None, *,
                 path: str | None = None) -> bytes:
        """Bytes ``[start:end)`` (slice semantics) of the file DAG ``cid`` of ``size`` bytes (``path``
        names it in errors)."""
        s, e = self._span(size, start, end)
        try:
            reader = self._checked_reader(cid, size)  # even for no bytes: a size of 0 may be a lie too
            if e <= s:
                return b""
            if not self._split(s, e):
                return reader.read(s, e - s)
            parts = self._run_pieces(lambda a, b: list(reader.iter_range(a, b - a)), self._pieces(s, e))
            return b"".join(part for piece in parts for part in piece)
        except NotFoundError as exc:
            raise _unavailable(path or f"file {CID.from_bytes(cid)}", exc, path) from exc

    def _run_pieces(self, fn: Callable[[int, int], T], pieces: Iterator[tuple[int, int]]) -> list[T]:
        """``fn(a, b)`` for every piece, results in order: on the split pool and on this thread.

        At most :data:`_WINDOW_PER_WORKER` unfinished pieces per pool thread are submitted at a
        time (a sliding window, refilled as pieces finish), so neither memory nor the work done
        after a failure grows with the range's size. This thread runs the first piece, then
        any piece of the window the pool has not started (the head first, else one from the
        back), and otherwise waits for the next piece to finish: it never idles while there is
        work and is never stuck behind another read's pieces. After a failure nothing more is
        submitted and unstarted pieces are dropped; returns, or raises the first failing piece's
        error, only once every piece has ended.
        """

        def run(a: int, b: int) -> T | BaseException:
            try:
                return fn(a, b)
            except BaseException as exc:  # noqa: BLE001 - raised below, once no piece is running
                return exc

        pool = self._st().split_pool
        width = max(2, _WINDOW_PER_WORKER * _SPLIT_WORKERS)
        slots: deque[_Slot[T]] = deque()  # submitted, not yet collected, in piece order
        more = True

        def top_up() -> None:
            nonlocal more
            unfinished = sum(1 for slot in slots if slot.running)
            while more and unfinished < width and len(slots) < 4 * width:
                piece = next(pieces, None)
                if piece is None:
                    more = False
                    return
                slots.append(_Slot(piece, pool.submit(fn, *piece)))
                unfinished += 1

        first = next(pieces)
        top_up()
        out: list[T] = []
        error: BaseException | None = None
        failed = False  # a piece run here, not at the head, failed
        result = run(*first)
        if isinstance(result, BaseException):
            error = result
        else:
            out.append(result)
        while error is None and not failed:
            while slots and slots[0].finished:  # collect, in order
                head = slots.popleft()
                if isinstance(head.value, BaseException):
                    error = head.value
                    break
                out.append(cast(T, head.value))
            if error is not None:
                break
            top_up()
            if not slots:
                return out
            # run an unstarted piece here (the head first), else wait for one to finish
            mine = next((slot for slot in (slots[0], *reversed(slots)) if slot.running and slot.future.cancel()),
                        None)
            if mine is not None:
                mine.take(run)
                failed = isinstance(mine.value, BaseException)
            else:
                wait([slot.future for slot in slots if slot.running], return_when=FIRST_COMPLETED)
        for slot in slots:  # a failure: drop what has not started, let the rest end
            if slot.running:
                slot.future.cancel()
        wait([slot.future for slot in slots if slot.running and not slot.future.cancelled()])
        if error is not None:
            raise error  # the head's: earlier than every piece still in the window
        for slot in slots:  # the first failure in piece order (dropped pieces never ran)
            if slot.finished and isinstance(slot.value, BaseException):
                raise slot.value
        raise AssertionError("unreachable: a piece failed")  # pragma: no cover

    def read_cid_into(self, cid: bytes, size: int, start: int, out: Any, *, path: str | None = None) -> int:
        """Copy bytes of the file DAG ``cid`` (``size`` bytes) from ``start`` into the writable
        buffer ``out`` until it is full or the file ends; returns the count.

        A large range is cut into pieces that the split pool's threads (and this one) fetch,
        verify and copy into their own slices of ``out`` (the copy is parallel too, each leaf
        copied while it is still in cache). Every piece has finished when this returns, even on
        error: nothing writes into ``out`` afterwards.
        """
        if start < 0:
            raise ValueError(f"start must not be negative, got {start}")
        view = memoryview(out).cast("B")
        s, e = self._span(size, start, start + len(view))
        try:
            reader = self._checked_reader(cid, size)
            if e <= s:
                return 0
            if not self._split(s, e):
                got = reader.read_into(s, view[: e - s])
            else:
                got = sum(self._run_pieces(lambda a, b: reader.read_into(a, view[a - s : b - s]),
                                           self._pieces(s, e)))
        except NotFoundError as exc:
            raise _unavailable(path or f"file {CID.from_bytes(cid)}", exc, path) from exc
        if got != e - s:  # the reader checks every node's size against its parent's, so never
            raise UnixFSError(f"file {CID.from_bytes(cid)}: {got} bytes where {e - s} were expected")
        return got

    def _submit(self, fn: Callable[[int, int], bytes], start: int, end: int) -> Future[bytes]:
        """Run a file's read-ahead on this process's pool (never a thread the file must join)."""
        return self._st().pool.submit(fn, start, end)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        path = self._strip_protocol(path)
        entry = self._file_entry(path)
        return self.read_cid(entry.cid, entry.size, start, end, path=path)

    def cat_ranges(self, paths: list[str], starts: Any, ends: Any, max_gap: int | None = None,
                   on_error: str = "return", **kwargs: Any) -> list[Any]:
        """Ranges fetched concurrently (each only the blocks it needs); errors in place or raised."""
        if max_gap is not None:
            raise NotImplementedError("max_gap")
        if not isinstance(paths, list):
            raise TypeError("paths must be a list")
        starts = starts if isinstance(starts, list) else [starts] * len(paths)
        ends = ends if isinstance(ends, list) else [ends] * len(paths)
        if len(starts) != len(paths) or len(ends) != len(paths):
            raise ValueError("paths, starts and ends must have the same length")

        def one(args: tuple[str, int | None, int | None]) -> Any:
            try:
                return self.cat_file(*args)
            except Exception as exc:
                if on_error == "return":
                    return exc
                raise

        jobs = list(zip(paths, starts, ends))
        if len(jobs) <= 1:
            return [one(j) for j in jobs]
        return list(self._st().pool.map(one, jobs))

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, autocommit: bool = True,
              cache_options: dict[str, Any] | None = None, **kwargs: Any) -> AbstractBufferedFile:
        path = self._strip_protocol(path)
        if mode == "rb":
            if self._cache_type is not None:
                kwargs.setdefault("cache_type", self._cache_type)
            if cache_options is None:
                cache_options = self._cache_options
            return IPFSFile(self, path, block_size=block_size, cache_options=cache_options, **kwargs)
        if mode in ("wb", "xb"):
            if self._is_ipfs(path):
                raise PermissionError(f"{path}: an IPFS path is immutable; write to a staging name instead")
            self._writable_path(path)  # '.', '..': refused before the file exists
            self._sink_store()  # no sink: refused now, as pipe_file is, not when the file closes
            if mode == "xb" and self.exists(path):
                raise FileExistsError(path)
            if self.staging.is_dir(path):
                raise IsADirectoryError(path)
            return IPFSWriteFile(self, path, mode=mode, block_size=block_size, autocommit=autocommit, **kwargs)
        raise NotImplementedError(f"mode {mode!r}: ipfs:// files are 'rb', 'wb' or 'xb' (no append)")

    # -- writing ------------------------------------------------------------------------------------------
    def _sink_store(self) -> DirectoryBlockstore | MemoryBlockstore:
        store = self._staging()
        if store is None:
            raise PermissionError("read-only: pass storage option sink='out.car' or sink='blocks/' to write")
        return store

    def _writable_path(self, path: str) -> str:
        path = self._strip_protocol(path)
        if not path or self._is_ipfs(path):
            raise PermissionError(f"{path or '/'}: IPFS paths are immutable; write to a staging name "
                                  "(a path whose first part is not a CID)")
        if any(p in (".", "..") for p in path.split("/")):  # a staged '..' only failed at commit
            raise UnsafePathError(f"{path}: '.' and '..' are not allowed in staging paths")
        return path

    def _stage(self, path: str, result: Any) -> str:
        self.staging.add_file(path, StagedFile(result.cid.bytes, result.size, result.tsize))
        self._forget(path)
        self.last_cid = result.cid
        return str(result.cid)

    def _forget(self, path: str) -> None:
        st = self._st()
        st.entries.pop(path)
        st.nodes.pop(path)
        self.invalidate_cache(path)

    def import_fileobj(self, path: str, f: IO[bytes] | str) -> str:
        """Import a file object or local path to staged ``path``; returns the file's CID."""
        path = self._writable_path(path)
        return self._stage(path, import_file(f, self.params, self._sink_store()))

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> str:
        """Import ``value`` as staged file ``path``; returns its CID (also in :attr:`last_cid`)."""
        path = self._writable_path(path)
        if mode == "create" and self.exists(path):
            raise FileExistsError(path)
        return self._stage(path, import_bytes(bytes(value), self.params, self._sink_store()))

    def put_file(self, lpath: str, rpath: str, callback: Any = None, mode: str = "overwrite",
                 **kwargs: Any) -> str | None:
        """Import local file ``lpath`` as staged ``rpath``; returns its CID."""
        rpath = self._writable_path(rpath)
        if mode == "create" and self.exists(rpath):
            raise FileExistsError(rpath)
        if os.path.isdir(lpath):
            self.makedirs(rpath, exist_ok=True)
            return None
        cid = self._stage(rpath, import_file(os.fspath(lpath), self.params, self._sink_store()))
        if callback is not None:
            size = os.path.getsize(lpath)
            callback.set_size(size)
            callback.relative_update(size)
        return cid

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy = link the same CID under a new staged name (no bytes move), with the same link
        Tsize ``pyipld add`` writes for that file; ``mv`` is this and ``rm``."""
        src = self._strip_protocol(path1)
        dst = self._writable_path(path2)
        entry = self._resolve(src)
        if entry.kind == "directory":
            self.makedirs(dst, exist_ok=True)
            return
        staged = self.staging.files.get(src)
        if staged is None:  # an IPFS file: link its root with the DAG's cumulative size, as `add` does
            entry = self._file_entry(src)
            try:
                tsize = cumulative_size(load_node(self._st().chain, entry.cid))
            except NotFoundError as exc:
                raise _unavailable(src, exc, src) from exc
            staged = StagedFile(entry.cid, entry.size, tsize, local=False)
        self.staging.add_file(dst, staged)
        self._forget(dst)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        path = self._writable_path(path)
        self.staging.mkdir(path, parents=create_parents, exist_ok=True)
        self.invalidate_cache(path)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        path = self._writable_path(path)
        self.staging.mkdir(path, parents=True, exist_ok=exist_ok)
        self.invalidate_cache(path)

    def rm_file(self, path: str) -> None:
        path = self._writable_path(path)
        self.staging.remove(path)
        self._forget(path)

    def rmdir(self, path: str) -> None:
        path = self._writable_path(path)
        if path in self.staging.files:  # remove() takes files too: rmdir deleted a staged file
            raise NotADirectoryError(path)
        self.staging.remove(path, recursive=False)
        self._forget(path)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        paths = path if isinstance(path, list) else [path]
        for p in paths:
            p = self._writable_path(p)
            self.staging.remove(p, recursive=recursive)
            self._forget(p)
            for child in [k for k in list(self.staging.files) if k.startswith(p + "/")]:
                self._forget(child)

    def commit(self, path: str = "") -> CID:
        """Build the staged tree under ``path`` into DAG nodes; returns its root CID.

        The sink receives the whole DAG, including files copied from IPFS paths: with a
        ``*.car`` sink the CAR (CARv2 with index, root = this CID, ``dag export`` order) is
        written now, atomically, streaming each block from the staged blocks or else from the
        filesystem's sources (verified); with a blockstore sink the directory blocks, and the
        blocks of copied files it lacks, are added to it. The CID is also kept in
        :attr:`last_cid`.

        Raises:
            FileNotFoundError: nothing staged at ``path``.
            BlockUnavailableError: a block of a copied file is in no source (no CAR is written).
        """
        path = self._strip_protocol(path)
        store = self._sink_store()
        root, _ = self.staging.commit(path, self.params, store)
        cid = CID.from_bytes(root)
        chain = self._st().chain
        if self._sink is not None and self._sink.endswith(".car"):
            from ..car.export import export_dag
            from ..car.sink import open_car_sink

            blocks = TreeSource(store, chain)
            try:
                with open_car_sink(self._sink, version=2, roots=[cid]) as car:
                    export_dag(blocks, cid, car, verify=False)  # TreeSource verifies every block
            except NotFoundError as exc:
                raise _unavailable(f"commit {cid}", blocks.missing or exc) from exc
        else:
            try:
                fill_store(store, chain, self.staging.linked(path))
            except NotFoundError as exc:
                raise _unavailable(f"commit {cid}", exc) from exc
        self.last_cid = cid
        return cid

    def close(self) -> None:
        """Drop the per-process state and a CAR sink's temporary staging blocks."""
        if self._state is not None and self._state.pid == os.getpid():
            self._state.close()
        self._state = None
        if self._sink is not None and self._sink.endswith(".car") and isinstance(self._staging_store,
                                                                                  DirectoryBlockstore):
            shutil.rmtree(self._staging_store.root, ignore_errors=True)
            self._staging_store = None


def _check_cache_type(cache_type: object) -> None:
    """Refuse, with the choices, a ``cache_type`` fsspec does not know (it raised a bare KeyError).

    Raises:
        ConfigError: not ``prefetch`` nor one of ``fsspec.caching.caches``.
    """
    from fsspec.caching import caches  # type: ignore[import-untyped]

    if not isinstance(cache_type, (str, type(None))) or (cache_type != ReadAheadCache.name and cache_type not in caches):
        names = ", ".join(sorted({ReadAheadCache.name, *(c for c in caches if isinstance(c, str))}))
        raise ConfigError(f"unknown cache_type {cache_type!r}: one of {names}")


class IPFSFile(AbstractBufferedFile):  # type: ignore[misc]
    """A seekable read-only file: read-ahead and a bounded LRU of ``block_size`` blocks.

    Defaults: 1 MiB blocks (4 kubo leaves) in a :class:`~pyipld.fs.readahead.ReadAheadCache`
    (``cache_type="prefetch"``: an LRU of ``maxblocks=8`` blocks, and the next block fetched on
    the filesystem's pool while a sequential reader uses this one). Any fsspec ``cache_type``
    may be passed instead. Each fetch reads only the leaves under its range, verified.
    """

    DEFAULT_BLOCK_SIZE = DEFAULT_FILE_BLOCK

    def __init__(self, fs: IPFSFileSystem, path: str, *, block_size: int | None = None,
                 cache_type: str = ReadAheadCache.name, cache_options: dict[str, Any] | None = None,
                 size: int | None = None, **kwargs: Any) -> None:
        _check_cache_type(cache_type)
        entry = fs._file_entry(path)
        if entry.size == 0:  # no read of an empty file reaches its DAG: check the claim of 0 bytes now
            fs.read_cid(entry.cid, 0, path=path)
        self.cid = entry.cid
        ours = cache_type == ReadAheadCache.name
        if cache_options is None and (ours or cache_type in ("background", "blockcache")):
            cache_options = {"maxblocks": 8}
        super().__init__(fs, path, mode="rb", block_size=block_size or fs.blocksize,
                         cache_type="none" if ours else cache_type,
                         cache_options=None if ours else cache_options, size=entry.size, **kwargs)
        if ours:
            self.cache = ReadAheadCache(self.blocksize, self._fetch_range, self.size,
                                        submit=fs._submit, **(cache_options or {}))
        self._details = fs._info_of(path, entry)

    def _fetch_range(self, start: int, end: int) -> bytes:
        fs: IPFSFileSystem = self.fs
        return fs.read_cid(self.cid, self.size, start, end, path=self.path)

    def read(self, length: int = -1) -> bytes:
        """Reads of two blocks or more go straight to the DAG (one copy); smaller ones use the cache."""
        length = -1 if length is None else int(length)
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        if length < 0:
            length = self.size - self.loc
        if length >= 2 * self.blocksize:
            out: bytes = self._fetch_range(self.loc, min(self.size, self.loc + length))
            self.loc += len(out)
            return out
        data: bytes = super().read(length)
        return data

    def _direct(self, length: int | None) -> int:
        """Bytes a read of ``length`` returns if it is large enough to skip the cache, else -1."""
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        left = max(0, self.size - self.loc)
        n = left if length is None or length < 0 else min(int(length), left)
        return n if n >= 2 * self.blocksize else -1

    def readinto(self, b: Any) -> int:
        """A large read is verified and copied straight into ``b`` (in parallel pieces, no
        intermediate bytes); smaller ones go through the cache."""
        out = memoryview(b).cast("B")
        n = self._direct(len(out))
        if n < 0:
            data = self.read(len(out))
            out[: len(data)] = data
            return len(data)
        fs: IPFSFileSystem = self.fs
        got = fs.read_cid_into(self.cid, self.size, self.loc, out[:n], path=self.path)
        self.loc += got
        return got

    def read_buffer(self, length: int = -1) -> Any:
        """pyarrow's read hook (``pyarrow.PythonFile`` calls it instead of :meth:`read` and keeps
        the result without copying): a large read fills a buffer from pyarrow's memory pool,
        which reuses its pages, where a fresh ``bytes`` would page-fault every one of them."""
        n = self._direct(length)
        if n < 0:
            return self.read(length)
        import pyarrow as pa  # type: ignore[import-untyped]  # only pyarrow calls this

        buf = pa.allocate_buffer(n)
        self.readinto(buf)
        return buf


class IPFSWriteFile(AbstractBufferedFile):  # type: ignore[misc]
    """``open(path, "wb")``: bytes spool to a temporary file, imported on close (the CID is then
    ``fs.last_cid`` and ``fs.info(path)["CID"]``)."""

    def _initiate_upload(self) -> None:
        self._spool: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _upload_chunk

    def _upload_chunk(self, final: bool = False) -> bool:
        self.buffer.seek(0)
        shutil.copyfileobj(self.buffer, self._spool)
        if final:
            try:
                self._spool.seek(0)
                fs: IPFSFileSystem = self.fs
                self.cid = fs.import_fileobj(self.path, self._spool)
            finally:
                self._spool.close()
        return True

    def discard(self) -> None:
        spool = getattr(self, "_spool", None)
        if spool is not None:
            spool.close()

