"""ipfs:// staging tree: ``cp``/``mv``/``commit`` give the CIDs ``pyipld add -r`` gives the same tree,
and the committed sink holds every block of it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

fsspec = pytest.importorskip("fsspec")

from pyipld.cid import CID
from pyipld.fs import IPFSFileSystem
from pyipld.unixfs import ImportParams, import_directory, import_paths

from ._deterministic import chacha_bytes
from ._fs import build_car

# kubo's defaults (CIDv0, dag-pb leaves); CIDv1 with raw leaves; small chunks for a two-level file DAG
PARAMS = {
    "v0": {},
    "v1": {"cid_version": 1},
    "deep": {"cid_version": 1, "chunker": "size-1024"},
}
BIG = 700_000  # three 256 KiB leaves; 684 leaves (two levels of links) with size-1024


def _fs(**kw: object) -> IPFSFileSystem:
    return IPFSFileSystem(use_env=False, skip_instance_cache=True, **kw)


@pytest.fixture(scope="module", params=sorted(PARAMS))
def published(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, str, dict]:
    """A tree imported into a CAR with the parameters the filesystem writes with."""
    name = request.param
    add = PARAMS[name]
    base = tmp_path_factory.mktemp(f"pub-{name}")
    src = base / "src"
    (src / "sub").mkdir(parents=True)
    (src / "big.bin").write_bytes(chacha_bytes("commit-big", BIG))
    (src / "sub" / "small.txt").write_bytes(b"a small file\n")
    car = base / "pub.car"
    return str(car), src, build_car(src, car, ImportParams(**add)), add


def _expected(tmp_path: Path, src: Path, add: dict) -> tuple[CID, CID]:
    """What ``pyipld add -r out`` and ``pyipld add -r -w out`` give for the tree the tests stage."""
    out = tmp_path / "disk" / "out"
    (out / "sub").mkdir(parents=True)
    shutil.copyfile(src / "big.bin", out / "big.bin")
    shutil.copyfile(src / "big.bin", out / "sub" / "copy.bin")
    shutil.copyfile(src / "sub" / "small.txt", out / "small.txt")
    params = ImportParams(**add)
    return import_directory(out, params).cid, import_paths([out], params, wrap=True).cid


def _cp_from_ipfs(fs: IPFSFileSystem, root: str, src: Path) -> None:
    fs.cp(f"{root}/big.bin", "out/big.bin")
    fs.cp(fs.info(f"ipfs://{root}/big.bin")["CID"], "out/sub/copy.bin")  # a bare file CID: no parent link
    fs.cp(f"/ipfs/{root}/sub/small.txt", "out/small.txt")


def _cp_in_staging(fs: IPFSFileSystem, root: str, src: Path) -> None:
    fs.put_file(str(src / "big.bin"), "tmp/x.bin")
    fs.put_file(str(src / "sub" / "small.txt"), "tmp/s.txt")
    fs.cp("tmp/x.bin", "out/big.bin")
    fs.cp("out/big.bin", "out/sub/copy.bin")
    fs.cp("tmp/s.txt", "out/small.txt")
    fs.rm("tmp", recursive=True)


def _mv(fs: IPFSFileSystem, root: str, src: Path) -> None:
    fs.put_file(str(src / "big.bin"), "tmp/x.bin")
    fs.cp(f"{root}/big.bin", "tmp/y.bin")
    fs.put_file(str(src / "sub" / "small.txt"), "out/s.txt")
    fs.mv("tmp/x.bin", "out/big.bin")
    fs.mv("tmp/y.bin", "out/sub/copy.bin")
    fs.mv("out/s.txt", "out/small.txt")
    fs.rm("tmp", recursive=True)


WAYS: dict[str, Callable[[IPFSFileSystem, str, Path], None]] = {
    "cp-from-ipfs": _cp_from_ipfs, "cp-in-staging": _cp_in_staging, "mv": _mv}


@pytest.mark.parametrize("way", sorted(WAYS))
def test_commit_after_cp_or_mv_equals_add_r(published: tuple[str, Path, str, dict], tmp_path: Path,
                                            way: str) -> None:
    car, src, root, add = published
    fs = _fs(cars=[car], sink=str(tmp_path / "blocks"), add=add)
    WAYS[way](fs, root, src)
    assert sorted(fs.find("", withdirs=False)) == ["out/big.bin", "out/small.txt", "out/sub/copy.bin"]
    want, want_wrapped = _expected(tmp_path, src, add)
    assert fs.commit("out") == want
    assert fs.commit() == want_wrapped
    fs.close()


def test_copied_link_tsize_is_the_dag_size(published: tuple[str, Path, str, dict], tmp_path: Path) -> None:
    """The link Tsize is the file DAG's cumulative size (what add writes), not its byte size."""
    car, src, root, add = published
    fs = _fs(cars=[car], sink=str(tmp_path / "blocks"), add=add)
    fs.cp(f"{root}/big.bin", "out/big.bin")
    imported = import_paths([src / "big.bin"], ImportParams(**add))
    staged = fs.staging.files["out/big.bin"]
    assert (staged.cid, staged.size, staged.tsize) == (imported.cid.bytes, BIG, imported.tsize)
    assert staged.tsize > BIG
    fs.close()
