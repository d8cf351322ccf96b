"""Only-hash file import speed and memory, against hashlib.sha256 and against kubo.

Cases (one JSON line each; ``ratio = t_case / t_sha256`` on the same bytes, so
throughput relative to one-thread hashlib is ``1 / ratio``):

* ``import/<params>/jobs=N`` — ``import_file(path, params, jobs=N)`` with a
  NullSink (``--only-hash``), for kubo's defaults (CIDv0, 256 KiB, dag-pb leaves)
  and CIDv1 + raw leaves + 1 MiB chunks; ``jobs`` 1, 2 and all cores.
* ``ceiling/sha256-threads=N`` — plain ``hashlib.sha256`` over 1 MiB pieces on N
  threads: the parallelism the machine offers right now (the control for jobs=N).
* ``import-stream/...`` — the same through a file object.
* ``read-vs-mmap/...`` — the default path (1 MiB reads; a file that changes is an error) ÷
  the opt-in ``PYIPLD_MMAP=1`` path (mapped, SIGBUS if the file is truncated), interleaved.
* ``read/<params>`` — streaming the file back from a MemoryBlockstore with
  :class:`UnixFSReader` (every block hash-checked) ÷ sha256 of the bytes.
* ``kubo/<params>`` — kubo's own only-hash add of the same file (the oracle's
  ``bench`` command; node start excluded), when a kubo venv is found
  (``PYIPLD_KUBO_PYTHON`` or .peers/kubo-venv, and ``PYIPLD_SHARED``); ``ratio`` = t_pyipld(jobs=all) / t_kubo.
* ``memory/...`` — peak RSS above the interpreter's baseline while importing a
  1 GiB file, in a fresh subprocess; the tracemalloc peak; and how much the
  tracemalloc peak of a streamed import grows from 16 MiB to 128 MiB (STYLE.md §9:
  less than one chunk plus a frontier of links).

Run: ``python -m benchmarks.bench_import [--smoke] [--size-mib 256] [--memory-mib 1024]``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import tempfile
import threading
from pathlib import Path

from pyipld.blockstore import MemoryBlockstore
from pyipld.cid import CID
from pyipld.unixfs.importer import default_jobs, import_file
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.reader import UnixFSReader

from ._harness import (
    MiB,
    bench_parser,
    deterministic_file,
    emit,
    kubo_oracle,
    peak_rss_mib_of,
    time_interleaved,
    traced_peak_mib,
)

PARAMS = {
    "kubo-default": (ImportParams(), []),
    "v1-raw-1MiB": (ImportParams(cid_version=1, raw_leaves=True, chunker="size-1048576"),
                    ["--cid-version", "1", "--raw-leaves", "--chunker", "size-1048576"]),
}


def _kubo_python() -> str | None:
    found = kubo_oracle()
    return found[0] if found else None


def _oracle() -> Path | None:
    found = kubo_oracle()
    return found[1] if found else None


def _sha256_threads(data: bytes, threads: int, piece: int = MiB) -> None:
    view = memoryview(data)

    def work(k: int) -> None:
        for offset in range(k * piece, len(view), threads * piece):
            hashlib.sha256(view[offset : offset + piece]).digest()

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def _with_env(mmap_flag: str, path: str, params: ImportParams, jobs: int) -> None:
    os.environ["PYIPLD_MMAP"] = mmap_flag
    try:
        import_file(path, params, jobs=jobs)
    finally:
        os.environ.pop("PYIPLD_MMAP", None)


def bench_speed(path: str, data: bytes, repeat: int, jobs_list: list[int]) -> dict[str, float]:
    """Returns the best pyipld seconds per params name (at the highest jobs) for the kubo comparison."""
    best: dict[str, float] = {}
    for jobs in jobs_list[1:]:
        # The control: plain hashlib on `jobs` threads shows how much parallelism the
        # machine offers right now (on a shared machine, often less than its cores).
        timing = time_interleaved(functools.partial(_sha256_threads, data, jobs),
                                  lambda: hashlib.sha256(data).digest(), repeat=repeat)
        emit(f"ceiling/sha256-threads={jobs}", len(data), timing, jobs=jobs,
             vs_one_thread_sha256=round(1 / timing.ratio, 3),
             note="plain hashlib over 1 MiB pieces on N threads: the best any threaded import can do now")
    for name, (params, _) in PARAMS.items():
        for jobs in jobs_list:
            control = functools.partial(_sha256_threads, data, jobs) if jobs > 1 else None
            timing = time_interleaved(functools.partial(import_file, path, params, jobs=jobs),
                                      lambda: hashlib.sha256(data).digest(), repeat=repeat, control=control)
            extra: dict[str, float] = {}
            if control is not None:  # same moments, same threads: load-independent-ish
                extra["control_vs_one_thread_sha256"] = round(timing.baseline / timing.extra["control"], 3)
                extra["vs_control"] = round(timing.extra["control"] / timing.seconds, 3)
            emit(f"import/{name}/jobs={jobs}", len(data), timing, jobs=jobs,
                 vs_one_thread_sha256=round(1 / timing.ratio, 3), **extra)
            best[name] = min(best.get(name, float("inf")), timing.seconds)

        def stream(params: ImportParams = params) -> None:
            with open(path, "rb") as f:
                import_file(f, params, jobs=1)

        timing = time_interleaved(stream, lambda: hashlib.sha256(data).digest(), repeat=repeat)
        emit(f"import-stream/{name}/jobs=1", len(data), timing, jobs=1, vs_one_thread_sha256=round(1 / timing.ratio, 3))

        for jobs in (1, jobs_list[-1]):
            # the default read path (safe when the file changes) ÷ the opt-in mmap path, interleaved
            timing = time_interleaved(functools.partial(_with_env, "0", path, params, jobs),
                                      functools.partial(_with_env, "1", path, params, jobs), repeat=repeat)
            emit(f"read-vs-mmap/{name}/jobs={jobs}", len(data), timing, jobs=jobs,
                 note="baseline = the same import with PYIPLD_MMAP=1; ratio > 1: reading is slower")

        store = MemoryBlockstore()
        root = import_file(path, params, store).cid

        def read_back(root: CID = root, store: MemoryBlockstore = store) -> None:
            for _ in UnixFSReader(store, root).iter_range():
                pass

        timing = time_interleaved(read_back, lambda: hashlib.sha256(data).digest(), repeat=repeat)
        emit(f"read/{name}", len(data), timing, note="verified streaming read from a MemoryBlockstore",
             vs_one_thread_sha256=round(1 / timing.ratio, 3))
        del store
    return best


def bench_kubo(path: str, nbytes: int, repeat: int, ours: dict[str, float]) -> None:
    kubo_py, oracle = _kubo_python(), _oracle()
    if kubo_py is None or oracle is None:
        emit("kubo", nbytes, skipped="no kubo venv (PYIPLD_KUBO_PYTHON) or shared/tools/kubo_oracle.py")
        return
    for name, (_, flags) in PARAMS.items():
        try:
            out = subprocess.run([kubo_py, str(oracle), "bench", path, "--repeat", str(repeat), *flags],
                                 check=True, capture_output=True, text=True, timeout=1800)
        except (subprocess.SubprocessError, OSError) as exc:
            emit(f"kubo/{name}", nbytes, skipped=f"kubo oracle failed: {exc}")
            continue
        result = json.loads(out.stdout.strip().splitlines()[-1])
        kubo_s = min(result["seconds"])
        our_cid = str(import_file(path, PARAMS[name][0]).cid)
        emit(f"kubo/{name}", nbytes, seconds=round(ours[name], 6), baseline=kubo_s,
             ratio=round(ours[name] / kubo_s, 4), note="seconds = pyipld (best jobs), baseline = kubo; ratio < 1: pyipld is faster",
             kubo_mb_s=round(nbytes / kubo_s / 1e6, 1), kubo_cid=result.get("cid"), same_cid=result.get("cid") == our_cid)


def bench_memory(path: str, nbytes: int) -> None:
    setup = ("import sys; sys.path.insert(0, '.')\n"
             "from pyipld.unixfs.importer import import_file\n"
             "from pyipld.unixfs.params import ImportParams\n"
             "params = ImportParams(cid_version=1, raw_leaves=True, chunker='size-1048576')\n"
             "import_file(b'warm-up', params, jobs=2)")
    run = f"import_file({path!r}, ImportParams(), jobs=2)\nimport_file({path!r}, params, jobs=2)"
    for label, env in (("mmap", {"PYIPLD_MMAP": "1"}), ("read", {})):
        base, peak = peak_rss_mib_of(setup, run, env=env)
        emit(f"memory/peak-rss/{label}", nbytes, baseline_rss_mib=round(base, 1), peak_rss_mib=round(peak, 1),
             above_baseline_mib=round(peak - base, 1), goal_mib=64)
    peak_heap = traced_peak_mib(lambda: import_file(path, ImportParams(), jobs=2))
    emit("memory/tracemalloc-peak", nbytes, peak_mib=round(peak_heap, 2))


def bench_memory_growth(tmp: str, small_mib: int, big_mib: int) -> None:
    """STYLE.md §9: the heap peak of a streamed import must not grow with the file size."""
    params = ImportParams()
    bound = params.resolve().chunker.max_chunk_size + params.max_links * 48  # one chunk + a frontier of links
    for jobs in (1, 2):
        peaks = []
        for mib in (small_mib, big_mib):
            path = os.path.join(tmp, f"growth-{mib}.bin")
            deterministic_file(path, mib * MiB, seed="growth")

            def run(path: str = path, jobs: int = jobs) -> None:
                with open(path, "rb") as f:  # a stream: chunks are real allocations
                    import_file(f, params, jobs=jobs)

            peaks.append(traced_peak_mib(run))
        growth = (peaks[1] - peaks[0]) * MiB
        emit(f"memory/tracemalloc-growth/jobs={jobs}", big_mib * MiB, small_mib=small_mib, big_mib=big_mib,
             peak_small_mib=round(peaks[0], 3), peak_big_mib=round(peaks[1], 3), growth_bytes=int(growth),
             bound_bytes=bound, within_bound=growth < bound)


def main() -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--memory-mib", type=int, default=1024)
    parser.add_argument("--dir", default=None, help="where the test files go (default: a temp dir)")
    parser.add_argument("--only", choices=["speed", "kubo", "memory"], action="append",
                        help="run only these parts (repeatable; kubo needs speed)")
    args = parser.parse_args()
    size = (4 if args.smoke else args.size_mib) * MiB
    mem_size = (16 if args.smoke else args.memory_mib) * MiB
    repeat = 1 if args.smoke else args.repeat
    jobs_list = sorted({1, 2, default_jobs()})
    parts = set(args.only or ["speed", "kubo", "memory"])
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        if parts & {"speed", "kubo"}:
            path = os.path.join(tmp, f"bench-{size}.bin")
            deterministic_file(path, size)
            data = Path(path).read_bytes()
            ours = bench_speed(path, data, repeat, jobs_list)
            del data
            if "kubo" in parts:
                bench_kubo(path, size, max(repeat, 3), ours)
            os.unlink(path)
        if "memory" in parts:
            mem_path = os.path.join(tmp, f"bench-{mem_size}.bin")
            deterministic_file(mem_path, mem_size)
            bench_memory(mem_path, mem_size)
            os.unlink(mem_path)
            bench_memory_growth(tmp, 8 if args.smoke else 16, 16 if args.smoke else 128)


if __name__ == "__main__":
    main()
