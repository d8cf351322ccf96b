"""A block no source can supply is an error, never an absent key.

fsspec mappers and zarr read ``FileNotFoundError`` (and a mapper's consumer ``KeyError``) as "no
such key" and fill the chunk with zeros, so an unavailable block of an existing path — a partial
CAR, a gateway down — must be :class:`~pyipld.errors.BlockUnavailableError` at every entry point;
``FileNotFoundError`` stays for a name a loaded directory does not hold.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

fsspec = pytest.importorskip("fsspec")
np = pytest.importorskip("numpy")
zarr = pytest.importorskip("zarr")

from pyipld.blockstore import MemoryBlockstore
from pyipld.car import CarBlockstore, CarV1Writer
from pyipld.cid import CID
from pyipld.dagpb import decode_pbnode
from pyipld.errors import BlockUnavailableError, NotFoundError
from pyipld.fs import IPFSFileSystem
from pyipld.unixfs import ImportParams, import_bytes

from ._deterministic import chacha_bytes
from ._fs import build_car

PARAMS = ImportParams(cid_version=1, chunker="size-65536", hamt_threshold=256)


@dataclass
class Tree:
    src: Path
    root: str
    full: Path
    partial: Path
    store: MemoryBlockstore  # every block
    shard_names: list[str]  # the entries under the dropped HAMT sub-shard
    leaf_at: int  # file offset of big.bin's dropped leaf


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    base = tmp_path_factory.mktemp("unavail")
    src = base / "src"
    (src / "data").mkdir(parents=True)
    (src / "many").mkdir()
    arr = np.arange(400, dtype="float64").reshape(20, 20) + 1  # no zero anywhere
    z = zarr.open_array(str(src / "arr.zarr"), mode="w", shape=arr.shape, chunks=(10, 10), dtype="float64")
    z[:] = arr
    (src / "data" / "a.txt").write_bytes(b"present\n")
    (src / "data" / "b.txt").write_bytes(b"its block is not in the partial CAR\n")  # one raw leaf
    (src / "data" / "c.bin").write_bytes(chacha_bytes("root gone", 200_000))  # its dag-pb root is dropped
    (src / "data" / "big.bin").write_bytes(chacha_bytes("unavail", 600_000))
    for i in range(300):
        (src / "many" / f"f{i:03d}.txt").write_text(f"file {i}\n")
    full = base / "full.car"
    root = build_car(src, full, PARAMS)
    store = MemoryBlockstore()
    with CarBlockstore(full) as car:
        for cid in car.iter_cids():
            store.put(cid, car.get(cid))

    fs = IPFSFileSystem(cars=[str(full)], use_env=False, skip_instance_cache=True)
    drop = {CID.decode(fs.info(f"{root}/{p}")["CID"]).bytes for p in ("arr.zarr/c/0/0", "data/b.txt", "data/c.bin")}
    big = fs._file_entry(f"{root}/data/big.bin")
    big_node = fs._reader(big.cid).node(big.cid)
    drop.add(big_node.links[3])
    leaf_at = sum(big_node.blocksizes[:3])
    shard = next(link for link in fs._dir_node(f"{root}/many").pb.links if len(link.name) == 2)
    drop.add(shard.cid)
    names = [link.name[2:].decode() for link in decode_pbnode(store.get(shard.cid)).links if len(link.name) > 2]
    assert names  # a sub-shard holding entries
    fs.close()

    partial = base / "partial.car"
    with open(partial, "wb") as f:
        w = CarV1Writer(f, [CID.decode(root)])
        for cid in store:
            if cid not in drop:
                w.put(cid, store.get(cid))
        w.close()
    return Tree(src, root, full, partial, store, names, leaf_at)


def _fs(**kw: object) -> IPFSFileSystem:
    return IPFSFileSystem(use_env=False, skip_instance_cache=True, memory_cache=0, **kw)


def test_zarr_over_a_partial_car_raises_not_zeros(tree: Tree) -> None:
    url = f"ipfs://{tree.root}/arr.zarr"
    full = zarr.open_array(url, mode="r", storage_options={"cars": [str(tree.full)], "use_env": False})[:]
    assert full.min() > 0
    z = zarr.open_array(url, mode="r", storage_options={"cars": [str(tree.partial)], "use_env": False,
                                                        "skip_instance_cache": True})
    np.testing.assert_array_equal(z[10:, 10:], full[10:, 10:])  # chunks that are there read fine
    with pytest.raises(BlockUnavailableError, match="not found"):
        z[:]  # before: zeros for chunk c/0/0, no error


def test_mapper_raises_block_unavailable_not_key_error(tree: Tree) -> None:
    fs = _fs(cars=[str(tree.partial)])
    m = fs.get_mapper(f"{tree.root}/arr.zarr")
    with pytest.raises(BlockUnavailableError) as info:
        m["c/0/0"]
    assert not isinstance(info.value, (KeyError, FileNotFoundError))
    assert info.value.path == f"{tree.root}/arr.zarr/c/0/0"
    assert "c/0/0" in m  # the name is there (a raw chunk's size is its link's): only its bytes are not
    assert m["c/1/1"] and "c/1/1" in m
    with pytest.raises(KeyError):  # a name the loaded directory does not hold is absent
        m["c/7/7"]
    assert "c/7/7" not in m
    fs.close()


def test_every_entry_point_raises_for_a_missing_file_root(tree: Tree) -> None:
    fs = _fs(cars=[str(tree.partial)])
    p = f"{tree.root}/data/c.bin"
    for call in (lambda: fs.info(p), lambda: fs.exists(p), lambda: fs.isfile(p), lambda: fs.isdir(p),
                 lambda: fs.cat_file(p), lambda: fs.open(p).read(), lambda: fs.ls(f"{tree.root}/data"),
                 lambda: fs.find(tree.root), lambda: list(fs.walk(f"{tree.root}/data")),
                 lambda: fs.glob(f"{tree.root}/data/*.txt"), lambda: fs.du(f"{tree.root}/data"), lambda: fs.ukey(p)):
        with pytest.raises(BlockUnavailableError):
            call()
    # the listing by name needs no child block; the present file reads
    assert fs.ls(f"{tree.root}/data", detail=False) == [f"{tree.root}/data/{n}"
                                                         for n in ("a.txt", "b.txt", "big.bin", "c.bin")]
    assert fs.cat_file(f"{tree.root}/data/a.txt") == b"present\n"
    out = fs.cat_ranges([p, f"{tree.root}/data/a.txt"], 0, None)
    assert isinstance(out[0], BlockUnavailableError) and out[1] == b"present\n"
    fs.close()


def test_a_raw_file_is_described_by_its_link_and_its_read_fails(tree: Tree) -> None:
    fs = _fs(cars=[str(tree.partial)])
    p = f"{tree.root}/data/b.txt"
    size = (tree.src / "data" / "b.txt").stat().st_size
    assert fs.info(p)["size"] == size and fs.exists(p) and fs.isfile(p)  # as ls(detail=True) lists it
    full = _fs(cars=[str(tree.full)])
    assert fs.info(p) == full.info(p) == next(d for d in full.ls(f"{tree.root}/data") if d["name"] == p)
    full.close()
    for call in (lambda: fs.cat_file(p), lambda: fs.open(p).read(), lambda: fs.cat_file(p, 1, 3)):
        with pytest.raises(BlockUnavailableError, match="not found"):
            call()
    with pytest.raises(NotADirectoryError):
        fs.info(f"{p}/below")
    fs.close()


def test_a_missing_leaf_fails_the_read_not_the_metadata(tree: Tree) -> None:
    fs = _fs(cars=[str(tree.partial)])
    p = f"{tree.root}/data/big.bin"
    want = (tree.src / "data" / "big.bin").read_bytes()
    assert fs.info(p)["size"] == len(want) and fs.exists(p) and fs.isfile(p)
    assert fs.cat_file(p, 0, tree.leaf_at) == want[: tree.leaf_at]
    for call in (lambda: fs.cat_file(p), lambda: fs.cat_file(p, tree.leaf_at, tree.leaf_at + 10),
                 lambda: fs.open(p).read(), lambda: fs.open(p, block_size=4096).read(),
                 lambda: fs.read_cid_into(fs._file_entry(p).cid, len(want), 0, bytearray(len(want)))):
        with pytest.raises(BlockUnavailableError, match="not found"):
            call()
    fs.close()


def test_a_missing_hamt_shard_is_unavailable_for_its_names(tree: Tree) -> None:
    fs = _fs(cars=[str(tree.partial)])
    many = f"{tree.root}/many"
    with pytest.raises(BlockUnavailableError):
        fs.ls(many, detail=False)
    with pytest.raises(BlockUnavailableError):
        fs.exists(f"{many}/{tree.shard_names[0]}")
    present = next(f"f{i:03d}.txt" for i in range(300) if f"f{i:03d}.txt" not in tree.shard_names)
    assert fs.cat_file(f"{many}/{present}") == f"file {int(present[1:4])}\n".encode()
    fs.close()


def test_names_that_are_not_there_are_still_file_not_found(tree: Tree) -> None:
    fs = _fs(cars=[str(tree.partial)])
    for p in (f"{tree.root}/nope", f"{tree.root}/data/nope.txt", f"{tree.root}/data/../data/a.txt",
              "staged/nothing"):
        with pytest.raises(FileNotFoundError):
            fs.info(p)
        assert not fs.exists(p) and not fs.isfile(p) and not fs.isdir(p)
    assert not fs.exists(f"{tree.root}/data/a.txt/below")
    fs.close()


def test_a_root_no_source_has_is_unavailable_not_absent(tree: Tree) -> None:
    """The CID names data: without its block nobody can say the path does not exist."""
    missing = str(import_bytes(b"in no CAR", ImportParams(cid_version=1)).cid)
    fs = _fs(cars=[str(tree.partial)])
    for call in (lambda: fs.info(missing), lambda: fs.exists(missing), lambda: fs.cat_file(missing),
                 lambda: fs.ls(f"{missing}/x"), lambda: fs.find(missing)):
        with pytest.raises(BlockUnavailableError, match=r"car:.*could not find"):
            call()
    fs.close()
    with pytest.raises(BlockUnavailableError, match="no block source configured"):
        _fs().info(missing)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_gateway_that_is_down_or_refuses_is_unavailable(tree: Tree) -> None:
    pytest.importorskip("httpx")
    from ._gateway import serve

    with serve(tree.store) as gw:
        fs = _fs(gateways=[gw.url], http_timeout=3)
        m = fs.get_mapper(f"{tree.root}/arr.zarr")
        z = zarr.open_array(m, mode="r")
        assert z[0, 0] == 1  # the directories on the way and one chunk are in hand
    # the gateway is gone: the chunks not read yet cannot be fetched
    with pytest.raises(BlockUnavailableError):
        z[:]
    with pytest.raises(BlockUnavailableError):
        m["c/1/1"]
    fs.close()
    with serve(tree.store, "missing") as gw:  # 404 for everything
        fs = _fs(gateways=[gw.url], http_timeout=3)
        with pytest.raises(BlockUnavailableError):
            fs.exists(tree.root)
        fs.close()
    fs = _fs(gateways=[f"http://127.0.0.1:{_closed_port()}"], http_timeout=3)
    with pytest.raises(BlockUnavailableError) as info:
        fs.get_mapper(f"{tree.root}/arr.zarr")["zarr.json"]
    assert not isinstance(info.value, (KeyError, FileNotFoundError, NotFoundError))
    fs.close()
