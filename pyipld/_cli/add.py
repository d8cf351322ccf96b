"""``pyipld add``: kubo's ``ipfs add`` for files, directories and stdin, same flags, same output.

``--car OUT.car [--car-version 1|2]`` also writes every block into a CAR in the same
pass (roots set at the end: one per added path, or the ``-w`` wrapper); ``--commp``
then prints the CAR's Filecoin piece commitment on stderr (see docs/commp.md).
A killed or failed ``--car`` run is continued by the same command run again
(:mod:`pyipld.car.resume`; ``--no-resume`` starts over and keeps nothing on failure).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import IO, TYPE_CHECKING, Any

from .._atomic import TempNamesOf, is_device_or_pipe
from .._progress import Progress
from ..blockstore import BlockSink, DirectoryBlockstore, NullSink
from ..cid import CID
from ..errors import ConfigError, UsageError
from ..unixfs.data import Mtime
from ..unixfs.directory import build_directory
from ..unixfs.ignore import IgnoreRules, compile_rules
from ..unixfs.importer import import_file
from ..unixfs.nodes import Metadata
from ..unixfs.params import PROFILES, ImportParams
from ..unixfs.tree import AddedEntry, NamedStream
from ._scale import import_paths_scaled
from .add_inputs import Input, announce_terminal_stdin, collect_inputs, stdin_reader
from .add_output import AddOutput, CidEncoder, escape_name, print_line
from .argv import go_int32, go_uint32, parse_bool
from .car_output import add_car_arguments, car_sink_for, text_stream
from .timeout import deadline, go_duration_option

if TYPE_CHECKING:
    from ..filecoin.commp import CommPWriter

__all__ = [
    "add_directory_arguments",
    "add_import_arguments",
    "escape_name",
    "params_from_args",
    "print_line",
    "register",
]


def parse_mode(text: str) -> int:
    """kubo's ``--mode`` is a ``UintOption``: ``strconv.ParseUint(text, 0, 32)`` (``0764`` is octal)."""
    return go_uint32(text)


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """The file-import flags shared by every command that imports (add, car create, pack)."""
    g = parser.add_argument_group("import parameters (kubo's ipfs add flags)")
    g.add_argument("--profile", choices=sorted(PROFILES), help="IPIP-499 parameter set; explicit flags override it")
    g.add_argument("--cid-version", type=go_int32, default=None, help="CID version (default 0; 1 implies raw leaves)")
    g.add_argument("--raw-leaves", nargs="?", const=True, default=None, type=parse_bool, metavar="BOOL",
                   help="use raw blocks for leaves (--raw-leaves or --raw-leaves=false)")
    g.add_argument("-s", "--chunker", default=None, help="size-N, rabin[-MIN-AVG-MAX], buzhash (default size-262144)")
    g.add_argument("-t", "--trickle", action="store_true", help="trickle DAG layout instead of balanced")
    g.add_argument("--max-file-links", type=go_int32, default=None, help="children per file node (default 174)")
    g.add_argument("--hash", default=None, help="multihash function (default sha2-256)")
    g.add_argument("--inline", action="store_true", help="inline small blocks into identity CIDs")
    g.add_argument("--inline-limit", type=go_int32, default=None, help="max block size to inline (default 32, max 128)")
    g.add_argument("--mode", type=parse_mode, default=None, help="custom POSIX mode for every entry (e.g. 0644)")
    g.add_argument("--mtime", type=int, default=None, help="custom mtime (Unix seconds) for every entry")
    g.add_argument("--mtime-nsecs", type=go_uint32, default=None, help="nanoseconds part of --mtime")
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
    g.add_argument("--max-hamt-fanout", type=go_int32, default=None, metavar="N", help="HAMT width (default 256)")
    g.add_argument("--max-directory-links", type=go_int32, default=None, metavar="N",
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
    p.add_argument("--dereference-args", action="store_true",
                   help="resolve symlinks given as arguments (their targets are added, under the targets' names)")
    p.add_argument("-w", "--wrap-with-directory", dest="wrap", action="store_true",
                   help="wrap the added files in a directory (its CID is printed last)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the CIDs")
    p.add_argument("-Q", "--quieter", action="store_true", help="print only the final CID")
    p.add_argument("--silent", action="store_true", help="print nothing")
    p.add_argument("-n", "--only-hash", action="store_true", help="only compute CIDs, store nothing")
    p.add_argument("--blockstore", metavar="DIR", help="directory to keep the blocks in")
    p.add_argument("-p", "--progress", nargs="?", const=True, default=None, type=parse_bool, metavar="BOOL",
                   help="progress bar on stderr (default: on when stderr is a terminal, unless -q, -Q or --silent)")
    p.add_argument("--pin", nargs="?", const=True, default=True, type=parse_bool, metavar="BOOL",
                   help="accepted for kubo compatibility: blocks in --blockstore are never garbage-collected, "
                        "so they are always kept (default true)")
    p.add_argument("--ignore", action="append", default=[], metavar="RULE",
                   help="gitignore-style rule for names inside directories (repeatable)")
    p.add_argument("--ignore-rules-path", default=None, metavar="FILE", help="file of gitignore-style rules")
    p.add_argument("--cid-base", default=None, metavar="BASE",
                   help="multibase for CIDv1 in the output (base32, base36, base58btc...; upgrades CIDv0)")
    p.add_argument("--upgrade-cidv0-in-output", "--upgrade-cids", dest="upgrade_cids", nargs="?", const=True,
                   default=None, type=parse_bool, metavar="BOOL", help="print CIDv0 as CIDv1")
    p.add_argument("--enc", "--encoding", dest="enc", choices=("text", "json"), default="text",
                   help="output: text lines, or json (kubo's AddEvent objects, one per line)")
    p.add_argument("--timeout", default=None, metavar="DURATION",
                   help="give up after this long (Go duration: 30s, 5m, 1h)")
    p.add_argument("--to-files", default=None, metavar="MFSPATH", help="refused: needs kubo's MFS")
    p.add_argument("--nocopy", action="store_true",
                   help="with --blockstore DIR: keep raw leaves as references into the added files (kubo's "
                        "filestore) instead of copies; implies --raw-leaves; reads check every block's hash")
    p.add_argument("--fscache", action="store_true",
                   help="with --blockstore DIR: copy blocks, except those DIR's filestore already references "
                        "(kubo: a normal add that does not duplicate --nocopy data)")
    p.add_argument("--stdin-name", default="", metavar="NAME",
                   help="name for stdin (shown, and its entry name with -w; default: its CID)")
    p.add_argument("-j", "--jobs", type=int, default=None, help="leaf-hashing threads (default: all cores)")
    add_import_arguments(p)
    add_directory_arguments(p)
    add_car_arguments(p)
    p.add_argument("--commp", action="store_true",
                   help="with --car: print the CAR's Filecoin piece CID and sizes on stderr (CARv1 bytes; "
                        "for --car-version 2 its inner CARv1)")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="with --car FILE: start over even if an interrupted run of the same command left a "
                        "partial CAR, and keep nothing if this run fails (by default a re-run continues it)")
    # -- incremental and distributed import (docs/distributed.md): plain flags, kept apart from kubo's --
    p.add_argument("--cache", metavar="FILE", default=None,
                   help="SQLite import cache: files whose stat data is unchanged are not read again (only-hash)")
    p.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="hash on a Dask cluster: local (an embedded LocalCluster) or a scheduler address tcp://host:8786")
    p.add_argument("--storage-options", type=_json_object, default=None, metavar="JSON",
                   help="fsspec options for protocol:// inputs such as s3://bucket/prefix "
                        "(e.g. '{\"endpoint_url\": \"http://127.0.0.1:9000\", \"anon\": true}')")
    p.set_defaults(func=run)


def _json_object(text: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def _sink(args: argparse.Namespace) -> BlockSink:
    if args.only_hash or not args.blockstore:
        return NullSink()
    if args.nocopy:
        from ..filestore import Filestore

        return Filestore(args.blockstore)
    if args.fscache:
        from ..filestore import open_blockstore

        return _CopyInto(open_blockstore(args.blockstore, create=True))
    return DirectoryBlockstore(args.blockstore)


class _CopyInto:
    """``--fscache``: every block through the store's ``put`` (a filestore skips the blocks it already
    references: boxo ``Filestore.Put`` checks ``Has``), never through its ``file_refs``."""

    def __init__(self, store: BlockSink) -> None:
        self.put = store.put


class _Tee:
    """Every block to the CAR and to the blockstore (``add --car OUT --blockstore DIR``)."""

    def __init__(self, *sinks: BlockSink) -> None:
        self.sinks = sinks

    def put(self, cid: bytes, data: bytes) -> None:
        for sink in self.sinks:
            sink.put(cid, data)


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # closed or detached stdin: not a terminal
        return False


def _refuse_unsupported(args: argparse.Namespace) -> None:
    if args.to_files is not None:
        raise ConfigError("--to-files needs kubo's MFS (the Files API of a repo); pyipld has none: "
                          "add, then use the printed CID")
    if args.nocopy:
        if args.car:
            raise ConfigError("--nocopy keeps references to the files in --blockstore DIR: it cannot be "
                              "combined with --car (a CAR must hold the bytes)")
        if args.dask is not None:
            raise ConfigError("--nocopy cannot be combined with --dask (the workers compute CIDs only)")
        if not args.blockstore and not args.only_hash:
            raise ConfigError("--nocopy needs --blockstore DIR (where the references are kept)")


def nocopy_params(args: argparse.Namespace, params: ImportParams) -> ImportParams:
    """kubo's rule "nocopy -> raw leaves": on unless explicitly off (then kubo's error)."""
    if not args.nocopy:
        return params
    if params.raw_leaves is False:  # --raw-leaves=false, or a profile that sets it
        raise ConfigError("nocopy option requires '--raw-leaves' to be enabled as well")
    if params.has_metadata:
        raise ConfigError("--nocopy needs raw leaves, and raw-leaves can't be used with UnixFS metadata "
                          "like mode or modification time")
    return replace(params, raw_leaves=True)


def _refuse_nocopy_inputs(inputs: list[Input], stdin: bool, *, only_hash: bool = False) -> None:
    """--nocopy references files on disk: stdin, named pipes and URLs have no file to point at
    (stdin is refused with -n too, as kubo does; the rest only when something is stored)."""
    if stdin or any(isinstance(i.source, NamedStream) and i.source.open is stdin_reader for i in inputs):
        raise ConfigError("--nocopy cannot add stdin: missing file path or URL, can't create filestore reference")
    if only_hash:
        return
    for i in inputs:
        if isinstance(i.source, str | NamedStream):  # an fsspec URL, or an http(s) one (stdin was refused above)
            url = i.source if isinstance(i.source, str) else i.argument
            raise ConfigError(f"--nocopy references local files only, not the URL {url} (pyipld has no urlstore)")
        try:
            fifo = stat.S_ISFIFO(os.lstat(i.source).st_mode)
        except OSError:
            continue  # reported by the import
        if fifo:
            raise ConfigError(f"--nocopy cannot reference the named pipe {os.fsdecode(i.source)}: "
                              "its bytes cannot be read again")


def run(args: argparse.Namespace) -> int:
    params = nocopy_params(args, params_from_args(args))
    params.resolve()  # fail on bad parameters before touching any input
    _refuse_unsupported(args)
    encoder = CidEncoder.from_options(args.cid_base, args.upgrade_cids)
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    if args.commp and not args.car:
        raise ConfigError("--commp needs --car OUT.car (the piece is the CAR's bytes)")
    if args.commp and args.car == "-" and args.car_version == 2:
        raise ConfigError("--commp with --car - needs --car-version 1 (a CARv2 on stdout cannot be re-read)")
    if not args.paths:
        # go-ipfs-cmds reads stdin for a missing file argument only when it is not a terminal.
        if _is_terminal(sys.stdin):
            raise UsageError('argument "path" is required')  # go-ipfs-cmds parseArgs: with the short help
        args.paths = ["-"]
    if args.progress is None:  # kubo: on unless -q, -Q or --silent; here only where a bar can be seen
        args.progress = not (args.quiet or args.quieter or args.silent) and _is_terminal(sys.stderr)
    with deadline(go_duration_option(args.timeout)):
        return _run(args, params, encoder)


def _run(args: argparse.Namespace, params: ImportParams, encoder: CidEncoder) -> int:
    if "-" in args.paths and (args.dask is not None or args.cache is not None):
        raise ConfigError("--dask and --cache need paths (workers and the cache read files by path), not stdin")
    stdin_alone = args.paths == ["-"]
    if stdin_alone and args.nocopy:  # kubo too, even with -n (boxo ErrMissingFsRef)
        _refuse_nocopy_inputs([], True)
    inputs: list[Input] = []
    exclude: Callable[[bytes], bool] | None = None
    if not stdin_alone:
        rules: IgnoreRules | None = None

        def check_rules() -> None:
            nonlocal rules
            if rules is None:
                rules = compile_rules(args.ignore, args.ignore_rules_path)

        inputs = collect_inputs(args.paths, recursive=args.recursive, dereference=args.dereference_args,
                                stdin_name=args.stdin_name, stdin=stdin_reader,
                                check_rules=check_rules if (args.ignore or args.ignore_rules_path) else None,
                                storage_options=args.storage_options)
        if args.wrap and any(not i.name for i in inputs):
            raise ConfigError("-w with stdin among other paths needs --stdin-name (the entry's name)")
        if args.wrap and any(b"/" in i.name for i in inputs):
            raise ConfigError("-w with stdin among other paths takes a --stdin-name without '/' "
                              "(a nested name is made only when stdin is added alone)")
        if args.nocopy:
            _refuse_nocopy_inputs(inputs, False, only_hash=args.only_hash)
        exclude = rules or None
        if params.hidden and args.car and args.car != "-":  # never the CAR's own temporary files
            exclude = TempNamesOf(args.car, also=exclude)
    out = AddOutput(text_stream(getattr(args, "car", None)), quiet=args.quiet, quieter=args.quieter, silent=args.silent,
                    json_events=args.enc == "json", encoder=encoder, clear_progress=bool(args.progress))
    taps: list[CommPWriter] = []

    def tap(raw: IO[bytes]) -> IO[bytes]:  # one-pass CommP of a CARv1 while it is written
        from .commp import commp_tap

        taps.append(commp_tap(raw))
        return taps[-1]  # type: ignore[return-value]

    one_pass = args.commp and args.car_version == 1
    # the journal keys local files by their stat data: stdin and fsspec URLs (str sources) start over
    from_urls = any(isinstance(i.source, str) for i in inputs)
    resumable = (bool(args.car) and args.car != "-" and not is_device_or_pipe(args.car) and args.resume
                 and not stdin_alone and not from_urls)
    key = resume_key(args, params) if resumable else None
    car = None
    try:
        with car_sink_for(args, params, wrap=tap if one_pass else None, resume_key=key) as car:
            _note_resume(args, car, start=True)
            sink = _sink(args)
            if car is not None:
                sink = car if isinstance(sink, NullSink) else _Tee(car, sink)
            if stdin_alone:
                roots = _run_stdin(args, params, sink, out)
            else:
                if key is not None and args.blockstore and not args.only_hash:
                    car.skip_files = False  # files are read again (and compared) so the store gets every block
                roots = _run_paths(args, params, sink, out, inputs, exclude, journal=car if key else None)
            if car is not None:
                car.set_roots(roots)
    except BaseException:
        if key is not None and car is not None and os.path.exists(_journal_of(car)):
            print(f"pyipld: the partial {args.car} is kept: run the same command again to continue it "
                  "(--no-resume starts over)", file=sys.stderr)
        raise
    _note_resume(args, car, start=False)
    out.finish()
    if args.commp:
        from .commp import commp_of_car, print_piece_info

        if taps and not taps[0].stale:
            info = taps[0].digest()
        else:  # CARv2 (the deal bytes are its inner CARv1), or the writer moved the body: read it back
            info = commp_of_car(args.car)
        print_piece_info(info, sys.stderr)
    return 0


def resume_key(args: argparse.Namespace, params: ImportParams) -> str:
    """Everything besides the files that decides ``add --car``'s bytes: a partial CAR left with
    another key is started over, never continued."""
    from .. import __version__
    from ..unixfs.cache import params_key

    rules = b""
    if args.ignore_rules_path:
        try:
            with open(args.ignore_rules_path, "rb") as f:
                rules = f.read()
        except OSError:
            rules = b"?"
    doc = {
        "pyipld": __version__,
        "params": params_key(params),
        "car_version": args.car_version,
        "cwd": os.getcwd(),
        "paths": args.paths,
        "recursive": args.recursive, "wrap": args.wrap, "dereference": args.dereference_args,
        "stdin_name": args.stdin_name,
        "ignore": args.ignore, "ignore_rules": hashlib.sha256(rules).hexdigest(),
        "blockstore": None if args.only_hash else args.blockstore,
    }
    return json.dumps(doc, sort_keys=True)


def _journal_of(car: Any) -> str:
    return str(getattr(car, "journal_path", ""))


def _note_resume(args: argparse.Namespace, car: Any, *, start: bool) -> None:
    """One stderr line when a partial CAR is continued (at the end) or could not be (at the start)."""
    stats = getattr(car, "stats", None)
    if stats is None or args.silent:
        return
    if start and stats.started_over:
        print(f"pyipld: starting {args.car} over ({stats.started_over})", file=sys.stderr)
    elif not start and stats.resumed and not (args.quiet or args.quieter):
        print(f"pyipld: continued {args.car}: {stats.files_skipped} files ({stats.bytes_skipped} bytes) "
              "were already in it", file=sys.stderr)


def _run_stdin(args: argparse.Namespace, params: ImportParams, sink: BlockSink, out: AddOutput) -> list[CID]:
    # kubo names stdin --stdin-name, or (empty name) the file's own CID string (coreunix addNode).
    name = args.stdin_name.encode("utf-8", "surrogateescape")
    nested = wrapped_stdin_path(name) if args.wrap and name else None  # checked before stdin is read
    bar = Progress(None, label="stdin") if args.progress else None
    announce_terminal_stdin()
    last = import_file(sys.stdin.buffer, params, sink, jobs=args.jobs, progress=bar.update if bar else None)
    if bar:
        bar.close()
    if not args.wrap:
        out.added(last.cid, name, last.tsize)
        return [last.cid]
    *parents, entry = nested or [str(last.cid).encode()]
    out.added(last.cid, b"/".join([*parents, entry]), last.tsize)
    link = (entry, last.cid.bytes, last.tsize)
    for depth in range(len(parents), 0, -1):  # kubo's mfs.Mkdir of the parents: plain directories
        made = build_directory([link], params, sink)
        out.added(CID.from_bytes(made.cid), b"/".join(parents[:depth]), made.tsize)
        link = (parents[depth - 1], made.cid, made.tsize)
    meta = Metadata(params.mode, Mtime(*params.mtime) if params.mtime else None)
    wrapper = build_directory([link], params, sink, meta=meta if meta else None)
    root = CID.from_bytes(wrapper.cid)
    out.wrapper(root, wrapper.tsize)
    return [root]


def wrapped_stdin_path(name: bytes) -> list[bytes]:
    """The components of ``--stdin-name`` under ``-w``, as kubo places it: the name is joined
    (``path.Join``, so cleaned) into the wrapper and its parents are made (``mfs.Mkdir``), so
    ``a/b`` is the file ``b`` in a directory ``a``.

    Raises:
        ConfigError: a name that would leave the wrapper or names no entry (``..``, ``/``).
    """
    parts = [part for part in name.split(b"/") if part and part != b"."]
    if not parts or b".." in parts:
        raise ConfigError(f"--stdin-name {os.fsdecode(name)!r} with -w names no entry inside the wrapping directory")
    return parts


def _run_paths(args: argparse.Namespace, params: ImportParams, sink: BlockSink, out: AddOutput,
               inputs: list[Input], exclude: Callable[[bytes], bool] | None, journal: Any = None) -> list[CID]:
    """Import the checked inputs; returns the CAR roots: each top-level entry in order (or the ``-w`` wrapper)."""
    bar = Progress(None, label="adding") if args.progress else None
    tops: list[CID] = []

    def on_added(entry: AddedEntry) -> None:
        if b"/" not in entry.path and entry.cid not in tops:
            tops.append(entry.cid)
        if args.wrap and entry.path == b"":
            out.wrapper(entry.cid, entry.size)
        else:
            out.added(entry.cid, entry.path, entry.size)

    # -Q/--silent print at most the last entry, which is a top-level one (or the wrapper)
    report = "top" if out.prints_only_last else "all"
    result = import_paths_scaled(args, [i.source for i in inputs], params, sink, recursive=args.recursive,
                                 wrap=args.wrap, on_added=on_added, progress=bar.update if bar else None,
                                 jobs=args.jobs, exclude=exclude, journal=journal, report=report)
    if bar:
        bar.close()
    return [result.cid] if args.wrap else tops
