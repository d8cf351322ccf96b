"""ipfs:// across threads, forks (DataLoader-style workers), spawned processes and pickles."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import random
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fsspec")

from pyipld.errors import BlockUnavailableError
from pyipld.fs import IPFSFileSystem

from ._deterministic import chacha_bytes
from ._fs import build_car

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    base = tmp_path_factory.mktemp("par")
    src = base / "src"
    src.mkdir()
    for i in range(8):
        (src / f"f{i}.bin").write_bytes(chacha_bytes(f"par-{i}", 200_000 + 37_000 * i))
    car = base / "par.car"
    return src, build_car(src, car), car


def _check_all(fs: IPFSFileSystem, root: str, src: Path, seed: int) -> int:
    rng = random.Random(seed)
    n = 0
    for _ in range(40):
        i = rng.randrange(8)
        want = (src / f"f{i}.bin").read_bytes()
        a = rng.randrange(len(want))
        b = min(len(want), a + rng.randrange(1, 300_000))
        assert fs.cat_file(f"{root}/f{i}.bin", a, b) == want[a:b]
        n += 1
    return n


def test_threads_read_concurrently(files: tuple[Path, str, Path]) -> None:
    src, root, car = files
    fs = IPFSFileSystem(cars=[str(car)], use_env=False, memory_cache=1 << 20, skip_instance_cache=True)
    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(lambda s: _check_all(fs, root, src, s), range(16))) == 16 * 40
    fs.close()


_FORKED: IPFSFileSystem | None = None


def _child_read(args: tuple[str, str, int]) -> tuple[int, int, int]:
    root, src, seed = args
    assert _FORKED is not None
    state_pid = _FORKED._st().pid
    return os.getpid(), state_pid, _check_all(_FORKED, root, Path(src), seed)


@pytest.mark.skipif(sys.platform == "win32", reason="needs fork")
def test_fork_children_reopen_their_own_handles(files: tuple[Path, str, Path]) -> None:
    """The PyTorch DataLoader pattern: a filesystem opened (CAR handle, caches) in the parent is
    used in forked workers. Each child re-opens its sources, so concurrent seeks never interleave."""
    global _FORKED
    src, root, car = files
    _FORKED = IPFSFileSystem(cars=[str(car)], use_env=False, memory_cache=0, skip_instance_cache=True)
    parent_state = _FORKED._st()
    _FORKED.cat_file(f"{root}/f0.bin", 0, 10)  # the parent's handle is open and positioned
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(3) as pool:
        results = pool.map_async(_child_read, [(root, str(src), s) for s in range(6)]).get(timeout=60)
    for pid, state_pid, n in results:
        assert pid == state_pid != os.getpid() and n == 40
    assert _FORKED._st() is parent_state  # the parent keeps its own state
    assert _check_all(_FORKED, root, src, 99) == 40
    _FORKED.close()
    _FORKED = None


def _spawned(blob: bytes, root: str, want: bytes) -> bool:
    fs = pickle.loads(blob)
    return bool(fs.cat_file(f"{root}/f3.bin") == want)


def test_pickled_filesystem_in_a_spawned_process(files: tuple[Path, str, Path]) -> None:
    """What Dask does with worker processes: only constructor options travel."""
    src, root, car = files
    fs = IPFSFileSystem(cars=[str(car)], use_env=False, skip_instance_cache=True)
    blob = pickle.dumps(fs)
    assert len(blob) < 2048  # options, not handles or caches
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        assert pool.apply_async(_spawned, (blob, root, (src / "f3.bin").read_bytes())).get(timeout=60)
    fs.close()


def test_shared_cache_across_processes(files: tuple[Path, str, Path], tmp_path: Path) -> None:
    """Two processes filling one cache directory: every block lands once, whole, no temporaries."""
    src, root, car = files
    cache = tmp_path / "cache"
    fs = IPFSFileSystem(cars=[str(car)], cache=str(cache), use_env=False, skip_instance_cache=True)
    global _FORKED
    _FORKED = fs
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        pool.map_async(_child_read, [(root, str(src), s) for s in range(2)]).get(timeout=60)
    _FORKED = None
    fs.close()
    # the cache alone now serves everything, verified
    only = IPFSFileSystem(cache=str(cache), use_env=False, memory_cache=0, skip_instance_cache=True)
    cached = {p.name for p in cache.glob("*/*.data")}
    assert cached and not list(cache.glob("*/.*"))
    for name in ("f1.bin", "f6.bin"):
        try:
            assert only.cat_file(f"{root}/{name}") == (src / name).read_bytes()
        except BlockUnavailableError:
            pass  # a block the random reads never touched
    only.close()


def test_torch_dataset_example(files: tuple[Path, str, Path]) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed (too big for CI); the example runs where it is")
    sys.path.insert(0, str(ROOT))
    try:
        from examples.ipfs_torch_dataset import IPFSFilesDataset
    finally:
        sys.path.remove(str(ROOT))
    src, root, car = files
    ds = IPFSFilesDataset(root, cars=[str(car)], use_env=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    got = [bytes(t.numpy()) for t in loader]
    assert got == [(src / f"f{i}.bin").read_bytes() for i in range(8)]
