"""``pyipld cat``: stream UnixFS files to stdout (like ``ipfs cat``), from a local
blockstore, fetched over bitswap with ``--peer MULTIADDR`` (:mod:`pyipld._cli.net`), or over
HTTP with ``--gateway URL`` / ``--routing URL`` (:mod:`pyipld._cli.httpfetch`).

As kubo 0.22 (``core/commands/cat.go``): several paths are concatenated, ``--offset`` and
``--length`` apply to the concatenation, a symlink's target is printed, a directory is
``this dag node is a directory``; the paths needed are resolved before anything is written
(once ``--offset`` + ``--length`` bytes are covered, later paths are not looked at).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from ..cid import CID
from ..errors import ConfigError, UnixFSError
from ..filestore import open_blockstore
from ..unixfs.reader import UnixFSReader
from ..unixfs.resolve import resolve_path, split_path
from .argv import parse_bool, stdin_arguments
from .gopath import ipfs_path
from .httpfetch import add_http_arguments, cmd_cat_http, wants_http
from .net import add_peer_arguments, cmd_cat_from_peers

__all__ = ["iter_local", "iter_local_many", "plan_ranges", "register", "write_stream"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("cat", help="write a file's bytes to stdout, verifying every block",
                       description="Show the bytes of a UnixFS file, like `ipfs cat`, from local blocks "
                                   "or from peers (--peer).")
    p.add_argument("cid", nargs="*", metavar="CID[/PATH]",
                   help="the files: CIDs or IPFS paths (CID/dir/name, /ipfs/…), concatenated; "
                        "none: one per line from stdin")
    p.add_argument("--blockstore", metavar="DIR", help="directory of blocks (as written by `pyipld add --blockstore`)")
    p.add_argument("-o", "--offset", type=int, default=0, help="byte offset to begin reading from")
    p.add_argument("-l", "--length", type=int, default=None, help="maximum number of bytes to read")
    p.add_argument("-p", "--progress", nargs="?", const=True, type=parse_bool, default=True, metavar="BOOL",
                   help="progress bar on stderr (a terminal) while fetching from peers or gateways; local reads "
                        "draw none (default true, as kubo's)")
    add_peer_arguments(p)
    add_http_arguments(p)
    p.set_defaults(func=run)


def iter_local(cid: str, blockstore: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
    """The requested bytes of ``cid`` (a CID or an IPFS path, as ``ipfs cat`` takes) from
    the directory blockstore ``blockstore``."""
    root, components = split_path(cid)  # parse before touching the store: a bad CID is the user's error
    store = open_blockstore(blockstore)
    target = resolve_path(store, cid).cid if components else root
    return UnixFSReader(store, target).iter_range(offset, length)


def plan_ranges(sizes: Sequence[int], offset: int, length: int | None) -> list[tuple[int, int, int | None]]:
    """kubo's ``cat``: (index, start, count or None for the rest) of each file to read.

    The offset skips whole files while it exceeds their size (a file exactly as long as the
    offset is kept, with nothing left to read); the length counts across files.
    """
    if length == 0:
        return []
    plan: list[tuple[int, int, int | None]] = []
    total = 0
    for i, size in enumerate(sizes):
        if offset > size:
            offset -= size
            continue
        start, offset = offset, 0
        part = size - start
        total += part
        if length is not None and total >= length:
            plan.append((i, start, part - (total - length)))
            break
        plan.append((i, start, None))
    return plan


def iter_local_many(paths: Sequence[str], blockstore: str, offset: int = 0,
                    length: int | None = None) -> Iterator[bytes]:
    """``ipfs cat P1 P2 …`` from a directory blockstore: the paths needed resolved in order (and
    refused if a directory) before the first byte is returned.

    As kubo 0.22 (core/commands/cat.go L124-180), resolving stops once the files so far cover
    ``offset + length``: later paths are never looked at, so they may be absent or invalid.
    """
    if length == 0:
        return iter(())
    if paths:  # (none: empty stdin, nothing to print, as kubo)
        split_path(ipfs_path(paths[0]))  # a bad CID is the user's error, before the store is opened
    store = open_blockstore(blockstore)
    targets: list[tuple[bytes | None, UnixFSReader | None]] = []
    sizes: list[int] = []
    wanted = None if length is None else offset + length  # bytes the paths resolved so far do not yet cover
    for path in paths:
        if wanted is not None and wanted <= 0:
            break
        node = resolve_path(store, ipfs_path(path)).node
        if node.kind == "directory":
            raise UnixFSError("this dag node is a directory")
        if node.kind == "symlink":  # boxo's files.Symlink reads as its target
            target = node.data.data if node.data is not None and node.data.data else b""
            targets.append((target, None))
            sizes.append(len(target))
        else:
            reader = UnixFSReader(store, CID.from_bytes(node.cid))
            targets.append((None, reader))
            sizes.append(reader.size)
        if wanted is not None:
            wanted -= sizes[-1]
    return _pieces(targets, plan_ranges(sizes, offset, length))


def _pieces(targets: list[tuple[bytes | None, UnixFSReader | None]],
            plan: list[tuple[int, int, int | None]]) -> Iterator[bytes]:
    for index, start, count in plan:
        literal, reader = targets[index]
        if reader is None:
            assert literal is not None
            yield literal[start:None if count is None else start + count]
        else:
            yield from reader.iter_range(start, count)


def write_stream(pieces: Iterator[bytes], out: BinaryIO) -> int:
    """Copy ``pieces`` to ``out`` as they come; returns the byte count."""
    total = 0
    for piece in pieces:
        out.write(piece)
        total += len(piece)
    out.flush()
    return total


def run(args: argparse.Namespace) -> int:
    if args.offset < 0:
        raise ConfigError("cannot specify negative offset")
    if args.length is not None and args.length < 0:
        raise ConfigError("cannot specify negative length")
    http = not args.peer and wants_http(args)
    if not args.peer and not args.blockstore and not http:
        raise ConfigError("cat needs --blockstore DIR (the blocks to read from), --peer MULTIADDR, "
                          "--gateway URL or --routing URL (or IPFS_GATEWAY)")
    paths: list[str] = list(args.cid) or stdin_arguments("ipfs-path")
    try:
        if args.peer or http:
            if len(paths) > 1 and (args.offset or args.length is not None):
                raise ConfigError("--offset/--length over several paths needs local blocks (--blockstore)")
            fetch = cmd_cat_from_peers if args.peer else cmd_cat_http
            for path in paths:
                code = fetch(argparse.Namespace(**{**vars(args), "cid": path}))
                if code:
                    return code
            return 0
        write_stream(iter_local_many(paths, args.blockstore, args.offset, args.length), sys.stdout.buffer)
    except BrokenPipeError:  # `pyipld cat … | head`: the reader left; stop quietly like cat(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not complain
        return 141  # 128 + SIGPIPE, what a shell reports for cat(1)
    return 0
