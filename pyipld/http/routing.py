"""Delegated routing v1 client: who has a CID (``GET /routing/v1/providers/{cid}``).

Spec: https://specs.ipfs.tech/routing/http-routing-v1/ (notes in
``shared/spec/routing-v1.md``). The pure half parses JSON (``{"Providers": […]}``)
and NDJSON (one record a line) answers, ignoring unknown fields and schemas, and
sorts providers into trustless-gateway base URLs and bitswap multiaddrs; the I/O
half asks each configured router over httpx. A 404 means "none" (IPIP-0513).
Router answers need no trust: everything fetched from a provider is verified by CID.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Self

import httpx

from ..cid import CID, b58encode
from ..errors import CIDError, ConfigError, GatewayError, GatewayTimeoutError, RoutingError
from ._decode import ACCEPT_ENCODING, response_body
from ._request import http_multiaddr_to_url, normalize_gateway_url
from .client import translate_http_error

__all__ = [
    "BITSWAP",
    "GATEWAY_HTTP",
    "ProviderRecord",
    "RetrievalPlan",
    "RoutingClient",
    "parse_providers",
    "plan_retrieval",
    "providers_path",
]

BITSWAP: Final = "transport-bitswap"
GATEWAY_HTTP: Final = "transport-ipfs-gateway-http"
# IPIP-484 filter; "unknown" keeps records without Protocols (Helia's server never sends them).
_FILTER: Final = f"unknown,{BITSWAP},{GATEWAY_HTTP}"
_ACCEPT: Final = "application/x-ndjson, application/json;q=0.8"
_MAX_BODY: Final = 1 << 20  # boxo and kubo cut routing answers at 1 MiB
_MAX_RECORDS: Final = 1000


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    """One ``peer`` (or legacy ``bitswap``) record: ``ID``, ``Addrs``, ``Protocols`` (may be empty)."""

    peer_id: str
    addrs: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()


@dataclass(slots=True)
class RetrievalPlan:
    """Where to fetch from: gateway base URLs and bitswap multiaddrs (``…/p2p/ID``), each once."""

    gateways: list[str] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)


def providers_path(cid: CID | str | bytes) -> str:
    """``/routing/v1/providers/{CIDv1 base32}?filter-protocols=…`` (base32 v1 maximises cache hits)."""
    return f"/routing/v1/providers/{CID.parse(cid).to_v1()}?filter-protocols={_FILTER}"


def _record(obj: Any) -> ProviderRecord | None:
    if not isinstance(obj, dict):
        return None
    schema = obj.get("Schema")
    if schema not in ("peer", "bitswap"):
        return None  # unknown schemas are skipped, not fatal (spec: MUST allow unknown fields)
    peer_id = obj.get("ID")
    if not isinstance(peer_id, str) or not peer_id:
        return None
    addrs = obj.get("Addrs") or []
    protocols = obj.get("Protocols") or []
    if schema == "bitswap" and isinstance(obj.get("Protocol"), str):
        protocols = [obj["Protocol"]]
    return ProviderRecord(
        peer_id,
        tuple(a for a in addrs if isinstance(a, str)) if isinstance(addrs, list) else (),
        tuple(p for p in protocols if isinstance(p, str)) if isinstance(protocols, list) else (),
    )


def parse_providers(content_type: str | None, body: bytes) -> list[ProviderRecord]:
    """Records from a providers answer, by its ``Content-Type`` (JSON or NDJSON).

    Raises:
        RoutingError: the body is not the JSON its type says.
    """
    media = (content_type or "application/json").split(";")[0].strip().lower()
    try:
        if media == "application/x-ndjson":
            items: Iterable[Any] = [json.loads(line) for line in body.splitlines() if line.strip()]
        elif media == "application/json":
            doc = json.loads(body) if body.strip() else {}
            if not isinstance(doc, dict):
                raise RoutingError("routing answer is not a JSON object")
            providers = doc.get("Providers") or []
            items = providers if isinstance(providers, list) else []
        else:
            raise RoutingError(f"routing answer has Content-Type {content_type!r}, not JSON or NDJSON")
    except (ValueError, UnicodeDecodeError) as exc:
        raise RoutingError(f"routing answer is not valid JSON: {exc}") from exc
    records = [r for r in (_record(item) for item in items) if r is not None]
    return records[:_MAX_RECORDS]


def _base58_peer_id(peer_id: str) -> str | None:
    """The ``/p2p/`` form of a peer ID: base58 stays, a CIDv1 libp2p-key becomes its multihash in base58."""
    if peer_id.startswith(("12D3", "Qm", "16U")):
        return peer_id
    try:
        cid = CID.decode(peer_id)
    except CIDError:
        return None
    return b58encode(cid.multihash) if cid.codec == 0x72 else None


def plan_retrieval(records: Iterable[ProviderRecord]) -> RetrievalPlan:
    """Sort providers: HTTP multiaddrs of gateway (or unknown-protocol) peers → gateway URLs;
    TCP multiaddrs of bitswap (or unknown-protocol) peers → dialable ``…/p2p/ID`` multiaddrs."""
    plan = RetrievalPlan()
    for record in records:
        protocols = set(record.protocols)
        unknown = not protocols
        for addr in record.addrs:
            parts = addr.split("/")
            if "http" in parts or "https" in parts:  # an HTTP address (boxo SplitHTTPAddrs), never bitswap
                url = http_multiaddr_to_url(addr)
                if url is not None and (unknown or GATEWAY_HTTP in protocols) and url not in plan.gateways:
                    plan.gateways.append(url)
                continue
            if not (unknown or BITSWAP in protocols):
                continue
            if "tcp" not in parts or any(p in parts for p in ("ws", "wss", "quic", "quic-v1", "webtransport")):
                continue  # our libp2p dialer speaks TCP only
            peer = _base58_peer_id(record.peer_id)
            if peer is None:
                continue
            full = addr if "/p2p/" in addr else f"{addr.rstrip('/')}/p2p/{peer}"
            if full not in plan.peers:
                plan.peers.append(full)
    return plan


class RoutingClient:
    """Asks delegated routers (``--routing URL``) for providers.

    Args:
        routers: base URLs (a trailing ``/routing/v1`` is dropped, like boxo).
        timeout: seconds per network wait.
    """

    def __init__(self, routers: Sequence[str], *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None, trust_env: bool = True) -> None:
        bases = []
        for url in routers:
            base = normalize_gateway_url(url)
            base = base.removesuffix("/routing/v1")
            bases.append(base)
        if not bases:
            raise ConfigError("no routing URL given")
        self.routers = bases
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False, transport=transport,
                                  trust_env=trust_env, headers={"Accept": _ACCEPT, "Accept-Encoding": ACCEPT_ENCODING})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ask(self, base: str, cid: CID | str | bytes) -> list[ProviderRecord]:
        url = base + providers_path(cid)
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code == 404:
                    return []  # "none" (IPIP-0513)
                if response.status_code != 200:
                    raise RoutingError(f"{url}: HTTP {response.status_code} {response.reason_phrase}",
                                       url=url, status=response.status_code)
                body = bytearray()
                for chunk in response_body(response, url):
                    body += chunk
                    if len(body) > _MAX_BODY:
                        del body[_MAX_BODY:]
                        break  # like boxo: keep what fits in 1 MiB
                ctype = response.headers.get("content-type")
        except httpx.HTTPError as exc:
            raise translate_http_error(exc, url) from exc
        if len(body) == _MAX_BODY and (ctype or "").startswith("application/x-ndjson"):
            body = body[: body.rfind(b"\n") + 1]  # drop a record cut in half
        return parse_providers(ctype, bytes(body))

    def find_providers(self, cid: CID | str | bytes) -> list[ProviderRecord]:
        """Providers from every router (duplicates kept once, first router first).

        Raises:
            RoutingError / GatewayTimeoutError: only when every router failed.
        """
        found: list[ProviderRecord] = []
        errors: list[tuple[str, Exception]] = []
        for base in self.routers:
            try:
                records = self._ask(base, cid)
            except (GatewayError, GatewayTimeoutError) as exc:
                errors.append((base, exc))
                continue
            found.extend(r for r in records if r not in found)
        if errors and len(errors) == len(self.routers):
            if len(errors) == 1:
                raise errors[0][1]
            raise RoutingError("every router failed: " + "; ".join(str(e) for _, e in errors), errors=tuple(errors))
        return found

    def plan(self, cid: CID | str | bytes) -> RetrievalPlan:
        """:func:`plan_retrieval` of :meth:`find_providers`."""
        return plan_retrieval(self.find_providers(cid))
