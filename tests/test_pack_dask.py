"""Distributed ``car pack`` (pyipld/filecoin/pack_parallel.py, pyipld.distributed.pack_dask):
the manifest and every CAR byte-identical to the single-process pack, every resume mix, errors.

Most tests use one in-process LocalCluster (``processes=False``) or a thread pool (the packer
is executor-agnostic); a slow one starts a real two-process cluster and kills a worker.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipld.cli import main
from pyipld.errors import ConfigError
from pyipld.filecoin.pack import MANIFEST_NAME, pack, reassemble
from pyipld.filecoin.pack_parallel import pack_parallel
from pyipld.unixfs.params import ImportParams
from tests._peers import netns_missing, run_in_netns

distributed = pytest.importorskip("distributed")

from pyipld.distributed import pack_dask
from tests._dask import inproc_client


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with inproc_client() as c:
        yield c


def make_tree(root: Path, seed: int = 3) -> Path:
    """Small and empty files, files larger than a piece, nested and empty directories, a symlink."""
    rnd = random.Random(seed)
    d = root / "data"
    for rel, size in {"big.bin": 150_000, "sub/a.txt": 5_000, "sub/deeper/b": 3, "empty": 0,
                      "z/medium": 20_000, "z/zeros": 0, "z/rep": 70_000}.items():
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rnd.randbytes(size) if rel != "z/rep" else b"\0" * size)  # z/rep: duplicate blocks
    for i in range(40):
        (d / "many" / f"f{i:02d}").parent.mkdir(exist_ok=True)
        (d / "many" / f"f{i:02d}").write_bytes(rnd.randbytes(rnd.randrange(0, 3000)))
    (d / "nothing" / "inner").mkdir(parents=True)
    os.symlink("big.bin", d / "link")
    return d


def outputs(out: Path) -> dict[str, bytes]:
    """Every file a pack left in OUTDIR (nothing hidden may remain either)."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


P_V0 = ImportParams(chunker="size-2048", max_links=8)
P_V1 = ImportParams(cid_version=1, chunker="size-4096", max_links=5)
CASES = [
    pytest.param(P_V0, 32 << 10, id="v0-32k"),
    pytest.param(P_V1, 64 << 10, id="v1-64k"),
    pytest.param(ImportParams(cid_version=1, chunker="size-1024", max_links=3, layout="trickle"), 32 << 10,
                 id="trickle-32k"),
    pytest.param(ImportParams(cid_version=1, chunker="rabin-512-1024-2048", max_links=4, hash="blake2b-256"),
                 64 << 10, id="rabin-blake"),
    pytest.param(ImportParams.from_profile("unixfs-v1-2025", chunker="size-2048", max_links=4, hamt_threshold=300),
                 32 << 10, id="profile-hamt"),
    pytest.param(ImportParams(cid_version=1, inline=True, inline_limit=64, chunker="size-2048"), 1 << 20,
                 id="inline-1m"),
]


@pytest.mark.parametrize("params,target", CASES)
def test_dask_equals_single_process(client: Any, tmp_path: Path, params: ImportParams, target: int) -> None:
    src = make_tree(tmp_path)
    single = pack([src], tmp_path / "one", target_size=target, params=params)
    got: list[dict[str, Any]] = []
    done = pack_dask([src], tmp_path / "dask", client, target_size=target, params=params, task_bytes=20_000,
                     on_car=got.append)
    assert outputs(tmp_path / "dask") == outputs(tmp_path / "one")
    assert done.manifest == single.manifest and got == single.manifest["cars"]
    assert (done.cars_written, done.files_imported, done.bytes_imported) == \
        (single.cars_written, single.files_imported, single.bytes_imported)
    if target < 1 << 20:
        assert len(got) >= 4
    reassemble(tmp_path / "dask", tmp_path / "back")
    assert (tmp_path / "back" / "data" / "big.bin").read_bytes() == (src / "big.bin").read_bytes()


@pytest.mark.parametrize("task_bytes,spool", [(1, 1), (10_000, 40_000), (1 << 30, None)])
def test_task_sizes_and_spool_limit_change_nothing(tmp_path: Path, task_bytes: int, spool: int | None) -> None:
    """One file per task, a spool budget below one task (the packer must still progress), one task."""
    src = make_tree(tmp_path)
    pack([src], tmp_path / "one", target_size=32 << 10, params=P_V0)
    seen: list[int] = []
    with ThreadPoolExecutor(3) as ex:
        pack_parallel([src], tmp_path / "par", ex, target_size=32 << 10, params=P_V0, task_bytes=task_bytes,
                      max_spool_bytes=spool, progress=seen.append)
    assert outputs(tmp_path / "par") == outputs(tmp_path / "one")
    assert sum(seen) == sum(p.stat().st_size for p in src.rglob("*") if p.is_file() and not p.is_symlink())


class _Spy:
    """An executor that counts submissions and can do something at submission ``at``."""

    def __init__(self, inner: Any, at: int = 0, hook: Callable[[], None] | None = None) -> None:
        self.inner, self.at, self.hook, self.n, self.names = inner, at, hook, 0, []

    def submit(self, fn: Any, *args: Any) -> Any:
        self.n += 1
        self.names.append(fn.__name__)
        if self.n == self.at and self.hook is not None:
            self.hook()
        return self.inner.submit(fn, *args)


@pytest.mark.parametrize("params,task_bytes", [
    (ImportParams(chunker="size-1024", max_links=3), 10_000),  # level-2 nodes per span
    (ImportParams(cid_version=1, chunker="size-2048", max_links=8, preserve_mtime=True), 4_000),  # leaves; meta
    (ImportParams(cid_version=1, chunker="size-4096", max_links=4), 30_000),
])
@pytest.mark.parametrize("target", [32 << 10, 1 << 20])
def test_large_files_are_imported_in_spans(tmp_path: Path, params: ImportParams, task_bytes: int,
                                           target: int) -> None:
    """A file of more than two tasks is imported by several span tasks and assembled by the
    coordinator; its items (sub-trees and spine) come from several spools. Same bytes."""
    src = make_tree(tmp_path)
    rnd = random.Random(4)
    (src / "huge").write_bytes(rnd.randbytes(300_001) + b"\0" * 200_000 + rnd.randbytes(77_777))
    pack([src], tmp_path / "one", target_size=target, params=params)
    seen: list[int] = []
    with ThreadPoolExecutor(3) as ex:
        spy = _Spy(ex)
        pack_parallel([src], tmp_path / "par", spy, target_size=target, params=params, task_bytes=task_bytes,
                      split_bytes=2 * task_bytes, progress=seen.append)
    assert outputs(tmp_path / "par") == outputs(tmp_path / "one")
    assert sum(seen) == sum(p.stat().st_size for p in src.rglob("*") if p.is_file() and not p.is_symlink())
    assert len(seen) > 50  # spans reported one by one
    assert spy.names.count("import_span") >= 6  # big.bin and huge, several spans each


def test_default_split_rule(tmp_path: Path) -> None:
    """By default only a file of more than two tasks and a quarter of the input is split."""
    src = make_tree(tmp_path)  # big.bin: 150,000 of about 330,000 bytes
    with ThreadPoolExecutor(2) as ex:
        spy = _Spy(ex)
        pack_parallel([src], tmp_path / "a", spy, target_size=32 << 10, params=P_V0, task_bytes=20_000)
        assert spy.names.count("import_span") >= 2
        spy = _Spy(ex)
        pack_parallel([src], tmp_path / "b", spy, target_size=32 << 10, params=P_V0, task_bytes=80_000)
        assert "import_span" not in spy.names  # 150,000 < 2 tasks
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")


def test_spools_are_bounded_and_removed(tmp_path: Path) -> None:
    """With a budget of about one piece, imports wait for writes; nothing is left in .pack-tmp."""
    src = tmp_path / "in"
    src.mkdir()
    rnd = random.Random(1)
    for i in range(30):
        (src / f"f{i:02d}").write_bytes(rnd.randbytes(9_000))
    spooled: list[int] = []

    def watch(_: dict[str, Any]) -> None:
        tmp = tmp_path / "par" / ".pack-tmp"
        spooled.append(sum(p.stat().st_size for p in tmp.rglob("spool-*") if not p.name.endswith(".idx")))

    with ThreadPoolExecutor(2) as ex:
        spy = _Spy(ex)
        pack_parallel([src], tmp_path / "par", spy, target_size=32 << 10, params=P_V1, task_bytes=9_000,
                      max_spool_bytes=40_000, on_car=watch)
    pack([src], tmp_path / "one", target_size=32 << 10, params=P_V1)
    assert outputs(tmp_path / "par") == outputs(tmp_path / "one")
    assert spy.names.count("import_batch") == 30 and spy.names.count("write_car_task") == len(spooled) >= 8
    assert max(spooled) <= 40_000 + 2 * 9_000 + 4_000  # budget + the tasks let through + spool index slack
    assert not (tmp_path / "par" / ".pack-tmp").exists()


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(0, 60_000), min_size=1, max_size=6), seed=st.integers(0, 10_000),
       task_bytes=st.integers(1, 80_000), target=st.sampled_from([32 << 10, 64 << 10]),
       chunker=st.sampled_from(["size-2048", "size-1000", "buzhash"]),
       split_bytes=st.one_of(st.none(), st.integers(0, 100_000)))
def test_parallel_equals_single_random(tmp_path_factory: pytest.TempPathFactory, sizes: list[int], seed: int,
                                       task_bytes: int, target: int, chunker: str, split_bytes: int | None) -> None:
    base = tmp_path_factory.mktemp("case")
    src = base / "in"
    src.mkdir()
    rnd = random.Random(seed)
    for i, size in enumerate(sizes):
        (src / f"f{i}").write_bytes(rnd.randbytes(size))
    params = ImportParams(cid_version=1, chunker=chunker, max_links=4)
    if chunker == "buzhash":  # 128-512 KiB chunks: the pieces must hold a leaf
        target = 1 << 20
    pack([src], base / "one", target_size=target, params=params)
    with ThreadPoolExecutor(2) as ex:
        pack_parallel([src], base / "par", ex, target_size=target, params=params, task_bytes=task_bytes,
                      split_bytes=split_bytes)
    assert outputs(base / "par") == outputs(base / "one")


# -- resume: every mix of interrupted and resuming runs ------------------------------------------

class _Stop(Exception):
    pass


def _stopper(after: int, seen: list[str]) -> Callable[[dict[str, Any]], None]:
    def on_car(entry: dict[str, Any]) -> None:
        seen.append(entry["name"])
        if len(seen) == after:
            raise _Stop
    return on_car


def _run(kind: str, client: Any, src: Path, out: Path, **kw: Any) -> Any:
    if kind == "dask":
        return pack_dask([src], out, client, target_size=32 << 10, params=P_V0, task_bytes=15_000, **kw)
    return pack([src], out, target_size=32 << 10, params=P_V0, **kw)


@pytest.mark.parametrize("first,second", [("dask", "dask"), ("dask", "one"), ("one", "dask")])
@pytest.mark.parametrize("stop_after", [1, 3, 6])
def test_interrupted_run_resumes(client: Any, tmp_path: Path, first: str, second: str, stop_after: int) -> None:
    src = make_tree(tmp_path)
    full = tmp_path / "full"
    pack([src], full, target_size=32 << 10, params=P_V0)
    ref = tmp_path / "ref"  # the single-process manifest at the same point
    with pytest.raises(_Stop):
        pack([src], ref, target_size=32 << 10, params=P_V0, on_car=_stopper(stop_after, []))
    out = tmp_path / "out"
    seen: list[str] = []
    with pytest.raises(_Stop):
        _run(first, client, src, out, on_car=_stopper(stop_after, seen))
    # The interrupted manifest is the single-process one, byte for byte (the same resume point).
    assert (out / MANIFEST_NAME).read_bytes() == (ref / MANIFEST_NAME).read_bytes()
    assert json.loads((out / MANIFEST_NAME).read_text())["complete"] is False
    kept = {name: (out / name).stat().st_mtime_ns for name in seen}
    again: list[str] = []
    result = _run(second, client, src, out, on_car=lambda e: again.append(e["name"]))
    assert result.cars_skipped == stop_after and not set(again) & set(seen)
    assert {name: (out / name).stat().st_mtime_ns for name in seen} == kept  # finished CARs not rewritten
    assert outputs(out) == outputs(full)


def test_resume_refuses_changed_inputs(client: Any, tmp_path: Path) -> None:
    src = make_tree(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(_Stop):
        _run("dask", client, src, out, on_car=_stopper(2, []))
    (src / "sub" / "a.txt").write_bytes(b"changed")
    with pytest.raises(ConfigError, match="another inputs"):
        _run("dask", client, src, out)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_bytes(b"x")
    with pytest.raises(ConfigError, match="not empty"):
        _run("dask", client, src, tmp_path / "other")


def test_file_changed_under_a_worker(client: Any, tmp_path: Path) -> None:
    """A file rewritten after the walk: the worker's check fails the run like one process would."""
    src = make_tree(tmp_path)
    victim = src / "z" / "medium"

    def rewrite() -> None:
        victim.write_bytes(b"shorter")

    spy = _Spy(client, at=1, hook=rewrite)
    with pytest.raises(ConfigError, match="changed while packing"):
        pack_parallel([src], tmp_path / "out", spy, target_size=32 << 10, params=P_V0, task_bytes=1 << 30)
    assert not (tmp_path / "out" / ".pack-tmp").exists()


def test_no_client_and_bad_arguments(tmp_path: Path) -> None:
    src = make_tree(tmp_path)
    with pytest.raises(ConfigError, match="no Dask client"):
        pack_dask([src], tmp_path / "o", target_size=32 << 10)
    with ThreadPoolExecutor(1) as ex:
        with pytest.raises(ConfigError, match="power of two"):
            pack_parallel([src], tmp_path / "o", ex, target_size=3000)
        with pytest.raises(ConfigError, match="task_bytes"):
            pack_parallel([src], tmp_path / "o", ex, target_size=32 << 10, task_bytes=0)


def test_current_client(client: Any, tmp_path: Path) -> None:
    src = make_tree(tmp_path)
    pack([src], tmp_path / "one", target_size=64 << 10, params=P_V1)
    with client.as_current():
        pack_dask([src], tmp_path / "dask", target_size=64 << 10, params=P_V1)
    assert outputs(tmp_path / "dask") == outputs(tmp_path / "one")


# -- CLI ------------------------------------------------------------------------------------------

def test_cli_dask_local(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_tree(tmp_path)
    argv = ["car", "pack", str(src), "--target-size", "32KiB", "-s", "size-2048", "--max-file-links", "8"]
    assert main([*argv, "-o", str(tmp_path / "one")]) == 0
    plain = capsys.readouterr().out
    assert main([*argv, "-o", str(tmp_path / "dask"), "--dask", "local", "-j", "2"]) == 0
    got = capsys.readouterr().out
    assert got.replace(str(tmp_path / "dask"), "OUT") == plain.replace(str(tmp_path / "one"), "OUT")
    assert outputs(tmp_path / "dask") == outputs(tmp_path / "one")


@pytest.mark.parametrize("address", ["bogus", "", "foo://x:1", "tcp://:port"])
def test_cli_bad_address_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], address: str) -> None:
    src = make_tree(tmp_path)
    out = tmp_path / "out"
    assert main(["car", "pack", str(src), "--target-size", "32KiB", "-o", str(out), "--dask", address]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: bad Dask scheduler address") and err.count("\n") == 1, err
    assert not out.exists()  # nothing created before the cluster is reached


@pytest.mark.parametrize("verb", [["add", "-r"], ["commp"]])
def test_bad_address_regression_other_verbs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            verb: list[str]) -> None:
    """``dask_client`` let distributed's ValueError for a malformed address escape as a traceback."""
    (tmp_path / "f").write_bytes(b"x" * 100)
    assert main([*verb, str(tmp_path / "f"), "--dask", "bogus"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: bad Dask scheduler address 'bogus'") and err.count("\n") == 1, err


def test_cli_unreachable_scheduler(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """distributed's connect timeout (what ``Client`` raises for a scheduler nobody answers at;
    tests/test_distributed.py reaches a real closed port) becomes one Error line."""
    def refuse(address: str, timeout: float) -> None:
        raise OSError(f"Timed out trying to connect to {address} after {timeout} s")

    monkeypatch.setattr(distributed, "Client", refuse)
    src = make_tree(tmp_path)
    argv = ["car", "pack", str(src), "--target-size", "32KiB", "-o", str(tmp_path / "o"), "--dask", "tcp://127.0.0.1:1"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: cannot reach the Dask scheduler at tcp://127.0.0.1:1") and err.count("\n") == 1


# -- SIGKILLed runs, real processes ---------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkilled_cli_runs_resume(tmp_path: Path) -> None:
    """``car pack --dask local`` SIGKILLed after 1, 4 and 12 CARs of its manifest (its in-process
    cluster dies with it), re-run each time: the end result equals one uninterrupted process."""
    import signal
    import subprocess
    import time

    src = make_tree(tmp_path)
    rnd = random.Random(9)
    for i in range(30):
        (src / "more" / f"m{i:02d}").parent.mkdir(exist_ok=True)
        (src / "more" / f"m{i:02d}").write_bytes(rnd.randbytes(rnd.randrange(10_000, 40_000)))
    flags = ["--target-size", "32KiB", "-s", "size-2048", "--max-file-links", "8"]
    pack([src], tmp_path / "one", target_size=32 << 10, params=P_V0)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "pyipld", "car", "pack", str(src), "-o", str(out), *flags, "--dask", "local",
            "-j", "2", "-q"]
    manifest = out / MANIFEST_NAME
    killed = 0
    for after in (1, 4, 12):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if len(json.loads(manifest.read_text())["cars"]) >= after:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.01)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.communicate(timeout=60)
        doc = json.loads(manifest.read_text())
        assert len(doc["cars"]) >= after and (doc["complete"] is False or len(doc["cars"]) == 56)
    assert killed >= 2  # the runs were stopped mid-way, not after they finished
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert outputs(out) == outputs(tmp_path / "one")


# -- a real multi-process cluster, one worker killed ----------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(400)
def test_real_processes_and_a_killed_worker(tmp_path: Path) -> None:
    why = netns_missing()
    if why:
        pytest.skip(why)
    proc = run_in_netns([sys.executable, "-m", "tests._dask_pack_processes", str(tmp_path)], timeout=360)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("OK pack killed-worker"), proc.stdout


@pytest.mark.parametrize("address", ["bogus", "tcp://host-without-port", "foo://h:1"])
def test_bad_address_never_starts_a_client(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    """A malformed address is refused before a Client exists: constructing one started an event loop
    for nothing, and distributed's global loop registry then failed an internal assertion when an
    earlier test's loop was still registered (a flaky traceback in the full suite)."""
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Client was constructed for a malformed address")

    monkeypatch.setattr(distributed, "Client", never)
    (tmp_path / "f").write_bytes(b"x")
    assert main(["add", "-r", str(tmp_path / "f"), "--dask", address]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: bad Dask scheduler address {address!r}") and err.count("\n") == 1, err
