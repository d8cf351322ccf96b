"""ipfs:// mistakes surface where they are made: a write with no sink at ``open``, a misspelled or
invalid storage option at construction (not as a late FileNotFoundError or PermissionError)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

fsspec = pytest.importorskip("fsspec")

from pyipld.fs import IPFSFileSystem


def _fs(**kw: object) -> IPFSFileSystem:
    return IPFSFileSystem(use_env=False, skip_instance_cache=True, **kw)


@pytest.mark.parametrize("mode", ["wb", "xb"])
def test_open_for_writing_without_a_sink_is_refused_at_open(mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    fs = _fs()
    with pytest.raises(PermissionError, match="read-only: pass storage option sink="):
        fs.open("out/y.txt", mode)  # before: opened, write() took the bytes, close() refused them
    with pytest.raises(PermissionError, match="read-only"):
        fs.pipe_file("out/y.txt", b"x")  # the same refusal
    with pytest.raises(PermissionError, match="read-only"):
        fsspec.open("ipfs://out/y.txt", "w", use_env=False).open()
    gc.collect()
    assert "Exception ignored" not in capsys.readouterr().err  # no half-made file left to fail in __del__
    assert not fs.exists("out/y.txt")


def test_open_for_writing_with_a_sink_still_works(tmp_path: Path) -> None:
    fs = _fs(sink=str(tmp_path / "blocks"))
    with fs.open("out/y.txt", "wb") as f:
        f.write(b"x")
    assert fs.cat_file("out/y.txt") == b"x"
    with pytest.raises(FileExistsError):
        fs.open("out/y.txt", "xb")


def test_an_unknown_storage_option_is_refused_at_construction(tmp_path: Path) -> None:
    from pyipld.errors import ConfigError

    with pytest.raises(ConfigError, match=r"'car' not recognised \(did you mean 'cars'\?\); accepted: .*cars") as info:
        _fs(car=["x.car"])  # before: ignored, and every read said "no block source configured"
    assert "sink" in str(info.value) and "skip_instance_cache" in str(info.value)
    with pytest.raises(ConfigError, match="'bogus', 'gateway' not recognised"):
        _fs(bogus=1, gateway=["http://127.0.0.1:1"])
    with pytest.raises(ConfigError, match="'car' not recognised"):
        fsspec.filesystem("ipfs", car=["x.car"], use_env=False)
    # what fsspec itself passes to any filesystem is accepted
    fs = _fs(use_listings_cache=False, listings_expiry_time=5, max_paths=10, asynchronous=False, loop=None)
    fs.close()
    fs = fsspec.filesystem("ipfs", use_env=False, skip_instance_cache=True, sink=str(tmp_path / "b"))
    fs.close()


@pytest.mark.parametrize("option,value,message", [
    ("memory_cache", -1, "memory_cache: expected a non-negative number, got -1"),
    ("memory_cache", "lots", "memory_cache: expected a number"),
    ("memory_cache", float("inf"), "non-negative"),
    ("peer_timeout", 0, "peer_timeout: expected a positive number"),
    ("http_timeout", -3, "http_timeout: expected a positive number"),
    ("http_timeout", float("nan"), "positive"),
])
def test_bad_numbers_are_refused_at_construction(option: str, value: object, message: str) -> None:
    from pyipld.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        _fs(**{option: value})
    _fs(memory_cache=0).close()  # 0 turns the cache off


@pytest.mark.parametrize("addr,message", [
    ("garbage", "does not start with '/'"),
    ("/ip4/127.0.0.1/tcp/4001", "has no /p2p/ peer id"),
    ("/ip4/127.0.0.1/udp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA", "unsupported .* 'udp'"),
    ("/ip4/127.0.0.1/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA", "not a TCP multiaddr"),
    ("/ip4/300.0.0.1/tcp/4001", "bad multiaddr /ip4 value"),
])
def test_a_bad_peer_multiaddr_is_refused_at_construction(addr: str, message: str) -> None:
    from pyipld.errors import ConfigError

    with pytest.raises(ConfigError, match=f"peers: .*{message}"):
        _fs(peers=[addr])
    with pytest.raises(ConfigError, match="expected multiaddr strings"):
        _fs(peers=[42])


def test_a_blockstore_that_is_not_a_directory_says_so(tmp_path: Path) -> None:
    from pyipld.errors import ConfigError

    car = tmp_path / "file.car"
    car.write_bytes(b"not a directory")
    with pytest.raises(ConfigError, match=r"file\.car: not a directory \(a CAR file goes in cars="):
        _fs(blockstore=str(car))
    with pytest.raises(ConfigError, match="nope: no such directory"):
        _fs(blockstore=str(tmp_path / "nope"))
    (tmp_path / "blocks").mkdir()
    _fs(blockstore=str(tmp_path / "blocks")).close()


def test_a_path_object_or_a_number_as_cars(tmp_path: Path) -> None:
    """``cars=Path(...)`` failed with TypeError 'PosixPath' object is not iterable (a str worked),
    ``cars=5`` with TypeError and ``cars=[5]`` with AttributeError 'int' object has no attribute 'get'."""
    from pyipld.errors import ConfigError

    from ._fs import build_car

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"hello\n")
    car = tmp_path / "t.car"
    root = build_car(tmp_path / "src", car)
    for cars in (car, [car], (str(car),)):
        assert _fs(cars=cars).cat_file(f"{root}/a.txt") == b"hello\n"
    (tmp_path / "blocks").mkdir()
    _fs(blockstore=tmp_path / "blocks").close()
    with pytest.raises(ConfigError, match="cars: expected a path, URL or a list of them, not a int"):
        _fs(cars=5)
    with pytest.raises(ConfigError, match="cars: expected a path or URL, not a int: 5"):
        _fs(cars=[5])


def test_a_cache_under_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/fsspec.md's ``cache="~/.cache/pyipld-blocks"`` made ./~/.cache/pyipld-blocks."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    _fs(cache="~/.cache/pyipld-blocks").close()
    assert (tmp_path / "home" / ".cache" / "pyipld-blocks").is_dir()
    assert not (tmp_path / "~").exists()


def test_a_cache_that_is_a_file_says_so(tmp_path: Path) -> None:
    """A CAR given as ``cache`` failed with FileExistsError: [Errno 17] File exists."""
    from pyipld.errors import ConfigError

    car = tmp_path / "t.car"
    car.write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"cache .*t\.car: not a directory \(a CAR file goes in cars="):
        _fs(cache=str(car))


def test_block_size_is_the_default_read_block(tmp_path: Path) -> None:
    """`fsspec.open(url, block_size=N)` hands block_size to the filesystem (as with http:// and
    s3://); after unknown options were refused it was refused too, so it is now taken."""
    from pyipld.errors import ConfigError

    fs = _fs(sink=str(tmp_path / "blocks"), block_size=4096)
    with fs.open("out/y.txt", "wb") as f:
        f.write(b"x" * 10_000)
    with fs.open("out/y.txt", "rb") as f:
        assert f.blocksize == 4096 and f.read() == b"x" * 10_000
    for bad in (0, -1, 1.5, "big"):
        with pytest.raises(ConfigError, match="block_size"):
            _fs(block_size=bad)


def test_cache_type_and_options_are_the_defaults_of_opened_files(tmp_path: Path) -> None:
    """`fsspec.open(url, cache_type=…)` hands its extra keywords to the filesystem; the unknown-option
    check refused them, so they are taken as the opened files' defaults (as http:// does)."""
    from pyipld.errors import ConfigError

    fs = _fs(sink=str(tmp_path / "blocks"), cache_type="bytes", cache_options={})
    with fs.open("out/y.txt", "wb") as f:
        f.write(b"y" * 5000)
    with fs.open("out/y.txt", "rb") as f:
        assert type(f.cache).__name__ == "BytesCache" and f.read() == b"y" * 5000
    with fs.open("out/y.txt", "rb", cache_type="none") as f:  # a call's own choice wins
        assert type(f.cache).__name__ == "BaseCache"
    with pytest.raises(ConfigError, match="cache_options"):
        _fs(cache_options=[1])


def test_fsspec_open_with_file_options(tmp_path: Path) -> None:
    """What a user types: the file options of `fsspec.open` reach the filesystem and are used."""
    from pyipld.blockstore import DirectoryBlockstore
    from pyipld.unixfs.importer import import_bytes

    data = bytes(range(256)) * 100
    cid = import_bytes(data, None, DirectoryBlockstore(tmp_path / "bs")).cid
    with fsspec.open(f"ipfs://{cid}", "rb", blockstore=str(tmp_path / "bs"), use_env=False,
                     skip_instance_cache=True, block_size=4096, cache_type="bytes") as f:
        assert f.blocksize == 4096 and type(f.cache).__name__ == "BytesCache"
        assert f.read() == data
