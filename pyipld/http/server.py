"""Serve a :class:`~pyipld.blockstore.BlockSource` as a trustless gateway over HTTP.

The protocol rules live in :mod:`pyipld.http.gateway` (request → response plan);
this module is the thin driver: an ASGI application (:class:`GatewayApp`) and
:func:`serve`, which runs it on Hypercorn's trio worker (HTTP/1.1 via h11, and
h2c). Hypercorn parses HTTP; nothing here does.

Concurrency: each request is its own trio task. Block reads that may touch the
disk run in worker threads (a bounded :class:`trio.CapacityLimiter`), except the
single read of a plain ``/ipfs/{cid}`` raw-block request, which is cheaper inline.
A CAR body is produced piece by piece (about 1 MiB each: fewer thread hops and
sends) and the next piece is only read after the previous one was handed to the
socket, so memory per response is bounded (three pieces) and a slow reader only
slows its own response. A block missing or
corrupt below the terminal element aborts the response (the connection closes
before the chunked body ends), so a client never sees a clean but short CAR.

Defaults follow the peer kit's notes (shared/peers/http/README.md): Helia clients
keep ~1,000 requests in flight on kept-alive sockets, so idle connections stay open
120 s, the accept backlog is 4096, and a connection may carry many requests.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

import trio

from ..blockstore import BlockSource
from ..errors import ConfigError, PyipldError
from .gateway import GatewayRequest, ResponsePlan, plan_response

__all__ = ["DEFAULT_LISTEN", "MAX_BACKLOG", "GatewayApp", "ServerConfig", "serve", "serve_in_thread"]

DEFAULT_LISTEN: Final = "127.0.0.1:8080"
MAX_BACKLOG: Final = 2**31 - 1  # listen(2) takes a C int
_log = logging.getLogger("pyipld.http.server")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _next_piece(stream: Iterator[bytes]) -> bytes | None:
    return next(stream, None)


class GatewayApp:
    """The ASGI application: one :func:`~pyipld.http.gateway.plan_response` per request.

    Args:
        source: where blocks come from; must allow reads from several threads
            (the project's stores do).
        max_threads: block-reading threads shared by all requests.
    """

    def __init__(self, source: BlockSource, *, max_threads: int = 16) -> None:
        self.source = source
        self._limiter = trio.CapacityLimiter(max_threads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if not _supported_version(scope.get("http_version", "1.1")):
            await _send_version_not_supported(send, head=scope["method"] == "HEAD")
            return
        request = GatewayRequest(
            method=scope["method"],
            path=scope.get("raw_path") or scope["path"].encode("utf-8"),
            query=scope.get("query_string", b""),
            headers=[(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]],
        )
        if _is_plain_block(request.path):
            plan = plan_response(self.source, request)
        else:
            plan = await trio.to_thread.run_sync(plan_response, self.source, request, limiter=self._limiter)
        await _send_plan(plan, send, self._limiter)


# What Go's net/http (kubo's gateway) writes for a request line of a major version other than 1:
# 505, the text below as reason and body, ``Connection: close`` (server.go, readRequest).
_VERSION_NOT_SUPPORTED: Final = b"505 HTTP Version Not Supported: unsupported protocol version"


def _supported_version(version: str) -> bool:
    """Go's ``http1ServerSupportsRequest``: any ``HTTP/1.x`` request line is served, ``HTTP/0.x``
    and ``HTTP/2.0``-and-up request lines are not. ``"2"`` and ``"3"`` are Hypercorn's own HTTP/2
    (h2c) and HTTP/3 streams; a request line's version is always ``X.Y`` (h11 reads one digit each)."""
    return version.startswith("1.") or version in ("2", "3")


async def _send_version_not_supported(send: Send, *, head: bool) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close"),
               (b"content-length", str(len(_VERSION_NOT_SUPPORTED)).encode())]
    await send({"type": "http.response.start", "status": 505, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else _VERSION_NOT_SUPPORTED, "more_body": False})


def _is_plain_block(path: bytes) -> bool:
    return path.startswith(b"/ipfs/") and path.count(b"/") == 2


async def _send_plan(plan: ResponsePlan, send: Send, limiter: trio.CapacityLimiter) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in plan.headers]
    await send({"type": "http.response.start", "status": plan.status, "headers": headers})
    if plan.stream is None:
        await send({"type": "http.response.body", "body": plan.body, "more_body": False})
        return
    stream = plan.stream
    # One piece is read ahead (in a worker thread: hashing releases the GIL) while the
    # previous one is being sent, so disk, hash and socket overlap; at most three pieces
    # of one response are held at a time.
    pieces_in, pieces_out = trio.open_memory_channel[bytes](1)
    aborted = False

    async def produce() -> None:
        nonlocal aborted
        async with pieces_in:
            try:
                while (piece := await trio.to_thread.run_sync(_next_piece, stream, limiter=limiter)) is not None:
                    await pieces_in.send(piece)
            except PyipldError as exc:
                # Headers are out: the only honest signal left is to abort. Returning without the
                # final body message makes the server close the connection before the last chunk.
                _log.warning("CAR stream aborted: %s", exc)
                aborted = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce)
        async with pieces_out:
            async for piece in pieces_out:
                await send({"type": "http.response.body", "body": piece, "more_body": True})
    if not aborted:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _Tracked:
    """An accepted connection's stream, noting when bytes last moved (for :class:`_ConnectionGate`).

    It forwards what Hypercorn's ``TCPServer`` uses of a plain ``trio.SocketStream`` and has no
    ``do_handshake``, so Hypercorn takes it for what it is: not TLS. A send waits for an EOF in
    progress: Hypercorn sends under its own lock but sends the EOF outside it, and trio's
    ``send_eof`` may switch tasks, so a request pipelined behind a ``Connection: close`` one made a
    send meet the EOF in progress (``trio.BusyResourceError``, which took the whole server down).
    """

    def __init__(self, stream: Any, gate: _ConnectionGate | None) -> None:
        self._stream = stream
        self._gate = gate
        self._sending = trio.Lock()
        self.socket = stream.socket
        self.last_active = trio.current_time()

    def _forget(self) -> None:
        if self._gate is not None:
            self._gate.open.discard(self)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        try:
            data: bytes = await self._stream.receive_some(max_bytes)
        except BaseException:
            self._forget()
            raise
        if not data:  # the peer is gone; Hypercorn may take a while to wind the connection down
            self._forget()
        self.last_active = trio.current_time()
        return data

    async def send_all(self, data: bytes) -> None:
        async with self._sending:
            self.last_active = trio.current_time()  # a send blocked this long (peer not reading) counts as idle
            try:
                await self._stream.send_all(data)
            finally:
                self.last_active = trio.current_time()

    async def send_eof(self) -> None:
        # never waits for a send (it may be stuck on a peer that stopped reading): as trio would,
        # refuse, and Hypercorn closes the stream instead
        try:
            self._sending.acquire_nowait()
        except trio.WouldBlock:
            raise trio.BusyResourceError("another task is sending on this stream") from None
        try:
            await self._stream.send_eof()
        finally:
            self._sending.release()

    async def aclose(self) -> None:
        self._forget()
        await self._stream.aclose()

    def idle_for(self, now: float) -> float:
        return now - self.last_active


class _ConnectionGate:
    """At most ``max_connections`` open connections; at the cap a newcomer replaces the one idle
    longest if it has been idle (nothing received, no send started or finished) for ``idle_grace``
    seconds, else it is closed at once. So idle or half-sent requests, and peers that stopped
    reading an answer, cannot hold every descriptor."""

    def __init__(self, max_connections: int, idle_grace: float) -> None:
        self.max_connections = max_connections
        self.idle_grace = idle_grace
        self.open: set[_Tracked] = set()
        self.refused = 0
        self.replaced = 0

    async def admit(self, stream: _Tracked) -> bool:
        if len(self.open) >= self.max_connections:
            now = trio.current_time()
            oldest = max(self.open, key=lambda t: t.idle_for(now))
            if oldest.idle_for(now) < self.idle_grace:
                self.refused += 1
                await stream.aclose()
                return False
            self.replaced += 1
            await oldest.aclose()  # its reader sees ClosedResourceError and Hypercorn ends the connection
        self.open.add(stream)
        return True


def _install_guard() -> None:
    """Let Hypercorn's trio worker pass each connection of our configs through :class:`_Tracked`
    (and the config's gate, if it has one), and keep one connection's failure to itself.

    Hypercorn has no connection limit and builds its listeners itself; its worker makes one
    ``TCPServer(app, config, context, state, stream)`` per accepted connection, looked up in
    ``hypercorn.trio.run`` at accept time, and runs them all in one nursery: an exception that
    escapes one ``TCPServer`` ends the server. That name is wrapped once; configs not made by
    :func:`_hypercorn_config` (other users of Hypercorn in the process) are served exactly as before.
    """
    from hypercorn.trio import run as hc_run

    original = getattr(hc_run, "TCPServer", None)
    if original is None:
        _log.warning("this Hypercorn has no hypercorn.trio.run.TCPServer: connections are not capped")
        return
    if getattr(original, "_pyipld_gated", False):
        return

    def gated(app: Any, config: Any, context: Any, state: Any, stream: Any) -> Any:
        if not getattr(config, "_pyipld_guard", False):
            return original(app, config, context, state, stream)
        gate: _ConnectionGate | None = getattr(config, "_pyipld_gate", None)
        tracked = _Tracked(stream, gate)

        async def run() -> None:
            if gate is not None and not await gate.admit(tracked):
                return
            try:
                await original(app, config, context, state, tracked)
            except Exception as exc:  # noqa: BLE001 - one connection's failure ends that connection only
                _log.warning("connection ended by an error in the HTTP server: %r", exc)
                with trio.CancelScope() as scope:
                    scope.cancel()  # close at once (what trio.aclose_forcefully does)
                    await tracked.aclose()
            finally:
                tracked._forget()

        return run()

    gated._pyipld_gated = True  # type: ignore[attr-defined]
    setattr(hc_run, "TCPServer", gated)  # noqa: B010


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Transport settings.

    Attributes:
        listen: ``host:port`` (port 0 picks a free one); loopback by default.
        keep_alive_seconds: how long an idle kept-alive connection stays open.
        backlog: the listening socket's accept queue.
        max_requests_per_connection: after this many, the connection is closed.
        max_threads: block-reading worker threads.
        access_log: log one line per request to stderr.
        max_connections: open connections at once (0: no cap); at the cap a newcomer replaces
            the connection idle longest if it has been idle ``idle_grace`` seconds, else it is
            closed. Without a cap, idle connections can use up the process's descriptors.
        idle_grace: see ``max_connections``.
    """

    listen: str = DEFAULT_LISTEN
    keep_alive_seconds: float = 120.0
    backlog: int = 4096
    max_requests_per_connection: int = 1_000_000
    max_threads: int = 16
    access_log: bool = False
    max_connections: int = 1024
    idle_grace: float = 20.0

    def __post_init__(self) -> None:
        # checked here, not when the first connection goes idle: Hypercorn's idle timer raised
        # on a NaN or negative keep-alive, and the server died with its first client
        if not 0 < self.keep_alive_seconds < math.inf:
            raise ConfigError(f"keep-alive must be a number of seconds above 0, got {self.keep_alive_seconds}")
        if not 0 <= self.idle_grace < math.inf:
            raise ConfigError(f"idle grace must be 0 or more seconds, got {self.idle_grace}")
        if self.max_connections < 0:
            raise ConfigError(f"max connections must be 0 or more, got {self.max_connections}")
        if not 0 <= self.backlog <= MAX_BACKLOG:  # a larger one raised OverflowError in listen()
            raise ConfigError(f"backlog must be between 0 and {MAX_BACKLOG}, got {self.backlog}")


def _stderr_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler()  # stderr: stdout carries the "listening on" line
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def _hypercorn_config(config: ServerConfig) -> Any:
    try:
        from hypercorn.config import Config
    except ImportError:
        raise ConfigError("the gateway server needs Hypercorn: pip install 'pyipld[gateway]'") from None

    hc = Config()
    hc.bind = [config.listen]
    hc.keep_alive_timeout = config.keep_alive_seconds
    hc.backlog = config.backlog
    hc.keep_alive_max_requests = config.max_requests_per_connection
    hc.include_server_header = False
    hc.graceful_timeout = 1.0
    hc.accesslog = _stderr_logger("pyipld.http.server.access") if config.access_log else None
    hc.errorlog = logging.getLogger("pyipld.http.server.hypercorn")
    _install_guard()
    setattr(hc, "_pyipld_guard", True)  # noqa: B010
    if config.max_connections:
        setattr(hc, "_pyipld_gate", _ConnectionGate(config.max_connections, config.idle_grace))  # noqa: B010
    return hc


async def serve(
    source: BlockSource,
    config: ServerConfig = ServerConfig(),
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``source`` until cancelled (or until ``shutdown_trigger`` returns).

    ``task_status.started`` receives the bound URLs (``["http://127.0.0.1:PORT"]``),
    so ``await nursery.start(serve, store, ServerConfig(listen="127.0.0.1:0"))`` gives
    the port.
    """
    hc_config = _hypercorn_config(config)
    from hypercorn.trio import serve as hypercorn_serve

    app = GatewayApp(source, max_threads=config.max_threads)
    await hypercorn_serve(app, hc_config, shutdown_trigger=shutdown_trigger,  # type: ignore[arg-type]
                          task_status=task_status)


class serve_in_thread:
    """Run :func:`serve` on a background thread; the context value is the base URL.

    For notebooks, tests and benchmarks. Leaving the block stops the server.
    """

    def __init__(self, source: BlockSource, config: ServerConfig = ServerConfig(listen="127.0.0.1:0")) -> None:
        self.source = source
        self.config = config
        self._stop: trio.Event | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._thread: Any = None
        self._urls: list[str] = []
        self._error: BaseException | None = None

    def __enter__(self) -> str:
        import threading

        ready = threading.Event()

        async def main() -> None:
            self._stop = trio.Event()
            self._token = trio.lowlevel.current_trio_token()
            async with trio.open_nursery() as nursery:
                self._urls = await nursery.start(serve, self.source, self.config)
                ready.set()
                await self._stop.wait()
                nursery.cancel_scope.cancel()

        def run() -> None:
            try:
                trio.run(main)
            except BaseException as exc:  # noqa: BLE001 - reported to the caller in __enter__
                self._error = exc
            finally:
                ready.set()

        self._thread = threading.Thread(target=run, name="pyipld-gateway", daemon=True)
        self._thread.start()
        ready.wait()
        if self._error is not None or not self._urls:
            raise RuntimeError(f"gateway did not start: {self._error!r}")
        return self._urls[0]

    def __exit__(self, *exc: object) -> None:
        if self._token is not None and self._stop is not None:
            stop = self._stop
            try:
                trio.from_thread.run_sync(stop.set, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        if self._thread is not None:
            self._thread.join()
