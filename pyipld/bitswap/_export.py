"""Write a fetched UnixFS DAG from a BlockSource to disk (``pyipld get --peer``).

A thin front over the project's UnixFS reader and safe extractor
(:mod:`pyipld.unixfs.reader`, :mod:`pyipld.unixfs.extract`): files, basic and
HAMT-sharded directories and symlinks; names that could escape the destination
raise UnsafePathError; files are written to a temporary name and renamed. Like
``ipfs get``, stored mode/mtime are not restored.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ..blockstore import BlockSource
from ..unixfs.extract import extract
from ..unixfs.reader import iter_file

__all__ = ["iter_file_bytes", "write_tree"]


def iter_file_bytes(source: BlockSource, cid: bytes) -> Iterator[bytes]:
    """A UnixFS file's bytes in order (one block at a time, every block hash-checked)."""
    return iter_file(source, cid)


def write_tree(source: BlockSource, cid: bytes, dest: str | os.PathLike[str]) -> int:
    """Write the file or directory ``cid`` to ``dest`` (which must not exist); returns file bytes written."""
    return extract(source, cid, dest, metadata=False).file_bytes
