"""Distributed import on Dask (pyipld/distributed/): same roots and ``added`` events as one process.

Most tests share one in-process LocalCluster (``processes=False``: fast); one starts a real
two-process cluster and kills a worker mid-run. Trees hold small files, files split into many
tasks, HAMT-sharded directories, symlinks, hidden files and empty directories.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld.cli import main
from pyipld.errors import ConfigError
from pyipld.unixfs.cache import ImportCache
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.tree import AddedEntry, import_paths
from tests._peers import netns_missing, run_in_netns
from tests._recipes import kubo022_param_kwargs, load_vectors, materialise_vector_input

distributed = pytest.importorskip("distributed")

from tests._dask import inproc_client

pytest.importorskip("numpy")

from pyipld.distributed import commp_file_dask, dask_client, import_file_dask, import_paths_dask


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with inproc_client() as c:
        yield c


def make_tree(root: Path) -> Path:
    import random

    rnd = random.Random(7)
    d = root / "tree"
    (d / "a" / "b").mkdir(parents=True)
    (d / "shard").mkdir()
    (d / "empty").mkdir()
    for i in range(30):
        (d / "a" / f"small{i:02d}").write_bytes(rnd.randbytes(i * 37))
    for i in range(60):  # over the small HAMT threshold used below
        (d / "shard" / f"entry-{i:03d}-with-a-long-name").write_bytes(b"x" * i)
    (d / "a" / "b" / "big").write_bytes(rnd.randbytes(700_000) + b"\0" * 300_000 + rnd.randbytes(123_457))
    (d / "a" / "b" / "big2").write_bytes(rnd.randbytes(400_000))
    (d / ".hidden").write_bytes(b"secret")
    os.symlink("a/b/big", d / "link")
    return d


def _events(fn: Any, *args: Any, **kw: Any) -> tuple[str, list[tuple[bytes, str, int, str]]]:
    out: list[AddedEntry] = []
    res = fn(*args, on_added=out.append, **kw)
    return str(res.cid), [(e.path, str(e.cid), e.size, e.kind) for e in out]


TREE_PARAMS = [
    pytest.param(ImportParams(chunker="size-4096", max_links=5, hamt_threshold=500), id="v0-hamt"),
    pytest.param(ImportParams(cid_version=1, chunker="size-8192", max_links=3, hidden=True), id="v1-hidden"),
    pytest.param(ImportParams(chunker="buzhash", max_links=2, layout="trickle", preserve_mtime=True), id="buz-trickle"),
    pytest.param(ImportParams(chunker="rabin-16-4096-16384", max_links=4, hash="blake2b-256"), id="rabin-blake"),
    pytest.param(ImportParams.from_profile("unixfs-v1-2025", chunker="size-2048", max_links=4,
                                           hamt_threshold=900), id="profile-v1"),
]


@pytest.mark.parametrize("params", TREE_PARAMS)
def test_tree_equals_single_process(client: Any, tmp_path: Path, params: ImportParams) -> None:
    d = make_tree(tmp_path)
    want = _events(import_paths, [d], params)
    assert _events(import_paths_dask, [d], params, client, task_bytes=100_000) == want
    wrapped = _events(import_paths, [d / "a", d / "shard"], params, wrap=True)
    assert _events(import_paths_dask, [d / "a", d / "shard"], params, client, wrap=True, task_bytes=50_000) == wrapped
    top = (wrapped[0], [e for e in wrapped[1] if b"/" not in e[0]])  # report="top": what add -Q needs
    assert _events(import_paths_dask, [d / "a", d / "shard"], params, client, wrap=True, task_bytes=50_000,
                   report="top") == top


def test_single_file_and_current_client(client: Any, tmp_path: Path) -> None:
    d = make_tree(tmp_path)
    params = ImportParams(chunker="size-1000", max_links=7)
    want = import_paths([d / "a" / "b" / "big"], params)
    with client.as_current():
        got = import_file_dask(d / "a" / "b" / "big", params, task_bytes=10_000)
    assert (got.cid, got.tsize, got.size) == (want.cid, want.tsize, 1_123_457)


def _dir_cases() -> list[Any]:
    # The multi-thousand-entry HAMT vectors only repeat the tree importer's own work here (slow).
    return [pytest.param(v, id=v["name"], marks=[pytest.mark.slow] if (v.get("entry_count") or 0) > 1000 else [])
            for v in load_vectors("dirs")["vectors"] if "error" not in v and not v.get("slow")]


@pytest.mark.parametrize("vector", _dir_cases())
def test_kubo_dir_vectors(client: Any, tmp_path: Path, vector: dict[str, Any]) -> None:
    params = ImportParams(**kubo022_param_kwargs(vector["params"], directory=True))
    path = materialise_vector_input(vector, tmp_path)
    got = import_paths_dask([path], params, client, wrap=bool(vector.get("wrap")), task_bytes=4096)
    assert str(got.cid) == vector["cid"]


def test_cache_with_dask(client: Any, tmp_path: Path) -> None:
    d = make_tree(tmp_path)
    params = ImportParams(chunker="size-4096", max_links=5)
    want = _events(import_paths, [d], params)
    time.sleep(0.1)
    for run in range(3):
        with ImportCache(tmp_path / "c.db", racy_window_ns=50_000_000) as cache:
            assert _events(import_paths_dask, [d], params, client, cache=cache, task_bytes=100_000) == want
        time.sleep(0.1)
    assert cache.stats.hits == 92 and cache.stats.recorded == 0  # 30 + 60 + big + big2


def test_no_client_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ConfigError, match="no Dask client"):
        import_paths_dask([tmp_path / "f"])


def test_cli_dask_local(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = make_tree(tmp_path)
    argv = ["add", "-r", "--chunker", "size-65536", str(d)]
    assert main(argv) == 0
    cold = capsys.readouterr().out
    assert main([*argv, "--dask", "local", "-j", "2"]) == 0
    assert capsys.readouterr().out == cold
    assert main([*argv, "--dask", "local", "--car", str(tmp_path / "o.car")]) == 1
    assert capsys.readouterr().err.startswith("Error:")


@pytest.mark.timeout(400)
def test_real_processes_and_a_killed_worker(tmp_path: Path) -> None:
    """A scheduler and two worker processes (TCP on loopback, in a fresh network namespace):
    same events as one process, also when one worker is SIGKILLed mid-run."""
    why = netns_missing()
    if why:
        pytest.skip(why)
    proc = run_in_netns([sys.executable, "-m", "tests._dask_processes", str(tmp_path)], timeout=360)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("OK killed-worker"), proc.stdout


def test_dask_client_address_errors() -> None:
    with pytest.raises(ConfigError, match="cannot reach"), dask_client("tcp://127.0.0.1:1", timeout=1):
        pass


# -- CommP in aligned subtrees ------------------------------------------------------------------

@pytest.mark.parametrize("chunks,extra", [(0, 0), (0, 1), (0, 127), (1, -1), (1, 0), (1, 1), (3, 5), (8, 0), (9, 1)])
def test_commp_dask_equals_streaming(client: Any, tmp_path: Path, chunks: int, extra: int) -> None:
    import random

    from pyipld.filecoin.commp import CHUNK_BYTES, commp_file

    path = tmp_path / "f.car"
    path.write_bytes(random.Random(chunks * 1000 + extra).randbytes(max(0, chunks * CHUNK_BYTES + extra)))
    want = commp_file(path, jobs=1)
    for task in (CHUNK_BYTES, 2 * CHUNK_BYTES, 64 << 20):
        got = commp_file_dask(path, client, task_bytes=task)
        assert (got.commp, got.payload_size, got.padded_size) == (want.commp, want.payload_size, want.padded_size)
    big = want.padded_size * 4
    assert commp_file_dask(path, client, piece_size=big, task_bytes=CHUNK_BYTES) == commp_file(path, piece_size=big)


def test_push_chunk_roots_needs_a_boundary() -> None:
    from pyipld.filecoin.commp import CommP

    with CommP() as c:
        c.update(b"x")
        with pytest.raises(ValueError, match="boundary"):
            c.push_chunk_roots([b"\0" * 32])
    with CommP() as c, pytest.raises(ValueError, match="32 bytes"):
        c.push_chunk_roots([b"\0" * 31])


def test_cli_commp_dask(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import random

    from pyipld.filecoin.commp import CHUNK_BYTES

    path = tmp_path / "f.car"
    path.write_bytes(random.Random(4).randbytes(3 * CHUNK_BYTES + 999))
    assert main(["commp", "--json", str(path)]) == 0
    want = capsys.readouterr().out
    assert main(["commp", "--json", "--dask", "local", "-j", "2", str(path)]) == 0
    assert capsys.readouterr().out == want
    assert main(["commp", "-", "--dask", "local"]) == 1
    assert capsys.readouterr().err.startswith("Error:")


@settings(max_examples=12)
@given(
    sizes=st.lists(st.integers(0, 200_000), min_size=1, max_size=5),
    chunker=st.sampled_from(["size-1024", "size-7000", "buzhash", "rabin-16-256-4096"]),
    width=st.integers(2, 5),
    layout=st.sampled_from(["balanced", "trickle"]),
    cid_version=st.sampled_from([0, 1]),
    task_bytes=st.integers(5_000, 100_000),
    seed=st.integers(0, 2**32),
)
def test_dask_random_trees(client: Any, tmp_path_factory: pytest.TempPathFactory, sizes: list[int], chunker: str,
                           width: int, layout: Any, cid_version: int, task_bytes: int, seed: int) -> None:
    import random

    rnd = random.Random(seed)
    d = tmp_path_factory.mktemp("t")
    for i, n in enumerate(sizes):
        (d / f"f{i}").write_bytes(rnd.randbytes(n // 2) + b"\0" * (n - n // 2))
    params = ImportParams(chunker=chunker, max_links=width, layout=layout, cid_version=cid_version)
    assert _events(import_paths_dask, [d], params, client, task_bytes=task_bytes) == _events(import_paths, [d], params)


def test_bad_inputs_fail_like_one_process(client: Any, tmp_path: Path) -> None:
    from pyipld.errors import UnixFSError

    with pytest.raises(FileNotFoundError):
        import_paths([tmp_path / "missing"])
    with pytest.raises(FileNotFoundError):
        import_paths_dask([tmp_path / "missing"], client=client)
    d = tmp_path / "d"
    d.mkdir()
    (d / "ok").write_bytes(b"fine")
    os.mkfifo(d / "pipe")
    with pytest.raises(UnixFSError, match="unrecognized file type"):
        import_paths_dask([d], client=client)
    with pytest.raises(ConfigError):
        import_paths_dask([d], ImportParams(chunker="size-0"), client)


def test_rerun_after_change_on_the_same_client(client: Any, tmp_path: Path) -> None:
    """Tasks are not pure: a re-run with the same arguments after the file changed recomputes."""
    import random

    path = tmp_path / "f"
    params = ImportParams(chunker="size-4096", max_links=3)
    roots = set()
    for seed in range(3):
        path.write_bytes(random.Random(seed).randbytes(100_000))
        got = import_file_dask(path, params, client, task_bytes=20_000)
        assert got.cid == import_paths([path], params).cid
        roots.add(got.cid)
    assert len(roots) == 3


def test_cli_stdin_refused_with_dask_or_cache(capsys: pytest.CaptureFixture[str]) -> None:
    for flag in (["--dask", "local"], ["--cache", "c.db"]):
        assert main(["add", "-", *flag]) == 1
        assert "not stdin" in capsys.readouterr().err


def test_exclude_like_one_process(client: Any, tmp_path: Path) -> None:
    d = make_tree(tmp_path)
    params = ImportParams(chunker="size-4096", max_links=5)

    def exclude(name: bytes) -> bool:
        return name.endswith(b"3") or name == b"b"

    want = _events(import_paths, [d], params, exclude=exclude)
    assert _events(import_paths_dask, [d], params, client, exclude=exclude, task_bytes=50_000) == want
    assert not any(path.endswith(b"small03") for path, *_ in want[1])


def test_local_cluster_without_sampling_profiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``dask_client("local")`` starts its in-process worker without the 10 ms stack sampler
    (it holds the GIL the hashing threads need), unless the user's environment asks for it."""
    path = tmp_path / "f"
    path.write_bytes(os.urandom(3 << 20))
    monkeypatch.delenv("DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED", raising=False)
    with dask_client("local", workers=2) as client:
        got = import_paths_dask([path], ImportParams(chunker="size-4096"), client, task_bytes=1 << 20)
        client.submit(time.sleep, 1.2, pure=False).result()  # a sampler would count ~100 samples here
        assert client.profile().get("count", 0) == 0
        assert client.dashboard_link
    assert got.cid == import_paths([path], ImportParams(chunker="size-4096"), jobs=1).cid
