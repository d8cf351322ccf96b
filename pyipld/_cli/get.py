"""``pyipld get``: write a file, directory tree or symlink back, safely (``ipfs get``).

From local blocks (``--blockstore DIR``), fetched over bitswap with ``--peer MULTIADDR``
(:mod:`pyipld._cli.net`), or over HTTP with ``--gateway URL`` / ``--routing URL``
(:mod:`pyipld._cli.httpfetch`); ``--car OUT.car`` writes the DAG as a CAR instead.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import ConfigError
from ..filestore import open_blockstore
from ..unixfs.extract import DEFAULT_MAX_DEPTH, DEFAULT_MAX_ENTRIES, extract, get_destination
from ..unixfs.resolve import resolve_path, split_path
from .argv import parse_bool
from .gopath import clean, ipfs_path
from .httpfetch import add_http_arguments, cmd_get_http, wants_http
from .net import add_peer_arguments, cmd_get_from_peers

__all__ = ["default_output", "register", "saving"]


def default_output(path: str) -> str:
    """kubo's default output name: the last path component, or the CID."""
    root, components = split_path(path)
    return components[-1].decode("utf-8", "surrogateescape") if components else str(root)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("get", help="write a file or directory tree from blocks to disk (safe extraction)",
                       description="Write files, directories and symlinks back like `ipfs get`, from local "
                                   "blocks or from peers (--peer). Entry names that could escape DEST are "
                                   "refused; symlinks are never followed; files appear only when complete.")
    p.add_argument("path", metavar="CID[/PATH]", help="what to write")
    p.add_argument("-o", "--output", metavar="DEST", help="path to create (default: the last path component)")
    p.add_argument("--blockstore", metavar="DIR", help="directory of blocks (as written by `pyipld add --blockstore`)")
    p.add_argument("--no-metadata", action="store_true", help="do not restore stored mode/mtime")
    p.add_argument("--max-entries", type=int, default=DEFAULT_MAX_ENTRIES, metavar="N",
                   help="refuse DAGs with more than N entries (guards against one sub-tree linked many times; "
                        f"default {DEFAULT_MAX_ENTRIES}, 0 = no limit)")
    p.add_argument("--max-depth", type=int, default=DEFAULT_MAX_DEPTH, metavar="N",
                   help=f"refuse directories nested deeper than N (default {DEFAULT_MAX_DEPTH})")
    p.add_argument("--car", metavar="OUT.car", default=None,
                   help="write the DAG as a CAR (`ipfs dag export` order) instead of files")
    p.add_argument("--car-version", type=int, choices=(1, 2), default=1, help="CAR version for --car (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success (and no progress)")
    p.add_argument("-p", "--progress", nargs="?", const=True, type=parse_bool, default=True, metavar="BOOL",
                   help="progress bar on stderr (a terminal) while fetching from peers or gateways; local reads "
                        "draw none (default true, as kubo's)")
    # kubo's TAR/gzip output options: parsed as kubo parses them, then refused with a reason
    p.add_argument("-a", "--archive", action="store_true", help="kubo's TAR output: refused (use --car)")
    p.add_argument("-C", "--compress", action="store_true", help="kubo's gzip output: refused (use --car)")
    p.add_argument("-l", "--compression-level", type=int, default=None, metavar="N",
                   help="kubo's gzip level: refused with --compress")
    add_peer_arguments(p, quiet=False)
    add_http_arguments(p)
    p.set_defaults(func=run)


def saving(args: argparse.Namespace) -> None:
    """kubo's ``getWriter.writeExtracted``: ``Saving file(s) to DEST`` on stdout, once the path
    has resolved (a bad path prints only the error) and before writing; once per command."""
    if args.quiet or getattr(args, "car", None) or getattr(args, "saving_printed", False):
        return
    args.saving_printed = True
    print(f"Saving file(s) to {args.output or default_output(args.path)}", flush=True)


def kubo_output(argument: str) -> str:
    """kubo 0.22's ``getOutPath`` without ``-o``: the argument's last element as typed (trailing
    ``/`` trimmed), cleaned — ``CID/a/b`` gives ``b``, ``/ipfs/CID`` gives ``CID``."""
    return clean(argument.rstrip("/").rpartition("/")[2])


def run(args: argparse.Namespace) -> int:
    if args.archive or args.compress or args.compression_level is not None:
        raise ConfigError("TAR/gzip output (-a/--archive, -C/--compress, -l/--compression-level) is not supported: "
                          "get writes the files, or a CAR with --car OUT.car")
    # as kubo: DEST named from the argument as typed, then the path read as boxo's ParsePath
    # (CID/a/../b is CID/b; /ipfs/CID is CID)
    args.output = args.output or kubo_output(args.path)
    args.path = ipfs_path(args.path)
    if args.peer:
        return cmd_get_from_peers(args)  # --blockstore, when given, keeps the fetched blocks
    if wants_http(args):
        return cmd_get_http(args)  # likewise
    if not args.blockstore:
        raise ConfigError("get needs --blockstore DIR (the blocks to read from), --peer MULTIADDR, "
                          "--gateway URL or --routing URL (or IPFS_GATEWAY)")
    store = open_blockstore(args.blockstore)
    if args.car:
        from ..car.export import export_dag  # here, not at the top: start-up time of every `get`
        from ..car.sink import open_car_sink

        target = resolve_path(store, args.path).cid
        with open_car_sink(args.car, args.car_version, [target]) as writer:
            exported = export_dag(store, target, writer)
        if not args.quiet:
            print(f"Saved {exported.blocks} blocks ({exported.block_bytes} bytes) to {args.car}", file=sys.stderr)
        return 0
    named = args.output or default_output(args.path)
    root = resolve_path(store, args.path)  # kubo resolves before printing anything: a bad path prints only the error
    dest = os.fsdecode(get_destination(named, root.node.kind, default_output(args.path)))
    saving(args)
    stats = extract(store, args.path, dest, metadata=not args.no_metadata, max_entries=args.max_entries,
                    max_depth=args.max_depth, replace=True)
    if not args.quiet:
        print(f"wrote {dest}: {stats.files} files, {stats.directories} directories, "
              f"{stats.symlinks} symlinks, {stats.file_bytes} bytes", file=sys.stderr)
    return 0
