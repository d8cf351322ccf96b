"""The ipfs:// file cache: bytes equal to slicing, bounded, read-ahead on the filesystem's pool,
and a close that never waits for a thread (the CI hang of pyarrow datasets)."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("fsspec")

from pyipld.fs import IPFSFileSystem
from pyipld.fs.readahead import ReadAheadCache

from ._fs import build_car, make_tree

DATA = bytes(range(256)) * 41 + b"tail"  # 10,500 bytes: not a multiple of the block size


class _Recorder:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.fetched: list[tuple[int, int]] = []
        self.submitted: list[tuple[int, int]] = []
        self.pool = ThreadPoolExecutor(1)

    def fetch(self, start: int, end: int) -> bytes:
        self.fetched.append((start, end))
        return self.data[start:end]

    def submit(self, fn: object, start: int, end: int) -> Future[bytes]:
        self.submitted.append((start, end))
        return self.pool.submit(fn, start, end)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 11_000), st.integers(0, 3000)), min_size=1, max_size=12),
       st.integers(1, 3000), st.integers(1, 5))
def test_reads_equal_slicing(reads: list[tuple[int, int]], blocksize: int, maxblocks: int) -> None:
    rec = _Recorder(DATA)
    cache = ReadAheadCache(blocksize, rec.fetch, len(DATA), maxblocks=maxblocks, submit=rec.submit)
    for start, length in reads:
        start = max(0, start)
        assert cache._fetch(start, start + length) == DATA[start:start + length]
        assert len(cache._blocks) <= max(2, maxblocks)
    rec.pool.shutdown()


def test_sequential_reads_prefetch_the_next_block_random_reads_do_not() -> None:
    rec = _Recorder(DATA)
    cache = ReadAheadCache(1000, rec.fetch, len(DATA), submit=rec.submit)
    cache._fetch(0, 10)
    assert rec.submitted == []  # a first read at 0 is not yet a sequence
    cache._fetch(10, 1500)
    assert rec.submitted == [(2000, 3000)]
    cache._fetch(1500, 2500)  # block 2 comes from the prefetch, not a second fetch
    assert rec.fetched.count((2000, 3000)) == 1 and cache.hit_count >= 1
    cache._fetch(8000, 8100)  # a jump: no read-ahead
    assert rec.submitted == [(2000, 3000), (3000, 4000)]
    cache._fetch(10_400, 10_600)  # the last block: nothing after it to fetch
    assert cache._fetch(10_499, 10_600) == b"l"
    rec.pool.shutdown()


def test_a_failed_prefetch_is_fetched_again_and_raises_there() -> None:
    calls = {"n": 0}

    def flaky(start: int, end: int) -> bytes:
        calls["n"] += 1
        if start == 1000 and calls["n"] == 2:
            raise OSError("transient")
        return DATA[start:end]

    with ThreadPoolExecutor(1) as pool:
        cache = ReadAheadCache(1000, flaky, len(DATA), submit=pool.submit)
        cache._fetch(0, 10)
        cache._fetch(10, 20)  # schedules block 1, which fails
        assert cache._fetch(1000, 1010) == DATA[1000:1010]  # fetched again, on this thread


@pytest.fixture(scope="module")
def car_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    base = tmp_path_factory.mktemp("readahead")
    src = make_tree(base / "src")
    return src, build_car(src, base / "tree.car"), base / "tree.car"


def test_file_reads_sequentially_through_the_prefetch(car_tree: tuple[Path, str, Path]) -> None:
    src, root, car = car_tree
    data = (src / "sub/big.bin").read_bytes()
    fs = IPFSFileSystem(cars=[str(car)], use_env=False, skip_instance_cache=True)
    with fs.open(f"{root}/sub/big.bin", block_size=65536) as f:
        got = b"".join(iter(lambda: f.read(10_000), b""))
        assert isinstance(f.cache, ReadAheadCache) and f.cache.hit_count > 0
    assert got == data


def test_close_never_waits_on_threadings_shutdown_lock(car_tree: tuple[Path, str, Path]) -> None:
    """Regression: with fsspec's ``background`` cache, closing a file joined its executor thread,
    and joining takes ``threading._shutdown_locks_lock``. The garbage collector closed a dropped
    file inside ``Thread.start`` of a new thread, which holds that lock: pyarrow's dataset read
    hung forever (the CI run of the installed wheel). Here the lock is held while another thread
    closes a file that has a read-ahead in flight; the close must return anyway."""
    lock = getattr(threading, "_shutdown_locks_lock", None)
    if lock is None:
        pytest.skip("this Python's threading has no _shutdown_locks_lock")
    _, root, car = car_tree
    fs = IPFSFileSystem(cars=[str(car)], use_env=False, skip_instance_cache=True)
    f = fs.open(f"{root}/sub/big.bin", block_size=65536)
    f.read(10)
    f.read(10)  # sequential: a read-ahead is scheduled
    closer = threading.Thread(target=f.close, daemon=True)
    with lock:
        closer.start()
        closer.join(10)
        hung = closer.is_alive()
    closer.join(10)
    assert not hung, "IPFSFile.close waited for threading's shutdown lock"
    fs.close()
