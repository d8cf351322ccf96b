"""``pyipld add``: kubo's ``ipfs add`` for files, directories and stdin, same flags, same output.

``--car OUT.car [--car-version 1|2]`` also writes every block into a CAR in the same
pass (roots set at the end: one per added path, or the ``-w`` wrapper); ``--commp``
then prints the CAR's Filecoin piece commitment on stderr (see docs/commp.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import IO, Any, TextIO

from .._progress import Progress
from ..blockstore import BlockSink, DirectoryBlockstore, NullSink
from ..car.commp import CommPWriter
from ..cid import CID
from ..errors import ConfigError
from ..unixfs.data import Mtime
from ..unixfs.directory import build_directory
from ..unixfs.importer import import_file
from ..unixfs.nodes import Metadata
from ..unixfs.params import PROFILES, ImportParams
from ..unixfs.tree import AddedEntry, import_paths
from .argv import go_bool
from .car import add_car_arguments, car_sink_for
from .commp import commp_of_car, commp_tap, print_piece_info

__all__ = [
    "add_directory_arguments",
    "add_import_arguments",
    "cli_order",
    "escape_name",
    "params_from_args",
    "parse_bool",
    "print_line",
    "register",
]


def parse_bool(text: str) -> bool:
    """A ``--flag=VALUE`` value as go-ipfs-cmds reads it: lower-cased, then Go's ``strconv.ParseBool``."""
    return go_bool(text.lower())


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


def add_directory_arguments(parser: argparse.ArgumentParser) -> None:
    """The directory-import flags (kubo's names): walk filters and HAMT sharding."""
    g = parser.add_argument_group("directory parameters (kubo's ipfs add -r flags)")
    g.add_argument("-H", "--hidden", action="store_true", help="include files and directories whose name starts with .")
    g.add_argument("-E", "--empty-dirs", nargs="?", const=True, default=None, type=parse_bool, metavar="BOOL",
                   help="keep empty sub-directories (default true; -E=false omits them)")
    g.add_argument("--hamt-threshold", type=int, default=None, metavar="BYTES",
                   help="shard a directory whose size estimate exceeds BYTES (default 262144; 0 never shards)")
    g.add_argument("--hamt-estimation", choices=("links", "block"), default=None,
                   help="size estimate: links (sum of name+CID bytes, default) or block (serialized size)")
    g.add_argument("--hamt-threshold-inclusive", action="store_true",
                   help="also shard when the estimate equals the threshold (kubo before 0.40)")
    g.add_argument("--max-hamt-fanout", type=int, default=None, metavar="N", help="HAMT width (default 256)")
    g.add_argument("--max-directory-links", type=int, default=None, metavar="N",
                   help="shard a directory with more than N entries (default 0: no limit)")


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
    elif args.mtime_nsecs:
        raise ConfigError('option "mtime-nsecs" requires "mtime" to be provided as well')
    if args.preserve_mode:
        overrides["preserve_mode"] = True
    if args.preserve_mtime:
        overrides["preserve_mtime"] = True
    for flag, key in (("hamt_threshold", "hamt_threshold"), ("hamt_estimation", "hamt_estimation"),
                      ("max_hamt_fanout", "hamt_fanout"), ("max_directory_links", "max_directory_links"),
                      ("empty_dirs", "empty_dirs")):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    if getattr(args, "hamt_threshold_inclusive", False):
        overrides["hamt_threshold_inclusive"] = True
    if getattr(args, "hidden", False):
        overrides["hidden"] = True
    if args.profile:
        return ImportParams.from_profile(args.profile, **overrides)
    return ImportParams(**overrides)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("add", help="compute the CID of files (and optionally keep the blocks)",
                       description="Add files like `ipfs add`, without a daemon.")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="files or directories to add; - (or nothing, when stdin is not a terminal) for stdin")
    p.add_argument("-r", "--recursive", action="store_true", help="add directories recursively")
    p.add_argument("-w", "--wrap-with-directory", dest="wrap", action="store_true",
                   help="wrap the added files in a directory (its CID is printed last)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the CIDs")
    p.add_argument("-Q", "--quieter", action="store_true", help="print only the final CID")
    p.add_argument("-n", "--only-hash", action="store_true", help="only compute CIDs, store nothing")
    p.add_argument("--blockstore", metavar="DIR", help="directory to keep the blocks in")
    p.add_argument("-p", "--progress", action="store_true", help="show a progress bar on stderr")
    p.add_argument("--stdin-name", default="", metavar="NAME",
                   help="name for stdin (shown, and its entry name with -w; default: its CID)")
    p.add_argument("-j", "--jobs", type=int, default=None, help="leaf-hashing threads (default: all cores)")
    add_import_arguments(p)
    add_directory_arguments(p)
    add_car_arguments(p)
    p.add_argument("--commp", action="store_true",
                   help="with --car: print the CAR's Filecoin piece CID and sizes on stderr (CARv1 bytes; "
                        "for --car-version 2 its inner CARv1)")
    p.set_defaults(func=run)


def _sink(args: argparse.Namespace) -> BlockSink:
    if args.only_hash or not args.blockstore:
        return NullSink()
    return DirectoryBlockstore(args.blockstore)


class _Tee:
    """Every block to the CAR and to the blockstore (``add --car OUT --blockstore DIR``)."""

    def __init__(self, *sinks: BlockSink) -> None:
        self.sinks = sinks

    def put(self, cid: bytes, data: bytes) -> None:
        for sink in self.sinks:
            sink.put(cid, data)


def _stdout(args: argparse.Namespace) -> TextIO:
    """Where ``added`` lines go: stderr when the CAR itself goes to stdout (``--car -``)."""
    return sys.stderr if getattr(args, "car", None) == "-" else sys.stdout


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # closed or detached stdin: not a terminal
        return False


def run(args: argparse.Namespace) -> int:
    params = params_from_args(args)
    params.resolve()  # fail on bad parameters before touching any input
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    if args.commp and not args.car:
        raise ConfigError("--commp needs --car OUT.car (the piece is the CAR's bytes)")
    if args.commp and args.car == "-" and args.car_version == 2:
        raise ConfigError("--commp with --car - needs --car-version 1 (a CARv2 on stdout cannot be re-read)")
    if not args.paths:
        # go-ipfs-cmds reads stdin for a missing file argument only when it is not a terminal.
        if _is_terminal(sys.stdin):
            raise ConfigError('argument "path" is required')
        args.paths = ["-"]
    if "-" in args.paths and len(args.paths) > 1:
        raise ConfigError("stdin (-) cannot be combined with other paths")
    taps: list[CommPWriter] = []

    def tap(raw: IO[bytes]) -> IO[bytes]:  # one-pass CommP of a CARv1 while it is written
        taps.append(commp_tap(raw))
        return taps[-1]  # type: ignore[return-value]

    one_pass = args.commp and args.car_version == 1
    with car_sink_for(args, params, wrap=tap if one_pass else None) as car:
        sink = _sink(args)
        if car is not None:
            sink = car if isinstance(sink, NullSink) else _Tee(car, sink)
        roots = _run_paths(args, params, sink) if "-" not in args.paths else _run_stdin(args, params, sink)
        if car is not None:
            car.set_roots(roots)
    if args.commp:
        if taps and not taps[0].stale:
            info = taps[0].digest()
        else:  # CARv2 (the deal bytes are its inner CARv1), or the writer moved the body: read it back
            info = commp_of_car(args.car)
        print_piece_info(info, sys.stderr)
    return 0


def _run_stdin(args: argparse.Namespace, params: ImportParams, sink: BlockSink) -> list[CID]:
    bar = Progress(None, label="stdin") if args.progress else None
    last = import_file(sys.stdin.buffer, params, sink, jobs=args.jobs, progress=bar.update if bar else None)
    if bar:
        bar.close()
    # kubo names stdin --stdin-name, or (empty name) the file's own CID string (coreunix addNode).
    name = args.stdin_name or str(last.cid)
    _print_added(args, str(last.cid), name.encode("utf-8", "surrogateescape"))
    root = str(last.cid)
    if args.wrap:
        meta = Metadata(params.mode, Mtime(*params.mtime) if params.mtime else None)
        wrapper = build_directory([(name.encode("utf-8", "surrogateescape"), last.cid.bytes, last.tsize)], params,
                                  sink, meta=meta if meta else None)
        root = str(CID.from_bytes(wrapper.cid))
        _print_added(args, root, b"")
    if args.quieter:
        print(root, file=_stdout(args))
    return [CID.decode(root)]


def _print_added(args: argparse.Namespace, cid: str, name: bytes) -> None:
    if not args.quieter:
        print_line(cid if args.quiet else f"added {cid} {escape_name(name)}", _stdout(args))


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\"}


def _needs_escape(text: str) -> bool:
    """kubo's ``needEscape``: a backslash, or a rune ``strconv.IsPrint`` rejects. Go ranges an
    invalid UTF-8 byte as U+FFFD, which is printable, so such a byte alone escapes nothing."""
    if "\\" in text:
        return True
    return any(not ch.isprintable() and not 0xDC80 <= ord(ch) <= 0xDCFF for ch in text)


def print_line(line: str, out: TextIO) -> None:
    """Write one output line; names with undecodable bytes (surrogates) go out as those bytes."""
    try:
        print(line, flush=True, file=out)
    except UnicodeEncodeError:
        buffer = getattr(out, "buffer", None)
        if buffer is None:
            raise
        out.flush()
        buffer.write(line.encode("utf-8", "surrogateescape") + b"\n")
        buffer.flush()


def escape_name(raw: bytes) -> str:
    """kubo's ``cmdenv.EscNonPrint``: Go-quote names holding a backslash, a
    non-printable character or invalid UTF-8; print the rest unchanged."""
    text = raw.decode("utf-8", "surrogateescape")
    if not _needs_escape(text):
        return text  # may hold undecodable bytes as surrogates: write it with print_line
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def _go_clean(path: str) -> str:
    """Go's ``filepath.Clean`` for a POSIX path (``os.path.normpath`` keeps a leading ``//``)."""
    cleaned = os.path.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def cli_order(paths: list[str]) -> list[str]:
    """kubo 0.22's CLI argument handling (go-ipfs-cmds ``cli/parse.go``): each path is cleaned
    (``.`` becomes the working directory) and named by its base name; a repeated base name
    from the same directory is skipped, from another directory is an error; the entries are
    then sorted by name (byte order), which is the order ``ipfs add`` adds and prints them."""
    seen: dict[bytes, str] = {}
    kept: list[tuple[bytes, str]] = []
    for path in paths:
        cleaned = _go_clean(path)
        if cleaned == ".":
            cleaned = os.getcwd()
        base, parent = os.path.basename(cleaned), os.path.dirname(cleaned) or "."
        key = os.fsencode(base)
        if key in seen:
            if seen[key] != parent:
                raise ConfigError(f"file name {base} repeated under different import directories: "
                                  f"{parent} and {seen[key]}")
            continue  # the exact same file again
        seen[key] = parent
        kept.append((key, cleaned))
    kept.sort(key=lambda item: item[0])
    return [path for _, path in kept]


def _run_paths(args: argparse.Namespace, params: ImportParams, sink: BlockSink) -> list[CID]:
    """Import the paths; returns the CAR roots: each top-level entry in order (or the ``-w`` wrapper)."""
    bar = Progress(None, label="adding") if args.progress else None
    tops: list[CID] = []
    out = _stdout(args)

    def on_added(entry: AddedEntry) -> None:
        if b"/" not in entry.path and entry.cid not in tops:
            tops.append(entry.cid)
        if args.quieter:
            return
        line = str(entry.cid) if args.quiet else f"added {entry.cid} {escape_name(entry.path)}"
        if bar is not None:
            sys.stderr.write("\033[2K\r")
        print_line(line, out)

    result = import_paths(cli_order(args.paths), params, sink, recursive=args.recursive, wrap=args.wrap, on_added=on_added,
                          progress=bar.update if bar else None, jobs=args.jobs)
    if bar:
        bar.close()
    if args.quieter:
        print(result.cid, file=out)
    return [result.cid] if args.wrap else tops
