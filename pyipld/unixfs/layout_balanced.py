"""kubo's balanced file layout (boxo ipld/unixfs/importer/balanced/builder.go).

kubo builds it top-down; the same tree comes out of this bottom-up, streaming
form: every leaf sits at the same depth, nodes are filled left to right with
``max_links`` children, and the root is the smallest full-depth node over all
leaves (a single-leaf file is its leaf; a trailing node with one child stays a
real node). Memory: at most ``max_links`` links per level.

A level is wrapped into a parent only when another link must go into it, so the
root is always made last and can carry the metadata (mode/mtime).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..blockstore import BlockSink
from ..cid import CidBuilder
from .nodes import FileLink, LeafMaker, Metadata, encode_file_node, make_empty_file

__all__ = ["build_balanced"]


def build_balanced(
    chunks: Iterable[bytes],
    leaves: LeafMaker,
    builder: CidBuilder,
    sink: BlockSink,
    *,
    max_links: int,
    meta: Metadata | None = None,
    encoded: Iterable[tuple[bytes, bytes, int]] | None = None,
) -> FileLink:
    """Build the balanced DAG of ``chunks``; returns the root's link.

    Args:
        chunks: the file's chunks, in order.
        encoded: alternatively, already-encoded leaves ``(cid, block, chunk_len)``
            (e.g. hashed on worker threads); ``chunks`` is then ignored.
    """
    levels: list[list[FileLink]] = [[]]
    first: tuple[bytes, bytes, bytes | None] | None = None  # held until we know it is not the root

    def push(level: int, link: FileLink) -> None:
        if len(levels[level]) == max_links:
            if level + 1 == len(levels):
                levels.append([])
            push(level + 1, encode_file_node(levels[level], builder, sink))
            levels[level] = []
        levels[level].append(link)

    count = 0
    source = encoded if encoded is not None else ((*leaves.encode(c), c) for c in chunks)  # type: ignore[misc]
    for cid, block, chunk in source:
        size = chunk if isinstance(chunk, int) else len(chunk)
        link = FileLink(cid, len(block), size)
        count += 1
        if count == 1:
            first = (cid, block, chunk if not isinstance(chunk, int) else None)
            levels[0].append(link)
            continue
        if count == 2 and first is not None:
            sink.put(first[0], first[1])
        sink.put(cid, block)
        push(0, link)

    if count == 0:
        return make_empty_file(builder, sink, raw=leaves.raw, meta=meta)
    if count == 1:
        assert first is not None
        cid, block, chunk = first
        if meta:
            if chunk is None:
                raise ValueError("a file root with metadata needs its chunk, not a pre-encoded leaf")
            cid, block = leaves.encode_with_metadata(chunk, meta)
        sink.put(cid, block)
        return FileLink(cid, len(block), levels[0][0].data_size)

    level = 0
    while level < len(levels) - 1:  # flushing a level may add one above it
        if levels[level]:
            pending, levels[level] = levels[level], []
            push(level + 1, encode_file_node(pending, builder, sink))
        level += 1
    return encode_file_node(levels[-1], builder, sink, meta)
