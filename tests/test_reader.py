"""Reading files back: verified blocks, ranges that touch only needed blocks, hostile DAGs."""

from __future__ import annotations

import io
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld.blockstore import MemoryBlockstore
from pyipld.cid import CID, DAG_CBOR, DAG_PB, RAW, CidBuilder
from pyipld.dagpb import PBLink, encode_pbnode
from pyipld.errors import ConfigError, DagPBError, IntegrityError, NotFoundError, UnixFSError
from pyipld.unixfs.data import DataType, UnixFSData, encode_unixfs_data
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.reader import (
    UnixFSFile,
    UnixFSReader,
    file_size,
    iter_file,
    open_file,
    read_file,
)
from tests._deterministic import chacha_bytes

V0 = CidBuilder.create(0)


class CountingStore(MemoryBlockstore):
    def __init__(self) -> None:
        super().__init__()
        self.gets: list[bytes] = []

    def get(self, cid: bytes) -> bytes:
        self.gets.append(cid)
        return super().get(cid)


def _imported(size: int = 10_000, **params: object) -> tuple[CountingStore, CID, bytes]:
    data = chacha_bytes(f"reader-{size}", size)
    store = CountingStore()
    result = import_bytes(data, ImportParams(**{"chunker": "size-100", "max_links": 4, **params}), store)  # type: ignore[arg-type]
    return store, result.cid, data


def _put(store: MemoryBlockstore, codec: int, block: bytes, builder: CidBuilder = V0) -> bytes:
    cid = builder.cid_bytes(codec, block)
    store.put(cid, block)
    return cid


def _file_node(store: MemoryBlockstore, children: list[bytes], blocksizes: list[int], *,
               filesize: int | None = None, data: bytes | None = None, kind: DataType = DataType.FILE) -> bytes:
    fs = UnixFSData(kind, data=data, filesize=filesize if filesize is not None else sum(blocksizes) + len(data or b""),
                    blocksizes=tuple(blocksizes))
    links = [PBLink(c, b"", 1) for c in children]
    return _put(store, DAG_PB, encode_pbnode(links, encode_unixfs_data(fs)))


# -- reading ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [{}, {"raw_leaves": True}, {"layout": "trickle"}, {"cid_version": 1},
                                    {"inline": True, "chunker": "size-10"}])
def test_read_whole_file(params: dict[str, object]) -> None:
    store, cid, data = _imported(5000, **params)
    assert read_file(store, cid) == data
    assert b"".join(iter_file(store, str(cid))) == data
    assert file_size(store, cid.bytes) == len(data)


def test_ranges_touch_only_the_blocks_they_need() -> None:
    store, cid, data = _imported(10_000)  # 100 leaves of 100 bytes, 4 links per node: depth 4
    reader = UnixFSReader(store, cid)
    assert reader.size == 10_000
    store.gets.clear()
    assert reader.read(5_050, 10) == data[5_050:5_060]
    # root is cached by .size; then 3 internal levels + one leaf
    assert len(store.gets) == 4
    store.gets.clear()
    assert reader.read(5_150, 100) == data[5_150:5_250]  # internal nodes cached: two leaves
    assert len(store.gets) <= 3


def test_missing_block_outside_the_range_does_not_matter() -> None:
    store, cid, data = _imported(1000, max_links=20)
    reader = UnixFSReader(store, cid)
    leaves = [c for c in store if CID.from_bytes(c) != cid]
    last = leaves[-1]
    del store._blocks[last]
    assert reader.read(0, 500) == data[:500]
    with pytest.raises(NotFoundError, match=str(CID.from_bytes(last))):
        reader.read()


def test_corrupt_block_names_its_cid() -> None:
    store, cid, _ = _imported(1000, max_links=20)
    leaf = next(c for c in store if CID.from_bytes(c) != cid)
    store._blocks[leaf] = store._blocks[leaf][:-1] + b"!"
    with pytest.raises(IntegrityError, match=str(CID.from_bytes(leaf))):
        read_file(store, cid)


def test_missing_root() -> None:
    with pytest.raises(NotFoundError, match="QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"):
        read_file(MemoryBlockstore(), "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")


def test_foreign_source_key_error_becomes_not_found() -> None:
    class DictSource:
        def get(self, cid: bytes) -> bytes:
            raise KeyError(cid)

        def has(self, cid: bytes) -> bool:
            return False

    with pytest.raises(NotFoundError, match="Qm"):
        read_file(DictSource(), "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")


def test_identity_root_needs_no_store() -> None:
    result = import_bytes(b"jkD98jkD975hkD8\n", ImportParams(inline=True, raw_leaves=True))
    assert read_file(MemoryBlockstore(), result.cid) == b"jkD98jkD975hkD8\n"


def test_empty_files() -> None:
    for params in (ImportParams(), ImportParams(raw_leaves=True), ImportParams(layout="trickle")):
        store = MemoryBlockstore()
        cid = import_bytes(b"", params, store).cid
        assert read_file(store, cid) == b"" and file_size(store, cid) == 0


def test_negative_range_is_refused() -> None:
    store, cid, _ = _imported(100)
    with pytest.raises(ValueError):
        read_file(store, cid, offset=-1)


# -- hostile DAGs -----------------------------------------------------------------------------------

def test_blocksizes_that_lie_about_a_child() -> None:
    store = MemoryBlockstore()
    leaf = _put(store, RAW, b"abc", CidBuilder.create(1))
    root = _file_node(store, [leaf], [5])
    with pytest.raises(UnixFSError, match="blocksizes say 5"):
        read_file(store, root)


def test_filesize_disagreeing_with_blocksizes() -> None:
    store = MemoryBlockstore()
    leaf = _put(store, RAW, b"abc", CidBuilder.create(1))
    root = _file_node(store, [leaf], [3], filesize=4)
    with pytest.raises(UnixFSError, match="filesize 4"):
        file_size(store, root)


def test_blocksizes_count_must_match_links() -> None:
    store = MemoryBlockstore()
    leaf = _put(store, RAW, b"abc", CidBuilder.create(1))
    root = _file_node(store, [leaf, leaf], [3])
    with pytest.raises(UnixFSError, match="2 links but 1 blocksizes"):
        read_file(store, root)


def test_inline_data_before_children() -> None:
    store = MemoryBlockstore()
    leaf = _put(store, RAW, b"world", CidBuilder.create(1))
    root = _file_node(store, [leaf], [5], data=b"hello ")
    assert read_file(store, root) == b"hello world"
    assert read_file(store, root, offset=4, length=4) == b"o wo"


@pytest.mark.parametrize("kind", [DataType.DIRECTORY, DataType.SYMLINK, DataType.HAMT_SHARD, DataType.METADATA])
def test_non_file_nodes_are_refused(kind: DataType) -> None:
    store = MemoryBlockstore()
    bad = _put(store, DAG_PB, encode_pbnode([], encode_unixfs_data(UnixFSData(kind, data=b"x"))))
    with pytest.raises(UnixFSError, match="not a file"):
        read_file(store, bad)
    root = _file_node(store, [bad], [1])
    with pytest.raises(UnixFSError, match="not a file"):
        read_file(store, root)


def test_wrong_codec_link() -> None:
    store = MemoryBlockstore()
    cbor = _put(store, DAG_CBOR, b"\xa0", CidBuilder.create(1))
    root = _file_node(store, [cbor], [1])
    with pytest.raises(UnixFSError, match="codec 0x71"):
        read_file(store, root)


def test_garbage_dagpb_block_is_a_decode_error_naming_the_cid() -> None:
    store = MemoryBlockstore()
    bad = _put(store, DAG_PB, b"\xff\xff")
    with pytest.raises(DagPBError, match=str(CID.from_bytes(bad))):
        read_file(store, bad)
    no_data = _put(store, DAG_PB, b"")
    with pytest.raises(UnixFSError, match="without UnixFS Data"):
        read_file(store, no_data)
    bad_unixfs = _put(store, DAG_PB, encode_pbnode([], b"\x08\x63"))
    with pytest.raises(UnixFSError, match=str(CID.from_bytes(bad_unixfs))):
        read_file(store, bad_unixfs)


def _chain(store: MemoryBlockstore, depth: int) -> bytes:
    cid = _put(store, RAW, b"x", CidBuilder.create(1))
    for _ in range(depth):
        cid = _file_node(store, [cid], [1])
    return cid


def test_absurd_depth_is_refused_without_recursion() -> None:
    store = MemoryBlockstore()
    root = _chain(store, 200)
    with pytest.raises(UnixFSError, match="max_depth=128"):
        read_file(store, root)
    deep = _chain(store, 3000)  # deeper than Python's recursion limit
    assert UnixFSReader(store, deep, max_depth=5000).read() == b"x"


def test_cycle_is_refused() -> None:
    # Impossible with verified hashes, so build it in an unverified store.
    store = MemoryBlockstore()
    fake = CidBuilder.create(0).cid_bytes(DAG_PB, b"placeholder")
    block = encode_pbnode([PBLink(fake, b"", 1)], encode_unixfs_data(UnixFSData(DataType.FILE, filesize=1,
                                                                                 blocksizes=(1,))))
    store.put(fake, block)
    with pytest.raises(UnixFSError, match="cycle"):
        UnixFSReader(store, fake, verify=False).read()
    with pytest.raises(IntegrityError):
        UnixFSReader(store, fake).read()


def test_zero_size_children_are_never_fetched() -> None:
    store = CountingStore()
    leaf = _put(store, RAW, b"ab", CidBuilder.create(1))
    missing = CidBuilder.create(1).cid_bytes(RAW, b"never stored")
    root = _file_node(store, [missing] * 1000 + [leaf], [0] * 1000 + [2])
    assert read_file(store, root) == b"ab"


# -- the file object --------------------------------------------------------------------------------

def test_file_object_seek_read_readinto() -> None:
    store, cid, data = _imported(10_000)
    f = open_file(store, cid, buffering=0)
    assert isinstance(f, UnixFSFile) and f.size == len(data)
    assert f.read(10) == data[:10] and f.tell() == 10
    f.seek(-5, io.SEEK_END)
    assert f.read() == data[-5:]
    assert f.read(3) == b""
    f.seek(7_777)
    buf = bytearray(333)
    assert f.readinto(buf) == 333 and bytes(buf) == data[7_777:8_110]
    f.seek(-10, io.SEEK_CUR)
    assert f.read(20) == data[8_100:8_120]
    with pytest.raises(ValueError):
        f.seek(-1)
    f.close()
    with pytest.raises(ValueError):
        f.read(1)


def test_buffered_file_object_random_reads() -> None:
    store, cid, data = _imported(20_000)
    rng = random.Random(7)
    with open_file(store, cid) as f:
        assert f.read() == data
        for _ in range(50):
            offset = rng.randrange(0, len(data) + 10)
            n = rng.randrange(0, 700)
            f.seek(offset)
            assert f.read(n) == data[offset : offset + n]


def test_shared_reader_across_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    store, cid, data = _imported(20_000, max_links=3)
    reader = UnixFSReader(store, cid)

    def check(seed: int) -> bool:
        rng = random.Random(seed)
        for _ in range(30):
            offset, n = rng.randrange(0, len(data)), rng.randrange(0, 500)
            if reader.read(offset, n) != data[offset : offset + n]:
                return False
        return True

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(check, range(16)))


# -- the dag-pb leaf shortcut agrees with the strict decoders ---------------------------------------

def _strict_leaf(block: bytes) -> bytes | None:
    """What the strict decoders say a leaf holds, or None where they refuse or it is no plain leaf."""
    from pyipld.dagpb import decode_pbnode
    from pyipld.errors import DecodeError
    from pyipld.unixfs.data import decode_unixfs_data

    try:
        node = decode_pbnode(block)
        if node.links or node.data is None:
            return None
        fs = decode_unixfs_data(node.data)
    except DecodeError:
        return None
    if fs.type not in (DataType.FILE, DataType.RAW) or fs.blocksizes:
        return None
    data = fs.data or b""
    if fs.filesize is not None and fs.filesize != len(data):
        return None
    return data


@given(data=st.binary(max_size=300), kind=st.sampled_from([DataType.FILE, DataType.RAW, DataType.DIRECTORY]),
       filesize=st.one_of(st.none(), st.integers(0, 400)), with_data=st.booleans())
def test_plain_leaf_shortcut_matches_strict_decoders(data: bytes, kind: DataType, filesize: int | None,
                                                     with_data: bool) -> None:
    from pyipld.unixfs.reader import plain_leaf_data

    msg = UnixFSData(kind, data=data if with_data else None, filesize=filesize)
    block = encode_pbnode([], encode_unixfs_data(msg))
    fast = plain_leaf_data(block)
    if fast is not None:
        assert fast == _strict_leaf(block)
    if kind is not DataType.DIRECTORY and (filesize is None or filesize == (len(data) if with_data else 0)):
        assert fast == (data if with_data else b"")  # the importer's form always takes the shortcut


@given(st.binary(max_size=80))
def test_plain_leaf_shortcut_on_garbage(block: bytes) -> None:
    from pyipld.unixfs.reader import plain_leaf_data

    fast = plain_leaf_data(block)
    if fast is not None:
        assert fast == _strict_leaf(block)


def test_file_object_read_after_an_error_retries_instead_of_faking_eof() -> None:
    store, cid, data = _imported(1000, max_links=20)
    leaves = [c for c in store if CID.from_bytes(c) != cid]
    saved = store._blocks.pop(leaves[3])
    f = open_file(store, cid, buffering=0)
    assert f.read(300) == data[:300]
    with pytest.raises(NotFoundError):
        f.read(200)
    store.put(leaves[3], saved)  # the block arrives (e.g. fetched): reading resumes where it was
    assert f.read(200) == data[300:500]


@pytest.mark.parametrize("buffering", [0, io.DEFAULT_BUFFER_SIZE])
def test_a_huge_read_size_allocates_only_what_is_left(buffering: int) -> None:
    """``read(10**15)`` on a 300 kB file was a MemoryError: the reader allocated ``n`` bytes first."""
    store = MemoryBlockstore()
    data = chacha_bytes("huge-read", 300_000)
    f = open_file(store, import_bytes(data, None, store).cid, buffering=buffering)
    assert f.read(10**15) == data
    f.seek(-10, io.SEEK_END)
    assert f.read(10**15) == data[-10:]
    f.seek(10, io.SEEK_END)
    assert f.read(10**15) == b""
    if buffering:
        f.seek(5)
        assert data.startswith(f.read1(10**15), 5)  # type: ignore[union-attr]


def test_offset_and_length_must_be_non_negative_ints() -> None:
    """A str or float offset failed inside with TypeError ('<' not supported / slice indices);
    a negative one was a bare ValueError, outside pyipld.errors."""
    store = MemoryBlockstore()
    cid = import_bytes(b"hello world\n", None, store).cid
    for kwargs in ({"offset": "1"}, {"offset": 1.5}, {"length": 2.0}):
        with pytest.raises(ConfigError, match=r"(offset|length) must be an int, not a (str|float)"):
            read_file(store, cid, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="must not be negative"):
        read_file(store, cid, offset=-1)
    assert read_file(store, cid, offset=6, length=5) == b"world"
    np = pytest.importorskip("numpy")
    assert read_file(store, cid, offset=np.int64(6), length=np.int32(5)) == b"world"


def test_open_file_with_buffering_minus_one_is_the_default() -> None:
    """``buffering=-1`` (open()'s "default") failed with ValueError: buffer size must be strictly positive."""
    store = MemoryBlockstore()
    f = open_file(store, import_bytes(b"hello\n", None, store).cid, buffering=-1)
    assert isinstance(f, io.BufferedReader)
    assert f.read() == b"hello\n"
