"""A new user's first mistakes with the Python API get a clear typed error, never a wrong result.

Each case was found by trying the API as a new user would (regressions: the old code took a str
of paths letter by letter, a str of data for a path, and failed inside with AttributeError).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pyipld.blockstore import MemoryBlockstore
from pyipld.cid import CID
from pyipld.errors import CIDError, ConfigError, PyipldError
from pyipld.unixfs.directory import build_directory
from pyipld.unixfs.importer import import_bytes, import_file
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.reader import open_file
from pyipld.unixfs.tree import import_directory, import_paths
from pyipld.unixfs.walk import iter_directory, load_node, lookup


def test_one_path_where_a_list_is_expected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    with pytest.raises(ConfigError, match=r"paths must be a list of paths, not one str: pass \['d'\]"):
        import_paths("d")
    with pytest.raises(ConfigError, match="not one PosixPath"):
        import_paths(tmp_path / "d")  # type: ignore[arg-type]
    assert import_paths(["d"]).cid == import_paths([tmp_path / "d"]).cid


def test_dask_import_refuses_one_path_too(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from pyipld.distributed import import_paths_dask

    with pytest.raises(ConfigError, match="paths must be a list of paths"):
        import_paths_dask(str(tmp_path))


@pytest.mark.parametrize("params", [{"cid_version": 1}, "v1", 1])
def test_params_must_be_import_params(tmp_path: Path, params: object) -> None:
    (tmp_path / "f").write_bytes(b"x")
    for call in (lambda: import_paths([tmp_path / "f"], params),  # type: ignore[arg-type]
                 lambda: import_file(tmp_path / "f", params),  # type: ignore[arg-type]
                 lambda: import_bytes(b"x", params)):  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=f"params must be an ImportParams, not a {type(params).__name__}"):
            call()


def test_a_dict_of_params_names_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"ImportParams\(\*\*\{'cid_version': 1\}\)"):
        import_bytes(b"x", {"cid_version": 1})  # type: ignore[arg-type]
    fixed = import_bytes(b"x", ImportParams(cid_version=1))
    assert fixed.cid.version == 1


def test_a_cid_version_given_as_text_is_shown_as_text() -> None:
    with pytest.raises(ConfigError, match=r"unknown CID version: '1'"):
        ImportParams(cid_version="1").resolve()  # type: ignore[arg-type]


def test_import_bytes_refuses_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The old code read a file named like the text when there was one."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hello").write_bytes(b"not what was asked")
    with pytest.raises(ConfigError, match="import_bytes takes bytes, not a str"):
        import_bytes("hello")  # type: ignore[arg-type]
    assert import_bytes(bytearray(b"hello")).cid == import_bytes(memoryview(b"hello")).cid


@pytest.mark.parametrize("value", [5, 1.5, None, ["Qm"]])
def test_cid_of_the_wrong_type(value: object) -> None:
    with pytest.raises(CIDError):
        CID.decode(value)  # type: ignore[arg-type]
    with pytest.raises(CIDError):
        CID.parse(value)  # type: ignore[arg-type]
    assert issubclass(CIDError, PyipldError)


def test_open_file_takes_an_ipfs_path() -> None:
    """`open_file(store, "CID/x")` said "invalid CID 'Qm…/x'"; it now resolves the path first."""
    store = MemoryBlockstore()
    f = import_bytes(b"hello\n", None, store)
    d = CID.from_bytes(build_directory([(b"x", f.cid.bytes, f.tsize)], None, store).cid)
    for root in (f"{d}/x", f"/ipfs/{d}/x", str(f.cid), f.cid, f.cid.bytes):
        assert open_file(store, root).read() == b"hello\n"
    with pytest.raises(PyipldError):
        open_file(store, f"{d}/nope")


def test_iter_directory_and_lookup_name_the_node_they_take() -> None:
    """A CID for the node failed with AttributeError ('CID' object has no attribute 'pb'),
    and a str name made `lookup` answer None for an entry that is there."""
    store = MemoryBlockstore()
    f = import_bytes(b"hello\n", None, store)
    d = build_directory([(b"x", f.cid.bytes, f.tsize)], None, store).cid
    for node in (CID.from_bytes(d), str(CID.from_bytes(d)), d):
        with pytest.raises(ConfigError, match=r"iter_directory takes a UnixFSNode, not a .*load_node\(source, cid\)"):
            list(iter_directory(store, node))  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="lookup takes a UnixFSNode"):
            lookup(store, node, b"x")  # type: ignore[arg-type]
    loaded = load_node(store, d)
    with pytest.raises(ConfigError, match="lookup takes the name as bytes, not a str"):
        lookup(store, loaded, "x")  # type: ignore[arg-type]
    assert [e.name for e in iter_directory(store, loaded)] == [b"x"]
    assert lookup(store, loaded, b"x") is not None


def test_import_directory_of_a_missing_path_or_a_list(tmp_path: Path) -> None:
    """A missing path said NotADirectoryError; a list said TypeError from os.fsencode."""
    with pytest.raises(FileNotFoundError, match="No such file or directory"):
        import_directory(tmp_path / "nope")
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        import_directory(tmp_path / "f")
    with pytest.raises(ConfigError, match=r"import_directory takes one path, not a list \(several: import_paths"):
        import_directory([tmp_path])  # type: ignore[arg-type]


def test_import_file_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    """A number or None said "'int' object is not iterable", a text file and a list of paths
    failed inside with TypeError (sequence item 0 / memoryview)."""
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ConfigError, match="import_file takes a path, bytes, a binary file or an iterable of bytes, not a int"):
        import_file(5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not a NoneType"):
        import_file(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"takes one path, not a list of paths \(several: import_paths"):
        import_file([tmp_path / "f"])  # type: ignore[list-item]
    with open(tmp_path / "f") as text, pytest.raises(ConfigError, match="not a text one: open it with 'rb'"):
        import_file(text)  # type: ignore[arg-type]
    assert import_file([b"x"]).cid == import_file(tmp_path / "f").cid


def test_a_path_or_str_where_a_block_store_goes(tmp_path: Path) -> None:
    """A CAR path as the source, or a str as the sink, failed inside with AttributeError
    ('str' object has no attribute 'get' / 'put')."""
    store = MemoryBlockstore()
    cid = import_bytes(b"hello\n", None, store).cid
    for call in (lambda: open_file("data.car", cid), lambda: open_file(str(tmp_path), f"{cid}/x")):  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=r"source must be a block source \(with get\(cid\)\), not a str .*CarBlockstore"):
            call()
    (tmp_path / "f").write_bytes(b"x")
    for call in (lambda: import_file(tmp_path / "f", None, "out.car"),  # type: ignore[arg-type]
                 lambda: import_bytes(b"x", None, {}),  # type: ignore[arg-type]
                 lambda: import_paths([tmp_path / "f"], None, "out")):  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=r"sink must be a block sink \(with put\(cid, data\)\), not a .*open_car_sink"):
            call()
