"""Leaf and internal-node encoding: the fast leaf path equals the reference encoding."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pyipld.blockstore import MemoryBlockstore, NullSink
from pyipld.cid import CidBuilder
from pyipld.dagpb import decode_pbnode
from pyipld.unixfs.data import DataType, decode_unixfs_data
from pyipld.unixfs.nodes import (
    FileLink,
    LeafMaker,
    encode_file_node,
    leaf_links,
    make_empty_file,
)

_builders = st.sampled_from([
    CidBuilder.create(0),
    CidBuilder.create(1),
    CidBuilder.create(1, "blake2b-256"),
    CidBuilder.create(1, "sha2-256", inline_limit=32),
    CidBuilder.create(0, "sha2-256", inline_limit=128),
])


@given(chunk=st.binary(min_size=1, max_size=5000), builder=_builders, raw=st.booleans(),
       leaf_type=st.sampled_from([DataType.FILE, DataType.RAW]), keep=st.booleans(),
       kind=st.sampled_from([bytes, bytearray, memoryview]))
def test_fast_leaf_equals_reference(chunk: bytes, builder: CidBuilder, raw: bool, leaf_type: DataType,
                                    keep: bool, kind: type) -> None:
    maker = LeafMaker(builder, raw=raw, leaf_type=leaf_type)
    ref_cid, ref_block = maker.encode(chunk)
    cid, block, block_len = maker.leaf(kind(chunk), keep)
    assert cid == ref_cid
    assert block_len == len(ref_block)
    if keep:
        assert block == ref_block and type(block) is bytes


def test_frame_cache_follows_size() -> None:
    maker = LeafMaker(CidBuilder.create(0), raw=False)
    for size in (5, 300, 5, 20000, 300):
        chunk = bytes(range(256)) * (size // 256) + bytes(size % 256)
        assert maker.leaf(chunk, True)[:2] == maker.encode(chunk)


def test_dagpb_leaf_bytes_hello_world() -> None:
    """shared/spec/unixfs-importer.md §1.4 worked bytes."""
    _, block, n = LeafMaker(CidBuilder.create(0), raw=False).leaf(b"hello world")
    assert block == bytes.fromhex("0a110802120b68656c6c6f20776f726c64180b")
    assert n == 19


def test_leaf_links_skip_blocks_for_null_sink_only() -> None:
    maker = LeafMaker(CidBuilder.create(0), raw=False)
    chunks = [b"a" * 10, b"b" * 3]
    store = MemoryBlockstore()
    kept = list(leaf_links(chunks, maker, store))
    assert len(store) == 2
    assert list(leaf_links(chunks, maker, NullSink())) == kept
    assert [link.data_size for link in kept] == [10, 3]


def test_internal_node_fields_and_tsize() -> None:
    store = MemoryBlockstore()
    builder = CidBuilder.create(0)
    children = [FileLink(b"\x12\x20" + bytes(32), 12, 4), FileLink(b"\x12\x20" + bytes([1]) * 32, 10, 2)]
    link = encode_file_node(children, builder, store)
    block = store.get(link.cid)
    node = decode_pbnode(block)
    assert [(x.name, x.tsize) for x in node.links] == [(b"", 12), (b"", 10)]
    assert node.data is not None
    data = decode_unixfs_data(node.data)
    assert (data.type, data.filesize, data.blocksizes, data.data) == (DataType.FILE, 6, (4, 2), None)
    assert link.tsize == len(block) + 22 and link.data_size == 6


def test_empty_file_blocks() -> None:
    store = MemoryBlockstore()
    link = make_empty_file(CidBuilder.create(0), store, raw=False)
    assert store.get(link.cid) == bytes.fromhex("0a0408021800")
    raw = make_empty_file(CidBuilder.create(1), store, raw=True)
    assert store.get(raw.cid) == b"" and raw.tsize == 0
