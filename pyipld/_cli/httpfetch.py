"""The HTTP halves of ``get`` and ``cat``: trustless gateways (``--gateway URL``,
``IPFS_GATEWAY``) and delegated routing (``--routing URL``).

    pyipld get CID[/PATH] --gateway http://127.0.0.1:8080 [-o DEST | --car OUT.car]
    pyipld cat CID[/PATH] --gateway URL [--offset N] [--length N]
    pyipld get CID --routing http://127.0.0.1:8190      # providers: gateways, then bitswap peers

Wiring: ``get``/``cat`` call :func:`add_http_arguments` and, when :func:`wants_http`
says so, :func:`cmd_get_http` / :func:`cmd_cat_http`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..errors import NotFoundError, PyipldError
from ..unixfs.extract import DEFAULT_MAX_DEPTH, DEFAULT_MAX_ENTRIES, extract, get_destination
from ..unixfs.resolve import split_path
from ..unixfs.walk import load_node
from .net import _path_arg, _progress

if TYPE_CHECKING:  # httpx loads only when a verb fetches over HTTP (start-up time of every verb)
    from ..http.client import GatewayClient

__all__ = ["add_http_arguments", "cmd_cat_http", "cmd_get_http", "gateways_for", "wants_http"]


def add_http_arguments(parser: argparse.ArgumentParser) -> None:
    """``--gateway``, ``--routing`` and ``--race`` (``--timeout`` and ``-q`` come from the peer options)."""
    g = parser.add_argument_group("fetching over HTTP (trustless gateways, delegated routing)")
    g.add_argument("--gateway", action="append", default=[], metavar="URL",
                   help="trustless gateway to fetch from, verified block by block (repeatable; tried in order). "
                        "Default: $IPFS_GATEWAY or the IPIP-280 gateway file, when no other source is given")
    g.add_argument("--routing", action="append", default=[], metavar="URL",
                   help="delegated routing server (/routing/v1) to ask who has the CID (repeatable)")
    g.add_argument("--race", action="store_true", help="ask all gateways at once for each block")


def wants_http(args: argparse.Namespace) -> bool:
    """HTTP when asked for, or when nothing local or peer-to-peer was named and the environment names a gateway."""
    if getattr(args, "gateway", None) or getattr(args, "routing", None):
        return True
    if getattr(args, "peer", None) or getattr(args, "blockstore", None):
        return False
    from ..http._request import gateways_from_environment

    return bool(gateways_from_environment())


def gateways_for(args: argparse.Namespace) -> list[str]:
    """``--gateway`` URLs, else the environment's (IPIP-280); never a public default."""
    from ..http._request import gateways_from_environment

    return list(args.gateway) if args.gateway else gateways_from_environment()


def _client(args: argparse.Namespace, gateways: list[str]) -> GatewayClient:
    from ..http.client import GatewayClient

    return GatewayClient(gateways, timeout=float(getattr(args, "timeout", 60.0) or 60.0),
                         race=bool(getattr(args, "race", False)))


def _sources(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(gateways, bitswap peers): the configured gateways, plus what the routers say for the root CID."""
    gateways = gateways_for(args)
    peers: list[str] = []
    if args.routing:
        from ..http.routing import RoutingClient

        root, _ = split_path(_path_arg(args))
        with RoutingClient(args.routing, timeout=float(getattr(args, "timeout", 60.0) or 60.0)) as router:
            plan = router.plan(root)
        gateways += [g for g in plan.gateways if g not in gateways]
        peers = plan.peers
        if not getattr(args, "quiet", False):
            print(f"routing: {len(plan.gateways)} HTTP provider(s), {len(plan.peers)} bitswap address(es)",
                  file=sys.stderr)
    if not gateways and not peers:
        what = "the routers know no provider" if args.routing else "no gateway configured"
        raise NotFoundError(f"{what} for {_path_arg(args)} (use --gateway URL, --routing URL or IPFS_GATEWAY)")
    return gateways, peers


def _with_fallback(args: argparse.Namespace, over_http: Callable[[list[str]], int],
                   over_bitswap: Callable[[], int], can_retry: Callable[[], bool] = lambda: True) -> int:
    gateways, peers = _sources(args)
    if gateways:
        try:
            return over_http(gateways)
        except PyipldError:
            if not peers or not can_retry():
                raise
            if not getattr(args, "quiet", False):
                print("HTTP providers failed; trying bitswap providers", file=sys.stderr)
    args.peer = peers
    return over_bitswap()


def cmd_get_http(args: argparse.Namespace) -> int:
    """``get CID[/PATH] --gateway … | --routing …``: fetch, verify, then write ``-o DEST`` or ``--car``.

    Nothing appears under the output name unless the whole DAG arrived verified: a CAR
    is renamed into place at the end; files are extracted from a complete scratch store.
    """
    from ..http.fetch import fetch_car, fetch_dag
    from .get import default_output, saving
    from .net import _scratch_store, cmd_get_from_peers

    path = _path_arg(args)
    car = getattr(args, "car", None)
    named = Path(car) if car else Path(getattr(args, "output", None) or default_output(path))

    def over_http(gateways: list[str]) -> int:
        progress = _progress(args, "fetch")
        update = progress.update if progress is not None else None
        try:
            with _client(args, gateways) as client:
                if car:
                    result = fetch_car(client, path, named, version=int(getattr(args, "car_version", 1) or 1),
                                       progress=update)
                    summary = f"into {named}"
                else:
                    store, scratch = _scratch_store(args, named)
                    try:
                        result = fetch_dag(client, path, store, progress=update, on_resolved=lambda _: saving(args))
                        dest = os.fsdecode(get_destination(named, load_node(store, result.cid).kind,
                                                           default_output(path)))
                        written = extract(store, result.cid, dest, metadata=not getattr(args, "no_metadata", False),
                                          max_entries=getattr(args, "max_entries", DEFAULT_MAX_ENTRIES),
                                          max_depth=getattr(args, "max_depth", DEFAULT_MAX_DEPTH), replace=True)
                    finally:
                        if scratch is not None:
                            shutil.rmtree(scratch, ignore_errors=True)
                    summary = (f"-> {dest}: {written.files} files, {written.directories} directories, "
                               f"{written.symlinks} symlinks, {written.file_bytes} bytes")
                received = client.stats.bytes_received
        finally:
            if progress is not None:
                progress.close()
        if not getattr(args, "quiet", False):
            print(f"fetched {result.blocks} blocks ({result.bytes} bytes, {received} bytes received) {summary}",
                  file=sys.stderr)
        return 0

    return _with_fallback(args, over_http, lambda: cmd_get_from_peers(args))


def cat_http(args: argparse.Namespace, out: BinaryIO) -> int:
    """``cat CID[/PATH] --gateway …``: the file's bytes (or ``--offset``/``--length`` of them) to ``out``."""
    from ..http.fetch import iter_file
    from .net import cmd_cat_from_peers

    path = _path_arg(args)
    offset = int(getattr(args, "offset", 0) or 0)
    length = getattr(args, "length", None)

    written = [0]

    def over_http(gateways: list[str]) -> int:
        progress = _progress(args, "cat")
        try:
            with _client(args, gateways) as client:
                for piece in iter_file(client, path, offset=offset, length=length):
                    out.write(piece)
                    written[0] += len(piece)
                    if progress is not None:
                        progress.update(len(piece))
            out.flush()
        finally:
            if progress is not None:
                progress.close()
        return 0

    # bitswap only if no byte went out yet: stdout cannot be taken back
    return _with_fallback(args, over_http, lambda: cmd_cat_from_peers(args), lambda: written[0] == 0)


def cmd_cat_http(args: argparse.Namespace) -> int:
    return cat_http(args, sys.stdout.buffer)

