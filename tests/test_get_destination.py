"""Where ``get -o DEST`` writes, as boxo's tar extractor (kubo 0.22 ``ipfs get``) decides it.

boxo v0.11.0 ``tar/extractor.go``: a file or symlink root goes *inside* DEST, under the root's
name (the last path component, or the CID), when DEST is an existing directory (``os.Lstat``:
a symlink there is not followed); otherwise it is written at DEST, removing a file, symlink or
empty directory in its way (``os.Remove`` then create). A directory root is ``MkdirAll``'d:
pyipld writes it whole or not at all, so it refuses a DEST that is not an empty directory
(README, intended differences). Every case runs through the three sources ``get`` reads from:
a blockstore, a bitswap peer and a trustless gateway.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from pyipld import cli
from pyipld.blockstore import DirectoryBlockstore, MemoryBlockstore
from pyipld.cid import CID, CidBuilder
from pyipld.dagpb import PBLink, encode_pbnode
from pyipld.errors import PyipldError, UnsafePathError
from pyipld.unixfs.data import DataType, UnixFSData, encode_unixfs_data
from pyipld.unixfs.extract import extract, get_destination, rename_replacing
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.params import ImportParams

from ._gateway import serve
from .test_cli_net import run_with_peers

DATA = b"the file's bytes\n" * 1000


def _put(store: MemoryBlockstore, node: bytes) -> str:
    cid = CidBuilder(0).cid_bytes(0x70, node)
    store.put(cid, node)
    return str(CID.from_bytes(cid))


def _store() -> tuple[MemoryBlockstore, str, str, str]:
    """A store holding a file, a directory ``{f: file}`` and a symlink; their CIDs."""
    store = MemoryBlockstore()
    f = import_bytes(DATA, ImportParams(), store)
    d = _put(store, encode_pbnode([PBLink(f.cid.bytes, b"f", f.size)],
                                  encode_unixfs_data(UnixFSData(DataType.DIRECTORY))))
    link = _put(store, encode_pbnode([], encode_unixfs_data(UnixFSData(DataType.SYMLINK, data=b"target/elsewhere"))))
    return store, str(f.cid), d, link


Get = Callable[[MemoryBlockstore, list[str], Path], int]


def _from_blockstore(store: MemoryBlockstore, argv: list[str], tmp: Path) -> int:
    bs = tmp / "bs"
    disk = DirectoryBlockstore(bs)
    for cid in store:
        disk.put(cid, store.get(cid))
    return cli.main([*argv, "--blockstore", str(bs)])


def _from_peer(store: MemoryBlockstore, argv: list[str], tmp: Path) -> int:
    return run_with_peers(store, [*argv, "--peer", "PEER"])


def _from_gateway(store: MemoryBlockstore, argv: list[str], tmp: Path) -> int:
    with serve(store) as gw:
        return cli.main([*argv, "--gateway", gw.url])


SOURCES = {"blockstore": _from_blockstore, "peer": _from_peer, "gateway": _from_gateway}


@pytest.fixture(params=sorted(SOURCES))
def get(request: pytest.FixtureRequest) -> Get:
    return SOURCES[request.param]


def _run(get: Get, store: MemoryBlockstore, argv: list[str], tmp: Path,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    try:
        rc = get(store, [*argv, "-q"], tmp)
    except PyipldError as exc:  # the peer runner calls the handler directly: errors as cli.main prints them
        rc, err = 1, f"Error: {exc}\n"
    except OSError as exc:
        rc, err = 1, f"Error: {cli.os_error_text(exc)}\n"
    else:
        err = capsys.readouterr().err
    return rc, err


def _no_temporaries(where: Path) -> bool:
    return not [p for p in where.rglob("*") if p.name.startswith(".pyipld-tmp-")]


def test_a_file_replaces_an_existing_file(get: Get, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: `get FILE -o EXISTING` failed with "[Errno 17] refusing to replace an
    existing entry: ''" (and over the network with "destination exists"); kubo replaces it."""
    store, f, _, _ = _store()
    dest = tmp_path / "out"
    dest.write_bytes(b"old contents")
    assert _run(get, store, ["get", f, "-o", str(dest)], tmp_path, capsys) == (0, "")
    assert dest.read_bytes() == DATA
    assert _no_temporaries(tmp_path)


def test_a_file_replaces_a_symlink_without_following_it(get: Get, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    store, f, _, _ = _store()
    victim = tmp_path / "victim"
    victim.write_bytes(b"must stay")
    dest = tmp_path / "out"
    dest.symlink_to(victim)
    assert _run(get, store, ["get", f, "-o", str(dest)], tmp_path, capsys) == (0, "")
    assert not dest.is_symlink() and dest.read_bytes() == DATA
    assert victim.read_bytes() == b"must stay"


@pytest.mark.parametrize("path_suffix", ["", "/f"])
def test_a_file_goes_inside_an_existing_directory(get: Get, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  path_suffix: str) -> None:
    """`ipfs get CID -o DIR` writes DIR/CID (or DIR/f for CID/f); pyipld refused the directory."""
    store, f, d, _ = _store()
    root = d + path_suffix if path_suffix else f
    dest = tmp_path / "downloads"
    dest.mkdir()
    (dest / "other").write_bytes(b"kept")
    assert _run(get, store, ["get", root, "-o", str(dest)], tmp_path, capsys) == (0, "")
    name = "f" if path_suffix else f
    assert (dest / name).read_bytes() == DATA
    assert sorted(p.name for p in dest.iterdir()) == sorted([name, "other"])
    assert _run(get, store, ["get", root, "-o", str(dest)], tmp_path, capsys) == (0, "")  # again: replaced
    assert (dest / name).read_bytes() == DATA
    assert _no_temporaries(tmp_path)


def test_a_file_does_not_replace_a_non_empty_directory(get: Get, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    store, f, _, _ = _store()
    dest = tmp_path / "downloads"
    (dest / f).mkdir(parents=True)
    (dest / f / "mine").write_bytes(b"kept")
    rc, err = _run(get, store, ["get", f, "-o", str(dest)], tmp_path, capsys)
    assert rc == 1
    assert err == f"Error: destination is a directory that is not empty: {dest / f}\n"
    assert (dest / f / "mine").read_bytes() == b"kept"
    assert _no_temporaries(tmp_path)


def test_a_file_replaces_an_empty_directory_inside(get: Get, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """boxo's os.Remove takes an empty directory out of the way of a file root."""
    store, f, _, _ = _store()
    dest = tmp_path / "downloads"
    (dest / f).mkdir(parents=True)
    assert _run(get, store, ["get", f, "-o", str(dest)], tmp_path, capsys) == (0, "")
    assert (dest / f).read_bytes() == DATA


def test_a_symlink_replaces_a_file(get: Get, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store, _, _, link = _store()
    dest = tmp_path / "out"
    dest.write_bytes(b"old")
    assert _run(get, store, ["get", link, "-o", str(dest)], tmp_path, capsys) == (0, "")
    assert os.readlink(dest) == "target/elsewhere"
    assert _no_temporaries(tmp_path)


def test_a_directory_is_not_merged_into_a_non_empty_directory(get: Get, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """An intended difference (README): kubo merges; pyipld writes a tree whole or not at all."""
    store, _, d, _ = _store()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "mine").write_bytes(b"kept")
    rc, err = _run(get, store, ["get", d, "-o", str(dest)], tmp_path, capsys)
    assert rc == 1
    assert err == f"Error: destination exists and is not an empty directory: {dest}\n"
    assert [p.name for p in dest.iterdir()] == ["mine"]


def test_a_directory_gets_its_missing_parents(get: Get, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """boxo's extractor MkdirAll's a directory root: `ipfs get DIR -o a/b/c` makes a and a/b
    (pyipld said "No such file or directory: a/b")."""
    store, _, d, _ = _store()
    dest = tmp_path / "a" / "b" / "c"
    assert _run(get, store, ["get", d, "-o", str(dest)], tmp_path, capsys) == (0, "")
    assert (dest / "f").read_bytes() == DATA
    assert _no_temporaries(tmp_path)


def test_a_file_needs_its_parent(get: Get, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """boxo's extractFile creates its temporary file in DEST's directory: a missing one fails."""
    store, f, _, _ = _store()
    rc, err = _run(get, store, ["get", f, "-o", str(tmp_path / "a" / "x")], tmp_path, capsys)
    assert rc == 1 and err.startswith("Error: No such file or directory: ")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_saving_is_printed_once_after_the_path_resolves(get: Get, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str], kind: str) -> None:
    """kubo resolves the path, then prints `Saving file(s) to DEST` once; over a peer or a gateway
    pyipld printed it first, so a bad path printed it before the error."""
    store, f, d, _ = _store()
    root = f if kind == "file" else d
    dest = tmp_path / "out"
    capsys.readouterr()
    assert get(store, ["get", root, "-o", str(dest)], tmp_path) == 0
    assert capsys.readouterr().out == f"Saving file(s) to {dest}\n"
    try:
        rc = get(store, ["get", f"{d}/nope", "-o", str(tmp_path / "bad")], tmp_path)
    except PyipldError:  # the peer runner calls the handler directly
        rc = 1
    assert rc == 1
    assert capsys.readouterr().out == ""


# -- the library ---------------------------------------------------------------------------------


def test_get_destination_rules(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_bytes(b"")
    (tmp_path / "link").symlink_to(tmp_path / "dir")
    raw = os.fsencode(tmp_path)
    assert get_destination(tmp_path / "dir", "file", "name") == raw + b"/dir/name"
    assert get_destination(tmp_path / "dir", "symlink", b"name") == raw + b"/dir/name"
    assert get_destination(tmp_path / "dir", "directory", "name") == raw + b"/dir"
    assert get_destination(tmp_path / "file", "file", "name") == raw + b"/file"
    assert get_destination(tmp_path / "link", "file", "name") == raw + b"/link"  # never followed
    assert get_destination(tmp_path / "none", "file", "name") == raw + b"/none"
    for bad in ("..", ".", "a/b", ""):
        with pytest.raises(UnsafePathError):
            get_destination(tmp_path / "dir", "file", bad)


def test_a_refusal_names_the_destination(tmp_path: Path) -> None:
    """Regression: the root's refusal carried an empty file name (the path inside the tree)."""
    store, f, _, _ = _store()
    dest = tmp_path / "out"
    dest.write_bytes(b"mine")
    with pytest.raises(FileExistsError) as info:
        extract(store, f, dest)
    assert info.value.filename == str(dest)
    assert dest.read_bytes() == b"mine"


def test_replace_never_takes_a_fifo_or_device(tmp_path: Path) -> None:
    store, _, _, link = _store()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(FileExistsError, match="not a file, symlink or directory"):
        extract(store, link, fifo, replace=True)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    tmp = tmp_path / "tmp"
    tmp.write_bytes(b"")
    with pytest.raises(FileExistsError):
        rename_replacing(str(tmp), str(fifo), dir_fd=None, shown=str(fifo))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
