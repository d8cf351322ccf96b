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

__all__ = ["LAYER_REPEAT", "trickle_from_links"]

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


def trickle_from_links(
    links: Iterable[FileLink], builder: CidBuilder, sink: BlockSink, *, max_links: int,
    meta: Metadata | None = None,
) -> FileLink:
    """Build the trickle DAG over already-stored leaves; returns the root's link."""
    pending = _Peekable(iter(links))

    def fill(max_depth: int) -> list[FileLink]:
        children: list[FileLink] = []
        while len(children) < max_links and pending:
            children.append(pending.pop())
        depth = 1
        while (max_depth < 0 or depth < max_depth) and pending:
            for _ in range(LAYER_REPEAT):
                if not pending:
                    break
                children.append(encode_file_node(fill(depth), builder, sink))
            depth += 1
        return children

    return encode_file_node(fill(-1), builder, sink, meta)
