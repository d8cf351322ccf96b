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
* ``small_files`` (issue 14): a tree of S files of 1–64 KiB (500 per directory), or an existing
  tree (``--tree DIR``), imported by **whole CLI processes** as users run them — ``add -r -Q -n``
  with ``--jobs 1`` and the default jobs, ``add -r -Q --car OUT``, and ``add -r -Q -n --cache DB``
  cold (a new cache) and warm (unchanged tree, cache recorded > 2 s earlier: nothing racy) — in
  rounds interleaved with a one-thread sha256 process over the same files (the baseline) and a
  two-thread one (the control: what the second core gives in that round). Per command: medians
  over the rounds of ``x_sha256`` (t_baseline ÷ t_command, same round), ``files_per_s``,
  ``cpu_over_sha256`` (the process's CPU seconds ÷ the baseline's, same round: steadier than wall
  time on a loaded machine; > 1 for threads that overlap) and peak RSS (``ru_maxrss`` of the process); ``warm ÷ cold`` for the cache; ``--before CHECKOUT``
  runs the same commands from another checkout (the old code) in the same rounds; the load
  average before and after; ``kubo/add -r -n``: kubo 0.22's only-hash add (node start excluded).

Run: ``python -m benchmarks.bench_dirs [--files N] [--flat N] [--entries M] [--small S] [--tree DIR]
[--before CHECKOUT] [--only small] [--smoke]``.
"""

from __future__ import annotations

import cProfile
import hashlib
import json
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._harness import bench_parser, emit, kubo_oracle, time_interleaved, traced_peak_mib
from benchmarks.bench_cli import _run
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


SHA_FILES = """
import hashlib, os, sys, threading
def walk(root):
    stack = [os.fsencode(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif e.is_file(follow_symlinks=False):
                    yield e.path
def work(paths):
    b = bytearray(1 << 20); m = memoryview(b)
    for p in paths:
        h = hashlib.sha256()
        with open(p, "rb", buffering=0) as f:
            while n := f.readinto(b):
                h.update(m[:n])
paths = sorted(walk(sys.argv[1])); threads = int(sys.argv[2])
ts = [threading.Thread(target=work, args=(paths[i::threads],)) for i in range(threads)]
[t.start() for t in ts]; [t.join() for t in ts]
"""


def make_small_files(root: Path, files: int, per_dir: int = 500, seed: int = 14, kib: tuple[int, int] = (1, 64)) -> int:
    """``files`` files of ``kib`` KiB (uniform) of random bytes, ``per_dir`` per directory; returns total bytes."""
    rnd = random.Random(seed)
    total = 0
    for i in range(files):
        d = root / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        size = rnd.randint(kib[0] << 10, kib[1] << 10)
        (d / f"f{i:06d}.bin").write_bytes(rnd.randbytes(size))
        total += size
    return total


def count_files(root: Path) -> tuple[int, int]:
    """Regular files (not hidden) under ``root`` and their bytes."""
    n = nbytes = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            if not name.startswith(".") and os.path.isfile(path) and not os.path.islink(path):
                n += 1
                nbytes += os.lstat(path).st_size
    return n, nbytes


def bench_small_files(case: str, root: Path, rounds: int, before: str | None, with_kubo: bool) -> None:
    """Whole CLI processes over a tree of small files ÷ a one-thread sha256 process (see the docstring)."""
    nfiles, nbytes = count_files(root)
    py = sys.executable
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    work = Path(tempfile.mkdtemp(prefix="pyipld-bench-small-"))
    car, cold_db, warm_db = str(work / "out.car"), str(work / "cold.db"), str(work / "warm.db")
    cli = [py, "-m", "pyipld", "add", "-r", "-Q"]
    cases: dict[str, list[str]] = {
        "baseline/sha256-1-thread": [py, "-c", SHA_FILES, str(root), "1"],
        "control/sha256-2-threads": [py, "-c", SHA_FILES, str(root), "2"],
        "interpreter/python -c pass": [py, "-c", "pass"],
        "add -r -Q -n --jobs 1": [*cli, "-n", "--jobs", "1", str(root)],
        "add -r -Q -n": [*cli, "-n", str(root)],
        "add -r -Q --car OUT": [*cli, "--no-resume", "--car", car, str(root)],
        "add -r -Q -n --cache (cold)": [*cli, "-n", "--cache", cold_db, str(root)],
        "add -r -Q -n --cache (warm)": [*cli, "-n", "--cache", warm_db, str(root)],
    }
    cwds: dict[str, str | None] = dict.fromkeys(cases)
    if before:  # `python -m pyipld` imports the package from its working directory first
        for name in [n for n in cases if n.startswith("add")]:
            cases[f"before/{name}"] = [*cases[name][:-2], cases[name][-2].replace(".", ".before.", 1)
                                       if name.endswith("(warm)") else cases[name][-2], cases[name][-1]]
            cwds[f"before/{name}"] = before
    warm_dbs = [argv[-2] for name, argv in cases.items() if name.endswith("(warm)")]

    def clean() -> None:
        for path in (car, cold_db):
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(path + suffix):
                    os.unlink(path + suffix)

    load_before = os.getloadavg()
    for name, argv in cases.items():  # warm-up: page cache, .pyc files; records the warm caches
        clean()
        _run(argv, env, cwds[name])
    if warm_dbs:
        time.sleep(2.1)  # every stamp leaves the racy window before the warm caches are trusted
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, argv in cases.items():
            clean()
            runs[name].append(_run(argv, env, cwds[name]))
    clean()
    shutil.rmtree(work, ignore_errors=True)
    base_runs = runs["baseline/sha256-1-thread"]
    base = [r[0] for r in base_runs]
    for name, samples in runs.items():
        walls = [r[0] for r in samples]
        x = [b / t for b, t in zip(base, walls, strict=True)]
        med = statistics.median(walls)
        row = {"case": f"{case}: {name}", "files": nfiles, "bytes": nbytes, "rounds": rounds,
               "seconds_median": round(med, 3), "cpu_s_median": round(statistics.median(r[1] for r in samples), 3),
               "files_per_s": round(nfiles / med), "x_sha256": round(statistics.median(x), 3),
               "x_sha256_range": [round(min(x), 3), round(max(x), 3)],
               "cpu_over_sha256": round(statistics.median(r[1] / b[1] for r, b in zip(samples, base_runs, strict=True)),
                                        3),
               "peak_rss_mib": round(max(r[2] for r in samples), 1)}
        if name.endswith("(warm)"):
            cold = [r[0] for r in runs[name.replace("(warm)", "(cold)")]]
            ratios = [w / c for w, c in zip(walls, cold, strict=True)]
            row["warm_over_cold"] = round(statistics.median(ratios), 3)
            plain = [r[0] for r in runs[name.replace(" --cache (warm)", "")]]
            row["warm_over_plain"] = round(statistics.median(w / c for w, c in zip(walls, plain, strict=True)), 3)
        print(json.dumps(row), flush=True)
    print(json.dumps({"case": f"{case}: load", "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
                      "cores": os.cpu_count()}), flush=True)
    if with_kubo:
        got = kubo_seconds(root)
        if got is not None:
            k, kubo_cid = got
            # The oracle's add includes hidden files (its wrapper's SerialFile), hence --hidden here.
            ours = subprocess.run([*cli, "-n", "--hidden", str(root)], capture_output=True, text=True, check=True,
                                  env=env)
            print(json.dumps({"case": f"{case}: kubo/add -r -n", "files": nfiles, "seconds": round(k, 3),
                              "files_per_s": round(nfiles / k), "x_sha256": round(statistics.median(base) / k, 3),
                              "cid": kubo_cid, "same_cid": ours.stdout.strip() == kubo_cid,
                              "note": "kubo in-process, node start excluded"}), flush=True)


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--flat", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=20_000, help="files of 1-64 KiB for the small_files case")
    parser.add_argument("--small-kib", default="1-64", help="small_files: file sizes in KiB, LO-HI")
    parser.add_argument("--tree", default=None, help="also time the small_files commands on this existing tree")
    parser.add_argument("--before", metavar="CHECKOUT", default=None,
                        help="small_files: also run the commands from another checkout in the same rounds")
    parser.add_argument("--no-kubo", action="store_true")
    parser.add_argument("--only", choices=("tree", "flat", "builder", "small"), action="append",
                        help="run only these cases (repeatable)")
    args = parser.parse_args()
    if args.smoke:
        args.files, args.flat, args.entries, args.repeat, args.no_kubo = 300, 400, 5000, 1, True
        args.small = 200
    only = set(args.only or ("tree", "flat", "builder", "small"))
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
            shutil.rmtree(flat)
        if "small" in only:
            small = tmp / "small"
            lo, hi = (int(x) for x in args.small_kib.split("-"))
            make_small_files(small, args.small, kib=(lo, hi))
            bench_small_files(f"small_files {args.small} x {lo}-{hi} KiB", small, args.repeat, args.before,
                              not args.no_kubo)
            shutil.rmtree(small)
        if args.tree:
            bench_small_files(f"tree {Path(args.tree).name}", Path(args.tree), args.repeat, args.before,
                              not args.no_kubo)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if "builder" in only:
        bench_builder_memory(args.entries)


if __name__ == "__main__":
    main()
