"""kubo's trickle file layout (boxo ipld/unixfs/importer/trickle/trickledag.go).

The root is always an internal node (even for one chunk); each node first takes
up to ``max_links`` leaves, then up to 4 (``LAYER_REPEAT``) sub-trees of depth
1, 4 of depth 2, … Trickle dag-pb leaves are UnixFS ``Raw`` (type 0).
Memory: one partly-filled node per level.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

from ..blockstore import BlockSink
from ..cid import CidBuilder
from .nodes import FileLink, Metadata, encode_file_node

__all__ = ["LAYER_REPEAT", "trickle_from_links", "trickle_subtree"]

LAYER_REPEAT: Final = 4  # boxo trickle.depthRepeat


class _Peekable:
    def __init__(self, items: Iterator[FileLink]) -> None:
        self._items = items
        self._next: FileLink | None = next(items, None)

    def __bool__(self) -> bool:
        return self._next is not None

    def pop(self) -> FileLink:
        item = self._next
        assert item is not None
        self._next = next(self._items, None)
        return item


def _fill(pending: _Peekable, max_depth: int, max_links: int, builder: CidBuilder, sink: BlockSink) -> list[FileLink]:
    """boxo fillTrickleRec: up to ``max_links`` leaves, then 4 subtrees of depth 1, 2, … below ``max_depth``."""
    children: list[FileLink] = []
    while len(children) < max_links and pending:
        children.append(pending.pop())
    depth = 1
    while (max_depth < 0 or depth < max_depth) and pending:
        for _ in range(LAYER_REPEAT):
            if not pending:
                break
            children.append(encode_file_node(_fill(pending, depth, max_links, builder, sink), builder, sink))
        depth += 1
    return children


def trickle_from_links(
    links: Iterable[FileLink], builder: CidBuilder, sink: BlockSink, *, max_links: int,
    meta: Metadata | None = None,
) -> FileLink:
    """Build the trickle DAG over already-stored leaves; returns the root's link."""
    return encode_file_node(_fill(_Peekable(iter(links)), -1, max_links, builder, sink), builder, sink, meta)


def trickle_subtree(links: Iterable[FileLink], depth: int, builder: CidBuilder, sink: BlockSink, *,
                    max_links: int) -> FileLink:
    """One depth-``depth`` child of a trickle root over its leaves (for parallel imports):
    the root's children are its first ``max_links`` leaves, then such subtrees in order."""
    return encode_file_node(_fill(_Peekable(iter(links)), depth, max_links, builder, sink), builder, sink)
