"""ipfs:// staging tree: ``cp``/``mv``/``commit`` give the CIDs ``pyipld add -r`` gives the same tree,
and the committed sink holds every block of it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

fsspec = pytest.importorskip("fsspec")

from pyipld.blockstore import DirectoryBlockstore, MemoryBlockstore
from pyipld.car import open_car, open_car_sink
from pyipld.car.export import export_dag
from pyipld.cid import CID
from pyipld.errors import BlockUnavailableError
from pyipld.fs import IPFSFileSystem
from pyipld.unixfs import ImportParams, import_directory, import_paths
from pyipld.unixfs.walk import load_node

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
    (src / "other.txt").write_bytes(b"never committed\n")
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


# -- the sink holds the whole committed tree ------------------------------------------------------


def _stage_mixed(fs: IPFSFileSystem, root: str) -> bytes:
    """Files copied from IPFS (not in the sink's store) next to one written here."""
    fs.copy(f"{root}/big.bin", "out/big.bin")
    fs.copy(f"{root}/big.bin", "out/sub/copy.bin")
    fs.copy(f"{root}/sub/small.txt", "out/tmp.txt")
    fs.mv("out/tmp.txt", "out/small.txt")
    written = chacha_bytes("commit-written", 5000)
    fs.pipe_file("out/written.bin", written)
    return written


def _disk_tree(tmp_path: Path, src: Path, written: bytes) -> Path:
    out = tmp_path / "disk" / "out"
    (out / "sub").mkdir(parents=True)
    shutil.copyfile(src / "big.bin", out / "big.bin")
    shutil.copyfile(src / "big.bin", out / "sub" / "copy.bin")
    shutil.copyfile(src / "sub" / "small.txt", out / "small.txt")
    (out / "written.bin").write_bytes(written)
    return out


def _reference(out: Path, add: dict) -> tuple[CID, MemoryBlockstore]:
    """``pyipld add -r out`` into a fresh store: the root and exactly the tree's blocks."""
    store = MemoryBlockstore()
    return import_directory(out, ImportParams(**add), store).cid, store


def test_car_sink_after_copy_from_ipfs_holds_the_whole_dag(published: tuple[str, Path, str, dict],
                                                            tmp_path: Path) -> None:
    car, src, root, add = published
    sink = tmp_path / "o" / "out.car"
    fs = _fs(cars=[car], sink=str(sink), add=add)
    written = _stage_mixed(fs, root)
    committed = fs.commit("out")
    fs.close()
    out = _disk_tree(tmp_path, src, written)
    want, store = _reference(out, add)
    assert committed == want
    with open_car(sink) as c:  # `car verify`: every block hashes, the root is there, the index is right
        assert c.roots == (want,) and c.version == 2
        c.verify_blocks()
        c.verify_index(c.read_index())
        in_car = [h.cid for h in c.iter_heads()]
    assert len(in_car) == len(set(in_car)) and set(in_car) == set(store._blocks)
    # byte-equal to `ipfs dag export` of the same tree written as a CARv2
    ref = tmp_path / "ref.car"
    with open_car_sink(ref, version=2, roots=[want]) as w:
        export_dag(store, want, w)
    assert sink.read_bytes() == ref.read_bytes()
    reader = _fs(cars=[str(sink)])  # the CAR alone serves the tree
    assert reader.cat_file(f"{want}/sub/copy.bin") == (src / "big.bin").read_bytes()
    reader.close()


def test_blockstore_sink_after_copy_from_ipfs_holds_the_whole_dag(published: tuple[str, Path, str, dict],
                                                                  tmp_path: Path) -> None:
    car, src, root, add = published
    sink = tmp_path / "blocks"
    fs = _fs(cars=[car], sink=str(sink), add=add)
    written = _stage_mixed(fs, root)
    fs.copy(f"{root}/other.txt", "elsewhere/other.txt")  # staged, but not under the committed path
    committed = fs.commit("out")
    fs.close()
    out = _disk_tree(tmp_path, src, written)
    want, store = _reference(out, add)
    assert committed == want
    blocks = DirectoryBlockstore(sink, create=False)
    assert all(blocks.has(cid) for cid in store._blocks)
    assert len(list(sink.glob("*/*.data"))) == len(store._blocks)  # nothing else (the one pipe_file'd file)
    assert not list(blocks.verify_all())
    reader = _fs(blockstore=str(sink))  # the blockstore alone serves the tree
    assert reader.cat_file(f"{want}/big.bin") == (src / "big.bin").read_bytes()
    assert reader.cat_file(f"{want}/small.txt") == (src / "sub" / "small.txt").read_bytes()
    reader.close()


def test_commit_when_no_source_has_a_block_is_typed_and_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(chacha_bytes("commit-missing", BIG))
    bs = tmp_path / "pub"
    root = import_directory(src, ImportParams(), DirectoryBlockstore(bs)).cid
    sink = tmp_path / "out.car"
    fs = _fs(blockstore=str(bs), sink=str(sink), memory_cache=0)
    fs.copy(f"{root}/big.bin", "out/big.bin")
    leaf = CID.from_bytes(load_node(DirectoryBlockstore(bs), fs.staging.files["out/big.bin"].cid).pb.links[1].cid)
    DirectoryBlockstore(bs)._path(leaf.bytes).unlink()
    with pytest.raises(BlockUnavailableError, match=str(leaf)):
        fs.commit("out")
    assert not sink.exists()
    fs.close()
    bsink = tmp_path / "bsink"
    fs = _fs(blockstore=str(bs), sink=str(bsink), memory_cache=0)
    fs.copy(f"{root}/big.bin", "out/big.bin")
    with pytest.raises(BlockUnavailableError, match=str(leaf)):
        fs.commit("out")
    fs.close()


def test_blockstore_sink_with_a_partial_copy_is_completed(published: tuple[str, Path, str, dict],
                                                          tmp_path: Path) -> None:
    """A sink that has a copied file's root but not all of its leaves (an interrupted commit) is filled in."""
    car, src, root, add = published
    sink = tmp_path / "blocks"
    fs = _fs(cars=[car], sink=str(sink), add=add)
    fs.copy(f"{root}/big.bin", "out/big.bin")
    committed = fs.commit("out")
    fs.close()
    blocks = DirectoryBlockstore(sink, create=False)
    leaves = list(load_node(blocks, fs.staging.files["out/big.bin"].cid).pb.links)  # type: ignore[union-attr]
    for link in leaves[:2]:
        blocks._path(link.cid).unlink()  # type: ignore[union-attr]
    fs = _fs(cars=[car], sink=str(sink), add=add)
    fs.copy(f"{root}/big.bin", "out/big.bin")
    assert fs.commit("out") == committed
    fs.close()
    assert all(blocks.has(link.cid) for link in leaves)
    reader = _fs(blockstore=str(sink))
    assert reader.cat_file(f"{committed}/big.bin") == (src / "big.bin").read_bytes()
    reader.close()


def test_dot_dot_in_a_staging_path_is_refused_at_the_write(tmp_path: Path) -> None:
    """``pipe_file("stage/../y")`` was staged as a '..' entry; find listed 'stage/../y' and
    commit failed later with "invalid directory entry name b'..'"."""
    from pyipld.errors import UnsafePathError

    (tmp_path / "blocks").mkdir()
    fs = _fs(sink=str(tmp_path / "blocks"))
    for write in (lambda: fs.pipe_file("stage/../y", b"a"), lambda: fs.mkdir("stage/./d"),
                  lambda: fs.open("stage/../w", "wb")):
        with pytest.raises(UnsafePathError, match="'.' and '..' are not allowed in staging paths"):
            write()
    fs.pipe_file("stage/y", b"a")
    assert fs.find("stage") == ["stage/y"]
    fs.commit("stage")


def test_rmdir_of_a_staged_file_is_refused(tmp_path: Path) -> None:
    """``rmdir("stage/x.txt")`` deleted the staged file (as ``os.rmdir`` would not)."""
    (tmp_path / "blocks").mkdir()
    fs = _fs(sink=str(tmp_path / "blocks"))
    fs.pipe_file("stage/x.txt", b"a")
    with pytest.raises(NotADirectoryError):
        fs.rmdir("stage/x.txt")
    assert fs.cat_file("stage/x.txt") == b"a"
    fs.rm_file("stage/x.txt")
    fs.rmdir("stage")
    assert not fs.exists("stage")


def test_a_path_into_a_staged_file_is_not_a_directory(tmp_path: Path) -> None:
    """``info("stage/x.txt/y")`` said FileNotFoundError where the same path under a CID says
    NotADirectoryError (as the local filesystem does)."""
    (tmp_path / "blocks").mkdir()
    fs = _fs(sink=str(tmp_path / "blocks"))
    fs.pipe_file("stage/x.txt", b"a")
    with pytest.raises(NotADirectoryError, match="stage/x.txt is a file, not a directory"):
        fs.info("stage/x.txt/y/z")
    with pytest.raises(FileNotFoundError):
        fs.info("stage/nope/y")
    assert not fs.exists("stage/x.txt/y")
