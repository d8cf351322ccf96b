"""Bitswap interop driver (run inside ``unshare -n``; see tests/test_bitswap_interop.py).

``python -m tests._interop_bitswap fetch kubo|helia PATH``
    start the peer serving PATH (file or directory; Helia: file only), fetch it
    with our client (DAG into a blockstore, and a file streamed in order), write
    it out, compare with PATH.
``python -m tests._interop_bitswap serve kubo|helia FILE``
    import FILE with our importer, serve it with our BitswapServer, have the
    peer fetch it (``kubo_oracle.py fetch`` / ``helia_peer.mjs fetch``), compare.
``python -m tests._interop_bitswap get kubo DIR``
    kubo serves DIR added with every directory HAMT-sharded (threshold 1, fanout
    16); ``pyipld get --peer`` writes it back (-o), a path through the shards,
    and a CAR that must equal the ``dag export`` of our own import of DIR.
Prints one JSON line; exit status 0 only when everything matched. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trio

from pyipld._cli.net import serve_server
from pyipld.bitswap.client import BitswapClient
from pyipld.blockstore import MemoryBlockstore
from pyipld.cid import CID
from pyipld.unixfs.extract import extract
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
        extract(dag, CID.decode(root), dest)
        out["tree_ok"] = same_tree(path, dest)


@contextmanager
def helia_dir_peer(path: Path) -> Iterator[dict[str, Any]]:
    """tests/helia_dir_peer.mjs serving a directory (helia_peer.mjs serves files only)."""
    from tests._peers import _read_json_line, _require_netns, _stop

    _require_netns()
    with tempfile.TemporaryDirectory(prefix="pyipld-helia-dir-") as tmp:
        work = Path(tmp)
        shutil.copy(Path(__file__).with_name("helia_dir_peer.mjs"), work)
        shutil.copy(HELIA_DIR / "node20-polyfill.mjs", work)
        (work / "node_modules").symlink_to(HELIA_DIR / "node_modules")
        proc = subprocess.Popen(["node", str(work / "helia_dir_peer.mjs"), str(path)], cwd=work,
                                stdout=subprocess.PIPE, stderr=sys.stderr, start_new_session=True)
        try:
            yield _read_json_line(proc, "multiaddr", 60)
        finally:
            _stop(proc)


def cmd_fetch(peer: str, path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": "fetch", "peer": peer, "path": str(path)}
    if peer == "kubo":
        manager = kubo_peer(path)
    else:
        manager = helia_peer(path) if path.is_file() else helia_dir_peer(path)
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
        server = serve_server(store)  # with `pyipld serve`'s limits per peer
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


def car_blocks_ok(car: Path, root: bytes, path: Path) -> bool:
    """CARv1 header names ``root``; every section's block hashes to its CID; the file rebuilds."""
    import dag_cbor

    from pyipld._varint import decode_varint

    raw = car.read_bytes()
    n, k = decode_varint(raw)
    header = dag_cbor.decode(raw[k : k + n])
    assert isinstance(header, dict) and header["version"] == 1
    if [bytes(c) for c in header["roots"]] != [root]:  # type: ignore[union-attr]
        return False
    store = MemoryBlockstore()
    off = k + n
    while off < len(raw):
        size, k = decode_varint(raw, off)
        cid, used = CID.decode_prefix(raw, off + k)
        data = raw[off + k + used : off + k + size]
        if not cid.verify(data):
            return False
        store.put(cid.bytes, data)
        off += k + size
    with tempfile.TemporaryDirectory() as tmp:
        extract(store, CID.from_bytes(root), Path(tmp) / "x")
        return same_tree(path, Path(tmp) / "x")


def cmd_cli(path: Path) -> dict[str, Any]:
    """``pyipld serve`` in a subprocess; ``get -o``, ``get --car`` and ``cat`` against it."""
    import argparse as _argparse
    import io

    from pyipld._cli.net import cmd_cat_from_peers, cmd_get_from_peers
    from pyipld.blockstore import DirectoryBlockstore

    out: dict[str, Any] = {"mode": "cli", "path": str(path)}
    with tempfile.TemporaryDirectory() as tmp:
        blocks = DirectoryBlockstore(Path(tmp) / "blocks")
        root = import_file(path, ImportParams(), blocks)
        key = Path(tmp) / "key"
        argv = [sys.executable, "-m", "pyipld", "serve", "--blockstore", str(Path(tmp) / "blocks"),
                "--listen", "/ip4/127.0.0.1/tcp/0", "--identity", str(key), "--lifetime", "120"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            maddr = proc.stdout.readline().strip()  # bounded by --lifetime
            out["multiaddr"] = maddr
            from pyipld.libp2p.peer import Identity
            out["identity_ok"] = maddr.endswith("/p2p/" + str(Identity.load(key).peer_id))
            common = {"peer": [maddr], "identity": None, "timeout": 30.0, "window": 32, "quiet": True}
            dest = Path(tmp) / "got.bin"
            cmd_get_from_peers(_argparse.Namespace(cid=str(root.cid), output=str(dest), car=None, **common))
            out["get_ok"] = same_tree(path, dest)
            car = Path(tmp) / "got.car"
            cmd_get_from_peers(_argparse.Namespace(cid=str(root.cid), output=None, car=str(car), **common))
            out["car_bytes"] = car.stat().st_size
            out["car_ok"] = car_blocks_ok(car, root.cid.bytes, path)
            buf = io.BytesIO()
            real = sys.stdout
            wrapper = io.TextIOWrapper(buf)
            sys.stdout = wrapper
            try:
                cmd_cat_from_peers(_argparse.Namespace(cid=str(root.cid), **common))
            finally:
                sys.stdout = real
                wrapper.detach()
            out["cat_ok"] = hashlib.sha256(buf.getvalue()).hexdigest() == sha256_file(path)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    out["ok"] = out["identity_ok"] and out["get_ok"] and out["cat_ok"] and out["car_ok"]
    return out


def same_links(a: Path, b: Path) -> bool:
    """Every symlink under ``a`` is a symlink under ``b`` with the same target."""
    for dirpath, dirnames, filenames in os.walk(a):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                other = b / path.relative_to(a)
                if not other.is_symlink() or os.readlink(other) != os.readlink(path):
                    return False
    return True


def cmd_get(path: Path) -> dict[str, Any]:
    """``pyipld get --peer`` (the real command line) against kubo serving HAMT-sharded directories."""
    from pyipld import cli
    from pyipld.car.export import export_dag
    from pyipld.unixfs.tree import import_paths

    params = ImportParams(hamt_threshold=1, hamt_fanout=16, hamt_threshold_inclusive=True)  # kubo 0.22: inclusive
    ours = MemoryBlockstore()

    class Sink:
        put = ours.put

    local = import_paths([path], params, Sink(), recursive=True).cid  # type: ignore[arg-type]
    out: dict[str, Any] = {"mode": "get", "path": str(path), "our_cid": str(local)}
    with kubo_peer(path, extra=["--hamt-threshold", "1", "--hamt-fanout", "16"]) as ready, \
            tempfile.TemporaryDirectory() as tmp:
        cid, maddr = ready["cid"], ready["multiaddr"]
        out["cid"] = cid
        out["same_cid"] = cid == str(local)
        common = ["--peer", maddr, "--timeout", "60", "-q"]
        dest = Path(tmp) / "tree"
        out["get_rc"] = cli.main(["get", cid, "-o", str(dest), *common])
        out["tree_ok"] = out["get_rc"] == 0 and same_tree(path, dest) and same_links(path, dest)
        one = Path(tmp) / "one"
        out["path_rc"] = cli.main(["get", f"{cid}/sub/deeper", "-o", str(one), *common])
        out["path_ok"] = out["path_rc"] == 0 and same_tree(path / "sub" / "deeper", one)
        car = Path(tmp) / "tree.car"
        out["car_rc"] = cli.main(["get", cid, "--car", str(car), *common])
        expected = Path(tmp) / "expected.car"
        with open(expected, "wb") as f:
            export_dag(ours, local, f)
        out["car_ok"] = out["car_rc"] == 0 and car.read_bytes() == expected.read_bytes()
    out["ok"] = all(out[k] for k in ("same_cid", "tree_ok", "path_ok", "car_ok"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["fetch", "serve", "cli", "get"])
    ap.add_argument("peer", choices=["kubo", "helia", "pyipld"])
    ap.add_argument("path", type=Path)
    a = ap.parse_args()
    if not in_isolated_netns():
        print(json.dumps({"ok": False, "error": "not in an isolated network namespace"}))
        return 2
    try:
        if a.mode == "cli":
            out = cmd_cli(a.path)
        elif a.mode == "get":
            out = cmd_get(a.path)
        else:
            out = cmd_fetch(a.peer, a.path) if a.mode == "fetch" else cmd_serve(a.peer, a.path)
    except Exception as exc:  # noqa: BLE001 - reported: the test prints this line
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out), flush=True)
    return 0 if out.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
