"""Shared benchmark harness: interleaved timing against a baseline, JSON lines, peak memory.

Every case is timed as the minimum of ``repeat`` runs after one warm-up, with the
baseline (e.g. ``hashlib.sha256`` over the same bytes) run alternately in the same
process, so a busy machine slows both sides alike; ``ratio = t_case / t_baseline``.
Compare ratios, never raw seconds across runs (STYLE.md §9).
"""

from __future__ import annotations

import argparse
import functools
import gc
import hashlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MiB",
    "Timing",
    "bench_parser",
    "deterministic_file",
    "emit",
    "kubo_oracle",
    "peak_rss_mib_of",
    "time_interleaved",
    "traced_peak_mib",
]

MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[1]


def kubo_oracle() -> tuple[str, Path] | None:
    """(kubo venv python, kubo_oracle.py) for timing kubo itself, or None when either is absent.

    ``PYIPLD_KUBO_PYTHON`` (else ``.peers/kubo-venv`` made by scripts/setup-peers.sh) and
    ``PYIPLD_SHARED`` (else ``../shared`` beside the checkout): no fixed machine paths.
    """
    py = Path(os.environ.get("PYIPLD_KUBO_PYTHON") or ROOT / ".peers" / "kubo-venv" / "bin" / "python")
    oracle = Path(os.environ.get("PYIPLD_SHARED") or ROOT.parent / "shared") / "tools" / "kubo_oracle.py"
    return (str(py), oracle) if py.is_file() and oracle.is_file() else None


@dataclass
class Timing:
    seconds: float
    baseline: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.seconds / self.baseline if self.baseline > 0 else float("inf")


def time_interleaved(case: Callable[[], object], baseline: Callable[[], object], *, repeat: int = 5,
                     control: Callable[[], object] | None = None) -> Timing:
    """Min-of-``repeat`` seconds of ``case`` and ``baseline``, run alternately after a warm-up of each.

    ``control`` (optional) runs in the same rotation; its min seconds go to
    ``Timing.extra["control"]`` (e.g. plain hashlib on N threads beside a jobs=N case).
    """
    funcs = [baseline, case] + ([control] if control is not None else [])
    for fn in funcs:
        fn()
    best = [float("inf")] * len(funcs)
    for _ in range(max(repeat, 1)):
        gc.collect()
        for i, fn in enumerate(funcs):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    timing = Timing(best[1], best[0])
    if control is not None:
        timing.extra["control"] = best[2]
    return timing


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
    from tests._deterministic import chacha_stream

    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.writelines(chacha_stream(seed, size, read_size=MiB))
    os.replace(tmp, path)


def sha256_files(paths: Iterable[str | os.PathLike[str]]) -> None:
    """The one-thread baseline over several files: ``hashlib.sha256`` of each, 1 MiB reads."""
    for p in paths:
        h = hashlib.sha256()
        with open(p, "rb", buffering=0) as f:
            while block := f.read(MiB):
                h.update(block)
        h.digest()


def two_thread_sha256() -> None:
    """The two-core control: ``hashlib.sha256`` of 64 MiB on two threads at once; timed beside a
    one-thread run it shows the parallelism the machine offers right now."""
    payload = _control_bytes()
    threads = [threading.Thread(target=hashlib.sha256, args=(payload,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@functools.cache
def _control_bytes() -> bytes:
    return b"\x5a" * (64 << 20)


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
import gc, os, resource, sys

def _status(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None

{setup}
gc.collect()
base = _status("VmRSS")
try:  # reset the peak (VmHWM) to the current RSS: Linux clear_refs 5
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = True
except OSError:
    reset = False
if base is None or not reset:  # ru_maxrss survives exec, so it is only an upper bound
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
{run}
peak = _status("VmHWM") if reset else None
if peak is None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(base, peak)
"""


def peak_rss_mib_of(setup: str, run: str, *, env: dict[str, str] | None = None,
                    argv: Sequence[str] = ()) -> tuple[float, float]:
    """Run ``setup`` then ``run`` in a fresh interpreter; ``(baseline RSS, peak RSS)`` in MiB.

    The baseline is the RSS after ``setup`` (imports and warm-up are not charged
    to ``run``); the peak is ``VmHWM`` after resetting it through
    ``/proc/self/clear_refs`` (``ru_maxrss`` is inherited from the parent
    across fork+exec, so it cannot measure a child by itself).
    """
    code = _RSS_CHILD.format(setup=setup, run=run)
    out = subprocess.run([sys.executable, "-c", code, *argv], check=True, capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, cwd=os.getcwd())
    base_kib, peak_kib = (int(x) for x in out.stdout.split()[-2:])
    return base_kib / 1024, peak_kib / 1024


def self_peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
