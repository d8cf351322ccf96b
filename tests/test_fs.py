"""The ipfs:// fsspec filesystem: every method, against the files it was imported from."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

fsspec = pytest.importorskip("fsspec")

from pyipld.cid import CID
from pyipld.errors import BlockUnavailableError, ConfigError, UnixFSError
from pyipld.fs import IPFSFileSystem, register
from pyipld.unixfs import ImportParams, import_file

from ._fs import build_car, make_tree

HAMT = ImportParams(cid_version=1, hamt_threshold=256)  # "many/" (40 entries) becomes a HAMT


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    base = tmp_path_factory.mktemp("fs")
    src = make_tree(base / "src")
    car = base / "tree.car"
    return src, build_car(src, car, HAMT), car


@pytest.fixture()
def fs(tree: tuple[Path, str, Path]) -> IPFSFileSystem:
    return IPFSFileSystem(cars=[str(tree[2])], use_env=False, skip_instance_cache=True)


def test_registered_for_ipfs_protocol(tree: tuple[Path, str, Path]) -> None:
    src, root, car = tree
    register()
    assert fsspec.get_filesystem_class("ipfs") is IPFSFileSystem
    with fsspec.open(f"ipfs://{root}/a.txt", cars=[str(car)], use_env=False) as f:
        assert f.read() == (src / "a.txt").read_bytes()


def test_hamt_directory_is_sharded(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    _, root, _ = tree
    assert fs._dir_node(f"{root}/many").sharded
    assert not fs._dir_node(root).sharded


def test_path_forms(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    src, root, _ = tree
    want = (src / "sub/deep/c.csv").read_bytes()
    for p in (f"{root}/sub/deep/c.csv", f"/ipfs/{root}/sub/deep/c.csv", f"ipfs://{root}/sub//deep/c.csv/",
              f"ipfs://{root}/sub/deep/c.csv", f"ipfs://ipfs/{root}/sub/deep/c.csv"):
        assert fs.cat_file(p) == want
    assert fs._strip_protocol(f"ipfs:///ipfs/{root}/x/") == f"{root}/x"


def test_a_path_that_is_not_text(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    """bytes failed with "a bytes-like object is required, not 'str'", an int or None with
    os.fspath's TypeError; bytes now read as the path they spell, the rest are refused."""
    src, root, _ = tree
    assert fs.cat_file(f"{root}/a.txt".encode()) == (src / "a.txt").read_bytes()
    for bad in (5, None, 1.5):
        with pytest.raises(ConfigError, match=f"an ipfs path is a str \\(CID/a/b\\), not a {type(bad).__name__}"):
            fs.info(bad)


def test_ls_detail_type_size_cid(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    src, root, _ = tree
    listing = {d["name"].rsplit("/", 1)[1]: d for d in fs.ls(root, detail=True)}
    assert set(listing) == {p.name for p in src.iterdir()}
    assert listing["a.txt"]["type"] == "file" and listing["a.txt"]["size"] == 12
    assert listing["sub"]["type"] == "directory"
    assert listing["link"]["islink"] and listing["link"]["destination"] == "a.txt"
    # the CID is the one the importer gives the file on its own
    assert listing["a.txt"]["CID"] == str(import_file(src / "a.txt", HAMT).cid) == listing["a.txt"]["ETag"]
    assert sorted(fs.ls(f"{root}/many", detail=False)) == sorted(f"{root}/many/{p.name}"
                                                                  for p in (src / "many").iterdir())
    # info and ls describe an entry identically
    for name, d in listing.items():
        assert fs.info(f"{root}/{name}") == d


def test_ls_of_a_file_is_the_file(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    _, root, _ = tree
    assert fs.ls(f"{root}/a.txt", detail=False) == [f"{root}/a.txt"]


def test_exists_isdir_isfile(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    _, root, _ = tree
    assert fs.exists(f"{root}/many/f007.txt") and fs.isfile(f"{root}/many/f007.txt")
    assert fs.isdir(f"{root}/many") and not fs.isfile(f"{root}/many")
    assert not fs.exists(f"{root}/many/nope") and not fs.isdir(f"{root}/nope")
    assert not fs.exists(f"{root}/a.txt/below")
    with pytest.raises(FileNotFoundError):
        fs.info(f"{root}/missing")
    with pytest.raises(FileNotFoundError):
        fs.info(f"{root}/sub/../a.txt")


def test_unknown_root_is_unavailable_not_absent(fs: IPFSFileSystem) -> None:
    missing = str(import_file(b"not in the car", ImportParams(cid_version=1)).cid)
    with pytest.raises(BlockUnavailableError, match="not found"):  # a CID names data: we lack it
        fs.info(missing)


def test_find_glob_walk_du(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    src, root, _ = tree
    local = sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_file() or p.is_symlink())
    assert fs.find(root) == [f"{root}/{p}" for p in local]
    assert fs.glob(f"{root}/many/f00?.txt") == [f"{root}/many/f00{i}.txt" for i in range(10)]
    assert fs.glob(f"{root}/**/*.csv") == [f"{root}/sub/deep/c.csv"]
    walked = {d: (sorted(dirs), sorted(files)) for d, dirs, files in fs.walk(root)}
    assert walked[f"{root}/sub"] == (["deep"], ["big.bin"])
    assert fs.du(f"{root}/sub") == sum(p.stat().st_size for p in (src / "sub").rglob("*") if p.is_file())
    assert fs.find(root, maxdepth=1, withdirs=True)[:3] == [root, f"{root}/a.txt", f"{root}/empty.bin"]


@pytest.mark.parametrize("start,end", [(None, None), (0, 1), (5, None), (-100, None), (10, -10), (262_000, 262_300),
                                       (699_990, 800_000), (800_000, None), (300, 200), (-10**9, 5)])
def test_cat_file_slice_semantics(fs: IPFSFileSystem, tree: tuple[Path, str, Path], start: int | None,
                                  end: int | None) -> None:
    src, root, _ = tree
    data = (src / "sub/big.bin").read_bytes()
    assert fs.cat_file(f"{root}/sub/big.bin", start, end) == data[start:end]


def test_cat_file_offsets_must_be_integers(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    """A str or float start failed inside with TypeError ('<' not supported / slice indices)."""
    src, root, _ = tree
    for start, end in (("1", None), (1.5, None), (None, 2.0)):
        with pytest.raises(ConfigError, match=r"(start|end) must be an int or None, not a (str|float)"):
            fs.cat_file(f"{root}/a.txt", start, end)
    np = pytest.importorskip("numpy")
    assert fs.cat_file(f"{root}/a.txt", np.int64(1), np.int32(-1)) == (src / "a.txt").read_bytes()[1:-1]


def test_open_with_an_unknown_cache_type(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    """fsspec's ``caches[cache_type]`` raised a bare KeyError: 'bogus'."""
    src, root, _ = tree
    with pytest.raises(ConfigError, match=r"unknown cache_type 'bogus': one of .*bytes.*prefetch"):
        fs.open(f"{root}/a.txt", cache_type="bogus")
    with fs.open(f"{root}/a.txt", cache_type="bytes") as f:
        assert f.read() == (src / "a.txt").read_bytes()


def test_cat_ranges_and_errors_in_place(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    src, root, _ = tree
    data = (src / "sub/big.bin").read_bytes()
    paths = [f"{root}/sub/big.bin"] * 3 + [f"{root}/nope"]
    out = fs.cat_ranges(paths, [0, 300_000, 650_000, 0], [10, 300_010, None, 5])
    assert out[:3] == [data[:10], data[300_000:300_010], data[650_000:]]
    assert isinstance(out[3], FileNotFoundError)
    with pytest.raises(FileNotFoundError):
        fs.cat_ranges(paths, 0, 5, on_error="raise")


def test_cat_range_fetches_only_needed_blocks(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    _, root, _ = tree
    st = fs._st()
    fs.cat_file(f"{root}/sub/big.bin", 0, 1)  # resolve the path and the file root
    before = dict(st.chain.fetched)
    fs.cat_file(f"{root}/sub/big.bin", 300_000, 300_100)  # inside one 256 KiB leaf
    fetched = sum(st.chain.fetched.values()) - sum(before.values())
    assert fetched == 1


def test_cat_directory_and_symlink_are_errors(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    _, root, _ = tree
    with pytest.raises(IsADirectoryError):
        fs.cat_file(f"{root}/sub")
    with pytest.raises(UnixFSError, match="symlink"):
        fs.cat_file(f"{root}/link")


def test_open_seek_read_readahead(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    src, root, _ = tree
    data = (src / "sub/big.bin").read_bytes()
    with fs.open(f"ipfs://{root}/sub/big.bin", "rb") as f:
        assert f.size == len(data) and f.seekable()
        assert f.read(5) == data[:5]
        f.seek(500_000)
        assert f.read(70_000) == data[500_000:570_000]
        f.seek(-10, 2)
        assert f.read() == data[-10:]
        assert f.cache.name == "prefetch" and f.cache.maxblocks == 8  # bounded
    with fs.open(f"{root}/sub/deep/c.csv", "r") as t:
        assert t.read() == (src / "sub/deep/c.csv").read_text()
    with fs.open(f"{root}/sub/big.bin", block_size=65536, cache_type="readahead") as f:
        f.seek(123_456)
        assert f.read(10) == data[123_456:123_466]


def test_open_file_pickles_and_reopens_at_offset(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    src, root, _ = tree
    data = (src / "sub/big.bin").read_bytes()
    with fs.open(f"{root}/sub/big.bin") as f:
        f.seek(400_000)
        g = pickle.loads(pickle.dumps(f))
        assert g.read(100) == data[400_000:400_100]
        g.close()


def test_ukey_checksum_are_the_cid(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    _src, root, car = tree
    cid = fs.info(f"{root}/sub/big.bin")["CID"]
    assert fs.ukey(f"{root}/sub/big.bin") == cid
    other = IPFSFileSystem(cars=[str(car)], use_env=False, memory_cache=0, skip_instance_cache=True)
    assert other.checksum(f"/ipfs/{root}/sub/big.bin") == fs.checksum(f"{root}/sub/big.bin")
    assert fs.checksum(f"{root}/a.txt") != fs.checksum(f"{root}/sub/big.bin")


def test_get_file_copies_bytes(fs: IPFSFileSystem, tree: tuple[Path, str, Path], tmp_path: Path) -> None:
    src, root, _ = tree
    fs.get(f"{root}/sub", str(tmp_path / "out"), recursive=True)
    assert (tmp_path / "out/big.bin").read_bytes() == (src / "sub/big.bin").read_bytes()
    assert (tmp_path / "out/deep/c.csv").read_bytes() == (src / "sub/deep/c.csv").read_bytes()


def test_read_only_without_sink(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    _, root, _ = tree
    with pytest.raises(PermissionError):
        fs.pipe_file("out/x", b"1")
    with pytest.raises(PermissionError):
        fs.rm(f"{root}/a.txt")


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        IPFSFileSystem(add={"chunker": "size-0"}, use_env=False, skip_instance_cache=True)
    with pytest.raises(ConfigError):
        IPFSFileSystem(add={"no_such_field": 1}, use_env=False, skip_instance_cache=True)
    with pytest.raises(FileNotFoundError):
        IPFSFileSystem(cars=[str(tmp_path / "missing.car")], use_env=False, skip_instance_cache=True)


def test_env_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tree: tuple[Path, str, Path]) -> None:
    from pyipld.blockstore import DirectoryBlockstore
    from pyipld.car import CarBlockstore

    store = DirectoryBlockstore(tmp_path / "bs")
    with CarBlockstore(tree[2]) as car:
        for cid in car.iter_cids():
            store.put(cid, car.get(cid))
    monkeypatch.setenv("PYIPLD_BLOCKSTORE", str(tmp_path / "bs"))
    fs = IPFSFileSystem(skip_instance_cache=True)
    assert fs.cat_file(f"{tree[1]}/a.txt") == b"hello world\n"
    assert [name for name, _ in fs.chain.sources] == [f"blockstore:{tmp_path / 'bs'}"]


def test_pickle_rebuilds_same_filesystem(fs: IPFSFileSystem, tree: tuple[Path, str, Path]) -> None:
    _, root, _ = tree
    clone = pickle.loads(pickle.dumps(fs))
    assert clone.cat_file(f"{root}/a.txt") == b"hello world\n"
    assert clone.storage_options == fs.storage_options


def test_cid_root_that_is_a_file(tmp_path: Path) -> None:
    from pyipld.car import open_car_sink

    data = os.urandom(300_000)
    with open_car_sink(tmp_path / "f.car", version=2, params=HAMT) as sink:
        cid = import_file(data, HAMT, sink).cid
        sink.set_roots([cid])
    fs = IPFSFileSystem(cars=[str(tmp_path / "f.car")], use_env=False, skip_instance_cache=True)
    assert fs.info(str(cid))["type"] == "file" and fs.size(str(cid)) == len(data)
    assert fs.cat(f"ipfs://{cid}") == data
    assert fs.find(str(cid)) == [str(cid)]
    assert CID.decode(fs.ukey(str(cid))) == cid


def test_cat_file_any_slice_equals_python_slice(tree: tuple[Path, str, Path]) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    src, root, car = tree
    data = (src / "sub/big.bin").read_bytes()
    fs = IPFSFileSystem(cars=[str(car)], use_env=False, skip_instance_cache=True)
    bound = st.one_of(st.none(), st.integers(-len(data) - 10, len(data) + 10))

    @settings(max_examples=200, deadline=None)
    @given(bound, bound)
    def check(start: int | None, end: int | None) -> None:
        assert fs.cat_file(f"{root}/sub/big.bin", start, end) == data[start:end]

    check()
    fs.close()
