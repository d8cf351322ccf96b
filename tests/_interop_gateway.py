"""Helia's HTTP clients (``@helia/http``, ``@helia/verified-fetch``) fetch through OUR gateway.

Run by tests/test_gateway_helia.py inside ``unshare -n`` (only ``lo`` up):

    python -m tests._interop_gateway WORKDIR

Imports a multi-block file (1,200 leaves: Helia asks for every block at once, ~1,000
requests in flight on kept-alive connections), a directory and a HAMT-sharded
directory into a blockstore, serves it with :func:`pyipld.http.server.serve_in_thread`
on 127.0.0.1, runs the peer kit's scripts (shared/peers/http, installed by
scripts/setup-peers.sh into ``$PYIPLD_HELIA_HTTP_DIR``) against it, and prints one
JSON line: ``{"cases": [{name, ok, expected, got, status, stderr}]}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from pyipld.blockstore import DirectoryBlockstore
from pyipld.http.server import ServerConfig, serve_in_thread
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.tree import import_paths

from ._deterministic import chacha_bytes
from ._peers import in_isolated_netns

NODE_TIMEOUT = 120.0


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main(workdir: str) -> int:
    if not in_isolated_netns():
        print(json.dumps({"error": "refusing to run outside an isolated network namespace"}))
        return 2
    helia_http = Path(os.environ["PYIPLD_HELIA_HTTP_DIR"])
    work = Path(workdir)
    store = DirectoryBlockstore(work / "blocks")

    big = chacha_bytes("helia-gateway", 1200 * 1024 + 77)
    big_root = import_bytes(big, ImportParams(cid_version=1, chunker="size-1024"), store).cid
    mid = chacha_bytes("helia-gateway-mid", 150 * 1024 + 5)  # verified-fetch asks for each block twice
    mid_root = import_bytes(mid, ImportParams(cid_version=1, chunker="size-1024"), store).cid
    tree = work / "tree"
    (tree / "sub").mkdir(parents=True)
    small = b"hello from the pyipld gateway\n"
    (tree / "sub" / "small.txt").write_bytes(small)
    medium = chacha_bytes("medium", 300_000)
    (tree / "medium.bin").write_bytes(medium)
    dir_root = import_paths([tree], ImportParams(cid_version=1), store, recursive=True).cid
    hamt_dir = work / "hamt"
    hamt_dir.mkdir()
    for i in range(40):
        (hamt_dir / f"f{i}.txt").write_bytes(f"file {i}\n".encode())
    hamt_params = ImportParams(cid_version=1, hamt_threshold=1, hamt_fanout=16, hamt_threshold_inclusive=True)
    hamt_root = import_paths([hamt_dir], hamt_params, store, recursive=True).cid

    cases: list[dict[str, object]] = []

    def node(name: str, script: str, args: list[str], expected: bytes, *, expect_status: str | None = None) -> None:
        cmd = ["node", str(helia_http / script), "--gateway", url, "--timeout-ms", str(int(NODE_TIMEOUT * 900)),
               *args]
        began = time.monotonic()
        try:
            proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=NODE_TIMEOUT,
                                  cwd=helia_http)
            out, err, rc = proc.stdout.strip(), proc.stderr.strip()[-800:], proc.returncode
        except subprocess.TimeoutExpired:
            out, err, rc = "", "timed out", -1
        fields = out.split()
        got = fields[3] if len(fields) > 3 and fields[2] == "sha256" else None
        status = fields[5] if len(fields) > 5 and fields[4] == "status" else None
        ok = rc == 0 and got == _sha(expected) and (expect_status is None or status == expect_status)
        cases.append({"name": name, "ok": ok, "rc": rc, "expected": _sha(expected), "got": got, "status": status,
                      "stdout": out[-300:], "stderr": err if not ok else "",
                      "seconds": round(time.monotonic() - began, 1)})

    with serve_in_thread(store, ServerConfig(listen="127.0.0.1:0")) as url:
        node("helia-http cat 1200-leaf file", "helia_http_cat.mjs", [str(big_root)], big)
        node("helia-http cat range", "helia_http_cat.mjs",
             [str(big_root), "--offset", "500000", "--length", "70000"], big[500_000:570_000])
        node("helia-http cat HAMT path", "helia_http_cat.mjs", [str(hamt_root), "--path", "f33.txt"], b"file 33\n")
        node("verified-fetch file", "verified_fetch_client.mjs", [f"ipfs://{mid_root}"], mid, expect_status="200")
        node("verified-fetch file (session)", "verified_fetch_client.mjs", ["--session", f"ipfs://{mid_root}"], mid,
             expect_status="200")
        node("verified-fetch dir path", "verified_fetch_client.mjs", [f"ipfs://{dir_root}/medium.bin"], medium,
             expect_status="200")
        node("verified-fetch HAMT path", "verified_fetch_client.mjs", [f"ipfs://{hamt_root}/f7.txt"], b"file 7\n",
             expect_status="200")
        node("verified-fetch raw block", "verified_fetch_client.mjs",
             ["--accept", "application/vnd.ipld.raw", f"ipfs://{dir_root}/sub/small.txt"],
             small, expect_status="200")  # a 30-byte CIDv1 file is one raw leaf: the block is the file
    print(json.dumps({"cases": cases}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
