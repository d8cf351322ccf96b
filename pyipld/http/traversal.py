"""Which blocks a trustless-gateway CAR answer holds, and in what order.

The IPFS trustless gateway spec (ipfs/specs ``src/http-gateways/trustless-gateway.md``,
IPIP-402 ``dag-scope``/``entity-bytes``, IPIP-412 ``order``/``dups``; notes in
shared/spec/trustless-gateway.md §3-§5) defines a ``?format=car`` answer as:

1. the **path blocks**: every block needed to walk ``path`` from the root CID —
   basic directories (dag-pb link names), the HAMT shards on one name's hash path
   (never the whole HAMT), dag-cbor / dag-json blocks whose map keys (or list
   indexes) the segments name, crossing a link (CBOR tag 42, DAG-JSON ``{"/": …}``)
   into the next block;
2. then the **terminal element**, by ``dag-scope``:

   ========================  ==============  ===================================  ====================
   terminal                  ``block``       ``entity``                           ``all``
   ========================  ==============  ===================================  ====================
   UnixFS file (dag-pb)      the root        root + the blocks holding the bytes  the whole sub-DAG
                                             (only the range for entity-bytes)
   raw block                 the block       the block                            the block
   basic directory           the block       the block                            the whole sub-DAG
   HAMT directory            the root shard  root + every sub-shard, DFS          the whole sub-DAG
   symlink / other dag-pb    the block       the block                            the whole sub-DAG
   dag-cbor / dag-json       the block       the block                            the whole sub-DAG
   ========================  ==============  ===================================  ====================

Blocks come depth-first, pre-order, children in link order (``order=dfs``). With
``dups=n`` a block is sent the first time only; with ``dups=y`` each time the walk
meets it. Identity-hash CIDs are never sent (their bytes are in the CID).

``entity-bytes=from:to`` (inclusive; negatives count from the end; ``to=None`` is
``*``) implies ``entity`` and is resolved like boxo (backend_blocks.go): with S =
file size, first = ``from`` or ``max(S + from, 0)``, last = ``to``/``S + to``/``S - 1``
clamped to ``S - 1``. The answer is the root, then every node whose byte span meets
``[first, last]`` followed by its overlapping children (spans from ``blocksizes``).
A range starting at or past the end of a non-empty file is a
:class:`~pyipld.errors.GatewayRequestError` (HTTP 400); an empty range (``last <
first``, or an empty file) is the root only. A range on a terminal that is not a
file is ignored (the answer is ``entity``).

This module has no I/O of its own: it reads blocks from a
:class:`~pyipld.blockstore.BlockSource` and hash-checks each. The server streams
:func:`iter_scope_blocks` into a CAR; a client runs the *same* generator over the
blocks it received (e.g. a :class:`~pyipld.blockstore.MemoryBlockstore`), which
proves the path from the root and that the answer is complete. CIDs are looked up
as the DAG names them; a gateway may label a block with the other CID version of
the same multihash, so such a source should match by multihash.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast

import dag_cbor
import multiformats

from ..blockstore import BlockSource, get_verified, get_verified_view
from ..chunker._goparse import go_quote
from ..cid import CID, DAG_CBOR, DAG_PB, RAW
from ..dagpb import PBNode, decode_pbnode
from ..errors import DecodeError, GatewayRequestError, PathNotFoundError, UnixFSError
from ..links import DAG_JSON, iter_links
from ..unixfs.data import DataType, UnixFSData, decode_unixfs_data
from ..unixfs.hamt import hamt_lookup, iter_hamt, shard_shape
from ..unixfs.reader import DEFAULT_MAX_DEPTH, decode_file_node

__all__ = [
    "DAG_SCOPES",
    "CarScope",
    "DagScope",
    "ResolvedScope",
    "format_entity_bytes",
    "iter_scope_blocks",
    "iter_terminal_blocks",
    "iter_terminal_views",
    "parse_entity_bytes",
    "resolve_scope",
]

DagScope = Literal["block", "entity", "all"]
DAG_SCOPES: Final = ("block", "entity", "all")
_MAX_INT: Final = 1 << 63  # entity-bytes numbers are Go int64 in boxo (gateway.go strconv.ParseInt)


def parse_entity_bytes(text: str) -> tuple[int, int | None]:
    """Parse ``from:to`` (``to`` may be ``*``) as boxo does (gateway.go ``getEntityRange``).

    Raises:
        GatewayRequestError: not two integers around one ``:``, or ``from > to`` with both
            of the same sign.
    """
    parts = text.split(":")
    if len(parts) != 2:
        raise GatewayRequestError(f"invalid entity-bytes {text!r}: expected from:to")
    try:
        first = _parse_int(parts[0])
        last = None if parts[1] == "*" else _parse_int(parts[1])
    except ValueError:
        raise GatewayRequestError(f"invalid entity-bytes {text!r}: from and to must be integers (to may be *)") from None
    _check_range(first, last)
    return first, last


def _parse_int(text: str) -> int:
    body = text[1:] if text[:1] in "+-" else text
    if not body.isdigit() or not body.isascii():
        raise ValueError(text)
    value = int(text)
    if not -_MAX_INT <= value < _MAX_INT:
        raise ValueError(text)
    return value


def _check_range(first: int, last: int | None) -> None:
    if last is not None and first > last and (first >= 0) == (last >= 0):
        raise GatewayRequestError(f"invalid entity-bytes {first}:{last}: from is after to")


def format_entity_bytes(entity_bytes: tuple[int, int | None]) -> str:
    """The query form of an ``entity_bytes`` pair (``*`` for an open end)."""
    first, last = entity_bytes
    return f"{first}:{'*' if last is None else last}"


@dataclass(frozen=True, slots=True)
class CarScope:
    """What a ``?format=car`` request asks for.

    Attributes:
        root: the CID after ``/ipfs/``.
        path: the path segments below it, percent-decoded (UnixFS names, or
            dag-cbor/dag-json map keys and list indexes).
        dag_scope: ``block``, ``entity`` or ``all`` (the spec's default).
        entity_bytes: ``(from, to)`` inclusive, negatives from the end, ``to=None``
            for ``*``; implies ``entity``.
        dups: ``dups=y`` (send a block each time it occurs) rather than ``dups=n``.

    Raises:
        GatewayRequestError: an unknown dag-scope or an invalid range.
    """

    root: CID
    path: tuple[bytes, ...] = ()
    dag_scope: DagScope = "all"
    entity_bytes: tuple[int, int | None] | None = None
    dups: bool = False

    def __post_init__(self) -> None:
        if self.dag_scope not in DAG_SCOPES:
            raise GatewayRequestError(f"invalid dag-scope {self.dag_scope!r}: expected block, entity or all")
        if self.entity_bytes is not None:
            _check_range(*self.entity_bytes)

    @property
    def effective_scope(self) -> DagScope:
        """``entity`` when a range is given (entity-bytes implies it), else ``dag_scope``."""
        return "entity" if self.entity_bytes is not None else self.dag_scope


@dataclass(frozen=True, slots=True)
class ResolvedScope:
    """A :class:`CarScope` whose path has been walked.

    Attributes:
        scope: the request.
        path_blocks: ``(cid, block)`` to send before the terminal, in order (dups applied).
        path_cids: the CID reached after each segment that crossed into a new block,
            starting with the root (``X-Ipfs-Roots``).
        terminal: binary CID of the block holding the terminal element.
        terminal_block: its bytes (verified).
        inner: segments consumed inside ``terminal_block`` (a path ending inside a
            dag-cbor/dag-json block); empty when the terminal is the whole block.
        byte_range: the resolved inclusive ``(first, last)`` of an entity-bytes request
            on a file; ``None`` otherwise (``(0, -1)``: an empty range, the root only).
    """

    scope: CarScope
    path_blocks: tuple[tuple[bytes, bytes], ...]
    path_cids: tuple[bytes, ...]
    terminal: bytes
    terminal_block: bytes
    inner: tuple[bytes, ...] = ()
    byte_range: tuple[int, int] | None = None
    _seen: frozenset[bytes] = field(default=frozenset(), repr=False)

    @property
    def terminal_cid(self) -> CID:
        return CID.from_bytes(self.terminal)


class _Emitter:
    """Applies the ``dups`` rule and never sends identity blocks."""

    def __init__(self, dups: bool, seen: set[bytes] | None = None) -> None:
        self.dups = dups
        self.seen: set[bytes] = set() if seen is None else seen

    def wants(self, cid: bytes) -> bool:
        """Whether a visit to ``cid`` is sent (and, for dups=n, marks it sent)."""
        if _is_identity(cid):
            return False
        if self.dups:
            return True
        if cid in self.seen:
            return False
        self.seen.add(cid)
        return True


def _is_identity(cid: bytes) -> bool:
    # CIDv1 = 0x01 ‖ codec varint ‖ multihash; identity multihash code is 0x00.
    if cid[:1] != b"\x01":
        return False
    i = 1
    while cid[i] & 0x80:
        i += 1
    return cid[i + 1] == 0x00


BlockData = bytes | memoryview  # what iter_terminal_views yields as block data

_RAW_V1: Final = b"\x01\x55"  # CIDv1 ‖ codec raw (both one-byte varints)


def _load(source: BlockSource, cid: bytes, views: bool) -> BlockData:
    """A verified block; with ``views``, a raw block as a view of the source's storage when it has one."""
    if views and cid[:2] == _RAW_V1:
        return get_verified_view(source, cid)
    return get_verified(source, cid)


def _name(cid: bytes) -> str:
    return str(CID.from_bytes(cid))


def _decode_pb(cid: bytes, block: bytes) -> tuple[PBNode, UnixFSData | None]:
    pb = decode_pbnode(block)
    if pb.data is None:
        return pb, None
    try:
        return pb, decode_unixfs_data(pb.data)
    except DecodeError as exc:
        raise UnixFSError(f"block {_name(cid)}: {exc}", offset=exc.offset) from exc


def _decode_value(cid: bytes, block: bytes) -> Any:
    codec = CID.from_bytes(cid).codec
    try:
        if codec == DAG_CBOR:
            return dag_cbor.decode(block)
        return json.loads(block)
    except Exception as exc:  # dag_cbor and json raise several unrelated types
        raise DecodeError(f"block {_name(cid)} does not decode as {'dag-cbor' if codec == DAG_CBOR else 'dag-json'}: "
                          f"{exc}") from exc


def _as_link(value: Any) -> bytes | None:
    """The binary CID if ``value`` is an IPLD link (dag-cbor or dag-json form)."""
    if isinstance(value, multiformats.CID):
        return bytes(value)
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("/"), str):
        return CID.decode(value["/"]).bytes
    return None


def _step(value: Any, segment: bytes, where: str) -> Any:
    if isinstance(value, dict) and not (len(value) == 1 and "/" in value):
        key = segment.decode("utf-8", "surrogateescape")
        if key not in value:
            raise PathNotFoundError(f"no key {key!r} in {where}")
        return value[key]
    if isinstance(value, list):
        if not segment.isdigit() or len(segment) > 18 or int(segment) >= len(value):  # int() refuses 4300+ digits
            raise PathNotFoundError(f"no index {segment.decode('utf-8', 'replace')!r} in a list of {len(value)} "
                                    f"in {where}")
        return value[int(segment)]
    raise PathNotFoundError(f"cannot resolve {segment.decode('utf-8', 'replace')!r} inside a "
                            f"{type(value).__name__} value in {where}")


def _value_links(value: Any) -> Iterator[bytes]:
    """Links inside a decoded dag-cbor/dag-json value, in encoded order."""
    stack: list[Iterator[Any]] = [iter((value,))]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
            continue
        link = _as_link(item)
        if link is not None:
            yield link
        elif isinstance(item, dict):
            if not (len(item) == 1 and "/" in item):  # {"/": {"bytes": …}} is bytes
                stack.append(iter(item.values()))
        elif isinstance(item, list):
            stack.append(iter(item))


_END: Final = object()


def resolve_scope(source: BlockSource, scope: CarScope) -> ResolvedScope:
    """Walk ``scope.path`` from the root and check the range: everything that can fail
    before a server commits to ``200``.

    Raises:
        NotFoundError: a block on the path (or the terminal block) is missing.
        PathNotFoundError: a segment names nothing.
        IntegrityError: a block does not hash to its CID.
        GatewayRequestError: ``entity_bytes`` starts past the end of the file.
        DecodeError: a block that does not decode with its codec (UnixFSError for bad shapes).
    """
    emit = _Emitter(scope.dups)
    blocks: list[tuple[bytes, bytes]] = []
    cids: list[bytes] = [scope.root.bytes]
    last: list[tuple[bytes, bytes]] = []  # the latest block loaded: sent once the walk moves on

    def load(cid: bytes) -> bytes:
        block = get_verified(source, cid)
        if last and emit.wants(last[0][0]):
            blocks.append(last[0])
        last[:] = [(cid, block)]
        return block

    cid = scope.root.bytes
    block = load(cid)
    value: Any = _END  # the decoded dag-cbor/dag-json value we are inside, once decoded
    inner: list[bytes] = []
    for i, segment in enumerate(scope.path):
        where = f"/ipfs/{scope.root}/" + "/".join(s.decode("utf-8", "replace") for s in scope.path[:i])
        codec = CID.from_bytes(cid).codec
        if codec == DAG_PB:
            pb, data = _decode_pb(cid, block)
            next_cid = _pb_child(pb, data, segment, load, where, cid)
        elif codec in (DAG_CBOR, DAG_JSON):
            if value is _END:
                value = _decode_value(cid, block)
            value = _step(value, segment, where)
            link = _as_link(value)
            if link is None:
                inner.append(segment)
                continue
            next_cid = link
        else:
            raise PathNotFoundError(f"cannot resolve {segment.decode('utf-8', 'replace')!r}: {where} is a "
                                    f"{'raw block' if codec == RAW else f'codec 0x{codec:x} block'}")
        cid, block, value, inner = next_cid, load(next_cid), _END, []
        cids.append(cid)
    byte_range = None
    if scope.entity_bytes is not None and not inner:
        byte_range = _resolve_range(cid, block, scope.entity_bytes)
    return ResolvedScope(scope, tuple(blocks), tuple(cids), cid, block, tuple(inner), byte_range,
                         frozenset(emit.seen))


def _no_link(segment: bytes, directory: bytes) -> PathNotFoundError:
    """boxo's resolver ErrNoLink, as kubo prints it: the name Go-quoted, the directory's CID."""
    return PathNotFoundError(f"no link named {go_quote(segment.decode('utf-8', 'surrogateescape'))} under "
                             f"{CID.from_bytes(directory)}")


def _pb_child(pb: PBNode, data: UnixFSData | None, segment: bytes, load: Any, where: str, directory: bytes) -> bytes:
    if data is not None and data.type == DataType.HAMT_SHARD:
        found = hamt_lookup(load, shard_shape(pb, data), segment)
        if found is None:
            raise _no_link(segment, directory)
        return found.cid
    if data is not None and data.type != DataType.DIRECTORY:
        raise PathNotFoundError(f"cannot resolve {segment.decode('utf-8', 'replace')!r}: {where} is a UnixFS "
                                f"{data.type.name.lower()}, not a directory")
    for link in pb.links:  # a basic directory, or plain dag-pb without UnixFS Data: by link name
        if link.name == segment:
            return link.cid
    raise _no_link(segment, directory)


def _file_size(cid: bytes, block: bytes) -> int | None:
    """File bytes under a file root, or None when the block is not a file."""
    codec = CID.from_bytes(cid).codec
    if codec == RAW:
        return len(block)
    if codec != DAG_PB:
        return None
    _, data = _decode_pb(cid, block)
    if data is None or data.type not in (DataType.FILE, DataType.RAW):
        return None
    return decode_file_node(cid, block).size


def _resolve_range(cid: bytes, block: bytes, entity_bytes: tuple[int, int | None]) -> tuple[int, int] | None:
    size = _file_size(cid, block)
    if size is None:
        return None  # entity-bytes is ignored on directories, HAMTs, dag-cbor…
    frm, to = entity_bytes
    first = frm if frm >= 0 else max(size + frm, 0)
    last = size - 1 if to is None else (to if to >= 0 else size + to)
    last = min(last, size - 1)
    if size > 0 and first >= size:
        raise GatewayRequestError(f"entity-bytes {format_entity_bytes(entity_bytes)} starts at byte {first}, "
                                  f"past the end of the {size}-byte file {_name(cid)}")
    if last < first:
        return (0, -1)
    return first, last


def iter_terminal_blocks(source: BlockSource, resolved: ResolvedScope) -> Iterator[tuple[bytes, bytes]]:
    """The terminal element's blocks (after :attr:`ResolvedScope.path_blocks`), per dag-scope.

    Raises:
        NotFoundError, IntegrityError, DecodeError: as :func:`iter_scope_blocks`.
    """
    # without views every block is get_verified's bytes
    return cast(Iterator[tuple[bytes, bytes]], _iter_terminal(source, resolved, views=False))


def iter_terminal_views(source: BlockSource, resolved: ResolvedScope) -> Iterator[tuple[bytes, BlockData]]:
    """:func:`iter_terminal_blocks`, with raw blocks as views when ``source`` has ``get_view``.

    For a server that only copies the data once, into its output (a mapped CAR is
    read without a copy). The views are valid while the source is open.
    """
    return _iter_terminal(source, resolved, views=True)


def _iter_terminal(source: BlockSource, resolved: ResolvedScope, *, views: bool) -> Iterator[tuple[bytes, BlockData]]:
    scope = resolved.scope
    emit = _Emitter(scope.dups, set(resolved._seen))
    cid, block = resolved.terminal, resolved.terminal_block
    effective = scope.effective_scope
    if effective == "block":
        if emit.wants(cid):
            yield cid, block
        return
    if effective == "all":
        if resolved.inner:
            if emit.wants(cid):
                yield cid, block
            value = _decode_value(cid, block)
            for segment in resolved.inner:
                value = _step(value, segment, _name(cid))
            for link in _value_links(value):
                yield from _iter_all(source, link, emit, views=views)
        else:
            yield from _iter_all(source, cid, emit, block, views=views)
        return
    # entity
    codec = CID.from_bytes(cid).codec
    if codec != DAG_PB or resolved.inner:
        if emit.wants(cid):
            yield cid, block
        return
    pb, data = _decode_pb(cid, block)
    if data is not None and data.type in (DataType.FILE, DataType.RAW):
        size = decode_file_node(cid, block).size
        first, last = resolved.byte_range if resolved.byte_range is not None else (0, size - 1)
        yield from _iter_file_range(source, cid, block, first, last, emit, views=views)
    elif data is not None and data.type == DataType.HAMT_SHARD:
        yield from _iter_hamt_shards(source, cid, block, pb, data, emit)
    elif emit.wants(cid):
        yield cid, block


def _iter_all(source: BlockSource, root: bytes, emit: _Emitter, root_block: bytes | None = None, *,
              views: bool = False) -> Iterator[tuple[bytes, BlockData]]:
    """Every block under ``root``, DFS pre-order in link order; with dups=n a seen sub-DAG is skipped."""
    stack: list[Iterator[bytes]] = [iter((root,))]
    while stack:
        cid = next(stack[-1], None)
        if cid is None:
            stack.pop()
            continue
        if not emit.dups and cid in emit.seen:
            continue  # sent before, with everything below it (boxo: visit each link once)
        block = root_block if root_block is not None and cid == root else _load(source, cid, views)
        if emit.wants(cid):
            yield cid, block
        if cid[:2] != _RAW_V1:  # a raw block has no links (and only raw blocks come as views)
            stack.append(iter_links(cid, cast(bytes, block)))


def _iter_hamt_shards(source: BlockSource, cid: bytes, block: bytes, pb: PBNode, data: UnixFSData,
                      emit: _Emitter) -> Iterator[tuple[bytes, bytes]]:
    """The root shard, then every sub-shard depth-first in link order (no entry targets)."""
    if emit.wants(cid):
        yield cid, block
    loaded: list[tuple[bytes, bytes]] = []

    def load(shard: bytes) -> bytes:
        shard_block = get_verified(source, shard)
        if emit.wants(shard):
            loaded.append((shard, shard_block))
        return shard_block

    for _ in iter_hamt(load, shard_shape(pb, data)):
        if loaded:
            yield from loaded
            loaded.clear()
    yield from loaded


def _iter_file_range(source: BlockSource, root: bytes, root_block: bytes, first: int, last: int,
                     emit: _Emitter, *, views: bool = False) -> Iterator[tuple[bytes, BlockData]]:
    """The file root, then each node whose byte span meets ``[first, last]``, DFS pre-order.

    Spans come from the parent's ``blocksizes``; a child is loaded only when its span
    overlaps the range, and every node must hold the bytes its parent promised.
    """
    root_node = decode_file_node(root, root_block)
    # (cid, start offset, promised size, depth); a None cid closes a sub-tree fully walked.
    stack: list[tuple[bytes | None, int, int, int]] = [(root, 0, root_node.size, 0)]
    complete: set[bytes] = set()  # dups=n: sub-trees already sent whole
    while stack:
        cid, start, expected, depth = stack.pop()
        if cid is None:
            continue
        if depth > DEFAULT_MAX_DEPTH:
            raise UnixFSError(f"file DAG deeper than {DEFAULT_MAX_DEPTH} at block {_name(cid)}")
        whole = first <= start and start + expected - 1 <= last
        if whole and not emit.dups and cid in complete:
            continue
        block = root_block if depth == 0 else _load(source, cid, views)
        links: tuple[bytes, ...] = ()
        blocksizes: tuple[int, ...] = ()
        if cid[:2] == _RAW_V1:  # a raw leaf: its bytes are the file bytes
            size = data_size = len(block)
        else:
            node = root_node if depth == 0 else decode_file_node(cid, cast(bytes, block))  # views are raw
            size, data_size, links, blocksizes = node.size, len(node.data), node.links, node.blocksizes
        if size != expected:
            raise UnixFSError(f"block {_name(cid)} holds {size} file bytes but its parent's blocksizes "
                              f"say {expected}")
        if emit.wants(cid):
            yield cid, block
        if whole:
            complete.add(cid)
        pos = start + data_size
        children: list[tuple[bytes | None, int, int, int]] = []
        for child, child_size in zip(links, blocksizes):
            if pos > last:
                break
            if pos + child_size > first:
                children.append((child, pos, child_size, depth + 1))
            pos += child_size
        stack.extend(reversed(children))


def iter_scope_blocks(source: BlockSource, scope: CarScope) -> Iterator[tuple[bytes, bytes]]:
    """``(cid, block)`` of the ``order=dfs`` answer to ``scope``, every block hash-checked.

    First the path blocks from the root (basic directories, the HAMT shards on the
    lookup path, dag-cbor/dag-json blocks the segments cross), then the terminal
    element per ``dag_scope``/``entity_bytes`` (module docstring). ``scope.dups``
    picks ``dups=y`` (every occurrence) or ``dups=n`` (first occurrence only).
    Identity-hash blocks are never yielded.

    A server streams this into a CAR; a client runs it over the blocks a gateway
    sent to prove the path and the completeness of the answer (with ``dups=n`` the
    CAR must hold exactly this sequence).

    Raises:
        NotFoundError: a needed block is missing from ``source``.
        PathNotFoundError: a path segment names nothing (a subclass of NotFoundError).
        IntegrityError: a block does not hash to its CID.
        GatewayRequestError: ``entity_bytes`` starts past the end of the file.
        DecodeError: a block that does not decode with its codec (UnixFSError: a bad UnixFS shape).
    """
    resolved = resolve_scope(source, scope)
    yield from resolved.path_blocks
    yield from iter_terminal_blocks(source, resolved)
