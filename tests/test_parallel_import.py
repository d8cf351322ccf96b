"""Parallel import building blocks (pyipld/unixfs/parallel.py), executor-agnostic.

Split imports must equal the single-process importer for every chunker, layout, CID
version, hash, raw-leaves setting and profile; the candidate replay must give the chunker's
own cut list. Tasks run on a thread pool here (tests/test_distributed.py runs them on Dask).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld.chunker import parse_chunker
from pyipld.cid import CID
from pyipld.unixfs.importer import import_file
from pyipld.unixfs.parallel import (
    ParallelImporter,
    plan_leaves,
    replay_cuts,
    runs_from_candidates,
    scan_candidates,
)
from pyipld.unixfs.params import UNIXFS_V0_2015, UNIXFS_V1_2025, ImportParams
from tests._recipes import kubo022_param_kwargs, load_vectors, recipe_size, vector_input_bytes

np = pytest.importorskip("numpy")

POOL = ThreadPoolExecutor(2, thread_name_prefix="test-parallel")


class CountingExecutor:
    """The thread pool, counting which task functions (and span shapes) were submitted."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        name = fn.__name__ + (":" + args[2][0] if fn.__name__ == "hash_span" else "")
        self.calls[name] += 1
        return POOL.submit(fn, *args)



def _span_chunks(path: bytes, span: Any) -> Iterator[bytes | memoryview]:
    """The chunks of ``span`` one at a time, each valid until the next (``_span_groups`` flattened)."""
    import pyipld.unixfs.parallel as par

    for group in par._span_groups(path, span):
        yield from group


def _mixed(size_random: int, zeros: int, periodic: int, tail: int, seed: int = 0) -> bytes:
    import random

    rnd = random.Random(seed)
    return (rnd.randbytes(size_random) + b"\0" * zeros + bytes(range(251)) * (periodic // 251)
            + rnd.randbytes(tail))


def _parallel(path: Path, params: ImportParams, task_bytes: int, ex: Any = None) -> tuple[bytes, int, int]:
    runner = ParallelImporter(ex or POOL, params, task_bytes=task_bytes)
    raw = os.fsencode(path)
    link = runner.run([(raw, os.lstat(raw))])[raw][1]
    return link.cid, link.tsize, link.data_size


def _single(path: Path, params: ImportParams) -> tuple[bytes, int, int]:
    res = import_file(path, params, jobs=1)
    return res.cid.bytes, res.tsize, res.size


@pytest.fixture(scope="module")
def mixed_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("par") / "mixed"
    path.write_bytes(_mixed(1_500_000, 700_000, 400_000, 300_000))
    return path


PARAMS = [
    pytest.param(ImportParams(chunker="size-4096", max_links=3), id="v0-size4096-links3"),
    pytest.param(ImportParams(chunker="size-4096", max_links=3, cid_version=1), id="v1-raw"),
    pytest.param(ImportParams(chunker="size-4096", max_links=4, cid_version=1, raw_leaves=False), id="v1-noraw"),
    pytest.param(ImportParams(chunker="size-5000", max_links=5, hash="blake2b-256"), id="blake2b"),
    pytest.param(ImportParams(chunker="size-4096", max_links=3, hash="sha3-512", inline=True), id="sha3-inline"),
    pytest.param(ImportParams(chunker="size-4096", max_links=3, layout="trickle"), id="trickle-v0"),
    pytest.param(ImportParams(chunker="size-3000", max_links=2, layout="trickle", cid_version=1), id="trickle-v1"),
    pytest.param(ImportParams(chunker="size-4096", max_links=3, preserve_mtime=True, mode=0o640), id="metadata"),
    pytest.param(ImportParams(chunker="size-4096", max_links=3, layout="trickle", mtime=(5, 7)), id="trickle-meta"),
    pytest.param(ImportParams(chunker="buzhash", max_links=3), id="buzhash"),
    pytest.param(ImportParams(chunker="buzhash", max_links=2, layout="trickle", cid_version=1), id="buzhash-trickle"),
    pytest.param(ImportParams(chunker="rabin", max_links=3, cid_version=1), id="rabin"),
    pytest.param(ImportParams(chunker="rabin-16-64-4096", max_links=7), id="rabin-small"),
    pytest.param(ImportParams(chunker="rabin-2048", max_links=3, layout="trickle"), id="rabin-trickle"),
    pytest.param(ImportParams.from_profile("unixfs-v0-2015", max_links=3), id="profile-v0"),
    pytest.param(ImportParams.from_profile("unixfs-v1-2025", chunker="size-8192", max_links=4), id="profile-v1"),
]


@pytest.mark.parametrize("params", PARAMS)
def test_split_file_equals_single_process(mixed_file: Path, params: ImportParams) -> None:
    ex = CountingExecutor()
    assert _parallel(mixed_file, params, 150_000, ex) == _single(mixed_file, params)
    assert sum(n for k, n in ex.calls.items() if k.startswith("hash_span")) >= 2, ex.calls  # really split
    assert "hash_files" not in ex.calls, ex.calls


def test_profiles_unchanged_at_real_width(tmp_path: Path) -> None:
    """kubo's real widths (174, 1024): a file of a few level-1 nodes, split per node."""
    path = tmp_path / "f"
    path.write_bytes(_mixed(200 * 4096, 0, 0, 1234, seed=3))
    for base in (UNIXFS_V0_2015, UNIXFS_V1_2025):
        params = ImportParams.from_profile("unixfs-v0-2015" if base is UNIXFS_V0_2015 else "unixfs-v1-2025",
                                           chunker="size-1024")
        assert _parallel(path, params, 1 << 16) == _single(path, params)


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096, 9 * 4096, 9 * 4096 + 1, 27 * 4096 + 5])
@pytest.mark.parametrize("layout", ["balanced", "trickle"])
def test_leaf_count_edges(tmp_path: Path, size: int, layout: Any) -> None:
    """Full and just-over-full subtrees, a lone trailing leaf (wrapped k times), tiny files."""
    path = tmp_path / "f"
    path.write_bytes(_mixed(size, 0, 0, 0, seed=size))
    params = ImportParams(chunker="size-4096", max_links=3, layout=layout)
    assert _parallel(path, params, 4096) == _single(path, params)


def test_plan_shapes() -> None:
    resolved = ImportParams(chunker="size-10", max_links=3).resolve()
    assert plan_leaves(3, 10, resolved, 30) is None  # fits one task: a whole-file import
    assert plan_leaves(9, 10, resolved, 90) is None
    # Level-1 nodes (30 bytes) are the largest that fit 40 bytes: one per task.
    assert plan_leaves(10, 10, resolved, 40) == [(0, 3, ("balanced", 1)), (3, 6, ("balanced", 1)),
                                                 (6, 9, ("balanced", 1)), (9, 10, ("balanced", 1))]
    assert plan_leaves(10, 10, resolved, 90) == [(0, 9, ("balanced", 2)), (9, 10, ("balanced", 2))]
    # Leaves (k = 0) when a level-1 node is larger than a task; several level-1 nodes per task.
    assert plan_leaves(10, 10, resolved, 25) == [(0, 2, ("balanced", 0)), (2, 4, ("balanced", 0)),
                                                 (4, 6, ("balanced", 0)), (6, 8, ("balanced", 0)),
                                                 (8, 10, ("balanced", 0))]
    assert plan_leaves(20, 10, resolved, 60) == [(0, 6, ("balanced", 1)), (6, 12, ("balanced", 1)),
                                                 (12, 18, ("balanced", 1)), (18, 20, ("balanced", 1))]
    trickle = ImportParams(chunker="size-10", max_links=3, layout="trickle").resolve()
    plan = plan_leaves(40, 10, trickle, 200)
    assert plan == [(0, 3, ("leaves", 0)), (3, 6, ("trickle", 1)), (6, 9, ("trickle", 1)),
                    (9, 12, ("trickle", 1)), (12, 15, ("trickle", 1)), (15, 30, ("trickle", 2)),
                    (30, 40, ("trickle", 2))]
    # Subtrees larger than a task are planned as nodes over their own children (prefix order).
    plan = plan_leaves(40, 10, trickle, 100)
    assert plan == [(0, 3, ("leaves", 0)), (3, 6, ("trickle", 1)), (6, 9, ("trickle", 1)),
                    (9, 12, ("trickle", 1)), (12, 15, ("trickle", 1)),
                    (15, 30, ("node", 5)), (15, 18, ("leaves", 0)), (18, 21, ("trickle", 1)),
                    (21, 24, ("trickle", 1)), (24, 27, ("trickle", 1)), (27, 30, ("trickle", 1)),
                    (30, 40, ("trickle", 2))]


def test_runs_encoding() -> None:
    cand = np.array([5, 10, 15, 20, 21, 22, 100], dtype=np.int64)
    runs = runs_from_candidates(np, cand)
    got = sorted({a + s * i for a, s, c in runs for i in range(c)})
    assert got == cand.tolist()
    assert runs_from_candidates(np, np.array([7], dtype=np.int64)) == [(7, 1, 1)]
    assert runs_from_candidates(np, np.array([], dtype=np.int64)) == []


def _cuts_by_chunker(data: bytes, spec: str) -> list[int]:
    return list(accumulate(len(c) for c in parse_chunker(spec).split([data])))


def _cuts_by_replay(path: Path, size: int, spec: str, splits: list[int]) -> list[int] | None:
    bounds = sorted({0, size, *[s for s in splits if 0 < s < size]})
    ranges = []
    for a, b in pairwise(bounds):
        runs = scan_candidates(os.fsencode(path), a, b, spec, 1 << 30)
        assert runs is not None
        ranges.append((b, runs))
    return list(replay_cuts(size, ranges, spec))


@pytest.mark.parametrize("spec", ["buzhash", "rabin", "rabin-16-64-4096", "rabin-1000-2000-5000"])
def test_replay_equals_python_chunker(tmp_path: Path, spec: str) -> None:
    """Against the plain-Python rolling loops (independent of the numpy candidate search)."""
    from pyipld.chunker.buzhash import Buzhash
    from pyipld.chunker.rabin import Rabin

    data = _mixed(400_000, 150_000, 60_000, 100_000, seed=5)
    path = tmp_path / "f"
    path.write_bytes(data)
    parsed = parse_chunker(spec)
    ref = Buzhash(backend="python") if isinstance(parsed, Buzhash) else Rabin(
        parsed.min_size, parsed.avg_size, parsed.max_size, backend="python")  # type: ignore[attr-defined]
    want = list(accumulate(len(c) for c in ref.split([data])))
    assert _cuts_by_replay(path, len(data), spec, [33, 250_000, 400_017, 600_000]) == want


@pytest.mark.parametrize("spec", ["buzhash", "rabin", "rabin-16-64-4096", "rabin-1000-2000-5000"])
def test_replay_equals_chunker(tmp_path: Path, mixed_file: Path, spec: str) -> None:
    data = mixed_file.read_bytes()
    assert _cuts_by_replay(mixed_file, len(data), spec, [1, 31, 100_000, 1_000_003, 2_900_000]) == \
        _cuts_by_chunker(data, spec)


@settings(max_examples=40)
@given(
    parts=st.lists(st.tuples(st.sampled_from(["rand", "zero", "ab", "period"]), st.integers(0, 400_000)),
                   min_size=1, max_size=4),
    spec=st.sampled_from(["buzhash", "rabin", "rabin-16-64-4096", "rabin-64-256-2048", "rabin-20000"]),
    splits=st.lists(st.integers(0, 1_700_000), max_size=5),
    seed=st.integers(0, 2**32),
)
def test_replay_equals_chunker_random(tmp_path_factory: pytest.TempPathFactory, parts: list[tuple[str, int]],
                                      spec: str, splits: list[int], seed: int) -> None:
    import random

    rnd = random.Random(seed)
    data = b"".join(rnd.randbytes(n) if kind == "rand" else b"\0" * n if kind == "zero" else b"\xab" * n
                    if kind == "ab" else (rnd.randbytes(rnd.randint(1, 300)) * (n // 300 + 1))[:n]
                    for kind, n in parts)
    path = tmp_path_factory.mktemp("h") / "f"
    path.write_bytes(data)
    assert _cuts_by_replay(path, len(data), spec, splits) == _cuts_by_chunker(data, spec)


@given(
    size=st.integers(0, 300_000),
    chunk=st.integers(500, 20_000),
    width=st.integers(2, 9),
    layout=st.sampled_from(["balanced", "trickle"]),
    cid_version=st.sampled_from([0, 1]),
    task_bytes=st.integers(1, 200_000),
    seed=st.integers(0, 2**32),
)
def test_split_fixed_random(tmp_path_factory: pytest.TempPathFactory, size: int, chunk: int, width: int,
                            layout: Any, cid_version: int, task_bytes: int, seed: int) -> None:
    import random

    path = tmp_path_factory.mktemp("h") / "f"
    path.write_bytes(random.Random(seed).randbytes(size))
    params = ImportParams(chunker=f"size-{chunk}", max_links=width, layout=layout, cid_version=cid_version)
    assert _parallel(path, params, task_bytes) == _single(path, params)


def test_dense_candidates_fall_back_to_one_task(tmp_path: Path) -> None:
    """Candidate runs over the cap: the file becomes one sequential task, same root."""
    path = tmp_path / "f"
    import random

    path.write_bytes(random.Random(9).randbytes(600_000))
    params = ImportParams(chunker="rabin-16-32-4096", max_links=2)
    assert scan_candidates(os.fsencode(path), 0, 600_000, "rabin-16-32-4096", 10) is None
    ex = CountingExecutor()
    runner = ParallelImporter(ex, params, task_bytes=600_000 // 4)
    import pyipld.unixfs.parallel as par

    orig = par.scan_candidates

    def capped(p: bytes, a: int, b: int, spec: str, max_runs: int) -> Any:
        return orig(p, a, b, spec, 10)

    par.scan_candidates = capped  # type: ignore[assignment]
    try:
        raw = os.fsencode(path)
        link = runner.run([(raw, os.lstat(raw))])[raw][1]
    finally:
        par.scan_candidates = orig  # type: ignore[assignment]
    assert ex.calls["hash_files"] == 1 and not any(k.startswith("hash_span") for k in ex.calls)
    assert (link.cid, link.tsize, link.data_size) == _single(path, params)


def _kubo_split_cases() -> list[Any]:
    out = []
    for name in ("files", "params"):
        for v in load_vectors(name)["vectors"]:
            p = v["params"]
            chunker = p.get("chunker", "size-262144")
            if "error" in v or v.get("slow") or "gen" not in v["input"] or not chunker.startswith("size-"):
                continue
            if -(-recipe_size(v["input"]) // int(chunker[5:])) > p.get("max_links", 174):
                out.append(pytest.param(v, id=v["name"]))
    return out


@pytest.mark.parametrize("vector", _kubo_split_cases())
def test_kubo_vectors_split(tmp_path: Path, vector: dict[str, Any]) -> None:
    """kubo 0.22 vectors with more leaves than one node holds, split into one task per node."""
    params = ImportParams(**kubo022_param_kwargs(vector["params"]))
    path = tmp_path / "f"
    path.write_bytes(vector_input_bytes(vector))
    ex = CountingExecutor()
    width = vector["params"].get("max_links", 174)
    chunk = int(vector["params"].get("chunker", "size-262144")[5:])
    task = chunk if params.layout == "trickle" else width * chunk  # one level-1 node (or trickle subtree) per task
    cid, _, _ = _parallel(path, params, task, ex)
    assert str(CID.from_bytes(cid)) == vector["cid"]
    assert sum(n for k, n in ex.calls.items() if k.startswith("hash_span")) >= 2, ex.calls


@settings(max_examples=30)
@given(
    parts=st.lists(st.tuples(st.sampled_from(["rand", "zero", "period"]), st.integers(0, 300_000)),
                   min_size=1, max_size=3),
    spec=st.sampled_from(["buzhash", "rabin", "rabin-16-64-4096", "rabin-512-2048-8192"]),
    width=st.integers(2, 6),
    layout=st.sampled_from(["balanced", "trickle"]),
    raw=st.booleans(),
    task_bytes=st.integers(20_000, 400_000),
    seed=st.integers(0, 2**32),
)
def test_split_cdc_random(tmp_path_factory: pytest.TempPathFactory, parts: list[tuple[str, int]], spec: str,
                          width: int, layout: Any, raw: bool, task_bytes: int, seed: int) -> None:
    """Content-defined chunkers: random data shapes, widths and task sizes (= scan split points)."""
    import random

    rnd = random.Random(seed)
    data = b"".join(rnd.randbytes(n) if kind == "rand" else b"\0" * n if kind == "zero"
                    else (rnd.randbytes(rnd.randint(1, 300)) * (n // 300 + 1))[:n] for kind, n in parts)
    path = tmp_path_factory.mktemp("h") / "f"
    path.write_bytes(data)
    params = ImportParams(chunker=spec, max_links=width, layout=layout, cid_version=1, raw_leaves=raw)
    assert _parallel(path, params, task_bytes) == _single(path, params)


def test_cdc_leaves_fitting_one_task(tmp_path: Path) -> None:
    """Streamed balanced planning: leaves that all fit the first task go out as one k = 0 task
    (the coordinator builds the root, metadata included) — also when k > 0 was planned."""
    import random

    spec = "rabin-16384-32768-65536"
    for seed in range(50):  # a repeated pattern without any candidate: every chunk is MAX long
        pattern = random.Random(seed).randbytes(300)
        data = (pattern * (1_000_000 // 300 + 1))[:1_000_000]
        path = tmp_path / "f"
        path.write_bytes(data)
        if scan_candidates(os.fsencode(path), 0, len(data), spec, 1 << 20) == []:
            break
    else:  # pragma: no cover - 50 patterns all with candidates
        pytest.skip("no candidate-free pattern found")
    # 16 leaves of 64 KiB; planned per task: width 20 -> 18 leaves (k = 0), width 4 -> 16 (k = 2).
    for params in (ImportParams(chunker=spec, max_links=20), ImportParams(chunker=spec, max_links=4, mtime=(9, 9))):
        ex = CountingExecutor()
        assert _parallel(path, params, 900_000, ex) == _single(path, params)
        assert ex.calls["hash_span:balanced"] == 1 and "hash_files" not in ex.calls, ex.calls
    # Two tasks when the leaves overflow the first one.
    ex = CountingExecutor()
    assert _parallel(path, ImportParams(chunker=spec, max_links=3), 200_000, ex) == \
        _single(path, ImportParams(chunker=spec, max_links=3))
    assert ex.calls["hash_span:balanced"] >= 2, ex.calls


# -- worker read path: reused buffer, pieces, batched submission ----------------------------------

@settings(max_examples=40, deadline=None)
@given(size=st.integers(0, 300_000), chunk=st.integers(1, 70_000), start_leaf=st.integers(0, 5),
       read=st.sampled_from([1, 4096, 65_536, 1 << 20]))
def test_span_chunks_fixed_equal_file_bytes(tmp_path_factory: Any, size: int, chunk: int, start_leaf: int,
                                            read: int) -> None:
    """Chunks read into the reused per-thread buffer are the file's bytes, for any read size
    (a chunk larger than the buffer included); each is copied before the next is taken."""
    import pyipld.unixfs.parallel as par

    data = os.urandom(size)
    path = tmp_path_factory.mktemp("span") / "f"
    path.write_bytes(data)
    start = min(size, start_leaf * chunk)
    span = par.Span(start, size, chunk=chunk)
    orig = par.SPAN_READ_BYTES
    par.SPAN_READ_BYTES = read
    try:
        got = [bytes(c) for c in _span_chunks(os.fsencode(path), span)]
        again = [bytes(c) for c in _span_chunks(os.fsencode(path), span)]  # the buffer is reused
    finally:
        par.SPAN_READ_BYTES = orig
    assert got == again == [data[a:b] for a, b in span.bounds()]


def test_span_chunks_cuts_and_shrink(tmp_path: Path) -> None:
    """Explicit cuts (one chunk over the read size) give the file's bytes; a file shorter than
    the span is a FileChangedError, not a short DAG."""
    import array

    import pyipld.unixfs.parallel as par
    from pyipld.errors import FileChangedError

    data = os.urandom((par.SPAN_READ_BYTES * 2) + 12_345)
    path = tmp_path / "f"
    path.write_bytes(data)
    cuts = [100, 5000, 5000 + par.SPAN_READ_BYTES + 7, len(data)]
    span = par.Span(10, len(data), cuts=array.array("q", cuts).tobytes())
    assert [bytes(c) for c in _span_chunks(os.fsencode(path), span)] == [data[a:b] for a, b in span.bounds()]
    with open(path, "r+b") as f:
        f.truncate(len(data) - 1)
    with pytest.raises(FileChangedError):
        list(_span_chunks(os.fsencode(path), span))
    with pytest.raises(FileChangedError):  # shrinks after the size check: a short read
        gen = _span_chunks(os.fsencode(path), par.Span(0, len(data) - 1, chunk=1 << 16))
        next(gen)
        with open(path, "r+b") as f:
            f.truncate(1000)
        list(gen)


@pytest.mark.parametrize("spec", ["buzhash", "rabin-16-64-4096"])
def test_scan_in_pieces_equals_one_read(tmp_path: Path, spec: str) -> None:
    """Scanning a range in small pieces (each with its window) finds the same candidates."""
    import pyipld.unixfs.parallel as par

    data = _mixed(300_000, 40_000, 30_000, 50_000, seed=3)
    path = tmp_path / "f"
    path.write_bytes(data)
    whole = scan_candidates(os.fsencode(path), 1000, len(data), spec, 1 << 30)
    orig = par.SCAN_READ_BYTES
    par.SCAN_READ_BYTES = 4099
    try:
        pieces = scan_candidates(os.fsencode(path), 1000, len(data), spec, 1 << 30)
    finally:
        par.SCAN_READ_BYTES = orig

    def ends(runs: Any) -> set[int]:
        return {a + s * i for a, s, c in runs for i in range(c)}

    assert whole is not None and pieces is not None and ends(whole) == ends(pieces)


class ManyExecutor(CountingExecutor):
    """The pool with ``submit_many`` (as the Dask glue has): counts batched submissions."""

    def submit_many(self, fn: Any, calls: list[tuple[Any, ...]]) -> list[Future[Any]]:
        self.calls["many:" + fn.__name__] += 1
        return [self.submit(fn, *args) for args in calls]


@pytest.mark.parametrize("kw", [{"chunker": "size-4096"}, {"chunker": "size-4096", "layout": "trickle"},
                                {"chunker": "buzhash", "cid_version": 1}])
def test_submit_many_same_root(tmp_path: Path, kw: dict[str, Any]) -> None:
    """A file's span tasks (and scans) submitted at once give the single-process root."""
    path = tmp_path / "f"
    path.write_bytes(_mixed(900_000, 100_000, 50_000, 30_000, seed=4))
    params = ImportParams(max_links=4, **kw)
    ex = ManyExecutor()
    assert _parallel(path, params, 100_000, ex) == _single(path, params)
    assert any(k.startswith("many:") for k in ex.calls), ex.calls


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(0, 200_000), min_size=1, max_size=4),
       params=st.sampled_from([ImportParams(chunker="size-4096"), ImportParams(chunker="size-65536", raw_leaves=True,
                                                                                 cid_version=1),
                               ImportParams(chunker="size-5000", layout="trickle", max_links=3),
                               ImportParams(chunker="size-4096", mtime=(5, 7)), ImportParams(chunker="buzhash")]))
def test_hash_files_equals_import_file(tmp_path_factory: Any, sizes: list[int], params: ImportParams) -> None:
    """Whole-file tasks (reused read buffer for size-N without metadata) give import_file's roots."""
    from pyipld.unixfs.parallel import hash_files

    d = tmp_path_factory.mktemp("hf")
    paths = []
    for i, size in enumerate(sizes):
        (d / str(i)).write_bytes(os.urandom(size))
        paths.append(os.fsencode(d / str(i)))
    got = hash_files([*paths, os.fsencode(d / "missing"), os.fsencode(d)], params)
    want = [import_file(os.fsdecode(p), params, jobs=1) for p in paths]
    assert [(g.cid, g.tsize, g.data_size) for g in got[:-2] if g] == [(w.cid.bytes, w.tsize, w.size) for w in want]
    assert got[-2:] == [None, None]


@pytest.mark.parametrize("raw", [True, False])
def test_mapped_span_leaves_equal_read_ones_and_catch_a_shrink(tmp_path: Path, raw: bool,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Dask span tasks hash only-hash leaves from guarded mappings: the leaves of the read path, one
    chunk over the group size included; a file that shrinks between groups is FileChangedError."""
    import array

    import pyipld.unixfs.parallel as par

    monkeypatch.setattr(par, "MAPPED_GROUP_BYTES", par.SPAN_READ_BYTES)  # several groups per span
    from pyipld._sha256x2 import mapped_hashing_available
    from pyipld.errors import FileChangedError
    from pyipld.unixfs.importer import leaf_maker

    if not mapped_hashing_available():
        pytest.skip("no SHA-NI kernel here")
    data = os.urandom((par.SPAN_READ_BYTES * 3) + 12_345)
    path = tmp_path / "f"
    path.write_bytes(data)
    leaves = leaf_maker(ImportParams(cid_version=1, raw_leaves=raw).resolve())
    cuts = [100, 5000, 5000 + par.SPAN_READ_BYTES + 7, len(data)]
    for span in (par.Span(10, len(data), cuts=array.array("q", cuts).tobytes()),
                 par.Span(4096 * 3, len(data), chunk=262_144)):
        want = [leaves.leaf(data[a:b], False) for a, b in span.bounds()]
        assert list(par._mapped_span_leaves(os.fsencode(path), span, leaves)) == want
    gen = par._mapped_span_leaves(os.fsencode(path), par.Span(0, len(data), chunk=1 << 16), leaves)
    next(gen)
    with open(path, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(FileChangedError):
        list(gen)


def test_mapped_span_reads_the_rest_once_a_group_cannot_be_mapped(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: after a group failed to map, every later group tried mmap again and the failed
    ones were read into a fresh buffer each; now the rest of the span is read, with the same leaves."""
    import pyipld.unixfs.parallel as par
    from pyipld._sha256x2 import mapped_hashing_available
    from pyipld.unixfs.importer import leaf_maker

    if not mapped_hashing_available():
        pytest.skip("no SHA-NI kernel here")
    monkeypatch.setattr(par, "MAPPED_GROUP_BYTES", par.SPAN_READ_BYTES)
    data = os.urandom(par.SPAN_READ_BYTES * 4 + 999)
    path = tmp_path / "f"
    path.write_bytes(data)
    leaves = leaf_maker(ImportParams(cid_version=1).resolve())
    span = par.Span(0, len(data), chunk=262_144)
    calls: list[int] = []
    real = par.hash_mapped

    def fails_after_one(fd: int, group: Any, *rest: Any) -> Any:
        calls.append(group[0][0])
        if len(calls) > 1:
            raise OSError(19, "No such device")  # what mmap says on a file system that cannot map
        return real(fd, group, *rest)

    monkeypatch.setattr(par, "hash_mapped", fails_after_one)
    got = list(par._mapped_span_leaves(os.fsencode(path), span, leaves))
    assert got == [leaves.leaf(data[a:b], False) for a, b in span.bounds()]
    assert len(calls) == 2
