"""Directory assembly: open directories collect their entries' links, finish into nodes (flat
or HAMT), and are reported in kubo's order.

An :class:`OpenDir` holds a :class:`~pyipld.unixfs.directory.DirectoryBuilder` and a
:class:`DirNode` — the small record the final report needs (its children directories and
its result), never file or block data. :func:`report_dirs` is kubo's ``outputDirs``: each
directory's children in its link order (name order, or hash order for a HAMT), then itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..directory import DirectoryBuilder, DirLink
from ..hamt import hamt_order_key
from ..nodes import Metadata
from .entries import ImportContext

if TYPE_CHECKING:
    from .dircache import DirState

__all__ = ["DirNode", "OpenDir", "open_dir", "report_dirs", "set_result"]


@dataclass(slots=True)
class DirNode:
    """What the final directory report needs: children directories and the result."""

    path: bytes
    sharded: bool = False
    cid: bytes = b""
    tsize: int = 0
    children: list[tuple[bytes, DirNode]] = field(default_factory=list)


@dataclass(slots=True)
class OpenDir:
    """A directory being walked: its entries still to visit and the links collected so far."""

    fs_path: bytes
    display: bytes
    name: bytes
    entries: Iterator[bytes]
    builder: DirectoryBuilder
    node: DirNode
    cached: DirState | None = None
    """Its import-cache state (:mod:`.dircache`), when directory records are in use."""

    def add(self, name: bytes, cid: bytes, tsize: int) -> None:
        """An entry's link (entries arrive in listing order, names already unique)."""
        self.builder.add(name, cid, tsize, check=False)


def open_dir(ctx: ImportContext, fs_path: bytes, display: bytes, name: bytes, entries: list[bytes],
             meta: Metadata | None) -> OpenDir:
    """A directory of ``entries`` (sorted names) about to be walked."""
    builder = DirectoryBuilder(ctx.params, ctx.resolved.cid_builder, meta)
    return OpenDir(fs_path, display, name, iter(entries), builder, DirNode(display))


def set_result(node: DirNode, link: DirLink) -> None:
    """A finished directory's root into its node."""
    node.cid, node.tsize, node.sharded = link.cid, link.tsize, link.sharded


def report_dirs(ctx: ImportContext, node: DirNode) -> None:
    """kubo's outputDirs: children (in link order) before the directory itself (without
    ``ctx.nested_reports``, only a top-level directory, or a wrapper and its directories)."""
    if ctx.on_added is None:
        return
    nested = ctx.nested_reports

    def children(cur: DirNode) -> Iterator[tuple[bytes, DirNode]]:
        return _link_order(cur) if nested or cur.path == b"" else iter(())

    stack: list[tuple[DirNode, Iterator[tuple[bytes, DirNode]]]] = [(node, children(node))]
    while stack:
        cur, it = stack[-1]
        nxt = next(it, None)
        if nxt is None:
            stack.pop()
            ctx.emit(cur.path, cur.cid, cur.tsize, "directory")
        else:
            stack.append((nxt[1], children(nxt[1])))


def _link_order(node: DirNode) -> Iterator[tuple[bytes, DirNode]]:
    if node.sharded:
        return iter(sorted(node.children, key=lambda c: hamt_order_key(c[0])))
    return iter(sorted(node.children, key=lambda c: c[0]))
