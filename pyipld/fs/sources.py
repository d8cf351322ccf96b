"""Block sources for the ``ipfs://`` filesystem: an ordered chain with verification and fallback.

Theory of operation
-------------------
A :class:`SourceChain` holds named :class:`~pyipld.blockstore.BlockSource` objects in the
order the user gave them. ``get(cid)`` answers identity CIDs from the CID itself, then
asks a bounded in-memory LRU, then the on-disk ``cache`` (a
:class:`~pyipld.blockstore.DirectoryBlockstore`), then each source in turn. Every block,
from anywhere, is hashed against its CID before use; a source that returns wrong bytes
gets a :class:`~pyipld.errors.BlockIntegrityError` naming the CID and the source, recorded
in :attr:`SourceChain.failures` and logged, and the next source is tried. A block that no
source can give raises the integrity error if some source lied, else
:class:`~pyipld.errors.NotFoundError` listing why each source failed (the filesystem reports it as
:class:`~pyipld.errors.BlockUnavailableError`, which mappers cannot mistake for an absent key). A verified block
fetched from a source is written to the disk cache (temporary name + rename, so
processes sharing the directory never see a partial block) and to the LRU.

Sources keep no state that breaks across ``fork``: the filesystem builds a new chain in
each process (file handles, HTTP sessions and peer connections are per-pid).
"""

from __future__ import annotations

import hashlib
import io
import logging
import mmap
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import IO, Any, Final

from .._blockcache import Bytes, MemoryBlockCache
from .._io import use_mmap
from .._sha256x2 import sha256_pair
from .._varint import decode_varint
from ..blockstore import BlockSource, DirectoryBlockstore
from ..car.blockstore import CarBlockstore
from ..car.index import CarIndex, decode_index
from ..car.reader import CarFile
from ..car.v1 import DEFAULT_MAX_SECTION_BYTES
from ..cid import CID
from ..errors import (
    BlockIntegrityError,
    CarError,
    CarIndexError,
    ConfigError,
    DecodeError,
    IntegrityError,
    NotFoundError,
    PyipldError,
)
from ..filestore import open_blockstore
from ..multihash import SHA2_256

__all__ = [
    "DEFAULT_MEMORY_CACHE_BYTES",
    "MappedCarSource",
    "MemoryBlockCache",
    "PeerSource",
    "RangeFile",
    "RoutedSource",
    "SourceChain",
    "open_car_source",
]

log = logging.getLogger(__name__)

DEFAULT_MEMORY_CACHE_BYTES: Final = 64 << 20  # a few leaves per open file, times a few dozen files
_MAX_FAILURES: Final = 256  # integrity failures remembered for inspection (oldest dropped)
_SECTION_HEAD: Final = 10 + 256  # a section's length varint and its CID (digests up to 128 bytes) fit in this
_RANGE_MIN_FETCH: Final = 4 << 10  # one request covers a section head and a small block (zarr chunk, dir)




def _is_sha256(cid: bytes) -> bool:
    """A CIDv0, or a CIDv1 with a one-byte codec and a sha2-256 multihash (nearly every CID)."""
    return (len(cid) == 36 and cid[0] == 1 and cid[1] < 0x80 and cid[2] == 0x12 and cid[3] == 0x20) or (
        len(cid) == 34 and cid[0] == 0x12 and cid[1] == 0x20)


def _verify(parsed: CID | None, cid: bytes, data: Bytes) -> bool:
    """``data`` hashes to ``cid``; sha2-256 CIDs skip the generic multihash path."""
    if _is_sha256(cid):
        return hashlib.sha256(data).digest() == cid[-32:]
    return (parsed or CID.from_bytes(cid)).verify(data)




class SourceChain:
    """Named block sources tried in order; every block verified (see the module docstring).

    Args:
        sources: ``(name, source)`` pairs, tried first to last.
        cache: a shared on-disk cache read first and filled with verified blocks.
        memory_cache_bytes: bound of the in-memory LRU (0 turns it off).
    """

    def __init__(self, sources: Sequence[tuple[str, BlockSource]], *, cache: DirectoryBlockstore | None = None,
                 memory_cache_bytes: int = DEFAULT_MEMORY_CACHE_BYTES) -> None:
        self.sources = list(sources)
        self.cache = cache
        self.memory = MemoryBlockCache(memory_cache_bytes) if memory_cache_bytes > 0 else None
        self.failures: deque[BlockIntegrityError] = deque(maxlen=_MAX_FAILURES)
        self.fetched: dict[str, int] = {name: 0 for name, _ in self.sources}  # blocks served per source

    def get(self, cid: bytes) -> bytes:
        """The verified bytes of ``cid``.

        Raises:
            BlockIntegrityError: every source that had the block sent wrong bytes.
            NotFoundError: no source has it (the message says why for each).
        """
        data = self.get_view(cid)
        return data if isinstance(data, bytes) else bytes(data)

    def get_view(self, cid: bytes) -> Bytes:
        """Like :meth:`get`, but a mapped local CAR's block comes as a read-only view, uncopied."""
        parsed: CID | None = None
        if not _is_sha256(cid):
            parsed = CID.from_bytes(cid)
            if parsed.hash_code == 0:
                return parsed.digest
        if self.memory is not None:
            hit = self.memory.get(cid)
            if hit is not None:
                return hit
        reasons: list[str] = []
        lie: BlockIntegrityError | None = None
        if self.cache is not None:
            try:
                data = self.cache.get(cid)
            except (NotFoundError, OSError):
                pass
            else:
                if _verify(parsed, cid, data):
                    self._remember(cid, data)
                    return data
                lie = self._lied(cid, f"cache:{self.cache.root}")
                bad = self.cache._path(cid)  # None only for CIDs no store can hold
                try:  # drop the bad copy so the verified one below can replace it
                    if bad is not None:
                        os.unlink(bad)
                except OSError:
                    pass
        for name, source in self.sources:
            try:
                view = getattr(source, "get_view", None)
                data = view(cid) if view is not None else source.get(cid)
            except (NotFoundError, KeyError) as exc:
                reasons.append(f"{name}: {exc}")
                continue
            except IntegrityError as exc:  # a source that verifies on its own
                lie = lie or BlockIntegrityError(f"{name}: {exc}", cid=str(CID.from_bytes(cid)), source=name)
                self.failures.append(lie)
                continue
            except (PyipldError, OSError, TimeoutError) as exc:
                reasons.append(f"{name}: {type(exc).__name__}: {exc}")
                continue
            if not isinstance(data, (bytes, memoryview)):
                data = bytes(data)
            if not _verify(parsed, cid, data):
                err = self._lied(cid, name)
                lie = lie or err
                continue
            self.fetched[name] = self.fetched.get(name, 0) + 1
            if self.cache is not None:
                try:
                    self.cache.put(cid, bytes(data))
                except OSError as exc:  # a full or read-only cache must not fail the read
                    log.warning("block cache %s: %s", self.cache.root, exc)
            self._remember(cid, data)
            return data
        if lie is not None:
            raise lie
        why = "; ".join(reasons) if reasons else "no block source configured"
        raise NotFoundError(f"block {CID.from_bytes(cid)} not found ({why})")

    def get_views(self, cids: Sequence[bytes]) -> list[Bytes]:
        """:meth:`get_view` of each CID, with the hashing done two blocks at a time.

        Blocks with sha2-256 CIDs that the leading local sources (mapped CARs, tried in order
        up to the first source of another kind) hold are hashed in pairs
        (:func:`~pyipld._sha256x2.sha256_pair`, two SHA-NI lanes). Every other block, and any
        block whose hash does not match, goes through :meth:`get_view` itself, which fetches it
        again, records the failure and tries the next source: no block is returned unverified.
        """
        if self.cache is not None:  # the shared disk cache comes first and is filled: get_view does both
            return [self.get_view(cid) for cid in cids]
        out: list[Bytes | None] = [None] * len(cids)
        local: list[tuple[int, bytes, Bytes, str]] = []
        for i, cid in enumerate(cids):
            if not _is_sha256(cid):
                continue
            if self.memory is not None:
                hit = self.memory.get(cid)
                if hit is not None:
                    out[i] = hit
                    continue
            for name, source in self.sources:
                view = getattr(source, "get_view", None)
                if view is None:
                    break
                try:
                    local.append((i, cid, view(cid), name))
                except (NotFoundError, KeyError):
                    continue
                except (PyipldError, OSError):
                    pass
                break
        for j in range(0, len(local), 2):
            pair = local[j : j + 2]
            digests: tuple[bytes, ...] = (sha256_pair(pair[0][2], pair[1][2]) if len(pair) == 2
                                          else (hashlib.sha256(pair[0][2]).digest(),))
            for (i, cid, data, name), digest in zip(pair, digests):
                if digest == cid[-32:]:
                    self.fetched[name] = self.fetched.get(name, 0) + 1
                    self._remember(cid, data)
                    out[i] = data
        return [self.get_view(cid) if data is None else data for cid, data in zip(cids, out)]

    def _lied(self, cid: bytes, name: str) -> BlockIntegrityError:
        parsed = CID.from_bytes(cid)
        err = BlockIntegrityError(f"block {parsed} from {name} does not hash to its CID", cid=str(parsed),
                                  source=name)
        self.failures.append(err)
        log.warning("%s; trying the next source", err)
        return err

    def _remember(self, cid: bytes, data: Bytes) -> None:
        if self.memory is not None:
            self.memory.put(cid, data)

    def has(self, cid: bytes) -> bool:
        try:
            self.get(cid)
        except (NotFoundError, IntegrityError):
            return False
        return True

    def close(self) -> None:
        for _, source in self.sources:
            close = getattr(source, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    log.debug("closing %r failed", source, exc_info=True)


class MappedCarSource:
    """A local CAR (v1 or v2) read by ``pread``, or with ``PYIPLD_MMAP=1`` mapped read-only
    (``get_view`` then returns a block without copying it; a CAR truncated by another process
    while it is mapped kills this one with SIGBUS, so the mapping is for files nobody writes).
    Read by ``pread``, a CAR that shrank is a :class:`~pyipld.errors.CarError`.

    The index is the CARv2's own (or a detached one), else one scan of section heads at open.
    Like :class:`~pyipld.car.blockstore.CarBlockstore` it never trusts the index: the section at
    an indexed offset must carry the requested multihash, inside the payload, within
    ``max_section_bytes``; the chain then hash-checks the data. No file position is shared
    (no lock, nothing to re-open after ``fork``: the mapping is read-only).
    """

    def __init__(self, path: str | os.PathLike[str], *, index: CarIndex | None = None,
                 max_section_bytes: int = DEFAULT_MAX_SECTION_BYTES) -> None:
        self.path = os.fspath(path)
        self.max_section_bytes = max_section_bytes
        with CarFile(self.path) as car:
            self.roots = car.roots
            self._base = car.payload_offset
            self._end = car.payload_offset + car.payload_length
            self._first = car.payload_offset + car.header_length
            self.index = index
            self._scan: dict[bytes, list[int]] | None = None
            if self.index is None and car.has_index:
                try:
                    self.index = car.read_index()
                except CarIndexError:
                    self.index = None
            if self.index is None:
                scan: dict[bytes, list[int]] = {}
                for head in car.iter_heads():
                    scan.setdefault(CID.from_bytes(head.cid).multihash, []).append(head.offset)
                self._scan = scan
        # Read with pread unless PYIPLD_MMAP=1: a mapped file that another process truncates
        # kills this one with SIGBUS on the next access, which Python cannot turn into an error.
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        size = os.fstat(self._fd).st_size
        self._mm = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ) if size and use_mmap() else None
        self._view = memoryview(self._mm) if self._mm is not None else None

    def _bytes(self, pos: int, n: int) -> memoryview:
        """``n`` bytes at ``pos`` (a view of the mapping, or one pread); fewer means the file shrank."""
        if self._view is not None:
            return self._view[pos : pos + n]
        data = os.pread(self._fd, n, pos)
        if len(data) != n:
            raise CarError(f"{self.path} changed while it was read: {n} bytes expected at offset {pos}, "
                           f"{len(data)} there now", offset=pos)
        return memoryview(data)

    def get_view(self, cid: bytes) -> memoryview:
        # sha2-256 (nearly every CID): the multihash is the last 34 bytes, no CID parse
        parsed = None if _is_sha256(cid) else CID.from_bytes(cid)
        multihash = cid[-34:] if parsed is None else parsed.multihash
        if self._scan is not None:
            offsets = self._scan.get(multihash, [])
        elif parsed is None:
            assert self.index is not None
            offsets = self.index.find_digest(SHA2_256.code, cid[-32:])
        else:
            assert self.index is not None
            offsets = self.index.find(parsed)
        for off in offsets:
            pos = self._base + off
            if pos < self._first or pos >= self._end:
                continue  # a bad index entry: not trusted, not fatal
            head = self._bytes(pos, min(_SECTION_HEAD, self._end - pos))
            try:
                length, n = decode_varint(head)
                if head[n : n + len(cid)] == cid:  # stored under the same CID: no parse
                    k, same = len(cid), True
                else:
                    found, k = CID.decode_prefix(head, n)
                    same = found.multihash == multihash
            except DecodeError:
                continue
            start, stop = pos + n + k, pos + n + length
            if length > self.max_section_bytes or stop > self._end or stop < start:
                continue
            if same:
                return self._bytes(start, stop - start)
        raise NotFoundError(f"ipld: could not find {CID.from_bytes(cid)} in {self.path}")

    def get(self, cid: bytes) -> bytes:
        view = self.get_view(cid)
        return view.obj if isinstance(view.obj, bytes) and len(view) == len(view.obj) else bytes(view)

    def has(self, cid: bytes) -> bool:
        try:
            self.get_view(cid)
        except NotFoundError:
            return False
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        try:
            if self._view is not None:
                self._view.release()
            if self._mm is not None:
                self._mm.close()
        except BufferError:  # blocks handed out still point into the map: the GC closes it later
            pass


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over ``fetch(start, end)`` range requests (remote CARs).

    Reads fetch at least ``min_fetch`` bytes so a section head and a small block come in one
    request; a read larger than the window fetches exactly what is missing. The counters
    ``requests`` and ``bytes_fetched`` say what crossed the wire.
    """

    def __init__(self, fetch: Callable[[int, int], bytes], size: int, *, name: str = "<remote>",
                 min_fetch: int = _RANGE_MIN_FETCH) -> None:
        super().__init__()
        self._fetch = fetch
        self._size = size
        self.name = name
        self.min_fetch = min_fetch
        self._pos = 0
        self._buf = b""
        self._buf_start = 0
        self.requests = 0
        self.bytes_fetched = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def _get(self, start: int, end: int) -> bytes:
        data = self._fetch(start, end)
        self.requests += 1
        self.bytes_fetched += len(data)
        if len(data) != end - start:
            raise OSError(f"{self.name}: asked for bytes {start}-{end - 1}, got {len(data)} bytes")
        return data

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        want = min(len(out), max(0, self._size - self._pos))
        if want == 0:
            return 0
        pos, got = self._pos, 0
        lo, hi = self._buf_start, self._buf_start + len(self._buf)
        if lo <= pos < hi:
            n = min(want, hi - pos)
            out[:n] = self._buf[pos - lo : pos - lo + n]
            got = n
        if got < want:
            start = pos + got
            missing = want - got
            if missing >= self.min_fetch:
                out[got:want] = self._get(start, start + missing)
            else:
                end = min(self._size, start + self.min_fetch)
                self._buf, self._buf_start = self._get(start, end), start
                out[got:want] = self._buf[:missing]
            got = want
        self._pos += got
        return got


def _fsspec_range_file(url: str, storage_options: dict[str, Any], min_fetch: int) -> RangeFile:
    import fsspec  # type: ignore[import-untyped]

    fs, path = fsspec.core.url_to_fs(url, **storage_options)
    size = fs.size(path)
    if size is None:
        raise ConfigError(f"car {url}: the server does not report a size; range reads need one")
    return RangeFile(lambda s, e: fs.cat_file(path, start=s, end=e), int(size), name=url, min_fetch=min_fetch)


def _is_url(spec: str) -> bool:
    return "://" in spec and not spec.startswith("file://")


def _load_index(spec: str, storage_options: dict[str, Any]) -> CarIndex:
    if _is_url(spec):
        import fsspec

        with fsspec.open(spec, "rb", **storage_options) as f:
            return decode_index(f.read())
    return decode_index(open(spec.removeprefix("file://"), "rb").read())


def open_car_source(spec: str | dict[str, Any]) -> tuple[str, CarBlockstore | MappedCarSource]:
    """Open one ``cars`` entry: a path, an fsspec URL, or ``{"url": …, "index": …, "storage_options": {…},
    "min_fetch": bytes}``.

    A remote CARv2 with an index (or a detached ``index``) is read by range requests, one
    or two per block; a remote CARv1 without an index is scanned once on open.
    Blocks are not verified here: the chain verifies each one exactly once.
    """
    min_fetch = _RANGE_MIN_FETCH
    if isinstance(spec, str):
        url, index_spec, options = spec, None, {}
    else:
        url = spec.get("url") or spec.get("path") or ""
        index_spec, options = spec.get("index"), dict(spec.get("storage_options") or {})
        min_fetch = int(spec.get("min_fetch", min_fetch))
        if not url:
            raise ConfigError(f"cars entry {spec!r} has no 'url'")
    index = _load_index(index_spec, options) if index_spec else None
    if _is_url(url):
        rf = _fsspec_range_file(url, options, min_fetch)
        return f"car:{url}", CarBlockstore(rf, verify=False, index=index)  # type: ignore[arg-type]
    path = url.removeprefix("file://")
    return f"car:{path}", MappedCarSource(path, index=index)


def range_file_of(store: CarBlockstore) -> RangeFile | None:
    """The :class:`RangeFile` under a remote CAR source (for byte counting), else None."""
    f: IO[bytes] | Any = getattr(store.car, "_f", None)
    return f if isinstance(f, RangeFile) else None


def _check_peer(addr: Any) -> None:
    """A bitswap peer multiaddr the client can dial: TCP, with the peer's ``/p2p/`` id."""
    from ..libp2p.multiaddr import Multiaddr

    if not isinstance(addr, str):
        raise ConfigError(f"peers: expected multiaddr strings, got {addr!r}")
    try:
        maddr = Multiaddr.parse(addr)
        maddr.tcp_address()
    except DecodeError as exc:
        raise ConfigError(f"peers: {addr!r}: {exc}") from None
    if maddr.peer_id is None:
        raise ConfigError(f"peers: {addr!r} has no /p2p/ peer id (e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…)")


class PeerSource:
    """Blocks over bitswap from ``peers`` (multiaddrs with ``/p2p/``).

    A daemon thread runs one trio loop with one :class:`~pyipld.bitswap.client.BitswapClient`
    for this process, started on first use; ``get`` hands each want to it and waits at most
    ``timeout`` seconds. Blocks are verified by the chain (and by the bitswap session).
    """

    def __init__(self, peers: Sequence[str], *, timeout: float = 30.0) -> None:
        if not peers:
            raise ConfigError("peers: give at least one multiaddr")
        for addr in peers:  # refused now, not on the first read (which would say "not found")
            _check_peer(addr)
        self.peers = list(peers)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._token: Any = None
        self._client: Any = None
        self._error: BaseException | None = None
        self._stop: Any = None
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        import trio

        from ..bitswap.client import BitswapClient

        ready = threading.Event()

        async def main() -> None:
            try:
                async with BitswapClient.connect(self.peers, want_timeout=self.timeout / 2) as client:
                    self._client = client
                    self._token = trio.lowlevel.current_trio_token()
                    self._stop = trio.Event()
                    ready.set()
                    await self._stop.wait()
            except BaseException as exc:  # noqa: BLE001 - reported to the caller of get()
                self._error = exc
                ready.set()

        self._thread = threading.Thread(target=trio.run, args=(main,), name="pyipld-bitswap", daemon=True)
        self._thread.start()
        if not ready.wait(self.timeout):
            raise TimeoutError(f"peers: no connection within {self.timeout} s")

    def get(self, cid: bytes) -> bytes:
        import trio

        with self._lock:
            if self._thread is None:
                self._start()
        if self._error is not None or self._client is None:
            raise NotFoundError(f"peers unreachable: {self._error}")
        client = self._client

        async def want() -> bytes:
            with trio.fail_after(self.timeout):
                data: bytes = await client.get_block(cid)
                return data

        try:
            return trio.from_thread.run(want, trio_token=self._token)
        except trio.TooSlowError:
            raise NotFoundError(f"no peer sent {CID.from_bytes(cid)} within {self.timeout} s") from None

    def has(self, cid: bytes) -> bool:
        try:
            self.get(cid)
        except NotFoundError:
            return False
        return True

    def close(self) -> None:
        if self._stop is not None and self._token is not None:
            import trio

            try:
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            except trio.RunFinishedError:
                pass


def gateway_source(urls: Sequence[str], *, timeout: float = 30.0) -> tuple[str, BlockSource]:
    """A ``gateways`` entry: trustless gateways tried in order (:class:`pyipld.http.GatewayBlockSource`,
    which fails over between them and verifies each block itself too)."""
    from ..http import GatewayBlockSource

    return f"gateways:{','.join(urls)}", GatewayBlockSource(list(urls), timeout=timeout)


class RoutedSource:
    """Providers found through delegated routing v1: their trustless gateways and bitswap peers.

    The first block asked for (usually a root) is looked up at the routers; the providers found
    are remembered (at most ``max_providers`` gateways and peers each) and asked first for every
    later block; a block none of them has is looked up again. Router answers need no trust:
    every block is verified by the chain (and by the gateway client / bitswap session).
    """

    def __init__(self, routers: Sequence[str], *, timeout: float = 30.0, peer_timeout: float = 30.0,
                 max_providers: int = 8) -> None:
        from ..http import RoutingClient

        self.routers = list(routers)
        self.routing = RoutingClient(self.routers, timeout=timeout)
        self.timeout = timeout
        self.peer_timeout = peer_timeout
        self.max_providers = max_providers
        self.gateways: dict[str, BlockSource] = {}
        self.peers: dict[str, PeerSource] = {}
        self._lock = threading.Lock()

    def _known(self) -> list[BlockSource]:
        with self._lock:
            return [*self.gateways.values(), *self.peers.values()]

    def _learn(self, cid: bytes) -> list[BlockSource]:
        plan = self.routing.plan(cid)
        new: list[BlockSource] = []
        with self._lock:
            for url in plan.gateways:
                if url not in self.gateways and len(self.gateways) < self.max_providers:
                    self.gateways[url] = gateway_source([url], timeout=self.timeout)[1]
                    new.append(self.gateways[url])
            for addr in plan.peers:
                if addr not in self.peers and len(self.peers) < self.max_providers:
                    try:
                        self.peers[addr] = PeerSource([addr], timeout=self.peer_timeout)
                    except ConfigError:  # a provider address our dialer cannot use: skip it
                        continue
                    new.append(self.peers[addr])
        return new

    @staticmethod
    def _try(sources: Sequence[BlockSource], cid: bytes, reasons: list[str]) -> bytes | None:
        for source in sources:
            try:
                return source.get(cid)
            except (PyipldError, OSError, TimeoutError, KeyError) as exc:
                reasons.append(f"{type(exc).__name__}: {exc}")
        return None

    def get(self, cid: bytes) -> bytes:
        reasons: list[str] = []
        data = self._try(self._known(), cid, reasons)
        if data is None:
            data = self._try(self._learn(cid), cid, reasons)
        if data is None:
            why = "; ".join(reasons[-4:]) or "the routers know no provider"
            raise NotFoundError(f"{CID.from_bytes(cid)} not found through routing {self.routers}: {why}")
        return data

    def has(self, cid: bytes) -> bool:
        try:
            self.get(cid)
        except NotFoundError:
            return False
        return True

    def close(self) -> None:
        for source in self._known():
            close = getattr(source, "close", None)
            if callable(close):
                close()
        self.routing.close()


def directory_source(path: str) -> tuple[str, DirectoryBlockstore]:
    """A ``blockstore`` entry: an existing :class:`DirectoryBlockstore` directory."""
    if not os.path.isdir(path):
        why = "not a directory (a CAR file goes in cars=[...])" if os.path.exists(path) else "no such directory"
        raise ConfigError(f"blockstore {path}: {why}")
    return f"blockstore:{path}", open_blockstore(path)


def env_defaults(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Sources from the environment, used when none is given: ``IPFS_GATEWAY`` (comma-separated
    URLs), ``PYIPLD_BLOCKSTORE`` (a blockstore directory), ``PYIPLD_FS_CACHE`` (cache directory)."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    if env.get("PYIPLD_BLOCKSTORE"):
        out["blockstore"] = env["PYIPLD_BLOCKSTORE"]
    if env.get("IPFS_GATEWAY"):
        out["gateways"] = [u.strip() for u in env["IPFS_GATEWAY"].split(",") if u.strip()]
    if env.get("PYIPLD_FS_CACHE"):
        out["cache"] = env["PYIPLD_FS_CACHE"]
    return out
