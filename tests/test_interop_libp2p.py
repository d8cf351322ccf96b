"""Interop with real peers (Helia, kubo) on loopback inside ``unshare -n``.

Each case re-executes ``tests/_interop_libp2p.py`` in a fresh network
namespace; that script starts the peer, dials it with our stack, and reports
JSON. Skips with a reason when unshare, node/Helia or the kubo venv is missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests._deterministic import chacha_bytes
from tests._peers import helia_missing, kubo_missing, netns_missing, run_in_netns

pytestmark = pytest.mark.interop

BITSWAP = "/ipfs/bitswap/1.2.0"


def _probe(peer: str, tmp_path: Path, *args: str, timeout: float = 240) -> dict[str, object]:
    reason = netns_missing() or (helia_missing() if peer == "helia" else kubo_missing())
    if reason:
        pytest.skip(reason)
    src = tmp_path / "input.bin"
    src.write_bytes(chacha_bytes("libp2p-interop", 4 << 20))  # 16 leaves of 256 KiB
    proc = run_in_netns([sys.executable, "-m", "tests._interop_libp2p", peer, str(src), *args], timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no result (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
    result: dict[str, object] = json.loads(lines[-1])
    assert proc.returncode == 0, f"{result}\n{proc.stderr[-3000:]}"
    return result


def _check_common(r: dict[str, object]) -> None:
    assert r["connected"] is True  # Noise proved the /p2p/ peer id
    assert r["muxer"] == "/yamux/1.0.0"
    assert r["bitswap_protocol"] == BITSWAP
    assert r["got_root_block"] is True  # reply arrived on a stream the peer opened
    assert r["got_all_leaves"] is True and r["leaves"] == 16  # 4 MiB: yamux windows must grow
    assert r["file_matches"] is True
    served = r["served"]
    assert isinstance(served, dict) and served.get("/ipfs/id/1.0.0", 0) >= 1  # we answered its identify
    assert served.get(BITSWAP, 0) >= 1
    assert r["closed_cleanly"] is True


@pytest.mark.timeout(300)
def test_helia_early_muxer(tmp_path: Path) -> None:
    r = _probe("helia", tmp_path)
    _check_common(r)
    assert BITSWAP in r["their_protocols"]  # type: ignore[operator]
    assert r["yamux_pings_answered"] >= 1  # type: ignore[operator]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_helia_multistream_muxer_and_ping(tmp_path: Path) -> None:
    """Without the Noise early-muxer path; waits for Helia's ~10 s ping probe."""
    r = _probe("helia", tmp_path, "--no-early-muxer", "--wait-ping", "20")
    _check_common(r)
    assert r["served"]["/ipfs/ping/1.0.0"] >= 1  # type: ignore[index]


@pytest.mark.timeout(300)
def test_kubo_ed25519(tmp_path: Path) -> None:
    r = _probe("kubo", tmp_path)
    _check_common(r)
    assert str(r["their_agent"]).startswith("kubo/")
    assert isinstance(r["our_ping_rtt"], float)  # kubo answers /ipfs/ping/1.0.0


@pytest.mark.timeout(300)
def test_kubo_rsa_identity_without_early_muxer(tmp_path: Path) -> None:
    r = _probe("kubo", tmp_path, "--rsa", "--no-early-muxer")
    _check_common(r)
    assert str(r["multiaddr"]).split("/p2p/")[1].startswith("Qm")


def _serve_to(peer: str) -> dict[str, object]:
    reason = netns_missing() or (helia_missing() if peer == "helia" else kubo_missing())
    if reason:
        pytest.skip(reason)
    proc = run_in_netns([sys.executable, "-m", "tests._interop_libp2p", "serve-to", peer], timeout=240)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no result (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
    result: dict[str, object] = json.loads(lines[-1])
    assert proc.returncode == 0, f"{result}\n{proc.stderr[-3000:]}"
    return result


@pytest.mark.timeout(300)
@pytest.mark.parametrize("peer", ["helia", "kubo"])
def test_peer_dials_our_listener(peer: str) -> None:
    """Responder roles: the peer's client dials us, we answer identify, it wants and gets a block."""
    r = _serve_to(peer)
    assert r["fetched_ok"] is True
    assert r["inbound_muxer"] == "/yamux/1.0.0"
    assert r["inbound_early_muxer"] is True  # both peers offer yamux inside Noise
    assert r["wants_seen"] >= 1  # type: ignore[operator]
    assert r["reply_protocol"] == BITSWAP
    assert r["served"]["/ipfs/id/1.0.0"] >= 1  # type: ignore[index]
