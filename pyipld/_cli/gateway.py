"""``pyipld gateway``: serve a blockstore or CAR files as an IPFS trustless HTTP gateway.

    pyipld gateway --blockstore DIR [--listen 127.0.0.1:8080]
    pyipld gateway --car A.car [B.car …] [--listen HOST:PORT]

Answers ``GET``/``HEAD /ipfs/{cid}[/path]`` with ``?format=raw|car`` (docs/gateway.md).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Final, TypeVar

from ..blockstore import BlockSource, TrustedSource, stored_view
from ..car.blockstore import CarBlockstore
from ..cid import CID
from ..errors import ConfigError, NotFoundError
from ..filestore import open_blockstore
from .argv import parse_bool

# pyipld.http.server.DEFAULT_LISTEN, not imported: trio and httpx load only when the gateway runs
DEFAULT_LISTEN: Final = "127.0.0.1:8080"

__all__ = ["CarSet", "register"]

_Block = TypeVar("_Block", bytes, memoryview)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("gateway", help="serve blocks over HTTP as a trustless gateway (raw blocks and CARs)",
                       description="Serve a blockstore or CAR files as an IPFS trustless gateway: "
                                   "GET/HEAD /ipfs/{cid}[/path]?format=raw|car, dag-scope, entity-bytes.")
    p.add_argument("--blockstore", metavar="DIR", help="directory of blocks (as written by `pyipld add --blockstore`)")
    # `--car A.car B.car`: a boolean (go-ipfs-cmds options take one value) and the CARs as arguments
    p.add_argument("--car", action="store_true", help="serve the CAR files (v1 or v2) given as arguments")
    p.add_argument("cars", metavar="FILE.car", nargs="*", help="CAR files to serve; blocks are looked up in order")
    p.add_argument("--listen", metavar="HOST:PORT", default=DEFAULT_LISTEN,
                   help=f"address to listen on (default {DEFAULT_LISTEN}; port 0 picks one)")
    p.add_argument("--keep-alive", metavar="SECONDS", type=float, default=120.0,
                   help="keep idle connections open this long (default 120)")
    p.add_argument("--backlog", type=int, default=4096, help="listen backlog (default 4096)")
    p.add_argument("--access-log", action="store_true", help="log every request to stderr")
    p.add_argument("--max-connections", metavar="N", type=int, default=1024,
                   help="open connections at once (default 1024; 0: no cap); at the cap a newcomer replaces the "
                        "connection idle longest if it has been idle --idle-grace seconds, else it is refused")
    p.add_argument("--idle-grace", metavar="SECONDS", type=float, default=20.0,
                   help="idle time after which a connection may be replaced at --max-connections (default 20)")
    p.add_argument("--hash-on-read", nargs="?", const=True, default=True, type=parse_bool, metavar="BOOL",
                   help="hash every block before sending it (default true); --hash-on-read=false serves the "
                        "store's blocks as stored, like kubo's default Datastore.HashOnRead=false: clients of a "
                        "trustless gateway verify every block, and the server needs about half the CPU per byte")
    p.set_defaults(func=run)


class CarSet:
    """Several CAR files as one :class:`BlockSource` (the first that has a block answers)."""

    def __init__(self, stores: Sequence[BlockSource]) -> None:
        self.stores = list(stores)

    def get(self, cid: bytes) -> bytes:
        return self._first(cid, lambda store: store.get(cid))

    def get_view(self, cid: bytes) -> memoryview:
        """The block as a view (of its mapped CAR with ``PYIPLD_MMAP=1``: :meth:`CarBlockstore.get_view`)."""
        return self._first(cid, lambda store: memoryview(stored_view(store, cid)))

    def _first(self, cid: bytes, read: Callable[[BlockSource], _Block]) -> _Block:
        for store in self.stores:
            try:
                return read(store)
            except NotFoundError:
                continue
        raise NotFoundError(f"block not found: {CID.from_bytes(cid)}")

    def has(self, cid: bytes) -> bool:
        return any(store.has(cid) for store in self.stores)


def _valid_host(host: str) -> bool:
    """A name or address; an IPv6 address in whole brackets ("[::1:0" listened on a random port)."""
    if host.startswith("[") or host.endswith("]"):
        return len(host) > 2 and host.startswith("[") and host.endswith("]")
    return bool(host)


def _check_listen(listen: str) -> None:
    host, sep, port = listen.rpartition(":")
    if not sep or not _valid_host(host) or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"invalid --listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")


def run(args: argparse.Namespace) -> int:
    if args.cars and not args.car:
        raise ConfigError("CAR files need --car: pyipld gateway --car A.car [B.car …]")
    if bool(args.blockstore) == bool(args.car) or (args.car and not args.cars):
        raise ConfigError("give exactly one of --blockstore DIR or --car FILE…")
    if args.max_connections < 0:
        raise ConfigError(f"--max-connections must be 0 or more, got {args.max_connections}")
    if not args.idle_grace >= 0:
        raise ConfigError(f"--idle-grace must be 0 or more seconds, got {args.idle_grace}")
    if not 0 < args.keep_alive < math.inf:  # NaN or below 0: the first idle connection killed the server
        raise ConfigError(f"--keep-alive must be a number of seconds above 0, got {args.keep_alive}")
    _check_listen(args.listen)
    import trio

    from ..http.server import MAX_BACKLOG, ServerConfig, serve

    if not 0 <= args.backlog <= MAX_BACKLOG:  # 3000000000 was a traceback from listen()
        raise ConfigError(f"--backlog must be between 0 and {MAX_BACKLOG}, got {args.backlog}")

    with ExitStack() as stack:
        source: BlockSource
        if args.blockstore:
            source = open_blockstore(args.blockstore)
        else:
            # The gateway hash-checks every block it sends (unless told not to), so the stores need not.
            source = CarSet([stack.enter_context(CarBlockstore(path, verify=False)) for path in args.cars])
        if not args.hash_on_read:
            source = TrustedSource(source)
        config = ServerConfig(listen=args.listen, keep_alive_seconds=args.keep_alive, backlog=args.backlog,
                              access_log=args.access_log, max_connections=args.max_connections,
                              idle_grace=args.idle_grace)

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                urls = await nursery.start(serve, source, config)
                for url in urls:
                    print(f"gateway listening on {url}", flush=True)

        try:
            trio.run(main)
        except KeyboardInterrupt:
            print(file=sys.stderr)
        except (OSError, BaseExceptionGroup) as exc:
            os_error = _first_os_error(exc)
            if os_error is None:
                raise
            raise ConfigError(f"cannot listen on {args.listen}: {os_error.strerror or os_error}") from None
    return 0


def _first_os_error(exc: BaseException) -> OSError | None:
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _first_os_error(inner)
            if found is not None:
                return found
    return None
