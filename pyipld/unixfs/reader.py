"""Read a UnixFS file back from blocks: whole, by byte range, or as a file object.

Theory of operation
-------------------
A file is a DAG whose leaves are raw blocks or dag-pb UnixFS ``File``/``Raw``
nodes, and whose internal nodes are dag-pb UnixFS ``File`` nodes listing one
``blocksizes`` entry (the file bytes under that child) per link
(shared/spec/unixfs-importer.md §1.4, ipfs/specs unixfs.md). A node's bytes are
its own ``Data`` followed by its children's bytes, in link order.

The walk is iterative (an explicit stack, never Python recursion) and visits
only the children whose byte span meets the requested range, so a read of
``length`` bytes fetches about ``depth + length / chunk_size`` blocks. Every
block is hash-checked against its CID before it is decoded
(:func:`pyipld.blockstore.get_verified`); identity CIDs carry their own bytes.

Every node checks the sizes its parent promised: a child must hold exactly its
``blocksizes`` entry, ``filesize`` must equal ``len(Data) + Σ blocksizes``, and
there must be one ``blocksizes`` entry per link. A DAG deeper than
``max_depth`` or that links a node below itself is refused. Hostile numbers are
only compared, never used to allocate.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Final

from .._args import index_arg
from .._varint import decode_varint
from ..blockstore import BlockSource, check_source, get_verified
from ..cid import CID, DAG_PB, RAW
from ..dagpb import decode_pbnode
from ..errors import ConfigError, DecodeError, NotFoundError, UnixFSError
from .data import DataType, decode_unixfs_data
from .resolve import resolve_path

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "FileNode",
    "UnixFSFile",
    "UnixFSReader",
    "decode_file_node",
    "file_size",
    "iter_file",
    "open_file",
    "plain_leaf_data",
    "read_file",
]

# kubo's deepest real trees are far below this: a balanced DAG with the minimum
# of 2 links per node needs depth 64 for 2**64 chunks; trickle grows more slowly.
DEFAULT_MAX_DEPTH: Final = 128
_NODE_CACHE: Final = 256  # decoded internal nodes kept for random access (a few KiB each)
_RAW_PREFIX: Final = bytes([1, RAW])  # CIDv1, raw: a leaf
_LEAF_BATCH: Final = 8  # leaves asked of a ``get_many`` source at once (2 MiB of kubo leaves)
_RAW_SHA256: Final = bytes([1, RAW, 0x12, 0x20])  # CIDv1, raw, sha2-256, 32-byte digest


@dataclass(frozen=True, slots=True)
class FileNode:
    """One decoded block of a file DAG.

    Attributes:
        cid: binary CID of the block.
        data: the file bytes held in this block itself (a leaf's chunk, or an
            internal node's inline Data, usually empty).
        links: binary CIDs of the children, in order.
        blocksizes: file bytes under each child (same length as ``links``).
        size: total file bytes under this node.
    """

    cid: bytes
    data: bytes
    links: tuple[bytes, ...]
    blocksizes: tuple[int, ...]
    size: int


def _name(cid: bytes) -> str:
    try:
        return str(CID.from_bytes(cid))
    except DecodeError:
        return cid.hex()


def plain_leaf_data(block: bytes) -> bytes | None:
    """The chunk of a dag-pb leaf in the exact form importers write, else None.

    Recognizes only ``0a L ‖ 08 T ‖ [12 n chunk] ‖ [18 n]`` filling the whole block,
    with T = File or Raw and filesize (when present) = n — a form the strict
    decoders accept with the same meaning — and copies the chunk once instead of
    twice (dag-pb Data, then UnixFS Data). Anything else returns None and goes
    through the strict decoders, which give the answer or the error.
    """
    end = len(block)
    if end < 4 or block[0] != 0x0A:
        return None
    try:
        size, n = decode_varint(block, 1, max_bytes=10)
        i = 1 + n
        if size < 2 or i + size != end or block[i] != 0x08 or block[i + 1] not in (0, 2):
            return None
        i += 2
        start = length = 0
        if i < end and block[i] == 0x12:
            length, n = decode_varint(block, i + 1, max_bytes=10)
            start = i + 1 + n
            i = start + length
        if i < end and block[i] == 0x18:
            filesize, n = decode_varint(block, i + 1, max_bytes=10)
            if filesize != length:
                return None
            i += 1 + n
    except DecodeError:
        return None
    if i != end:
        return None
    return block[start : start + length]


def decode_file_node(cid: bytes, block: bytes) -> FileNode:
    """Interpret a (verified) block as part of a UnixFS file.

    Raises:
        UnixFSError: not a file block, or inconsistent sizes.
        DagPBError: the block is not dag-pb.
    """
    if len(cid) == 36 and cid[:4] == _RAW_SHA256:  # the common raw leaf: no CID parse
        return FileNode(cid, block, (), (), len(block))
    parsed = CID.from_bytes(cid)
    if parsed.codec == RAW:
        return FileNode(cid, block, (), (), len(block))
    if parsed.codec != DAG_PB:
        raise UnixFSError(f"block {parsed} has codec 0x{parsed.codec:x}; a UnixFS file is dag-pb or raw")
    leaf = plain_leaf_data(block)
    if leaf is not None:
        return FileNode(cid, leaf, (), (), len(leaf))
    try:
        node = decode_pbnode(block)
    except DecodeError as exc:
        raise type(exc)(f"block {parsed}: {exc}", offset=exc.offset) from exc
    if node.data is None:
        raise UnixFSError(f"block {parsed}: dag-pb node without UnixFS Data")
    try:
        fs = decode_unixfs_data(node.data)
    except DecodeError as exc:
        raise UnixFSError(f"block {parsed}: {exc}", offset=exc.offset) from exc
    if fs.type not in (DataType.FILE, DataType.RAW):
        raise UnixFSError(f"block {parsed} is a UnixFS {fs.type.name.lower()}, not a file")
    data = fs.data or b""
    links = tuple(link.cid for link in node.links)
    if len(fs.blocksizes) != len(links):
        raise UnixFSError(
            f"block {parsed}: {len(links)} links but {len(fs.blocksizes)} blocksizes entries"
        )
    size = len(data) + sum(fs.blocksizes)
    if fs.filesize is not None and fs.filesize != size:
        raise UnixFSError(
            f"block {parsed}: filesize {fs.filesize} != data {len(data)} + sum(blocksizes) {size - len(data)}"
        )
    return FileNode(cid, data, links, fs.blocksizes, size)


class UnixFSReader:
    """Reads one file DAG from a :class:`BlockSource`.

    One reader may be shared by threads (each :meth:`iter_range` walk is
    independent; the node cache tolerates concurrent use) if the source allows it.

    Args:
        source: where blocks come from.
        root: the file's root CID (text, binary or :class:`CID`).
        max_depth: refuse DAGs deeper than this (root = depth 0).
        verify: hash-check every block (turn off only for trusted stores).
    """

    def __init__(self, source: BlockSource, root: CID | str | bytes, *, max_depth: int = DEFAULT_MAX_DEPTH,
                 verify: bool = True) -> None:
        check_source(source)
        self.source = source
        self.root = CID.parse(root).bytes
        self.max_depth = max_depth
        self.verify = verify
        self._nodes: OrderedDict[bytes, FileNode] = OrderedDict()
        self._root_node: FileNode | None = None

    # -- blocks -----------------------------------------------------------------------
    def _get(self, cid: bytes) -> bytes:
        try:
            if self.verify:
                return get_verified(self.source, cid)
            parsed = CID.from_bytes(cid)
            return parsed.digest if parsed.hash_code == 0 else self.source.get(cid)
        except NotFoundError:
            raise
        except KeyError:  # a foreign BlockSource: still name the block
            raise NotFoundError(f"block not found: {_name(cid)}") from None

    def node(self, cid: bytes) -> FileNode:
        """Fetch, verify and decode one block (internal nodes are cached)."""
        cached = self._nodes.get(cid)
        if cached is not None:
            with suppress(KeyError):  # another thread may have just evicted it
                self._nodes.move_to_end(cid)
            return cached
        node = decode_file_node(cid, self._get(cid))
        if node.links:
            self._nodes[cid] = node
            while len(self._nodes) > _NODE_CACHE:
                with suppress(KeyError):
                    self._nodes.popitem(last=False)
        return node

    @property
    def size(self) -> int:
        """File size in bytes (from the root block)."""
        if self._root_node is None:
            self._root_node = self.node(self.root)
        return self._root_node.size

    # -- the walk ---------------------------------------------------------------------
    def iter_range(self, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Yield the file bytes in ``[offset, offset + length)`` (to EOF if ``length`` is None).

        Raises:
            ConfigError: ``offset`` or ``length`` negative or not an integer.
            NotFoundError: a needed block is missing (message names its CID).
            IntegrityError: a block does not hash to its CID.
            UnixFSError / DagPBError: a block is not a consistent part of a file.
        """
        _check_range(offset, length)
        size = self.size
        end = size if length is None else min(size, offset + length)
        if offset >= end:
            return
        # a verifying source that hashes several blocks at once (the fsspec chain) gets raw leaves in
        # batches; a reader that verifies blocks itself asks for them one by one
        get_many = None if self.verify else getattr(self.source, "get_many", None)
        # Stack entries: (cid, start offset of its bytes in the file, depth, expected size).
        stack: list[tuple[bytes, int, int, int]] = [(self.root, 0, 0, size)]
        path: list[bytes] = []  # CIDs from the root down to the current node
        while stack:
            cid, start, depth, expected = stack.pop()
            if depth > self.max_depth:
                raise UnixFSError(f"file DAG deeper than max_depth={self.max_depth} at block {_name(cid)}")
            del path[depth:]
            if cid in path:
                raise UnixFSError(f"cycle: block {_name(cid)} links to itself through its children")
            path.append(cid)
            node = self.node(cid)
            _check_size(cid, node.size, expected)
            pos = start
            if node.data:
                if (part := _part(node.data, pos, offset, end)) is not None:
                    yield part
                pos += len(node.data)
            children: list[tuple[bytes, int, int, int]] = []
            for child, child_size in zip(node.links, node.blocksizes):
                if pos >= end:
                    break
                if pos + child_size > offset:
                    children.append((child, pos, depth + 1, child_size))
                pos += child_size
            if get_many is not None and children and depth + 1 <= self.max_depth:
                # children of a node whose first child is a leaf are leaves (balanced DAGs) or mostly so
                first, first_pos, _, first_size = children[0]
                if first[:2] == _RAW_PREFIX:
                    children = yield from self._leaves(get_many, children, offset, end)
                elif not (first_node := self.node(first)).links:  # a dag-pb leaf, used as fetched
                    _check_size(first, first_node.size, first_size)
                    if (part := _part(first_node.data, first_pos, offset, end)) is not None:
                        yield part
                    children = yield from self._leaves(get_many, children[1:], offset, end)
            stack.extend(reversed(children))

    def _leaves(self, get_many: Callable[[list[bytes]], list[bytes]], children: list[tuple[bytes, int, int, int]],
                offset: int, end: int) -> Generator[bytes, None, list[tuple[bytes, int, int, int]]]:
        """The bytes of leaf children, fetched ``_LEAF_BATCH`` at a time from a source that verifies
        several blocks at once, each checked against its parent's blocksizes. Returns the children
        from the first one that is not a leaf on (for the walk's stack), else none."""
        for i in range(0, len(children), _LEAF_BATCH):
            batch = children[i : i + _LEAF_BATCH]
            for k, ((cid, pos, _, expected), data) in enumerate(zip(batch, get_many([c[0] for c in batch]))):
                node = decode_file_node(cid, data)
                if node.links:  # a subtree among the leaves (trickle): the walk goes on from it
                    return children[i + k :]
                _check_size(cid, node.size, expected)
                if (part := _part(node.data, pos, offset, end)) is not None:
                    yield part
        return []

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        """The bytes of :meth:`iter_range` joined (mind the size for big files)."""
        return b"".join(self.iter_range(offset, length))

    def read_into(self, offset: int, out: memoryview | bytearray) -> int:
        """Copy the file bytes from ``offset`` into ``out`` (until it is full or the file ends);
        returns how many were written. Each leaf is copied once, straight from its block."""
        view = memoryview(out).cast("B")
        pos = 0
        for part in self.iter_range(offset, len(view)):
            n = len(part)
            view[pos : pos + n] = part
            pos += n
        return pos


class UnixFSFile(io.RawIOBase):
    """A seekable, read-only binary file over a UnixFS DAG (e.g. for data loaders).

    Sequential reads stream through one walk; a seek starts a new walk, which
    reuses the cached internal nodes, so random reads cost about one leaf fetch.
    """

    def __init__(self, reader: UnixFSReader) -> None:
        super().__init__()
        self._reader = reader
        self._size = reader.size
        self._pos = 0
        self._stream: Iterator[bytes] | None = None
        self._stream_pos = 0  # file offset of the first byte in _pending
        self._pending = memoryview(b"")

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._checkClosed()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def read(self, size: int | None = -1, /) -> bytes:
        """Up to ``size`` bytes; a ``size`` past the end allocates only what is left."""
        return super().read(_clamped(size, self._size - self._pos)) or b""

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        self._checkClosed()
        out = memoryview(buffer).cast("B")
        want = len(out)
        if want == 0 or self._pos >= self._size:
            return 0
        if self._stream is None or self._stream_pos != self._pos:
            self._stream = self._reader.iter_range(self._pos)
            self._stream_pos = self._pos
            self._pending = memoryview(b"")
        got = 0
        while got < want:
            if not self._pending:
                try:
                    piece = next(self._stream, None)
                except BaseException:
                    self._stream = None  # a failed walk is dead: the next read starts afresh
                    raise
                if piece is None:
                    break
                self._pending = memoryview(piece)
            n = min(want - got, len(self._pending))
            out[got : got + n] = self._pending[:n]
            self._pending = self._pending[n:]
            got += n
        self._pos += got
        self._stream_pos = self._pos
        return got

    def readall(self) -> bytes:
        parts: list[bytes] = []
        while True:
            chunk = self.read(1 << 20)
            if not chunk:
                return b"".join(parts)
            parts.append(chunk)

    def close(self) -> None:
        self._stream = None
        self._pending = memoryview(b"")
        super().close()


def _check_range(offset: object, length: object) -> None:
    """Refuse an ``offset``/``length`` that is negative or not an int (``length`` may be None).

    Raises:
        ConfigError: a float, str, other non-int, or a negative value.
    """
    checked = index_arg(offset, "offset"), None if length is None else index_arg(length, "length")
    if any(v is not None and v < 0 for v in checked):
        raise ConfigError("offset and length must not be negative")


def _clamped(size: int | None, left: int) -> int:
    """``size`` cut to the ``left`` bytes a file has after its position (``None``/negative: -1, all)."""
    if size is None or size < 0:
        return -1
    return min(size, max(left, 0))


class _BufferedUnixFSFile(io.BufferedReader):
    """``io.BufferedReader`` whose ``read(n)``/``read1(n)`` allocate no more than the file has left.

    CPython's reader allocates ``n`` bytes first: ``read(10**12)`` on a small file was a
    MemoryError (or a huge allocation) instead of the file's last bytes.
    """

    def __init__(self, raw: UnixFSFile, buffer_size: int) -> None:
        super().__init__(raw, buffer_size=buffer_size)
        self._size = raw.size

    def read(self, size: int | None = -1, /) -> bytes:
        return super().read(_clamped(size, self._size - self.tell()))

    def read1(self, size: int = -1, /) -> bytes:
        return super().read1(_clamped(size, self._size - self.tell()))


def iter_file(source: BlockSource, root: CID | str | bytes, *, offset: int = 0, length: int | None = None,
              max_depth: int = DEFAULT_MAX_DEPTH) -> Iterator[bytes]:
    """Stream a file's bytes (or a range of them) from ``source``, verifying every block."""
    return UnixFSReader(source, root, max_depth=max_depth).iter_range(offset, length)


def read_file(source: BlockSource, root: CID | str | bytes, *, offset: int = 0, length: int | None = None) -> bytes:
    """A file's bytes (or a range of them) as one ``bytes``."""
    return UnixFSReader(source, root).read(offset, length)


def file_size(source: BlockSource, root: CID | str | bytes) -> int:
    """The file's size, from its root block alone."""
    return UnixFSReader(source, root).size


def open_file(source: BlockSource, root: CID | str | bytes, *, buffering: int = io.DEFAULT_BUFFER_SIZE,
              max_depth: int = DEFAULT_MAX_DEPTH) -> io.BufferedReader | UnixFSFile:
    """Open a file DAG as a read-only binary file object (buffered unless ``buffering=0``;
    a negative ``buffering`` is the default size, as for :func:`open`).

    ``root`` is a CID, or as text an IPFS path (``CID/dir/file``, ``/ipfs/CID/…``) resolved
    through its directories first.
    """
    if isinstance(root, str) and "/" in root.strip("/"):
        root = resolve_path(source, root).cid
    raw = UnixFSFile(UnixFSReader(source, root, max_depth=max_depth))
    if buffering == 0:
        return raw
    return _BufferedUnixFSFile(raw, buffering if buffering > 0 else io.DEFAULT_BUFFER_SIZE)


def _check_size(cid: bytes, size: int, expected: int) -> None:
    """A node holds the file bytes its parent's ``blocksizes`` promised."""
    if size != expected:
        raise UnixFSError(f"block {_name(cid)} holds {size} file bytes but its parent's blocksizes say {expected}")


def _part(data: bytes, pos: int, offset: int, end: int) -> bytes | None:
    """What of ``data`` (the file bytes from ``pos``) falls in ``[offset, end)``: all of it, a
    slice, or None."""
    lo, hi = max(offset, pos), min(end, pos + len(data))
    if lo >= hi:
        return None
    return data if hi - lo == len(data) else data[lo - pos : hi - pos]
