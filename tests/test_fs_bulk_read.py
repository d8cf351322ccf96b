"""Large ipfs:// reads: ``read_cid_into`` (pieces fetched, verified and copied on several threads),
``IPFSFile.readinto`` and pyarrow's ``read_buffer`` hook. Every read equals slicing the original,
the parallel path equals the sequential one, and a failing piece leaves nothing running."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("fsspec")

from pyipld.errors import BlockIntegrityError
from pyipld.fs import IPFSFileSystem, core
from pyipld.unixfs import ImportParams

from ._deterministic import chacha_bytes
from ._fs import build_car

SIZE = 700_001
SMALL_LEAVES = ImportParams(cid_version=1, chunker="size-16384")  # 43 raw leaves, 2 levels
KUBO = ImportParams(chunker="size-16384")  # CIDv0: dag-pb leaves, as kubo's defaults give


@pytest.fixture(scope="module", params=["raw", "dag-pb"])
def car(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str, Path]:
    base = tmp_path_factory.mktemp("bulk")
    (base / "src").mkdir()
    data = chacha_bytes("bulk-read", SIZE)
    (base / "src" / "f.bin").write_bytes(data)
    params = SMALL_LEAVES if request.param == "raw" else KUBO
    root = build_car(base / "src", base / "t.car", params)
    return data, f"{root}/f.bin", base / "t.car"


@pytest.fixture()
def split(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Pieces small enough that a 700 KB file is cut into many (the real sizes are MiB)."""
    monkeypatch.setattr(core, "_SPLIT_MIN", 40_000)
    monkeypatch.setattr(core, "_SPLIT_PIECE", 32_768)
    monkeypatch.setattr(core, "_SPLIT_WORKERS", 4)
    yield


def _fs(car: Path, **kw: object) -> IPFSFileSystem:
    return IPFSFileSystem(cars=[str(car)], use_env=False, skip_instance_cache=True, **kw)


def test_pieces_cover_the_range_at_piece_multiples(split: None) -> None:
    assert list(IPFSFileSystem._pieces(5, 30_000)) == [(5, 30_000)]  # below _SPLIT_MIN: one piece
    pieces = list(IPFSFileSystem._pieces(1000, 100_000))
    assert pieces[0] == (1000, 32_768) and pieces[-1] == (98_304, 100_000)
    assert all(a < b for a, b in pieces) and all(b == c for (_, b), (c, _) in pairwise(pieces))
    assert all(b % 32_768 == 0 for _, b in pieces[:-1])


def test_parallel_reads_equal_slicing_and_the_sequential_path(car: tuple[bytes, str, Path], split: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    data, path, car_path = car
    fs = _fs(car_path, memory_cache=0)
    entry = fs._file_entry(path)
    workers: set[str] = set()
    original = core.UnixFSReader.read_into

    def spy(self: core.UnixFSReader, offset: int, out: memoryview) -> int:
        workers.add(threading.current_thread().name)
        return original(self, offset, out)

    monkeypatch.setattr(core.UnixFSReader, "read_into", spy)

    @settings(max_examples=150, deadline=None)
    @given(st.integers(0, SIZE + 10), st.integers(0, SIZE + 10))
    def check(start: int, length: int) -> None:
        want = data[start:start + length]
        out = bytearray(length)
        got = fs.read_cid_into(entry.cid, entry.size, start, out)
        assert got == len(want) and out[:got] == want
        assert fs.read_cid(entry.cid, entry.size, start, start + length) == want
        monkeypatch.setattr(core, "_SPLIT_WORKERS", 1)  # the one-thread path, same answer
        try:
            seq = bytearray(length)
            assert fs.read_cid_into(entry.cid, entry.size, start, seq) == got and seq == out
            assert fs.read_cid(entry.cid, entry.size, start, start + length) == want
        finally:
            monkeypatch.setattr(core, "_SPLIT_WORKERS", 4)

    check()
    out = bytearray(SIZE)
    assert fs.read_cid_into(entry.cid, entry.size, 0, out) == SIZE and out == data
    assert any(name.startswith("pyipld-fs-split") for name in workers)  # the pieces ran on the pool
    with pytest.raises(ValueError):
        fs.read_cid_into(entry.cid, entry.size, -1, bytearray(4))
    fs.close()


def test_file_readinto_and_read_buffer_equal_slicing(car: tuple[bytes, str, Path], split: None) -> None:
    pa = pytest.importorskip("pyarrow")
    data, path, car_path = car
    fs = _fs(car_path)

    @settings(max_examples=100, deadline=None)
    @given(st.lists(st.tuples(st.integers(0, SIZE + 5), st.integers(0, 300_000), st.booleans()),
                    min_size=1, max_size=6),
           st.sampled_from([4096, 65_536]))
    def check(reads: list[tuple[int, int, bool]], block_size: int) -> None:
        with fs.open(path, "rb", block_size=block_size) as f:
            for start, length, arrow in reads:
                f.seek(start)
                want = data[start:start + length]
                if arrow:
                    buf = f.read_buffer(length)
                    assert bytes(buf) == want
                    # large reads come in pyarrow's pool (no fresh pages), small ones from the cache
                    assert isinstance(buf, pa.Buffer) == (len(want) >= 2 * block_size)
                else:
                    out = bytearray(length)
                    assert f.readinto(out) == len(want) and out[:len(want)] == want
                assert f.tell() == start + len(want)

    check()
    fs.close()


def test_pyarrow_reads_through_read_buffer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    src = tmp_path / "src"
    src.mkdir()
    frame = pd.DataFrame({c: np.random.default_rng(5).random(200_000) for c in "xy"})  # ~3.2 MB
    frame.to_parquet(src / "t.parquet", index=False, compression=None)
    root = build_car(src, tmp_path / "t.car")
    sizes: list[int] = []
    original = core.IPFSFile.read_buffer

    def spy(self: core.IPFSFile, length: int = -1) -> object:
        out = original(self, length)
        sizes.append(len(out))  # type: ignore[arg-type]
        return out

    monkeypatch.setattr(core.IPFSFile, "read_buffer", spy)
    fs = _fs(tmp_path / "t.car")
    with fs.open(f"{root}/t.parquet", "rb", block_size=65_536) as f:
        got = pq.read_table(f).to_pandas()
    pd.testing.assert_frame_equal(got, frame)
    assert max(sizes) >= 1 << 20  # the column chunks came through the hook, not read()
    fs.close()


class _Tampered:
    """A source giving wrong bytes for one block and a slow answer for another."""

    def __init__(self, get: object, bad: bytes, slow: bytes) -> None:
        self._get = get
        self.bad = bad
        self.slow = slow
        self.active = 0
        self.lock = threading.Lock()

    def __call__(self, cid: bytes) -> object:
        with self.lock:
            self.active += 1
        try:
            if cid == self.bad:
                raise BlockIntegrityError("tampered block", cid="x", source="test")
            if cid == self.slow:
                time.sleep(0.3)
            return self._get(cid)  # type: ignore[operator]
        finally:
            with self.lock:
                self.active -= 1


def test_a_failing_piece_raises_after_every_piece_stopped(car: tuple[bytes, str, Path], split: None) -> None:
    _, path, car_path = car
    fs = _fs(car_path, memory_cache=0)
    entry = fs._file_entry(path)
    reader = fs._reader(entry.cid)
    leaves = reader.node(entry.cid).links  # 16 KiB leaves: the second 32 KiB piece starts at leaf 2
    st = fs._st()
    # the first piece (this thread's) fails at once; the second (a pool thread's) is still busy
    tampered = _Tampered(st.views.get, bad=leaves[0], slow=leaves[2])
    st.views.get = tampered  # type: ignore[assignment]
    st.views.get_many = lambda cids: [tampered(c) for c in cids]  # type: ignore[assignment]  # raw leaves
    reader._nodes.clear()
    out = bytearray(SIZE)
    with pytest.raises(BlockIntegrityError):
        fs.read_cid_into(entry.cid, entry.size, 0, out)
    assert tampered.active == 0  # nothing still writes into out
    fs.close()


def test_a_read_completes_while_the_split_pool_is_busy(car: tuple[bytes, str, Path], split: None) -> None:
    """The caller takes the pieces the pool has not started: a read is never stuck behind others'."""
    data, path, car_path = car
    fs = _fs(car_path)
    entry = fs._file_entry(path)
    pool = fs._st().split_pool
    release = threading.Event()
    blockers = [pool.submit(release.wait, 30) for _ in range(core._SPLIT_WORKERS)]
    try:
        out = bytearray(SIZE)
        assert fs.read_cid_into(entry.cid, entry.size, 0, out) == SIZE and out == data
        assert fs.read_cid(entry.cid, entry.size, 100, SIZE - 100) == data[100:-100]
    finally:
        release.set()
    assert all(b.result(timeout=30) for b in blockers)
    fs.close()


def test_after_its_own_piece_fails_the_caller_drops_the_unstarted_ones(car: tuple[bytes, str, Path],
                                                                        split: None) -> None:
    _, path, car_path = car
    fs = _fs(car_path, memory_cache=0)
    entry = fs._file_entry(path)
    reader = fs._reader(entry.cid)
    leaves = reader.node(entry.cid).links
    st = fs._st()
    asked: list[bytes] = []
    tampered = _Tampered(st.views.get, bad=leaves[0], slow=b"")
    st.views.get = lambda cid: asked.append(cid) or tampered(cid)  # type: ignore[assignment]
    st.views.get_many = lambda cids: [st.views.get(c) for c in cids]  # type: ignore[assignment]  # raw leaves
    pool = st.split_pool
    release = threading.Event()
    blockers = [pool.submit(release.wait, 30) for _ in range(core._SPLIT_WORKERS)]
    try:
        with pytest.raises(BlockIntegrityError):
            fs.read_cid_into(entry.cid, entry.size, 0, bytearray(SIZE))
        assert asked == [leaves[0]]  # no other piece was fetched: the pool never started one
    finally:
        release.set()
    assert all(b.result(timeout=30) for b in blockers)
    fs.close()
