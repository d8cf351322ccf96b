"""``pyipld ls``: list a UnixFS directory (basic or HAMT) from a local blockstore, like ``ipfs ls``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from ..blockstore import BlockSource
from ..cid import CID, DAG_PB, RAW
from ..errors import ConfigError
from ..filestore import open_blockstore
from ..unixfs.data import DataType
from ..unixfs.resolve import resolve_path
from ..unixfs.walk import NodeKind, iter_directory, load_node
from .add_output import CidEncoder, escape_name, go_json, print_line
from .argv import parse_bool, stdin_arguments
from .gopath import ipfs_path
from .timeout import deadline, go_duration_option

__all__ = ["ListedEntry", "list_path", "register"]


@dataclass(frozen=True, slots=True)
class ListedEntry:
    """One line of ``ls``: name, CID, kind and size (kubo's: see :func:`list_path`)."""

    name: bytes
    cid: CID
    kind: NodeKind
    size: int
    target: bytes = b""  # a resolved symlink's target (kubo's LsLink.Target)


def _entry(source: BlockSource, name: bytes, cid: CID, tsize: int | None, resolve: bool) -> ListedEntry:
    """kubo 0.22 ``processLink``: a raw child is a file of its link's Tsize (never loaded);
    a resolved dag-pb child reports ``FSNode.FileSize()`` (the ``filesize`` field, 0 when
    absent, e.g. for a symlink); anything else is of unknown kind and size 0."""
    if cid.codec == RAW:
        return ListedEntry(name, cid, "file", tsize or 0)
    if cid.codec != DAG_PB or not resolve:
        return ListedEntry(name, cid, "other", 0)
    child = load_node(source, cid)
    assert child.data is not None
    kind: NodeKind = "directory" if child.data.type == DataType.METADATA else child.kind
    target = (child.data.data or b"") if kind == "symlink" else b""
    return ListedEntry(name, cid, kind, child.data.filesize or 0, target)


def list_path(source: BlockSource, path: str, *, resolve_type: bool = True, sort: bool = True) -> Iterator[ListedEntry]:
    """The entries of ``path`` as kubo 0.22's ``ipfs ls`` lists them.

    A directory (basic or HAMT) gives its entries sorted by name; any other node gives
    its own links (a file's chunks, with empty names; nothing for a single block).
    ``resolve_type`` (kubo: ``--size`` or ``--resolve-type``) loads each dag-pb child
    to report its kind and file size; without it they are ``other`` with size 0.
    ``sort=False`` (kubo's ``--stream``) gives a directory's entries in link order as walked
    (name order for a basic directory, hash order for a HAMT).
    """
    resolved = resolve_path(source, path)
    node = resolved.node
    if node.kind != "directory":
        links = node.pb.links if node.pb is not None else ()
        for link in links:
            yield _entry(source, link.name or b"", CID.from_bytes(link.cid), link.tsize, resolve_type)
        return
    entries = iter_directory(source, node)
    for entry in sorted(entries, key=lambda e: e.name) if sort else entries:
        yield _entry(source, entry.name, entry.cid, entry.tsize, resolve_type)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ls", help="list a directory's entries (through HAMT shards too)",
                       description="List a UnixFS directory like `ipfs ls`, from local blocks.")
    p.add_argument("paths", nargs="*", metavar="CID[/PATH]",
                   help="directories (or files) to list; with several, each gets a 'PATH:' heading like ipfs ls; "
                        "none: one per line from stdin")
    p.add_argument("--blockstore", metavar="DIR", help="directory of blocks (as written by `pyipld add --blockstore`)")
    p.add_argument("-v", "--headers", action="store_true", help="print a header line")
    p.add_argument("-l", "--long", action="store_true", help="also print each entry's type")
    p.add_argument("--resolve-type", nargs="?", const=True, type=parse_bool, default=True,
                   metavar="BOOL", help="load each child to tell files from directories (default true)")
    p.add_argument("--size", nargs="?", const=True, type=parse_bool, default=True, metavar="BOOL",
                   help="load each child to print its file size (default true; like kubo, either option loads it)")
    p.add_argument("-s", "--stream", action="store_true",
                   help="print each entry as it is found (link order, no column alignment across rows)")
    p.add_argument("--cid-base", default=None, metavar="BASE",
                   help="multibase for the entries' CIDv1 (base32, base36, ...; upgrades CIDv0), as kubo's global option")
    p.add_argument("--enc", "--encoding", dest="enc", choices=("text", "json"), default="text",
                   help="json: kubo's LsOutput objects (what its HTTP API returns), one line per object")
    p.add_argument("--upgrade-cidv0-in-output", dest="upgrade_cids", nargs="?", const=True, type=parse_bool,
                   default=None, metavar="BOOL", help="print CIDv0 entries as CIDv1 (kubo's global option)")
    p.add_argument("--timeout", default=None, metavar="DURATION",
                   help="give up after this long (Go duration: 30s, 5m, 1h; kubo's global option)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with deadline(go_duration_option(args.timeout)):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    if not args.blockstore:
        raise ConfigError("ls needs --blockstore DIR (the blocks to read from)")
    if not args.paths:
        args.paths = stdin_arguments("ipfs-path")
    args.encoder = CidEncoder.from_options(args.cid_base, args.upgrade_cids)
    store = open_blockstore(args.blockstore)
    out = sys.stdout
    if args.enc == "json":
        return _run_json(args, store, out)
    if args.stream:
        return _run_stream(args, store, out)
    several = len(args.paths) > 1
    last: str | None = None
    pending: list[tuple[str, str, str, str]] = []  # rows of the current column block (kubo: one tabwriter)
    # list every argument before printing anything, like kubo 0.22 (one LsOutput emitted at the end):
    # an error in any argument prints no partial table
    listed = [(path, [_row(e, args.encoder) for e in list_path(store, ipfs_path(path), resolve_type=args.resolve_type or args.size)])
              for path in args.paths]
    for path, rows in listed:
        if path != last:  # kubo: a heading (and header) only when the argument differs from the last one
            _print_table(pending, args, out)
            pending = []
            if several:
                if last is not None:
                    print_line("", out)
                print_line(f"{path}:", out)
            if args.headers:
                pending.append(("Type", "Hash", "Size", "Name"))
            last = path
        pending.extend(rows)
    _print_table(pending, args, out)
    return 0


# kubo LsLink.Type: unixfs_pb.Data_DataType of coreiface's kind (TFile 2, TDirectory 1, TSymlink 4, else 0)
_JSON_TYPE = {"file": 2, "directory": 1, "symlink": 4, "other": 0}


def _json_link(e: ListedEntry, encoder: CidEncoder) -> dict[str, object]:
    return {"Name": e.name.decode("utf-8", "surrogateescape"), "Hash": encoder.encode(e.cid), "Size": e.size,
            "Type": _JSON_TYPE[e.kind], "Target": e.target.decode("utf-8", "surrogateescape")}


def _run_json(args: argparse.Namespace, store: BlockSource, out: TextIO) -> int:
    """kubo ls.go's LsOutput as Go's encoding/json writes it: ``--stream`` emits one object per link
    (link order), otherwise one object at the end with every argument's links sorted by name."""
    resolve = args.resolve_type or args.size
    if args.stream:
        for path in args.paths:
            for entry in list_path(store, ipfs_path(path), resolve_type=resolve, sort=False):
                link = _json_link(entry, args.encoder)
                print_line(go_json({"Objects": [{"Hash": path, "Links": [link]}]}), out)
        return 0
    objects = [{"Hash": path, "Links": [_json_link(e, args.encoder) for e in list_path(store, ipfs_path(path), resolve_type=resolve)]}
               for path in args.paths]
    print_line(go_json({"Objects": objects}), out)
    return 0


def _row(e: ListedEntry, encoder: CidEncoder) -> tuple[str, str, str, str]:
    name = escape_name(e.name) + ("/" if e.kind == "directory" else "")
    size = str(e.size) if e.kind != "directory" else "-"
    return (e.kind, encoder.encode(e.cid), size, name)  # kubo ls.go: enc.Encode(link.Cid); headings as given


def _run_stream(args: argparse.Namespace, store: BlockSource, out: TextIO) -> int:
    """kubo's ``ls --stream``: one output object per entry, each its own tabwriter (minimum cell
    width 10); a heading (and the header) when the argument changes."""
    several = len(args.paths) > 1
    last: str | None = None
    for path in args.paths:
        for entry in list_path(store, ipfs_path(path), resolve_type=args.resolve_type or args.size, sort=False):
            table: list[tuple[str, str, str, str]] = []
            if path != last:
                if several:
                    if last is not None:
                        print_line("", out)
                    print_line(f"{path}:", out)
                if args.headers:
                    table.append(("Type", "Hash", "Size", "Name"))
                last = path
            table.append(_row(entry, args.encoder))
            _print_table(table, args, out, min_width=10)
    return 0


def _print_table(table: list[tuple[str, str, str, str]], args: argparse.Namespace, out: TextIO,
                 min_width: int = 1) -> None:
    """One Go tabwriter column block (padding 1): every column but the last padded to its widest
    cell plus one, and to at least ``min_width``."""
    if not table:
        return
    columns = [i for i in range(4) if (i != 0 or args.long) and (i != 2 or args.size)]
    widths = [max(max(len(r[i]) for r in table) + 1, min_width) for i in range(4)]
    for r in table:
        print_line("".join(r[i].ljust(widths[i]) if i != columns[-1] else r[i] for i in columns), out)
