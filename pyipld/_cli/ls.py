"""``pyipld ls``: list a UnixFS directory (basic or HAMT) from a local blockstore, like ``ipfs ls``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

from ..blockstore import BlockSource, DirectoryBlockstore
from ..cid import CID
from ..errors import ConfigError
from ..unixfs.resolve import resolve_path
from ..unixfs.walk import NodeKind, iter_directory, load_node
from .add import escape_name

__all__ = ["ListedEntry", "list_path", "register"]


@dataclass(frozen=True, slots=True)
class ListedEntry:
    """One line of ``ls``: name, CID, kind and size (file bytes; Tsize for the rest)."""

    name: bytes
    cid: CID
    kind: NodeKind
    size: int


def list_path(source: BlockSource, path: str, *, resolve_type: bool = True) -> Iterator[ListedEntry]:
    """The entries of the directory at ``path`` (a file lists as itself, as ``ipfs ls`` does).

    With ``resolve_type`` every child block is loaded to report its kind and file
    size; without it only the directory blocks are read (kind ``other``, size = Tsize).
    """
    resolved = resolve_path(source, path)
    node = resolved.node
    if node.kind != "directory":
        name = resolved.components[-1] if resolved.components else str(resolved.root).encode()
        yield ListedEntry(name, resolved.cid, node.kind, node.file_size)
        return
    for entry in iter_directory(source, node):
        if resolve_type:
            child = load_node(source, entry.cid)
            size = child.file_size if child.kind == "file" else (entry.tsize or 0)
            yield ListedEntry(entry.name, entry.cid, child.kind, size)
        else:
            yield ListedEntry(entry.name, entry.cid, "other", entry.tsize or 0)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ls", help="list a directory's entries (through HAMT shards too)",
                       description="List a UnixFS directory like `ipfs ls`, from local blocks.")
    p.add_argument("path", metavar="CID[/PATH]", help="directory (or file) to list")
    p.add_argument("--blockstore", metavar="DIR", help="directory of blocks (as written by `pyipld add --blockstore`)")
    p.add_argument("-v", "--headers", action="store_true", help="print a header line")
    p.add_argument("-l", "--long", action="store_true", help="also print each entry's type")
    p.add_argument("--resolve-type", type=lambda s: s.lower() not in ("false", "0", "no"), default=True,
                   metavar="BOOL", help="load each child to tell files from directories (default true)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.blockstore:
        raise ConfigError("ls needs --blockstore DIR (the blocks to read from)")
    store = DirectoryBlockstore(args.blockstore, create=False)
    rows = []
    for e in list_path(store, args.path, resolve_type=args.resolve_type):
        name = escape_name(e.name) + ("/" if e.kind == "directory" else "")
        size = str(e.size) if e.kind != "directory" else "-"
        rows.append((e.kind, str(e.cid), size, name))
    header = ("Type", "Hash", "Size", "Name")
    table = ([header] if args.headers else []) + rows
    if not table:
        return 0
    start = 0 if args.long else 1
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for r in table:
        cells = [r[i].ljust(widths[i]) if i < 3 else r[i] for i in range(start, 4)]
        print(" ".join(cells))
    return 0
