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

from collections.abc import Iterable, Iterator
from itertools import chain

from ..blockstore import BlockSink
from ..chunker import BytesLike
from ..cid import CidBuilder
from .nodes import FileLink, Metadata, encode_file_node, make_empty_file

__all__ = ["balanced_from_links", "group_rounds", "split_single"]


def balanced_from_links(
    links: Iterable[FileLink],
    builder: CidBuilder,
    sink: BlockSink,
    *,
    max_links: int,
    raw_leaves: bool,
    meta: Metadata | None = None,
) -> FileLink:
    """Build the balanced DAG over already-stored leaves; returns the root's link.

    A one-leaf file is its leaf, which cannot carry ``meta``: callers with
    metadata handle that case first (see :func:`split_single`).
    """
    levels: list[list[FileLink]] = [[]]

    def push(level: int, link: FileLink) -> None:
        if len(levels[level]) == max_links:
            if level + 1 == len(levels):
                levels.append([])
            push(level + 1, encode_file_node(levels[level], builder, sink))
            levels[level] = []
        levels[level].append(link)

    bottom = levels[0]
    count = 0
    for link in links:
        count += 1
        if len(bottom) < max_links:  # the common case, without a call
            bottom.append(link)
        else:
            push(0, link)
            bottom = levels[0]
    if count == 0:
        return make_empty_file(builder, sink, raw=raw_leaves, meta=meta)
    if count == 1:
        if meta:
            raise ValueError("a one-chunk file with metadata is a re-encoded leaf: use split_single first")
        return levels[0][0]
    level = 0
    while level < len(levels) - 1:  # flushing a level may add one above it
        if levels[level]:
            pending, levels[level] = levels[level], []
            push(level + 1, encode_file_node(pending, builder, sink))
        level += 1
    return encode_file_node(levels[-1], builder, sink, meta)


def group_rounds(links: Iterable[FileLink], rounds: int, builder: CidBuilder, sink: BlockSink, *,
                 max_links: int) -> list[FileLink]:
    """``rounds`` rounds of grouping consecutive nodes by ``max_links`` (a lone trailing node is
    wrapped too): the level-``rounds`` nodes over ``links``. A task of a parallel import that
    covers ``max_links ** rounds`` leaves (or the file's partial last task) gets one node.
    """
    level = list(links)
    for _ in range(rounds):
        level = [encode_file_node(level[i : i + max_links], builder, sink) for i in range(0, len(level), max_links)]
    return level


def split_single(chunks: Iterable[BytesLike]) -> tuple[bytes | None, Iterator[BytesLike]]:
    """``(the only chunk, …)`` for a one-chunk input, else ``(None, all chunks)``."""
    it = iter(chunks)
    first = next(it, None)
    if first is None:
        return None, iter(())
    second = next(it, None)
    if second is None:
        return bytes(first), iter(())
    return None, chain((first, second), it)
