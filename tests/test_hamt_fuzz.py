"""HAMT walker fuzz (issue 10): random slot/link structures, including shared, cyclic and misplaced
shards, must be walked in bounded work or refused with UnixFSError — the class of the "HAMT bomb".

The loader is a dict from made-up CIDs to blocks, so any graph (a shard linking itself, one child
in every slot) is possible, as from a lying peer or store.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipld.blockstore import MemoryBlockstore
from pyipld.cid import CidBuilder
from pyipld.dagpb import PBLink, decode_pbnode, encode_pbnode
from pyipld.errors import NotFoundError, UnixFSError
from pyipld.unixfs._murmur3 import murmur3_h1
from pyipld.unixfs.data import DataType, UnixFSData, decode_unixfs_data, encode_unixfs_data
from pyipld.unixfs.directory import DirEntry
from pyipld.unixfs.hamt import build_hamt, hamt_lookup, iter_hamt, shard_shape

FILE_CID = b"\x01\x55\x12\x20" + bytes(32)


def _fake_cid(i: int) -> bytes:
    return b"\x01\x70\x12\x20" + i.to_bytes(32, "big")


def _shard(links: list[PBLink], fanout: int) -> bytes:
    bitfield = 0
    width = len(f"{fanout - 1:X}")
    for link in links:
        bitfield |= 1 << int((link.name or b"")[:width], 16)
    data = UnixFSData(DataType.HAMT_SHARD, data=bitfield.to_bytes(fanout // 8 or 1, "big").lstrip(b"\0") or None,
                      hash_type=0x22, fanout=fanout)
    return encode_pbnode(sorted(links, key=lambda lk: lk.name or b""), encode_unixfs_data(data))


@st.composite
def hamt_graphs(draw: st.DrawFn) -> tuple[dict[bytes, bytes], int, int]:
    """(blocks by CID, root index, number of entry links in all shards)."""
    fanout = draw(st.sampled_from([4, 16, 256]))
    width = len(f"{fanout - 1:X}")
    n = draw(st.integers(1, 6))
    blocks: dict[bytes, bytes] = {}
    entry_links = 0
    for i in range(n):
        slots = draw(st.lists(st.integers(0, fanout - 1), unique=True, max_size=min(fanout, 12)))
        links = []
        for slot in slots:
            prefix = f"{slot:0{width}X}".encode()
            if draw(st.booleans()):
                links.append(PBLink(_fake_cid(draw(st.integers(0, n))), prefix, 1))  # n: a missing shard
            else:
                name = draw(st.binary(min_size=1, max_size=6))
                links.append(PBLink(FILE_CID, prefix + name, 1))
                entry_links += 1
        blocks[_fake_cid(i)] = _shard(links, fanout)
    return blocks, draw(st.integers(0, n - 1)), entry_links


def _loader(blocks: dict[bytes, bytes], loads: list[int]):  # type: ignore[no-untyped-def]
    def load(cid: bytes) -> bytes:
        loads.append(1)
        try:
            return blocks[cid]
        except KeyError:
            raise NotFoundError("no such shard") from None
    return load


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hamt_graphs())
def test_random_shard_graphs_are_bounded_or_refused(graph: tuple[dict[bytes, bytes], int, int]) -> None:
    blocks, root_index, entry_links = graph
    root_block = blocks[_fake_cid(root_index)]
    node = decode_pbnode(root_block)
    assert node.data is not None
    shape = shard_shape(node, decode_unixfs_data(node.data))
    loads: list[int] = []
    seen = 0
    try:
        for name, link in iter_hamt(_loader(blocks, loads), shape, on_missing=lambda cid: None):
            seen += 1
            assert link.cid == FILE_CID and name
            assert seen <= entry_links  # every shard at most once: never more entries than exist
    except UnixFSError:
        pass
    assert len(loads) <= len(blocks) + 1  # each child shard loaded at most once (plus one missing)
    # lookups follow one hash path: bounded by the levels, whatever the graph
    for probe in (b"a", b"bb", b"\x00"):
        loads.clear()
        try:
            hamt_lookup(_loader(blocks, loads), shape, probe)
        except (UnixFSError, NotFoundError):
            pass
        assert len(loads) <= 64


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=8), unique=True, min_size=1, max_size=400),
       st.sampled_from([4, 16, 256]))
def test_built_hamts_walk_back_exactly(names: list[bytes], fanout: int) -> None:
    """Real HAMTs pass every check: each name comes back once, in its hash slot; lookups find each."""
    store = MemoryBlockstore()
    root, _ = build_hamt([DirEntry(n, FILE_CID, 1) for n in names], CidBuilder(), store, fanout=fanout)
    node = decode_pbnode(store.get(root))
    assert node.data is not None
    shape = shard_shape(node, decode_unixfs_data(node.data))
    got = [name for name, _ in iter_hamt(store.get, shape)]
    assert sorted(got) == sorted(names)
    assert got == sorted(names, key=murmur3_h1) or len({murmur3_h1(n) for n in names}) < len(names)
    for n in names[:20]:
        found = hamt_lookup(store.get, shape, n)
        assert found is not None and found.cid == FILE_CID
