"""CommP and car pack benchmarks: ``python -m benchmarks.bench_commp [--smoke] [--size-mib N]``.

Each case prints one JSON line; ``ratio`` = hashlib.sha256 time / case time over the
same bytes (higher is better: 1.0 would be as fast as plain SHA-256), so the
issue's goal reads ``ratio >= 0.15``. Baselines run in the same process,
interleaved with the case; the minimum of the repeats is kept.

Cases: ``commp-plain`` (the test reference), ``commp-python`` (numpy fr32 + batched
hashlib, 1 process and all cores), ``commp-native`` (the optional accelerator, 1
thread and all cores), ``pack`` (end-to-end ``car pack`` of a generated tree: MB/s
and the child process's peak RSS).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pyipld.filecoin import _commp_accel
from pyipld.filecoin._commp_ref import ref_commp
from pyipld.filecoin.commp import commp_bytes, default_jobs
from tests._deterministic import chacha_bytes


def timed(fn: Callable[[], object], baseline: Callable[[], object], repeats: int) -> tuple[float, float]:
    fn()
    baseline()
    best, best_base = float("inf"), float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        baseline()
        best_base = min(best_base, time.perf_counter() - t)
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best, best_base


def report(case: str, nbytes: int, seconds: float, baseline: float, **extra: object) -> None:
    line = {"case": case, "bytes": nbytes, "seconds": round(seconds, 4), "baseline": round(baseline, 4),
            "ratio": round(baseline / seconds, 4), "MB_s": round(nbytes / seconds / 1e6, 1)}
    line.update(extra)
    print(json.dumps(line), flush=True)


def bench_commp(size: int, plain_size: int, python_size: int, repeats: int) -> None:
    jobs = default_jobs()
    data = chacha_bytes("commp", size)
    sha = hashlib.sha256

    def case(name: str, n: int, fn: Callable[[bytes], object], **extra: object) -> None:
        buf = data[:n]
        t, b = timed(lambda: fn(buf), lambda: sha(buf).digest(), repeats)
        # CPU time over wall time of one more run: > 1 means several cores were busy.
        c0, w0 = os.times(), time.perf_counter()
        fn(buf)
        c1, w1 = os.times(), time.perf_counter()
        cpu = (c1.user - c0.user) + (c1.system - c0.system)
        report(name, n, t, b, cpu_over_wall=round(cpu / (w1 - w0), 2), **extra)

    case("commp-plain", plain_size, ref_commp, jobs=1, note="reference implementation, smaller input")
    case("commp-python", python_size, lambda d: commp_bytes(d, backend="python", jobs=1), jobs=1)
    if jobs > 1:
        case("commp-python", python_size, lambda d: commp_bytes(d, backend="python", jobs=jobs), jobs=jobs)
    native = _commp_accel.load()
    if native is None:
        print(json.dumps({"case": "commp-native", "skipped": "no C compiler or PYIPLD_PUREPYTHON=1"}))
        return
    kind = "shani" if native.shani else "portable"
    case("commp-native", size, lambda d: commp_bytes(d, backend="native", jobs=1), jobs=1, accel=kind)
    if jobs > 1:
        case("commp-native", size, lambda d: commp_bytes(d, backend="native", jobs=jobs), jobs=jobs, accel=kind)


_PACK_CHILD = r"""
import json, resource, sys, time
from pyipld.filecoin.pack import pack
from pyipld.filecoin.commp import default_jobs
from pyipld.unixfs.params import ImportParams
src, out, target = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = time.perf_counter()
r = pack([src], out, target_size=target, params=ImportParams(cid_version=1), jobs=default_jobs())
dt = time.perf_counter() - t
# VmHWM: this process image's peak RSS (ru_maxrss would include the forking parent's).
try:
    hwm = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
except (OSError, StopIteration):
    hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "cars": len(r.manifest["cars"]), "files": len(r.manifest["files"]),
                  "peak_rss_kib": hwm}))
"""


def bench_pack(tree_size: int, target: int, file_size: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-pack-") as tmp:
        src = Path(tmp) / "tree"
        n = 0
        i = 0
        while n < tree_size:
            size = min(file_size if i % 3 else file_size * 3, tree_size - n)  # a few files larger than a piece
            path = src / f"d{i % 7}" / f"f{i:05d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(chacha_bytes(f"pack-{i}", size))
            n += size
            i += 1

        def read_all() -> None:
            for p in sorted(src.rglob("*.bin")):
                hashlib.sha256(p.read_bytes()).digest()

        t = time.perf_counter()
        read_all()
        baseline = time.perf_counter() - t
        out = Path(tmp) / "out"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
        done = subprocess.run([sys.executable, "-c", _PACK_CHILD, str(src), str(out), str(target)],
                              capture_output=True, text=True, env=env, check=True)
        child = json.loads(done.stdout.strip().splitlines()[-1])
        report("pack", n, child["seconds"], baseline, target=target, files=i, cars=child["cars"],
               peak_rss_mib=round(child["peak_rss_kib"] / 1024, 1),
               note="baseline: read + hashlib.sha256 of every input file")
        shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    ap.add_argument("--size-mib", type=int, default=256, help="commp input for the fast paths")
    ap.add_argument("--pack-mib", type=int, default=2048, help="tree size for the pack case (0: skip)")
    ap.add_argument("--target", default="256MiB", help="piece size for the pack case")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    from pyipld.filecoin.commp import parse_piece_size

    if args.smoke:
        bench_commp(2 << 20, 256 << 10, 1 << 20, 2)
        bench_pack(8 << 20, 1 << 20, 300 << 10)
        return 0
    size = args.size_mib << 20
    bench_commp(size, min(size, 8 << 20), min(size, 32 << 20), args.repeats)
    if args.pack_mib:
        target = parse_piece_size(args.target)
        bench_pack(args.pack_mib << 20, target, max(1 << 20, target // 12))
    return 0


if __name__ == "__main__":
    sys.exit(main())
