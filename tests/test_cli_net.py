"""``pyipld serve`` argument handling, and ``get``/``cat --peer`` end to end through the CLI's
parser and handlers, against in-memory bitswap peers (the real Noise/yamux stack over
``memory_stream_pair``, no sockets; see ``test_bitswap_client``)."""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path
from typing import Any

import pytest
import trio

from pyipld import cli
from pyipld._cli.argv import parse as parse_argv
from pyipld._cli.net import cat_from_peers, cmd_cat_from_peers, cmd_get_from_peers, get_from_peers
from pyipld.blockstore import MemoryBlockstore
from pyipld.car.export import export_dag
from pyipld.car.reader import open_car
from pyipld.car.v2 import extract_v1
from pyipld.cid import CID, CidBuilder
from pyipld.dagpb import PBLink, encode_pbnode
from pyipld.errors import ConfigError, NotFoundError, UnsafePathError
from pyipld.unixfs.data import DataType, UnixFSData, encode_unixfs_data
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.resolve import resolve_path
from pyipld.unixfs.tree import import_paths
from pyipld.unixfs.walk import load_node

from ._deterministic import chacha_bytes
from .test_bitswap_client import Net, network, start_server

HAMT = ImportParams(hamt_threshold=1, hamt_fanout=16, hamt_threshold_inclusive=True, chunker="size-65536")


class _Sink:
    def __init__(self, store: MemoryBlockstore) -> None:
        self.put = store.put


def directory(store: MemoryBlockstore, entries: list[tuple[bytes, bytes, int]]) -> bytes:
    links = [PBLink(cid, name, size) for name, cid, size in entries]
    node = encode_pbnode(links, encode_unixfs_data(UnixFSData(DataType.DIRECTORY)))
    cid = CidBuilder(0).cid_bytes(0x70, node)
    store.put(cid, node)
    return cid


def make_tree(root: Path) -> Path:
    """Nested dirs, a 40-entry directory, an empty dir and file, a 700 kB file, a symlink."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "wide").mkdir()
    (root / "empty-dir").mkdir()
    (root / "big.bin").write_bytes(chacha_bytes("net-big", 700_000))
    (root / "empty.txt").write_bytes(b"")
    (root / "sub" / "a.txt").write_bytes(b"hello\n")
    (root / "sub" / "deeper" / "b.bin").write_bytes(chacha_bytes("net-b", 70_000))
    for i in range(40):
        (root / "wide" / f"f{i:02}").write_bytes(b"%d\n" % i)
    os.symlink("sub/a.txt", root / "link")
    return root


def tree_snapshot(root: Path) -> dict[str, tuple[str, bytes]]:
    out: dict[str, tuple[str, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path).encode())
            elif path.is_dir():
                out[rel] = ("dir", b"")
            else:
                out[rel] = ("file", path.read_bytes())
    return out


@pytest.fixture(scope="module")
def hamt_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MemoryBlockstore, CID]:
    src = make_tree(tmp_path_factory.mktemp("net-src") / "tree")
    store = MemoryBlockstore()
    root = import_paths([src], HAMT, _Sink(store), recursive=True).cid  # type: ignore[arg-type]
    assert load_node(store, root).sharded  # every directory is a HAMT shard (threshold 1)
    return src, store, root


def parse(*argv: str) -> argparse.Namespace:
    return parse_argv(cli.build_parser(), list(argv), cli.argv_style).namespace


def run_with_peers(store: MemoryBlockstore, argv: list[str], *, stdout: io.BytesIO | None = None,
                   servers: list[Any] | None = None) -> int:
    """Parse ``argv`` like the CLI, serve ``store`` from one in-memory peer, run the handler."""
    async def main() -> int:
        async with network() as net:
            addr, server = await start_server(net, store, 1)
            if servers is not None:
                servers.append(server)
            args = parse(*[a.replace("PEER", addr) for a in argv])
            with trio.fail_after(60):
                if args.command == "cat":
                    return await cat_from_peers(args, stdout or io.BytesIO(), dial=net.dial)
                return await get_from_peers(args, dial=net.dial)
    try:
        return trio.run(main)
    except BaseExceptionGroup as group:  # the test network's nursery wraps the handler's error
        while isinstance(group, BaseExceptionGroup) and len(group.exceptions) == 1:
            group = group.exceptions[0]  # type: ignore[assignment]
        raise group from None


def test_serve_missing_blockstore_is_one_line_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["serve", "--blockstore", str(tmp_path / "nope"), "--listen", "/ip4/127.0.0.1/tcp/0"]) == 1
    assert capsys.readouterr().err.startswith("Error: blockstore directory not found")


def test_serve_needs_a_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve"]) == 1  # a usage error: one line and the short help, exit 1 like kubo
    assert capsys.readouterr().err.startswith("Error: one of the options --blockstore, --car is required\n")


def test_get_and_cat_need_peers() -> None:
    args = argparse.Namespace(cid="bafkqaaa", peer=[], output=None, car=None)
    with pytest.raises(ConfigError, match="--peer"):
        cmd_get_from_peers(args)
    with pytest.raises(ConfigError, match="--peer"):
        cmd_cat_from_peers(args)


def test_cli_without_peer_or_blockstore_says_what_is_needed(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["get", "bafkqaaa"]) == 1
    assert "--peer MULTIADDR" in capsys.readouterr().err
    assert cli.main(["cat", "bafkqaaa"]) == 1
    assert "--peer MULTIADDR" in capsys.readouterr().err


def test_get_tree_with_hamts_and_symlink(hamt_tree: tuple[Path, MemoryBlockstore, CID], tmp_path: Path) -> None:
    src, store, root = hamt_tree
    dest = tmp_path / "out"
    assert run_with_peers(store, ["get", str(root), "--peer", "PEER", "-o", str(dest), "-q"]) == 0
    assert tree_snapshot(dest) == tree_snapshot(src)
    assert os.readlink(dest / "link") == "sub/a.txt"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pyipld-blocks-")]  # scratch store removed


def test_get_path_through_hamt_fetches_only_that_subtree(
    hamt_tree: tuple[Path, MemoryBlockstore, CID], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, store, root = hamt_tree
    kept = tmp_path / "blocks"
    dest = tmp_path / "deeper"
    argv = ["get", f"{root}/sub/deeper", "--peer", "PEER", "-o", str(dest), "--blockstore", str(kept), "-q"]
    assert run_with_peers(store, argv) == 0
    assert tree_snapshot(dest) == tree_snapshot(src / "sub" / "deeper")
    fetched = {p.name for p in kept.rglob("*") if p.is_file()}
    assert 0 < len(fetched) < len(store) // 4  # the path's shards and the sub-tree, not the 700 kB file
    # a file at the end of a path, default output name = last component
    monkeypatch.chdir(tmp_path)
    assert run_with_peers(store, ["get", f"{root}/wide/f07", "--peer", "PEER", "-q"]) == 0
    assert (tmp_path / "f07").read_bytes() == b"7\n"


def test_get_car_is_dag_export_order(hamt_tree: tuple[Path, MemoryBlockstore, CID], tmp_path: Path) -> None:
    _, store, root = hamt_tree
    car = tmp_path / "got.car"
    assert run_with_peers(store, ["get", str(root), "--peer", "PEER", "--car", str(car), "-q"]) == 0
    expected = io.BytesIO()
    export_dag(store, root, expected)  # what `ipfs dag export` writes for this DAG
    assert car.read_bytes() == expected.getvalue()
    # v2, rooted at a resolved path: the index is valid and the roots are the sub-tree's
    car2 = tmp_path / "sub.car"
    argv = ["get", f"{root}/sub", "--peer", "PEER", "--car", str(car2), "--car-version", "2", "-q"]
    assert run_with_peers(store, argv) == 0
    sub = resolve_path(store, f"{root}/sub").cid
    with open_car(car2) as f:
        assert list(f.roots) == [sub] and f.has_index
        index = f.read_index()
        assert index is not None
        f.verify_index(index)
    v1 = io.BytesIO()
    export_dag(store, sub, v1)
    inner = io.BytesIO()
    with open(car2, "rb") as src:
        extract_v1(src, inner)
    assert inner.getvalue() == v1.getvalue()  # the v2 payload is the dag export too


def test_get_missing_block_leaves_nothing(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    leaf = import_bytes(b"x" * 5000, ImportParams(cid_version=1), _Sink(store)).cid.bytes  # type: ignore[arg-type]
    absent = CidBuilder(1).cid_bytes(0x55, b"not served")
    root = directory(store, [(b"a", leaf, 5000), (b"b", absent, 10)])
    dest, car = tmp_path / "out", tmp_path / "out.car"
    for argv in (["-o", str(dest)], ["--car", str(car)]):
        with pytest.raises(NotFoundError):
            run_with_peers(store, ["get", str(CID.from_bytes(root)), "--peer", "PEER", "--timeout", "6", "-q", *argv])
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no DEST, no CAR, no temp files, no scratch store


def test_get_missing_name_on_the_path(hamt_tree: tuple[Path, MemoryBlockstore, CID], tmp_path: Path) -> None:
    _, store, root = hamt_tree
    with pytest.raises(NotFoundError, match='no link named "nope"'):
        run_with_peers(store, ["get", f"{root}/wide/nope", "--peer", "PEER", "-o", str(tmp_path / "o"), "-q"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", [b"..", b"a/b", b"", b"."])
def test_get_refuses_escaping_names(tmp_path: Path, name: bytes) -> None:
    store = MemoryBlockstore()
    leaf = import_bytes(b"x", ImportParams(cid_version=1), _Sink(store)).cid.bytes  # type: ignore[arg-type]
    root = directory(store, [(name, leaf, 1)])
    (tmp_path / "work").mkdir()
    with pytest.raises(UnsafePathError):
        run_with_peers(store, ["get", str(CID.from_bytes(root)), "--peer", "PEER", "-o", str(tmp_path / "work" / "out"),
                               "-q"])
    assert not (tmp_path / "x").exists() and not (tmp_path / "work" / "x").exists()


def test_get_refuses_existing_destination_before_fetching(tmp_path: Path) -> None:
    """A directory root onto a file is refused once the root is known, before the tree is
    fetched (a file root replaces the file, as in kubo: tests/test_get_destination.py)."""
    leaf = import_bytes(b"data", ImportParams(), _Sink(MemoryBlockstore())).cid
    store = MemoryBlockstore()  # the root alone: a fetch of the tree would fail with NotFoundError
    root = directory(store, [(b"a", leaf.bytes, 4)])
    (tmp_path / "taken").write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        run_with_peers(store, ["get", str(CID.from_bytes(root)), "--peer", "PEER", "-o", str(tmp_path / "taken"),
                               "-q"])
    assert (tmp_path / "taken").read_bytes() == b"mine"


@pytest.mark.parametrize(("offset", "length"), [(None, None), (0, 10), (65_530, 20), (699_990, None), (5, 0),
                                                (800_000, None)])
def test_cat_from_peers_with_range(offset: int | None, length: int | None) -> None:
    data = chacha_bytes("net-cat", 700_000)
    store = MemoryBlockstore()
    root = import_bytes(data, ImportParams(chunker="size-65536", max_links=3), _Sink(store)).cid  # type: ignore[arg-type]
    argv = ["cat", str(root), "--peer", "PEER", "-q"]
    if offset is not None:
        argv += ["--offset", str(offset)]
    if length is not None:
        argv += ["--length", str(length)]
    out = io.BytesIO()
    assert run_with_peers(store, argv, stdout=out) == 0
    start = offset or 0
    assert out.getvalue() == (data[start:] if length is None else data[start:start + length])


def test_cat_directory_is_an_error(hamt_tree: tuple[Path, MemoryBlockstore, CID]) -> None:
    _, store, root = hamt_tree
    with pytest.raises(Exception, match="not a file|directory|shard"):
        run_with_peers(store, ["cat", str(root), "--peer", "PEER", "-q"])


def test_cat_from_peers_takes_a_path(hamt_tree: tuple[Path, MemoryBlockstore, CID]) -> None:
    """``ipfs cat CID/dir/name`` over the network: resolved through the (HAMT) directories."""
    src, store, root = hamt_tree
    out = io.BytesIO()
    assert run_with_peers(store, ["cat", f"{root}/sub/a.txt", "--peer", "PEER", "-q"], stdout=out) == 0
    assert out.getvalue() == (src / "sub" / "a.txt").read_bytes()


def test_peer_arguments_on_get_and_cat() -> None:
    args = parse("get", "bafkqaaa/x", "--peer", "/ip4/1.2.3.4/tcp/1/p2p/X", "--peer", "/ip4/1.2.3.4/tcp/2/p2p/Y",
                 "--car", "o.car", "--car-version", "2", "--timeout", "5", "--window", "8", "-q")
    assert (args.path, args.peer, args.car, args.car_version, args.timeout, args.window, args.quiet) == (
        "bafkqaaa/x", ["/ip4/1.2.3.4/tcp/1/p2p/X", "/ip4/1.2.3.4/tcp/2/p2p/Y"], "o.car", 2, 5.0, 8, True)
    args = parse("cat", "bafkqaaa", "--peer", "/ip4/1.2.3.4/tcp/1/p2p/X", "-o", "3", "-l", "4")
    assert (args.cid, args.peer, args.offset, args.length, args.quiet) == (["bafkqaaa"], ["/ip4/1.2.3.4/tcp/1/p2p/X"],
                                                                         3, 4, False)


_ = Net  # re-exported helper type used by run_with_peers' network()


def test_get_of_a_file_streams_it_with_its_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a file root is streamed to DEST as it arrives (no scratch blockstore, no extract pass)
    import pyipld._cli.net as net_mod

    data = chacha_bytes("get-stream", 300_000)
    store = MemoryBlockstore()
    params = ImportParams(chunker="size-20000", max_links=4, mode=0o640, mtime=(1_600_000_000, 5))
    root = str(import_bytes(data, params, _Sink(store)).cid)  # type: ignore[arg-type]
    monkeypatch.setattr(net_mod, "fetch_path", None)  # the DAG-into-a-store path must not run
    dest = tmp_path / "out.bin"
    servers: list[Any] = []
    assert run_with_peers(store, ["get", root, "--peer", "PEER", "-o", str(dest), "-q"], servers=servers) == 0
    assert dest.read_bytes() == data
    # each block asked for once: the root fetched to resolve the path is not wanted again
    # (Helia does not answer a second want for a block it just sent)
    assert servers[0].blocks_sent == len(store)
    st = dest.stat()
    assert st.st_mode & 0o777 == 0o640 and st.st_mtime_ns == 1_600_000_000 * 10**9 + 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]  # no temp file, no scratch store
    # --blockstore keeps every block fetched; --no-metadata leaves the mode alone
    kept, dest2 = tmp_path / "kept", tmp_path / "out2.bin"
    argv = ["get", root, "--peer", "PEER", "-o", str(dest2), "--blockstore", str(kept), "--no-metadata", "-q"]
    assert run_with_peers(store, argv) == 0
    assert dest2.read_bytes() == data and dest2.stat().st_mtime_ns != st.st_mtime_ns
    assert len([p for p in kept.rglob("*") if p.is_file()]) == len(store)


def test_get_of_a_file_with_a_missing_block_leaves_nothing(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    root = import_bytes(chacha_bytes("get-missing", 100_000), ImportParams(chunker="size-10000"),
                        _Sink(store)).cid  # type: ignore[arg-type]
    served = MemoryBlockstore()
    for i, cid in enumerate(store):
        if cid == root.bytes or i % 3:  # every third leaf is missing
            served.put(cid, store.get(cid))
    store = served
    with pytest.raises(NotFoundError):
        run_with_peers(store, ["get", str(root), "--peer", "PEER", "-o", str(tmp_path / "out"), "--timeout", "6", "-q"])
    assert list(tmp_path.iterdir()) == []
