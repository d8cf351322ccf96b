"""murmur3 h1 and the HAMT builder/reader: spec known answers, kubo vectors, properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld.blockstore import MemoryBlockstore, get_verified
from pyipld.cid import CID, CidBuilder
from pyipld.dagpb import decode_pbnode, encode_pbnode
from pyipld.errors import UnixFSError
from pyipld.unixfs._murmur3 import murmur3_digest, murmur3_h1
from pyipld.unixfs.data import (
    DataType,
    Mtime,
    UnixFSData,
    decode_unixfs_data,
    encode_unixfs_data,
)
from pyipld.unixfs.directory import DirEntry
from pyipld.unixfs.hamt import build_hamt, hamt_lookup, iter_hamt, shard_shape
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.nodes import Metadata


# shared/spec/unixfs-importer.md §4.3 checks
@pytest.mark.parametrize(("data", "h1"), [
    (b"", 0x0000000000000000),
    (b"hello", 0xCBD8A7B341BD9B02),
    (b"mars.txt", 0x3E93ED84D2C3E70A),
])
def test_murmur3_h1_known_answers(data: bytes, h1: int) -> None:
    assert murmur3_h1(data) == h1
    assert murmur3_digest(data) == h1.to_bytes(8, "big")


def test_murmur3_long_inputs_use_block_loop() -> None:
    # Crosses the 16-byte block boundary and every tail length; distinct inputs, distinct outputs.
    seen = {murmur3_h1(bytes(range(n))) for n in range(40)}
    assert len(seen) == 40


def _mars_venus() -> list[DirEntry]:
    m = import_bytes(b"Hello Mars!\n")
    v = import_bytes(b"Hello Venus!\n")
    assert str(m.cid) == "QmPrrHqJzto9m7SyiRzarwkqPcCSsKR2EB1AyqJfe8L8tN"
    return [DirEntry(b"mars.txt", m.cid.bytes, m.tsize), DirEntry(b"venus.txt", v.cid.bytes, v.tsize)]


def test_forced_hamt_worked_example() -> None:
    """spec §4.3: link names 3Emars.txt / 68venus.txt and the exact shard Data bytes."""
    store = MemoryBlockstore()
    cid, tsize = build_hamt(_mars_venus(), CidBuilder(), store)
    node = decode_pbnode(store.get(cid))
    assert [link.name for link in node.links] == [b"3Emars.txt", b"68venus.txt"]
    assert node.data == bytes.fromhex("08 05 12 0e 01 00 00 00 00 00 40 00 00 00 00 00 00 00 28 22 30 80 02")
    assert tsize == len(store.get(cid)) + sum(link.tsize or 0 for link in node.links)


@pytest.mark.parametrize("fanout", [8, 16, 32, 64, 128, 256, 512, 1024])
def test_prefix_width_and_bitfield(fanout: int) -> None:
    store = MemoryBlockstore()
    entries = [DirEntry(f"f{i}".encode(), import_bytes(str(i).encode()).cid.bytes, 10) for i in range(300)]
    cid, _ = build_hamt(entries, CidBuilder(), store, fanout=fanout)
    node = decode_pbnode(store.get(cid))
    data = decode_unixfs_data(node.data or b"")
    width = len(f"{fanout - 1:X}")
    assert data.fanout == fanout and data.hash_type == 0x22
    assert data.data is not None and data.data[0] != 0  # leading zero bytes stripped
    slots = {int(link.name[:width], 16) for link in node.links}  # type: ignore[index]
    assert int.from_bytes(data.data, "big") == sum(1 << s for s in slots)
    names = [link.name for link in node.links]
    assert names == sorted(names)  # slot order == byte order of the names


def test_metadata_only_on_root_shard() -> None:
    store = MemoryBlockstore()
    entries = [DirEntry(f"n{i}".encode(), import_bytes(b"x").cid.bytes, 11) for i in range(2000)]
    meta = Metadata(0o755, Mtime(1234567890, 5))
    cid, _ = build_hamt(entries, CidBuilder(), store, meta=meta)
    root = decode_unixfs_data(decode_pbnode(store.get(cid)).data or b"")
    assert root.mode == 0o755 and root.mtime == Mtime(1234567890, 5)
    children = [link for link in decode_pbnode(store.get(cid)).links if len(link.name or b"") == 2]
    assert children, "2000 entries must need child shards at fanout 256"
    for link in children:
        child = decode_unixfs_data(decode_pbnode(store.get(link.cid)).data or b"")
        assert child.mode is None and child.mtime is None


def test_full_collision_is_too_deep() -> None:
    entries = [DirEntry(b"same", b"\x12\x20" + bytes(32), 1), DirEntry(b"same", b"\x12\x20" + bytes(32), 1)]
    with pytest.raises(UnixFSError, match="too deep"):
        build_hamt(entries, CidBuilder(), MemoryBlockstore())


names_st = st.sets(st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b), min_size=1, max_size=400)


@given(names=names_st, fanout=st.sampled_from([8, 16, 256, 1024]), probe=st.binary(max_size=12))
def test_lookup_finds_every_name_and_no_other(names: set[bytes], fanout: int, probe: bytes) -> None:
    store = MemoryBlockstore()
    cids = {n: CidBuilder().cid_bytes(0x55, n) for n in names}
    cid, _ = build_hamt([DirEntry(n, cids[n], len(n)) for n in names], CidBuilder(), store, fanout=fanout)
    node = decode_pbnode(store.get(cid))
    shape = shard_shape(node, decode_unixfs_data(node.data or b""))

    def load(c: bytes) -> bytes:
        return get_verified(store, c)

    listed = dict(iter_hamt(load, shape))
    assert set(listed) == names
    assert [n for n, _ in iter_hamt(load, shape)] == sorted(names, key=murmur3_h1)  # hash order
    for n in names:
        link = hamt_lookup(load, shape, n)
        assert link is not None and link.cid == cids[n] and link.tsize == len(n)
    if probe not in names:
        assert hamt_lookup(load, shape, probe) is None


def _shard(links: list, bitfield: bytes | None, fanout: int = 256, hash_type: int = 0x22) -> tuple:
    node = decode_pbnode(encode_pbnode(links, encode_unixfs_data(
        UnixFSData(DataType.HAMT_SHARD, data=bitfield, hash_type=hash_type, fanout=fanout))))
    return node, decode_unixfs_data(node.data or b"")


@pytest.mark.parametrize(("links", "bitfield", "fanout", "hash_type", "message"), [
    ([], None, 256, 0x11, "hash type"),
    ([], None, 100, 0x22, "power of two"),
    ([("zz", 1)], b"\x01", 256, 0x22, "slot"),
    ([("01a", 1), ("01b", 1)], b"\x02", 256, 0x22, "twice"),
    ([("01a", 1)], b"\x04", 256, 0x22, "bitfield"),
    ([("FFFx", 1)], b"\x01", 512, 0x22, "fanout"),
])
def test_malformed_shards_are_refused(links: list, bitfield: bytes | None, fanout: int, hash_type: int,
                                      message: str) -> None:
    from pyipld.dagpb import PBLink
    cid = CidBuilder().cid_bytes(0x55, b"x")
    pb_links = [PBLink(cid, name.encode(), t) for name, t in links]
    node, data = _shard(pb_links, bitfield, fanout, hash_type)
    with pytest.raises(UnixFSError, match=message):
        shard_shape(node, data)


def test_self_linking_shard_stops() -> None:
    """A shard whose child slot points back at a shard: bounded by the hash depth."""
    from pyipld.dagpb import PBLink
    # A real child shard cannot link to itself (hashes); a lying loader can pretend to.
    node, data = _shard([PBLink(b"\x01\x70\x12\x20" + bytes(32), b"00", 1)], b"\x01", 256)
    block = encode_pbnode(node.links, node.data)
    shape = shard_shape(node, data)
    with pytest.raises(UnixFSError, match="deeper|twice"):
        list(iter_hamt(lambda c: block, shape))


def test_cid_of_kubo_hamt_vector_v0() -> None:
    """kubo cid_profiles_test.go DirHAMTCID (unixfs-v0-2015): 4033 files named 31 chars."""
    from pyipld.unixfs.params import UNIXFS_V0_2015
    from tests._dirgen import kubo_dir_names
    x = import_bytes(b"x", UNIXFS_V0_2015)
    names = kubo_dir_names("hamt-unixfs-v0-2015", 4033, 31, 31)
    cid, _ = build_hamt([DirEntry(n.encode(), x.cid.bytes, x.tsize) for n in names], CidBuilder(),
                        MemoryBlockstore())
    assert CID.from_bytes(cid) == CID.decode("QmeMiJzmhpJAUgynAcxTQYek5PPKgdv3qEvFsdV3XpVnvP")
