"""A :class:`~pyipld.blockstore.BlockSource` that fetches verified raw blocks from gateways.

Plug it in wherever a blockstore is read: :class:`~pyipld.unixfs.reader.UnixFSReader`
then fetches only the blocks a byte range needs, ``resolve_path`` only the blocks on
a path, and the ``ipfs://`` filesystem can put it behind a local cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Self

import httpx

from .._blockcache import MemoryBlockCache
from ..errors import NotFoundError
from ._request import MAX_BLOCK_BYTES, gateways_from_environment
from .client import GatewayClient

__all__ = ["GatewayBlockSource"]

_CACHE_BYTES: Final = 8 << 20  # recently fetched blocks, so has() then get() costs one request


class GatewayBlockSource:
    """``get(cid) -> bytes`` (hash-checked, at most 2 MiB) and ``has(cid)`` over trustless gateways.

    Args:
        gateways: base URLs, tried in order (see :class:`GatewayClient`); when empty, the
            user's gateways from ``IPFS_GATEWAY`` or the IPIP-280 gateway file.
        timeout: seconds per network wait (connect, headers, each body gap).
        race: ask all gateways at once and keep the first verified block.
        client: use this :class:`GatewayClient` instead of making one (the other
            arguments are then ignored).
        cache_bytes: keep this many bytes of recent blocks.

    Thread-safe: ``get`` may be called from several threads (httpx pools connections).
    Raises :class:`~pyipld.errors.NotFoundError` when no gateway has the block, and
    :class:`~pyipld.errors.GatewayError` / ``IntegrityError`` when none gave a valid one.
    """

    def __init__(self, gateways: Sequence[str] = (), *, timeout: float = 30.0, race: bool = False,
                 max_block_bytes: int = MAX_BLOCK_BYTES, client: GatewayClient | None = None,
                 cache_bytes: int = _CACHE_BYTES, transport: httpx.BaseTransport | None = None) -> None:
        if client is None and not gateways:
            gateways = gateways_from_environment()  # IPIP-280; empty -> ConfigError below, never a public default
        self.client = client or GatewayClient(gateways, timeout=timeout, race=race,
                                              max_block_bytes=max_block_bytes, transport=transport)
        self._own_client = client is None
        self._cache = MemoryBlockCache(cache_bytes)

    def get(self, cid: bytes) -> bytes:
        cached = self._cache.get(cid)
        if cached is not None:
            return bytes(cached)  # only bytes are put here; bytes() of bytes is the same object
        data = self.client.get_block(cid)
        self._cache.put(cid, data)
        return data

    def has(self, cid: bytes) -> bool:
        """True when a gateway returns the block (it is fetched, verified and cached)."""
        try:
            self.get(cid)
        except NotFoundError:
            return False
        return True

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
