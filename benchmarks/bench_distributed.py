"""Distributed and incremental import: Dask speed, cache re-import ratio, coordinator memory.

Cases (one JSON line each, STYLE.md §9):

* ``cache_reimport``: ``add -r --only-hash`` of an unchanged tree of N small files with a warm
  :class:`ImportCache` ÷ the cold import of the same tree (interleaved); goal ≤ 0.05.
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
import os
import random
import shutil
import tempfile
import threading
import time
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
        first = import_paths([root], params, NullSink(), jobs=1, cache=cache)
    results: list[Any] = []

    def cached() -> None:
        with ImportCache(db) as c:
            results.append((import_paths([root], params, NullSink(), jobs=1, cache=c).cid, c.stats.hits))

    timing = time_interleaved(cached, lambda: import_paths([root], params, NullSink(), jobs=1), repeat=repeat)
    cid, hits = results[-1]
    emit(case, nbytes, timing, files=files, file_bytes=size or "20-120", hits=hits, same_cid=cid == first.cid,
         goal="<= 0.05")


def bench_dask(tmp: Path, size_mib: int, repeat: int) -> None:
    import distributed

    from pyipld.distributed import import_paths_dask

    tree = tmp / "big"
    tree.mkdir()
    rnd = random.Random(1)
    files = []
    for i, share in enumerate((0.4, 0.3, 0.2, 0.1)):
        p = tree / f"part{i}"
        with open(p, "wb") as f:
            left = int(size_mib * MiB * share)
            while left > 0:
                n = min(left, 8 * MiB)
                f.write(rnd.randbytes(n))
                left -= n
        files.append(p)
    one = tmp / "one"
    with open(one, "wb") as f:
        f.writelines(rnd.randbytes(8 * MiB) for _ in range(size_mib // 8 or 1))
    params = ImportParams()
    task_bytes = DEFAULT_TASK_BYTES if size_mib >= 256 else 4 * MiB
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address="127.0.0.1:0") as cluster, distributed.Client(cluster) as client:
        for case, paths, target in (("dask_tree", files, tree), ("dask_file", [one], one)):
            nbytes = sum(p.stat().st_size for p in paths)
            cids: list[str] = []

            def run_dask(target: Path = target, cids: list[str] = cids) -> None:
                cids.append(str(import_paths_dask([target], params, client, task_bytes=task_bytes).cid))

            def run_threaded(target: Path = target, cids: list[str] = cids) -> None:
                cids.append(str(import_paths([target], params, NullSink(), jobs=2).cid))

            timing = time_interleaved(run_dask, lambda paths=paths: sha256_files(paths), repeat=repeat,
                                      control=run_threaded)
            threaded = timing.extra.pop("control")
            emit(case, nbytes, timing, vs_one_thread_sha256=round(1 / timing.ratio, 3),
                 threaded_seconds=round(threaded, 4), vs_threaded=round(timing.seconds / threaded, 3),
                 same_cid=len(set(cids)) == 1, task_bytes=task_bytes, goal=">= 1.6 x sha256; <= 1.15 x threaded")


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
    parser.add_argument("--only", choices=("cache", "dask", "pack", "coordinator"), action="append")
    args = parser.parse_args()
    if args.smoke:
        args.files, args.large_files, args.size_mib, args.sim_gib, args.repeat = 2000, 32, 32, 4, 1
        args.pack_mib, args.pack_target_mib = 16, 4
    only = set(args.only or ("cache", "dask", "pack", "coordinator"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-dist-", dir=args.dir))
    try:
        if "cache" in only:
            bench_cache(tmp, "cache_reimport", args.files, args.repeat)
            bench_cache(tmp, "cache_reimport_1MiB_files", args.large_files, args.repeat, MiB)
        if "dask" in only:
            bench_dask(tmp, args.size_mib, args.repeat)
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
