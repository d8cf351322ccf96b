"""``pyipld add``: kubo's ``ipfs add`` for files and stdin, same flags, same output."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .._progress import Progress
from ..blockstore import BlockSink, DirectoryBlockstore, NullSink
from ..errors import ConfigError
from ..unixfs.importer import ImportResult, import_file
from ..unixfs.params import PROFILES, ImportParams

__all__ = ["add_import_arguments", "params_from_args", "parse_bool", "register"]


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_mode(text: str) -> int:
    """kubo parses --mode with C-style base prefixes (``0764`` is octal)."""
    try:
        if len(text) > 1 and text[0] == "0" and text[1] not in "xXbBoO":
            return int(text, 8)
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid mode {text!r}") from None


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """The file-import flags shared by every command that imports (add, car create, pack)."""
    g = parser.add_argument_group("import parameters (kubo's ipfs add flags)")
    g.add_argument("--profile", choices=sorted(PROFILES), help="IPIP-499 parameter set; explicit flags override it")
    g.add_argument("--cid-version", type=int, default=None, help="CID version (default 0; 1 implies raw leaves)")
    g.add_argument("--raw-leaves", nargs="?", const=True, default=None, type=parse_bool, metavar="BOOL",
                   help="use raw blocks for leaves (--raw-leaves or --raw-leaves=false)")
    g.add_argument("-s", "--chunker", default=None, help="size-N, rabin[-MIN-AVG-MAX], buzhash (default size-262144)")
    g.add_argument("-t", "--trickle", action="store_true", help="trickle DAG layout instead of balanced")
    g.add_argument("--max-file-links", type=int, default=None, help="children per file node (default 174)")
    g.add_argument("--hash", default=None, help="multihash function (default sha2-256)")
    g.add_argument("--inline", action="store_true", help="inline small blocks into identity CIDs")
    g.add_argument("--inline-limit", type=int, default=None, help="max block size to inline (default 32, max 128)")
    g.add_argument("--mode", type=parse_mode, default=None, help="custom POSIX mode for every entry (e.g. 0644)")
    g.add_argument("--mtime", type=int, default=None, help="custom mtime (Unix seconds) for every entry")
    g.add_argument("--mtime-nsecs", type=int, default=None, help="nanoseconds part of --mtime")
    g.add_argument("--preserve-mode", action="store_true", help="store each file's mode")
    g.add_argument("--preserve-mtime", action="store_true", help="store each file's mtime")


def params_from_args(args: argparse.Namespace) -> ImportParams:
    """Build :class:`ImportParams` from parsed flags: profile first, explicit flags on top."""
    overrides: dict[str, Any] = {}
    if args.cid_version is not None:
        overrides["cid_version"] = args.cid_version
    if args.raw_leaves is not None:
        overrides["raw_leaves"] = args.raw_leaves
    if args.chunker is not None:
        overrides["chunker"] = args.chunker
    if args.trickle:
        overrides["layout"] = "trickle"
    if args.max_file_links is not None:
        overrides["max_links"] = args.max_file_links
    if args.hash is not None:
        overrides["hash"] = args.hash
    if args.inline:
        overrides["inline"] = True
    if args.inline_limit is not None:
        overrides["inline_limit"] = args.inline_limit
    if args.mode is not None:
        overrides["mode"] = args.mode
    if args.mtime is not None:
        overrides["mtime"] = (args.mtime, args.mtime_nsecs or 0)
    elif args.mtime_nsecs is not None:
        raise ConfigError("--mtime-nsecs needs --mtime")
    if args.preserve_mode:
        overrides["preserve_mode"] = True
    if args.preserve_mtime:
        overrides["preserve_mtime"] = True
    if args.profile:
        return ImportParams.from_profile(args.profile, **overrides)
    return ImportParams(**overrides)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("add", help="compute the CID of files (and optionally keep the blocks)",
                       description="Add files like `ipfs add`, without a daemon.")
    p.add_argument("paths", nargs="*", default=["-"], metavar="FILE", help="files to add; - or nothing for stdin")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the CIDs")
    p.add_argument("-Q", "--quieter", action="store_true", help="print only the final CID")
    p.add_argument("-n", "--only-hash", action="store_true", help="only compute CIDs, store nothing")
    p.add_argument("--blockstore", metavar="DIR", help="directory to keep the blocks in")
    p.add_argument("-p", "--progress", action="store_true", help="show a progress bar on stderr")
    p.add_argument("-j", "--jobs", type=int, default=None, help="leaf-hashing threads (default: all cores)")
    add_import_arguments(p)
    p.set_defaults(func=run)


def _sink(args: argparse.Namespace) -> BlockSink:
    if args.only_hash or not args.blockstore:
        return NullSink()
    return DirectoryBlockstore(args.blockstore)


def run(args: argparse.Namespace) -> int:
    params = params_from_args(args)
    params.resolve()  # fail on bad parameters before touching any input
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    sink = _sink(args)
    last: ImportResult | None = None
    for path in args.paths:
        stdin = path == "-"
        total = None if stdin else os.path.getsize(path)
        bar = Progress(total, label=path if not stdin else "stdin") if args.progress else None
        source = sys.stdin.buffer if stdin else path
        last = import_file(source, params, sink, jobs=args.jobs, progress=bar.update if bar else None)
        if bar:
            bar.close()
        if not args.quieter:
            name = str(last.cid) if stdin else path
            print(str(last.cid) if args.quiet else f"added {last.cid} {name}", flush=True)
    if args.quieter and last is not None:
        print(last.cid)
    return 0
