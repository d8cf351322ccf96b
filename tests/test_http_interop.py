"""Gateway and routing clients against real peers, inside ``unshare -n`` (loopback only).

* Helia's trustless gateway (``@helia/verified-fetch`` as a server, peers/http) serving
  our CARs and the gateway-conformance fixtures: files, ranges, a directory, a path,
  and Helia's cut CAR when a leaf is missing (must be an error, never short data).
* Helia's delegated-routing server pointing at a kubo 0.22 bitswap peer, and at an
  HTTP provider (Helia's gateway): ``pyipld get/cat CID --routing URL``.
"""

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
    proc = run_in_netns([sys.executable, "-m", "tests._interop_http", mode, str(work)], timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result line; rc={proc.returncode}\nstdout={proc.stdout[-2000:]}\nstderr={proc.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert result.get("ok"), f"{result}\nstderr={proc.stderr[-4000:]}"
    return result


def need(*reasons: str | None) -> None:
    for reason in (netns_missing(), helia_http_missing(), *reasons):
        if reason:
            pytest.skip(reason)


def test_client_against_helia_gateway(tmp_path: Path) -> None:
    need()
    result = run("gateway", tmp_path)
    assert result["missing_leaf"] in ("IncompleteResponseError", "GatewayError", "GatewayTimeoutError")


def test_routing_to_kubo_bitswap(tmp_path: Path) -> None:
    need(kubo_missing())
    run("routing-kubo", tmp_path)


def test_routing_to_http_provider(tmp_path: Path) -> None:
    need()
    assert run("routing-http", tmp_path)["blocks"] > 1
