"""Encoding UnixFS file nodes: leaves and internal nodes, with their link facts.

A :class:`FileLink` is what a parent needs to know about a child: its CID,
its cumulative size (Tsize, shared/spec/unixfs-importer.md §1.3) and how many
file bytes it covers (for ``blocksizes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..blockstore import BlockSink
from ..cid import DAG_PB, RAW, CidBuilder
from ..dagpb import PBLink, encode_pbnode
from .data import DataType, Mtime, UnixFSData, encode_unixfs_data

__all__ = ["FileLink", "Metadata", "LeafMaker", "encode_file_node", "make_empty_file"]


@dataclass(frozen=True, slots=True)
class FileLink:
    """A child as its parent links it."""

    cid: bytes
    tsize: int
    data_size: int


@dataclass(frozen=True, slots=True)
class Metadata:
    """UnixFS 1.5 metadata for a root node (permission bits, mtime)."""

    mode: int | None = None
    mtime: Mtime | None = None

    def __bool__(self) -> bool:
        return bool(self.mode) or self.mtime is not None


class LeafMaker:
    """Turns chunks into leaf blocks: raw (CIDv1 raw) or dag-pb UnixFS File/Raw."""

    def __init__(self, builder: CidBuilder, *, raw: bool, leaf_type: DataType = DataType.FILE) -> None:
        self.builder = builder
        self.raw = raw
        self.leaf_type = leaf_type

    def encode(self, chunk: bytes) -> tuple[bytes, bytes]:
        """The leaf block for ``chunk`` and its binary CID: ``(cid, block)``."""
        if self.raw:
            return self.builder.cid_bytes(RAW, chunk), chunk
        data = encode_unixfs_data(UnixFSData(self.leaf_type, data=chunk, filesize=len(chunk)))
        block = encode_pbnode((), data)
        return self.builder.cid_bytes(DAG_PB, block), block

    def encode_with_metadata(self, chunk: bytes, meta: Metadata) -> tuple[bytes, bytes]:
        """A dag-pb File leaf that is also a file root carrying ``meta``."""
        data = encode_unixfs_data(
            UnixFSData(DataType.FILE, data=chunk, filesize=len(chunk), mode=meta.mode, mtime=meta.mtime)
        )
        block = encode_pbnode((), data)
        return self.builder.cid_bytes(DAG_PB, block), block


def encode_file_node(
    children: Sequence[FileLink], builder: CidBuilder, sink: BlockSink, meta: Metadata | None = None
) -> FileLink:
    """Encode an internal File node over ``children``, put it, return its link."""
    data_size = sum(child.data_size for child in children)
    data = encode_unixfs_data(
        UnixFSData(
            DataType.FILE,
            filesize=data_size,
            blocksizes=tuple(child.data_size for child in children),
            mode=meta.mode if meta else None,
            mtime=meta.mtime if meta else None,
        )
    )
    block = encode_pbnode([PBLink(child.cid, b"", child.tsize) for child in children], data)
    cid = builder.cid_bytes(DAG_PB, block)
    sink.put(cid, block)
    return FileLink(cid, len(block) + sum(child.tsize for child in children), data_size)


def make_empty_file(builder: CidBuilder, sink: BlockSink, *, raw: bool, meta: Metadata | None = None) -> FileLink:
    """The empty file: the empty raw block, or a dag-pb File with filesize 0 and no Data."""
    if raw and not meta:
        cid = builder.cid_bytes(RAW, b"")
        sink.put(cid, b"")
        return FileLink(cid, 0, 0)
    return encode_file_node((), builder, sink, meta)
