"""HAMT-sharded UnixFS directories (boxo ipld/unixfs/hamt), building and reading.

Building (shared/spec/unixfs-importer.md §4.3): every entry name is hashed with
murmur3-x64 h1 (``_murmur3.py``); a shard of fanout F = 2**b uses b bits per
level, most significant first. For an insert-only import the structure is
canonical: a slot holding one entry links it as ``hex(slot) + name``; a slot
holding several becomes a child shard (link name ``hex(slot)``) built from
those entries one level down. ``hex`` is upper-case, zero-padded to the width
of ``F - 1``. Shard Data = UnixFS ``{HAMTShard, bitfield, hashType 0x22, fanout}``;
the bitfield is big-endian with leading zero bytes stripped (go-bitfield
``Bytes``). Mode/mtime go on the root shard only. A full 64-bit collision is
"sharded directory too deep", as in boxo.

Reading: :func:`hamt_lookup` follows one name's hash down the shards;
:func:`iter_hamt` walks every entry in link order. Both check the shard shape
(hash type, fanout, slot prefixes against the bitfield, depth) and raise
:class:`~pyipld.errors.UnixFSError` on anything else.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from ..blockstore import BlockSink
from ..cid import DAG_PB, CidBuilder
from ..dagpb import PBLink, PBNode, decode_pbnode, encode_pbnode
from ..errors import NotFoundError, UnixFSError
from ._murmur3 import murmur3_h1
from .data import DataType, UnixFSData, decode_unixfs_data, encode_unixfs_data
from .nodes import Metadata

__all__ = [
    "HASH_MURMUR3",
    "ShardShape",
    "build_hamt",
    "build_hamt_columns",
    "hamt_lookup",
    "hamt_order_key",
    "iter_hamt",
    "shard_shape",
]

HASH_MURMUR3: Final = 0x22  # multicodec murmur3-x64-64, boxo hamt.HashMurmur3
_HASH_BITS: Final = 64

Entry = tuple[bytes, bytes, int]  # (name, cid, tsize); DirEntry is one
LoadBlock = Callable[[bytes], bytes]


def _shape(fanout: int) -> tuple[int, int]:
    """(bits per level, hex width of slot prefixes) for a valid fanout."""
    if fanout < 2 or fanout & (fanout - 1):
        raise UnixFSError(f"HAMT fanout must be a power of two, got {fanout}")
    return fanout.bit_length() - 1, len(f"{fanout - 1:X}")


def hamt_order_key(name: bytes) -> int:
    """Sort key giving the order a HAMT lists its entries (slot order = hash order)."""
    return murmur3_h1(name)


def build_hamt(
    entries: Sequence[Entry],
    cid_builder: CidBuilder,
    sink: BlockSink,
    *,
    fanout: int = 256,
    meta: Metadata | None = None,
) -> tuple[bytes, int]:
    """Write the HAMT holding ``entries`` (unique names) into ``sink``.

    Returns:
        ``(root CID bytes, root Tsize)``.

    Raises:
        UnixFSError: two names whose 64-bit hashes are equal ("sharded directory too deep").
    """
    names = [e[0] for e in entries]
    cids = [e[1] for e in entries]
    tsizes = array("Q", (e[2] for e in entries))
    return build_hamt_columns(names, cids, tsizes, cid_builder, sink, fanout=fanout, meta=meta)


def build_hamt_columns(
    names: Sequence[bytes],
    cids: Sequence[bytes],
    tsizes: Sequence[int],
    cid_builder: CidBuilder,
    sink: BlockSink,
    *,
    fanout: int = 256,
    meta: Metadata | None = None,
) -> tuple[bytes, int]:
    """:func:`build_hamt` over entry columns (what :class:`DirectoryBuilder` keeps).

    Entries are ordered once by their 64-bit hash: since every level reads the next
    bits from the top, each shard (at any depth) is then a contiguous run and its
    slots come in order — no per-level buckets. Extra memory: ~16 bytes per entry.
    """
    bits, width = _shape(fanout)
    prefixes = [f"{i:0{width}X}".encode("ascii") for i in range(fanout)]
    hashes = array("Q", map(murmur3_h1, names))
    order = array("L", sorted(range(len(names)), key=hashes.__getitem__))
    ctx = _Columns(names, cids, tsizes, hashes, order, bits, fanout - 1, prefixes, cid_builder, sink)
    return ctx.build(0, len(order), 0, meta)


class _Columns:
    __slots__ = ("bits", "cid_builder", "cids", "hashes", "mask", "names", "order", "prefixes", "sink", "tsizes")

    def __init__(self, names: Sequence[bytes], cids: Sequence[bytes], tsizes: Sequence[int], hashes: array[int],
                 order: array[int], bits: int, mask: int, prefixes: list[bytes], cid_builder: CidBuilder,
                 sink: BlockSink) -> None:
        self.names, self.cids, self.tsizes = names, cids, tsizes
        self.hashes, self.order = hashes, order
        self.bits, self.mask, self.prefixes = bits, mask, prefixes
        self.cid_builder, self.sink = cid_builder, sink

    def build(self, lo: int, hi: int, level: int, meta: Metadata | None) -> tuple[bytes, int]:
        shift = _HASH_BITS - (level + 1) * self.bits
        if shift < 0:
            raise UnixFSError("sharded directory too deep (full murmur3 hash collision)")
        hashes, order, mask, prefixes = self.hashes, self.order, self.mask, self.prefixes
        links: list[PBLink] = []
        bitfield = 0
        total = 0
        i = lo
        while i < hi:
            slot = (hashes[order[i]] >> shift) & mask
            j = i + 1
            while j < hi and (hashes[order[j]] >> shift) & mask == slot:
                j += 1
            bitfield |= 1 << slot
            if j - i == 1:
                k = order[i]
                tsize = self.tsizes[k]
                links.append(PBLink(self.cids[k], prefixes[slot] + self.names[k], tsize))
            else:
                cid, tsize = self.build(i, j, level + 1, None)
                links.append(PBLink(cid, prefixes[slot], tsize))
            total += tsize
            i = j
        bf = bitfield.to_bytes((bitfield.bit_length() + 7) // 8, "big") if bitfield else None
        data = encode_unixfs_data(
            UnixFSData(
                DataType.HAMT_SHARD,
                data=bf,
                hash_type=HASH_MURMUR3,
                fanout=mask + 1,
                mode=meta.mode if meta else None,
                mtime=meta.mtime if meta else None,
            )
        )
        block = encode_pbnode(links, data)
        cid = self.cid_builder.cid_bytes(DAG_PB, block)
        self.sink.put(cid, block)
        return cid, len(block) + total


# -- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShardShape:
    """A checked shard node: fanout, bits per level, prefix width, links by slot."""

    fanout: int
    bits: int
    width: int
    slots: dict[int, PBLink]


def shard_shape(node: PBNode, data: UnixFSData) -> ShardShape:
    """Check a HAMT shard node and index its links by slot.

    Raises:
        UnixFSError: wrong type or hash, bad fanout, malformed or duplicate slot
            prefixes, or a bitfield that disagrees with the links.
    """
    if data.type != DataType.HAMT_SHARD:
        raise UnixFSError(f"expected a HAMT shard, got UnixFS type {data.type.name}")
    if data.hash_type != HASH_MURMUR3:
        raise UnixFSError(f"unsupported HAMT hash type {data.hash_type!r} (only murmur3-x64-64 0x22)")
    if data.fanout is None or data.fanout > 1 << 16:
        raise UnixFSError(f"HAMT fanout {data.fanout!r} missing or too large")
    bits, width = _shape(data.fanout)
    slots: dict[int, PBLink] = {}
    for link in node.links:
        name = link.name or b""
        prefix = name[:width]
        if len(prefix) != width or not all(c in b"0123456789ABCDEF" for c in prefix):
            raise UnixFSError(f"HAMT link name {name!r} does not start with a {width}-digit slot")
        idx = int(prefix, 16)
        if idx >= data.fanout:
            raise UnixFSError(f"HAMT slot {idx} >= fanout {data.fanout}")
        if idx in slots:
            raise UnixFSError(f"HAMT slot {idx} used twice")
        slots[idx] = link
    bitfield = int.from_bytes(data.data or b"", "big")
    expected = 0
    for idx in slots:
        expected |= 1 << idx
    if bitfield != expected:
        raise UnixFSError("HAMT bitfield disagrees with the shard's links")
    return ShardShape(data.fanout, bits, width, slots)


def _load_shard(load: LoadBlock, cid: bytes, fanout: int) -> ShardShape:
    block = load(cid)
    node = decode_pbnode(block)
    if node.data is None:
        raise UnixFSError("HAMT child shard without UnixFS data")
    shape = shard_shape(node, decode_unixfs_data(node.data))
    if shape.fanout != fanout:
        raise UnixFSError(f"HAMT child shard fanout {shape.fanout} != parent fanout {fanout}")
    return shape


def hamt_lookup(load: LoadBlock, root: ShardShape, name: bytes) -> PBLink | None:
    """The link of entry ``name`` in the HAMT rooted at ``root``, or ``None``.

    ``load(cid)`` returns a block's bytes (verified by the caller's source).
    """
    h = murmur3_h1(name)
    shape = root
    level = 0
    while True:
        shift = _HASH_BITS - (level + 1) * shape.bits
        if shift < 0:
            raise UnixFSError("HAMT deeper than its hash allows")
        link = shape.slots.get((h >> shift) & (shape.fanout - 1))
        if link is None:
            return None
        link_name = link.name or b""
        if len(link_name) == shape.width:
            shape = _load_shard(load, link.cid, shape.fanout)
            level += 1
            continue
        return link if link_name[shape.width :] == name else None


def iter_hamt(
    load: LoadBlock, root: ShardShape, on_missing: Callable[[bytes], None] | None = None
) -> Iterator[tuple[bytes, PBLink]]:
    """Every ``(entry name, link)`` of the HAMT, in link order (depth-first).

    An untrusted HAMT is checked as it is walked, so a few blocks cannot stand for
    2**64 entries (a "HAMT bomb": every slot linking the same child shard):

    * each entry must sit in the slot its name hashes to, at every level of its path;
    * no child shard may be reached twice (within one HAMT a shard has one place);
    * shards nest no deeper than the 64-bit hash allows (``64 // bits`` levels).

    A child shard whose block ``load`` cannot find (:class:`~pyipld.errors.NotFoundError`)
    is skipped and its CID passed to ``on_missing`` when one is given (a partial DAG,
    e.g. a CAR of one path); without it the error propagates.

    Raises:
        UnixFSError: a malformed shard, a misplaced entry, a shard linked twice, or
            shards nested deeper than the hash allows.
    """
    bits, width = root.bits, root.width
    max_levels = _HASH_BITS // bits
    seen: set[bytes] = set()
    # one frame per level: (slot iterator, hash prefix of the slots that led here)
    stack: list[tuple[Iterator[tuple[int, PBLink]], int]] = [(iter(sorted(root.slots.items())), 0)]
    while stack:
        slots, prefix = stack[-1]
        item = next(slots, None)
        if item is None:
            stack.pop()
            continue
        slot, link = item
        path = (prefix << bits) | slot
        name = link.name or b""
        if len(name) == width:
            if len(stack) >= max_levels:
                raise UnixFSError(f"HAMT shards nested deeper than {max_levels} levels (its hash has only "
                                  f"{_HASH_BITS} bits)")
            if link.cid in seen:
                raise UnixFSError("HAMT links one child shard twice (a shard has one place in its tree)")
            seen.add(link.cid)
            try:
                child = _load_shard(load, link.cid, root.fanout)
            except NotFoundError:
                if on_missing is None:
                    raise
                on_missing(link.cid)
                continue
            stack.append((iter(sorted(child.slots.items())), path))
        else:
            entry = name[width:]
            level_bits = len(stack) * bits
            if murmur3_h1(entry) >> (_HASH_BITS - level_bits) != path:
                raise UnixFSError(f"HAMT entry {entry!r} is not in the slot its name hashes to")
            yield entry, link
