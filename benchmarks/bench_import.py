"""Only-hash file import speed and memory, against hashlib.sha256 and against kubo.

Cases (one JSON line each; ``ratio = t_case / t_sha256`` on the same bytes, so
throughput relative to one-thread hashlib is ``1 / ratio``):

* ``import/<params>/jobs=N`` — ``import_file(path, params, jobs=N)`` with a
  NullSink (``--only-hash``), for kubo's defaults (CIDv0, 256 KiB, dag-pb leaves)
  and CIDv1 + raw leaves + 1 MiB chunks; ``jobs`` 1, 2 and all cores.
* ``import-stream/...`` — the same through a file object (no memory map).
* ``kubo/<params>`` — kubo's own only-hash add of the same file (the oracle's
  ``bench`` command; node start excluded), when a kubo venv is found
  (``PYIPLD_KUBO_PYTHON`` or /work/.venv-kubo); ``ratio`` = t_pyipld(jobs=all) / t_kubo.
* ``memory/...`` — peak RSS above the interpreter's baseline while importing a
  1 GiB file, in a fresh subprocess; and the tracemalloc peak.

Run: ``python -m benchmarks.bench_import [--smoke] [--size-mib 256] [--memory-mib 1024]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

from pyipld.unixfs.importer import default_jobs, import_file
from pyipld.unixfs.params import ImportParams

from ._harness import (
    MiB,
    bench_parser,
    deterministic_file,
    emit,
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
    for candidate in (os.environ.get("PYIPLD_KUBO_PYTHON"), "/work/.venv-kubo/bin/python"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _oracle() -> Path | None:
    here = Path(__file__).resolve().parents[1]
    for base in (os.environ.get("PYIPLD_SHARED"), here.parent / "shared", "/work/shared"):
        if base and (Path(base) / "tools" / "kubo_oracle.py").exists():
            return Path(base) / "tools" / "kubo_oracle.py"
    return None


def bench_speed(path: str, data: bytes, repeat: int, jobs_list: list[int]) -> dict[str, float]:
    """Returns the best pyipld seconds per params name (at the highest jobs) for the kubo comparison."""
    best: dict[str, float] = {}
    for name, (params, _) in PARAMS.items():
        for jobs in jobs_list:
            timing = time_interleaved(lambda params=params, jobs=jobs: import_file(path, params, jobs=jobs),
                                      lambda: hashlib.sha256(data).digest(), repeat=repeat)
            emit(f"import/{name}/jobs={jobs}", len(data), timing, jobs=jobs,
                 vs_one_thread_sha256=round(1 / timing.ratio, 3))
            best[name] = min(best.get(name, float("inf")), timing.seconds)

        def stream(params: ImportParams = params) -> None:
            with open(path, "rb") as f:
                import_file(f, params, jobs=1)

        timing = time_interleaved(stream, lambda: hashlib.sha256(data).digest(), repeat=repeat)
        emit(f"import-stream/{name}/jobs=1", len(data), timing, jobs=1, vs_one_thread_sha256=round(1 / timing.ratio, 3))
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
        emit(f"kubo/{name}", nbytes, seconds=kubo_s, baseline=kubo_s, ratio=round(ours[name] / kubo_s, 4),
             note="ratio = t_pyipld(best jobs) / t_kubo; < 1 means pyipld is faster",
             kubo_cid=result.get("cid"), kubo_mb_s=round(nbytes / kubo_s / 1e6, 1))


def bench_memory(path: str, nbytes: int) -> None:
    setup = ("import sys; sys.path.insert(0, '.')\n"
             "from pyipld.unixfs.importer import import_file\n"
             "from pyipld.unixfs.params import ImportParams\n"
             "params = ImportParams(cid_version=1, raw_leaves=True, chunker='size-1048576')\n"
             "import_file(b'warm-up', params, jobs=2)")
    run = f"import_file({path!r}, ImportParams(), jobs=2)\nimport_file({path!r}, params, jobs=2)"
    for label, env in (("mmap", {}), ("read", {"PYIPLD_NO_MMAP": "1"})):
        base, peak = peak_rss_mib_of(setup, run, env=env)
        emit(f"memory/peak-rss/{label}", nbytes, baseline_rss_mib=round(base, 1), peak_rss_mib=round(peak, 1),
             above_baseline_mib=round(peak - base, 1), goal_mib=64)
    peak_heap = traced_peak_mib(lambda: import_file(path, ImportParams(), jobs=2))
    emit("memory/tracemalloc-peak", nbytes, peak_mib=round(peak_heap, 2))


def main() -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--memory-mib", type=int, default=1024)
    parser.add_argument("--dir", default=None, help="where the test files go (default: a temp dir)")
    parser.add_argument("--no-kubo", action="store_true")
    args = parser.parse_args()
    size = (4 if args.smoke else args.size_mib) * MiB
    mem_size = (16 if args.smoke else args.memory_mib) * MiB
    repeat = 1 if args.smoke else args.repeat
    jobs_list = sorted({1, 2, default_jobs()})
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = os.path.join(tmp, f"bench-{size}.bin")
        deterministic_file(path, size)
        data = Path(path).read_bytes()
        ours = bench_speed(path, data, repeat, jobs_list)
        del data
        if not args.no_kubo:
            bench_kubo(path, size, max(repeat, 3), ours)
        os.unlink(path)
        mem_path = os.path.join(tmp, f"bench-{mem_size}.bin")
        deterministic_file(mem_path, mem_size)
        bench_memory(mem_path, mem_size)


if __name__ == "__main__":
    main()
