"""Write a fetched UnixFS DAG (file or plain directory) from a BlockSource to disk.

A stop-gap until the lead's ``pyipld.unixfs.reader`` lands on main: files are
streamed block by block in order (bounded memory), directories are created
entry by entry; HAMT-sharded directories and symlinks are refused with a clear
error. Names that could escape the destination raise UnsafePathError. Files
are written to a temporary name and renamed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..blockstore import BlockSource, get_verified
from ..cid import CID, DAG_PB, RAW
from ..dagpb import decode_pbnode
from ..errors import UnixFSError, UnsafePathError
from ..unixfs.data import DataType, decode_unixfs_data

__all__ = ["iter_file_bytes", "write_tree"]

_MAX_DEPTH = 4096  # directory nesting / file tree depth guard


def iter_file_bytes(source: BlockSource, cid: bytes) -> Iterator[bytes]:
    """A UnixFS file's bytes in order (depth first, one block at a time)."""
    frames: list[tuple[list[bytes], int]] = [([cid], 0)]  # explicit stack: (children, next index)
    while frames:
        links, i = frames[-1]
        if i >= len(links):
            frames.pop()
            continue
        frames[-1] = (links, i + 1)
        child = links[i]
        data = get_verified(source, child)
        codec = CID.from_bytes(child).codec
        if codec == RAW:
            yield data
            continue
        if codec != DAG_PB:
            raise UnixFSError(f"{CID.from_bytes(child)}: codec 0x{codec:x} in a UnixFS file")
        node = decode_pbnode(data)
        fs = decode_unixfs_data(node.data or b"")
        if fs.type not in (DataType.FILE, DataType.RAW):
            raise UnixFSError(f"{CID.from_bytes(child)} is a UnixFS {fs.type.name.lower()}, not a file")
        if fs.data:
            yield fs.data
        if node.links:
            if len(frames) > _MAX_DEPTH:
                raise UnixFSError(f"file DAG deeper than {_MAX_DEPTH}")
            frames.append(([link.cid for link in node.links], 0))


def _kind(source: BlockSource, cid: bytes) -> DataType:
    if CID.from_bytes(cid).codec == RAW:
        return DataType.RAW
    node = decode_pbnode(get_verified(source, cid))
    return decode_unixfs_data(node.data or b"").type


def _safe_name(raw: bytes | None) -> str:
    name = (raw or b"").decode("utf-8", "surrogateescape")
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise UnsafePathError(f"unsafe directory entry name {name!r}")
    return name


def _write_file(source: BlockSource, cid: bytes, dest: Path) -> int:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".pyipld-")
    total = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in iter_file_bytes(source, cid):
                out.write(chunk)
                total += len(chunk)
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise
    return total


def write_tree(source: BlockSource, cid: bytes, dest: str | os.PathLike[str]) -> int:
    """Write the file or directory ``cid`` to ``dest``; returns file bytes written."""
    root = Path(dest)
    total = 0
    work: list[tuple[bytes, Path, int]] = [(cid, root, 0)]
    while work:
        node_cid, path, depth = work.pop()
        kind = _kind(source, node_cid)
        if kind in (DataType.FILE, DataType.RAW):
            total += _write_file(source, node_cid, path)
        elif kind is DataType.DIRECTORY:
            if depth > _MAX_DEPTH:
                raise UnixFSError(f"directories nested deeper than {_MAX_DEPTH}")
            path.mkdir(exist_ok=path == root)
            node = decode_pbnode(get_verified(source, node_cid))
            for link in node.links:
                work.append((link.cid, path / _safe_name(link.name), depth + 1))
        else:
            raise UnixFSError(f"{CID.from_bytes(node_cid)}: UnixFS {kind.name.lower()} is not supported here yet")
    return total
