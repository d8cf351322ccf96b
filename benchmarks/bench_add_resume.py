"""Cost and payoff of the resumable ``add -r --car`` (pyipld/car/resume.py), on many small files.

Cases (one JSON line each, STYLE.md §9):

* ``journal_overhead_tiny`` / ``_256k``: ``import_paths`` of a tree of N small files (20–120 B; and
  of M files of 256 KiB) into a resumable CAR
  (journal line per file) ÷ the same into the plain one-pass CAR writer (``baseline``),
  interleaved in one process; CPU-time ratio too (``cpu_ratio``), and ``journal_share``: the
  time spent inside the journal's own calls (lookup + record) ÷ the run, from one instrumented
  run — the figure load does not blur. ``control_2thread_sha256_s``: two threads hashing
  64 MiB each, timed in the same rotation (how loaded the machine was).
* ``resume_replay_tiny`` / ``_256k``: a re-run that finds every file in the journal (the run was killed
  just before the CAR was finished) ÷ a cold run (``baseline``): what resuming saves.

Run: ``python -m benchmarks.bench_add_resume [--files N] [--medium M] [--smoke]``.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._harness import bench_parser, emit, time_interleaved, two_thread_sha256
from benchmarks.bench_dirs import make_tree
from pyipld.car.resume import ResumableCar, open_resumable_car_sink
from pyipld.car.sink import open_car_sink, placeholder_root_for
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.tree import import_paths


class _Stop(Exception):
    pass


def _journal_share(run: Callable[[], None]) -> float:
    """Seconds inside ResumableCar.lookup/record ÷ the whole run (one instrumented run)."""
    spent = [0.0]
    saved = {name: getattr(ResumableCar, name) for name in ("lookup", "record")}

    def timed(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*a: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*a)
            finally:
                spent[0] += time.perf_counter() - t0
        return call

    try:
        for name, original in saved.items():
            setattr(ResumableCar, name, timed(original))
        t0 = time.perf_counter()
        run()
        return spent[0] / (time.perf_counter() - t0)
    finally:
        for name, original in saved.items():
            setattr(ResumableCar, name, original)


def _medium_tree(root: Path, files: int, size: int) -> int:
    root.mkdir(parents=True)
    for i in range(files):
        (root / f"m{i:05d}.bin").write_bytes(hashlib.shake_256(b"%d" % i).digest(size))
    return files * size


def measure(label: str, tree: Path, nbytes: int, files: int, repeat: int) -> None:
    """Both cases over one tree (see the module docstring); CAR files beside the tree."""
    base = tree.parent
    params = ImportParams()
    placeholder = [placeholder_root_for(params)]
    paths = [tree]
    plain_out, resumable_out = base / f"plain-{label}.car", base / f"resumable-{label}.car"

    def plain() -> None:
        with open_car_sink(plain_out, 1, params=params) as car:
            car.set_roots([import_paths(paths, params, car).cid])

    def journaled() -> None:
        with open_resumable_car_sink(resumable_out, 1, key="bench", placeholder_roots=placeholder) as car:
            car.set_roots([import_paths(paths, params, car, journal=car).cid])

    timing = time_interleaved(journaled, plain, repeat=repeat, control=two_thread_sha256)
    assert plain_out.read_bytes() == resumable_out.read_bytes()
    cpu = {plain: float("inf"), journaled: float("inf")}
    for _ in range(max(repeat, 1)):
        for fn in (plain, journaled):
            t0 = time.process_time()
            fn()
            cpu[fn] = min(cpu[fn], time.process_time() - t0)
    emit(f"journal_overhead_{label}", nbytes, timing, files=files, files_per_s=round(files / timing.seconds),
         cpu_ratio=round(cpu[journaled] / cpu[plain], 4), journal_share=round(_journal_share(journaled), 4),
         control_2thread_sha256_s=round(timing.extra["control"], 4), note="under load from other jobs")

    # A leftover with every file journaled: the run stopped just before set_roots.
    with contextlib.suppress(_Stop), open_resumable_car_sink(resumable_out, 1, key="bench",
                                                             placeholder_roots=placeholder) as car:
        import_paths(paths, params, car, journal=car)
        raise _Stop
    saved = base / f"saved-{label}"
    saved.mkdir()
    for p in base.glob(f".resumable-{label}.car.*"):
        shutil.copy2(p, saved / p.name)
    best_resume = best_cold = float("inf")
    skipped = 0
    for _ in range(max(repeat, 1)):
        for p in saved.iterdir():
            shutil.copy2(p, base / p.name)
        t0 = time.perf_counter()
        with open_resumable_car_sink(resumable_out, 1, key="bench", placeholder_roots=placeholder) as car:
            car.set_roots([import_paths(paths, params, car, journal=car).cid])
        best_resume = min(best_resume, time.perf_counter() - t0)
        skipped = car.stats.files_skipped
        t0 = time.perf_counter()
        plain()
        best_cold = min(best_cold, time.perf_counter() - t0)
    assert plain_out.read_bytes() == resumable_out.read_bytes() and skipped == files
    emit(f"resume_replay_{label}", nbytes, type(timing)(best_resume, best_cold), files=files,
         files_skipped=skipped, note="under load from other jobs")


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000, help="tiny files (20-120 B)")
    parser.add_argument("--medium", type=int, default=400, help="files of 256 KiB")
    args = parser.parse_args()
    files = 300 if args.smoke else args.files
    medium = 8 if args.smoke else args.medium
    repeat = 1 if args.smoke else args.repeat
    with tempfile.TemporaryDirectory(prefix="bench-resume-") as tmp:
        base = Path(tmp)
        tiny_bytes = make_tree(base / "tiny" / "tree", files, 1000)
        medium_bytes = _medium_tree(base / "medium" / "tree", medium, 256 << 10)
        time.sleep(2.1)  # older than the racy window, as a real dataset is: journal lines are trusted
        measure("tiny", base / "tiny" / "tree", tiny_bytes, files, repeat)
        measure("256k", base / "medium" / "tree", medium_bytes, medium, repeat)


if __name__ == "__main__":
    main()
