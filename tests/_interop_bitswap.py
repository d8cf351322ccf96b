"""Bitswap interop driver (run inside ``unshare -n``; see tests/test_bitswap_interop.py).

``python -m tests._interop_bitswap fetch kubo|helia PATH``
    start the peer serving PATH (file or directory; Helia: file only), fetch it
    with our client (DAG into a blockstore, and a file streamed in order), write
    it out, compare with PATH.
``python -m tests._interop_bitswap serve kubo|helia FILE``
    import FILE with our importer, serve it with our BitswapServer, have the
    peer fetch it (``kubo_oracle.py fetch`` / ``helia_peer.mjs fetch``), compare.
Prints one JSON line; exit status 0 only when everything matched. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from pyipld.bitswap._export import write_tree
from pyipld.bitswap.client import BitswapClient
from pyipld.bitswap.server import BitswapServer
from pyipld.blockstore import MemoryBlockstore
from pyipld.cid import CID
from pyipld.unixfs.importer import import_file
from pyipld.unixfs.params import ImportParams
from tests._peers import (
    HELIA_DIR,
    KUBO_ORACLE,
    KUBO_PYTHON,
    helia_peer,
    in_isolated_netns,
    kubo_peer,
)


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def same_tree(a: Path, b: Path) -> bool:
    if a.is_file():
        return b.is_file() and sha256_file(a) == sha256_file(b)
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    return all(same_tree(a / n, b / n) for n in cmp.common)


async def fetch(maddr: str, root: str, path: Path, out: dict[str, Any]) -> None:
    store = MemoryBlockstore()
    if path.is_file():
        # 1. stream the file in order (blocks also land in `store`)
        t0 = time.perf_counter()
        h = hashlib.sha256()
        n = 0
        async with BitswapClient.connect([maddr], want_timeout=20, idle_timeout=60) as client:
            async for chunk in client.iter_file(root, sink=store):
                h.update(chunk)
                n += len(chunk)
        out["stream_seconds"] = round(time.perf_counter() - t0, 3)
        out["stream_ok"] = h.hexdigest() == sha256_file(path) and n == path.stat().st_size
    # 2. the whole DAG, breadth first, on a new connection with a new identity
    # (Helia does not resend a block to the same peer within 5 s)
    dag = MemoryBlockstore()
    t0 = time.perf_counter()
    async with BitswapClient.connect([maddr], want_timeout=20, idle_timeout=60) as client:
        stats = await client.fetch_dag(root, dag)
    out["dag_seconds"] = round(time.perf_counter() - t0, 3)
    out["blocks"] = stats.blocks
    out["bytes"] = stats.bytes
    assert all(CID.from_bytes(c).verify(dag.get(c)) for c in dag)
    out["same_blocks"] = not len(store) or set(store) == set(dag)
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "out"
        write_tree(dag, CID.decode(root).bytes, dest)
        out["tree_ok"] = same_tree(path, dest)


def cmd_fetch(peer: str, path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": "fetch", "peer": peer, "path": str(path)}
    manager = kubo_peer(path) if peer == "kubo" else helia_peer(path)
    with manager as ready:
        out["cid"] = ready["cid"]
        async def bounded() -> None:
            with trio.fail_after(300):
                await fetch(ready["multiaddr"], ready["cid"], path, out)

        trio.run(bounded)
    out["ok"] = bool(out.get("tree_ok")) and out.get("stream_ok", True) is True and out["same_blocks"]
    return out


def cmd_serve(peer: str, path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": "serve", "peer": peer, "path": str(path)}
    store = MemoryBlockstore()
    params = ImportParams() if peer == "kubo" else ImportParams(cid_version=1)

    class Sink:
        put = store.put

    root = import_file(path, params, Sink())  # type: ignore[arg-type]
    out["cid"] = str(root.cid)

    async def run() -> None:
        server = BitswapServer(store)
        async with trio.open_nursery() as nursery:
            addrs = await nursery.start(server.serve, "/ip4/127.0.0.1/tcp/0")
            out["multiaddr"] = str(addrs[0])
            with tempfile.TemporaryDirectory() as tmp:
                dest = Path(tmp) / "fetched"
                if peer == "kubo":
                    argv = [str(KUBO_PYTHON), str(KUBO_ORACLE), "fetch", str(addrs[0]), str(root.cid), str(dest)]
                    cwd = None
                else:
                    argv = ["node", str(HELIA_DIR / "helia_peer.mjs"), "fetch", str(addrs[0]), str(root.cid),
                            "--out", str(dest), "--timeout", "120000"]
                    cwd = HELIA_DIR
                t0 = time.perf_counter()
                proc = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False, cwd=cwd)
                out["peer_seconds"] = round(time.perf_counter() - t0, 3)
                out["peer_rc"] = proc.returncode
                if proc.returncode:
                    out["peer_stderr"] = proc.stderr.decode(errors="replace")[-2000:]
                out["ok"] = proc.returncode == 0 and dest.is_file() and same_tree(path, dest)
            out["blocks_sent"] = server.blocks_sent
            nursery.cancel_scope.cancel()

    async def bounded() -> None:
        with trio.fail_after(300):
            await run()

    trio.run(bounded)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["fetch", "serve"])
    ap.add_argument("peer", choices=["kubo", "helia"])
    ap.add_argument("path", type=Path)
    a = ap.parse_args()
    if not in_isolated_netns():
        print(json.dumps({"ok": False, "error": "not in an isolated network namespace"}))
        return 2
    try:
        out = cmd_fetch(a.peer, a.path) if a.mode == "fetch" else cmd_serve(a.peer, a.path)
    except Exception as exc:  # report, do not hide: the test prints this line
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out), flush=True)
    return 0 if out.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
