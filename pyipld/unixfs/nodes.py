"""Encoding UnixFS file nodes: leaves and internal nodes, with their link facts.

A :class:`FileLink` is what a parent needs to know about a child: its CID,
its cumulative size (Tsize, shared/spec/unixfs-importer.md §1.3) and how many
file bytes it covers (for ``blocksizes``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from .._sha256x2 import sha256_batch, sha256_batch_mapped
from .._varint import encode_varint
from ..blockstore import BlockSink, NullSink
from ..chunker import BytesLike
from ..cid import DAG_PB, RAW, CidBuilder
from ..dagpb import PBLink, encode_pbnode
from ..multihash import SHA2_256
from .data import DataType, Mtime, UnixFSData, encode_unixfs_data

__all__ = ["ChunkGroups", "FileLink", "Leaf", "LeafMaker", "Metadata", "encode_file_node", "leaf_links", "make_empty_file"]

Leaf = tuple[bytes, bytes | None, int]
"""An encoded leaf: ``(cid, block or None when not kept, block length)``."""


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
    """Turns chunks into leaf blocks: raw (CIDv1 raw) or dag-pb UnixFS File/Raw.

    :meth:`leaf` is the hot path: a dag-pb leaf is ``header ‖ chunk ‖ trailer``
    (PBNode Data = UnixFS ``{Type, Data: chunk, filesize}``), so with sha2-256
    the CID is hashed piecewise and, when nobody keeps the block (only-hash),
    the block is never assembled. :meth:`leaves` and :meth:`leaves_parts` do the
    same for several chunks, hashed two at a time (:func:`~pyipld._sha256x2.sha256_batch`).
    :meth:`encode` is the plain reference.
    """

    def __init__(self, builder: CidBuilder, *, raw: bool, leaf_type: DataType = DataType.FILE) -> None:
        self.builder = builder
        self.raw = raw
        self.leaf_type = leaf_type
        self._sha256 = builder.hash is SHA2_256
        if raw:
            self._cid_prefix = b"\x01" + encode_varint(RAW) + builder.hash.prefix
        elif builder.version == 1:
            self._cid_prefix = b"\x01" + encode_varint(DAG_PB) + builder.hash.prefix
        else:
            self._cid_prefix = builder.hash.prefix
        self._frame_cache = (-1, b"", b"")  # one attribute: read and replaced atomically across threads

    def encode(self, chunk: bytes, meta: Metadata | None = None) -> tuple[bytes, bytes]:
        """The leaf block for ``chunk`` and its binary CID: ``(cid, block)``.

        With ``meta`` it is a dag-pb leaf that is also a file root carrying the
        mode/mtime (kubo re-encodes a one-chunk file's leaf; raw leaves are off then).
        """
        if self.raw and not meta:
            return self.builder.cid_bytes(RAW, chunk), chunk
        data = encode_unixfs_data(UnixFSData(self.leaf_type, data=chunk, filesize=len(chunk),
                                             mode=meta.mode if meta else None,
                                             mtime=meta.mtime if meta else None))
        block = encode_pbnode((), data)
        return self.builder.cid_bytes(DAG_PB, block), block

    def _inlined(self, block_len: int) -> bool:
        limit = self.builder.inline_limit  # None: off; 0 still inlines the empty block (go-cidutil)
        return limit is not None and block_len <= limit

    def frame(self, size: int) -> tuple[bytes, bytes]:
        """The bytes before and after a ``size``-byte chunk in its dag-pb leaf block."""
        cached_size, head, tail = self._frame_cache
        if size != cached_size:
            vlen = encode_varint(size)
            data_len = 3 + len(vlen) + size + 1 + len(vlen)  # 08 TT 12 len chunk 18 len
            head = b"\x0a" + encode_varint(data_len) + bytes((0x08, int(self.leaf_type), 0x12)) + vlen
            tail = b"\x18" + vlen
            self._frame_cache = (size, head, tail)
        return head, tail

    def leaf(self, chunk: BytesLike, keep: bool = True) -> Leaf:
        """Encode one chunk: ``(cid, block, block length)``; block is None unless ``keep``.

        Gives exactly the CID and bytes of :meth:`encode` (tests compare them).
        """
        size = len(chunk)
        if self.raw:
            block_len = size
            if not self._sha256 or self._inlined(size):
                data = bytes(chunk)
                return self.builder.cid_bytes(RAW, data), data, size
            if not keep:
                return self._cid_prefix + hashlib.sha256(chunk).digest(), None, block_len
            data = chunk if type(chunk) is bytes else bytes(chunk)  # copy first: hash what is stored
            return self._cid_prefix + hashlib.sha256(data).digest(), data, block_len
        head, tail = self.frame(size)
        block_len = len(head) + size + len(tail)
        if keep or not self._sha256 or self._inlined(block_len):
            block = b"".join((head, chunk, tail))
            if self._sha256 and not self._inlined(block_len):
                return self._cid_prefix + hashlib.sha256(block).digest(), block, block_len
            return self.builder.cid_bytes(DAG_PB, block), block, block_len
        h = hashlib.sha256(head)
        h.update(chunk)
        h.update(tail)
        return self._cid_prefix + h.digest(), None, block_len

    def leaf_parts(self, chunk: BytesLike, *, private: bool = False) -> tuple[bytes, tuple[BytesLike, ...], int]:
        """:meth:`leaf` with ``keep``, the block given as pieces whose concatenation it is.

        With sha2-256 the block is never assembled: a dag-pb leaf is hashed piecewise and
        handed out as ``(head, chunk, tail)``, a raw leaf as ``(chunk,)``. For sinks with
        ``put_parts`` (CAR writers). A view (e.g. of a mapped file) is copied once first, so
        the bytes hashed are the bytes written even if the file changes meanwhile — unless
        ``private``: a view of a buffer nothing else writes to (the importer's own reads),
        which is hashed and handed out as it is.
        """
        if isinstance(chunk, memoryview) and not private:
            chunk = bytes(chunk)
        size = len(chunk)
        if self._sha256:
            if self.raw:
                if not self._inlined(size):
                    return self._cid_prefix + hashlib.sha256(chunk).digest(), (chunk,), size
            else:
                head, tail = self.frame(size)
                block_len = len(head) + size + len(tail)
                if not self._inlined(block_len):
                    h = hashlib.sha256(head)
                    h.update(chunk)
                    h.update(tail)
                    return self._cid_prefix + h.digest(), (head, chunk, tail), block_len
        cid, block, block_len = self.leaf(chunk, True)
        assert block is not None
        return cid, (block,), block_len

    def _batchable(self, chunks: Sequence[BytesLike]) -> bool:
        """Whether :meth:`leaves` may hash ``chunks`` as one batch (sha2-256, none inlined)."""
        if not self._sha256 or len(chunks) < 2:
            return False
        limit = self.builder.inline_limit
        return limit is None or min(len(chunk) for chunk in chunks) > limit  # a block is longer than its chunk

    def leaves(self, chunks: Sequence[BytesLike], keep: bool = True) -> list[Leaf]:
        """``[self.leaf(chunk, keep) for chunk in chunks]``, hashed two at a time."""
        if not self._batchable(chunks):
            return [self.leaf(chunk, keep) for chunk in chunks]
        if not keep:
            return self._hashed_only(chunks, sha256_batch)
        prefix = self._cid_prefix
        if self.raw:  # copy first: hash what is stored
            blocks = [chunk if type(chunk) is bytes else bytes(chunk) for chunk in chunks]
        else:
            frames = [self.frame(len(chunk)) for chunk in chunks]
            blocks = [b"".join((head, chunk, tail)) for (head, tail), chunk in zip(frames, chunks, strict=True)]
        digests = sha256_batch([(block,) for block in blocks])
        return [(prefix + digest, block, len(block)) for digest, block in zip(digests, blocks, strict=True)]

    def _hashed_only(self, chunks: Sequence[BytesLike],
                     batch: Callable[[Sequence[Sequence[BytesLike]]], list[bytes]]) -> list[Leaf]:
        """Only-hash leaves of ``chunks``, ``batch`` hashing the messages (see :meth:`_framed`)."""
        return [(cid, None, block_len) for cid, _, block_len in self._framed(chunks, batch)]

    def _framed(self, chunks: Sequence[BytesLike], batch: Callable[[Sequence[Sequence[BytesLike]]], list[bytes]]
                ) -> list[tuple[bytes, tuple[BytesLike, ...], int]]:
        """``(cid, block pieces, block length)`` of each chunk's leaf, ``batch`` hashing the pieces
        (a raw leaf is its chunk; a dag-pb leaf its header, chunk and trailer: never assembled)."""
        prefix = self._cid_prefix
        pieces: list[tuple[BytesLike, ...]]
        if self.raw:
            pieces = [(chunk,) for chunk in chunks]
        else:
            pieces = [(head, chunk, tail) for chunk in chunks for head, tail in (self.frame(len(chunk)),)]
        digests = batch(pieces)
        return [(prefix + digest, parts, sum(len(p) for p in parts))
                for digest, parts in zip(digests, pieces, strict=True)]

    @property
    def hashes_mapped_views(self) -> bool:
        """Whether :meth:`leaves_mapped` applies: sha2-256 and no inlining (every byte of a chunk
        goes to the hash kernel, none is copied or read by Python)."""
        return self._sha256 and self.builder.inline_limit is None

    def leaves_mapped(self, chunks: Sequence[BytesLike]) -> list[Leaf]:
        """``[self.leaf(chunk, False) for chunk in chunks]`` for views of a mapped file, read by the
        guarded kernel alone (:func:`~pyipld._sha256x2.sha256_batch_mapped`; raises its
        ``MappingFault`` when the file shrank under the mapping). Needs :attr:`hashes_mapped_views`."""
        if not self.hashes_mapped_views:
            raise ValueError("leaves_mapped needs sha2-256 leaves without inlining")
        return self._hashed_only(chunks, sha256_batch_mapped)

    def leaves_parts(self, chunks: Sequence[BytesLike], *, private: bool = False
                     ) -> list[tuple[bytes, tuple[BytesLike, ...], int]]:
        """``[self.leaf_parts(chunk, private=private) for chunk in chunks]``, hashed two at a time."""
        if not self._batchable(chunks):
            return [self.leaf_parts(chunk, private=private) for chunk in chunks]
        if not private:
            chunks = [bytes(chunk) if isinstance(chunk, memoryview) else chunk for chunk in chunks]
        return self._framed(chunks, sha256_batch)


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


class ChunkGroups:
    """A file's chunks as groups (e.g. the chunks of one read), each group valid until the next is
    taken: :func:`grouped_leaf_links` hashes a group's chunks two at a time."""

    def __init__(self, groups: Iterable[Sequence[BytesLike]]) -> None:
        self.groups = groups

    def __iter__(self) -> Iterator[BytesLike]:
        for group in self.groups:
            yield from group


def grouped_leaf_links(groups: Iterable[Sequence[BytesLike]], leaves: LeafMaker, sink: BlockSink
                       ) -> Iterator[FileLink]:
    """:func:`leaf_links` of the chunks of ``groups``, each group hashed as a batch."""
    keep = not isinstance(sink, NullSink)
    put_parts = getattr(sink, "put_parts", None) if keep else None
    for group in groups:
        if put_parts is not None:
            for chunk, (cid, parts, block_len) in zip(group, leaves.leaves_parts(group), strict=True):
                put_parts(cid, parts)
                yield FileLink(cid, block_len, len(chunk))
            continue
        for chunk, (cid, block, block_len) in zip(group, leaves.leaves(group, keep), strict=True):
            if keep:
                assert block is not None
                sink.put(cid, block)
            yield FileLink(cid, block_len, len(chunk))


def leaf_links(chunks: Iterable[BytesLike], leaves: LeafMaker, sink: BlockSink) -> Iterator[FileLink]:
    """Encode ``chunks`` in order, put each leaf, yield its link (blocks skipped for a NullSink)."""
    keep = not isinstance(sink, NullSink)
    put_parts = getattr(sink, "put_parts", None)
    if keep and put_parts is not None:  # a CAR writer: each leaf goes out in pieces, never joined
        leaf_parts = leaves.leaf_parts
        for chunk in chunks:
            cid, parts, block_len = leaf_parts(chunk)
            put_parts(cid, parts)
            yield FileLink(cid, block_len, len(chunk))
        return
    leaf = leaves.leaf
    put = sink.put
    for chunk in chunks:
        cid, block, block_len = leaf(chunk, keep)
        if keep:
            assert block is not None
            put(cid, block)
        yield FileLink(cid, block_len, len(chunk))
