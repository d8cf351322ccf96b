"""Deal packing: a dataset → numbered CARv1 files that each fit a Filecoin piece, plus a manifest.

Theory of operation:

* Inputs are walked in a fixed order (arguments in order; directories depth-first,
  entries sorted by name bytes; symlinks and special files are skipped and listed).
  Each file is imported on its own (kubo's ``ipfs add`` parameters) into a
  temporary on-disk spool (one file + an in-memory CID → offset map), so memory
  stays bounded whatever the file size.
* A file's DAG becomes *items*: the whole DAG when it fits an empty CAR, otherwise
  the maximal sub-trees that fit, found depth-first, in file order, followed by one
  *spine* item holding the interior nodes above them (so the file's root is
  retrievable too). Whether a node is split depends only on the capacity, never on
  what else is in a CAR, so the item sequence is a pure function of the input.
* Items are placed greedily in order: into the current CAR if its planned size
  stays within the capacity (``target × 127/128``, the unpadded piece size),
  otherwise the current CAR is written and a new one started. Planned sizes count
  every section, header bytes are bounded from above: a CAR never exceeds the
  capacity. Each whole item is a complete DAG; the spine item adds blocks only.
* Each CAR has one root: a UnixFS directory of what it carries, laid out like the
  input paths — whole files under their relative paths, the sub-trees of a split
  file as ``NAME.part-OFFSET`` (15-digit byte offset, so sorted names concatenate
  back to the file), and the empty directories of the input (each in the CAR of
  the file that follows it in the walk, or of the last file). ``pyipld car extract``
  of one CAR therefore gives a usable tree. Its blocks (built with the pack's
  parameters: basic or HAMT directories) are reserved for when items are placed,
  with an upper bound per item, so a CAR still never exceeds the capacity. The
  spine item's blocks are carried but not linked from the directory.
* A CAR is written to a temporary name with a CommP side-tap, renamed, then the
  manifest (``manifest.json``) is rewritten atomically with the CAR, its piece CID
  and sizes, every file finished so far, and a resume point (next file, next item).
  A re-run with the same inputs and parameters skips finished CARs (and does not
  re-import files that are wholly in them); anything else in OUTDIR is refused.

Each file is imported on its own (its root is what ``ipfs add FILE`` prints; the
manifest keeps the relative paths); only the per-CAR directories are new blocks.
See docs/commp.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from .._atomic import made_directory
from .._io import read_plain_file
from .._varint import varint_size
from ..car.sink import atomic_output
from ..car.v1 import CarV1Writer
from ..cid import CID, DAG_PB, RAW
from ..dagpb import decode_pbnode
from ..errors import ConfigError, ManifestError, NotFoundError
from ..unixfs.data import decode_unixfs_data
from ..unixfs.directory import build_directory, is_plain_entry_name
from ..unixfs.importer import import_file
from ..unixfs.params import ImportParams, import_params
from .commp import CommP, CommPWriter, check_piece_size, unpadded_piece_size

__all__ = ["MANIFEST_FORMAT", "MANIFEST_NAME", "PackResult", "car_name", "iter_file_content", "pack", "reassemble",
           "write_car"]

MANIFEST_NAME: Final = "manifest.json"
MANIFEST_FORMAT: Final = "pyipld-pack/2"  # /2: one directory root per CAR, empty directories
_READABLE_FORMATS: Final = ("pyipld-pack/1", MANIFEST_FORMAT)
_TMP_DIR: Final = ".pack-tmp"
# Upper bound of a CARv1 header over n roots: varint(len) ≤ 9, map/keys/version ≈ 20,
# array head ≤ 9, per root: tag 42 (2) + byte-string head (≤ 3) + 0x00 prefix + CID.
_HEADER_FIXED: Final = 40
_HEADER_PER_ROOT: Final = 6
# Upper bound of the per-CAR directory blocks, per path component of an entry: the link
# (name, CID ≤ 70, Tsize, framing) and, when that directory is new in the CAR or a HAMT,
# its node / shard node (section head, UnixFS Data with a ≤ 128-byte bitfield, CID).
_DIR_PER_COMPONENT: Final = 400
_DIR_FIXED: Final = 512  # the root directory node and its header root
_PART_SUFFIX: Final = ".part-{:015d}"
_IDX_HEAD: Final = struct.Struct("<HQQ")  # spool index record: CID length, offset, block length


def car_name(index: int) -> str:
    """File name of the ``index``-th CAR."""
    return f"pack-{index:05d}.car"


def _section_size(cid: bytes, length: int) -> int:
    return varint_size(len(cid) + length) + len(cid) + length


class _Spool:
    """Blocks of one imported file in a temporary file: put(), get(), section sizes."""

    def __init__(self, directory: Path) -> None:
        fd, name = tempfile.mkstemp(dir=directory, prefix="spool-")
        self.path = name
        self._f: IO[bytes] = os.fdopen(fd, "w+b")
        self._index: dict[bytes, tuple[int, int]] = {}
        self._end = 0
        self._index_file: str | None = name + ".idx"

    def put(self, cid: bytes, data: bytes) -> None:
        if cid in self._index:
            return
        self._f.write(data)
        self._index[cid] = (self._end, len(data))
        self._end += len(data)

    def get(self, cid: bytes) -> bytes:
        try:
            off, n = self._index[cid]
        except KeyError:
            raise NotFoundError(f"block {CID.from_bytes(cid)} is not in the pack spool") from None
        self._f.flush()
        data = os.pread(self._f.fileno(), n, off)
        if len(data) != n:
            raise OSError(f"short read from pack spool {self.path}")
        return data

    def length(self, cid: bytes) -> int:
        return self._index[cid][1]

    def close(self) -> None:
        self._f.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        if self._index_file is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._index_file)

    def save_index(self) -> str:
        """Flush the spool and write its CID → (offset, length) map beside it (``PATH.idx``);
        :meth:`open` reads both back in another process (distributed pack)."""
        self._f.flush()
        name = self.path + ".idx"
        with open(name, "wb") as f:
            f.writelines(_IDX_HEAD.pack(len(cid), off, n) + cid for cid, (off, n) in self._index.items())
        return name

    @classmethod
    def open(cls, path: str) -> _Spool:
        """A spool written (and :meth:`save_index`-ed) by another process, opened read-only."""
        self = cls.__new__(cls)
        self.path = path
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._index = {}
        self._index_file = None
        with open(path + ".idx", "rb") as f:
            data = f.read()
        at = 0
        while at < len(data):
            n, off, length = _IDX_HEAD.unpack_from(data, at)
            at += _IDX_HEAD.size
            self._index[data[at : at + n]] = (off, length)
            at += n
        self._end = os.fstat(self._f.fileno()).st_size
        return self

    def release(self) -> None:
        """Close without deleting (the spool belongs to someone else)."""
        self._f.close()


def _children(cid: bytes, data: bytes) -> list[bytes]:
    codec = CID.from_bytes(cid).codec
    if codec == RAW:
        return []
    if codec != DAG_PB:
        raise ConfigError(f"cannot pack block with codec 0x{codec:x}")
    return [link.cid for link in decode_pbnode(data).links]


def _is_identity(cid: bytes) -> bool:
    return CID.from_bytes(cid).hash_code == 0


class _BlockList:
    """A BlockSink that keeps its blocks in put order, each once."""

    def __init__(self) -> None:
        self.blocks: list[tuple[bytes, bytes]] = []
        self._seen: set[bytes] = set()

    def put(self, cid: bytes, data: bytes) -> None:
        if cid not in self._seen:
            self._seen.add(cid)
            self.blocks.append((cid, data))


@dataclass(slots=True)
class _Item:
    file: int
    index: int
    root: bytes | None  # None for a spine item
    size: int  # planned CAR bytes of its sections
    blocks: list[bytes] | None = None  # spine: the blocks; whole item: DFS from root
    offset: int = 0
    length: int = 0
    path: str = ""  # the file's relative path (set when placed)


class _FileDag:
    """One imported file: its spool, sizes per node, and its item decomposition."""

    def __init__(self, spool: _Spool, root: bytes) -> None:
        self.spool = spool
        self.root = root
        self._sizes: dict[bytes, int] = {}
        self._tsizes: dict[bytes, int] = {}
        self._content: dict[bytes, int] = {}

    def links(self, cid: bytes) -> list[bytes]:
        if _is_identity(cid):
            return []
        return _children(cid, self.spool.get(cid))

    def size(self, cid: bytes) -> int:
        """Planned CAR bytes of the sub-DAG (duplicates counted: an upper bound)."""
        if cid in self._sizes:
            return self._sizes[cid]
        if _is_identity(cid):
            return 0
        children = self.links(cid)
        length = self.spool.length(cid)
        total = _section_size(cid, length) + sum(self.size(c) for c in children)
        self._tsizes[cid] = length + sum(self._tsizes.get(c, 0) for c in children)
        self._sizes[cid] = total
        return total

    def tsize(self, cid: bytes) -> int:
        """Cumulative block bytes of the sub-DAG (the Tsize of a link to it); after :meth:`size`."""
        if cid not in self._tsizes:
            self.size(cid)
        return self._tsizes.get(cid, 0)

    def content_length(self, cid: bytes) -> int:
        """File bytes below ``cid``."""
        data = self.spool.get(cid) if not _is_identity(cid) else CID.from_bytes(cid).digest
        if CID.from_bytes(cid).codec == RAW:
            return len(data)
        node = decode_pbnode(data)
        fs = decode_unixfs_data(node.data or b"")
        if fs.filesize is not None:
            return fs.filesize
        return len(fs.data or b"") + sum(self.content_length(link.cid) for link in node.links)

    def items(self, file: int, capacity: int) -> list[_Item]:
        """Whole DAG if it fits an empty CAR, else maximal fitting sub-trees + a spine item."""
        one_root = capacity - _HEADER_FIXED - _HEADER_PER_ROOT - len(self.root)
        items: list[_Item] = []
        spine: list[bytes] = []
        offset = 0

        def visit(cid: bytes) -> None:
            nonlocal offset
            room = capacity - _HEADER_FIXED - _HEADER_PER_ROOT - len(cid)
            if self.size(cid) <= room:
                length = self.content_length(cid)
                items.append(_Item(file, len(items), cid, self.size(cid), offset=offset, length=length))
                offset += length
                return
            children = self.links(cid)
            if not children:
                # the room, not the capacity: a tiny target gave "does not fit a -809-byte CAR"
                raise ConfigError(f"block {CID.from_bytes(cid)} ({self.size(cid)} bytes) does not fit a CAR "
                                  f"with room for {max(room, 0)} bytes of blocks: use a larger --target-size")
            node = decode_pbnode(self.spool.get(cid))
            if node.data and decode_unixfs_data(node.data).data:
                raise ConfigError(f"cannot split {CID.from_bytes(cid)}: an interior node carries file data")
            spine.append(cid)
            for child in children:
                visit(child)

        if self.size(self.root) <= one_root:
            return [_Item(file, 0, self.root, self.size(self.root), offset=0,
                          length=self.content_length(self.root))]
        visit(self.root)
        spine_size = sum(_section_size(c, self.spool.length(c)) for c in spine)
        if spine_size > capacity - _HEADER_FIXED:
            raise ConfigError(f"the interior nodes of a file need {spine_size} bytes: use a larger --target-size")
        items.append(_Item(file, len(items), None, spine_size, blocks=spine))
        return items

    def iter_blocks(self, item: _Item) -> Iterator[tuple[bytes, bytes]]:
        """Blocks of an item in pre-order depth-first order (``dag export`` order)."""
        if item.blocks is not None:
            for cid in item.blocks:
                yield cid, self.spool.get(cid)
            return
        assert item.root is not None
        stack = [item.root]
        while stack:
            cid = stack.pop()
            if _is_identity(cid):
                continue
            data = self.spool.get(cid)
            yield cid, data
            stack.extend(reversed(_children(cid, data)))


def _dir_id(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of a directory (symlinks not followed), else None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


@dataclass(frozen=True, slots=True)
class _Input:
    path: str  # absolute path on disk
    name: str  # relative path recorded in the manifest ('/'-separated)
    size: int
    mtime_ns: int


def _walk(paths: Sequence[str | os.PathLike[str]],
          outdir: str | os.PathLike[str] | None = None) -> tuple[list[_Input], list[str], list[tuple[str, int]]]:
    """Files in packing order, skipped names, and the directories that hold no packed file
    (each with the index of the file whose CAR will carry it). ``outdir`` inside an input is
    left out: packed, it was an empty directory the first time and its own CARs the next, so
    re-running the same command failed ("another inputs") and could not resume."""
    out_id = _dir_id(outdir) if outdir is not None else None
    inputs: list[_Input] = []
    skipped: list[str] = []
    empty: list[tuple[str, int]] = []
    seen: set[str] = set()

    def add(path: str, name: str) -> None:
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode):
            if name in seen:
                raise ConfigError(f"two inputs map to the same name {name!r}")
            seen.add(name)
            inputs.append(_Input(os.path.abspath(path), name, st.st_size, st.st_mtime_ns))
        elif stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) == out_id:
                return
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
            before = len(inputs)
            for entry in entries:
                add(entry.path, f"{name}/{entry.name}" if name else entry.name)
            if len(inputs) == before and not any(e[0].startswith(name + "/") for e in empty):
                empty.append((name, before))
        else:
            skipped.append(name)

    for p in paths:
        path = os.fspath(p)
        if not os.path.lexists(path):
            raise FileNotFoundError(2, "no such file or directory", path)
        if out_id is not None and _dir_id(path) == out_id:
            raise ConfigError(f"the output directory {path} cannot be an input too")
        add(path, os.path.basename(os.path.normpath(path)))
    last = max(len(inputs) - 1, 0)
    return inputs, skipped, [(name, min(at, last)) for name, at in empty]


@dataclass(slots=True)
class PackResult:
    """What :func:`pack` did."""

    outdir: str
    manifest: dict[str, Any]
    cars_written: int
    cars_skipped: int
    files_imported: int = 0
    bytes_imported: int = field(default=0)


def _params_dict(params: ImportParams) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(params).items()}


def _write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    with atomic_output(path) as f:
        f.write(json.dumps(doc, indent=1, sort_keys=False).encode() + b"\n")


def write_car(outdir: Path, index: int, root: bytes, dir_blocks: Sequence[tuple[bytes, bytes]],
              dag_roots: Sequence[bytes], blocks: Iterable[tuple[bytes, bytes]], capacity: int,
              jobs: int = 1) -> dict[str, Any]:
    """Write CAR ``index`` (root directory blocks, then the items' blocks) to a temporary name
    with a CommP side-tap, rename it, and return its manifest entry. The one CAR writer of the
    single-process and the distributed packer."""
    name = car_name(index)
    commp = CommP(jobs=jobs)
    with atomic_output(outdir / name) as raw:
        tap = CommPWriter(raw, commp)
        writer = CarV1Writer(tap, [root])  # type: ignore[arg-type]
        for cid, data in reversed(dir_blocks):  # parents before their children
            writer.put(cid, data)
        for cid, data in blocks:
            writer.put(cid, data)
        writer.close()
        info = tap.digest()
        commp.close()
    if info.payload_size > capacity:  # pragma: no cover - planning is an upper bound
        raise AssertionError("planned CAR exceeded its capacity")
    return {
        "index": index,
        "name": name,
        "roots": [str(CID.from_bytes(root))],
        "dag_roots": [str(CID.from_bytes(r)) for r in dag_roots],
        "car_size": info.payload_size,
        "blocks": writer.blocks_written,
        "piece_cid": str(info.cid_v1),
        "piece_cid_v2": str(info.cid_v2),
        "payload_size": info.payload_size,
        "unpadded_piece_size": info.unpadded_size,
        "padded_piece_size": info.padded_size,
    }


class _Packer:
    def __init__(self, outdir: Path, target_size: int, params: ImportParams, jobs: int,
                 on_car: Callable[[dict[str, Any]], None] | None,
                 progress: Callable[[int], None] | None) -> None:
        self.outdir = outdir
        self.target = target_size
        self.capacity = unpadded_piece_size(target_size)
        self.params = params
        self.jobs = jobs
        self.on_car = on_car
        self.progress = progress
        self.tmp = outdir / _TMP_DIR
        self.cars: list[dict[str, Any]] = []
        self.files: list[dict[str, Any]] = []
        self.current: list[tuple[_FileDag, _Item]] = []
        self.planned = _HEADER_FIXED + _DIR_FIXED
        self.empty: list[tuple[str, int]] = []
        self.dags: dict[int, _FileDag] = {}
        self.written = 0
        self.imported = 0
        self.imported_bytes = 0

    # -- placing ---------------------------------------------------------------------------
    def dir_cost(self, file: int, path: str) -> int:
        """Upper bound of the directory bytes an entry of ``file`` (and the empty
        directories carried with its first item) adds to a CAR's root directory."""
        cost = _DIR_PER_COMPONENT * (path.count("/") + 1) + len(os.fsencode(path)) + len(_PART_SUFFIX.format(0))
        for name, at in self.empty:
            if at == file:
                cost += _DIR_PER_COMPONENT * (name.count("/") + 1) + len(os.fsencode(name))
        return cost

    def reserve(self, item: _Item) -> int:
        extra = item.size
        if item.root is not None:
            extra += _HEADER_PER_ROOT + len(item.root) + self.dir_cost(item.file, item.path)
        return extra

    def place(self, dag: _FileDag, item: _Item, doc: dict[str, Any]) -> None:
        item.path = doc["path"]
        extra = self.reserve(item)
        if self.current and self.planned + extra > self.capacity:
            self.flush(resume=(item.file, item.index))
        self.current.append((dag, item))
        self.planned += extra
        car = self.car_index()
        if item.root is None:
            doc["spine_car"] = car
        else:
            doc["parts"].append({"car": car, "cid": str(CID.from_bytes(item.root)),
                                 "offset": item.offset, "length": item.length})

    def car_index(self) -> int:
        """Number of the CAR being planned (the distributed packer plans ahead of writing)."""
        return len(self.cars)

    def flush(self, resume: tuple[int, int]) -> None:
        index = self.car_index()
        dir_blocks = _BlockList()
        root = self.build_root(dir_blocks)
        entry = write_car(self.outdir, index, root, dir_blocks.blocks,
                          [item.root for _, item in self.current if item.root is not None],
                          (block for dag, item in self.current for block in dag.iter_blocks(item)),
                          self.capacity, self.jobs)
        self.cars.append(entry)
        self.written += 1
        # Spools whose every item is now in a finished CAR can go.
        done_files = {item.file for _, item in self.current}
        self.current = []
        self.planned = _HEADER_FIXED + _DIR_FIXED
        for f in sorted(done_files):
            if f < resume[0] and f in self.dags:
                self.dags.pop(f).spool.close()
        self.save(resume, complete=False)
        if self.on_car is not None:
            self.on_car(entry)

    def build_root(self, sink: _BlockList) -> bytes:
        """The CAR's root directory: its whole files, file parts and empty directories."""
        tree: dict[bytes, Any] = {}

        def node_at(parts: list[bytes]) -> dict[bytes, Any]:
            node = tree
            for comp in parts:
                child = node.setdefault(comp, {})
                if not isinstance(child, dict):
                    raise ConfigError(f"{b'/'.join(parts)!r} is both a file and a directory in one CAR")
                node = child
            return node

        first_items: set[int] = set()
        for dag, item in self.current:
            if item.index == 0:
                first_items.add(item.file)
            if item.root is None:
                continue
            name = item.path if item.root == dag.root else item.path + _PART_SUFFIX.format(item.offset)
            parts = os.fsencode(name).split(b"/")
            node_at(parts[:-1])[parts[-1]] = (item.root, dag.tsize(item.root))
        for name, at in self.empty:
            if at in first_items:
                node_at(os.fsencode(name).split(b"/"))

        def build(node: dict[bytes, Any]) -> tuple[bytes, int]:
            entries = []
            for comp in sorted(node):
                value = node[comp]
                cid, tsize = build(value) if isinstance(value, dict) else value
                entries.append((comp, cid, tsize))
            link = build_directory(entries, self.params, sink)
            return link.cid, link.tsize

        return build(tree)[0]

    # -- manifest ---------------------------------------------------------------------------
    def header(self, inputs: list[_Input], skipped: list[str]) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "target_size": self.target,
            "car_capacity": self.capacity,
            "params": _params_dict(self.params),
            "inputs": [[i.name, i.size, i.mtime_ns] for i in inputs],
            "empty_dirs": [name for name, _ in self.empty],
            "skipped": skipped,
        }

    def save(self, resume: tuple[int, int] | None, *, complete: bool,
             files: list[dict[str, Any]] | None = None) -> None:
        doc = dict(self.base)
        doc["cars"] = self.cars
        if files is None:
            files = self.files if complete else self.files[: resume[0] + 1 if resume else len(self.files)]
        doc["files"] = files
        doc["resume"] = {"file": resume[0], "item": resume[1]} if resume else None
        doc["complete"] = complete
        self.doc = doc
        _write_json_atomic(self.outdir / MANIFEST_NAME, doc)

    def run(self, inputs: list[_Input], skipped: list[str], empty: list[tuple[str, int]]) -> dict[str, Any]:
        start = self.start(inputs, skipped, empty)
        if start is None:
            return self.doc
        self.tmp.mkdir()
        try:
            self.pack_all(inputs, *start)
            self.save(None, complete=True)
        finally:
            for dag in self.dags.values():
                dag.spool.close()
            self.dags.clear()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.doc

    def pack_all(self, inputs: list[_Input], start_file: int, start_item: int) -> None:
        for index in range(start_file, len(inputs)):
            self.pack_file(index, inputs[index], start_item if index == start_file else 0)
        if self.current:
            self.flush(resume=(len(inputs), 0))

    def start(self, inputs: list[_Input], skipped: list[str], empty: list[tuple[str, int]]) -> tuple[int, int] | None:
        """Check OUTDIR, load a previous manifest and remove leftovers; returns the resume point
        ``(file, item)``, or None when the pack there is already complete (``self.doc``)."""
        self.empty = empty
        self.base = self.header(inputs, skipped)
        start_file, start_item = 0, 0
        old = _resume_manifest(self.outdir, len(inputs))
        if old is not None:
            for key in ("format", "target_size", "params", "inputs", "empty_dirs"):
                if old.get(key) != json.loads(json.dumps(self.base[key])):
                    raise ConfigError(f"{self.outdir} holds a pack with another {key}: use an empty directory")
            for car in old["cars"]:
                path = self.outdir / car["name"]
                if not path.is_file() or path.stat().st_size != car["car_size"]:
                    raise ConfigError(f"{path} is missing or changed since the manifest was written: "
                                      "use an empty directory")
            self.cars = old["cars"]
            self.files = old["files"]
            if old.get("complete"):
                self.doc = old
                return None
            start_file, start_item = old["resume"]["file"], old["resume"]["item"]
            self.files = self.files[: start_file + (1 if start_item else 0)]
        elif any(not p.name.startswith(".") for p in self.outdir.iterdir()):
            raise ConfigError(f"{self.outdir} is not empty and holds no pack manifest")
        # Leftovers of an interrupted run: the spool directory and temporary CAR/manifest names.
        shutil.rmtree(self.tmp, ignore_errors=True)
        for leftover in [*self.outdir.glob(".*.tmp-*"), *self.outdir.glob(".*.pyipld-tmp")]:
            if leftover.name.startswith((".pack-", f".{MANIFEST_NAME}")):
                leftover.unlink()
        return start_file, start_item

    def pack_file(self, index: int, inp: _Input, first_item: int) -> None:
        st = os.stat(inp.path)
        if st.st_size != inp.size or st.st_mtime_ns != inp.mtime_ns:
            raise ConfigError(f"{inp.path} changed while packing")
        spool = _Spool(self.tmp)
        result = import_file(inp.path, self.params, spool, jobs=self.jobs, progress=self.progress)
        self.imported += 1
        self.imported_bytes += result.size
        dag = _FileDag(spool, result.cid.bytes)
        self.dags[index] = dag
        if first_item == 0:
            doc: dict[str, Any] = {"path": inp.name, "size": result.size, "root": str(result.cid),
                                   "parts": [], "spine_car": None}
            self.files.append(doc)
        else:
            doc = self.files[index]
        room = self.capacity - _DIR_FIXED - self.dir_cost(index, inp.name)  # the CAR's directory fits too
        items = dag.items(index, room)
        _check_resume_item(self.outdir, inp.name, first_item, len(items))
        for item in items[first_item:]:
            self.place(dag, item, doc)


def pack(
    paths: Sequence[str | os.PathLike[str]],
    outdir: str | os.PathLike[str],
    *,
    target_size: int,
    params: ImportParams | None = None,
    jobs: int = 1,
    on_car: Callable[[dict[str, Any]], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> PackResult:
    """Pack files and directory trees into CARs that each fit a piece of ``target_size``.

    Args:
        paths: files and directories, in the order they are packed.
        outdir: output directory (created); a previous, interrupted pack of the same
            inputs there is resumed.
        target_size: padded piece size each CAR must fit (power of two, e.g. 32 GiB).
        params: import parameters (default: kubo's ``ipfs add`` defaults).
        jobs: worker threads for leaf hashing and CommP.
        on_car: called with each finished CAR's manifest entry.
        progress: called with input byte counts as files are imported.

    Returns:
        the final manifest and counts.

    Raises:
        ConfigError: bad target size, a block larger than a piece, or OUTDIR holds
            something else.
    """
    check_piece_size(target_size)
    params = import_params(params)
    params.resolve()
    out = Path(outdir)
    with made_directory(out):
        inputs, skipped, empty = _walk(paths, out)
        packer = _Packer(out, target_size, params, jobs, on_car, progress)
        previous = _resume_manifest(out, None)
        before = len(previous["cars"]) if previous is not None else 0
        doc = packer.run(inputs, skipped, empty)
    return PackResult(str(out), doc, packer.written, before, packer.imported, packer.imported_bytes)


# -- reading back ---------------------------------------------------------------------------------


def iter_file_content(get: Callable[[bytes], bytes], cid: bytes) -> Iterator[bytes]:
    """File bytes of a UnixFS file DAG (raw or dag-pb leaves), depth-first."""
    stack = [cid]
    while stack:
        c = stack.pop()
        parsed = CID.from_bytes(c)
        data = parsed.digest if parsed.hash_code == 0 else get(c)
        if parsed.codec == RAW:
            yield data
            continue
        node = decode_pbnode(data)
        fs = decode_unixfs_data(node.data or b"")
        if fs.data:
            yield fs.data
        stack.extend(reversed([link.cid for link in node.links]))


def _manifest_error(where: Path, what: str) -> ManifestError:
    return ManifestError(f"{where}: {what}")


MAX_MANIFEST_BYTES: Final = 1 << 30  # ~5 million files; the manifest is parsed whole


def _read_manifest_bytes(where: Path) -> bytes:
    """A manifest's bytes: a regular file (never a symlink, FIFO or device) of at most
    MAX_MANIFEST_BYTES. A manifest linked to /dev/zero was read until memory ran out."""
    data = read_plain_file(where, MAX_MANIFEST_BYTES)
    if data is None:
        raise _manifest_error(where, f"not a plain file of at most {MAX_MANIFEST_BYTES} bytes (a symlink?)")
    return data


def _load_manifest(base: Path) -> tuple[list[tuple[str, list[tuple[int, bytes]]]], list[str], list[str]]:
    """``(files as (path, [(car number, root CID)]), empty dirs, CAR file names)`` of a checked manifest.

    A manifest is untrusted input: every field must have its type, every path must be
    relative without ``..``, and every CAR must be a plain name inside the manifest's folder.
    """
    where = base / MANIFEST_NAME
    try:
        doc = json.loads(_read_manifest_bytes(where).decode("utf-8"))
    except ManifestError:
        raise
    except (ValueError, RecursionError) as exc:  # JSON, UTF-8 or nesting errors
        raise _manifest_error(where, f"not a JSON manifest ({str(exc)[:200]})") from None
    if not isinstance(doc, dict) or doc.get("format") not in _READABLE_FORMATS:
        raise _manifest_error(where, f"not a {MANIFEST_FORMAT} manifest")
    cars, files, empty = doc.get("cars"), doc.get("files"), doc.get("empty_dirs", [])
    if not isinstance(cars, list) or not isinstance(files, list) or not isinstance(empty, list):
        raise _manifest_error(where, "'cars', 'files' and 'empty_dirs' must be lists")
    names: list[str] = []
    for car in cars:
        name = car.get("name") if isinstance(car, dict) else None
        if not isinstance(name, str) or not is_plain_entry_name(os.fsencode(name)):
            raise _manifest_error(where, f"CAR name {name!r} is not a plain file name in its folder")
        names.append(name)
    out: list[tuple[str, list[tuple[int, bytes]]]] = []
    for entry in files:
        rel = entry.get("path") if isinstance(entry, dict) else None
        parts = entry.get("parts") if isinstance(entry, dict) else None
        if not isinstance(rel, str) or not isinstance(parts, list):
            raise _manifest_error(where, "each file needs a 'path' string and a 'parts' list")
        _check_rel(where, rel)
        pieces: list[tuple[int, bytes]] = []
        for part in parts:
            k = part.get("car") if isinstance(part, dict) else None
            cid = part.get("cid") if isinstance(part, dict) else None
            if type(k) is not int or not 0 <= k < len(names) or not isinstance(cid, str):
                raise _manifest_error(where, f"bad part of {rel!r}: needs 'car' (0..{len(names) - 1}) and 'cid'")
            pieces.append((k, CID.decode(cid).bytes))
        out.append((rel, pieces))
    for rel in empty:
        if not isinstance(rel, str):
            raise _manifest_error(where, "'empty_dirs' must hold path strings")
        _check_rel(where, rel)
    return out, empty, names


def _resume_manifest(outdir: Path, inputs: int | None) -> dict[str, Any] | None:
    """The manifest an earlier run left in ``outdir`` (None when there is none), checked field by
    field before a run continues from it: ``cars`` (plain names, integer sizes), ``files``, and a
    ``resume`` point within ``inputs`` files.

    Raises:
        ManifestError: a manifest that is not one this packer wrote.
    """
    where = outdir / MANIFEST_NAME
    if not where.exists():
        return None
    try:
        doc = json.loads(_read_manifest_bytes(where).decode("utf-8"))
    except ManifestError:
        raise
    except (ValueError, RecursionError) as exc:  # JSON, UTF-8 or nesting errors
        raise _manifest_error(where, f"not a JSON manifest ({str(exc)[:200]})") from None
    except OSError as exc:
        raise _manifest_error(where, f"cannot read it: {exc.strerror or exc}") from None
    if not isinstance(doc, dict):
        raise _manifest_error(where, f"not a {MANIFEST_FORMAT} manifest")
    cars, files, resume = doc.get("cars"), doc.get("files"), doc.get("resume")
    if not isinstance(cars, list) or not isinstance(files, list):
        raise _manifest_error(where, "'cars' and 'files' must be lists")
    for car in cars:
        name = car.get("name") if isinstance(car, dict) else None
        if not isinstance(name, str) or not is_plain_entry_name(os.fsencode(name)):
            raise _manifest_error(where, f"CAR name {name!r} is not a plain file name in its folder")
        if type(car.get("car_size")) is not int:
            raise _manifest_error(where, f"CAR {name!r} has no integer 'car_size'")
    for entry in files:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) \
                or not isinstance(entry.get("parts"), list):
            raise _manifest_error(where, "each file needs a 'path' string and a 'parts' list")
    if doc.get("complete") is True or inputs is None:
        return doc
    point = (resume.get("file"), resume.get("item")) if isinstance(resume, dict) else (None, None)
    if not (type(point[0]) is int and type(point[1]) is int and 0 <= point[0] <= inputs and point[1] >= 0
            and len(files) >= point[0] + (1 if point[1] else 0)):
        raise _manifest_error(where, f"bad resume point {resume!r} for {inputs} input files and {len(files)} "
                                     "files listed")
    return doc


def _check_resume_item(outdir: Path, name: str, first_item: int, items: int) -> None:
    """A resume point inside a file names one of its items (else the rest would be left out)."""
    if first_item and first_item >= items:
        raise _manifest_error(outdir / MANIFEST_NAME, f"the resume point is item {first_item} of {name!r}, "
                                                      f"which has {items}")


def _check_rel(where: Path, rel: str) -> None:
    parts = Path(rel).parts
    if not rel or "\0" in rel or Path(rel).is_absolute() or ".." in parts:
        raise _manifest_error(where, f"unsafe path {rel!r}")


def _open_car(base: Path, name: str) -> IO[bytes]:
    """A CAR named by the manifest: a regular file directly in ``base``, never a symlink, FIFO or device."""
    path = base / name
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ManifestError(f"{base / MANIFEST_NAME}: CAR {name!r} is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def reassemble(outdir: str | os.PathLike[str], dest: str | os.PathLike[str]) -> list[str]:
    """Rebuild every packed file under ``dest`` from the CARs and the manifest.

    Returns the relative paths written. Uses the CARs only (blocks verified on read).

    Raises:
        ManifestError: a malformed manifest, an unsafe path, or a CAR that is not a
            regular file in ``outdir``.
    """
    from ..car.blockstore import CarBlockstore

    base = Path(outdir)
    files, empty_dirs, car_names = _load_manifest(base)
    stores: dict[int, CarBlockstore] = {}
    handles: list[IO[bytes]] = []
    written = []
    dest_path = Path(dest)
    try:
        for rel, pieces in files:
            target = dest_path.joinpath(*Path(rel).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(target) as f:
                for k, cid in pieces:
                    if k not in stores:
                        handles.append(_open_car(base, car_names[k]))
                        stores[k] = CarBlockstore(handles[-1])
                    for chunk in iter_file_content(stores[k].get, cid):
                        f.write(chunk)
            written.append(rel)
        for rel in empty_dirs:
            dest_path.joinpath(*Path(rel).parts).mkdir(parents=True, exist_ok=True)
            written.append(rel + "/")
    finally:
        for s in stores.values():
            s.close()
        for h in handles:
            h.close()
    return written
