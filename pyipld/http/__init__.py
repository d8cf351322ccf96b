"""Trustless HTTP gateway: block selection shared by the server and the client.

:mod:`pyipld.http.traversal` decides which blocks answer a ``?format=car`` request
(path blocks, then the terminal element per ``dag-scope``/``entity-bytes``), with
no I/O of its own.
"""

from __future__ import annotations

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
    "ResolvedScope",
    "format_entity_bytes",
    "iter_scope_blocks",
    "iter_terminal_blocks",
    "parse_entity_bytes",
    "resolve_scope",
]
