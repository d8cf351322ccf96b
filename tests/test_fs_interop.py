"""ipfs:// against real peers, inside ``unshare -n`` (loopback only): Helia's trustless gateway,
kubo 0.22 over bitswap, and Helia's delegated router pointing at kubo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from ._http_peers import helia_http_missing
from ._peers import kubo_missing, netns_missing, run_in_netns

pytestmark = pytest.mark.interop


def run(mode: str, work: Path) -> dict[str, Any]:
    proc = run_in_netns([sys.executable, "-m", "tests._interop_fs", mode, str(work)], timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result line; rc={proc.returncode}\nstdout={proc.stdout[-2000:]}\nstderr={proc.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert result.get("ok"), f"{result}\nstderr={proc.stderr[-4000:]}"
    return result


def need(*reasons: str | None) -> None:
    pytest.importorskip("fsspec")
    for reason in (netns_missing(), *reasons):
        if reason:
            pytest.skip(reason)


def test_ipfs_through_helia_gateway(tmp_path: Path) -> None:
    need(helia_http_missing())
    run("helia-gateway", tmp_path)


def test_ipfs_over_bitswap_from_kubo(tmp_path: Path) -> None:
    need(kubo_missing())
    run("kubo-bitswap", tmp_path)


def test_ipfs_through_routing_to_kubo(tmp_path: Path) -> None:
    need(kubo_missing(), helia_http_missing())
    run("routing-kubo", tmp_path)
