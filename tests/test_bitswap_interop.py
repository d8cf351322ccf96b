"""Bitswap against real kubo 0.22 and Helia 7, both directions, inside ``unshare -n``.

Each case runs ``tests/_interop_bitswap.py`` in a fresh network namespace with
loopback only; it starts the peer, does the transfer, compares with the
source, and prints one JSON line that is checked here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from ._deterministic import chacha_bytes
from ._peers import helia_missing, kubo_missing, netns_missing, run_in_netns

pytestmark = pytest.mark.interop

FILE_BYTES = 6_000_000  # several MB: 23 blocks of 256 KiB plus a root


def need(peer: str) -> None:
    reason = netns_missing() or (kubo_missing() if peer == "kubo" else helia_missing())
    if reason:
        pytest.skip(reason)


def run(mode: str, peer: str, path: Path) -> dict[str, Any]:
    proc = run_in_netns([sys.executable, "-m", "tests._interop_bitswap", mode, peer, str(path)], timeout=400)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result line; rc={proc.returncode}\nstdout={proc.stdout[-2000:]}\nstderr={proc.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert result.get("ok"), f"{result}\nstderr={proc.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bitswap") / "file.bin"
    path.write_bytes(chacha_bytes("bitswap-interop", FILE_BYTES))
    return path


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bitswap-tree") / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "big.bin").write_bytes(chacha_bytes("tree-big", 3_000_000))
    (root / "sub" / "a.txt").write_bytes(b"hello\n")
    (root / "sub" / "deeper" / "b.bin").write_bytes(chacha_bytes("tree-b", 300_000))
    (root / "empty.txt").write_bytes(b"")
    return root


@pytest.mark.parametrize("peer", ["kubo", "helia"])
def test_fetch_file_from_peer(peer: str, big_file: Path) -> None:
    need(peer)
    result = run("fetch", peer, big_file)
    assert result["stream_ok"] and result["tree_ok"] and result["bytes"] >= FILE_BYTES


@pytest.mark.parametrize("peer", ["kubo", "helia"])
def test_fetch_directory_from_peer(peer: str, tree: Path) -> None:
    # Helia: tests/helia_dir_peer.mjs (helia_peer.mjs serves single files only)
    need(peer)
    result = run("fetch", peer, tree)
    assert result["tree_ok"] and result["blocks"] > 5


@pytest.mark.parametrize("peer", ["kubo", "helia"])
def test_peer_fetches_from_our_server(peer: str, big_file: Path) -> None:
    need(peer)
    result = run("serve", peer, big_file)
    assert result["peer_rc"] == 0 and result["blocks_sent"] >= FILE_BYTES // (256 * 1024)


def test_cli_get_tree_with_hamts_from_kubo(tmp_path: Path) -> None:
    # every directory HAMT-sharded (threshold 1, fanout 16: multi-level shards in `wide`), a symlink
    need("kubo")
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "wide").mkdir()
    (root / "big.bin").write_bytes(chacha_bytes("hamt-big", 1_500_000))
    (root / "sub" / "a.txt").write_bytes(b"hello\n")
    (root / "sub" / "deeper" / "b.bin").write_bytes(chacha_bytes("hamt-b", 300_000))
    for i in range(300):
        (root / "wide" / f"entry-{i:03}.txt").write_bytes(b"%d\n" % i)
    (root / "sub" / "link").symlink_to("a.txt")
    result = run("get", "kubo", root)
    assert result["same_cid"] and result["tree_ok"] and result["path_ok"] and result["car_ok"]


def test_cli_serve_get_car_cat(big_file: Path) -> None:
    # our own server and client over loopback TCP (still a peer: namespace only)
    reason = netns_missing()
    if reason:
        pytest.skip(reason)
    result = run("cli", "pyipld", big_file)
    assert result["get_ok"] and result["cat_ok"] and result["identity_ok"]
