"""Distributed import on Dask (optional extra ``dask``): Dask glue only.

The work is planned, split and assembled by :mod:`pyipld.unixfs.parallel` (tasks carry paths
and byte ranges, results are (CID, Tsize, size) triples or candidate-cut runs); directories
and HAMTs are then built by the tree importer itself from those file roots, so the root CID
and every ``added`` line equal a single-process ``ipfs add``. Workers read the files by path:
every worker must see the same files at the same paths (one machine, or a shared file system),
or the same object store.

* :func:`import_paths_dask` / :func:`import_file_dask` take a ``dask.distributed.Client``, or
  use the current one (``distributed.get_client()``).
* :func:`dask_client` opens one for an address: ``"local"`` starts an embedded
  ``LocalCluster`` (threads in this process; hashing releases the GIL), anything else is a
  scheduler address such as ``tcp://host:8786``.

fsspec URLs (``s3://bucket/prefix``) are read by the workers themselves, in ranged reads.

Only-hash: no blocks are kept (``--car``/``--blockstore`` with ``--dask`` are refused).
:func:`commp_file_dask` computes a file's piece CID with its aligned subtrees on the workers;
:func:`pack_dask` is ``car pack`` with the imports and the piece CARs (and their CommP) on the workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigError
from ..unixfs.importer import ImportResult
from ..unixfs.parallel import DEFAULT_TASK_BYTES, ParallelImporter, list_files
from ..unixfs.params import ImportParams, import_params
from ..unixfs.remote import import_urls, is_fsspec_url, list_objects
from ..unixfs.tree import AddedCallback, import_paths
from ..unixfs.tree.paths import check_paths_list

if TYPE_CHECKING:  # the CLI imports this module for add --dask: no CommP/CAR code at start-up
    from ..filecoin.commp import PieceInfo
    from ..filecoin.pack import PackResult
    from ..unixfs.cache import ImportCache

__all__ = ["commp_file_dask", "dask_client", "import_file_dask", "import_paths_dask", "pack_dask"]


def _require_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError("distributed import needs Dask: pip install 'pyipld[dask]'") from exc
    return distributed


class _Submitter:
    """``submit(fn, *args)`` on a Dask client with ``pure=False``: a re-run after files changed
    must never reuse a result the scheduler still holds for the same arguments."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def submit_many(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Any]:
        """One future per argument tuple, submitted in one ``Client.map`` (one graph update on
        the scheduler instead of one per task: measured ~25 % of Dask's per-task CPU)."""
        if not calls:
            return []
        return self.client.map(fn, *(list(column) for column in zip(*calls, strict=True)), pure=False)  # type: ignore[no-any-return]


def _current_client(client: Any | None) -> Any:
    if client is not None:
        return client
    distributed = _require_distributed()
    try:
        return distributed.get_client()
    except ValueError as exc:
        raise ConfigError("no Dask client: pass one or create one first (or use dask_client('local'))") from exc


def _check_address(address: str) -> None:
    """distributed's own parse of a scheduler address (ValueError: no port, unknown scheme)."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    scheme, location = parse_address(address)
    get_backend(scheme)  # ValueError: unknown address scheme
    if scheme in ("tcp", "tls"):
        parse_host_port(location)


@contextmanager
def dask_client(address: str = "local", *, workers: int | None = None, timeout: float = 10) -> Iterator[Any]:
    """A ``dask.distributed.Client`` for ``address`` (``local``: an embedded LocalCluster of
    ``workers`` threads, default one per core; in-process comms, its dashboard on an ephemeral
    loopback port: ``client.dashboard_link``, without the worker's sampling profiler unless
    ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED`` is set), closed on exit. ``timeout``: seconds to reach
    a remote scheduler."""
    distributed = _require_distributed()
    if address == "local":
        import dask

        n = workers or len(os.sched_getaffinity(0))
        # The worker's sampling profiler walks every thread's stack each 10 ms holding the GIL, which
        # the in-process hashing threads then wait for: 10 % of the wall time of a 1 GiB import.
        # Off unless asked for (DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=True); the rest of
        # the dashboard is unchanged.
        asked = "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED" in os.environ
        with dask.config.set({} if asked else {"distributed.worker.profile.enabled": False}):
            cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=n, processes=False,
                                               dashboard_address="127.0.0.1:0")
        with cluster, distributed.Client(cluster) as client:
            yield client
        return
    try:
        _check_address(address)  # before a Client starts its event loop for nothing
        client = distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    except ValueError as exc:  # distributed's address parser: no port, unknown scheme, empty
        raise ConfigError(f"bad Dask scheduler address {address!r} (local, or e.g. tcp://host:8786): {exc}") from exc
    try:
        yield client
    finally:
        client.close()


def import_paths_dask(
    paths: Sequence[str | os.PathLike[str] | bytes],
    params: ImportParams | None = None,
    client: Any | None = None,
    *,
    recursive: bool = True,
    wrap: bool = False,
    on_added: AddedCallback | None = None,
    progress: Callable[[int], None] | None = None,
    task_bytes: int = DEFAULT_TASK_BYTES,
    cache: ImportCache | None = None,
    exclude: Callable[[bytes], bool] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    report: Literal["all", "top"] = "all",
) -> ImportResult:
    """:func:`~pyipld.unixfs.tree.import_paths` with the files hashed on a Dask cluster.

    Same result and ``on_added`` events as the single-process import (only-hash); ``exclude``
    as there (kubo's ``--ignore`` rules).
    ``task_bytes``: about how many file bytes one task reads (large files are split).

    ``paths`` may instead be fsspec URLs (``s3://bucket/prefix``; one protocol, with
    ``storage_options``): :func:`~pyipld.unixfs.remote.import_urls` with each object read by the
    workers in ranged reads — tasks carry the URL, its size and version and byte ranges — so no
    object passes through this process. The workers need the protocol's package and credentials.
    """
    params = import_params(params)
    params.resolve()
    check_paths_list(paths)
    if any(is_fsspec_url(p) for p in paths):
        urls = [p for p in paths if isinstance(p, str)]
        if len(urls) != len(paths) or not all(is_fsspec_url(p) for p in urls):
            raise ConfigError("fsspec URLs cannot be mixed with local paths in one import")
        source, objects = list_objects(urls, params, exclude, storage_options)
        runner = ParallelImporter(_Submitter(_current_client(client)), params, task_bytes=task_bytes, cache=cache,
                                  progress=progress, source=source)
        runner.run(objects)
        return import_urls(urls, params, storage_options=storage_options, recursive=recursive, wrap=wrap,
                           on_added=on_added, jobs=1, exclude=exclude, file_roots=runner.file_roots, report=report)
    raw = [os.fsencode(p) for p in paths]
    runner = ParallelImporter(_Submitter(_current_client(client)), params, task_bytes=task_bytes, cache=cache,
                              progress=progress)
    runner.run(list_files(raw, params, exclude))
    return import_paths(raw, params, recursive=recursive, wrap=wrap, on_added=on_added, jobs=1,
                        file_roots=runner.file_roots, exclude=exclude, report=report)


def import_file_dask(path: str | os.PathLike[str] | bytes, params: ImportParams | None = None,
                     client: Any | None = None, *, task_bytes: int = DEFAULT_TASK_BYTES) -> ImportResult:
    """One regular file imported on a Dask cluster (split into tasks when large)."""
    params = import_params(params)
    raw = os.fsencode(path)
    st = os.stat(raw)
    runner = ParallelImporter(_Submitter(_current_client(client)), params, task_bytes=task_bytes)
    got = runner.run([(raw, st)]).get(raw)
    if got is None:  # a worker could not read it: the local importer reports why
        from ..unixfs.importer import import_file

        return import_file(os.fsdecode(raw), params)
    from ..cid import CID

    return ImportResult(CID.from_bytes(got[1].cid), got[1].data_size, got[1].tsize)


def commp_file_dask(path: str | os.PathLike[str] | bytes, client: Any | None = None, *,
                    piece_size: int | None = None, task_bytes: int = DEFAULT_TASK_BYTES) -> PieceInfo:
    """The Filecoin piece commitment of a file, its aligned chunk subtrees hashed on a Dask
    cluster (:func:`pyipld.filecoin.commp.chunk_roots`) and combined here; equal to
    :func:`pyipld.filecoin.commp.commp_file`. Tasks carry the path and a byte range; each returns
    32 bytes per 1 MiB-ish chunk (``CHUNK_BYTES``); the tail is hashed by the coordinator."""
    from ..filecoin.commp import CHUNK_BYTES, CommP, chunk_roots

    dask = _current_client(client)
    raw = os.fsencode(path)
    size = os.stat(raw).st_size
    whole = size - size % CHUNK_BYTES
    step = CHUNK_BYTES * max(1, task_bytes // CHUNK_BYTES)
    futures = [dask.submit(chunk_roots, raw, a, min(a + step, whole), pure=False) for a in range(0, whole, step)]
    with CommP(jobs=1) as c:
        futures.reverse()
        while futures:
            c.push_chunk_roots(futures.pop().result())
        with open(raw, "rb") as f:
            f.seek(whole)
            c.update(f.read())
        return c.digest(piece_size)


def pack_dask(
    paths: Sequence[str | os.PathLike[str]],
    outdir: str | os.PathLike[str],
    client: Any | None = None,
    *,
    target_size: int,
    params: ImportParams | None = None,
    task_bytes: int | None = None,
    max_spool_bytes: int | None = None,
    split_bytes: int | None = None,
    on_car: Callable[[dict[str, Any]], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> PackResult:
    """``car pack`` on a Dask cluster (:func:`pyipld.filecoin.pack_parallel.pack_parallel`):
    files are imported and each piece CAR written, with its piece CID, by the workers; the
    manifest and every CAR equal :func:`pyipld.filecoin.pack.pack`'s, and an interrupted run of
    either resumes. ``client``: a ``dask.distributed.Client``, or the current one. Workers must
    see the inputs and ``outdir`` at the same paths."""
    from ..filecoin.pack_parallel import DEFAULT_TASK_BYTES, pack_parallel

    return pack_parallel(paths, outdir, _Submitter(_current_client(client)), target_size=target_size,
                         params=params, task_bytes=task_bytes or DEFAULT_TASK_BYTES,
                         max_spool_bytes=max_spool_bytes, split_bytes=split_bytes, on_car=on_car,
                         progress=progress)
