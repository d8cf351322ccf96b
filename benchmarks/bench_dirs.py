"""Directory import speed and memory: ``add -r --only-hash`` of many small files.

Cases (one JSON line each, STYLE.md §9):

* ``tree_only_hash``: a tree of N small files (1000 per sub-directory), kubo defaults.
* ``flat_only_hash``: one directory of N entries (a HAMT under kubo's defaults).
  For both: ``files_per_s``; ``baseline`` = walking the same tree and sha256-ing every file
  (the least any importer must do), run interleaved; ``kubo_seconds`` / ``kubo_ratio``
  (pyipld ÷ kubo) when the kubo 0.22 oracle venv exists (its ``bench`` times the only-hash
  add without the node start-up); the top functions of a cProfile run (``profile``).
* ``builder_memory``: a directory of M synthetic entries (name, CID, Tsize — no files on
  disk) built with :class:`DirectoryBuilder` into a HAMT: tracemalloc peak, bytes per entry.

Run: ``python -m benchmarks.bench_dirs [--files N] [--flat N] [--entries M] [--smoke]``.
"""

from __future__ import annotations

import cProfile
import hashlib
import json
import os
import pstats
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks._harness import bench_parser, emit, kubo_oracle, time_interleaved, traced_peak_mib
from pyipld.blockstore import NullSink
from pyipld.unixfs.directory import DirectoryBuilder
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.tree import import_paths


def make_tree(root: Path, files: int, per_dir: int) -> int:
    """``files`` small files (20–120 bytes), ``per_dir`` per sub-directory; returns total bytes."""
    total = 0
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        d = root / f"d{i // per_dir:05d}" if per_dir < files else root
        if i % per_dir == 0:
            d.mkdir(exist_ok=True)
        data = (f"file {i} " * (2 + i % 13)).encode()
        (d / f"f{i:07d}.txt").write_bytes(data)
        total += len(data)
    return total


def walk_and_hash(root: Path) -> int:
    """Baseline: visit every file and sha256 it."""
    n = 0
    stack = [os.fsencode(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                else:
                    with open(e.path, "rb") as f:
                        hashlib.sha256(f.read()).digest()
                    n += 1
    return n


def kubo_seconds(path: Path) -> tuple[float, str] | None:
    """kubo 0.22's only-hash add time (node start excluded) and root CID, or None."""
    found = kubo_oracle()
    if found is None:
        return None
    try:
        out = subprocess.run([found[0], str(found[1]), "bench", "--repeat", "1", str(path)],
                             capture_output=True, text=True, timeout=3600, check=True)
    except (subprocess.SubprocessError, OSError):
        return None
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            return float(row["median_s"]), str(row["cid"])
    return None


def profile_top(fn: object, n: int = 8) -> list[str]:
    prof = cProfile.Profile()
    prof.runcall(fn)  # type: ignore[arg-type]
    stats = pstats.Stats(prof)
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:n]  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.stats.values()) or 1.0  # type: ignore[attr-defined]
    return [f"{func[2]} ({Path(func[0]).name}:{func[1]}) {v[2] / total:.0%}" for func, v in rows]


def bench_tree(case: str, root: Path, nfiles: int, nbytes: int, repeat: int, with_kubo: bool) -> None:
    params = ImportParams()
    result: list[str] = []

    def run() -> None:
        result.append(str(import_paths([root], params, NullSink(), jobs=1).cid))

    timing = time_interleaved(run, lambda: walk_and_hash(root), repeat=repeat)
    extra: dict[str, object] = {"files": nfiles, "files_per_s": round(nfiles / timing.seconds),
                                "cid": result[-1]}
    if with_kubo:
        got = kubo_seconds(root)
        if got is not None:
            k, kubo_cid = got
            extra.update(kubo_seconds=round(k, 3), kubo_ratio=round(timing.seconds / k, 3),
                         kubo_files_per_s=round(nfiles / k), same_cid_as_kubo=kubo_cid == result[-1])
    extra["profile"] = profile_top(run)
    emit(case, nbytes, timing, **extra)


def bench_builder_memory(entries: int) -> None:
    params = ImportParams()
    builder_cids = params.resolve().cid_builder

    def build() -> None:
        b = DirectoryBuilder(params, builder_cids)
        for i in range(entries):
            b.add(b"entry-%09d.dat" % i, b"\x12\x20" + hashlib.sha256(i.to_bytes(8, "big")).digest(), 1000 + i % 977)
        b.finish(NullSink())

    t0 = time.perf_counter()
    build()
    seconds = time.perf_counter() - t0
    peak = traced_peak_mib(build)
    emit("builder_memory", 0, None, entries=entries, seconds=round(seconds, 3),
         entries_per_s=round(entries / seconds), traced_peak_mib=round(peak, 1),
         bytes_per_entry=round(peak * (1 << 20) / entries))


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--flat", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--no-kubo", action="store_true")
    parser.add_argument("--only", choices=("tree", "flat", "builder"), action="append",
                        help="run only these cases (repeatable)")
    args = parser.parse_args()
    if args.smoke:
        args.files, args.flat, args.entries, args.repeat, args.no_kubo = 300, 400, 5000, 1, True
    only = set(args.only or ("tree", "flat", "builder"))
    tmp = Path(tempfile.mkdtemp(prefix="pyipld-bench-dirs-"))
    try:
        if "tree" in only:
            tree = tmp / "tree"
            nbytes = make_tree(tree, args.files, 1000)
            bench_tree("tree_only_hash", tree, args.files, nbytes, args.repeat, not args.no_kubo)
            shutil.rmtree(tree)
        if "flat" in only:
            flat = tmp / "flat"
            nbytes = make_tree(flat, args.flat, args.flat)
            bench_tree("flat_only_hash", flat, args.flat, nbytes, args.repeat, not args.no_kubo)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if "builder" in only:
        bench_builder_memory(args.entries)


if __name__ == "__main__":
    main()
