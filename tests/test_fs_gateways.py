"""ipfs:// from trustless gateways and delegated routing (loopback test servers): honest and hostile."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("fsspec")
pytest.importorskip("httpx")

from pyipld.blockstore import MemoryBlockstore
from pyipld.car import CarBlockstore
from pyipld.errors import BlockUnavailableError, IntegrityError
from pyipld.fs import IPFSFileSystem
from pyipld.libp2p.peer import Identity

from ._deterministic import chacha_bytes
from ._fs import build_car
from ._gateway import serve


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path, MemoryBlockstore]:
    base = tmp_path_factory.mktemp("gw")
    src = base / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "big.bin").write_bytes(chacha_bytes("gw", 900_000))
    (src / "small.txt").write_bytes(b"through a gateway\n")
    car = base / "t.car"
    root = build_car(src, car)
    store = MemoryBlockstore()
    with CarBlockstore(car) as c:
        for cid in c.iter_cids():
            store.put(cid, c.get(cid))
    return src, root, car, store


def _fs(**kw: object) -> IPFSFileSystem:
    return IPFSFileSystem(use_env=False, skip_instance_cache=True, http_timeout=5, **kw)


def test_read_through_a_gateway(tree: tuple[Path, str, Path, MemoryBlockstore]) -> None:
    src, root, _, store = tree
    with serve(store) as gw:
        fs = _fs(gateways=[gw.url])
        assert fs.cat_file(f"{root}/small.txt") == (src / "small.txt").read_bytes()
        want = (src / "d" / "big.bin").read_bytes()
        assert fs.cat_file(f"{root}/d/big.bin", 300_000, 300_100) == want[300_000:300_100]
        assert fs.ls(f"{root}/d", detail=False) == [f"{root}/d/big.bin"]
        fs.close()


def test_hostile_gateway_then_honest_one(tree: tuple[Path, str, Path, MemoryBlockstore]) -> None:
    src, root, car, store = tree
    with serve(store, "flip") as bad, serve(store) as good:
        only_bad = _fs(gateways=[bad.url])
        with pytest.raises((IntegrityError, BlockUnavailableError)):  # never the flipped bytes
            only_bad.cat_file(f"{root}/small.txt")
        only_bad.close()
        both = _fs(gateways=[bad.url, good.url])
        assert both.cat_file(f"{root}/small.txt") == (src / "small.txt").read_bytes()
        both.close()

    with serve(store, "flip") as bad:
        # as sources of the chain: the lying gateway first, a CAR next
        chained = _fs(gateways=[bad.url], cars=[str(car)])
        assert chained.cat_file(f"{root}/small.txt") == (src / "small.txt").read_bytes()
        assert chained.chain.fetched[f"car:{car}"] > 0
        assert chained.chain.fetched[f"gateways:{bad.url}"] == 0
        assert chained.chain.failures and all(e.source == f"gateways:{bad.url}" for e in chained.chain.failures)
        chained.close()


def test_car_first_gateway_second(tree: tuple[Path, str, Path, MemoryBlockstore], tmp_path: Path) -> None:
    """Combinable in order: a local CAR that lacks a block, then a gateway that has it."""
    src, root, _car, store = tree
    partial = tmp_path / "partial.car"
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "other.txt").write_bytes(b"unrelated")
    build_car(sub, partial)
    with serve(store) as gw:
        fs = _fs(cars=[str(partial)], gateways=[gw.url])
        assert fs.cat_file(f"{root}/small.txt") == (src / "small.txt").read_bytes()
        assert fs.chain.fetched[f"gateways:{gw.url}"] > 0 and fs.chain.fetched[f"car:{partial}"] == 0
        fs.close()


@contextmanager
def router(providers: list[dict[str, object]]) -> Iterator[tuple[str, list[str]]]:
    """A delegated-routing v1 server on 127.0.0.1 answering every providers request the same."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            asked.append(self.path)
            body = json.dumps({"Providers": providers}).encode()
            self.send_response(200 if providers else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_routing_finds_a_gateway_provider(tree: tuple[Path, str, Path, MemoryBlockstore]) -> None:
    src, root, _, store = tree
    peer_id = str(Identity.generate().peer_id)
    with serve(store) as gw:
        port = gw.url.rsplit(":", 1)[1]
        record = {"Schema": "peer", "ID": peer_id, "Addrs": [f"/ip4/127.0.0.1/tcp/{port}/http"],
                  "Protocols": ["transport-ipfs-gateway-http"]}
        with router([record]) as (url, asked):
            fs = _fs(routing=[url])
            assert fs.cat_file(f"{root}/d/big.bin") == (src / "d" / "big.bin").read_bytes()
            # the root's lookup found the gateway; later blocks went straight to it
            assert len(asked) == 1 and asked[0].startswith("/routing/v1/providers/")
            fs.close()


def test_routing_without_providers_is_unavailable(tree: tuple[Path, str, Path, MemoryBlockstore]) -> None:
    _, root, _, _ = tree
    with router([]) as (url, _):
        fs = _fs(routing=[url])
        with pytest.raises(BlockUnavailableError, match="routing"):
            fs.cat_file(f"{root}/small.txt")
        fs.close()


def test_ipfs_gateway_environment_variable(tree: tuple[Path, str, Path, MemoryBlockstore],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    src, root, _, store = tree
    with serve(store) as gw:
        monkeypatch.setenv("IPFS_GATEWAY", gw.url)
        fs = IPFSFileSystem(skip_instance_cache=True)
        assert fs.cat_file(f"{root}/small.txt") == (src / "small.txt").read_bytes()
        fs.close()


def test_read_through_our_own_gateway_server(tree: tuple[Path, str, Path, MemoryBlockstore]) -> None:
    """`pyipld gateway` (pyipld.http.server, Hypercorn) serving the blocks; ipfs:// reading them."""
    pytest.importorskip("hypercorn")
    from pyipld.http.server import ServerConfig, serve_in_thread

    src, root, _, store = tree
    with serve_in_thread(store, ServerConfig(listen="127.0.0.1:0")) as url:
        fs = _fs(gateways=[url])
        assert fs.cat_file(f"{root}/d/big.bin") == (src / "d" / "big.bin").read_bytes()
        assert fs.find(root) == [f"{root}/d/big.bin", f"{root}/small.txt"]
        fs.close()
