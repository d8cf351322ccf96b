"""``pyipld car …``: go-car's ``car`` tool, in the same spirit and mostly the same output.

Sub-commands: create, ls, roots, inspect, verify, extract, index, detach-index,
cat, get-block. Errors are one line on stderr and a non-zero exit (pyipld.cli).
Progress goes to stderr when it is a terminal (``--progress`` forces it).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import stat
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import IO

from .._atomic import TempNamesOf, atomic_output, is_device_or_pipe, made_directory, user_output
from .._progress import Progress
from .._varint import decode_varint
from ..car.blockstore import CarBlockstore
from ..car.index import (
    INDEX_CODEC_NAMES,
    IndexRecord,
    build_index,
    decode_index,
    encode_index,
    index_codec_by_name,
    iter_index_records,
    scan_index,
)
from ..car.reader import CarFile
from ..car.sink import open_car_sink
from ..car.stream import open_car_stream
from ..car.v1 import DEFAULT_MAX_HEADER_BYTES, CarV1Reader, SectionHead, decode_header
from ..car.v2 import PRAGMA, wrap_v1
from ..cid import CID, CODEC_NAMES, DAG_PB
from ..dagpb import decode_pbnode
from ..errors import (
    CarError,
    CarIndexError,
    ConfigError,
    DecodeError,
    NotFoundError,
    UnixFSError,
    UnsafePathError,
)
from ..multihash import encode_multihash, hash_by_code
from ..unixfs.data import decode_unixfs_data
from ..unixfs.directory import is_plain_entry_name
from ..unixfs.extract import DEFAULT_MAX_DEPTH, DEFAULT_MAX_ENTRIES
from ..unixfs.reader import UnixFSReader
from ..unixfs.resolve import resolve_path
from ..unixfs.tree import import_paths
from ..unixfs.walk import DirectoryEntry, UnixFSNode, iter_directory, load_node
from . import gopath
from .car_output import text_stream

__all__ = ["register"]


def _progress(args: argparse.Namespace, total: int | None, label: str) -> Progress | None:
    want = getattr(args, "progress", None)
    if want is None:
        want = sys.stderr.isatty()
    return Progress(total, label=label) if want else None


@contextlib.contextmanager
def _stream_of(path: str) -> Iterator[IO[bytes] | None]:
    """stdin for ``-``, the opened file for a pipe or device (``car ls <(…)``, a FIFO: they cannot
    seek, and CarFile failed on them with "File or stream is not seekable"), else None."""
    if path == "-":
        yield sys.stdin.buffer
    elif is_device_or_pipe(path):
        with open(path, "rb") as f:
            yield f
    else:
        yield None


@contextlib.contextmanager
def _source(path: str) -> Iterator[str | IO[bytes]]:
    """A path, or for ``-`` and pipes the stream copied to a temporary file (reading a CAR needs to
    seek), closed at the end."""
    with _stream_of(path) as stdin:
        if stdin is None:
            yield path
            return
        head, version = _read_car_head(stdin)
        with _spooled(head, stdin if version is not None else None) as spool:
            yield spool  # when the head is not a CAR header, the reader reports it from these bytes


@contextlib.contextmanager
def _spooled(head: bytes, rest: IO[bytes] | None) -> Iterator[IO[bytes]]:
    """``head`` and all of ``rest`` (if any) in a temporary file, positioned at the start."""
    with tempfile.TemporaryFile() as spool:
        spool.write(head)
        while rest is not None and (chunk := rest.read(1 << 20)):
            spool.write(chunk)
        spool.seek(0)
        yield spool


@contextlib.contextmanager
def _payload(path: str) -> Iterator[CarV1Reader]:
    """The payload of a CAR (hash-verified), for the commands that read it in order: ``ls`` and
    ``roots``. Stdin is read as it arrives, and a CARv2's payload only (go-car's block reader):
    old code first copied all of stdin to a temporary file, so ``car roots -`` of a live stream
    never answered, and an endless one filled the disk."""
    with _stream_of(path) as stdin:
        if stdin is None:
            with CarFile(path) as car:
                yield car.payload_reader()
            return
        head, version = _read_car_head(stdin)
        if version == 1 or (version == 2 and head == PRAGMA):
            yield open_car_stream(stdin, head=head)
            return
        with _spooled(head, None) as spool, CarFile(spool) as car:  # not a CAR: the file reader's error
            yield car.payload_reader()


def _read_car_head(stream: IO[bytes]) -> tuple[bytes, int | None]:
    """The bytes of the header at the start of a CAR stream (length varint and body), and its
    version when they decode as a CARv1 header or a CARv2 pragma (else ``None``). ``car ls <
    /dev/zero`` copied its input to a temporary file until the disk was full before looking at the
    first byte; now nothing past a header that is not one is read."""
    head = bytearray()
    while len(head) < 10 and (not head or head[-1] & 0x80):
        byte = stream.read(1)
        if not byte:
            return bytes(head), None
        head += byte
    try:
        length, _ = decode_varint(bytes(head), 0)
    except DecodeError:
        return bytes(head), None
    if not 0 < length <= DEFAULT_MAX_HEADER_BYTES:
        return bytes(head), None
    prefix = len(head)
    while len(head) - prefix < length:
        more = stream.read(length - (len(head) - prefix))
        if not more:
            return bytes(head), None
        head += more
    try:
        header = decode_header(bytes(head[prefix:]))
    except DecodeError:
        return bytes(head), None
    return bytes(head), header.version if header.version in (1, 2) else None


def _codec_name(code: int) -> str:
    return CODEC_NAMES.get(code, f"0x{code:x}")


def _hash_name(code: int) -> str:
    try:
        return hash_by_code(code).name
    except DecodeError:
        return f"0x{code:x}"


def _write_text(out: IO[str], text: str) -> None:
    """Write ``text``; names with undecodable bytes (surrogates) go out as those bytes, as in `pyipld ls`
    (a strict UTF-8 stdout would raise UnicodeEncodeError)."""
    try:
        out.write(text)
    except UnicodeEncodeError:
        buffer = getattr(out, "buffer", None)
        if buffer is None:
            raise
        out.flush()
        buffer.write(text.encode("utf-8", "surrogateescape"))
        buffer.flush()


def _out(text: str) -> None:
    """One line on stdout (see :func:`_write_text`)."""
    _write_text(sys.stdout, text + "\n")


# -- create --------------------------------------------------------------------------------


def _input_bytes(paths: list[str]) -> int | None:
    total = 0
    for path in paths:
        if os.path.isdir(path):
            for base, _dirs, files in os.walk(path):
                total += sum(os.lstat(os.path.join(base, f)).st_size for f in files)
        else:
            total += os.path.getsize(path)
    return total


def _cmd_create(args: argparse.Namespace) -> int:
    """go-car ``car create``: the inputs wrapped in one directory (the root), or with ``--no-wrap``
    the single input itself; go-car's checks and texts, in its order."""
    from ..unixfs.importer import import_file
    from .add import params_from_args

    if args.jobs is not None and args.jobs < 1:  # as add, car pack and commp
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    if not args.paths:
        raise ConfigError("a source location to build the car from must be specified")
    if not args.file:
        raise ConfigError("a file destination must be specified")
    if args.no_wrap and len(args.paths) > 1:
        raise ConfigError("no-wrap cannot be set with multiple source locations")
    if args.version not in (1, 2):
        raise ConfigError(f"invalid CAR version {args.version}")
    if args.cid_version is None and args.profile is None:
        args.cid_version = 1  # go-car's builder writes CIDv1 (raw leaves); kubo's `add` defaults stay for `add`
    params = params_from_args(args)
    params.resolve()  # fail on bad parameters before touching any output
    for path in args.paths:
        os.stat(path)  # a missing input fails before the output is created
    bar = _progress(args, _input_bytes(args.paths), "create")
    update = bar.update if bar else None
    own = TempNamesOf(args.file) if params.hidden else None  # never the CAR's own temporary file
    with open_car_sink(args.file, args.version, params=params) as car:
        if not args.no_wrap:
            roots = [import_paths(args.paths, params, car, recursive=True, wrap=True, progress=update,
                                  jobs=args.jobs, exclude=own).cid]
        else:
            roots = []
            for path in args.paths:
                if os.path.isdir(path):
                    roots.append(import_paths([path], params, car, recursive=True, progress=update,
                                              jobs=args.jobs, exclude=own).cid)
                else:
                    roots.append(import_file(path, params, car, jobs=args.jobs, progress=update).cid)
        car.set_roots(roots)
    if bar:
        bar.close()
    for root in roots:  # go-car prints nothing on stdout; the root is on stderr for convenience
        print(root, file=sys.stderr)
    return 0


# -- ls / roots ---------------------------------------------------------------------------------


def _cmd_ls(args: argparse.Namespace) -> int:
    """go-car ``car ls``: block CIDs in payload order (``-v``: codec, links and UnixFS type of each
    block); ``--unixfs`` / ``--unixfs-blocks``: the UnixFS paths under the roots. An optional
    second argument is the output file, as in go-car."""
    if not args.out:
        return _ls_into(args, sys.stdout)
    # a temporary name, renamed when done: a failure keeps OUT (go-car's os.Create: "-" is a file)
    with atomic_output(args.out) if args.out == "-" else user_output(args.out) as raw:
        out = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape")
        try:
            return _ls_into(args, out)
        finally:
            out.flush()
            out.detach()


def _ls_into(args: argparse.Namespace, out: IO[str]) -> int:
    if args.unixfs or args.unixfs_blocks:
        return _ls_unixfs(args, out)
    with _payload(args.car) as payload:
        for section in payload:
            cid = CID.from_bytes(section.cid)
            if args.verbose:
                out.write(f"{_codec_name(cid.codec)}: {cid}\n")
                if cid.codec == DAG_PB:
                    out.write(describe_dagpb(section.data))
            else:
                out.write(f"{cid}\n")
    return 0


def _ls_unixfs(args: argparse.Namespace, out: IO[str]) -> int:
    """go-car ``printUnixFSNode``: every directory entry (relative path, link order, depth first),
    with ``--unixfs-blocks`` its CID first; the roots themselves are not printed.

    A DAG may link one sub-tree many times (a few blocks, 2**40 paths): the entries listed are
    capped by ``--max-entries`` and the nesting by ``--max-depth``, so memory stays within one
    directory node per level and nothing grows with the entries listed (old code kept every
    directory path it had seen, and ran on for ever)."""
    if args.car == "-":
        raise ConfigError("must provide file to read from. unixfs reading requires random access")
    limits = _Limits(args.max_entries, args.max_depth, "list")
    with _source(args.car) as src, CarBlockstore(src, verify=True) as bs:

        def missing(what: str) -> None:
            print(f"data for entry not found: {what} (skipping...)", file=sys.stderr)

        def entries_of(node: UnixFSNode) -> Iterator[DirectoryEntry]:
            # a HAMT sub-shard absent from the CAR is named by its CID
            return iter_directory(bs, node, lambda cid: missing(str(CID.from_bytes(cid))))

        for root in bs.roots:
            try:
                first = load_node(bs, root.bytes)
            except NotFoundError:
                missing("/")
                continue
            if _kind(first) != "directory":
                continue
            # (raw path, printed name, entries): the name as go-car builds it, path.Join of the
            # parent's name and the entry's (so `/x` under `a` is `a/x`, and `..` is resolved)
            frames: list[tuple[tuple[bytes, ...], str, Iterator[DirectoryEntry]]] = [((), "", entries_of(first))]
            ancestors = [first.cid]
            while frames:
                path, prefix, entries = frames[-1]
                entry = next(entries, None)
                if entry is None:
                    frames.pop()
                    ancestors.pop()
                    continue
                parts = (*path, entry.name)
                limits.count()
                name = gopath.join(prefix, entry.name.decode("utf-8", "surrogateescape"))
                _write_text(out, f"{entry.cid} {name}\n" if args.unixfs_blocks else f"{name}\n")
                try:
                    child = load_node(bs, entry.cid.bytes)
                except NotFoundError:
                    missing(_path_text(parts))
                    continue
                if _kind(child) == "directory":
                    if child.cid in ancestors:
                        raise UnixFSError(f"directory cycle at {_path_text(parts)!r}")
                    limits.enter(len(frames))
                    frames.append((parts, name, entries_of(child)))
                    ancestors.append(child.cid)
    return 0


_UNIXFS_TYPES = {0: "Raw", 1: "Directory", 2: "File", 3: "Metadata", 4: "Symlink", 5: "HAMTShard"}


def humanize_bytes(n: int) -> str:
    """go-humanize ``Bytes``: SI units, one decimal below 10 (``1.2 kB``, ``12 kB``, ``5 B``)."""
    if n < 10:
        return f"{n} B"
    exp = min(math.floor(math.log(n) / math.log(1000)), 6)
    value = math.floor(n / 1000**exp * 10 + 0.5) / 10
    unit = ("B", "kB", "MB", "GB", "TB", "PB", "EB")[exp]
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def describe_dagpb(block: bytes) -> str:
    """The lines go-car ``car ls -v`` prints under a dag-pb block: link and data counts, the first
    three links (name, humanized Tsize, CID), the total when more, and the UnixFS type."""
    try:
        node = decode_pbnode(block)
    except DecodeError as exc:
        return f"\tnot interpretable as dag-pb: {exc}\n"
    data = node.data or b""
    lines = [f"\t{len(node.links)} links. {len(data)} bytes"]
    for link in node.links[:3]:
        name = "<no name>" if link.name is None else link.name.decode("utf-8", "surrogateescape")
        lines.append(f"\t\t{name}[{humanize_bytes(link.tsize or 0)}] {CID.from_bytes(link.cid)}")
    if len(node.links) > 3:
        lines.append(f"\t\t({len(node.links)} total)")
    try:
        kind = decode_unixfs_data(data).type
    except DecodeError as exc:
        lines.append(f"\tnot interpretable as unixfs: {exc}")
    else:
        lines.append(f"\tUnixfs {_UNIXFS_TYPES.get(int(kind), str(int(kind)))}")
    return "".join(f"{x}\n" for x in lines)


def _cmd_roots(args: argparse.Namespace) -> int:
    with _payload(args.car) as payload:  # the header only: nothing after it is read
        for root in payload.header.roots:
            _out(str(root))
    return 0


# -- inspect -------------------------------------------------------------------------------


def _cmd_inspect(args: argparse.Namespace) -> int:
    with _source(args.car) as src, CarFile(src) as car:
        lines = [f"Version: {car.version}"]
        if car.v2_header is not None:
            h = car.v2_header
            lines += [
                f"Characteristics: {h.characteristics.hex()}",
                f"Data offset: {h.data_offset}",
                f"Data (payload) length: {h.data_size}",
                f"Index offset: {h.index_offset}",
            ]
            if h.index_offset:
                try:
                    # the codec varint only: the index runs to EOF (old code read it whole)
                    codec: int | None = decode_varint(next(car.iter_index_bytes(10), b""))[0]
                except DecodeError:
                    codec = None
                name = INDEX_CODEC_NAMES.get(codec, "unknown") if codec is not None else "unknown"
                lines.append(f"Index type: {name}")
        lines.append("Roots: " + ", ".join(str(r) for r in car.roots))
        root_set = {r.multihash for r in car.roots}
        seen_roots: set[bytes] = set()
        codecs: Counter[int] = Counter()
        hashes: Counter[int] = Counter()
        count = 0
        blk_min = cid_min = None
        blk_max = cid_max = blk_sum = cid_sum = 0
        sections: Iterator[tuple[bytes, int]]
        if args.full:
            car.verify_blocks()
        sections = ((h.cid, h.data_length) for h in car.iter_heads())
        for cid_bytes, dlen in sections:
            cid = CID.from_bytes(cid_bytes)
            count += 1
            codecs[cid.codec] += 1
            hashes[cid.hash_code] += 1
            if cid.multihash in root_set:
                seen_roots.add(cid.multihash)
            blk_min = dlen if blk_min is None else min(blk_min, dlen)
            cid_min = len(cid_bytes) if cid_min is None else min(cid_min, len(cid_bytes))
            blk_max = max(blk_max, dlen)
            cid_max = max(cid_max, len(cid_bytes))
            blk_sum += dlen
            cid_sum += len(cid_bytes)
        present = "Yes" if root_set and seen_roots == root_set else "No"
        lines.append(f"Root blocks present in data: {present}")
        lines.append(f"Block count: {count}")
        if count:
            lines.append(f"Min / average / max block length (bytes): {blk_min} / {blk_sum // count} / {blk_max}")
            lines.append(f"Min / average / max CID length (bytes): {cid_min} / {cid_sum // count} / {cid_max}")
        lines.append("Block count per codec:")
        lines += [f"\t{_codec_name(c)}: {n}" for c, n in sorted(codecs.items())]
        lines.append("CID count per multihash:")
        lines += [f"\t{_hash_name(c)}: {n}" for c, n in sorted(hashes.items())]
    _out("\n".join(lines))
    return 0


# -- verify --------------------------------------------------------------------------------


def _cmd_verify(args: argparse.Namespace) -> int:
    with _source(args.car) as src, CarFile(src) as car:
        if not car.roots:
            raise CarError("no roots")
        h = car.v2_header
        if h is not None and h.index_offset == 0 and h.data_end != car.file_size:
            raise CarError(f"no index, but {car.file_size - h.data_end} bytes follow the data payload")
        bar = _progress(args, car.payload_length, "verify")
        root_set = {r.multihash for r in car.roots}
        found: set[bytes] = set()

        def seen(head: SectionHead) -> None:  # the roots, looked for during the one walk
            cid = head.cid
            for mh in root_set:
                if cid.endswith(mh) and CID.from_bytes(cid).multihash == mh:
                    found.add(mh)

        n = car.verify_blocks(progress=bar.update if bar else None, seen=seen)
        if bar:
            bar.close()
        missing = root_set - found
        if missing:
            raise CarError(f"{len(missing)} root block(s) not present in the data")
        if car.has_index:
            index = car.read_index()
            if index is not None:
                car.verify_index(index)
    _ = n  # go-car's `car verify` prints nothing on success: the exit status is the answer
    return 0


# -- extract --------------------------------------------------------------------------------


def _path_text(parts: tuple[bytes, ...] | list[bytes]) -> str:
    """``/a/b`` for path components (``/`` for the root)."""
    return "/" + "/".join(p.decode("utf-8", "surrogateescape") for p in parts)


def _kind(node: UnixFSNode) -> str:
    """file, directory, symlink or metadata; a block of another codec is an error."""
    if node.kind == "other":
        if node.data is None:
            raise UnixFSError(f"{CID.from_bytes(node.cid)} is not UnixFS "
                              f"(codec 0x{CID.from_bytes(node.cid).codec:x})")
        return "metadata"
    return node.kind


def _safe_name(name: str, where: str) -> str:
    # a backslash is an ordinary character on POSIX (go-car extracts `back\slash` as one name)
    if (os.sep != "/" and "\\" in name) or not is_plain_entry_name(name.encode("utf-8", "surrogateescape")):
        raise UnsafePathError(f"refusing to extract unsafe entry name {name!r} under {where or '/'}")
    return name


def _ensure_dir(base: str, rel_parts: list[str]) -> str:
    """Create ``base/rel_parts`` one component at a time, never through a symlink."""
    path = base
    for part in rel_parts:
        path = os.path.join(path, part)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path)
            continue
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise UnsafePathError(f"refusing to extract through {path}: it exists and is not a directory")
    return path


def _write_file(directory: str, name: str, chunks: Iterator[bytes]) -> None:
    target = os.path.join(directory, name)
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISDIR(os.lstat(target).st_mode):
            raise UnsafePathError(f"refusing to overwrite directory {target} with a file")
    with atomic_output(target) as f:  # replaces a symlink itself, never follows it; 0666 & ~umask like go-car
        for chunk in chunks:
            f.write(chunk)


def _write_symlink(directory: str, name: str, target: bytes) -> None:
    """Recreate a UnixFS symlink (target verbatim, as go-car and ``ipfs get`` do) under a temporary
    name, then rename it over ``name``. It is never followed: directories are created through
    :func:`_ensure_dir` (which refuses a symlink on the way) and files replace, not write through."""
    if not target or b"\0" in target:  # as `get`: the kernel refuses an empty target (ENOENT)
        raise UnsafePathError(f"symlink {name!r} has an empty or NUL-containing target")
    path = os.path.join(directory, name)
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISDIR(os.lstat(path).st_mode):
            raise UnsafePathError(f"refusing to overwrite directory {path} with a symlink")
    for attempt in range(100):
        temp = os.path.join(directory, f".{name[:64]}.pyipld-{os.getpid()}-{attempt}.tmp")
        try:
            os.symlink(target, os.fsencode(temp))
        except FileExistsError:
            continue
        try:
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
        return
    raise UnsafePathError(f"could not create a temporary name for symlink {path}")  # pragma: no cover


def _cmd_extract(args: argparse.Namespace) -> int:
    _Limits(args.max_entries, args.max_depth)  # a bad limit fails before DIR is made
    paths = list(args.paths)
    if args.file:
        car_path = args.file
        if args.car:
            paths.insert(0, args.car)  # with -f, every positional is a path filter
    elif args.car:
        car_path = args.car
    else:
        raise ConfigError("extract needs a CAR file (-f FILE or a positional argument)")
    out_dir = None if args.output == "-" else os.path.abspath(args.output)  # go-car: -o - writes files to stdout
    filters = ["/" + p.strip("/") for p in paths]
    with contextlib.nullcontext() if out_dir is None else made_directory(out_dir):  # a failure removes it if empty
        extracted = _extract_roots(args, car_path, out_dir, filters)
    print(f"extracted {extracted} file(s)", file=sys.stderr)
    return 0


def _extract_roots(args: argparse.Namespace, car_path: str, out_dir: str | None, filters: list[str]) -> int:
    """Files extracted from every root of the CAR; none is an error."""
    extracted = 0
    with _source(car_path) as src, CarBlockstore(src, verify=True) as bs:
        for root in bs.roots:
            try:
                root_node = load_node(bs, root.bytes)
            except NotFoundError:
                print(f"data for entry not found: {root} (skipping...)", file=sys.stderr)
                continue
            if _kind(root_node) == "file":
                if not filters:
                    if out_dir is None:
                        _to_stdout(_file_bytes(bs, root.bytes))
                    else:
                        _write_file(out_dir, _safe_name(str(root), ""), _file_bytes(bs, root.bytes))
                    extracted += 1
                continue
            extracted += _extract_tree(bs, root.bytes, out_dir, filters, _Limits(args.max_entries, args.max_depth),
                                       verbose=args.verbose)
    if not extracted:
        raise NotFoundError("no files extracted")
    return extracted


def _wanted(path: str, filters: list[str]) -> tuple[bool, bool]:
    """``(extract this entry, descend into it)``."""
    if not filters:
        return True, True
    for f in filters:
        if path == f or path.startswith(f + "/"):
            return True, True
        if f.startswith(path + "/") or path == "":
            return False, True
    return False, False


def _file_bytes(bs: CarBlockstore, cid: bytes) -> Iterator[bytes]:
    # the CarBlockstore already hash-checks every block it returns
    return UnixFSReader(bs, cid, verify=False).iter_range()


class _Limits:
    """Entries and nesting depth one ``car extract`` (or ``car ls --unixfs``) accepts: a DAG may
    link a sub-tree many times."""

    def __init__(self, max_entries: int, max_depth: int, verb: str = "extract") -> None:
        for flag, value in (("--max-entries", max_entries), ("--max-depth", max_depth)):
            if value < 0:  # -1 failed later as "more than max_entries=-1 entries"
                raise ConfigError(f"{flag} must be 0 or more, got {value}")
        self.max_entries, self.max_depth, self.entries, self.verb = max_entries, max_depth, 0, verb

    def check(self, parts: list[str]) -> None:
        self.count()
        self.enter(len(parts) - 1)

    def count(self) -> None:
        """One more entry; past ``max_entries`` (0: no limit) an error."""
        self.entries += 1
        if self.max_entries and self.entries > self.max_entries:
            raise UnixFSError(f"more than max_entries={self.max_entries} entries to {self.verb} "
                              "(a larger limit: --max-entries N, 0 for none)")

    def enter(self, depth: int) -> None:
        """A directory entered below ``depth`` open ones; at ``max_depth`` an error."""
        if depth >= self.max_depth:
            raise UnixFSError(f"directories nested deeper than max_depth={self.max_depth} "
                              "(a larger limit: --max-depth N)")


def _to_stdout(chunks: Iterator[bytes]) -> None:
    out = sys.stdout.buffer
    for chunk in chunks:
        out.write(chunk)
    out.flush()


def _extract_tree(bs: CarBlockstore, root: bytes, out_dir: str | None, filters: list[str],
                  limits: _Limits, *,
                  verbose: bool = False) -> int:
    """go-car's extract walk: path filters, and entries whose blocks are absent skipped with a message."""
    count = 0
    stack: list[tuple[list[str], bytes]] = [([], root)]
    while stack:
        parts, cid = stack.pop()
        if parts:
            limits.check(parts)
        path = "/" + "/".join(parts) if parts else ""
        take, descend = _wanted(path, filters)
        if not take and not descend:
            continue
        try:
            node = load_node(bs, cid)
        except NotFoundError:
            print(f"data for entry not found: {path or '/'} (skipping...)", file=sys.stderr)
            continue
        kind = _kind(node)
        if kind == "directory":
            missing: list[bytes] = []
            children = list(iter_directory(bs, node, missing.append))
            if missing and take:  # go-car's text; a path looked up through the shard reports nothing
                print(f"data for entry not found for {len(missing)} unknown sharded entries (skipped...)",
                      file=sys.stderr)
            names: set[bytes] = set()
            for entry in children:
                if entry.name in names:  # go-car lets the last one win; refuse, as `get` does
                    raise UnixFSError(f"duplicate entry name {entry.name!r} in directory {path or '/'}")
                names.add(entry.name)
            for entry in reversed(children):
                name = entry.name.decode("utf-8", "surrogateescape")
                stack.append((parts + [_safe_name(name, path)], entry.cid.bytes))
            if take and out_dir is not None:
                _ensure_dir(out_dir, parts)
        elif kind == "file" and take and out_dir is None:
            _to_stdout(_file_bytes(bs, cid))  # go-car extractFile with no output name
            count += 1
        elif kind == "file" and take:
            assert out_dir is not None
            directory = _ensure_dir(out_dir, parts[:-1])
            try:
                _write_file(directory, parts[-1], _file_bytes(bs, cid))
            except NotFoundError:
                print(f"data for entry not found: {path} (skipping...)", file=sys.stderr)
                continue
            count += 1
            if verbose:  # go-car -v: each written entry's output path on stderr
                print(os.path.join(directory, parts[-1]), file=sys.stderr)
        elif kind == "symlink" and take:
            if out_dir is None:
                raise ConfigError("cannot extract a symlink to stdout")
            directory = _ensure_dir(out_dir, parts[:-1])
            assert node.data is not None
            _write_symlink(directory, parts[-1], node.data.data or b"")
            count += 1  # go-car counts a symlink as an extracted file
            if verbose:
                print(os.path.join(directory, parts[-1]), file=sys.stderr)
    return count


# -- index / detach-index -----------------------------------------------------------------------


def _cmd_index(args: argparse.Namespace) -> int:
    index_codec = args.codec or "car-multihash-index-sorted"  # None: not given (go-car's c.IsSet)
    positional = list(args.args)
    if positional and positional[0] == "create":
        if len(positional) != 3:
            raise ConfigError("usage: car index create IN.car OUT.idx")
        src, dst = positional[1], positional[2]
        codec = index_codec_by_name(index_codec) if index_codec != "none" else None
        if codec is None:
            raise ConfigError("index create needs an index codec")
        with CarFile(src) as car:
            records = [(h.cid, h.offset) for h in car.iter_heads()]
        with user_output(dst) as out:
            out.write(encode_index(build_index(records, codec)))
        return 0
    if len(positional) != 2:
        raise ConfigError("usage: car index [--codec C] [--version 1|2] IN.car OUT.car")
    src, dst = positional
    with CarFile(src) as car:
        version = car.version
        payload_offset, payload_length = car.payload_offset, car.payload_length
        f = car._f
        # go-car cmd/car/index.go, after opening the CAR: these checks, in this order
        if args.version == 1 and args.codec not in (None, "none"):
            raise ConfigError("'none' is the only supported codec for a v1 car")
        if args.version not in (1, 2):
            raise ConfigError(f"invalid CAR version {args.version}")
        if args.version == 1:
            with user_output(dst) as out:
                f.seek(payload_offset)
                _copy(f, out, payload_length)
            return 0
        codec = None if index_codec == "none" else index_codec_by_name(index_codec)
        with user_output(dst) as out:
            if version == 1:
                f.seek(0)
                wrap_v1(f, out, index_codec=codec, include_identity=True)
            else:
                with tempfile.TemporaryFile() as v1:
                    f.seek(payload_offset)
                    _copy(f, v1, payload_length)
                    v1.seek(0)
                    wrap_v1(v1, out, index_codec=codec, include_identity=True)
    return 0


def _copy(src: IO[bytes], dst: IO[bytes], length: int) -> None:
    remaining = length
    while remaining:
        chunk = src.read(min(remaining, 1 << 20))
        if not chunk:
            raise CarError("unexpected EOF while copying the payload")
        dst.write(chunk)
        remaining -= len(chunk)


def _cmd_detach_index(args: argparse.Namespace) -> int:
    positional = list(args.args)
    if positional and positional[0] == "list":
        if len(positional) != 2:
            raise ConfigError("usage: car detach-index list IDX")
        with open(positional[1], "rb") as f:
            records: Iterable[IndexRecord] = iter_index_records(f)  # a bounded chunk at a time
            st = os.fstat(f.fileno())
            if stat.S_ISREG(st.st_mode):
                # a file: its structure is checked before any line is printed, as go-car's
                # index.ReadFrom; buckets out of order (go-car writes them sorted) are read whole
                ordered = scan_index(f, st.st_size)
                f.seek(0)
                if not ordered:
                    records = decode_index(f.read())
            # else an endless input (old code: read /dev/zero whole) ends at its first bad field
            for rec in records:
                key = rec.digest if rec.code is None else encode_multihash(rec.code, rec.digest)
                _out(f"{key.hex()} {rec.offset}")
        return 0
    if len(positional) != 2:
        raise ConfigError("usage: car detach-index IN.car OUT.idx")
    with CarFile(positional[0]) as car:
        if not car.has_index:
            raise CarIndexError("no index present")
        with user_output(positional[1]) as out:  # `-`: stdout
            for chunk in car.iter_index_bytes():  # go-car io.Copy-es it (old code read it whole)
                out.write(chunk)
    return 0


# -- cat / get-block ------------------------------------------------------------------------


def _split_target(bs: CarBlockstore, target: str) -> bytes:
    text = target.removeprefix("/ipfs/")
    head, _, rest = text.partition("/")
    if head:
        root = CID.decode(head).bytes
    else:
        if not bs.roots:
            raise NotFoundError("the CAR has no root to resolve a path from")
        root = bs.roots[0].bytes
    return resolve_path(bs, f"{CID.from_bytes(root)}/{rest}").node.cid if rest else root


def _cmd_cat(args: argparse.Namespace) -> int:
    if args.offset < 0 or (args.length is not None and args.length < 0):
        raise ConfigError("--offset and --length must not be negative")
    with _source(args.car) as src, CarBlockstore(src, verify=True) as bs:
        cid = _split_target(bs, args.target)
        out = sys.stdout.buffer
        for chunk in UnixFSReader(bs, cid, verify=False).iter_range(args.offset, args.length):
            out.write(chunk)
        out.flush()
    return 0


def _cmd_get_block(args: argparse.Namespace) -> int:
    with _source(args.car) as src, CarBlockstore(src, verify=True) as bs:
        data = bs.get(CID.decode(args.cid))
    with user_output(args.out or "-") as out:  # `-`: stdout
        out.write(data)
    return 0


def _cmd_get_dag(args: argparse.Namespace) -> int:
    from ..car.export import export_dag

    if args.selector is not None:
        raise ConfigError("--selector is not supported: pyipld's get-dag exports the whole DAG (go-car's default "
                          "selector, explore-all)")
    if args.version not in (1, 2):
        raise ConfigError(f"invalid CAR version {args.version}")
    if args.out is None:  # go-car: `car get-dag CAR OUT` takes the CAR's only root
        target, out = None, args.cid
    else:
        target, out = args.cid, args.out
    with _source(args.car) as src, CarBlockstore(src, verify=True) as bs:
        if target is None:
            if len(bs.roots) != 1:
                raise ConfigError("car file has does not have exactly one root, dag root must be specified explicitly")
            root = bs.roots[0].bytes
        else:
            root = _split_target(bs, target)
        if not bs.has(root):  # go-car loads the root before the walk: a missing root is an error either way
            raise NotFoundError(f"block was not found locally (offline): ipld: could not find {CID.from_bytes(root)}")
        with open_car_sink(out, args.version, [CID.from_bytes(root)]) as sink:
            # go-car: a block missing from the CAR is skipped unless --strict
            export_dag(bs, root, sink, local_only=not args.strict)
    return 0  # go-car's get-dag.txt: `! stderr .`


def _cmd_filter(args: argparse.Namespace) -> int:
    from .car_input import iter_text_lines

    cids: set[CID] = set()
    # go-car (cmd/car/filter.go parseCIDS) reads a line at a time; so does this, each line capped
    # (old code read the whole input first: `--cid-file /dev/zero` grew until memory ran out)
    with open(args.cid_file, "rb") if args.cid_file else contextlib.nullcontext(sys.stdin.buffer) as f:
        for _, text in iter_text_lines(f, args.cid_file or "stdin", "CID list"):
            for token in text.split():
                cid = CID.decode(token)
                if cid in cids:  # go-car warns and goes on
                    print(f"duplicate cid: {cid}", file=sys.stderr)
                cids.add(cid)
    wanted = {c.multihash for c in cids}
    # go-car prints this on stdout; when the CAR itself goes to stdout (`-`, pyipld's), on stderr
    print(f"filtering {'out' if args.inverse else 'to'} {len(cids)} cids", flush=True,
          file=text_stream(args.out))
    version = args.version
    if version not in (1, 2):
        raise ConfigError(f"invalid CAR version {version}")
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(_source(args.car))
        car = stack.enter_context(CarFile(src))
        kept_roots = [r for r in car.roots if (r.multihash in wanted) != args.inverse]
        existing: CarFile | None = None
        if args.append:  # go-car lib.FilterCar: the output's roots and blocks stay, the matches are added
            if version != 2:
                raise ConfigError("can only append to version 2 car files")
            existing = stack.enter_context(CarFile(args.out))
            if existing.version != 2:
                raise ConfigError("can only append to version 2 car files")
            kept_roots = list(existing.roots)
        if not kept_roots:
            print("warning: no roots defined after filtering", file=sys.stderr)
        with open_car_sink(args.out, version, kept_roots) as sink:  # a temp name: `existing` is still readable
            seen: set[bytes] = set()
            sections = car.iter_sections(verify=True)
            for section in existing.iter_sections(verify=True) if existing is not None else ():
                seen.add(section.cid)
                sink.put(section.cid, section.data)
            for section in sections:
                if (CID.from_bytes(section.cid).multihash in wanted) != args.inverse and section.cid not in seen:
                    seen.add(section.cid)
                    sink.put(section.cid, section.data)
    return 0


# -- registration ---------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("car", help="create, inspect and read CAR files (go-car's `car`)",
                       description="Work with CAR (Content Addressable aRchive) files, v1 and v2.")
    cs = p.add_subparsers(dest="car_command", metavar="SUBCOMMAND", required=True)

    def progress_flags(q: argparse.ArgumentParser) -> None:
        q.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="show progress on stderr (default: when stderr is a terminal)")
        q.add_argument("--no-progress", dest="progress", action="store_false")

    def limit_flags(q: argparse.ArgumentParser) -> None:  # pyipld's own: a DAG may repeat a sub-tree
        q.add_argument("--max-entries", type=int, default=DEFAULT_MAX_ENTRIES, metavar="N",
                       help=f"refuse DAGs with more than N entries (default {DEFAULT_MAX_ENTRIES}, 0 = no limit)")
        q.add_argument("--max-depth", type=int, default=DEFAULT_MAX_DEPTH, metavar="N",
                       help=f"refuse directories nested deeper than N (default {DEFAULT_MAX_DEPTH})")

    q = cs.add_parser("create", aliases=["c"], help="import files (and directories) into a new CAR",
                      description="Import each PATH like `ipfs add [-r]` into one CAR; each PATH is a root "
                                  "(or, with --wrap, one directory holding them all is the root).")
    q.add_argument("-f", "--file", "-o", "--output", dest="file", metavar="OUT.car", help="output CAR (- for stdout)")
    q.add_argument("--version", type=int, default=2, help="CAR version to write (default 2, like go-car)")
    q.add_argument("--no-wrap", action="store_true",
                   help="do not wrap the input in a directory (one input only; it is the root)")
    q.add_argument("-w", "--wrap", action="store_true", help="the default (kept for older scripts)")
    q.add_argument("-j", "--jobs", type=int, default=None, help="leaf-hashing threads")
    q.add_argument("paths", nargs="*", metavar="PATH")
    from .add import add_directory_arguments, add_import_arguments

    add_import_arguments(q)
    add_directory_arguments(q)
    progress_flags(q)
    q.set_defaults(func=_cmd_create)

    q = cs.add_parser("ls", aliases=["list", "l"], help="list the CIDs of the blocks (or UnixFS paths)")
    q.add_argument("-v", "--verbose", action="store_true",
                   help="codec, links and UnixFS type of each block (go-car's format)")
    q.add_argument("--unixfs", action="store_true", help="list the UnixFS paths under the roots")
    q.add_argument("--unixfs-blocks", action="store_true", help="like --unixfs, each path after its CID")
    limit_flags(q)
    q.add_argument("car", nargs="?", default="-", metavar="CAR", help="the CAR (default: stdin)")
    q.add_argument("out", nargs="?", default=None, metavar="OUT", help="write the listing here (default stdout)")
    q.set_defaults(func=_cmd_ls)

    q = cs.add_parser("roots", aliases=["root"], help="print the root CIDs")
    q.add_argument("car", metavar="CAR")
    q.set_defaults(func=_cmd_roots)

    q = cs.add_parser("inspect", help="header, index and block statistics")
    q.add_argument("--full", action="store_true", help="also hash-verify every block")
    q.add_argument("car", nargs="?", default="-", metavar="CAR", help="the CAR (default: stdin, as go-car)")
    q.set_defaults(func=_cmd_inspect)

    q = cs.add_parser("verify", aliases=["v"], help="check header, hashes, roots and index")
    q.add_argument("car", metavar="CAR")
    progress_flags(q)
    q.set_defaults(func=_cmd_verify)

    q = cs.add_parser("extract", aliases=["x"], help="write the UnixFS files of a CAR to a directory")
    q.add_argument("-f", "--file", "-i", "--input", dest="file", metavar="CAR",
                   help="the CAR file (- for stdin); go-car's aliases -i/--input too")
    q.add_argument("-o", "--output", default=".", metavar="DIR",
                   help="output directory (default .); - writes the files' bytes to stdout")
    q.add_argument("-v", "--verbose", action="store_true", help="print each extracted path on stderr")
    q.add_argument("car", nargs="?", metavar="CAR")
    q.add_argument("paths", nargs="*", metavar="PATH", help="only these paths")
    limit_flags(q)
    q.set_defaults(func=_cmd_extract)

    q = cs.add_parser("index", aliases=["i"], help="write a CARv2 with an index, or a detached index")
    q.add_argument("-c", "--codec", default=None,
                   help="car-multihash-index-sorted (default) | car-index-sorted | none")
    q.add_argument("--version", type=int, default=2, help="2: CARv2 with index; 1: extract the CARv1")
    q.add_argument("args", nargs="+", metavar="ARG", help="IN.car OUT.car, or: create IN.car OUT.idx")
    q.set_defaults(func=_cmd_index)

    q = cs.add_parser("detach-index", help="copy a CARv2's index to a file (or: list IDX)")
    q.add_argument("args", nargs="+", metavar="ARG", help="IN.car OUT.idx, or: list IDX")
    q.set_defaults(func=_cmd_detach_index)

    q = cs.add_parser("cat", help="print a UnixFS file from a CAR")
    q.add_argument("car", metavar="CAR")
    q.add_argument("target", metavar="CID[/PATH]", help="a CID, CID/path, or /path from the first root")
    q.add_argument("--offset", type=int, default=0, help="first byte to print")
    q.add_argument("--length", type=int, default=None, help="number of bytes to print")
    q.set_defaults(func=_cmd_cat)

    q = cs.add_parser("get-dag", aliases=["gd"], help="write the DAG under a CID as a CAR, in `ipfs dag export` order")
    q.add_argument("car", metavar="CAR")
    q.add_argument("cid", metavar="[CID[/PATH]]", help="the DAG's root (default: the CAR's only root)")
    q.add_argument("out", nargs="?", default=None, metavar="OUT.car", help="output CAR (- for stdout)")
    q.add_argument("--version", type=int, default=2, help="CAR version to write (default 2, like go-car)")
    q.add_argument("--strict", action="store_true", help="fail on a block missing from the CAR (default: skip it)")
    q.add_argument("--local-only", action="store_true", help="skip missing blocks (the default; kept for older scripts)")
    q.add_argument("-s", "--selector", default=None, metavar="JSON",
                   help="go-car's IPLD selector: refused (the whole DAG is exported)")
    q.set_defaults(func=_cmd_get_dag)

    q = cs.add_parser("filter", aliases=["f"], help="keep (or with --inverse drop) the listed CIDs")
    q.add_argument("car", metavar="IN.car")
    q.add_argument("out", metavar="OUT.car", help="output CAR (- for stdout)")
    q.add_argument("--cid-file", metavar="FILE", help="CIDs, one per line (default: stdin)")
    q.add_argument("--inverse", action="store_true", help="drop the listed CIDs instead of keeping them")
    q.add_argument("--version", type=int, default=2, help="output version (default 2, like go-car)")
    q.add_argument("--append", action="store_true",
                   help="add the matching blocks to an existing CARv2 OUT (its roots are kept)")
    q.set_defaults(func=_cmd_filter)

    q = cs.add_parser("get-block", aliases=["gb"], help="print one block's raw bytes")
    q.add_argument("car", metavar="CAR")
    q.add_argument("cid", metavar="CID")
    q.add_argument("out", nargs="?", metavar="OUT", help="output file (default stdout)")
    q.set_defaults(func=_cmd_get_block)


    from .car_pack import register_pack  # deal packing lives in its own module

    register_pack(cs)
