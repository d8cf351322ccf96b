"""Delegated routing v1 client: both body forms, 404 = none, unknown fields ignored,
providers sorted into gateways and bitswap peers (shared/spec/routing-v1.md)."""

from __future__ import annotations

import json

import httpx
import pytest

from pyipld.cid import CID
from pyipld.errors import GatewayTimeoutError, RoutingError
from pyipld.http.routing import ProviderRecord, RoutingClient, parse_providers, plan_retrieval, providers_path
from pyipld.libp2p.peer import Identity

V0 = "QmYhmPjhFjYFyaoiuNzYv8WGavpSRDwdHWe5B4M5du5Rtk"
PEER = str(Identity.generate(lambda n: b"\x07" * n).peer_id)


def router(handler: object) -> RoutingClient:
    return RoutingClient(["http://router.test/routing/v1/"], transport=httpx.MockTransport(handler), timeout=2)  # type: ignore[arg-type]


def test_request_path_is_cidv1_base32_with_filters() -> None:
    path = providers_path(V0)
    assert path.startswith(f"/routing/v1/providers/{CID.decode(V0).to_v1()}?filter-protocols=")
    assert path.endswith("unknown,transport-bitswap,transport-ipfs-gateway-http")


def test_json_and_ndjson_bodies_ignore_unknown_things() -> None:
    records = [
        {"Schema": "peer", "ID": PEER, "Addrs": ["/ip4/127.0.0.1/tcp/8080/http"], "Protocols": ["transport-ipfs-gateway-http"],
         "transport-ipfs-gateway-http": "oA==", "Future": {"x": 1}},
        {"Schema": "some-future-schema", "ID": PEER},
        {"Schema": "bitswap", "Protocol": "transport-bitswap", "ID": PEER, "Addrs": ["/ip4/10.0.0.1/tcp/4001"]},
        {"Schema": "peer"},  # no ID: skipped
        "not an object",
    ]
    want = [ProviderRecord(PEER, ("/ip4/127.0.0.1/tcp/8080/http",), ("transport-ipfs-gateway-http",)),
            ProviderRecord(PEER, ("/ip4/10.0.0.1/tcp/4001",), ("transport-bitswap",))]
    assert parse_providers("application/json", json.dumps({"Providers": records, "Extra": 1}).encode()) == want
    ndjson = b"\n".join(json.dumps(r).encode() for r in records) + b"\n"
    assert parse_providers("application/x-ndjson", ndjson) == want
    assert parse_providers("application/x-ndjson", b"") == []
    assert parse_providers("application/json", b'{"Providers": null}') == []


@pytest.mark.parametrize(("ctype", "body"), [("application/json", b"{nope"), ("text/html", b"<html>"),
                                             ("application/json", b"[1, 2]"), ("application/x-ndjson", b"{}\n{")])
def test_bad_bodies(ctype: str, body: bytes) -> None:
    with pytest.raises(RoutingError):
        parse_providers(ctype, body)


def test_plan_sorts_providers() -> None:
    key_cid = str(CID(1, 0x72, CID.decode(V0).multihash))  # a peer ID in CIDv1 libp2p-key form
    plan = plan_retrieval([
        ProviderRecord(PEER, ("/ip4/127.0.0.1/tcp/8080/http", "/ip4/127.0.0.1/tcp/4001",
                              "/ip4/127.0.0.1/udp/4001/quic-v1", "/ip4/127.0.0.1/tcp/4002/ws")),
        ProviderRecord(PEER, ("/ip4/127.0.0.1/tcp/8080/http",), ("transport-ipfs-gateway-http",)),
        ProviderRecord(PEER, ("/ip4/127.0.0.1/tcp/9090/http",), ("transport-bitswap",)),
        ProviderRecord(key_cid, ("/ip4/127.0.0.1/tcp/4003",), ("transport-bitswap",)),
        ProviderRecord(PEER, ("/ip4/127.0.0.1/tcp/4009",), ("transport-graphsync-filecoinv1",)),
        ProviderRecord(PEER, ("/dns4/example.com/tcp/80/http",)),  # plain http to a name: refused
    ])
    assert plan.gateways == ["http://127.0.0.1:8080"]
    assert plan.peers == [f"/ip4/127.0.0.1/tcp/4001/p2p/{PEER}", f"/ip4/127.0.0.1/tcp/4003/p2p/{V0}"]


def test_client_negotiates_and_reads_both_forms() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        rec = {"Schema": "peer", "ID": PEER, "Addrs": ["/ip4/127.0.0.1/tcp/8080/http"]}
        if len(seen) == 1:
            return httpx.Response(200, headers={"content-type": "application/x-ndjson"}, content=json.dumps(rec) + "\n")
        return httpx.Response(200, headers={"content-type": "application/json"}, json={"Providers": [rec]})

    with router(handler) as r:
        assert r.plan(V0).gateways == ["http://127.0.0.1:8080"]
        assert r.plan(V0).gateways == ["http://127.0.0.1:8080"]
    assert seen[0].url.path == f"/routing/v1/providers/{CID.decode(V0).to_v1()}"
    assert "application/x-ndjson" in seen[0].headers["accept"]


def test_404_means_none_and_errors_are_typed() -> None:
    with router(lambda request: httpx.Response(404)) as r:
        assert r.find_providers(V0) == []
    with router(lambda request: httpx.Response(422, text="bad cid")) as r, pytest.raises(RoutingError):
        r.find_providers(V0)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with router(slow) as r, pytest.raises(GatewayTimeoutError):
        r.find_providers(V0)


def test_one_router_failing_is_not_fatal() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "bad.test":
            return httpx.Response(500)
        return httpx.Response(200, json={"Providers": [{"Schema": "peer", "ID": PEER, "Addrs": []}]})

    with RoutingClient(["http://bad.test", "http://good.test"], transport=httpx.MockTransport(handler)) as r:
        assert r.find_providers(V0) == [ProviderRecord(PEER)]
