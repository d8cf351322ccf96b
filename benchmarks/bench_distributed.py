"""Distributed and incremental import: Dask speed, cache re-import ratio, coordinator memory.

Cases (one JSON line each, STYLE.md §9):

* ``cache_reimport``: ``add -r --only-hash`` of an unchanged tree of N small files with a warm
  :class:`ImportCache` ÷ the cold import of the same tree (interleaved); goal ≤ 0.05. Both run
  with the default ``jobs`` (the cores, as the CLI does): the cached run reads directories ahead
  on that many threads; the cold run of tiny files is no faster with more (measured 2.6–2.9 s
  either way for 100,000 files).
  ``cache_reimport_1MiB_files``: the same with 1 MiB files (hashing dominates the cold run).
* ``dask_tree`` / ``dask_file``: a tree of a few large files / one large file imported on a
  two-worker in-process ``LocalCluster`` (one thread each); ``ratio`` = seconds ÷ one-thread
  ``hashlib.sha256`` over the same bytes (``vs_one_thread_sha256`` = its inverse, goal ≥ 1.6 on
  two free cores); ``vs_threaded`` = Dask seconds ÷ the single-process importer with ``jobs=2``
  (goal ≤ 1.15).
* ``dask_car_pack``: ``car pack`` of a tree (8 files) into pieces on the same two-worker
  cluster (imports, piece CARs and their CommP on the workers); ``ratio`` = seconds ÷ one-thread
  ``hashlib.sha256`` over the input; ``vs_single_process`` = ÷ :func:`pyipld.filecoin.pack.pack`
  with ``jobs=2`` in the same rotation (both write every byte twice: spool and CAR);
  ``sha256_2threads_x`` = the two-thread hashlib control (how much two cores give right now);
  ``same_output`` compares the manifests. ``dask_car_pack_one_file``: the same bytes as one
  file (imported in span tasks by the Dask packer, by one importer with ``jobs=2`` by the other).
* ``coordinator_memory``: the coordinator's side of a simulated 1 TiB file (size-262144 v0,
  unixfs-v1-2025, buzhash): workers' results are synthesized from the task arguments (no data
  read), so this is the planning + assembly (+ candidate replay) cost alone: tracemalloc peak.

Run: ``python -m benchmarks.bench_distributed [--files N] [--size-mib M] [--pack-mib M] [--sim-gib G] [--smoke]``.
"""

from __future__ import annotations

import gc
import hashlib
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    MiB,
    Timing,
    bench_parser,
    emit,
    self_peak_rss_mib,
    sha256_files,
    time_interleaved,
    traced_peak_mib,
)
from pyipld.blockstore import NullSink
from pyipld.unixfs.cache import ImportCache
from pyipld.unixfs.nodes import FileLink
from pyipld.unixfs.parallel import DEFAULT_TASK_BYTES, ParallelImporter, hash_span, scan_candidates
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.tree import import_paths


def make_small_tree(root: Path, files: int, per_dir: int = 1000) -> int:
    total = 0
    for i in range(files):
        d = root / f"d{i // per_dir:05d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        data = (f"file {i} " * (2 + i % 13)).encode()
        (d / f"f{i:07d}.txt").write_bytes(data)
        total += len(data)
    return total


def make_sized_tree(root: Path, files: int, size: int) -> int:
    rnd = random.Random(2)
    for i in range(files):
        d = root / f"d{i // 100:04d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:06d}").write_bytes(rnd.randbytes(size))
    return files * size


def bench_cache(tmp: Path, case: str, files: int, repeat: int, size: int = 0) -> None:
    root = tmp / case
    nbytes = make_sized_tree(root, files, size) if size else make_small_tree(root, files)
    time.sleep(2.1)  # let every ctime leave the default racy window before the cache records
    db = tmp / f"{case}.db"
    params = ImportParams()
    with ImportCache(db) as cache:
        first = import_paths([root], params, NullSink(), cache=cache)
    results: list[Any] = []

    def cached() -> None:
        with ImportCache(db) as c:
            results.append((import_paths([root], params, NullSink(), cache=c).cid, c.stats.hits))

    timing = time_interleaved(cached, lambda: import_paths([root], params, NullSink()), repeat=repeat)
    cid, hits = results[-1]
    emit(case, nbytes, timing, files=files, file_bytes=size or "20-120", hits=hits, same_cid=cid == first.cid,
         goal="<= 0.05")


def sha256_readinto(paths: list[Path]) -> None:
    """The one-thread baseline: ``hashlib.sha256`` of each file in 1 MiB ``readinto``s into one
    buffer (the cheapest read; ``_harness.sha256_files`` allocates a fresh 1 MiB per read)."""
    buf = bytearray(MiB)
    view = memoryview(buf)
    for p in paths:
        h = hashlib.sha256()
        with open(p, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                h.update(view[:n])
        h.digest()


def sha256_ranges_threads(paths: list[Path], threads: int = 2) -> None:
    """The two-core control: the same bytes hashed by ``threads`` threads, each its own half
    (by bytes, so one large file is split too), 1 MiB ``preadv``s into a reused buffer."""
    sizes = [p.stat().st_size for p in paths]
    share = -(-sum(sizes) // threads)
    parts: list[list[tuple[Path, int, int]]] = [[] for _ in range(threads)]
    t, room = 0, share
    for p, size in zip(paths, sizes, strict=True):
        a = 0
        while a < size:
            n = min(size - a, room)
            parts[t].append((p, a, a + n))
            a += n
            room -= n
            if room == 0 and t + 1 < threads:
                t, room = t + 1, share

    def work(ranges: list[tuple[Path, int, int]]) -> None:
        buf = memoryview(bytearray(MiB))
        for p, a, b in ranges:
            h = hashlib.sha256()
            fd = os.open(p, os.O_RDONLY)
            try:
                while a < b:
                    n = os.preadv(fd, [buf[: min(MiB, b - a)]], a)
                    h.update(buf[:n])
                    a += n
            finally:
                os.close(fd)

    workers = [threading.Thread(target=work, args=(r,)) for r in parts]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def interleaved(funcs: dict[str, Any], repeat: int) -> dict[str, tuple[float, float]]:
    """Min wall seconds and min process CPU seconds (all threads: the in-process cluster's
    too) of each function, run in rotation after one warm-up each."""
    for fn in funcs.values():
        fn()
    best = {name: (float("inf"), float("inf")) for name in funcs}
    for _ in range(max(repeat, 1)):
        gc.collect()
        for name, fn in funcs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


@contextmanager
def cluster_client(layout: str) -> Iterator[Any]:
    """``local``: what ``--dask local`` runs (:func:`pyipld.distributed.dask_client`: one
    in-process worker, one thread per core); ``2x1``: two in-process one-thread workers;
    ``procs``: two one-thread worker processes (start-up not timed here)."""
    import distributed

    from pyipld.distributed import dask_client

    if layout == "local":
        with dask_client("local") as client:
            yield client
        return
    procs: dict[str, Any] = {"processes": True, "host": "127.0.0.1"} if layout == "procs" else {"processes": False}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0",
                                  **procs) as cluster, distributed.Client(cluster) as client:
        yield client


def write_random(path: Path, size: int, rnd: random.Random) -> None:
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 8 * MiB)
            f.write(rnd.randbytes(n))
            left -= n


def dask_inputs(tmp: Path, size_mib: int, small_files: bool = True) -> list[tuple[str, list[Path], Path]]:
    """(case, files, what is imported): a tree of 4 large files, one file, a tree of 1 MiB files."""
    tmp.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(1)
    tree = tmp / "big"
    tree.mkdir()
    files = []
    for i, share in enumerate((0.4, 0.3, 0.2, 0.1)):
        files.append(tree / f"part{i}")
        write_random(files[-1], int(size_mib * MiB * share), rnd)
    one = tmp / "one"
    write_random(one, size_mib * MiB, rnd)
    cases = [("dask_tree", files, tree), ("dask_file", [one], one)]
    if small_files:
        small = tmp / "small"
        smalls = []
        for i in range(max(8, size_mib // 2)):  # half the bytes, in 1 MiB files (batched tasks)
            d = small / f"d{i // 256:03d}"
            d.mkdir(parents=True, exist_ok=True)
            smalls.append(d / f"f{i:05d}")
            write_random(smalls[-1], MiB, rnd)
        cases.append(("dask_tree_1MiB_files", smalls, small))
    return cases


def bench_dask(tmp: Path, size_mib: int, repeat: int, layouts: list[str], task_mib: list[int]) -> None:
    from pyipld.distributed import import_paths_dask

    inputs = dask_inputs(tmp, size_mib)
    params = ImportParams()
    for layout in layouts:
        with cluster_client(layout) as client:
            for case, paths, target in inputs:
                nbytes = sum(p.stat().st_size for p in paths)
                cids: set[str] = set()
                funcs: dict[str, Any] = {
                    "sha1": lambda paths=paths: sha256_readinto(paths),
                    "sha2": lambda paths=paths: sha256_ranges_threads(paths),
                    "threaded": lambda target=target, cids=cids: cids.add(str(import_paths([target], params, NullSink(),
                                                                                jobs=2).cid)),
                }
                for mib in task_mib:
                    funcs[f"dask{mib}"] = (lambda target=target, mib=mib, cids=cids: cids.add(
                        str(import_paths_dask([target], params, client, task_bytes=mib * MiB).cid)))
                best = interleaved(funcs, repeat)
                sha_wall, sha_cpu = best["sha1"]
                thr_wall, thr_cpu = best["threaded"]
                for mib in task_mib:
                    wall, cpu = best[f"dask{mib}"]
                    emit(case, nbytes, Timing(wall, sha_wall), cluster=layout, task_mib=mib,
                         vs_one_thread_sha256=round(sha_wall / wall, 3), cpu_x_sha256=round(sha_cpu / cpu, 3),
                         sha256_2threads_x=round(sha_wall / best["sha2"][0], 3),
                         threaded_x_sha256=round(sha_wall / thr_wall, 3), threaded_cpu_x=round(sha_cpu / thr_cpu, 3),
                         vs_threaded=round(wall / thr_wall, 3), same_cid=len(cids) == 1,
                         goal=">= 1.6 x sha256; <= 1.15 x threaded")


SHA_FILES = """
import hashlib, sys
b = bytearray(1 << 20); m = memoryview(b)
for p in sys.argv[1:]:
    h = hashlib.sha256()
    with open(p, "rb", buffering=0) as f:
        while n := f.readinto(b):
            h.update(m[:n])
"""


def bench_dask_cli(tmp: Path, size_mib: int, rounds: int) -> None:
    """Whole ``python -m pyipld add`` processes (interpreter, imports and, with ``--dask local``,
    the embedded cluster's start and stop included) ÷ a ``python -c`` one-thread sha256 of the
    same files, per round, medians; ``ceiling`` = the two-thread control on the same bytes."""
    import statistics
    import sys

    from benchmarks.bench_cli import SHA_TWO, _run

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    py = sys.executable
    inputs = dask_inputs(tmp, size_mib, small_files=False)
    tiny = tmp / "tiny"
    tiny.write_bytes(b"x")
    add = [py, "-m", "pyipld", "add", "-Q", "-n", "-r"]
    for case, paths, target in inputs:
        cmds = {"sha1": [py, "-c", SHA_FILES, *map(str, paths)],
                "dask": [*add, "--dask", "local", str(target)],
                "threaded": [*add, str(target)],
                "dask_startup": [*add, "--dask", "local", str(tiny)],
                "plain_startup": [*add, str(tiny)]}
        if len(paths) == 1:
            cmds["sha2"] = [py, "-c", SHA_TWO, str(paths[0])]
        for argv in cmds.values():  # warm-up: page cache, .pyc files
            _run(argv, env)
        runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cmds}
        for _ in range(rounds):
            for name, argv in cmds.items():
                runs[name].append(_run(argv, env))
        base = runs["sha1"]

        def x(name: str, i: int, base: list[tuple[float, float, float]] = base,
              runs: dict[str, list[tuple[float, float, float]]] = runs) -> float:
            return statistics.median(b[i] / r[i] for b, r in zip(base, runs[name], strict=True))

        extra: dict[str, Any] = {}
        if "sha2" in runs:
            extra["sha256_2threads_x"] = round(x("sha2", 0), 3)
        emit(f"{case}_cli", sum(p.stat().st_size for p in paths), None, rounds=rounds,
             dask_x_sha256=round(x("dask", 0), 3), dask_cpu_x=round(x("dask", 1), 3),
             threaded_x_sha256=round(x("threaded", 0), 3), threaded_cpu_x=round(x("threaded", 1), 3),
             dask_s=round(statistics.median(r[0] for r in runs["dask"]), 3),
             threaded_s=round(statistics.median(r[0] for r in runs["threaded"]), 3),
             sha256_s=round(statistics.median(r[0] for r in base), 3),
             dask_startup_s=round(statistics.median(r[0] for r in runs["dask_startup"]), 3),
             dask_startup_cpu_s=round(statistics.median(r[1] for r in runs["dask_startup"]), 3),
             plain_startup_s=round(statistics.median(r[0] for r in runs["plain_startup"]), 3),
             peak_rss_mib=round(max(r[2] for r in runs["dask"]), 1), **extra)


def sha256_files_threads(paths: list[Path], threads: int = 2) -> None:
    """The two-core control: the same files hashed by ``threads`` threads (one-thread hashlib each)."""
    workers = [threading.Thread(target=sha256_files, args=(paths[i::threads],)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()


def bench_pack(tmp: Path, size_mib: int, target: int, repeat: int, nfiles: int = 8) -> None:
    import distributed

    from pyipld.distributed import pack_dask
    from pyipld.filecoin.pack import pack

    tree = tmp / f"pack-in-{nfiles}"
    tree.mkdir()
    rnd = random.Random(5)
    files = []
    for i in range(nfiles):
        p = tree / f"f{i}"
        with open(p, "wb") as f:
            left = size_mib * MiB // nfiles + i * 4099
            while left > 0:
                n = min(left, 8 * MiB)
                f.write(rnd.randbytes(n))
                left -= n
        files.append(p)
    nbytes = sum(p.stat().st_size for p in files)
    params = ImportParams(cid_version=1, raw_leaves=True, chunker="size-1048576", max_links=1024)
    task_bytes = max(MiB, size_mib * MiB // 32)
    docs: dict[str, Any] = {}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address="127.0.0.1:0") as cluster, distributed.Client(cluster) as client:

        def run(kind: str) -> None:
            out = tmp / f"pack-{kind}"
            if kind == "dask":
                docs[kind] = pack_dask([tree], out, client, target_size=target, params=params,
                                       task_bytes=task_bytes).manifest
            else:
                docs[kind] = pack([tree], out, target_size=target, params=params, jobs=2).manifest
            shutil.rmtree(out)

        funcs = [lambda: sha256_files(files), lambda: run("dask"), lambda: run("one"),
                 lambda: sha256_files_threads(files)]
        for fn in funcs:  # warm-up
            fn()
        best = [float("inf")] * len(funcs)
        for _ in range(max(repeat, 1)):  # interleaved, min of each (as time_interleaved, four ways)
            gc.collect()
            for i, fn in enumerate(funcs):
                t0 = time.perf_counter()
                fn()
                best[i] = min(best[i], time.perf_counter() - t0)
    sha1, dask_s, single_s, sha2 = best
    emit("dask_car_pack" if nfiles > 1 else "dask_car_pack_one_file", nbytes, Timing(dask_s, sha1), vs_one_thread_sha256=round(sha1 / dask_s, 3),
         single_process_seconds=round(single_s, 4), single_vs_sha256=round(sha1 / single_s, 3),
         vs_single_process=round(dask_s / single_s, 3), sha256_2threads_x=round(sha1 / sha2, 3),
         cars=len(docs["dask"]["cars"]), target_size=target, task_bytes=task_bytes,
         same_output=docs["dask"] == docs["one"], peak_rss_mib=round(self_peak_rss_mib(), 1))


class _SyntheticExecutor:
    """Answers tasks from their arguments alone: a simulated cluster for coordinator memory."""

    def __init__(self, cand_gap: int) -> None:
        self.rnd = random.Random(3)
        self.cand_gap = cand_gap
        self.tasks = 0

    def _cid(self) -> bytes:
        return b"\x01\x70\x12\x20" + self.rnd.randbytes(32)

    def submit(self, fn: Any, *args: Any) -> _Lazy:
        """Keep only what the cluster would need to answer (a client keeps neither the task's
        arguments nor, until asked, its result): a few ints per task."""
        self.tasks += 1
        if fn is hash_span:
            _, span, shape, params = args
            width = params.resolve().max_links
            return _Lazy(self._nodes, (span.stop - span.start, span.leaves, width ** shape[1], span.chunk))
        if fn is scan_candidates:
            return _Lazy(self._runs, (args[1], args[2]))
        raise AssertionError(fn)

    def _nodes(self, nbytes: int, nleaves: int, per: int, chunk: int) -> list[FileLink]:
        nodes, left = [], nbytes
        full = per * (chunk or nbytes // max(1, nleaves))
        for _ in range(-(-nleaves // per)):
            size = min(full, left)
            nodes.append(FileLink(self._cid(), size + 64, size))
            left -= size
        return nodes

    def _runs(self, start: int, stop: int) -> list[tuple[int, int, int]]:
        runs = []
        e = start + self.rnd.randrange(self.cand_gap)
        while e < stop:
            runs.append((e, 1, 1))
            e += self.rnd.randrange(1, 2 * self.cand_gap)
        return runs


class _Lazy:
    """A future answered when read, from the few ints kept at submission."""

    def __init__(self, fn: Any, args: tuple[int, ...]) -> None:
        self.fn, self.args = fn, args

    def result(self) -> Any:
        return self.fn(*self.args)


class _Stat:
    def __init__(self, size: int) -> None:
        self.st_size = size
        self.st_ino = self.st_mtime_ns = self.st_ctime_ns = self.st_mode = 0


def bench_coordinator(sim_gib: int) -> None:
    size = sim_gib << 30
    for label, params in (("v0-256KiB", ImportParams()),
                          ("v1-2025", ImportParams.from_profile("unixfs-v1-2025")),
                          ("buzhash", ImportParams(chunker="buzhash", cid_version=1))):
        ex = _SyntheticExecutor(1 << 17)
        out: list[Any] = []

        def run(params: ImportParams = params, ex: _SyntheticExecutor = ex, out: list[Any] = out) -> None:
            runner = ParallelImporter(ex, params, task_bytes=64 * MiB)
            out.append(runner.run([(b"/simulated", _Stat(size))])[b"/simulated"])  # type: ignore[list-item]

        # Warm-up (untraced): module imports (numba kernels, tables) are not coordinator memory.
        ParallelImporter(_SyntheticExecutor(1 << 17), params, task_bytes=64 * MiB).run(
            [(b"/warm-up", _Stat(256 * MiB))])  # type: ignore[list-item]
        t0 = time.perf_counter()
        peak = traced_peak_mib(run)
        emit("coordinator_memory", size, None, layout=label, simulated_gib=sim_gib, tasks=ex.tasks,
             seconds=round(time.perf_counter() - t0, 2), traced_peak_mib=round(peak, 1), goal="< 100 MiB at 1 TiB")


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, help="small files for the cache case")
    parser.add_argument("--large-files", type=int, default=1000, help="1 MiB files for the second cache case")
    parser.add_argument("--size-mib", type=int, default=2048, help="bytes of the Dask tree and file")
    parser.add_argument("--pack-mib", type=int, default=1024, help="bytes of the car pack tree")
    parser.add_argument("--pack-target-mib", type=int, default=128, help="piece size of the car pack case")
    parser.add_argument("--sim-gib", type=int, default=1024, help="simulated file size for coordinator memory")
    parser.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--only", choices=("cache", "dask", "cli", "pack", "coordinator"), action="append")
    parser.add_argument("--cluster", action="append", choices=("local", "2x1", "procs"),
                        help="Dask cluster layouts for the dask cases (default: local, what --dask local runs)")
    parser.add_argument("--task-mib", type=int, action="append",
                        help="task sizes for the dask cases (repeatable; default: the library default)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of whole processes for the cli case")
    args = parser.parse_args()
    if args.smoke:
        args.files, args.large_files, args.size_mib, args.sim_gib, args.repeat, args.rounds = 2000, 32, 32, 4, 1, 1
        args.pack_mib, args.pack_target_mib = 16, 4
    only = set(args.only or ("cache", "dask", "cli", "pack", "coordinator"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-dist-", dir=args.dir))
    try:
        if "cache" in only:
            bench_cache(tmp, "cache_reimport", args.files, args.repeat)
            bench_cache(tmp, "cache_reimport_1MiB_files", args.large_files, args.repeat, MiB)
        if "dask" in only:
            task_mib = args.task_mib or [DEFAULT_TASK_BYTES // MiB if args.size_mib >= 256 else 4]
            bench_dask(tmp / "dask", args.size_mib, args.repeat, args.cluster or ["local"], task_mib)
        if "cli" in only:
            bench_dask_cli(tmp / "cli", args.size_mib, args.rounds)
        if "pack" in only:
            bench_pack(tmp, args.pack_mib, args.pack_target_mib * MiB, args.repeat)
            bench_pack(tmp, args.pack_mib, args.pack_target_mib * MiB, args.repeat, nfiles=1)
        if "coordinator" in only:
            bench_coordinator(args.sim_gib)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
