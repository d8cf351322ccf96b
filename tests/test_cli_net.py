"""``pyipld serve`` argument handling and the stop-gap UnixFS writer behind ``get --peer -o``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pyipld import cli
from pyipld._cli.net import cmd_cat_from_peers, cmd_get_from_peers
from pyipld.bitswap._export import iter_file_bytes, write_tree
from pyipld.blockstore import MemoryBlockstore
from pyipld.cid import CidBuilder
from pyipld.dagpb import PBLink, encode_pbnode
from pyipld.errors import ConfigError, UnixFSError, UnsafePathError
from pyipld.unixfs.data import DataType, UnixFSData, encode_unixfs_data
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.params import ImportParams

from ._deterministic import chacha_bytes


class _Sink:
    def __init__(self, store: MemoryBlockstore) -> None:
        self.put = store.put


def directory(store: MemoryBlockstore, entries: list[tuple[bytes, bytes, int]]) -> bytes:
    links = [PBLink(cid, name, size) for name, cid, size in entries]
    node = encode_pbnode(links, encode_unixfs_data(UnixFSData(DataType.DIRECTORY)))
    cid = CidBuilder(0).cid_bytes(0x70, node)
    store.put(cid, node)
    return cid


def test_serve_missing_blockstore_is_one_line_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["serve", "--blockstore", str(tmp_path / "nope"), "--listen", "/ip4/127.0.0.1/tcp/0"]) == 1
    assert capsys.readouterr().err.startswith("Error: blockstore directory not found")


def test_serve_needs_a_source() -> None:
    with pytest.raises(SystemExit):
        cli.main(["serve"])


def test_get_and_cat_need_peers() -> None:
    args = argparse.Namespace(cid="bafkqaaa", peer=[], output=None, car=None)
    with pytest.raises(ConfigError, match="--peer"):
        cmd_get_from_peers(args)
    with pytest.raises(ConfigError, match="--peer"):
        cmd_cat_from_peers(args)


def test_write_tree_file_and_directory(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    big = chacha_bytes("export", 700_000)
    a = import_bytes(big, ImportParams(chunker="size-50000", max_links=4), _Sink(store)).cid.bytes  # type: ignore[arg-type]
    b = import_bytes(b"small\n", ImportParams(cid_version=1), _Sink(store)).cid.bytes  # type: ignore[arg-type]
    empty = import_bytes(b"", ImportParams(), _Sink(store)).cid.bytes  # type: ignore[arg-type]
    sub = directory(store, [(b"b.txt", b, 6)])
    root = directory(store, [(b"big.bin", a, 0), (b"empty", empty, 0), (b"sub", sub, 0)])
    assert b"".join(iter_file_bytes(store, a)) == big
    total = write_tree(store, root, tmp_path / "out")
    assert total == len(big) + 6
    assert (tmp_path / "out" / "big.bin").read_bytes() == big
    assert (tmp_path / "out" / "sub" / "b.txt").read_bytes() == b"small\n"
    assert (tmp_path / "out" / "empty").read_bytes() == b""
    with pytest.raises(UnixFSError, match="directory"):
        list(iter_file_bytes(store, root))


@pytest.mark.parametrize("name", [b"..", b"a/b", b"", b"."])
def test_write_tree_refuses_escaping_names(tmp_path: Path, name: bytes) -> None:
    store = MemoryBlockstore()
    leaf = import_bytes(b"x", ImportParams(cid_version=1), _Sink(store)).cid.bytes  # type: ignore[arg-type]
    root = directory(store, [(name, leaf, 1)])
    with pytest.raises(UnsafePathError):
        write_tree(store, root, tmp_path / "out")
    assert not (tmp_path / "x").exists()
