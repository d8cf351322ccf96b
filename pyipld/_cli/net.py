"""Network verbs: ``pyipld serve`` (bitswap server), and the peer-fetching halves of
``get`` and ``cat`` (``--peer MULTIADDR``), which the ``get``/``cat`` commands call.

    pyipld serve --blockstore DIR --listen /ip4/127.0.0.1/tcp/4001 [--identity KEYFILE]
    pyipld get CID --peer /ip4/…/p2p/12D3KooW… [--peer …] -o DEST | --car OUT.car
    pyipld cat CID --peer /ip4/…/p2p/12D3KooW…

Wiring for ``get``/``cat``: call :func:`add_peer_arguments` on their parsers and
dispatch to :func:`cmd_get_from_peers` / :func:`cmd_cat_from_peers` when
``args.peer`` is set.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from .._progress import Progress
from ..blockstore import BlockSource, DirectoryBlockstore, MemoryBlockstore
from ..cid import CID
from ..errors import ConfigError
from ..filestore import open_blockstore
from ..unixfs.extract import DEFAULT_MAX_DEPTH, DEFAULT_MAX_ENTRIES, extract, get_destination
from ..unixfs.resolve import resolve_path, split_path
from ..unixfs.walk import load_node
from .timeout import seconds_or_duration

if TYPE_CHECKING:  # trio and the libp2p stack load only when a verb talks to a peer (start-up time)
    from ..bitswap.client import BitswapClient, Dialer, FetchStats
    from ..bitswap.server import BitswapServer
    from ..libp2p.driver import Host
    from ..libp2p.peer import Identity

__all__ = [
    "add_peer_arguments",
    "cat_from_peers",
    "cmd_cat_from_peers",
    "cmd_get_from_peers",
    "cmd_serve",
    "fetch_path",
    "get_from_peers",
    "register",
    "serve_server",
]


def add_peer_arguments(parser: argparse.ArgumentParser, *, quiet: bool = True) -> None:
    """``--peer`` and the fetch options shared by ``get`` and ``cat``.

    ``quiet=False`` when the parser already has its own ``-q/--quiet`` (``get``),
    which then also silences the progress display.
    """
    g = parser.add_argument_group("fetching from peers (bitswap)")
    g.add_argument("--peer", action="append", default=[], metavar="MULTIADDR",
                   help="peer to fetch from, /ip4/HOST/tcp/PORT/p2p/ID (repeatable)")
    g.add_argument("--identity", default=None, metavar="KEYFILE",
                   help="our libp2p key file (created if missing; default: a fresh key)")
    g.add_argument("--timeout", type=seconds_or_duration, default=60.0, metavar="DURATION",
                   help="give up when no block arrived for this long: a Go duration (30s, 2m) or seconds "
                        "(default 60s)")
    g.add_argument("--window", type=int, default=128, help="blocks in flight (default 128)")
    if quiet:
        g.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def _host(args: argparse.Namespace) -> Host:
    from ..libp2p.driver import Host
    from ..libp2p.peer import Identity

    keyfile = getattr(args, "identity", None)
    return Host(Identity.load_or_create(keyfile) if keyfile else None)


def _options(args: argparse.Namespace, dial: Dialer | None) -> dict[str, Any]:
    timeout = float(getattr(args, "timeout", 60.0) or 60.0)
    options: dict[str, Any] = {"idle_timeout": timeout, "want_timeout": max(1.0, timeout / 3),
                               "window": int(getattr(args, "window", 128) or 128)}
    if dial is not None:
        options["dial"] = dial
    return options


def _progress(args: argparse.Namespace, label: str) -> Progress | None:
    """A progress bar on stderr for a fetch, as kubo draws one: only on a terminal, never with -q
    or ``cat --progress=false``."""
    if getattr(args, "quiet", False) or getattr(args, "progress", True) is False or not sys.stderr.isatty():
        return None
    return Progress(label=label)


def _path_arg(args: argparse.Namespace) -> str:
    """``get``'s positional is ``path`` (CID[/PATH]); ``cat`` and older callers use ``cid``."""
    path = getattr(args, "path", None) or getattr(args, "cid", None)
    if isinstance(path, list):  # `cat` takes several paths; its run() hands them over one at a time
        if len(path) != 1:
            raise ConfigError("fetching from peers takes one path at a time")
        path = path[0]
    if not path:
        raise ConfigError("a CID is required")
    return str(path)


class _FetchingSource:
    """A BlockSource over ``store`` that fetches missing blocks from the peers, one at a time.

    Used from a worker thread (``trio.to_thread``) so the synchronous path resolver can
    walk basic and HAMT directories over the network, fetching only the blocks on the path.
    """

    def __init__(self, store: DirectoryBlockstore | MemoryBlockstore, client: BitswapClient) -> None:
        self.store = store
        self.client = client

    def has(self, cid: bytes) -> bool:
        return True  # anything can be asked for; a peer's DONT_HAVE becomes NotFoundError in get

    def get(self, cid: bytes) -> bytes:
        if self.store.has(cid):
            return self.store.get(cid)
        import trio

        data = trio.from_thread.run(self.client.get_block, cid)  # verified against cid
        self.store.put(cid, data)
        return data


async def fetch_path(
    args: argparse.Namespace, store: DirectoryBlockstore, *, dial: Dialer | None = None
) -> tuple[CID, FetchStats]:
    """Resolve ``CID[/PATH]`` through the peers, then fetch the whole DAG under it into ``store``.

    Only the blocks on the path are fetched for the resolution (through HAMT shards too);
    the target DAG is then fetched breadth first with a window of wants.
    """
    if not args.peer:
        raise ConfigError("--peer MULTIADDR is required to fetch from the network")
    path = _path_arg(args)
    root, components = split_path(path)
    import trio

    from ..bitswap.client import BitswapClient

    progress = _progress(args, "fetch")
    done = [0]

    def on_block(blocks: int, nbytes: int) -> None:
        if progress is not None:
            progress.update(nbytes - done[0])
            done[0] = nbytes

    try:
        async with BitswapClient.connect(list(args.peer), host=_host(args), **_options(args, dial)) as client:
            target = root
            if components:
                source = _FetchingSource(store, client)
                target = (await trio.to_thread.run_sync(resolve_path, source, path)).cid
            stats = await client.fetch_dag(target.bytes, store, progress=on_block)
    finally:
        if progress is not None:
            progress.close()
    return target, stats


def _scratch_store(args: argparse.Namespace, near: Path) -> tuple[DirectoryBlockstore, Path | None]:
    """``--blockstore DIR`` when given (the fetched blocks are kept), else a temporary store."""
    keep = getattr(args, "blockstore", None)
    if keep:
        return open_blockstore(keep, create=True), None
    parent = near.parent if near.parent.is_dir() else None
    scratch = Path(tempfile.mkdtemp(prefix=".pyipld-blocks-", dir=parent))
    return DirectoryBlockstore(scratch), scratch


async def get_from_peers(args: argparse.Namespace, *, dial: Dialer | None = None) -> int:
    """``get CID[/PATH] --peer … (-o DEST | --car OUT.car)`` (async; ``dial`` is for tests)."""
    from .get import default_output  # get imports this module

    if not args.peer:
        raise ConfigError("--peer MULTIADDR is required to fetch from the network")
    path = _path_arg(args)
    car = getattr(args, "car", None)
    dest = Path(car) if car else Path(getattr(args, "output", None) or default_output(path))
    if not car:
        streamed = await _get_file_streamed(args, path, dest, dial)
        if streamed is not None:
            if not getattr(args, "quiet", False):
                print(f"fetched {streamed[0]} blocks ({streamed[1]} bytes) -> {streamed[3]}: 1 files, 0 directories, "
                      f"0 symlinks, {streamed[2]} bytes", file=sys.stderr)
            return 0
    store, scratch = _scratch_store(args, dest)
    try:
        target, stats = await fetch_path(args, store, dial=dial)
        if car:
            from ..car.export import export_dag  # CAR modules load only when asked (start-up time)
            from ..car.sink import open_car_sink

            # blocks arrive breadth first; write them in `ipfs dag export` order (DFS, first seen)
            version = int(getattr(args, "car_version", 1) or 1)
            with open_car_sink(dest, version, [target]) as writer:
                export_dag(store, target, writer)
            summary = f"into {dest}"
        else:
            dest = Path(os.fsdecode(get_destination(dest, load_node(store, target).kind, default_output(path))))
            written = extract(store, target, dest, metadata=not getattr(args, "no_metadata", False),
                              max_entries=getattr(args, "max_entries", DEFAULT_MAX_ENTRIES),
                              max_depth=getattr(args, "max_depth", DEFAULT_MAX_DEPTH), replace=True)
            summary = (f"-> {dest}: {written.files} files, {written.directories} directories, "
                       f"{written.symlinks} symlinks, {written.file_bytes} bytes")
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if not getattr(args, "quiet", False):
        print(f"fetched {stats.blocks} blocks ({stats.bytes} bytes) {summary}", file=sys.stderr)
    return 0


async def _get_file_streamed(args: argparse.Namespace, path: str, dest: Path,
                             dial: Dialer | None) -> tuple[int, int, int, Path] | None:
    """``get`` of a single UnixFS file: stream it into ``dest`` while fetching, as ``cat`` does.

    No scratch blockstore: the blocks are verified as they arrive and the bytes written
    in order to a temporary name beside ``dest``, renamed at the end (with the stored mode
    and mtime, as :func:`~pyipld.unixfs.extract.extract` restores them); ``dest`` is placed
    and replaced as ``ipfs get`` does (:func:`~pyipld.unixfs.extract.get_destination`). Returns
    ``(blocks, block bytes, file bytes, path written)``, or None when the target is not a file
    (a directory or symlink: the caller fetches the DAG and extracts it) — then nothing was
    written. ``--blockstore DIR`` keeps the fetched blocks as before.
    """
    import secrets

    import trio

    from .._prealloc import SpaceReserver
    from ..bitswap.client import BitswapClient
    from ..unixfs.extract import check_tree_destination, rename_replacing, restore_metadata, write_fully
    from .get import default_output, saving  # get imports this module

    keep = open_blockstore(args.blockstore, create=True) if getattr(args, "blockstore", None) else None
    progress = _progress(args, "fetch")
    counts = [0, 0]

    def on_block(blocks: int, nbytes: int) -> None:
        if progress is not None:
            progress.update(nbytes - counts[1])
        counts[:] = [blocks, nbytes]

    tmp: Path | None = None
    written = 0
    try:
        async with BitswapClient.connect(list(args.peer), host=_host(args), **_options(args, dial)) as client:
            fetched = keep if keep is not None else MemoryBlockstore()
            node = (await trio.to_thread.run_sync(resolve_path, _FetchingSource(fetched, client), path)).node
            saving(args)
            if node.kind == "directory":
                check_tree_destination(dest)  # before the tree is fetched
            if node.kind != "file":
                return None
            dest = Path(os.fsdecode(get_destination(dest, "file", default_output(path))))
            tmp = dest.parent / (".pyipld-tmp-" + secrets.token_hex(8))
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o666)
            space = SpaceReserver(fd, min_end=8 << 20)
            try:
                async with contextlib.aclosing(cast("AsyncGenerator[bytes, None]", client.iter_file(
                        node.cid, sink=keep, progress=on_block, have=fetched))) as chunks:
                    async for chunk in chunks:
                        space.ensure(written + len(chunk))
                        write_fully(fd, chunk)
                        written += len(chunk)
                if not getattr(args, "no_metadata", False):
                    restore_metadata(fd, node)
            finally:
                space.release()
                os.close(fd)
        rename_replacing(os.fspath(tmp), os.fspath(dest), dir_fd=None, shown=str(dest))  # as `ipfs get`: a file there is replaced
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if progress is not None:
            progress.close()
    return counts[0], counts[1], written, dest


def cmd_get_from_peers(args: argparse.Namespace) -> int:
    """``get CID[/PATH] --peer … (-o DEST | --car OUT.car)``: fetch the DAG, verify, write.

    ``-o``: extracted with :func:`pyipld.unixfs.extract.extract` (files, basic and HAMT
    directories, symlinks; the same safety rules as the local ``get``). ``--car``: a
    CAR in ``ipfs dag export`` order, rooted at the resolved CID.
    """
    from .._malloc import tune_for_streaming

    tune_for_streaming()  # our process: keep the heap instead of re-faulting it per block
    import trio

    return int(trio.run(functools.partial(get_from_peers, args)))


async def cat_from_peers(args: argparse.Namespace, out: BinaryIO, *, dial: Dialer | None = None) -> int:
    """``cat CID --peer …`` (async; ``dial`` is for tests): the file's bytes to ``out`` in order."""
    if not args.peer:
        raise ConfigError("--peer MULTIADDR is required to fetch from the network")
    path = _path_arg(args)
    root, components = split_path(path)
    skip = int(getattr(args, "offset", 0) or 0)
    length = getattr(args, "length", None)
    left = -1 if length is None else int(length)
    import trio

    from ..bitswap.client import BitswapClient

    progress = _progress(args, "cat")
    try:
        async with BitswapClient.connect(list(args.peer), host=_host(args), **_options(args, dial)) as client:
            fetched = MemoryBlockstore()
            if components:  # like ipfs cat CID/dir/name: fetch only the directory blocks on the path
                source = _FetchingSource(fetched, client)
                root = (await trio.to_thread.run_sync(resolve_path, source, path)).cid
            await _copy_file(client, root, out, skip, left, progress, fetched)
        out.flush()
    finally:
        if progress is not None:
            progress.close()
    return 0


async def _copy_file(client: BitswapClient, root: CID, out: BinaryIO, skip: int, left: int,
                     progress: Progress | None, have: MemoryBlockstore | None = None) -> None:
    """Stream the file ``root`` from ``client`` to ``out``: ``skip`` bytes first, then at most
    ``left`` (``-1``: all)."""
    chunks_of = client.iter_file(root.bytes, have=have)  # blocks fetched for the path are not asked again
    async with contextlib.aclosing(cast("AsyncGenerator[bytes, None]", chunks_of)) as chunks:
        async for chunk in chunks:
            if progress is not None:
                progress.update(len(chunk))
            if skip:  # --offset: the skipped blocks are still fetched (verification needs them)
                cut = min(skip, len(chunk))
                chunk, skip = chunk[cut:], skip - cut
            if left >= 0:
                chunk = chunk[:left]
                left -= len(chunk)
            if chunk:
                out.write(chunk)
            if left == 0:
                break


def cmd_cat_from_peers(args: argparse.Namespace) -> int:
    """``cat CID --peer … [--offset N] [--length N]``: stream a UnixFS file to stdout while fetching."""
    from .._malloc import tune_for_streaming

    tune_for_streaming()  # our process: keep the heap instead of re-faulting it per block
    import trio

    return int(trio.run(functools.partial(cat_from_peers, args, sys.stdout.buffer)))


def _open_source(args: argparse.Namespace) -> BlockSource:
    if args.blockstore:
        return open_blockstore(args.blockstore)
    from ..car.blockstore import CarBlockstore

    return CarBlockstore(args.car)


# `serve` limits per peer (docs/threat-model.md): with these, one connection holds at most
# about 11 MiB whatever the peer does (32 x 256 KiB stream windows, 1 MiB of unfinished
# messages, one 256 KiB read in the Noise and yamux machines, 256 KiB + one read of queued output)
SERVE_MAX_CONNECTIONS = 128
SERVE_MAX_STREAMS = 32  # yamux streams a peer may have open with us (kubo/Helia use a handful)
SERVE_MAX_WINDOW = 1 << 20  # a server only receives wantlists: no 16 MiB windows
SERVE_MAX_SESSION_WINDOW = 4 << 20
SERVE_MAX_PARTIAL_BYTES = 1 << 20  # a full 4096-entry wantlist is < 1 MiB
SERVE_WRITE_TIMEOUT = 30.0


def serve_server(source: BlockSource, identity: Identity | None = None, *,
                 max_connections: int = SERVE_MAX_CONNECTIONS, idle_grace: float = 20.0) -> BitswapServer:
    """A BitswapServer with ``pyipld serve``'s limits per peer (docs/threat-model.md)."""
    from ..bitswap.server import BitswapServer
    from ..libp2p.driver import Host

    host = Host(identity, max_inbound_connections=max_connections, idle_grace=idle_grace,
                max_inbound_streams=SERVE_MAX_STREAMS, max_window=SERVE_MAX_WINDOW,
                max_session_window=SERVE_MAX_SESSION_WINDOW, write_timeout=SERVE_WRITE_TIMEOUT)
    return BitswapServer(source, host, max_partial_bytes=SERVE_MAX_PARTIAL_BYTES)


def _sole_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one real error inside trio's exception group (else the group itself)."""
    import trio

    leaves: list[BaseException] = []
    todo: list[BaseException] = [group]
    while todo:
        exc = todo.pop()
        if isinstance(exc, BaseExceptionGroup):
            todo.extend(exc.exceptions)
        elif not isinstance(exc, trio.Cancelled):
            leaves.append(exc)
    return leaves[0] if len(leaves) == 1 else group


def cmd_serve(args: argparse.Namespace) -> int:
    """``serve --blockstore DIR --listen MULTIADDR``: answer bitswap wants until interrupted."""
    from .._malloc import tune_for_streaming

    tune_for_streaming()  # our process: keep the heap instead of re-faulting it per block
    import trio

    from ..libp2p.multiaddr import Multiaddr
    from ..libp2p.peer import Identity

    listen = Multiaddr.parse(args.listen)  # a bad address is a one-line error before anything starts
    listen.tcp_address()
    if args.max_connections < 1:
        raise ConfigError(f"--max-connections must be at least 1, not {args.max_connections}")
    source = _open_source(args)
    keyfile = getattr(args, "identity", None)
    server = serve_server(source, Identity.load_or_create(keyfile) if keyfile else None,
                          max_connections=args.max_connections, idle_grace=args.idle_grace)
    host = server.host
    listening = False

    async def run() -> None:
        nonlocal listening
        async with trio.open_nursery() as nursery:
            addrs = await nursery.start(server.serve, listen)
            listening = True
            for addr in addrs:
                print(addr, flush=True)
            print(f"peer id {host.peer_id}; serving bitswap from {args.blockstore or args.car}", file=sys.stderr, flush=True)
            if args.lifetime:
                await trio.sleep(args.lifetime)
                nursery.cancel_scope.cancel()

    try:
        trio.run(run)
    except BaseExceptionGroup as group:
        exc = _sole_error(group)
        if isinstance(exc, OSError) and not listening:  # busy port, address not ours, unknown host
            raise ConfigError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
        if exc is group:
            raise
        raise exc from None
    summary = f"served {server.blocks_sent} blocks ({server.bytes_sent} bytes) to {server.peers_served} peers"
    if host.connections_refused or host.connections_evicted:
        summary += (f"; at --max-connections {host.connections_refused} connections were refused and "
                    f"{host.connections_evicted} idle ones replaced")
    print(summary, file=sys.stderr)
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="serve blocks to IPFS peers over bitswap",
                              description="Answer bitswap wants from a blockstore; prints our multiaddr.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--blockstore", metavar="DIR", help="directory blockstore to serve")
    src.add_argument("--car", metavar="FILE", help="CAR file to serve (v1 or v2)")
    p.add_argument("--listen", default="/ip4/127.0.0.1/tcp/4001", metavar="MULTIADDR",
                   help="TCP address to listen on (default /ip4/127.0.0.1/tcp/4001; port 0 picks one)")
    p.add_argument("--identity", default=None, metavar="KEYFILE",
                   help="libp2p key file (created if missing) for a stable peer id; default: a fresh key")
    p.add_argument("--max-connections", type=int, default=SERVE_MAX_CONNECTIONS, metavar="N",
                   help=f"inbound connections served at once (default {SERVE_MAX_CONNECTIONS}); when full, "
                        "a new peer replaces one idle for 20 s, else it is refused")
    p.add_argument("--lifetime", type=float, default=0, help=argparse.SUPPRESS)  # tests: stop after N s
    p.add_argument("--idle-grace", type=float, default=20.0, help=argparse.SUPPRESS)  # tests: eviction grace
    p.set_defaults(func=cmd_serve)
