"""Chunker speed and memory: ``python -m benchmarks.bench_chunkers [--smoke] [--size MiB]``.

For each chunker (size-262144, rabin, buzhash) and each available backend
(python, numpy, numba) it times

* ``chunk``: splitting the data (fed as 1 MiB reads), and
* ``import``: an only-hash ``import_bytes`` (chunk + leaf sha256 + balanced DAG, one thread;
  kubo's defaults: CIDv0, dag-pb leaves), ``import-v1`` the same with CIDv1 raw leaves, and
  ``import-jobs``: ``import_file`` (CIDv0) with the default hashing threads over the
  1 MiB reads; ``import-file`` / ``import-file-v1``: ``import_file`` of the data as a
  regular file (memory-mapped), one hashing thread (``jobs=1``),

against ``hashlib.sha256`` over the same bytes, measured in the same run and
interleaved (minimum of ``--repeat`` runs after a warm-up). Each case prints one
JSON line; ``ratio = seconds / baseline`` (as everywhere in benchmarks/) and
``vs_sha256 = baseline / seconds`` (throughput relative to one-thread sha256,
the figure the goals are stated in). The plain-Python backend runs on a smaller
slice (``--python-size``) with its own baseline. With a kubo venv
(``PYIPLD_KUBO_PYTHON`` or .peers/kubo-venv) and ``PYIPLD_SHARED`` present, kubo's own only-hash add is timed too (``kubo_oracle.py
bench``, median). Finally ``memory`` cases chunk a ``--memory-size`` stream with
each fast backend under tracemalloc and report the peak.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks._harness import kubo_oracle
from pyipld._accel import available_backends
from pyipld.chunker import parse_chunker
from pyipld.unixfs.importer import import_bytes, import_file
from pyipld.unixfs.params import ImportParams
from tests._deterministic import chacha_stream

MiB = 1 << 20
CHUNKERS = ["size-262144", "rabin", "buzhash"]


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def reads_of(data: bytes, size: int = MiB) -> Iterator[memoryview]:
    view = memoryview(data)
    for i in range(0, len(data), size):
        yield view[i : i + size]


def timed_pair(case: Callable[[], object], data: bytes, repeat: int) -> tuple[float, float, float, float]:
    """min wall and CPU seconds of ``case`` and of sha256(data), interleaved, after one warm-up each.

    CPU time (``time.process_time``) is far less disturbed than wall time when other
    processes share the cores; for single-threaded cases it is the better figure.
    """
    case()
    hashlib.sha256(data).digest()
    wall_case = wall_base = cpu_case = cpu_base = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        hashlib.sha256(data).digest()
        wall_base, cpu_base = min(wall_base, time.perf_counter() - t0), min(cpu_base, time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        case()
        wall_case, cpu_case = min(wall_case, time.perf_counter() - t0), min(cpu_case, time.process_time() - c0)
    return wall_case, wall_base, cpu_case, cpu_base


def emit_timing(name: str, nbytes: int, timing: tuple[float, float, float, float], **extra: Any) -> None:
    seconds, base, cpu, cpu_base = timing
    emit(case=name, bytes=nbytes, seconds=round(seconds, 4), baseline=round(base, 4),
         ratio=round(seconds / base, 3), vs_sha256=round(base / seconds, 3),
         cpu_seconds=round(cpu, 4), cpu_baseline=round(cpu_base, 4),
         cpu_vs_sha256=round(cpu_base / cpu, 3) if cpu > 0 else None,
         MB_per_s=round(nbytes / seconds / 1e6, 1), **extra)


def with_backend(backend: str) -> None:
    os.environ["PYIPLD_ACCEL"] = backend


def chunk_all(chunker_spec: str, data: bytes) -> int:
    count = 0
    for _ in parse_chunker(chunker_spec).split(reads_of(data)):
        count += 1
    return count


def bench_speed(data: bytes, small: bytes, repeat: int, path: str, only: str | None = None,
                backends: list[str] | None = None) -> None:
    for spec in CHUNKERS:
        if only and spec != only:
            continue
        for backend in available_backends():
            if backends and backend not in backends:
                continue
            if spec.startswith("size-") and backend != available_backends()[-1]:
                continue  # the fixed-size chunker has one implementation
            with_backend(backend)
            sample = small if backend == "python" else data
            reps = max(2, repeat // 2) if backend == "python" else repeat
            cases: list[tuple[str, Callable[[], object]]] = [
                ("chunk", lambda s=spec, d=sample: chunk_all(s, d)),  # type: ignore[misc]
                ("import", lambda s=spec, d=sample: import_bytes(d, ImportParams(chunker=s))),  # type: ignore[misc]
                ("import-v1", lambda s=spec, d=sample: import_bytes(d, ImportParams(chunker=s, cid_version=1))),  # type: ignore[misc]
            ]
            if backend != "python":
                cases += [
                    # From a regular file, one hashing thread: memory-mapped, no byte copied.
                    ("import-file", lambda s=spec: import_file(path, ImportParams(chunker=s), jobs=1)),  # type: ignore[misc]
                    ("import-file-v1", lambda s=spec: import_file(path, ImportParams(chunker=s, cid_version=1), jobs=1)),  # type: ignore[misc]
                ]
                cases.append(("import-jobs", lambda s=spec, d=sample: import_file(reads_of(d), ImportParams(chunker=s))))  # type: ignore[misc]
            for kind, fn in cases:
                emit_timing(f"{kind}/{spec}/{backend}", len(sample), timed_pair(fn, sample, reps))
    os.environ.pop("PYIPLD_ACCEL", None)


def bench_kubo(data: bytes, repeat: int) -> None:
    found = kubo_oracle()
    if found is None:
        emit(case="kubo", skipped="no kubo oracle (set PYIPLD_KUBO_PYTHON / PYIPLD_SHARED)")
        return
    kubo_py, oracle = found
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(data)
        f.flush()
        for spec in CHUNKERS:
            run = subprocess.run([kubo_py, str(oracle), "bench", f.name, "--chunker", spec, "--repeat", str(repeat)],
                                 capture_output=True, text=True, check=False)
            if run.returncode != 0:
                emit(case=f"kubo/{spec}", error=run.stderr.strip()[-300:])
                continue
            out = json.loads(run.stdout.strip().splitlines()[-1])
            _, base, _, _ = timed_pair(lambda: None, data, repeat)
            seconds = out["median_s"]
            ours = str(import_bytes(data, ImportParams(chunker=spec)).cid)
            emit(case=f"kubo-add/{spec}", bytes=len(data), seconds=seconds, baseline=round(base, 4),
                 ratio=round(seconds / base, 3), vs_sha256=round(base / seconds, 3), MB_per_s=out["MB_per_s"],
                 cid=out["cid"], pyipld_cid_matches=ours == out["cid"])


def _peak(spec: str, size: int) -> tuple[int, int, float]:
    chunker = parse_chunker(spec)
    gc.collect()
    tracemalloc.start()
    t0 = time.perf_counter()
    total = count = 0
    for chunk in chunker.split(chacha_stream(f"memory-{size}", size, read_size=MiB)):
        total += len(chunk)
        count += 1
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == size
    return peak, count, seconds


def bench_memory(size: int) -> None:
    """Peak while chunking ``size`` bytes vs a smaller stream.

    Bounded means the peaks differ by less than ``2 × max chunk + one read``: the driver
    holds a 4 MiB block plus the unsettled tail (< one max chunk) and the chunk being
    handed out, so where the boundaries happen to fall moves the peak by that much.

    The smaller stream is ``size // 16`` but at least 16 MiB, so both fill the driver's 4 MiB
    blocks; when ``size`` is not larger than that, only the peak is reported.
    """
    small = min(max(size // 16, 16 * MiB), size)
    for spec in ("rabin", "buzhash"):
        for backend in available_backends():
            if backend == "python":
                continue
            with_backend(backend)
            _peak(spec, MiB)  # warm-up: numba's one-time import/compile allocations are not the stream's
            small_peak = _peak(spec, small)[0] if small < size else None
            peak, count, seconds = _peak(spec, size)
            max_chunk = parse_chunker(spec).max_chunk_size
            emit(case=f"memory/{spec}/{backend}", bytes=size, chunks=count, seconds=round(seconds, 3),
                 peak_bytes=peak, peak_MiB=round(peak / MiB, 1), max_chunk=max_chunk,
                 **({} if small_peak is None else {"small_bytes": small, "small_peak_bytes": small_peak,
                                                   "growth_bytes": peak - small_peak,
                                                   "bounded": abs(peak - small_peak) < 2 * max_chunk + MiB}))
    os.environ.pop("PYIPLD_ACCEL", None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, finishes in seconds (CI)")
    parser.add_argument("--size", type=float, default=256, help="MiB of random data (default 256)")
    parser.add_argument("--python-size", type=float, default=4, help="MiB for the plain-Python backend")
    parser.add_argument("--memory-size", type=float, default=1024, help="MiB streamed for the memory cases")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-kubo", action="store_true")
    parser.add_argument("--backend", action="append", choices=["python", "numpy", "numba"],
                        help="time only this backend (repeatable)")
    parser.add_argument("--only", choices=CHUNKERS, help="time only this chunker (no kubo, no memory cases)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.size, args.python_size, args.memory_size, args.repeat = 2, 0.5, 24, 2
    size, small_size = int(args.size * MiB), int(args.python_size * MiB)
    data = b"".join(chacha_stream("bench-chunkers", size))
    small = data[:small_size]
    emit(case="setup", bytes=size, python_bytes=small_size, backends=list(available_backends()),
         cpus=len(os.sched_getaffinity(0)), loadavg=[round(x, 2) for x in os.getloadavg()], python=sys.version.split()[0])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.bin")
        Path(path).write_bytes(data)
        bench_speed(data, small, args.repeat, path, args.only, args.backend)
    if args.only:
        return 0
    if not args.no_kubo and not args.smoke:
        bench_kubo(data, args.repeat)
    bench_memory(int(args.memory_size * MiB))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
