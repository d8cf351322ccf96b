"""Real peers: Helia's ``@helia/http`` and ``@helia/verified-fetch`` fetch files and
directories through ``pyipld gateway`` and get the right bytes (inside ``unshare -n``).

The clients come from shared/peers/http (installed by scripts/setup-peers.sh into
``$PYIPLD_HELIA_HTTP_DIR``); the run itself is tests/_interop_gateway.py.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from ._peers import netns_missing, run_in_netns

pytestmark = pytest.mark.interop


def _helia_http_missing() -> str | None:
    if not shutil.which("node"):
        return "node is not installed"
    where = os.environ.get("PYIPLD_HELIA_HTTP_DIR")
    if not where:
        return "PYIPLD_HELIA_HTTP_DIR is not set (scripts/setup-peers.sh installs the Helia HTTP clients)"
    if not (Path(where) / "node_modules").is_dir() or not (Path(where) / "helia_http_cat.mjs").is_file():
        return f"Helia HTTP clients not installed in {where} (npm ci there)"
    return None


def test_helia_clients_fetch_through_our_gateway(tmp_path: Path) -> None:
    reason = netns_missing() or _helia_http_missing()
    if reason:
        pytest.skip(reason)
    proc = run_in_netns([sys.executable, "-m", "tests._interop_gateway", str(tmp_path)], timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, f"rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    cases = json.loads(lines[-1])["cases"]
    failed = [c for c in cases if not c["ok"]]
    assert len(cases) == 8 and not failed, json.dumps(failed, indent=1)
    print({c["name"]: c["seconds"] for c in cases})
