"""Start the Helia HTTP peers (``shared/peers/http``) for interop tests, loopback only.

Installed by ``scripts/setup-peers.sh`` into ``$dest/http``; ``PYIPLD_HELIA_HTTP_DIR``
points there (default ``.peers/http`` in the checkout). Like :mod:`tests._peers`, the
servers refuse to start outside an isolated network namespace and every wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests._peers import ROOT, _require_netns, _stop

HELIA_HTTP_DIR = Path(os.environ.get("PYIPLD_HELIA_HTTP_DIR") or ROOT / ".peers" / "http")


def helia_http_missing() -> str | None:
    if not shutil.which("node"):
        return "node is not installed"
    if not (HELIA_HTTP_DIR / "gateway_server.mjs").is_file() or not (HELIA_HTTP_DIR / "node_modules").is_dir():
        return f"Helia HTTP peers not installed in {HELIA_HTTP_DIR} (scripts/setup-peers.sh; PYIPLD_HELIA_HTTP_DIR)"
    return None


def _wait_ready(proc: subprocess.Popen[Any], ready: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout * 20) + 1):
        if ready.exists() and ready.stat().st_size:
            line = ready.read_text().strip()
            return line.split()[-1]
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited (rc={proc.returncode}) before it was ready")
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    raise TimeoutError(f"not ready within {timeout} s")


@contextmanager
def _node(script: str, args: Sequence[str], timeout: float = 60) -> Iterator[str]:
    _require_netns()
    with tempfile.TemporaryDirectory(prefix="pyipld-helia-http-") as tmp:
        ready = Path(tmp) / "ready"
        argv = ["node", str(HELIA_HTTP_DIR / script), "--port", "0", "--ready-file", str(ready), "--quiet", *args]
        proc = subprocess.Popen(argv, cwd=HELIA_HTTP_DIR, stdout=subprocess.DEVNULL, stderr=sys.stderr,
                                start_new_session=True)
        try:
            yield _wait_ready(proc, ready, timeout)
        finally:
            _stop(proc)


@contextmanager
def helia_gateway(cars: Sequence[str | os.PathLike[str]], *, timeout_ms: int = 10000) -> Iterator[str]:
    """``gateway_server.mjs`` (@helia/verified-fetch) serving ``cars``; yields its base URL."""
    with _node("gateway_server.mjs", ["--timeout-ms", str(timeout_ms), *map(os.fspath, cars)]) as url:
        yield url


@contextmanager
def helia_router(providers: dict[str, list[dict[str, Any]]]) -> Iterator[str]:
    """``routing_server.mjs`` answering from ``providers``; yields its base URL."""
    with tempfile.TemporaryDirectory(prefix="pyipld-router-") as tmp:
        table = Path(tmp) / "providers.json"
        table.write_text(json.dumps(providers))
        with _node("routing_server.mjs", ["--providers", str(table)]) as url:
            yield url
