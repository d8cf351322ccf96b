"""Trustless HTTP retrieval: a verifying gateway client and a delegated-routing client.

    from pyipld.http import GatewayBlockSource
    source = GatewayBlockSource(["http://127.0.0.1:8080"])   # a BlockSource: get(cid) verified, has(cid)

See docs/gateway.md.
"""

from __future__ import annotations

from ._request import EntityBytes, gateways_from_environment, http_multiaddr_to_url, parse_entity_bytes
from .client import GatewayClient
from .source import GatewayBlockSource

__all__ = [
    "EntityBytes",
    "GatewayBlockSource",
    "GatewayClient",
    "gateways_from_environment",
    "http_multiaddr_to_url",
    "parse_entity_bytes",
]
