"""What the CLI and Python users call: verified DAGs, CARs, byte ranges and files from gateways.

Each function sends one CAR request (``order=dfs``, ``dups=n`` asked for) and drives
a walk over :class:`~pyipld.http.car_fetch.CarStreamSource`, so a block is used only
after it was hash-checked and the walk ends only when every block it needs arrived:

* the path is proven block by block from the root CID by the traversal the server
  uses (:func:`pyipld.http.traversal.resolve_scope`: basic and HAMT directories,
  dag-cbor/dag-json links); the CAR header roots are ignored;
* a whole DAG is walked like ``ipfs dag export`` (dag-pb, dag-cbor, dag-json, raw);
* a byte range is read by :class:`~pyipld.unixfs.reader.UnixFSReader`, which asks for
  exactly the blocks covering the range — the set an ``entity-bytes`` answer holds.

:func:`iter_scope` exposes the general form (any ``dag-scope``, any path through
dag-pb/dag-cbor/dag-json) through the shared traversal of :mod:`pyipld.http.traversal`.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from ..blockstore import BlockSink
from ..car.export import iter_dag
from ..car.sink import open_car_sink
from ..cid import CID
from ..errors import GatewayError, IntegrityError, NotFoundError, PathNotFoundError, UnixFSError
from ..unixfs.reader import UnixFSFile, UnixFSReader
from ..unixfs.resolve import split_path
from ._request import car_request
from .car_fetch import CarStreamSource
from .client import GatewayClient
from .source import GatewayBlockSource
from .traversal import CarScope, DagScope, iter_scope_blocks, resolve_scope

__all__ = [
    "FetchResult",
    "GatewayFile",
    "fetch_car",
    "fetch_dag",
    "iter_file",
    "iter_scope",
    "open_file",
    "resolve",
]

Progress = Callable[[int], object]


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The CID a path led to, and what was fetched."""

    cid: CID
    blocks: int
    bytes: int


def _client(gateways: GatewayClient | Sequence[str], **options: Any) -> tuple[GatewayClient, bool]:
    if isinstance(gateways, GatewayClient):
        return gateways, False
    return GatewayClient(list(gateways), **options), True


def _text_path(path: str | CID) -> tuple[CID, tuple[str, ...]]:
    root, components = split_path(path)
    return root, tuple(c.decode("utf-8", "surrogateescape") for c in components)


def _terminal(source: CarStreamSource, path: str | CID) -> CID:
    """Prove ``path`` block by block from its root with the shared traversal; the CID it reaches."""
    root, components = split_path(path)
    if not components:
        return root
    try:
        resolved = resolve_scope(source, CarScope(root, components, "block"))
    except PathNotFoundError:
        raise
    except NotFoundError:
        _prove_missing_name(source.client, root, components)
        raise
    if resolved.inner:
        inner = "/".join(p.decode("utf-8", "replace") for p in resolved.inner)
        raise UnixFSError(f"{path}: ends inside block {resolved.terminal_cid} at {inner!r}, not at a block")
    return resolved.terminal_cid


def _prove_missing_name(client: GatewayClient, root: CID, components: tuple[bytes, ...]) -> None:
    """After every gateway said "not found" to a path: a 404 proves nothing (the gateway may
    just lack the data), so walk the path again from raw blocks, each verified; a directory
    that lacks the name raises :class:`PathNotFoundError` (kubo's "no link named …"). If the
    blocks cannot be had either, nothing is raised here: the caller's NotFoundError stands."""
    try:
        resolve_scope(GatewayBlockSource(client=client), CarScope(root, components, "block"))
    except PathNotFoundError:
        raise
    except (NotFoundError, GatewayError):
        return


def resolve(gateways: GatewayClient | Sequence[str], path: str | CID, **options: Any) -> CID:
    """The CID at the end of ``CID/a/b`` (``dag-scope=block``), each block on the way verified."""
    client, own = _client(gateways, **options)
    try:
        root, segments = _text_path(path)
        with CarStreamSource(client, car_request(root, segments, dag_scope="block")) as source:
            target = _terminal(source, path)
            source.finished()
            return target
    finally:
        if own:
            client.close()


def fetch_dag(gateways: GatewayClient | Sequence[str], path: str | CID, sink: BlockSink, *,
              progress: Progress | None = None, on_resolved: Callable[[CID], None] | None = None,
              **options: Any) -> FetchResult:
    """Put every block of the DAG at ``path`` into ``sink`` (``dag export`` order), each verified.

    Only the target DAG is stored, not the directories on the path to it. ``on_resolved`` is
    called with the target's CID once the path to it is proven, before its DAG is fetched.

    Raises:
        IncompleteResponseError: a gateway's ``200`` lacked blocks and no other had them.
        NotFoundError, GatewayError, IntegrityError: see :class:`CarStreamSource`.
    """
    return _fetch_into(gateways, path, lambda _target: contextlib.nullcontext(sink), progress, options, on_resolved)


def fetch_car(gateways: GatewayClient | Sequence[str], path: str | CID, out: str | os.PathLike[str], *,
              version: int = 1, progress: Progress | None = None, **options: Any) -> FetchResult:
    """Write the DAG at ``path`` to the CAR file ``out`` (rooted at the resolved CID).

    The CAR is written under a temporary name and renamed only when the whole DAG
    arrived verified: a failed fetch leaves nothing at ``out``.
    """
    return _fetch_into(gateways, path, lambda target: open_car_sink(out, version, [target]), progress, options)


def _fetch_into(gateways: GatewayClient | Sequence[str], path: str | CID,
                open_sink: Callable[[CID], AbstractContextManager[BlockSink]], progress: Progress | None,
                options: dict[str, Any], on_resolved: Callable[[CID], None] | None = None) -> FetchResult:
    """One ``dag-scope=all`` CAR request, its DAG walked from the resolved target into a sink.

    The stream is checked complete before the sink closes, so a CAR sink renames its
    temporary file into place only for a whole, verified DAG.
    """
    client, own = _client(gateways, **options)
    try:
        root, segments = _text_path(path)
        with CarStreamSource(client, car_request(root, segments, dag_scope="all")) as source:
            target = _terminal(source, path)
            if on_resolved is not None:
                on_resolved(target)
            blocks = nbytes = 0
            with open_sink(target) as sink:
                for cid, data in iter_dag(source, target, verify=False):  # the source verified every block
                    sink.put(cid, data)
                    blocks += 1
                    nbytes += len(data)
                    if progress is not None:
                        progress(len(data))
                source.finished()
        return FetchResult(target, blocks, nbytes)
    finally:
        if own:
            client.close()


def _entity_range(offset: int, length: int | None) -> tuple[int, int | None] | None:
    if offset == 0 and length is None:
        return None
    return (offset, None if length is None else offset + max(length, 1) - 1)


def iter_file(gateways: GatewayClient | Sequence[str], path: str | CID, *, offset: int = 0,
              length: int | None = None, **options: Any) -> Iterator[bytes]:
    """The bytes ``[offset, offset+length)`` of the UnixFS file at ``path``, in order, as they verify.

    One ``dag-scope=entity`` request (with ``entity-bytes`` for a range): only the
    blocks covering the range travel. Bytes are yielded as soon as their block is
    verified; if the answer then breaks, the next gateway continues where it stopped.
    """
    if offset < 0 or (length is not None and length < 0):
        raise ValueError("offset and length must not be negative")
    client, own = _client(gateways, **options)
    try:
        root, segments = _text_path(path)
        if length == 0:
            return
        request = car_request(root, segments, dag_scope="entity", entity_bytes=_entity_range(offset, length))
        sent = False
        try:
            with CarStreamSource(client, request) as source:
                target = _terminal(source, path)
                for piece in UnixFSReader(source, target, verify=False).iter_range(offset, length):
                    sent = True
                    yield piece
                source.finished()
        except GatewayError as exc:
            # A range starting past the end is a 400 (spec: "SHOULD be 400"); `ipfs cat` prints nothing.
            if sent or offset == 0 or not _said_400(exc) or offset < _file_size(client, root, segments, path):
                raise
    finally:
        if own:
            client.close()


def _said_400(exc: GatewayError) -> bool:
    return exc.status == 400 or any(getattr(e, "status", None) == 400 for _, e in exc.errors)


def _file_size(client: GatewayClient, root: CID, segments: tuple[str, ...], path: str | CID) -> int:
    with CarStreamSource(client, car_request(root, segments, dag_scope="block")) as source:
        return UnixFSReader(source, _terminal(source, path), verify=False).size


def iter_scope(gateways: GatewayClient | Sequence[str], path: str | CID, *, dag_scope: DagScope = "all",
               entity_bytes: tuple[int, int | None] | None = None, **options: Any) -> Iterator[tuple[bytes, bytes]]:
    """``(cid, block)`` of exactly what a trustless gateway must send for this request, all verified.

    The shared server traversal decides the blocks (path blocks, then the scope);
    raises :class:`~pyipld.errors.IncompleteResponseError` when gateways left one out.
    """
    client, own = _client(gateways, **options)
    try:
        root, segments = _text_path(path)
        request = car_request(root, segments, dag_scope=dag_scope, entity_bytes=entity_bytes)
        with CarStreamSource(client, request) as source:
            yield from iter_scope_blocks(source, CarScope(root, tuple(s.encode('utf-8', 'surrogateescape') for s in segments), dag_scope, entity_bytes))
            source.finished()
    finally:
        if own:
            client.close()


class GatewayFile(io.RawIOBase):
    """A seekable, read-only, verified file over gateways (see :func:`open_file`).

    A read fetches only the blocks covering the bytes asked for (at least
    ``min_window`` bytes), with one ``entity-bytes`` CAR request; sequential reads
    double the window (up to ``max_window`` bytes, held in memory), so streaming
    costs few requests while a random read costs about its own size. If the
    gateways cannot answer that way (no CAR support, too much unrequested data), the
    file switches to ``?format=raw`` blocks along the path (internal nodes cached).
    """

    def __init__(self, client: GatewayClient, cid: CID, *, own_client: bool = False,
                 min_window: int = 0, max_window: int = 64 << 20) -> None:
        super().__init__()
        self._client = client
        self._own_client = own_client
        self._cid = cid
        self._raw = UnixFSFile(UnixFSReader(GatewayBlockSource(client=client), cid))
        self._use_car = True
        self._pos = 0
        self._ahead = b""
        self._ahead_pos = 0
        self._window = min_window
        self.min_window = min_window
        self.max_window = max_window

    @property
    def size(self) -> int:
        return self._raw.size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._checkClosed()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence {whence}")
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def _fetch(self, pos: int, count: int) -> bytes:
        request = car_request(self._cid, dag_scope="entity", entity_bytes=(pos, pos + count - 1))
        with CarStreamSource(self._client, request) as source:
            data = b"".join(UnixFSReader(source, self._cid, verify=False).iter_range(pos, count))
            source.finished()
        return data

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        self._checkClosed()
        out = memoryview(buffer).cast("B")
        pos = self._pos
        want = min(len(out), max(self.size - pos, 0))
        if want == 0:
            return 0
        if not self._use_car:
            self._raw.seek(pos)
            n = self._raw.readinto(out[:want])
            self._pos += n
            return n
        inside = self._ahead_pos <= pos < self._ahead_pos + len(self._ahead)
        if not inside:
            sequential = pos == self._ahead_pos + len(self._ahead) and self._ahead
            self._window = min(max(self._window * 2, want), self.max_window) if sequential else \
                max(want, self.min_window)
            count = min(max(want, self._window), self.size - pos)
            try:
                self._ahead, self._ahead_pos = self._fetch(pos, count), pos
            except (GatewayError, NotFoundError, IntegrityError):
                self._use_car = False  # e.g. gateways without CAR support: raw blocks from now on
                self._ahead = b""
                return self.readinto(buffer)
        start = pos - self._ahead_pos
        n = min(want, len(self._ahead) - start)
        out[:n] = self._ahead[start : start + n]
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
            if self._own_client:
                self._client.close()
        super().close()


def open_file(gateways: GatewayClient | Sequence[str], path: str | CID, *, buffering: int = io.DEFAULT_BUFFER_SIZE,
              **options: Any) -> io.BufferedReader | GatewayFile:
    """Open the UnixFS file at ``CID[/path]`` on ``gateways`` as a seekable binary file.

    Every byte returned was verified against the root CID. ``buffering=0`` returns the
    raw :class:`GatewayFile` (each ``read`` then maps to one ranged request).
    """
    client, own = _client(gateways, **options)
    try:
        target = resolve(client, path)
    except BaseException:
        if own:
            client.close()
        raise
    raw = GatewayFile(client, target, own_client=own)
    return raw if buffering == 0 else io.BufferedReader(raw, buffer_size=max(buffering, 1))
