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
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

from .._progress import Progress
from .._varint import encode_varint
from ..bitswap._export import write_tree
from ..bitswap.client import BitswapClient, FetchStats
from ..bitswap.driver import Host
from ..bitswap.peer import Identity
from ..bitswap.server import BitswapServer
from ..blockstore import BlockSource, DirectoryBlockstore
from ..cid import CID
from ..errors import ConfigError

__all__ = [
    "add_peer_arguments",
    "cmd_cat_from_peers",
    "cmd_get_from_peers",
    "cmd_serve",
    "register",
]


def add_peer_arguments(parser: argparse.ArgumentParser) -> None:
    """``--peer`` and the fetch options shared by ``get`` and ``cat``."""
    g = parser.add_argument_group("fetching from peers (bitswap)")
    g.add_argument("--peer", action="append", default=[], metavar="MULTIADDR",
                   help="peer to fetch from, /ip4/HOST/tcp/PORT/p2p/ID (repeatable)")
    g.add_argument("--identity", default=None, metavar="KEYFILE",
                   help="our libp2p key file (created if missing; default: a fresh key)")
    g.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                   help="give up when no block arrived for this long (default 60)")
    g.add_argument("--window", type=int, default=128, help="blocks in flight (default 128)")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def _host(args: argparse.Namespace) -> Host:
    keyfile = getattr(args, "identity", None)
    return Host(Identity.load_or_create(keyfile) if keyfile else None)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    timeout = float(getattr(args, "timeout", 60.0) or 60.0)
    return {"idle_timeout": timeout, "want_timeout": max(1.0, timeout / 3),
            "window": int(getattr(args, "window", 128) or 128)}


def _progress(args: argparse.Namespace, label: str) -> Progress | None:
    if getattr(args, "quiet", False):
        return None
    return Progress(label=label)


class _CarV1Sink:
    """Minimal CARv1 writer (header with the one root, then sections in arrival order).

    A stop-gap for ``--car`` until the ``car`` branch's writer is on main; it is
    used only when ``pyipld.car.v1.CarV1Writer`` is absent.
    """

    def __init__(self, path: Path, root: CID) -> None:
        import dag_cbor
        import multiformats

        self.path = path
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        self.tmp = Path(tmp)
        self.file = os.fdopen(fd, "wb")
        header = dag_cbor.encode({"roots": [multiformats.CID.decode(root.encode())], "version": 1})
        self.file.write(encode_varint(len(header)) + header)

    def put(self, cid: bytes, data: bytes) -> None:
        self.file.write(encode_varint(len(cid) + len(data)) + cid + data)

    def commit(self) -> None:
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


def _fetch_dag(args: argparse.Namespace, root: CID, sink: Any) -> FetchStats:
    progress = _progress(args, "fetch")
    done = [0]

    def on_block(blocks: int, nbytes: int) -> None:
        if progress is not None:
            progress.update(nbytes - done[0])
            done[0] = nbytes

    async def run() -> FetchStats:
        async with BitswapClient.connect(list(args.peer), host=_host(args), **_options(args)) as client:
            return await client.fetch_dag(root.bytes, sink, progress=on_block)

    try:
        return trio.run(run)
    finally:
        if progress is not None:
            progress.close()


def cmd_get_from_peers(args: argparse.Namespace) -> int:
    """``get CID --peer … (-o DEST | --car OUT.car)``: fetch the whole DAG, verify, write."""
    if not args.peer:
        raise ConfigError("--peer MULTIADDR is required to fetch from the network")
    root = CID.decode(args.cid)
    car = getattr(args, "car", None)
    if car:
        car_path = Path(car)
        try:
            # the car branch's writer; a stop-gap one until it lands on main
            from ..car.sink import open_car_sink  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            sink = _CarV1Sink(car_path, root)
            try:
                stats = _fetch_dag(args, root, sink)
            except BaseException:
                sink.abort()
                raise
            sink.commit()
        else:  # pragma: no cover - depends on the car branch being merged
            version = int(getattr(args, "car_version", 1) or 1)
            with open_car_sink(car_path, version, [root]) as writer:
                stats = _fetch_dag(args, root, writer)
        print(f"fetched {stats.blocks} blocks ({stats.bytes} bytes) into {car_path}", file=sys.stderr)
        return 0
    dest = Path(getattr(args, "output", None) or str(root))
    if dest.exists():
        raise ConfigError(f"{dest} already exists")
    scratch = Path(tempfile.mkdtemp(prefix=".pyipld-blocks-", dir=dest.parent if dest.parent.is_dir() else None))
    try:
        store = DirectoryBlockstore(scratch)
        stats = _fetch_dag(args, root, store)
        write_tree(store, root.bytes, dest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"fetched {stats.blocks} blocks ({stats.bytes} bytes) -> {dest}", file=sys.stderr)
    return 0


def cmd_cat_from_peers(args: argparse.Namespace) -> int:
    """``cat CID --peer …``: stream a UnixFS file to stdout in order while fetching."""
    if not args.peer:
        raise ConfigError("--peer MULTIADDR is required to fetch from the network")
    root = CID.decode(args.cid)
    out = sys.stdout.buffer
    progress = _progress(args, "cat")

    async def run() -> None:
        async with BitswapClient.connect(list(args.peer), host=_host(args), **_options(args)) as client:
            async for chunk in client.iter_file(root.bytes):
                out.write(chunk)
                if progress is not None:
                    progress.update(len(chunk))
        out.flush()

    try:
        trio.run(run)
    finally:
        if progress is not None:
            progress.close()
    return 0


def _open_source(args: argparse.Namespace) -> BlockSource:
    if args.blockstore:
        return DirectoryBlockstore(args.blockstore, create=False)
    try:
        from ..car.blockstore import CarBlockstore  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ConfigError("serve --car needs pyipld's CAR support (the car branch); use --blockstore") from None
    return CarBlockstore(args.car)  # type: ignore[no-any-return,unused-ignore]


def cmd_serve(args: argparse.Namespace) -> int:
    """``serve --blockstore DIR --listen MULTIADDR``: answer bitswap wants until interrupted."""
    source = _open_source(args)
    host = _host(args)
    server = BitswapServer(source, host)

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            addrs = await nursery.start(server.serve, args.listen)
            for addr in addrs:
                print(addr, flush=True)
            print(f"peer id {host.peer_id}; serving bitswap from {args.blockstore or args.car}", file=sys.stderr, flush=True)
            if args.lifetime:
                await trio.sleep(args.lifetime)
                nursery.cancel_scope.cancel()

    trio.run(run)
    print(f"served {server.blocks_sent} blocks ({server.bytes_sent} bytes) to {server.peers_served} peers",
          file=sys.stderr)
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
    p.add_argument("--lifetime", type=float, default=0, help=argparse.SUPPRESS)  # tests: stop after N s
    p.set_defaults(func=cmd_serve)
