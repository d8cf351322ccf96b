"""Runs inside ``unshare -n`` (see tests/test_fs_interop.py): ipfs:// reading through Helia's
trustless gateway (peers/http), over bitswap from kubo 0.22, and through delegated routing
(Helia's router) to kubo. Prints one JSON line ``{"ok": bool, ...}``.

    python -m tests._interop_fs helia-gateway|kubo-bitswap|routing-kubo WORKDIR
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

from pyipld.fs import IPFSFileSystem
from tests._deterministic import chacha_bytes
from tests._fs import build_car
from tests._http_peers import helia_gateway, helia_router
from tests._peers import kubo_peer


def _check(fs: IPFSFileSystem, path: str, data: bytes) -> None:
    assert fs.cat_file(path) == data
    assert fs.cat_file(path, 1_000_000, 1_000_100) == data[1_000_000:1_000_100]
    with fs.open(path) as f:
        f.seek(len(data) - 5000)
        assert f.read() == data[-5000:]


def helia_gateway_case(work: Path) -> dict[str, Any]:
    src = work / "src"
    (src / "sub").mkdir(parents=True)
    data = chacha_bytes("fs-helia", 2_000_000)
    (src / "sub" / "f.bin").write_bytes(data)
    root = build_car(src, work / "t.car")
    with helia_gateway([work / "t.car"]) as url:
        fs = IPFSFileSystem(gateways=[url], use_env=False, skip_instance_cache=True, http_timeout=20)
        assert fs.ls(root, detail=False) == [f"{root}/sub"]
        _check(fs, f"{root}/sub/f.bin", data)
        fs.close()
    return {"root": root}


def kubo_bitswap_case(work: Path) -> dict[str, Any]:
    data = chacha_bytes("fs-kubo", 1_500_000)
    (work / "k.bin").write_bytes(data)
    with kubo_peer(work / "k.bin") as kubo:
        fs = IPFSFileSystem(peers=[kubo["multiaddr"]], use_env=False, skip_instance_cache=True, peer_timeout=30)
        _check(fs, kubo["cid"], data)
        fs.close()
    return {"cid": kubo["cid"]}


def routing_kubo_case(work: Path) -> dict[str, Any]:
    data = chacha_bytes("fs-routing", 1_200_000)
    (work / "r.bin").write_bytes(data)
    with kubo_peer(work / "r.bin") as kubo:
        addr, peer = kubo["multiaddr"].split("/p2p/")
        table = {kubo["cid"]: [{"ID": peer, "Addrs": [addr], "Protocols": ["transport-bitswap"]}]}
        with helia_router(table) as url:
            fs = IPFSFileSystem(routing=[url], use_env=False, skip_instance_cache=True, peer_timeout=30)
            _check(fs, kubo["cid"], data)
            fs.close()
    return {"cid": kubo["cid"]}


def main() -> int:
    mode, work = sys.argv[1], Path(sys.argv[2])
    cases = {"helia-gateway": helia_gateway_case, "kubo-bitswap": kubo_bitswap_case, "routing-kubo": routing_kubo_case}
    try:
        print(json.dumps({"ok": True, **cases[mode](work)}))
    except Exception as exc:  # noqa: BLE001 - reported as JSON; the test prints stderr
        traceback.print_exc()
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
