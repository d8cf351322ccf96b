"""UnixFS directories as kubo builds them: basic nodes, size estimates, the HAMT switch.

A directory is a list of :class:`DirEntry` (raw name bytes, child CID bytes,
child Tsize). :class:`DirectoryBuilder` collects entries, keeps the ``links``
estimate as they arrive and sums the ``block`` estimate from field lengths when
it is needed (no block is encoded until :meth:`DirectoryBuilder.finish`), then
writes either one basic directory node or a HAMT (``hamt.py``) —
shared/spec/unixfs-importer.md §4:

* ``links`` estimate: Σ len(name) + len(CID bytes) (kubo default, unixfs-v0-2015);
* ``block`` estimate: the exact serialized size of the basic-directory block
  (unixfs-v1-2025), computed from field lengths;
* the directory shards when the estimate is **>** ``hamt_threshold`` (kubo ≥ 0.40)
  or **≥** it (``hamt_threshold_inclusive``: kubo < 0.40, e.g. the 0.22 oracle), or
  when it has more than ``max_directory_links`` entries; a threshold of 0 never
  shards (boxo io/directory.go). Estimates only grow during an import, so the
  final estimate decides — each directory independently.

Memory is one small tuple per entry; no block data is kept.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from operator import itemgetter
from typing import NamedTuple

from .._varint import varint_size
from ..blockstore import BlockSink
from ..cid import DAG_PB, CidBuilder
from ..dagpb import PBLink, encode_pbnode
from ..errors import UnixFSError
from .data import DataType, UnixFSData, encode_unixfs_data
from .nodes import Metadata
from .params import ImportParams, import_params

__all__ = [
    "DirEntry",
    "DirLink",
    "DirectoryBuilder",
    "build_directory",
    "check_entry_name",
    "directory_data",
    "encode_basic_directory",
    "is_plain_entry_name",
    "link_block_size",
    "link_estimate",
    "needs_sharding",
]


class DirEntry(NamedTuple):
    """One directory entry: raw name bytes, child CID bytes, child cumulative size."""

    name: bytes
    cid: bytes
    tsize: int


@dataclass(frozen=True, slots=True)
class DirLink:
    """A finished directory: its root CID, cumulative size and whether it is a HAMT."""

    cid: bytes
    tsize: int
    sharded: bool = False


def is_plain_entry_name(name: bytes) -> bool:
    """False for names no file system (or kubo's MFS) can hold: empty, ``.``, ``..``, ``/``, NUL.

    The one rule for both directions: building refuses them (:func:`check_entry_name`),
    extraction refuses to write them (:func:`pyipld.unixfs.extract.check_entry_name_safe`).
    """
    return bool(name) and name not in (b".", b"..") and b"/" not in name and b"\0" not in name


def check_entry_name(name: bytes) -> None:
    """Refuse names no file system (or kubo's MFS) can hold: empty, ``.``, ``..``, ``/``, NUL."""
    if not is_plain_entry_name(name):
        raise UnixFSError(f"invalid directory entry name {name!r}")


def link_estimate(name_len: int, cid_len: int) -> int:
    """boxo's ``links`` estimate of one entry: name bytes + CID bytes."""
    return name_len + cid_len


def link_block_size(name_len: int, cid_len: int, tsize: int) -> int:
    """Bytes one PBLink adds to a dag-pb block: ``0x12 len {Hash, Name, Tsize}``."""
    inner = 1 + varint_size(cid_len) + cid_len + 1 + varint_size(name_len) + name_len + 1 + varint_size(tsize)
    return 1 + varint_size(inner) + inner


def directory_data(meta: Metadata | None = None) -> bytes:
    """The UnixFS Data of a basic directory (Type=Directory, + mode/mtime)."""
    return encode_unixfs_data(
        UnixFSData(DataType.DIRECTORY, mode=meta.mode if meta else None, mtime=meta.mtime if meta else None)
    )


def _sorted_checked(entries: Iterable[DirEntry]) -> list[DirEntry]:
    ordered = sorted(entries, key=itemgetter(0))  # Go strings.Compare on raw bytes
    for a, b in pairwise(ordered):
        if a.name == b.name:
            raise UnixFSError(f"duplicate directory entry name {a.name!r}")
    return ordered


def _check_unique(names: list[bytes]) -> None:
    ordered = sorted(names)
    for a, b in pairwise(ordered):
        if a == b:
            raise UnixFSError(f"duplicate directory entry name {a!r}")


def encode_basic_directory(entries: Iterable[DirEntry], meta: Metadata | None = None) -> bytes:
    """The basic-directory block: links sorted by raw name bytes, then Data."""
    links = [PBLink(e.cid, e.name, e.tsize) for e in _sorted_checked(entries)]
    return encode_pbnode(links, directory_data(meta))


def needs_sharding(params: ImportParams, *, count: int, links_size: int, block_size: int) -> bool:
    """kubo's rule for a directory of ``count`` entries with these estimates."""
    threshold = params.hamt_threshold
    if threshold == 0:  # 0 disables HAMT conversion, before max-links (boxo io/directory.go)
        return False
    if params.max_directory_links and count > params.max_directory_links:
        return True
    estimate = block_size if params.hamt_estimation == "block" else links_size
    return estimate >= threshold if params.hamt_threshold_inclusive else estimate > threshold


class DirectoryBuilder:
    """Collects one directory's entries and writes it the way kubo would.

    Args:
        params: import parameters (threshold, estimator, fanout, max links).
        cid_builder: names the directory blocks (same as the files').
        meta: mode/mtime for the directory node (root shard only, if sharded).
    """

    __slots__ = ("_data_field_size", "cid_builder", "cids", "links_size", "meta", "names", "params", "tsizes")

    def __init__(self, params: ImportParams, cid_builder: CidBuilder, meta: Metadata | None = None) -> None:
        self.params = params
        self.cid_builder = cid_builder
        self.meta = meta
        # Columns rather than one tuple per entry: ~90 bytes less per entry.
        self.names: list[bytes] = []
        self.cids: list[bytes] = []
        self.tsizes = array("Q")
        self.links_size = 0
        data = directory_data(meta)
        self._data_field_size = 1 + varint_size(len(data)) + len(data)

    def add(self, name: bytes, cid: bytes, tsize: int, *, check: bool = True) -> None:
        """Add an entry (duplicates are found when finishing).

        ``check=False`` skips the name check, for names a file system listing gave.
        """
        if check:
            check_entry_name(name)
        self.names.append(name)
        self.cids.append(cid)
        self.tsizes.append(tsize)
        self.links_size += len(name) + len(cid)

    @property
    def entries(self) -> list[DirEntry]:
        """The entries added so far (built on demand)."""
        return [DirEntry(n, c, t) for n, c, t in zip(self.names, self.cids, self.tsizes, strict=True)]

    @property
    def block_size(self) -> int:
        """The exact size the basic-directory block would have (boxo's ``block`` estimate).

        Summed from field lengths on demand, so ``add`` stays cheap when the ``links``
        estimator is in use.
        """
        return self._data_field_size + sum(
            link_block_size(len(n), len(c), t) for n, c, t in zip(self.names, self.cids, self.tsizes, strict=True)
        )

    def _needs_sharding(self) -> bool:
        params = self.params
        if params.hamt_threshold == 0:
            return False
        block = self.block_size if params.hamt_estimation == "block" else 0
        return needs_sharding(params, count=len(self.names), links_size=self.links_size, block_size=block)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def sharded(self) -> bool:
        """Whether :meth:`finish` will write a HAMT."""
        return self._needs_sharding()

    def finish(self, sink: BlockSink) -> DirLink:
        """Encode the directory (basic or HAMT) into ``sink``; entries are released."""
        sharded = self._needs_sharding()
        names, cids, tsizes = self.names, self.cids, self.tsizes
        self.names, self.cids, self.tsizes = [], [], array("Q")
        if sharded:
            from .hamt import build_hamt_columns

            _check_unique(names)  # duplicates would collide forever in the HAMT
            cid, tsize = build_hamt_columns(names, cids, tsizes, self.cid_builder, sink,
                                            fanout=self.params.hamt_fanout, meta=self.meta)
            return DirLink(cid, tsize, True)
        block = encode_basic_directory(map(DirEntry, names, cids, tsizes), self.meta)
        cid = self.cid_builder.cid_bytes(DAG_PB, block)
        sink.put(cid, block)
        return DirLink(cid, len(block) + sum(tsizes), False)


def build_directory(
    entries: Iterable[DirEntry] | Sequence[tuple[bytes, bytes, int]],
    params: ImportParams | None = None,
    sink: BlockSink | None = None,
    *,
    meta: Metadata | None = None,
) -> DirLink:
    """One directory from ready entries (name, CID bytes, Tsize), as kubo would write it.

    Raises:
        UnixFSError: an invalid or duplicate name; a HAMT too deep (full hash collision).
        ConfigError: invalid parameters.
    """
    from ..blockstore import NullSink

    params = import_params(params)
    resolved = params.resolve()
    builder = DirectoryBuilder(params, resolved.cid_builder, meta)
    for name, cid, tsize in entries:
        builder.add(name, cid, tsize)
    return builder.finish(sink if sink is not None else NullSink())
