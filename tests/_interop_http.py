"""Runs inside ``unshare -n`` (see tests/test_http_interop.py): our gateway client against
Helia's trustless gateway, and delegated routing (Helia's server) to kubo and to an
HTTP provider. Prints one JSON line ``{"ok": bool, ...}``.

    python -m tests._interop_http gateway|routing-kubo|routing-http WORKDIR
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from pyipld import cli
from pyipld.car.reader import open_car
from pyipld.cid import CID
from pyipld.errors import PyipldError
from pyipld.http import GatewayBlockSource, GatewayClient
from pyipld.http.fetch import iter_file, iter_scope, open_file
from pyipld.libp2p.peer import Identity
from tests._deterministic import chacha_bytes
from tests._gateway_fixtures import B_SUBDIR, B, F, L, M, fixture_car, names
from tests._http_peers import helia_gateway, helia_router
from tests._peers import kubo_peer

FILE_BYTES = 3_000_000


def _add_car(path: Path, car: Path, *extra: str) -> CID:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli.main(["add", "-Q", "--cid-version", "1", "--car", str(car), *extra, str(path)])
    assert rc == 0, rc
    return CID.decode(out.getvalue().strip())


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def gateway(work: Path) -> dict[str, Any]:
    data = chacha_bytes("http-interop", FILE_BYTES)
    (work / "file.bin").write_bytes(data)
    file_cid = _add_car(work / "file.bin", work / "file.car")
    tree = work / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.bin").write_bytes(chacha_bytes("tree-a", 700_000))
    (tree / "sub" / "b.txt").write_bytes(b"hello from a subdirectory\n")
    tree_cid = _add_car(tree, work / "tree.car", "-r")
    cars = [work / "file.car", work / "tree.car", fixture_car("B"), fixture_car("F")]
    result: dict[str, Any] = {}
    with helia_gateway(cars) as url, GatewayClient([url], timeout=20) as client:
        assert b"".join(iter_file(client, file_cid)) == data
        assert b"".join(iter_file(client, file_cid, offset=1_000_000, length=300_000)) == \
            data[1_000_000:1_300_000]
        with open_file(client, str(file_cid), buffering=0) as f:
            f.seek(2_500_000)
            assert f.read(10_000) == data[2_500_000:2_510_000]
        with GatewayBlockSource(client=client) as raw:
            root_block = raw.get(file_cid.bytes)
            assert file_cid.verify(root_block)
        got = names([c for c, _ in iter_scope(client, f"{B}/subdir/multiblock.txt", dag_scope="entity")])
        assert got == [B, B_SUBDIR, M, *L], got
        assert cli.main(["get", f"{tree_cid}", "--gateway", url, "-o", str(work / "out"), "-q"]) == 0
        assert _tree(work / "out") == _tree(tree)
        assert cli.main(["get", f"{tree_cid}/sub/b.txt", "--gateway", url, "-o", str(work / "b.txt"), "-q"]) == 0
        assert (work / "b.txt").read_bytes() == b"hello from a subdirectory\n"
        # Helia ends a CAR early (200) when a deeper block is missing: F lacks its middle leaf.
        try:
            b"".join(iter_file(client, F))
            result["missing_leaf"] = "accepted (WRONG)"
        except PyipldError as exc:
            result["missing_leaf"] = type(exc).__name__
        assert result["missing_leaf"] != "accepted (WRONG)"
        assert len(b"".join(iter_file(client, F, offset=0, length=1000))) == 1000  # the range avoids it
        result["requests"] = client.stats.requests
    return result


def routing_kubo(work: Path) -> dict[str, Any]:
    data = chacha_bytes("routing-kubo", 2_000_000)
    (work / "k.bin").write_bytes(data)
    with kubo_peer(work / "k.bin") as kubo:
        addr, peer = kubo["multiaddr"].split("/p2p/")
        with helia_router({kubo["cid"]: [{"ID": peer, "Addrs": [addr], "Protocols": ["transport-bitswap"]}]}) as url:
            rc = cli.main(["get", kubo["cid"], "--routing", url, "-o", str(work / "got.bin"), "-q", "--timeout", "30"])
    assert rc == 0, rc
    assert (work / "got.bin").read_bytes() == data
    return {"cid": kubo["cid"]}


def routing_http(work: Path) -> dict[str, Any]:
    data = chacha_bytes("routing-http", 1_500_000)
    (work / "h.bin").write_bytes(data)
    cid = _add_car(work / "h.bin", work / "h.car")
    peer = str(Identity.generate().peer_id)
    with helia_gateway([work / "h.car"]) as gw:
        port = gw.rsplit(":", 1)[1]
        table = {str(cid): [{"ID": peer, "Addrs": [f"/ip4/127.0.0.1/tcp/{port}/http"],
                             "Protocols": ["transport-ipfs-gateway-http"]}]}
        with helia_router(table) as url:
            out = io.BytesIO()
            from pyipld._cli import httpfetch

            args = cli.build_parser().parse_args(["cat", str(cid), "--routing", url, "-q"])
            assert httpfetch.cat_http(args, out) == 0
    assert out.getvalue() == data
    with open_car(work / "h.car") as car:
        blocks = sum(1 for _ in car.iter_sections())
    return {"cid": str(cid), "blocks": blocks}


def main() -> int:
    mode, work = sys.argv[1], Path(sys.argv[2])
    try:
        result = {"gateway": gateway, "routing-kubo": routing_kubo, "routing-http": routing_http}[mode](work)
        print(json.dumps({"ok": True, **result}))
    except Exception as exc:  # noqa: BLE001 - reported as JSON; the test prints stderr
        traceback.print_exc()
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
