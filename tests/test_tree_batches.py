"""Small files hashed in batches (pyipld.unixfs.tree.schedule) give exactly one-file-at-a-time output.

The reference is the same import with batching off (``FileImporter.batchable = False``: every
file through ``add_file`` when its turn comes): root CID, every ``added`` entry in order, every
block in put order (``put`` and ``put_parts`` sinks), the cache's records, errors after the
entries before them.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipld import cli
from pyipld.blockstore import NullSink
from pyipld.errors import FileChangedError, UnixFSError
from pyipld.unixfs import _fileread
from pyipld.unixfs.cache import ImportCache
from pyipld.unixfs.nodes import LeafMaker
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.tree import AddedEntry, import_paths
from pyipld.unixfs.tree import schedule as schedule_module
from pyipld.unixfs.tree.files import FileImporter


class _Recorder:
    """Every block in put order (joined), through ``put`` or ``put_parts``."""

    def __init__(self, parts: bool) -> None:
        self.blocks: list[tuple[bytes, bytes]] = []
        if parts:
            self.put_parts = self._put_parts

    def put(self, cid: bytes, data: bytes) -> None:
        self.blocks.append((cid, bytes(data)))

    def _put_parts(self, cid: bytes, parts: Sequence[bytes | bytearray | memoryview]) -> None:
        self.blocks.append((cid, b"".join(bytes(p) for p in parts)))


@contextmanager
def _unbatched() -> Iterator[None]:
    old = FileImporter.batchable
    FileImporter.batchable = False
    try:
        yield
    finally:
        FileImporter.batchable = old


@contextmanager
def _small_batches(files: int, nbytes: int, mean: int, queued: int) -> Iterator[None]:
    names = ("BATCH_FILES", "BATCH_BYTES", "THREADED_MEAN_BYTES", "MAX_QUEUED")
    old = [getattr(schedule_module, n) for n in names]
    for n, v in zip(names, (files, nbytes, mean, queued), strict=True):
        setattr(schedule_module, n, v)
    try:
        yield
    finally:
        for n, v in zip(names, old, strict=True):
            setattr(schedule_module, n, v)


def _make_tree(root: Path, seed: int, files: int, max_size: int) -> None:
    rnd = random.Random(seed)
    dirs = [root]
    root.mkdir()
    for i in range(files):
        r = rnd.random()
        if r < 0.15:
            d = rnd.choice(dirs) / f"d{i}"
            d.mkdir()
            dirs.append(d)
        elif r < 0.2:
            (rnd.choice(dirs) / f"l{i}").symlink_to(f"target-{i}")
        elif r < 0.25:
            (rnd.choice(dirs) / f".h{i}").write_bytes(rnd.randbytes(rnd.randint(0, 50)))
        else:
            size = rnd.choice((0, 1, rnd.randint(0, 300), rnd.randint(0, max_size)))
            (rnd.choice(dirs) / f"f{i}").write_bytes(rnd.randbytes(size))


def _run(root: Path, params: ImportParams, jobs: int, sink: object) -> tuple[str, list[AddedEntry]]:
    added: list[AddedEntry] = []
    result = import_paths([root], params, sink, on_added=added.append, jobs=jobs)  # type: ignore[arg-type]
    return str(result.cid), added


_PARAMS = st.builds(
    ImportParams,
    cid_version=st.sampled_from([0, 1]),
    raw_leaves=st.sampled_from([None, True, False]),
    chunker=st.sampled_from(["size-262144", "size-1000", "size-4096", "rabin-512-1024-2048"]),
    layout=st.sampled_from(["balanced", "trickle"]),
    inline=st.booleans(),
    hamt_threshold=st.sampled_from([262144, 200]),
    hidden=st.booleans(),
    empty_dirs=st.booleans(),
) | st.builds(  # UnixFS metadata (no raw leaves with it)
    ImportParams,
    cid_version=st.sampled_from([0, 1]),
    raw_leaves=st.just(False),
    chunker=st.sampled_from(["size-262144", "size-1000"]),
    layout=st.sampled_from(["balanced", "trickle"]),
    preserve_mtime=st.booleans(),
    preserve_mode=st.booleans(),
    mtime=st.sampled_from([None, (1_700_000_000, 5)]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), files=st.integers(1, 60), params=_PARAMS, jobs=st.sampled_from([1, 2, 3]),
       keep=st.sampled_from(["null", "put", "parts"]),
       batch=st.tuples(st.integers(1, 5), st.integers(1, 20_000), st.sampled_from([0, 1, 1 << 30]),
                       st.integers(1, 8)))
def test_batched_equals_one_file_at_a_time(seed: int, files: int, params: ImportParams, jobs: int, keep: str,
                                           batch: tuple[int, int, int, int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "t"
        _make_tree(root, seed, files, 9000)

        def sink() -> object:
            return NullSink() if keep == "null" else _Recorder(keep == "parts")

        with _unbatched():
            ref_sink = sink()
            want = _run(root, params, 1, ref_sink)
        with _small_batches(*batch):
            got_sink = sink()
            got = _run(root, params, jobs, got_sink)
        assert got == want
        if keep != "null":
            assert got_sink.blocks == ref_sink.blocks  # type: ignore[attr-defined]


def test_batches_really_run_on_threads_and_inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both paths of the rule are taken: files averaging ≥ THREADED_MEAN_BYTES go to a worker."""
    root = tmp_path / "t"
    root.mkdir()
    for i in range(40):
        (root / f"small{i:02d}").write_bytes(os.urandom(100))
    for i in range(6):
        (root / f"big{i}").write_bytes(os.urandom(300_000))
    threads: set[str] = set()
    real = schedule_module.hash_small_files

    def spy(*args: object) -> object:
        import threading

        threads.add(threading.current_thread().name.split("_")[0])
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(schedule_module, "hash_small_files", spy)
    with _unbatched():
        want = _run(root, ImportParams(), 1, NullSink())
    assert _run(root, ImportParams(), 2, NullSink()) == want
    assert threads == {"MainThread", "pyipld-files"}


def test_error_comes_after_the_entries_before_it(tmp_path: Path) -> None:
    """A fifo in the tree (refused) stops the import after every entry walked before it."""
    root = tmp_path / "t"
    root.mkdir()
    for i in range(30):
        (root / f"a{i:02d}").write_bytes(os.urandom(i * 10))
    os.mkfifo(root / "m-fifo")
    (root / "z").write_bytes(b"after")
    seen: dict[bool, list[AddedEntry]] = {}
    for batched in (False, True):
        added: list[AddedEntry] = []
        with (_unbatched() if not batched else _small_batches(64, 1 << 20, 1 << 30, 4096)),\
                pytest.raises(UnixFSError, match="fifo"):
            import_paths([root], on_added=added.append, jobs=2)
        seen[batched] = added
    assert seen[True] == seen[False] and len(seen[True]) == 30


def _shrink_f5_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The file named ``f5`` is truncated to 100 bytes as it is read (the read then comes up short)."""
    real = _fileread.pread_exact

    def shrinking(fd: int, view: memoryview, offset: int, size: int, name: str) -> None:
        if name.endswith("f5"):
            os.truncate(name, 100)
        real(fd, view, offset, size, name)

    monkeypatch.setattr(_fileread, "pread_exact", shrinking)


def test_file_changed_while_read_in_a_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that shrinks under the batched read is FileChangedError, after the files before it."""
    root = tmp_path / "t"
    root.mkdir()
    for i in range(10):
        (root / f"f{i}").write_bytes(os.urandom(2000))
    _shrink_f5_when_read(monkeypatch)
    added: list[AddedEntry] = []
    with pytest.raises(FileChangedError):
        import_paths([root], on_added=added.append)
    assert [e.name.rsplit("/", 1)[1] for e in added] == [f"f{i}" for i in range(5)]


def test_cache_records_are_the_same(tmp_path: Path) -> None:
    """The batched path records each file in the cache as add_file does; a re-import hits them all."""
    root = tmp_path / "t"
    _make_tree(root, 7, 80, 5000)
    want = _run(root, ImportParams(), 1, NullSink())
    clock_ns = [0]

    def clock() -> int:  # far after every stamp: nothing is racy
        clock_ns[0] += 1
        return 4 * 10**18 + clock_ns[0]

    with ImportCache(tmp_path / "c.db", clock=clock) as cache:
        cold = import_paths([root], cache=cache, jobs=2)
        assert cache.stats.recorded > 0 and cache.stats.hits == 0
        recorded = cache.stats.recorded
    with ImportCache(tmp_path / "c.db", clock=clock) as cache:
        added: list[AddedEntry] = []
        warm = import_paths([root], cache=cache, on_added=added.append, jobs=2)
        assert cache.stats.hits == recorded and cache.stats.misses == 0
    assert str(cold.cid) == str(warm.cid) == want[0] and added == want[1]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_cli_car_bytes_do_not_depend_on_batching(tmp_path: Path, jobs: str, capsys: pytest.CaptureFixture[str]
                                                 ) -> None:
    root = tmp_path / "t"
    _make_tree(root, 3, 120, 400_000)
    with _unbatched():
        assert cli.main(["add", "-r", "-Q", "--no-resume", "--car", str(tmp_path / "a.car"), str(root)]) == 0
    assert cli.main(["add", "-r", "-Q", "--jobs", jobs, "--car", str(tmp_path / "b.car"), str(root)]) == 0
    out = capsys.readouterr().out.split()
    assert out[0] == out[1]
    assert (tmp_path / "a.car").read_bytes() == (tmp_path / "b.car").read_bytes()


def test_quiet_output_encodes_only_the_last_cid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "t"
    _make_tree(root, 5, 30, 3000)
    assert cli.main(["add", "-r", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert cli.main(["add", "-r", "-Q", str(root)]) == 0
    assert capsys.readouterr().out.split() == [lines[-1].split()[1]]
    assert cli.main(["add", "-r", "-q", str(root)]) == 0
    assert capsys.readouterr().out.split() == [line.split()[1] for line in lines]


class _ReplayingJournal:
    """A journal that is still replaying (files are not read ahead) and skips nothing."""

    live = False

    def __init__(self) -> None:
        self.order: list[bytes] = []

    def lookup(self, path: bytes, st: os.stat_result) -> None:
        self.order.append(path)

    def record(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("journal", [False, True])
def test_events_waiting_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, journal: bool) -> None:
    """At most MAX_QUEUED events wait (plus the one being added), with or without a replaying journal."""
    root = tmp_path / "t"
    root.mkdir()
    for i in range(300):
        (root / f"f{i:03d}").write_bytes(os.urandom(i % 50))
    most = [0]
    real_poll = schedule_module.Scheduler.poll

    def poll(self: schedule_module.Scheduler) -> None:
        most[0] = max(most[0], len(self.queue))
        real_poll(self)

    monkeypatch.setattr(schedule_module.Scheduler, "poll", poll)
    j = _ReplayingJournal() if journal else None
    with _small_batches(1000, 1 << 30, 1 << 30, 16):
        got = import_paths([root], jobs=1, journal=j)  # type: ignore[arg-type]
    assert most[0] <= 17
    assert str(got.cid) == str(import_paths([root]).cid)
    if j is not None:
        assert j.order == sorted(j.order) and len(j.order) == 300


def test_the_walking_threads_buffer_does_not_outlive_the_import(tmp_path: Path) -> None:
    """Review: the walking thread's batch read buffer (up to 8 MiB) stayed in a thread-local after
    import_paths returned."""
    from pyipld.unixfs.tree import batches

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x" * 3_000_000)
    import_paths([tmp_path / "d"], ImportParams(), NullSink(), jobs=1)
    assert getattr(batches._local, "state", None) is None


@pytest.mark.parametrize("params", [ImportParams(), ImportParams(cid_version=1), ImportParams(chunker="size-16384")])
def test_one_leaf_files_hashed_in_pairs_equal_one_at_a_time(tmp_path: Path, params: ImportParams,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Only-hash one-leaf files of ≥ 8 KiB wait for a partner in the batch and are hashed together;
    files in between (tiny, multi-chunk) go on at once; the output is the one-file-at-a-time output."""
    root = tmp_path / "t"
    root.mkdir()
    sizes = [8192, 100, 20_000, 0, 9000, 300_000, 8191, 50_000, 70_000, 16_384, 16_385, 12_000, 1]
    rnd = random.Random(7)
    for i, size in enumerate(sizes):
        (root / f"f{i:02d}").write_bytes(rnd.randbytes(size))
    pairs: list[int] = []
    real = LeafMaker.leaves

    def spy(self: LeafMaker, chunks: Sequence[bytes], keep: bool = True) -> list[tuple[bytes, bytes | None, int]]:
        pairs.append(len(chunks))
        return real(self, chunks, keep)

    monkeypatch.setattr(LeafMaker, "leaves", spy)
    with _unbatched():
        want = _run(root, params, 1, NullSink())
    for jobs in (1, 2):
        with _small_batches(64, 1 << 20, 1 << 30, 4096):
            pairs.clear()
            assert _run(root, params, jobs, NullSink()) == want
            assert 2 in pairs  # files were paired


def test_file_changed_while_its_partner_waits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file read while an earlier one waits for a partner shrinks: the waiting file's entry
    still comes out, then FileChangedError."""
    root = tmp_path / "t"
    root.mkdir()
    for i in range(10):
        (root / f"f{i}").write_bytes(os.urandom(10_000))
    _shrink_f5_when_read(monkeypatch)
    added: list[AddedEntry] = []
    with _small_batches(64, 1 << 20, 1 << 30, 4096), pytest.raises(FileChangedError):
        import_paths([root], on_added=added.append, jobs=1)
    assert [e.name.rsplit("/", 1)[1] for e in added] == [f"f{i}" for i in range(5)]
    for entry in added:  # each the CID of its file alone (the waiting one hashed with no partner)
        assert entry.cid == import_paths([root / entry.name.rsplit("/", 1)[1]]).cid
