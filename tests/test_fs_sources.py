"""ipfs:// sources: remote CARs by range (bytes counted), tampering, fallback, the shared cache, writes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

fsspec = pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

from pyipld.blockstore import DirectoryBlockstore
from pyipld.car import CarBlockstore, open_car
from pyipld.cid import CID
from pyipld.errors import BlockIntegrityError, IntegrityError, NotFoundError
from pyipld.fs import IPFSFileSystem, SourceChain
from pyipld.fs.sources import range_file_of
from pyipld.unixfs import ImportParams

from ._deterministic import chacha_bytes
from ._fs import V1, build_car, range_server


def _fs(**kw: object) -> IPFSFileSystem:
    return IPFSFileSystem(use_env=False, skip_instance_cache=True, **kw)


@pytest.fixture(scope="module")
def bigtree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    base = tmp_path_factory.mktemp("remote")
    src = base / "src"
    src.mkdir()
    (src / "small.txt").write_bytes(b"a small file\n")
    (src / "big.bin").write_bytes(chacha_bytes("remote-big", 6 << 20))
    car = base / "www" / "tree.car"
    car.parent.mkdir()
    return src, build_car(src, car), car


def test_remote_car_reads_a_small_fraction(bigtree: tuple[Path, str, Path]) -> None:
    src, root, car = bigtree
    with range_server(car.parent) as (url, counter):
        fs = _fs(cars=[f"{url}/tree.car"])
        assert fs.cat_file(f"{root}/small.txt") == (src / "small.txt").read_bytes()
        data = fs.cat_file(f"{root}/big.bin", 3 << 20, (3 << 20) + 1000)
        assert data == (src / "big.bin").read_bytes()[3 << 20 : (3 << 20) + 1000]
        sent = counter["bytes"]
        fs.close()
    size = car.stat().st_size
    # header + index + root dir + small file + big root + one leaf; far below the CAR
    assert sent < 600_000 < size // 10, (sent, size)


def test_remote_car_range_file_counts(bigtree: tuple[Path, str, Path]) -> None:
    src, root, car = bigtree
    with range_server(car.parent) as (url, counter):
        fs = _fs(cars=[f"{url}/tree.car"], memory_cache=0)
        store = fs.chain.sources[0][1]
        assert isinstance(store, CarBlockstore)
        rf = range_file_of(store)
        assert rf is not None
        assert fs.cat_file(f"{root}/big.bin") == (src / "big.bin").read_bytes()
        # each block once, plus a small read-ahead window per block (section heads)
        assert rf.bytes_fetched <= counter["bytes"] <= car.stat().st_size * 1.05
        fs.close()


def test_remote_car_with_detached_index(bigtree: tuple[Path, str, Path], tmp_path: Path) -> None:
    src, root, car = bigtree
    v1 = tmp_path / "www" / "plain.car"
    v1.parent.mkdir()
    from pyipld.car import extract_v1
    from pyipld.car.index import build_index, encode_index

    with open(car, "rb") as a, open(v1, "wb") as b:
        extract_v1(a, b)
    with open_car(v1) as f:
        records = [(h.cid, h.offset) for h in f.iter_heads()]
    (tmp_path / "www" / "plain.car.idx").write_bytes(encode_index(build_index(records)))
    with range_server(v1.parent) as (url, counter):
        fs = _fs(cars=[{"url": f"{url}/plain.car", "index": f"{url}/plain.car.idx"}])
        assert fs.cat_file(f"{root}/small.txt") == (src / "small.txt").read_bytes()
        assert counter["bytes"] < v1.stat().st_size // 10
        fs.close()


def _tamper(car: Path, out: Path, data: bytes) -> None:
    """Copy ``car`` and flip one byte inside the block holding ``data``."""
    raw = bytearray(car.read_bytes())
    at = raw.find(data)
    assert at > 0
    raw[at] ^= 0xFF
    out.write_bytes(bytes(raw))


def test_tampered_car_is_a_typed_error(bigtree: tuple[Path, str, Path], tmp_path: Path) -> None:
    _src, root, car = bigtree
    bad = tmp_path / "bad.car"
    _tamper(car, bad, b"a small file\n")
    fs = _fs(cars=[str(bad)])
    with pytest.raises(BlockIntegrityError) as info:
        fs.cat_file(f"{root}/small.txt")
    assert info.value.source == f"car:{bad}" and isinstance(info.value, IntegrityError)
    good = _fs(cars=[str(car)])
    assert CID.decode(info.value.cid) == CID.decode(good.info(f"{root}/small.txt")["CID"])
    good.close()
    assert str(bad) in str(info.value)
    fs.close()


def test_tampered_car_falls_back_to_next_source(bigtree: tuple[Path, str, Path], tmp_path: Path) -> None:
    _src, root, car = bigtree
    bad = tmp_path / "bad.car"
    _tamper(car, bad, b"a small file\n")
    fs = _fs(cars=[str(bad), str(car)])
    assert fs.cat_file(f"{root}/small.txt") == b"a small file\n"
    assert [e.source for e in fs.chain.failures] == [f"car:{bad}"]
    fs.close()


def test_missing_everywhere_lists_reasons(bigtree: tuple[Path, str, Path], tmp_path: Path) -> None:
    chain = SourceChain([("one", DirectoryBlockstore(tmp_path / "a")), ("two", DirectoryBlockstore(tmp_path / "b"))])
    cid = CID.decode("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e")
    with pytest.raises(NotFoundError, match="one: .*two: "):
        chain.get(cid.bytes)
    assert SourceChain([]).has(cid.bytes) is False


def test_blockstore_source_and_shared_cache(bigtree: tuple[Path, str, Path], tmp_path: Path) -> None:
    src, root, car = bigtree
    cache = tmp_path / "cache"
    fs = _fs(cars=[str(car)], cache=str(cache))
    want = (src / "big.bin").read_bytes()
    assert fs.cat_file(f"{root}/big.bin") == want
    n = sum(1 for _ in cache.glob("*/*.data"))
    assert n > 20 and not list(cache.glob("*/.*tmp*"))  # every block once, no temporaries left
    fs.close()
    # a second process-like instance with only the cache: no source needed at all
    again = _fs(cache=str(cache), memory_cache=0)
    assert again.cat_file(f"{root}/big.bin") == want
    # a corrupted cache entry is detected and refetched from the CAR
    victim = next(iter(sorted(cache.glob("*/*.data"), key=lambda p: p.stat().st_size)))
    victim.write_bytes(b"garbage")
    third = _fs(cars=[str(car)], cache=str(cache), memory_cache=0)
    assert third.cat_file(f"{root}/big.bin") == want
    assert [e.source for e in third.chain.failures] == [f"cache:{cache}"]
    # blockstore as a source
    bs = _fs(blockstore=str(cache))
    assert bs.cat_file(f"{root}/big.bin", 5, 10) == want[5:10]
    for f in (again, third, bs):
        f.close()


def test_bad_gateway_and_routing_options_are_config_errors() -> None:
    from pyipld.errors import ConfigError

    with pytest.raises(ConfigError):
        _fs(gateways=["ftp://127.0.0.1:1"])
    with pytest.raises(ConfigError):
        _fs(gateways=[123])
    with pytest.raises(ConfigError):
        _fs(routing=["file:///etc"])


# -- writing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sink_name", ["out.car", "blocks"])
def test_writes_give_cids_and_commit(tmp_path: Path, sink_name: str) -> None:
    from pyipld.unixfs import import_bytes

    sink = tmp_path / sink_name
    params = {"cid_version": 1, "chunker": "size-65536"}
    fs = _fs(sink=str(sink), add=params)
    data = chacha_bytes("write", 300_000)
    cid = fs.pipe_file("ipfs://out/data.bin", data)
    expect = str(import_bytes(data, ImportParams(**params)).cid)  # = `pyipld add --cid-version 1 -s size-65536`
    assert cid == expect == str(fs.last_cid) == fs.info("out/data.bin")["CID"]
    with fs.open("out/sub/text.txt", "wb") as f:
        f.write(b"line 1\n")
        f.write(b"line 2\n")
    assert fs.cat_file("out/sub/text.txt") == b"line 1\nline 2\n"
    assert fs.ls("out", detail=False) == ["out/data.bin", "out/sub"]
    local = tmp_path / "local.txt"
    local.write_bytes(b"from disk")
    assert fs.put_file(str(local), "out/local.txt") == fs.info("out/local.txt")["CID"]
    with pytest.raises(FileExistsError):
        fs.open("out/local.txt", "xb")
    with pytest.raises(FileExistsError):
        fs.pipe_file("out/local.txt", b"x", mode="create")
    with pytest.raises(PermissionError):
        fs.pipe_file(f"{cid}/x", b"x")
    root = fs.commit("out")
    assert fs.last_cid == root
    # the same tree imported by `pyipld add -r` has the same root CID
    tree = tmp_path / "tree" / "out"
    (tree / "sub").mkdir(parents=True)
    (tree / "data.bin").write_bytes(data)
    (tree / "sub" / "text.txt").write_bytes(b"line 1\nline 2\n")
    (tree / "local.txt").write_bytes(b"from disk")
    from pyipld.unixfs import import_directory

    assert root == import_directory(tree, ImportParams(**params)).cid
    reader = _fs(**({"cars": [str(sink)]} if sink_name.endswith(".car") else {"blockstore": str(sink)}))
    assert reader.cat_file(f"{root}/data.bin") == data
    assert reader.cat_file(f"{root}/sub/text.txt") == b"line 1\nline 2\n"
    if sink_name.endswith(".car"):
        with open_car(sink) as c:
            assert c.roots == (root,) and c.version == 2
    fs.close()
    reader.close()


def test_copy_links_and_rm(tmp_path: Path, bigtree: tuple[Path, str, Path]) -> None:
    _src, root, car = bigtree
    fs = _fs(cars=[str(car)], sink=str(tmp_path / "bs"))
    fs.copy(f"{root}/small.txt", "mine/small.txt")
    assert fs.info("mine/small.txt")["CID"] == fs.info(f"{root}/small.txt")["CID"]
    fs.rm("mine", recursive=True)
    assert not fs.exists("mine/small.txt") and not fs.exists("mine")
    fs.close()


def test_tampered_staging_never_returns_wrong_bytes(tmp_path: Path) -> None:
    fs = _fs(sink=str(tmp_path / "bs"), add={"cid_version": 1}, memory_cache=0)
    fs.pipe_file("x/a", b"payload")
    for p in (tmp_path / "bs").glob("*/*.data"):
        p.write_bytes(b"tampered")
    with pytest.raises(IntegrityError):
        fs.cat_file("x/a")
    shutil.rmtree(tmp_path / "bs")
    fs.close()


def test_unused_v1_params_constant() -> None:
    assert V1.cid_version == 1


@pytest.mark.parametrize("start,end", [(0, None), (1, (5 << 20) + 3), ((1 << 20) - 1, None), (-(4 << 20) - 7, -1),
                                       (123_457, 123_457 + (4 << 20))])
def test_large_reads_split_across_threads(bigtree: tuple[Path, str, Path], start: int, end: int | None) -> None:
    """Reads of 4 MiB or more are walked in 2 MiB pieces on several threads, joined once."""
    src, root, car = bigtree
    fs = _fs(cars=[str(car)], memory_cache=0)
    want = (src / "big.bin").read_bytes()
    assert fs.cat_file(f"{root}/big.bin", start, end) == want[start:end]
    at = start if start >= 0 else len(want) + start
    with fs.open(f"{root}/big.bin") as f:
        f.seek(at)
        assert f.read(5 << 20) == want[at : at + (5 << 20)]
    fs.close()


def test_car_sink_staging_directory_is_removed_at_exit(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (f"from pyipld.fs import IPFSFileSystem\n"
            f"fs = IPFSFileSystem(sink={str(tmp_path / 'o.car')!r}, use_env=False)\n"
            f"fs.pipe_file('x/a', b'1')\nprint(fs.commit())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().startswith("Qm")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.car"]
