"""Let httpx's connections read response bodies up to 1 MiB per ``recv``.

httpcore reads a body 64 KiB at a time (``HTTP11Connection.READ_NUM_BYTES``), and each read
passes through httpcore and h11 in Python: a 1 GiB CAR is 16,384 such reads, and on loopback
they cost about as much CPU as hashing the blocks (benchmarks/README.md, gateway client).
:func:`widen_reads` wraps the connection pool's network backend so that each ``read`` asks
the socket for up to :data:`READ_BYTES`; ``recv`` still returns only what has arrived, so
small answers are unchanged, and h11 accepts a read of any size (its header-size limit
applies to an incomplete head, not to how much one read returns).

The pool's backend is an httpcore extension point, but httpx does not expose it: the wrap
reaches ``client._transport._pool._network_backend`` and does nothing (returns False) where
that shape is not found, so a future httpx only loses the speed-up.
"""

from __future__ import annotations

from typing import Any, Final

import httpcore
import httpx

__all__ = ["READ_BYTES", "widen_reads"]

READ_BYTES: Final = 1 << 20


class _WideStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data: bytes = self._inner.read(max(max_bytes, READ_BYTES), timeout)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _WideStream(self._inner.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _WideBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self.inner = inner

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _WideStream(self.inner.connect_tcp(*args, **kwargs))

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _WideStream(self.inner.connect_unix_socket(*args, **kwargs))

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def widen_reads(client: httpx.Client) -> bool:
    """Wrap the backend of every httpcore pool ``client`` uses (its transport and proxy
    mounts); True if at least one was wrapped."""
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    done = False
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(pool, httpcore.ConnectionPool) and isinstance(backend, httpcore.NetworkBackend):
            if not isinstance(backend, _WideBackend):
                pool._network_backend = _WideBackend(backend)
            done = True
    return done
