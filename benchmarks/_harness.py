"""Shared benchmark harness: interleaved timing against a baseline, JSON lines, peak memory.

Every case is timed as the minimum of ``repeat`` runs after one warm-up, with the
baseline (e.g. ``hashlib.sha256`` over the same bytes) run alternately in the same
process, so a busy machine slows both sides alike; ``ratio = t_case / t_baseline``.
Compare ratios, never raw seconds across runs (STYLE.md §9).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MiB",
    "Timing",
    "bench_parser",
    "deterministic_file",
    "emit",
    "peak_rss_mib_of",
    "time_interleaved",
    "traced_peak_mib",
]

MiB = 1 << 20


@dataclass
class Timing:
    seconds: float
    baseline: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.seconds / self.baseline if self.baseline > 0 else float("inf")


def time_interleaved(case: Callable[[], object], baseline: Callable[[], object], *, repeat: int = 5) -> Timing:
    """Min-of-``repeat`` seconds of ``case`` and ``baseline``, run alternately after a warm-up of each."""
    case()
    baseline()
    best_case = best_base = float("inf")
    for _ in range(max(repeat, 1)):
        gc.collect()
        t0 = time.perf_counter()
        baseline()
        t1 = time.perf_counter()
        case()
        t2 = time.perf_counter()
        best_base = min(best_base, t1 - t0)
        best_case = min(best_case, t2 - t1)
    return Timing(best_case, best_base)


def emit(case: str, nbytes: int, timing: Timing | None = None, **extra: Any) -> dict[str, Any]:
    """Print one JSON line ``{"case","bytes","seconds","baseline","ratio",...}`` and return it."""
    row: dict[str, Any] = {"case": case, "bytes": nbytes}
    if timing is not None:
        row.update(seconds=round(timing.seconds, 6), baseline=round(timing.baseline, 6),
                   ratio=round(timing.ratio, 4))
        if timing.seconds > 0:
            row["throughput_mb_s"] = round(nbytes / timing.seconds / 1e6, 1)
        if timing.baseline > 0:
            row["baseline_mb_s"] = round(nbytes / timing.baseline / 1e6, 1)
    row.update(extra)
    print(json.dumps(row), flush=True)
    return row


def bench_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the benchmark still runs")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (min is reported)")
    return parser


def deterministic_file(path: str, size: int, seed: str = "pyipld-bench") -> None:
    """Write ``size`` bytes of kubo's ChaCha20 test stream to ``path`` (unless already there)."""
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    import hashlib

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    enc = Cipher(algorithms.ChaCha20(hashlib.sha256(seed.encode()).digest(), bytes(16)), mode=None).encryptor()
    zeros = bytes(MiB)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        left = size
        while left:
            n = min(left, MiB)
            f.write(enc.update(zeros[:n]))
            left -= n
    os.replace(tmp, path)


def traced_peak_mib(fn: Callable[[], object]) -> float:
    """Peak Python heap allocation (tracemalloc) while ``fn`` runs, in MiB."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / MiB
    finally:
        tracemalloc.stop()


_RSS_CHILD = """
import gc, resource, sys
{setup}
gc.collect()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
{run}
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(base, peak)
"""


def peak_rss_mib_of(setup: str, run: str, *, env: dict[str, str] | None = None,
                    argv: Sequence[str] = ()) -> tuple[float, float]:
    """Run ``setup`` then ``run`` in a fresh interpreter; ``(baseline RSS, peak RSS)`` in MiB.

    ``ru_maxrss`` (KiB on Linux) after ``setup`` is the baseline, so imports and
    test data made in ``setup`` are not charged to ``run``.
    """
    code = _RSS_CHILD.format(setup=setup, run=run)
    out = subprocess.run([sys.executable, "-c", code, *argv], check=True, capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, cwd=os.getcwd())
    base_kib, peak_kib = (int(x) for x in out.stdout.split()[-2:])
    return base_kib / 1024, peak_kib / 1024


def self_peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
