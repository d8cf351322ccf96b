"""A minimal read-only UnixFS walker for the ``car`` commands (cat, ls --unixfs, extract).

Reads files (raw leaves or dag-pb File/Raw nodes, seeking through ``blocksizes``
so a range read loads only the blocks it covers), directories and HAMT shards
(names are found by walking the shard, skipping sub-shards that are absent from
a partial CAR). Private: the project's UnixFS exporter replaces it when it lands.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from ..blockstore import BlockSource
from ..cid import CID, DAG_PB, RAW
from ..dagpb import PBNode, decode_pbnode
from ..errors import NotFoundError, UnixFSError
from ..unixfs.data import DataType, UnixFSData, decode_unixfs_data

__all__ = ["Node", "NodeCache", "WalkEntry", "iter_dir", "load_node", "read_file", "resolve_path", "walk"]

_MAX_DEPTH = 1024  # a file DAG deeper than this is hostile


@dataclass(frozen=True, slots=True)
class Node:
    """A decoded block: raw bytes, or a dag-pb node with its UnixFS data."""

    cid: bytes
    raw: bytes | None
    pb: PBNode | None
    fs: UnixFSData | None

    @property
    def kind(self) -> str:
        if self.raw is not None:
            return "file"
        assert self.fs is not None
        return {DataType.FILE: "file", DataType.RAW: "file", DataType.DIRECTORY: "directory",
                DataType.HAMT_SHARD: "hamt", DataType.SYMLINK: "symlink",
                DataType.METADATA: "metadata"}[self.fs.type]

    @property
    def size(self) -> int:
        if self.raw is not None:
            return len(self.raw)
        assert self.fs is not None
        if self.fs.filesize is not None:
            return self.fs.filesize
        return len(self.fs.data or b"") + sum(self.fs.blocksizes)


class NodeCache:
    """A small LRU of decoded interior nodes, so repeated range reads do not re-decode
    the root and intermediate nodes (174 links each) every time."""

    def __init__(self, max_nodes: int = 1024) -> None:
        self.max_nodes = max_nodes
        self._nodes: OrderedDict[bytes, Node] = OrderedDict()

    def get(self, cid: bytes) -> Node | None:
        node = self._nodes.get(cid)
        if node is not None:
            self._nodes.move_to_end(cid)
        return node

    def put(self, node: Node) -> None:
        self._nodes[node.cid] = node
        if len(self._nodes) > self.max_nodes:
            self._nodes.popitem(last=False)


def load_node(source: BlockSource, cid: bytes, cache: NodeCache | None = None) -> Node:
    """Fetch and decode ``cid`` (identity CIDs need no store)."""
    if cache is not None:
        hit = cache.get(cid)
        if hit is not None:
            return hit
    node = _load_node(source, cid)
    if cache is not None and node.pb is not None and node.pb.links:
        cache.put(node)
    return node


def _load_node(source: BlockSource, cid: bytes) -> Node:
    parsed = CID.from_bytes(cid)
    data = parsed.digest if parsed.hash_code == 0 else source.get(cid)
    if parsed.codec == RAW:
        return Node(cid, data, None, None)
    if parsed.codec != DAG_PB:
        raise UnixFSError(f"{parsed} is not UnixFS (codec 0x{parsed.codec:x})")
    pb = decode_pbnode(data)
    if pb.data is None:
        raise UnixFSError(f"{parsed} is a dag-pb node without UnixFS data")
    return Node(cid, None, pb, decode_unixfs_data(pb.data))


def read_file(
    source: BlockSource, cid: bytes, offset: int = 0, length: int | None = None, cache: NodeCache | None = None
) -> Iterator[bytes]:
    """The bytes of a UnixFS file, from ``offset`` for ``length`` bytes (all by default).

    Only the blocks covering the range are loaded; ``cache`` keeps decoded interior nodes.
    """
    node = load_node(source, cid, cache)
    if node.kind != "file":
        raise UnixFSError(f"{CID.from_bytes(cid)} is a {node.kind}, not a file")
    end = node.size if length is None else min(node.size, offset + length)
    if offset >= end:
        return
    yield from _read_range(source, node, offset, end, 0, cache)


def _read_range(
    source: BlockSource, node: Node, start: int, end: int, depth: int, cache: NodeCache | None
) -> Iterator[bytes]:
    """Bytes [start, end) of ``node``'s own coordinates."""
    if depth > _MAX_DEPTH:
        raise UnixFSError("file DAG too deep")
    if node.raw is not None:
        yield node.raw[start:end]
        return
    assert node.fs is not None and node.pb is not None
    own = node.fs.data or b""
    pos = 0
    if own:
        if start < len(own):
            yield own[start : min(end, len(own))]
        pos = len(own)
    links = node.pb.links
    if len(node.fs.blocksizes) != len(links):
        if links:
            raise UnixFSError(f"{CID.from_bytes(node.cid)}: {len(links)} links but "
                              f"{len(node.fs.blocksizes)} blocksizes")
        return
    # skip to the first child that covers ``start`` without touching the others
    sizes = node.fs.blocksizes
    i = 0
    if start > pos:
        prefix = _prefix_sums(sizes)
        i = max(0, bisect.bisect_right(prefix, start - pos) - 1)
        pos += prefix[i]
    for link, size in zip(links[i:], sizes[i:], strict=True):
        child_start, child_end = pos, pos + size
        pos = child_end
        if child_end <= start:
            continue
        if child_start >= end:
            break
        child = load_node(source, link.cid, cache)
        yield from _read_range(source, child, max(start, child_start) - child_start,
                               min(end, child_end) - child_start, depth + 1, cache)


def _prefix_sums(sizes: tuple[int, ...]) -> list[int]:
    out = [0]
    for size in sizes:
        out.append(out[-1] + size)
    return out


def iter_dir(source: BlockSource, cid: bytes, missing: list[str] | None = None) -> Iterator[tuple[str, bytes]]:
    """``(name, cid)`` of a directory's entries (basic or HAMT-sharded).

    Sub-shards absent from ``source`` are skipped and reported in ``missing`` (if given).
    """
    node = load_node(source, cid)
    if node.kind == "directory":
        assert node.pb is not None
        for link in node.pb.links:
            yield _name(link.name), link.cid
    elif node.kind == "hamt":
        yield from _iter_shard(source, node, missing, 0)
    else:
        raise UnixFSError(f"{CID.from_bytes(cid)} is a {node.kind}, not a directory")


def _name(raw: bytes | None) -> str:
    return (raw or b"").decode("utf-8", "surrogateescape")


def _iter_shard(source: BlockSource, node: Node, missing: list[str] | None, depth: int) -> Iterator[tuple[str, bytes]]:
    if depth > 64:
        raise UnixFSError("HAMT too deep")
    assert node.pb is not None and node.fs is not None
    width = max(1, len(f"{(node.fs.fanout or 256) - 1:X}"))
    for link in node.pb.links:
        name = _name(link.name)
        if len(name) == width:  # a sub-shard: its name is just the bucket index
            try:
                child = load_node(source, link.cid)
            except NotFoundError:
                if missing is not None:
                    missing.append(str(CID.from_bytes(link.cid)))
                continue
            yield from _iter_shard(source, child, missing, depth + 1)
        else:
            yield name[width:], link.cid


def resolve_path(source: BlockSource, root: bytes, path: str) -> bytes:
    """The CID at ``root/path`` (``path`` components separated by ``/``)."""
    cid = root
    for part in [p for p in path.split("/") if p]:
        for name, child in iter_dir(source, cid):
            if name == part:
                cid = child
                break
        else:
            raise NotFoundError(f"no link named {part!r} under {CID.from_bytes(cid)}")
    return cid


@dataclass(frozen=True, slots=True)
class WalkEntry:
    """One entry found by :func:`walk`: its path, CID, kind and (for files) size."""

    path: str
    cid: bytes
    kind: str
    size: int


def walk(source: BlockSource, root: bytes, prefix: str = "", missing: list[str] | None = None) -> Iterator[WalkEntry]:
    """Depth-first walk of a UnixFS tree; entries whose block is absent are reported in
    ``missing`` (as paths) and skipped."""
    stack: list[tuple[str, bytes]] = [(prefix, root)]
    while stack:
        path, cid = stack.pop()
        try:
            node = load_node(source, cid)
        except NotFoundError:
            if missing is not None:
                missing.append(path or "/")
            continue
        kind = node.kind
        if kind in ("directory", "hamt"):
            yield WalkEntry(path, cid, "directory", 0)
            children = list(iter_dir(source, cid, missing))
            for name, child in reversed(children):
                stack.append((f"{path}/{name}", child))
        else:
            yield WalkEntry(path, cid, kind, node.size if kind == "file" else 0)
