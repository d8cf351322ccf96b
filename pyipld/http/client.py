"""Trustless gateway client: verified raw blocks and CAR streams from one or more gateways.

The transport is httpx (a synchronous ``httpx.Client``: pooled keep-alive connections,
streamed bodies, per-phase timeouts, usable from threads and from fsspec). Request
and response rules live in :mod:`pyipld.http._request`; this module only drives them.

Gateway selection: gateways are tried in the configured order, skipping those in
back-off (after a failure a gateway waits ``backoff_s * 2**(failures-1)`` seconds,
at most ``max_backoff_s``, before it is tried first again; while every gateway is
backing off they are still tried, soonest first). ``race=True`` asks all gateways
for a raw block at once and keeps the first verified answer.

Every byte is checked before it is returned: a raw body must hash to the CID asked
for and be at most :data:`~pyipld.http._request.MAX_BLOCK_BYTES`; a CAR section must
hash to its own CID (unexpected and duplicate blocks are dropped, see
:mod:`pyipld.http.car_fetch`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Self, TypeVar

import httpx

from .. import __version__
from ..cid import CID
from ..errors import (
    ConfigError,
    GatewayError,
    GatewayTimeoutError,
    IntegrityError,
    LimitExceededError,
    NotFoundError,
    PyipldError,
)
from ._decode import ACCEPT_ENCODING, response_body
from ._request import (
    MAX_BLOCK_BYTES,
    GatewayRequest,
    check_raw_content_type,
    normalize_gateway_url,
    raw_request,
)
from ._transport import widen_reads

__all__ = ["DEFAULT_MIN_RATE", "GatewayClient", "GatewayStats", "combine_errors", "translate_http_error"]

_T = TypeVar("_T")
_USER_AGENT: Final = f"pyipld/{__version__}"
# Statuses after which another gateway may well have the data (spec §6: 404 from a
# non-recursive gateway, 429/502/504 from a recursive one, 410/451 denylists).
_NOT_HERE: Final = frozenset({404, 410, 451})
# bytes/s a body must average over each `timeout` window of waiting (GatewayClient min_rate):
# below a gateway that fetches 200-byte directory blocks from the network one every 3 s (67 B/s),
# above a byte-every-half-second trickle (2 B/s)
DEFAULT_MIN_RATE: Final = 64.0


@dataclass(slots=True)
class _Health:
    failures: int = 0
    retry_at: float = 0.0


@dataclass(slots=True)
class GatewayStats:
    """Counters for benchmarks and the CLI summary."""

    requests: int = 0
    bytes_received: int = 0
    blocks: int = 0
    failures: dict[str, int] = field(default_factory=dict)


class _Attempt:
    """One raced request: the connections it opened, so that losing the race ends it at once.

    httpcore reports each new connection through the request's ``trace`` extension; a response's
    ``network_stream`` covers a reused one. :meth:`abandon` shuts their sockets down, which wakes
    a thread blocked reading them (closing a socket from another thread does not), so the loser
    fails at once and httpcore closes its connection in its own thread.
    """

    _CONNECTED: Final = frozenset({"connection.connect_tcp.complete", "connection.start_tls.complete"})

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: list[Any] = []
        self.abandoned = False

    def trace(self, name: str, info: Mapping[str, Any]) -> None:
        if name in self._CONNECTED:
            self.add(info.get("return_value"))

    def add(self, stream: Any) -> None:
        if stream is None:
            return
        with self._lock:
            self._streams.append(stream)
            abandoned = self.abandoned
        if abandoned:
            _shut_down(stream)

    def abandon(self) -> None:
        with self._lock:
            self.abandoned = True
            streams = list(self._streams)
        for stream in streams:
            _shut_down(stream)


def _shut_down(stream: Any) -> None:
    sock = stream.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed (or detached by TLS: the TLS stream is shut too)
            sock.shutdown(socket.SHUT_RDWR)


class _RateFloor:
    """A body's average rate over each ``window_s`` seconds spent waiting for it must reach
    ``min_rate`` (time the caller spends between chunks is not counted: a slow consumer is
    not a slow gateway).

    httpx's read timeout bounds each gap between chunks only: a gateway sending one byte every
    half second held a read (and the fail-over to the next gateway) for ever.
    """

    def __init__(self, min_rate: float, window_s: float, url: str) -> None:
        self.min_rate, self.window_s, self.url = min_rate, window_s, url
        self.waited = 0.0
        self.got = 0

    def check(self, n: int, waited: float) -> None:
        """``n`` more bytes, after ``waited`` seconds of waiting for them."""
        if not self.min_rate:
            return
        self.got += n
        self.waited += waited
        if self.waited < self.window_s:
            return
        if self.got < self.min_rate * self.waited:
            raise GatewayTimeoutError(f"{self.url}: {self.got} bytes in {self.waited:.1f} s, below min_rate="
                                      f"{self.min_rate:g} bytes/s", url=self.url)
        self.waited, self.got = 0.0, 0


def translate_http_error(exc: httpx.HTTPError, url: str) -> GatewayError:
    """httpx's exceptions as ours (timeouts keep their own type)."""
    if isinstance(exc, httpx.TimeoutException):
        return GatewayTimeoutError(f"{url}: timed out ({type(exc).__name__})", url=url)
    return GatewayError(f"{url}: {type(exc).__name__}: {exc}", url=url)


class GatewayClient:
    """A pool of trustless gateways.

    Args:
        gateways: base URLs (``http://127.0.0.1:8080``; a trailing ``/ipfs`` is dropped).
        timeout: seconds allowed for each wait on the network: connecting, the response
            headers, and every gap between body chunks (a stalled body fails after this).
        connect_timeout: seconds to establish a connection (default: ``timeout``).
        min_rate: bytes per second a body must average over each ``timeout`` seconds, or it is
            a :class:`GatewayTimeoutError` (and the next gateway is asked): a gateway that
            trickles a byte at a time never trips the per-read timeout (0: no floor).
        race: ask every gateway for a raw block at once; the first verified answer wins.
        backoff_s, max_backoff_s: back-off after failures (see the module docstring).
        max_block_bytes: refuse blocks over this (default 2 MiB, the spec's limit).
        max_waste_bytes: duplicate or unrequested CAR bytes tolerated per response,
            beyond the useful ones, before a gateway is given up on (an endless body).
        max_connections: pooled connections in total.
        transport: an ``httpx.BaseTransport`` (tests); default a real one.
        trust_env: let httpx read proxy settings from the environment.

    Raises:
        ConfigError: no gateway, or a URL that is not http(s).
    """

    def __init__(self, gateways: Sequence[str], *, timeout: float = 30.0, connect_timeout: float | None = None,
                 race: bool = False, backoff_s: float = 1.0, max_backoff_s: float = 60.0,
                 max_block_bytes: int = MAX_BLOCK_BYTES, max_waste_bytes: int = 64 << 20, max_connections: int = 64,
                 transport: httpx.BaseTransport | None = None, trust_env: bool = True,
                 min_rate: float = DEFAULT_MIN_RATE) -> None:
        self.gateways = [normalize_gateway_url(g) for g in gateways]
        if not self.gateways:
            raise ConfigError("no gateway configured: pass --gateway URL or set IPFS_GATEWAY")
        if not min_rate >= 0:
            raise ConfigError(f"min_rate must be >= 0 bytes/s, got {min_rate}")
        self.min_rate = min_rate
        self.timeout = timeout
        self._connect_timeout = connect_timeout or timeout
        self.race = race
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_block_bytes = max_block_bytes
        self.max_waste_bytes = max_waste_bytes
        self.stats = GatewayStats()
        self._health = {g: _Health() for g in self.gateways}
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._racing: dict[concurrent.futures.Future[Any], _Attempt] = {}  # raced requests not yet ended
        self._local = threading.local()  # .attempt: the _Attempt a race worker thread is running
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=connect_timeout or timeout, pool=timeout),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                                keepalive_expiry=60.0),
            follow_redirects=False,  # a redirect elsewhere is not the gateway we were told to trust
            headers={"User-Agent": _USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
            transport=transport,
            trust_env=trust_env,
        )
        if transport is None:
            widen_reads(self._http)  # 1 MiB reads: a CAR body's per-read cost in httpcore/h11 halves the speed

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        """Close every connection. Raced requests still running are ended first and waited for (at
        most the client's timeout): closing httpx under one that is still connecting left its new
        connection outside the closed pool, a socket nobody closed."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            with self._lock:
                racing = dict(self._racing)
            for attempt in racing.values():
                attempt.abandon()
            concurrent.futures.wait(racing, timeout=max(self.timeout, self._connect_timeout))
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- gateway health ----------------------------------------------------------------
    def ordered_gateways(self, now: float | None = None) -> list[str]:
        """Gateways to try, best first: healthy ones in configured order, then the rest by back-off end."""
        t = time.monotonic() if now is None else now
        with self._lock:
            ready = [g for g in self.gateways if self._health[g].retry_at <= t]
            waiting = sorted((g for g in self.gateways if self._health[g].retry_at > t),
                             key=lambda g: self._health[g].retry_at)
        return ready + waiting

    def record_failure(self, gateway: str, error: BaseException | None = None) -> None:
        """Back ``gateway`` off: exponentially, or for its ``Retry-After`` (429/502/503/504) when longer."""
        with self._lock:
            h = self._health[gateway]
            h.failures += 1
            wait = self.backoff_s * 2 ** (h.failures - 1)
            retry_after = getattr(error, "retry_after", None)
            if retry_after is not None:
                wait = max(wait, retry_after)
            h.retry_at = time.monotonic() + min(wait, self.max_backoff_s)
            self.stats.failures[gateway] = self.stats.failures.get(gateway, 0) + 1

    def record_success(self, gateway: str) -> None:
        with self._lock:
            self._health[gateway] = _Health()

    # -- one HTTP exchange -------------------------------------------------------------
    @contextmanager
    def open(self, gateway: str, request: GatewayRequest, *, method: str = "GET") -> Iterator[httpx.Response]:
        """A streamed response with status 200 (other statuses, redirects and transport errors raise).

        Raises:
            NotFoundError: 404, 410 or 451 (the gateway does not have it).
            GatewayError / GatewayTimeoutError: any other failure.
        """
        url = gateway + request.path_query
        with self._lock:
            self.stats.requests += 1
        attempt: _Attempt | None = getattr(self._local, "attempt", None)
        extensions = {"trace": attempt.trace} if attempt is not None else None
        try:
            with self._http.stream(method, url, headers=dict(request.headers), extensions=extensions) as response:
                if attempt is not None:
                    attempt.add(response.extensions.get("network_stream"))
                status = response.status_code
                if status in _NOT_HERE:
                    raise _NotHere(f"{url}: {status} {response.reason_phrase}")
                if 300 <= status < 400:
                    raise GatewayError(f"{url}: redirect {status} to {response.headers.get('location')!r} "
                                       "refused (trustless clients do not follow redirects)", url=url, status=status)
                if status != 200:
                    error = GatewayError(f"{url}: HTTP {status} {response.reason_phrase}", url=url, status=status)
                    error.retry_after = _retry_after(response.headers.get("retry-after"))
                    raise error
                yield response
        except httpx.HTTPError as exc:
            raise translate_http_error(exc, url) from exc

    def iter_body(self, response: httpx.Response) -> Iterator[bytes]:
        """The body chunks (``Content-Encoding`` undone in pieces of at most 1 MiB: a gzip bomb is never
        inflated at once), counted in :attr:`stats`; transport errors as ours."""
        url = str(response.request.url)
        floor = _RateFloor(self.min_rate, self.timeout, url)
        chunks = response_body(response, url)
        try:
            while True:
                waiting = time.monotonic()
                chunk = next(chunks, None)
                if chunk is None:
                    return
                with self._lock:
                    self.stats.bytes_received += len(chunk)
                floor.check(len(chunk), time.monotonic() - waiting)
                yield chunk  # the time the caller keeps us here is not the gateway's
        except httpx.HTTPError as exc:
            raise translate_http_error(exc, url) from exc

    # -- raw blocks --------------------------------------------------------------------
    def fetch_raw(self, gateway: str, cid: bytes) -> bytes:
        """One verified block from one gateway.

        Raises:
            NotFoundError, GatewayError, GatewayTimeoutError, LimitExceededError, IntegrityError.
        """
        parsed = CID.from_bytes(cid)
        with self.open(gateway, raw_request(parsed)) as response:
            check_raw_content_type(response.headers.get("content-type"))
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_block_bytes:
                raise LimitExceededError(f"{gateway}: block {parsed} is {declared} bytes > "
                                         f"max_block_bytes={self.max_block_bytes}")
            body = bytearray()
            for chunk in self.iter_body(response):
                body += chunk
                if len(body) > self.max_block_bytes:
                    raise LimitExceededError(f"{gateway}: block {parsed} body exceeds "
                                             f"max_block_bytes={self.max_block_bytes}")
        data = bytes(body)
        if not parsed.verify(data):
            raise IntegrityError(f"{gateway}: the answer for block {parsed} does not hash to its CID")
        with self._lock:
            self.stats.blocks += 1
        return data

    def get_block(self, cid: bytes | str | CID) -> bytes:
        """A verified block, from the first gateway that has it (all of them at once with ``race``).

        Identity CIDs are answered from the CID itself.

        Raises:
            NotFoundError: every gateway said it does not have the block.
            GatewayError (or the one gateway's own error): no gateway gave a valid answer.
        """
        parsed = CID.parse(cid)
        if parsed.hash_code == 0:
            return parsed.digest
        raw = parsed.bytes
        if self.race and len(self.gateways) > 1:
            return self._race(lambda g: self.fetch_raw(g, raw), f"block {parsed}")
        return self.try_in_order(lambda g: self.fetch_raw(g, raw), f"block {parsed}")

    # -- selection ---------------------------------------------------------------------
    def try_in_order(self, attempt: Callable[[str], _T], what: str) -> _T:
        """``attempt(gateway)`` on each gateway in :meth:`ordered_gateways` until one succeeds."""
        errors: list[tuple[str, Exception]] = []
        for gateway in self.ordered_gateways():
            try:
                result = attempt(gateway)
            except (PyipldError, OSError) as exc:
                errors.append((gateway, exc))
                if not isinstance(exc, _NotHere):
                    self.record_failure(gateway, exc)
                continue
            self.record_success(gateway)
            return result
        raise combine_errors(what, errors)

    def _race(self, attempt: Callable[[str], _T], what: str) -> _T:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(2, len(self.gateways)),
                                                               thread_name_prefix="pyipld-gw")
        futures: dict[concurrent.futures.Future[_T], tuple[str, _Attempt]] = {}
        for gateway in self.ordered_gateways():
            record = _Attempt()
            future = self._pool.submit(self._run_attempt, record, attempt, gateway)
            futures[future] = (gateway, record)
            with self._lock:
                self._racing[future] = record
            future.add_done_callback(self._race_ended)
        errors: list[tuple[str, Exception]] = []
        try:
            for future in concurrent.futures.as_completed(futures):
                gateway = futures[future][0]
                exc = future.exception()
                if exc is None:
                    self.record_success(gateway)
                    return future.result()
                if not isinstance(exc, (PyipldError, OSError)):
                    raise exc
                errors.append((gateway, exc))
                if not isinstance(exc, _NotHere):
                    self.record_failure(gateway, exc)
        finally:
            for future, (_, record) in futures.items():  # the losers: not started, or ended at once
                if not future.done() and not future.cancel():
                    record.abandon()
        raise combine_errors(what, errors)

    def _run_attempt(self, record: _Attempt, attempt: Callable[[str], _T], gateway: str) -> _T:
        self._local.attempt = record
        try:
            return attempt(gateway)
        finally:
            self._local.attempt = None

    def _race_ended(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._racing.pop(future, None)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given as delta-seconds (an HTTP date is ignored)."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


class _NotHere(NotFoundError):
    """A gateway said 404/410/451: not a failure of the gateway, just not there."""


def combine_errors(what: str, errors: Sequence[tuple[str, Exception]]) -> PyipldError:
    """One error for "no gateway could give us ``what``".

    A single attempt's error is returned as it is (its type tells what went wrong);
    when every gateway said "not here", a :class:`NotFoundError`; otherwise a
    :class:`GatewayError` whose ``errors`` lists each attempt.
    """
    if not errors:
        return GatewayError(f"no gateway to ask for {what}")
    if all(isinstance(e, NotFoundError) for _, e in errors):
        return NotFoundError(f"{what} not found on any gateway: " + "; ".join(str(e) for _, e in errors))
    if len(errors) == 1:
        exc = errors[0][1]
        return exc if isinstance(exc, PyipldError) else GatewayError(f"{errors[0][0]}: {exc}")
    detail = "; ".join(f"{type(e).__name__}: {e}" for _, e in errors)
    return GatewayError(f"every gateway failed for {what}: {detail}", errors=tuple(errors))
