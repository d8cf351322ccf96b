"""The command line as users run it: whole ``pyipld`` processes ÷ a one-thread sha256 process.

Every round runs, in a fresh interpreter each and in the same rotation (so a busy
machine slows them alike; every other round in reverse order, so that no case always
follows the same neighbour):

* ``baseline`` — ``python -c`` one-thread ``hashlib.sha256`` over the file in 1 MiB
  ``readinto`` reads (interpreter start included, like the commands);
* ``control/copy-1-thread`` — the same reads written to a new file beside the CAR: the I/O
  floor of ``add --car`` (whose row also gives ``x_copy`` = t_copy ÷ t_case, per round);
* ``ceiling`` — the same on two threads (each its own half of the file): the
  parallelism the machine offers in that round, the control for every two-core figure;
* ``interpreter`` — ``python -c pass``: the RSS floor the memory figures are above;
* the commands: ``add -Q -n FILE`` (kubo defaults), ``add -Q -n -s buzhash FILE``,
  ``add -Q --cid-version 1 --car OUT FILE``, ``car verify OUT``, ``commp FILE``, and
  ``add -Q -n FILE`` with ``PYIPLD_MMAP=1`` (the opt-in mapped path: views of 8 MiB windows
  hashed on the threads, no read copy, but SIGBUS if the file is truncated) beside the default
  private-read path.

Each row reports, as medians over the rounds: ``x_sha256`` = t_baseline / t_case (the
command's throughput as a multiple of one-thread sha256; the issue's goals are in this
unit), ``cpu_x_sha256`` = CPU-seconds of the baseline / CPU-seconds of the command (user
+ system of the child, all threads: how much work it burns per byte, which load does
not change much), and ``rss_above_interp_mib`` (``ru_maxrss`` of the child from
``wait4`` minus the interpreter's). ``kubo/...`` rows time kubo 0.22's own in-process
only-hash add of the same file (the oracle's ``bench``; node start excluded) when
``PYIPLD_KUBO_PYTHON`` and ``shared/tools/kubo_oracle.py`` are found.

Children run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed) and after a
warm-up run, as an installed ``pyipld`` would: without ``.pyc`` files the start-up alone
compiles ~70 modules.

Run: ``python -m benchmarks.bench_cli [--smoke] [--size-mib 1024] [--rounds 5] [--dir DIR]``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._harness import MiB, bench_parser, deterministic_file

SHA_ONE = """
import hashlib, sys
h = hashlib.sha256(); b = bytearray(1 << 20); m = memoryview(b)
with open(sys.argv[1], "rb", buffering=0) as f:
    while n := f.readinto(b):
        h.update(m[:n])
"""

SHA_TWO = """
import hashlib, os, sys, threading
path = sys.argv[1]; size = os.path.getsize(path); half = (size // 2) >> 20 << 20
def work(lo, hi):
    h = hashlib.sha256(); b = bytearray(1 << 20); m = memoryview(b); fd = os.open(path, os.O_RDONLY)
    while lo < hi:
        n = os.preadv(fd, [m[:min(1 << 20, hi - lo)]], lo); h.update(m[:n]); lo += n
    os.close(fd)
ts = [threading.Thread(target=work, args=r) for r in ((0, half), (half, size))]
[t.start() for t in ts]; [t.join() for t in ts]
"""


COPY = """
import sys
b = bytearray(1 << 20); m = memoryview(b)
with open(sys.argv[1], "rb", buffering=0) as f, open(sys.argv[2], "wb", buffering=0) as out:
    while n := f.readinto(b):
        out.write(m[:n])
"""


def _run(argv: list[str], env: dict[str, str], cwd: str | None = None) -> tuple[float, float, float]:
    """(wall s, cpu s, maxrss MiB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} failed ({proc.returncode}): {err[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _kubo(path: str, repeat: int, flags: list[str]) -> dict[str, object] | None:
    kubo_py = os.environ.get("PYIPLD_KUBO_PYTHON")
    here = Path(__file__).resolve().parents[1]
    oracle = None
    for base in (os.environ.get("PYIPLD_SHARED"), here.parent / "shared"):
        if base and (Path(base) / "tools" / "kubo_oracle.py").exists():
            oracle = Path(base) / "tools" / "kubo_oracle.py"
    if not kubo_py or not Path(kubo_py).exists() or oracle is None:
        return None
    try:
        out = subprocess.run([kubo_py, str(oracle), "bench", path, "--repeat", str(repeat), *flags],
                             check=True, capture_output=True, text=True, timeout=1800)
    except (subprocess.SubprocessError, OSError) as exc:
        return {"skipped": f"kubo oracle failed: {exc}"}
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians are reported)")
    parser.add_argument("--dir", default=None, help="where the input and the CAR go (default: a temp dir)")
    parser.add_argument("--no-kubo", action="store_true")
    parser.add_argument("--only", action="append", help="run only these command names (repeatable)")
    parser.add_argument("--before", metavar="CHECKOUT", default=None,
                        help="also run every command from another checkout (e.g. a worktree of the old code) "
                             "in the same rounds, as before/<name>")
    args = parser.parse_args(argv)
    size = 8 * MiB if args.smoke else args.size_mib * MiB
    rounds = 1 if args.smoke else args.rounds
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    py = sys.executable
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="pyipld-bench-cli-") as tmp:
        path = str(Path(args.dir or tmp) / f"bench-cli-{size >> 20}MiB.bin")
        deterministic_file(path, size)
        car = str(Path(tmp) / "out.car")
        copy = str(Path(tmp) / "copy.bin")
        cli = [py, "-m", "pyipld"]
        cases: dict[str, list[str]] = {
            "baseline/sha256-1-thread": [py, "-c", SHA_ONE, path],
            "ceiling/sha256-2-threads": [py, "-c", SHA_TWO, path],
            "interpreter": [py, "-c", "pass"],
            "control/copy-1-thread": [py, "-c", COPY, path, copy],
            "add -Q -n": [*cli, "add", "-Q", "-n", path],
            "add -Q -n -s buzhash": [*cli, "add", "-Q", "-n", "-s", "buzhash", path],
            "add -Q --cid-version 1 --car OUT": [*cli, "add", "-Q", "--cid-version", "1", "--car", car, path],
            "car verify OUT": [*cli, "car", "verify", car],
            "add -Q -n (PYIPLD_MMAP=1)": [*cli, "add", "-Q", "-n", path],
            "commp": [*cli, "commp", path],
        }
        if args.only:
            keep = set(args.only) | {"baseline/sha256-1-thread", "ceiling/sha256-2-threads", "interpreter",
                                     "control/copy-1-thread"}
            if "car verify OUT" in keep:
                keep.add("add -Q --cid-version 1 --car OUT")
            cases = {k: v for k, v in cases.items() if k in keep}
        cwds: dict[str, str | None] = {name: None for name in cases}
        envs = {name: {**env, "PYIPLD_MMAP": "1"} if "PYIPLD_MMAP=1" in name else env for name in cases}
        if args.before:  # `python -m pyipld` imports the package from its working directory first
            for name in [n for n in cases if n.startswith(("add", "car", "commp")) and "MMAP" not in n]:
                cases[f"before/{name}"] = cases[name]
                cwds[f"before/{name}"] = args.before
                envs[f"before/{name}"] = envs[name]
        for name, argv_ in cases.items():  # warm-up: page cache, .pyc files, numba's cache
            _run(argv_, envs[name], cwds[name])
        runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cases}
        for round_ in range(rounds):
            # every other round backwards: a case does not always follow (and pay for the unlink
            # of) the same neighbour's 1 GiB output, e.g. before/X right after X
            order = list(cases.items()) if round_ % 2 == 0 else list(cases.items())[::-1]
            for name, argv_ in order:
                written = car if "--car" in argv_ else copy if copy in argv_ else None
                if written is not None and os.path.exists(written):
                    os.unlink(written)  # a new file, as users write (replacing one costs its unlink)
                runs[name].append(_run(argv_, envs[name], cwds[name]))
        base = runs["baseline/sha256-1-thread"]
        interp_rss = statistics.median(r[2] for r in runs["interpreter"])
        for name, samples in runs.items():
            x_wall = [b[0] / s[0] for b, s in zip(base, samples)]  # per round: same moment
            x_cpu = [b[1] / s[1] for b, s in zip(base, samples)]
            row = {"case": name, "bytes": size, "rounds": rounds,
                   "seconds_median": round(statistics.median(s[0] for s in samples), 4),
                   "cpu_seconds_median": round(statistics.median(s[1] for s in samples), 4),
                   "x_sha256": round(statistics.median(x_wall), 3),
                   "x_sha256_range": [round(min(x_wall), 3), round(max(x_wall), 3)],
                   "cpu_x_sha256": round(statistics.median(x_cpu), 3),
                   "peak_rss_mib": round(max(s[2] for s in samples), 1),
                   "rss_above_interp_mib": round(max(s[2] for s in samples) - interp_rss, 1)}
            if "--car" in cases[name]:  # the I/O floor: copying the file (read + write, no hashing), same round
                row["x_copy"] = round(statistics.median(
                    c[0] / s[0] for c, s in zip(runs["control/copy-1-thread"], samples)), 3)
            print(json.dumps(row), flush=True)
        if not args.no_kubo:
            base_s = statistics.median(b[0] for b in base)
            for name, flags in (("kubo/add -n", []), ("kubo/add -n -s buzhash", ["--chunker", "buzhash"])):
                result = _kubo(path, 1 if args.smoke else 3, flags)
                if result is None:
                    print(json.dumps({"case": name, "skipped": "no PYIPLD_KUBO_PYTHON or shared/tools/kubo_oracle.py"}))
                elif "skipped" in result:
                    print(json.dumps({"case": name, **result}))
                else:
                    med = float(result["median_s"])  # type: ignore[arg-type]
                    print(json.dumps({"case": name, "bytes": size, "seconds_median": med, "cid": result["cid"],
                                      "x_sha256": round(base_s / med, 3),
                                      "note": "kubo in-process (node start excluded) ÷ this run's baseline median"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
