"""Reading UnixFS DAGs: load a node, list a directory (basic or HAMT), walk a tree.

Every block comes through :func:`~pyipld.blockstore.get_verified`, so a block
that does not hash to its CID is an :class:`~pyipld.errors.IntegrityError`.
Shapes that are not UnixFS (a directory without Data, a link to a block of
another codec where a UnixFS node is required, a malformed HAMT) raise
:class:`~pyipld.errors.UnixFSError`. Directory names are returned as raw bytes,
unchecked: :mod:`pyipld.unixfs.extract` decides what is safe to write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from ..blockstore import BlockSource, get_verified
from ..cid import CID, DAG_PB, RAW
from ..dagpb import PBNode, decode_pbnode
from ..errors import ConfigError, NotFoundError, UnixFSError
from .data import DataType, UnixFSData, decode_unixfs_data
from .hamt import hamt_lookup, iter_hamt, shard_shape

__all__ = ["DirectoryEntry", "NodeKind", "OnMissing", "UnixFSNode", "iter_directory", "load_node", "lookup", "walk"]

NodeKind = Literal["file", "directory", "symlink", "other"]

_MAX_WALK_DEPTH = 4096  # directories nested deeper than any file system allows

@dataclass(frozen=True, slots=True)
class UnixFSNode:
    """One decoded block.

    Attributes:
        cid: its binary CID.
        block: the block bytes.
        pb: the dag-pb node (``None`` for raw blocks and other codecs).
        data: the UnixFS Data (``None`` for raw blocks and other codecs).
    """

    cid: bytes
    block: bytes
    pb: PBNode | None
    data: UnixFSData | None

    @property
    def kind(self) -> NodeKind:
        """``file`` (raw block or File/Raw), ``directory`` (incl. HAMT), ``symlink``, ``other``."""
        if self.pb is None:
            return "file" if CID.from_bytes(self.cid).codec == RAW else "other"
        assert self.data is not None
        t = self.data.type
        if t in (DataType.FILE, DataType.RAW):
            return "file"
        if t in (DataType.DIRECTORY, DataType.HAMT_SHARD):
            return "directory"
        if t == DataType.SYMLINK:
            return "symlink"
        return "other"

    @property
    def file_size(self) -> int:
        """Bytes of file content (0 for non-files)."""
        if self.pb is None:
            return len(self.block) if self.kind == "file" else 0
        assert self.data is not None
        if self.kind != "file":
            return 0
        if self.data.filesize is not None:
            return self.data.filesize
        return len(self.data.data or b"") + sum(self.data.blocksizes)  # as the reader counts it

    @property
    def sharded(self) -> bool:
        return self.data is not None and self.data.type == DataType.HAMT_SHARD

@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """A named link out of a directory."""

    name: bytes
    cid: CID
    tsize: int | None

def load_node(source: BlockSource, cid: bytes | CID) -> UnixFSNode:
    """Fetch, verify and decode one block.

    Raises:
        NotFoundError, IntegrityError: from the source.
        DagPBError / UnixFSError: a dag-pb block that is not UnixFS.
    """
    raw_cid = cid.bytes if isinstance(cid, CID) else cid
    block = get_verified(source, raw_cid)
    codec = CID.from_bytes(raw_cid).codec
    if codec != DAG_PB:
        return UnixFSNode(raw_cid, block, None, None)
    pb = decode_pbnode(block)
    if pb.data is None:
        raise UnixFSError(f"dag-pb node {CID.from_bytes(raw_cid)} has no UnixFS data")
    return UnixFSNode(raw_cid, block, pb, decode_unixfs_data(pb.data))

def _check_node(func: str, node: object) -> None:
    """Refuse a CID (or anything else) where a loaded :class:`UnixFSNode` is expected."""
    if not isinstance(node, UnixFSNode):
        raise ConfigError(f"{func} takes a UnixFSNode, not a {type(node).__name__}: "
                          "pass load_node(source, cid)")


def iter_directory(
    source: BlockSource, node: UnixFSNode, on_missing: Callable[[bytes], None] | None = None
) -> Iterator[DirectoryEntry]:
    """The entries of a basic or HAMT directory, in link order.

    ``on_missing``: called with the CID of each HAMT sub-shard absent from ``source``,
    which is then skipped (a partial DAG); without it a missing shard is an error.

    Raises:
        UnixFSError: ``node`` is not a directory, or a shard is malformed.
    """
    _check_node("iter_directory", node)
    if node.pb is None or node.data is None or node.kind != "directory":
        raise UnixFSError(f"{CID.from_bytes(node.cid)} is not a directory")
    if node.data.type == DataType.DIRECTORY:
        for link in node.pb.links:
            yield DirectoryEntry(link.name or b"", CID.from_bytes(link.cid), link.tsize)
        return
    shape = shard_shape(node.pb, node.data)
    for name, link in iter_hamt(lambda c: get_verified(source, c), shape, on_missing):
        yield DirectoryEntry(name, CID.from_bytes(link.cid), link.tsize)

def lookup(source: BlockSource, node: UnixFSNode, name: bytes) -> DirectoryEntry | None:
    """The entry ``name`` of a directory node (HAMTs: by hash, loading only one path)."""
    _check_node("lookup", node)
    if not isinstance(name, bytes):
        raise ConfigError(f"lookup takes the name as bytes, not a {type(name).__name__}: encode it first")
    if node.pb is None or node.data is None or node.kind != "directory":
        raise UnixFSError(f"{CID.from_bytes(node.cid)} is not a directory")
    if node.data.type == DataType.DIRECTORY:
        for link in node.pb.links:
            if link.name == name:
                return DirectoryEntry(name, CID.from_bytes(link.cid), link.tsize)
        return None
    found = hamt_lookup(lambda c: get_verified(source, c), shard_shape(node.pb, node.data), name)
    return None if found is None else DirectoryEntry(name, CID.from_bytes(found.cid), found.tsize)

OnMissing = Callable[[tuple[bytes, ...], bytes], None]


def walk(
    source: BlockSource, root: bytes | CID, on_missing: OnMissing | None = None
) -> Iterator[tuple[tuple[bytes, ...], UnixFSNode]]:
    """Every node under ``root`` as ``(path components, node)``, parents before children.

    ``on_missing(path, cid)``: called for each node absent from ``source`` (path = its
    own path; for a missing HAMT sub-shard, the directory's path), which is then
    skipped — a partial DAG is walked as far as it goes. Without it a missing block
    raises :class:`~pyipld.errors.NotFoundError`.

    Raises:
        UnixFSError: a directory that links to one of its ancestors, or nesting
            deeper than 4096 levels.
    """
    root_cid = root.bytes if isinstance(root, CID) else root
    try:
        first = load_node(source, root_cid)
    except NotFoundError:
        if on_missing is None:
            raise
        on_missing((), root_cid)
        return
    yield (), first
    if first.kind != "directory":
        return

    def entries_of(path: tuple[bytes, ...], node: UnixFSNode) -> Iterator[DirectoryEntry]:
        shard_missing = None if on_missing is None else (lambda cid: on_missing(path, cid))
        return iter_directory(source, node, shard_missing)

    stack: list[tuple[tuple[bytes, ...], Iterator[DirectoryEntry]]] = [((), entries_of((), first))]
    ancestors = [first.cid]
    while stack:
        path, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            ancestors.pop()
            continue
        child_path = (*path, entry.name)
        try:
            child = load_node(source, entry.cid)
        except NotFoundError:
            if on_missing is None:
                raise
            on_missing(child_path, entry.cid.bytes)
            continue
        yield child_path, child
        if child.kind == "directory":
            if child.cid in ancestors:
                raise UnixFSError(f"directory cycle at /{b'/'.join(child_path)!r}")
            if len(stack) >= _MAX_WALK_DEPTH:
                raise UnixFSError(f"directories nested deeper than {_MAX_WALK_DEPTH} levels")
            stack.append((child_path, entries_of(child_path, child)))
            ancestors.append(child.cid)
