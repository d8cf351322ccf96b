"""``pyipld cat``: stream a UnixFS file to stdout (like ``ipfs cat``), from a local
blockstore, fetched over bitswap with ``--peer MULTIADDR`` (:mod:`pyipld._cli.net`), or
over HTTP with ``--gateway URL`` / ``--routing URL`` (:mod:`pyipld._cli.httpfetch`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from typing import BinaryIO

from ..blockstore import DirectoryBlockstore
from ..errors import ConfigError
from ..unixfs.reader import UnixFSReader
from ..unixfs.resolve import resolve_path, split_path
from .httpfetch import add_http_arguments, cmd_cat_http, wants_http
from .net import add_peer_arguments, cmd_cat_from_peers

__all__ = ["iter_local", "register", "write_stream"]


def _non_negative(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("cat", help="write a file's bytes to stdout, verifying every block",
                       description="Show the bytes of a UnixFS file, like `ipfs cat`, from local blocks "
                                   "or from peers (--peer).")
    p.add_argument("cid", metavar="CID[/PATH]", help="the file: its CID, or an IPFS path (CID/dir/name, /ipfs/…)")
    p.add_argument("--blockstore", metavar="DIR", help="directory of blocks (as written by `pyipld add --blockstore`)")
    p.add_argument("-o", "--offset", type=_non_negative, default=0, help="byte offset to begin reading from")
    p.add_argument("-l", "--length", type=_non_negative, default=None, help="maximum number of bytes to read")
    add_peer_arguments(p)
    add_http_arguments(p)
    p.set_defaults(func=run)


def iter_local(cid: str, blockstore: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
    """The requested bytes of ``cid`` (a CID or an IPFS path, as ``ipfs cat`` takes) from
    the directory blockstore ``blockstore``."""
    root, components = split_path(cid)  # parse before touching the store: a bad CID is the user's error
    store = DirectoryBlockstore(blockstore, create=False)
    target = resolve_path(store, cid).cid if components else root
    return UnixFSReader(store, target).iter_range(offset, length)


def write_stream(pieces: Iterator[bytes], out: BinaryIO) -> int:
    """Copy ``pieces`` to ``out`` as they come; returns the byte count."""
    total = 0
    for piece in pieces:
        out.write(piece)
        total += len(piece)
    out.flush()
    return total


def run(args: argparse.Namespace) -> int:
    http = not args.peer and wants_http(args)
    if not args.peer and not args.blockstore and not http:
        raise ConfigError("cat needs --blockstore DIR (the blocks to read from), --peer MULTIADDR, "
                          "--gateway URL or --routing URL (or IPFS_GATEWAY)")
    try:
        if args.peer:
            return cmd_cat_from_peers(args)
        if http:
            return cmd_cat_http(args)
        write_stream(iter_local(args.cid, args.blockstore, args.offset, args.length), sys.stdout.buffer)
    except BrokenPipeError:  # `pyipld cat … | head`: the reader left; stop quietly like cat(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not complain
        return 141  # 128 + SIGPIPE, what a shell reports for cat(1)
    return 0
