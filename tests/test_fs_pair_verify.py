"""Leaves verified two at a time: the two-lane SHA-256 kernel equals hashlib, the chain's
``get_views`` returns only verified blocks (a tampered leaf is a typed error or falls back and never
reaches pyarrow), and the reader's batched raw-leaf walk equals the block-by-block one."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("fsspec")

from pyipld._sha256x2 import _kernel, native_available, sha256_pair
from pyipld.blockstore import MemoryBlockstore, get_verified
from pyipld.cid import CID, RAW, CidBuilder
from pyipld.errors import BlockIntegrityError, UnixFSError
from pyipld.fs import IPFSFileSystem
from pyipld.unixfs import ImportParams, import_bytes
from pyipld.unixfs.reader import _LEAF_BATCH, UnixFSReader, decode_file_node

from ._deterministic import chacha_bytes
from ._fs import build_car

EDGES = [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 16384, 262144, 262144 + 55]


PAIRS = ["sha256_pair", "kernel"]


def _pair(which: str) -> Callable[[Any, Any], tuple[bytes, bytes]]:
    """The public function (hashlib below BATCH_MIN_BYTES), or the SHA-NI kernel itself at every size."""
    if which == "sha256_pair":
        return sha256_pair
    kernel = _kernel()
    if kernel is None:
        pytest.skip("the two-lane kernel is not available here (no SHA-NI, no compiler, or PYIPLD_PUREPYTHON)")
    return lambda a, b: tuple(kernel([(a,), (b,)], 1))


@pytest.mark.parametrize("which", PAIRS)
@pytest.mark.parametrize("n", EDGES)
def test_pair_equals_hashlib_at_padding_edges(n: int, which: str) -> None:
    pair = _pair(which)
    for m in EDGES:
        a, b = chacha_bytes(f"a{n}", n), chacha_bytes(f"b{m}", m)
        assert pair(a, b) == (hashlib.sha256(a).digest(), hashlib.sha256(b).digest())


@pytest.mark.parametrize("which", PAIRS)
def test_pair_equals_hashlib(which: str) -> None:
    pair = _pair(which)

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=700), st.binary(max_size=700), st.integers(0, 8))
    def check(a: bytes, b: bytes, cut: int) -> None:
        view = memoryview(a)[min(cut, len(a)):]  # an unaligned, read-only view
        assert pair(view, b) == (hashlib.sha256(view).digest(), hashlib.sha256(b).digest())

    check()


def test_pair_reads_a_read_only_mapping(tmp_path: Path) -> None:
    import mmap

    p = tmp_path / "f"
    p.write_bytes(chacha_bytes("map", 300_001))
    with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        v = memoryview(mm)
        try:
            assert sha256_pair(v[3:100_000], v[100_000:]) == (hashlib.sha256(v[3:100_000]).digest(), hashlib.sha256(v[100_000:]).digest())
        finally:
            v.release()


def test_pair_from_many_threads() -> None:
    blocks = [chacha_bytes(f"t{i}", 40_000 + 977 * i) for i in range(16)]
    want = [hashlib.sha256(b).digest() for b in blocks]
    bad: list[int] = []

    def work(k: int) -> None:
        for i in range(0, 16, 2):
            j, jj = (i + k) % 16, (i + k + 1) % 16
            if sha256_pair(blocks[j], blocks[jj]) != (want[j], want[jj]):
                bad.append(k)

    with ThreadPoolExecutor(6) as pool:  # waits for every worker and re-raises what one raised
        list(pool.map(work, range(6)))
    assert not bad


def test_pure_python_switch_uses_hashlib() -> None:
    code = ("from pyipld._sha256x2 import native_available, sha256_pair\nimport hashlib\n"
            "assert not native_available()\n"
            "assert sha256_pair(b'ab', b'') == (hashlib.sha256(b'ab').digest(), hashlib.sha256(b'').digest())\n")
    env = {**os.environ, "PYIPLD_PUREPYTHON": "1"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)


def test_native_kernel_is_used_where_the_cpu_has_sha() -> None:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if " sha_ni" not in flags or os.environ.get("PYIPLD_PUREPYTHON"):
        pytest.skip("no SHA-NI here: hashlib is used")
    assert native_available()


# -- the chain and the fsspec reads ----------------------------------------------------------------

SIZE = 300_001
LEAVES = ImportParams(cid_version=1, chunker="size-16384")  # 19 raw leaves


@pytest.fixture(scope="module", params=["raw", "dag-pb"])
def car(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str, Path]:
    base = tmp_path_factory.mktemp("pair")
    (base / "src").mkdir()
    data = chacha_bytes("pair-verify", SIZE)
    (base / "src" / "f.bin").write_bytes(data)
    params = LEAVES if request.param == "raw" else ImportParams(chunker="size-16384")  # CIDv0: dag-pb leaves
    root = build_car(base / "src", base / "t.car", params)
    return data, f"{root}/f.bin", base / "t.car"


def _tampered(car: Path, out: Path, data: bytes, at: int) -> None:
    raw = bytearray(car.read_bytes())
    pos = raw.find(data[at : at + 64])
    assert pos > 0
    raw[pos + 7] ^= 0x01
    out.write_bytes(bytes(raw))


def _leaf_bytes(cid: bytes, block: object) -> bytes:
    return bytes(decode_file_node(cid, bytes(block)).data)  # type: ignore[call-overload]


def _fs(*cars: Path, **kw: object) -> IPFSFileSystem:
    return IPFSFileSystem(cars=[str(c) for c in cars], use_env=False, skip_instance_cache=True, **kw)


def _leaves(fs: IPFSFileSystem, path: str) -> list[bytes]:
    entry = fs._file_entry(path)
    return list(fs._reader(entry.cid).node(entry.cid).links)


def test_get_views_equal_get_view_and_fill_the_memory_cache(car: tuple[bytes, str, Path]) -> None:
    data, path, car_path = car
    fs = _fs(car_path)
    leaves = _leaves(fs, path)
    before = fs.chain.fetched[f"car:{car_path}"]  # the directory and the file's root
    got = fs.chain.get_views(leaves)
    assert b"".join(_leaf_bytes(c, g) for c, g in zip(leaves, got)) == data
    assert fs.chain.memory is not None and all(fs.chain.memory.get(c) is not None for c in leaves)
    assert fs.chain.fetched[f"car:{car_path}"] - before == len(leaves)
    assert [bytes(g) for g in fs.chain.get_views(leaves[::-1])] == [bytes(g) for g in got[::-1]]  # from memory
    fs.close()


@pytest.mark.parametrize("leaf", [0, 9, 18])  # first, middle (either lane of a pair), the short last one
def test_tampered_leaf_is_a_typed_error_naming_it(car: tuple[bytes, str, Path], tmp_path: Path, leaf: int) -> None:
    data, path, car_path = car
    bad = tmp_path / "bad.car"
    _tampered(car_path, bad, data, leaf * 16384)
    fs = _fs(bad, memory_cache=0)
    target = _leaves(fs, path)[leaf]
    with pytest.raises(BlockIntegrityError) as info:
        fs.chain.get_views(_leaves(fs, path))
    assert CID.decode(info.value.cid).bytes == target and info.value.source == f"car:{bad}"
    out = bytearray(SIZE)
    with pytest.raises(BlockIntegrityError):
        fs.read_cid_into(fs._file_entry(path).cid, SIZE, 0, out)
    with pytest.raises(BlockIntegrityError):
        fs.cat_file(path)
    fs.close()


def test_tampered_leaf_falls_back_to_the_next_car(car: tuple[bytes, str, Path], tmp_path: Path) -> None:
    data, path, car_path = car
    bad = tmp_path / "bad.car"
    _tampered(car_path, bad, data, 5 * 16384)
    fs = _fs(bad, car_path, memory_cache=0)
    assert fs.cat_file(path) == data
    assert [e.source for e in fs.chain.failures] == [f"car:{bad}"]
    assert fs.chain.fetched[f"car:{car_path}"] == 1  # only the tampered leaf came from the good CAR
    fs.close()


def test_tampered_parquet_never_reaches_pyarrow(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    np = pytest.importorskip("numpy")
    src = tmp_path / "src"
    src.mkdir()
    frame = pd.DataFrame({c: np.random.default_rng(1).random(20_000) for c in "ab"})
    frame.to_parquet(src / "t.parquet", index=False, compression=None)
    root = build_car(src, tmp_path / "t.car", LEAVES)
    data = (src / "t.parquet").read_bytes()
    bad = tmp_path / "bad.car"
    _tampered(tmp_path / "t.car", bad, data, len(data) // 2)  # inside column b's values
    opts = {"cars": [str(bad)], "use_env": False, "memory_cache": 0}
    with pytest.raises(BlockIntegrityError):
        pd.read_parquet(f"ipfs://{root}/t.parquet", storage_options=opts)
    opts["cars"] = [str(bad), str(tmp_path / "t.car")]
    pd.testing.assert_frame_equal(pd.read_parquet(f"ipfs://{root}/t.parquet", storage_options=opts), frame)


def test_concurrent_reads_through_the_pair_path(car: tuple[bytes, str, Path]) -> None:
    data, path, car_path = car
    fs = _fs(car_path, memory_cache=0)
    entry = fs._file_entry(path)
    bad: list[tuple[int, int]] = []

    def work(k: int) -> None:
        for i in range(12):
            s = (k * 7919 + i * 15013) % SIZE
            e = min(SIZE, s + 40_000 + 3001 * i)
            if fs.read_cid(entry.cid, SIZE, s, e) != data[s:e]:
                bad.append((s, e))

    with ThreadPoolExecutor(6) as pool:  # waits for every worker and re-raises what one raised
        list(pool.map(work, range(6)))
    assert not bad
    fs.close()


# -- the reader's batched raw-leaf walk ------------------------------------------------------------

class ManyStore(MemoryBlockstore):
    """A verifying source with ``get_many`` (like the fsspec chain); records the batches."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def get_many(self, cids: list[bytes]) -> list[bytes]:
        self.batches.append(len(cids))
        return [get_verified(self, c) for c in cids]


LAYOUTS = {"raw": {"cid_version": 1}, "dag-pb": {}, "trickle-raw": {"cid_version": 1, "layout": "trickle"},
           "trickle-dag-pb": {"layout": "trickle"}, "inline": {"cid_version": 1, "inline": True, "chunker": "size-10"}}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@settings(max_examples=40, deadline=None)
@given(start=st.integers(0, 5000), length=st.integers(0, 5000))
def test_batched_walk_equals_block_by_block(layout: str, start: int, length: int) -> None:
    data = chacha_bytes("batched", 4321)
    store = ManyStore()
    params = ImportParams(**{"chunker": "size-100", "max_links": 20, **LAYOUTS[layout]})  # type: ignore[arg-type]
    root = import_bytes(data, params, store).cid  # type: ignore[arg-type]
    batched = UnixFSReader(store, root, verify=False)
    assert b"".join(batched.iter_range(start, length)) == data[start : start + length]
    assert all(n <= _LEAF_BATCH for n in store.batches)
    if layout == "raw":  # balanced: every leaf in the range came in a batch (a dag-pb parent's first
        assert store.batches or length == 0 or start >= len(data)  # leaf comes alone: it tells leaves apart)


def test_batched_walk_checks_blocksizes() -> None:
    from pyipld.dagpb import PBLink, encode_pbnode
    from pyipld.unixfs.data import DataType, UnixFSData, encode_unixfs_data

    store = ManyStore()
    v1 = CidBuilder.create(1)
    leaf = v1.cid_bytes(RAW, b"abc")
    store.put(leaf, b"abc")
    node = encode_pbnode([PBLink(leaf, b"", 3)], encode_unixfs_data(UnixFSData(DataType.FILE, filesize=5,
                                                                                 blocksizes=(5,))))
    root = CidBuilder.create(0).cid_bytes(0x70, node)
    store.put(root, node)
    with pytest.raises(UnixFSError, match="blocksizes say 5"):
        b"".join(UnixFSReader(store, root, verify=False).iter_range())
    assert store.batches == [1]


class CountingStore(ManyStore):
    """:class:`ManyStore` that counts every fetch of each block (``get`` and ``get_many``)."""

    def __init__(self) -> None:
        super().__init__()
        self.fetched: dict[bytes, int] = {}

    def get(self, cid: bytes) -> bytes:
        self.fetched[cid] = self.fetched.get(cid, 0) + 1
        return super().get(cid)


@pytest.mark.parametrize("layout", ["raw", "dag-pb"])
def test_each_leaf_is_fetched_once(layout: str) -> None:
    """A balanced file read whole fetches every leaf once: the first dag-pb leaf under each parent
    was fetched to tell a leaf level from an inner one, then again in the batch (CIDv0 files)."""
    data = chacha_bytes("once", 30_000)
    store = CountingStore()
    params = ImportParams(**{"chunker": "size-100", "max_links": 20, **LAYOUTS[layout]})  # type: ignore[arg-type]
    root = import_bytes(data, params, store).cid  # type: ignore[arg-type]
    store.fetched.clear()
    assert b"".join(UnixFSReader(store, root, verify=False).iter_range()) == data
    assert len(store.fetched) == len(store) and set(store.fetched.values()) == {1}
