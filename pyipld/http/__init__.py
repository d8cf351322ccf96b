"""Trustless HTTP: a verifying gateway client, delegated routing, and the block selection
shared by the server and the client.

    from pyipld.http import GatewayBlockSource
    source = GatewayBlockSource(["http://127.0.0.1:8080"])   # a BlockSource: get(cid) verified, has(cid)

:mod:`pyipld.http.traversal` decides which blocks answer a ``?format=car`` request
(path blocks, then the terminal element per ``dag-scope``/``entity-bytes``), with
no I/O of its own; the client runs it over what a gateway sent. See docs/gateway.md.
"""

from __future__ import annotations

from ._request import gateways_from_environment, http_multiaddr_to_url
from .client import GatewayClient
from .fetch import fetch_car, fetch_dag, iter_file, open_file
from .routing import RoutingClient
from .source import GatewayBlockSource
from .traversal import (
    DAG_SCOPES,
    CarScope,
    DagScope,
    ResolvedScope,
    format_entity_bytes,
    iter_scope_blocks,
    iter_terminal_blocks,
    parse_entity_bytes,
    resolve_scope,
)

__all__ = [
    "DAG_SCOPES",
    "CarScope",
    "DagScope",
    "GatewayBlockSource",
    "GatewayClient",
    "ResolvedScope",
    "RoutingClient",
    "fetch_car",
    "fetch_dag",
    "format_entity_bytes",
    "gateways_from_environment",
    "http_multiaddr_to_url",
    "iter_file",
    "iter_scope_blocks",
    "iter_terminal_blocks",
    "open_file",
    "parse_entity_bytes",
    "resolve_scope",
]
