"""The only trio code of the libp2p stack: dial/listen TCP, upgrade, run streams.

Connection set-up (both roles)::

    TCP ─ multistream "/noise" ─ Noise XX ─ [multistream "/yamux/1.0.0" unless the
          muxer was agreed inside the Noise handshake] ─ yamux session

:class:`Host` owns our identity and a registry of stream handlers (identify and
ping are answered automatically). :meth:`Host.connect` dials a multiaddr and
yields a :class:`Connection`; :meth:`Host.listen` accepts connections.
:meth:`Connection.open_stream` opens a yamux stream and negotiates a protocol
with multistream-select; streams the *remote* opens are negotiated against the
handler registry and handed to the handler (bitswap replies arrive this way).

Design: one reader task per connection feeds bytes through the Noise and
yamux machines and dispatches events to per-stream buffers (bounded by the
yamux receive window, because credit is only returned as the application
reads). Every write goes through one lock, so Noise nonces stay in order; the
reader does not block on writing (it wakes the connection's one flusher task),
so two peers that both write a lot cannot deadlock each other — until the
control output it owes the peer (window updates, ping answers, resets) passes
``Host.max_queued_output`` bytes: then the peer is not reading, and the reader
stops reading from it until that output drains (backpressure), failing the
connection after ``Host.write_timeout`` seconds. A write that makes no progress
for ``write_timeout`` seconds fails the connection too. Remote protocol errors —
and any other error in a connection's own tasks — close that connection only
and surface on every stream as :class:`StreamResetError`. Timeouts raise
:class:`~pyipld.errors.PeerTimeoutError`.

Memory held per connection (:meth:`Connection.buffered_bytes`) is bounded by
the yamux windows (stream buffers), one transport read (1 MiB) in the Noise
and yamux machines, and ``max_queued_output`` plus one read's worth of output.
"""

from __future__ import annotations

import logging
import math
import operator
from collections import ChainMap, Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, Protocol, TypeVar

import trio

from .. import __version__
from ..errors import (
    DecodeError,
    LocalProtocolError,
    PeerTimeoutError,
    ProtocolError,
    RemoteProtocolError,
)
from . import identify as _identify
from . import multistream, noise, yamux
from .multiaddr import Multiaddr
from .peer import Identity, PeerId, PublicKey

__all__ = [
    "DEFAULT_MUXERS",
    "MAX_QUEUED_OUTPUT",
    "Connection",
    "Host",
    "NegotiationError",
    "NoiseStream",
    "Stream",
    "StreamHandler",
    "StreamReceiver",
    "StreamResetError",
    "read_lp_message",
]

log = logging.getLogger(__name__)

DEFAULT_MUXERS: Final = (yamux.PROTOCOL_ID,)
# Bytes per transport read: larger reads mean fewer trips through trio, the machines and
# the flusher per byte (kubo writes a block as ~12 Noise frames)
_RECV_CHUNK: Final = 1024 * 1024
_MAX_SEND_CHUNK: Final = 256 * 1024  # per lock hold, so other streams interleave
# Control output (window updates, ping ACKs, RSTs) we let queue for a peer before we stop
# reading from it: honest peers read, so this only fills when the peer does not.
MAX_QUEUED_OUTPUT: Final = 256 * 1024

StreamHandler = Callable[["Stream"], Awaitable[None]]


class StreamReceiver(Protocol):
    """Takes the inbound streams of a protocol without a task each (:meth:`Host.set_stream_receiver`).

    Called synchronously in the connection's reader, in stream order. Credit goes back to
    the peer as the bytes are handed over, so the receiver bounds whatever it keeps. The
    stream is closed (FIN) after :meth:`eof_received`; an exception resets that stream.
    """

    def data_received(self, stream: Stream, data: bytes) -> None: ...

    def eof_received(self, stream: Stream) -> None: ...

    def stream_reset(self, stream: Stream) -> None:
        """The peer reset the stream, or the connection ended before its EOF."""


_T = TypeVar("_T")


class StreamResetError(ProtocolError, trio.BrokenResourceError):
    """The stream was reset by the peer, or its connection failed or closed."""


class NegotiationError(ProtocolError):
    """multistream-select ended without agreement (the peer said ``na`` to all)."""

    def __init__(self, message: str, protocols: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.protocols = tuple(protocols)


async def _timeout(seconds: float | None, what: str, fn: Callable[[], Awaitable[_T]]) -> _T:
    try:
        with trio.fail_after(math.inf if seconds is None else seconds):
            return await fn()
    except trio.TooSlowError:
        raise PeerTimeoutError(f"{what}: no answer within {seconds} s") from None


async def _negotiate(
    machine: multistream.Dialer | multistream.Listener,
    receive: Callable[[], Awaitable[bytes]],
    send: Callable[[bytes], Awaitable[None]],
    leftover: bytes = b"",
) -> tuple[str, bytes]:
    """Run a multistream machine to agreement; returns ``(protocol, trailing bytes)``.

    A listener reads before it writes, so neither side needs transport buffering.
    """
    if leftover:
        machine.receive_data(leftover)
    elif isinstance(machine, multistream.Listener):
        machine.receive_data(await receive())
    while True:
        out = machine.data_to_send()
        if out:
            await send(out)
        ev = machine.next_event()
        while ev is not None:
            if isinstance(ev, multistream.ProtocolAgreed):
                return ev.protocol, machine.trailing_data()
            if isinstance(ev, multistream.NegotiationFailed):
                raise NegotiationError(f"peer refused every protocol of {list(ev.protocols)}", ev.protocols)
            ev = machine.next_event()
        machine.receive_data(await receive())


class _Chunks:
    """Received bytes as the chunks they arrived in: appending and taking whole chunks copy nothing."""

    __slots__ = ("_chunks", "size")

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def append(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
            self.size += len(data)

    def push_front(self, data: bytes) -> None:
        if data:
            self._chunks.appendleft(data)
            self.size += len(data)

    def take(self, max_bytes: int | None) -> bytes:
        """Up to ``max_bytes`` (None: all) from the front."""
        n = self.size if max_bytes is None else min(max_bytes, self.size)
        if n == 0:
            return b""
        self.size -= n
        chunks = self._chunks
        first = chunks[0]
        if len(first) == n:
            return chunks.popleft()
        if len(first) > n:
            chunks[0] = first[n:]
            return first[:n]
        parts = []
        while n:
            chunk = chunks.popleft()
            if len(chunk) > n:
                chunks.appendleft(chunk[n:])
                chunk = chunk[:n]
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)

    def clear(self) -> None:
        self._chunks.clear()
        self.size = 0


class NoiseStream(trio.abc.Stream):
    """A ``trio.abc.Stream`` of plaintext over a transport, after a finished handshake."""

    def __init__(self, transport: trio.abc.Stream, session: noise.NoiseSession) -> None:
        self.transport = transport
        self.session = session
        self._pending = _Chunks()
        self._eof = False
        self._send_lock = trio.Lock()

    def _drain_events(self) -> None:
        ev = self.session.next_event()
        while ev is not None:
            if isinstance(ev, noise.DataReceived):
                self._pending.append(ev.data)
            elif isinstance(ev, noise.ConnectionClosed):
                self._eof = True
            ev = self.session.next_event()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        self._drain_events()
        while not self._pending.size and not self._eof:
            data = await self.transport.receive_some(_RECV_CHUNK)
            self.session.receive_data(data)
            self._drain_events()
        return self._pending.take(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        async with self._send_lock:
            self.session.send(data)
            await self.transport.send_all(self.session.data_to_send())

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.transport.aclose()


class Stream(trio.abc.HalfCloseableStream):
    """One yamux stream with an agreed protocol (``send_all``/``receive_some``/``send_eof``).

    ``receive_some`` returns ``b""`` at the peer's FIN and raises
    :class:`StreamResetError` after a reset; it raises
    :class:`~pyipld.errors.PeerTimeoutError` after ``read_timeout`` idle seconds.
    """

    def __init__(self, conn: Connection, stream_id: int, *, inbound: bool) -> None:
        self.connection = conn
        self.stream_id = stream_id
        self.inbound = inbound
        self.protocol: str | None = None
        self.read_timeout = conn.host.read_timeout
        self._buf = _Chunks()
        self._precredited = 0  # bytes at the front of _buf whose window credit was returned
        self._eof = False
        self._reset = False
        self._closed = False
        self._recv_busy = False
        self._send_busy = False
        self._eof_sent = False
        self._readable = trio.Event()
        self._writable = trio.Event()
        self._lazy: multistream.Dialer | None = None
        self._listener: multistream.Listener | None = None  # inbound: negotiating in the reader
        self._receiver: StreamReceiver | None = None  # inbound: bytes go here, not to _buf

    def __repr__(self) -> str:
        return f"<Stream {self.stream_id} {self.protocol!r} peer={self.connection.remote_peer}>"

    # -- called by the connection's reader -------------------------------------------------
    def _on_data(self, data: bytes) -> None:
        self.connection.last_active = trio.current_time()
        if self._closed:  # we stopped reading: drop, but keep the credit flowing
            self.connection._consumed(self.stream_id, len(data))
            return
        self._buf.append(data)
        self._readable.set()

    def _on_end(self) -> None:
        self._eof = True
        self._readable.set()

    def _on_reset(self) -> None:
        self._reset = True
        self._readable.set()
        self._writable.set()

    def _on_window(self) -> None:
        self._writable.set()

    # -- receiving ------------------------------------------------------------------------------
    def _check_broken(self) -> None:
        if self._reset:
            raise StreamResetError(f"stream {self.stream_id} ({self.protocol}) reset by peer")
        err = self.connection._error
        if err is not None:
            raise StreamResetError(f"connection to {self.connection.remote_peer} lost: {err}")

    async def _wait_readable(self) -> None:
        while not self._buf.size and not self._eof:
            if self._closed:
                raise trio.ClosedResourceError("stream was closed")
            self._check_broken()
            if self.connection.closed:
                raise StreamResetError(f"connection to {self.connection.remote_peer} closed")
            self._readable = trio.Event()
            await self._readable.wait()

    def _take(self, max_bytes: int | None) -> bytes:
        out = self._buf.take(max_bytes)
        n = len(out)
        fresh = n - min(n, self._precredited)  # pushed-back bytes were credited already
        self._precredited -= n - fresh
        if fresh:
            self.connection._consumed(self.stream_id, fresh)
        return out

    def _unread(self, data: bytes) -> None:
        """Push bytes already taken (and credited to the peer) back in front of the buffer."""
        if data:
            self._buf.push_front(bytes(data))
            self._precredited += len(data)
            self._readable.set()

    async def _finish_lazy(self) -> None:
        machine = self._lazy
        assert machine is not None
        while True:
            ev = machine.next_event()
            if isinstance(ev, multistream.ProtocolAgreed):
                self._lazy = None
                rest = machine.trailing_data()
                self._unread(rest)
                return
            if isinstance(ev, multistream.NegotiationFailed):
                self._lazy = None
                raise NegotiationError(f"peer refused {list(ev.protocols)}", ev.protocols)
            if ev is not None:
                continue
            await self._wait_readable()
            machine.receive_data(self._take(None) or b"")

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if max_bytes is not None:
            max_bytes = operator.index(max_bytes)  # TypeError for floats, as trio streams do
            if max_bytes < 1:
                raise ValueError("max_bytes must be >= 1")
        if self._recv_busy:
            raise trio.BusyResourceError("another task is already reading this stream")
        self._recv_busy = True
        try:
            await trio.lowlevel.checkpoint()
            if self._closed:
                raise trio.ClosedResourceError("stream was closed")
            if self._buf.size and self._lazy is None:  # data is here: no timeout scope to set up
                return self._take(max_bytes)

            async def _recv() -> bytes:
                if self._lazy is not None:
                    await self._finish_lazy()
                await self._wait_readable()
                if self._closed:
                    raise trio.ClosedResourceError("stream was closed")
                return self._take(max_bytes)

            return await _timeout(self.read_timeout, f"reading stream {self.stream_id} ({self.protocol})", _recv)
        finally:
            self._recv_busy = False

    async def receive_exactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes (RemoteProtocolError at an early EOF)."""
        out = bytearray()
        while len(out) < n:
            chunk = await self.receive_some(n - len(out))
            if not chunk:
                raise RemoteProtocolError(f"EOF after {len(out)} of {n} bytes on stream {self.stream_id}")
            out += chunk
        return bytes(out)

    # -- sending --------------------------------------------------------------------------------
    def writable(self) -> bool:
        """False once a write is sure to fail: closed or EOF sent by us, reset, or connection lost."""
        conn = self.connection
        return not (
            self._closed or self._eof_sent or self._reset or conn.closed
            or conn.session.stream_state(self.stream_id) in (yamux.StreamState.LOCAL_CLOSED, yamux.StreamState.CLOSED)
        )

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._send_busy:
            raise trio.BusyResourceError("another task is already sending on this stream")
        self._send_busy = True
        try:
            await trio.lowlevel.checkpoint()
            await self._send_all(data)
        finally:
            self._send_busy = False

    async def _send_all(self, data: bytes | bytearray | memoryview) -> None:
        conn = self.connection
        view = memoryview(data)
        if self._closed:
            raise trio.ClosedResourceError("stream was closed")
        if self._eof_sent:
            raise trio.ClosedResourceError("send_eof was called on this stream")
        while len(view):
            self._check_broken()
            if conn.closed:
                raise StreamResetError(f"connection to {conn.remote_peer} closed")
            if conn.session.send_window(self.stream_id) == 0:
                if conn.session.stream_state(self.stream_id) is yamux.StreamState.CLOSED:
                    raise StreamResetError(f"stream {self.stream_id} is closed")
                self._writable = trio.Event()
                await _timeout(self.read_timeout, f"waiting for window on stream {self.stream_id}",
                               self._writable.wait)
                if self._closed:
                    raise trio.ClosedResourceError("stream was closed")
                continue
            async with conn._send_lock:
                try:
                    n = conn.session.send_data(self.stream_id, view[:_MAX_SEND_CHUNK])
                except LocalProtocolError as exc:
                    raise StreamResetError(str(exc)) from exc
                await conn._flush_locked()
            view = view[n:]

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise trio.ClosedResourceError("stream was closed")

    async def send_eof(self) -> None:
        """Half-close our direction (yamux FIN); reading stays possible."""
        if self._send_busy:
            raise trio.BusyResourceError("another task is sending on this stream")
        if self._closed:
            await trio.lowlevel.checkpoint()
            raise trio.ClosedResourceError("stream was closed")
        await self._send_eof()

    async def _send_eof(self) -> None:
        self._eof_sent = True
        conn = self.connection
        if conn.closed or conn.session.stream_state(self.stream_id) in (
            yamux.StreamState.LOCAL_CLOSED, yamux.StreamState.CLOSED
        ):
            await trio.lowlevel.checkpoint()
            return
        async with conn._send_lock:
            conn.session.send_eof(self.stream_id)
            await conn._flush_locked()

    async def reset(self) -> None:
        """Abort both directions (yamux RST)."""
        self._close_locally(reset=True)
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        """FIN our side and stop reading; data that still arrives is answered with RST.

        The FIN is queued before the first checkpoint, so a cancelled ``aclose``
        still closes the stream (it is written by a background flush).
        """
        self._close_locally(reset=False)
        await trio.lowlevel.checkpoint()

    def _close_locally(self, *, reset: bool) -> None:
        if self._closed:
            return
        self._closed = True
        self._readable.set()  # wake a blocked reader or writer: they raise ClosedResourceError
        self._writable.set()
        conn = self.connection
        conn._streams.pop(self.stream_id, None)
        if not conn.closed:
            state = conn.session.stream_state(self.stream_id)
            if reset:
                conn.session.reset_stream(self.stream_id)
            elif state in (yamux.StreamState.OPEN, yamux.StreamState.REMOTE_CLOSED):
                conn.session.send_eof(self.stream_id)
            if self._buf.size:
                conn._consumed(self.stream_id, self._buf.size - min(self._buf.size, self._precredited))
            conn._schedule_flush()
        self._buf.clear()
        self._precredited = 0


class Connection:
    """An upgraded (secure, multiplexed) connection to one peer."""

    def __init__(
        self,
        host: Host,
        channel: NoiseStream,
        session: yamux.YamuxSession,
        handshake: noise.HandshakeCompleted,
        muxer: str,
        *,
        initiator: bool,
        remote_addr: Multiaddr | None,
        nursery: trio.Nursery,
    ) -> None:
        self.host = host
        self.channel = channel
        self.session = session
        self.remote_peer: PeerId = handshake.remote_peer
        self.remote_public_key: PublicKey = handshake.remote_public_key
        self.muxer = muxer
        self.handshake = handshake  # .selected_muxer is set when Noise chose the muxer
        self.initiator = initiator
        self.remote_addr = remote_addr
        self.closed = False
        self._error: BaseException | None = None
        self._nursery = nursery
        self._streams: dict[int, Stream] = {}
        self._send_lock = trio.Lock()
        self._flush_scheduled = False
        self._flush_wanted = trio.Event()  # wakes _flusher (one task per connection, not one per flush)
        self._inflight = 0  # bytes handed to the transport and not yet written
        self.reads_paused = 0  # times the reader waited for our output to drain (backpressure)
        self.last_active = trio.current_time()  # the peer's last stream opened or stream data
        self._data_seen = False  # stream data for a receiver in this read: last_active is due
        self._closed_event = trio.Event()
        self.pings_answered = 0  # yamux pings from the peer (answered by the session)

    def __repr__(self) -> str:
        return f"<Connection peer={self.remote_peer} {'out' if self.initiator else 'in'}>"

    # -- writing -------------------------------------------------------------------------------
    def buffered_bytes(self) -> int:
        """Bytes this connection holds: stream buffers, machine buffers, output not yet written."""
        held = sum(st._buf.size for st in self._streams.values())
        return (held + self.session.buffered_bytes + self._inflight
                + self.channel._pending.size + self.channel.session.buffered_bytes)

    async def _flush_locked(self) -> None:
        out = self.session.data_to_send()
        if out:
            self._inflight = len(out)
            try:
                limit = self.host.write_timeout
                with trio.fail_after(math.inf if limit is None else limit):
                    await self.channel.send_all(out)
            except trio.TooSlowError:
                exc2 = PeerTimeoutError(f"peer read none of {len(out)} bytes for {self.host.write_timeout} s")
                self._fail(exc2)
                await trio.aclose_forcefully(self.channel)
                raise StreamResetError(f"connection to {self.remote_peer} lost: {exc2}") from None
            except (ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self._fail(exc)
                raise StreamResetError(f"connection to {self.remote_peer} lost: {exc}") from exc
            finally:
                self._inflight = 0

    async def _wait_output_room(self) -> None:
        """Backpressure: while we owe the peer too much output, flush instead of reading."""
        while self.session.outbound_bytes > self.host.max_queued_output and not self.closed:
            self.reads_paused += 1
            async with self._send_lock:
                await self._flush_locked()  # fails the connection after write_timeout

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and not self.closed:
            self._flush_scheduled = True
            self._flush_wanted.set()

    async def _flusher(self) -> None:
        """Write queued control output (window updates, ACKs, FINs, echoes) in the background."""
        while not self.closed:
            await self._flush_wanted.wait()
            self._flush_wanted = trio.Event()
            async with self._send_lock:
                self._flush_scheduled = False
                try:
                    await self._flush_locked()
                except (StreamResetError, LocalProtocolError):
                    pass

    def _queue_small(self, st: Stream, data: bytes) -> bool:
        """Queue a few bytes on ``st`` for the background flush (False: send them normally).

        Used for multistream lines: they then leave in one write with the ACKs and
        window updates of the same read instead of one locked write each.
        """
        if self.closed or st._closed or self.session.send_window(st.stream_id) < len(data):
            return False
        try:
            self.session.send_data(st.stream_id, data)
        except LocalProtocolError:
            return False
        self._schedule_flush()
        return True

    def _consumed(self, stream_id: int, n: int) -> None:
        if not self.closed:
            self.session.stream_consumed(stream_id, n)
            self._schedule_flush()

    # -- reading -------------------------------------------------------------------------------
    async def _reader(self) -> None:
        try:
            while True:
                await self._wait_output_room()
                data = await self.channel.receive_some(_RECV_CHUNK)
                self.session.receive_data(data)
                self._dispatch()
                if self._data_seen:
                    self._data_seen = False
                    self.last_active = trio.current_time()
                if not data:
                    break
                if self.session.has_data_to_send:  # ping ACKs, stream ACKs/RSTs
                    self._schedule_flush()
        except (ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            if not self.closed:
                log.debug("connection %s failed: %s", self.remote_peer, exc)
                # send the queued GoAway(protocol error) if the transport still works
                with trio.move_on_after(1):
                    async with self._send_lock:
                        out = self.session.data_to_send()
                        if out:
                            try:
                                await self.channel.send_all(out)
                            except (ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                                pass
            self._fail(exc)
        except Exception as exc:  # noqa: BLE001 - a bug or a surprise in one connection stays in that connection
            log.warning("connection %s failed unexpectedly: %r", self.remote_peer, exc)
            self._fail(exc)
        else:
            self._fail(None)
        finally:
            await trio.aclose_forcefully(self.channel)

    def _dispatch(self) -> None:
        fresh: list[Stream] = []
        ev = self.session.next_event()
        while ev is not None:
            if isinstance(ev, yamux.DataReceived):
                st = self._streams.get(ev.stream_id)
                if st is None:
                    # we closed this stream (aclose): nobody will read, so tell the
                    # sender with RST instead of silently dropping (trio semantics)
                    self.session.reset_stream(ev.stream_id)
                elif st._receiver is not None:
                    self._deliver(st, ev.data)
                elif st._listener is not None:
                    self._negotiate_inline(st, ev.data)
                else:
                    st._on_data(ev.data)
            elif isinstance(ev, yamux.StreamOpened):
                self.last_active = trio.current_time()
                st = Stream(self, ev.stream_id, inbound=True)
                st._listener = multistream.Listener(self.host.protocols)
                self._streams[ev.stream_id] = st
                fresh.append(st)
            elif isinstance(ev, yamux.StreamEnded):
                if (st2 := self._streams.get(ev.stream_id)) is not None:
                    if st2._receiver is not None:
                        self._call_receiver(st2, None)
                        st2._close_locally(reset=False)  # our FIN: the exchange is over
                    elif st2._listener is not None:  # EOF before a protocol was agreed
                        st2._listener = None
                        st2._close_locally(reset=True)
                    else:
                        st2._on_end()
            elif isinstance(ev, yamux.StreamReset):
                if (st3 := self._streams.pop(ev.stream_id, None)) is not None:
                    st3._listener = None
                    st3._on_reset()
                    self._receiver_reset(st3)
            elif isinstance(ev, yamux.WindowUpdated):
                if (st4 := self._streams.get(ev.stream_id)) is not None:
                    st4._on_window()
            elif isinstance(ev, yamux.PingReceived):
                self.pings_answered += 1
            elif isinstance(ev, yamux.GoAwayReceived):
                log.debug("peer %s sent GoAway(%d)", self.remote_peer, ev.code)
                if ev.code != yamux.GoAwayCode.NORMAL:
                    raise RemoteProtocolError(f"peer sent GoAway({ev.code})", error_code=ev.code)
            ev = self.session.next_event()
        for st in fresh:  # negotiation not finished within this read: a task takes over
            machine = st._listener
            if machine is not None and not st._closed:
                st._listener = None
                self._nursery.start_soon(self._serve_inbound, st, machine)

    # -- inbound streams answered in the reader ------------------------------------------------
    # The peer usually sends a new stream's SYN, its multistream lines and its first bytes
    # together (kubo opens one stream per bitswap reply, i.e. per block): the negotiation is
    # then answered here, without a task, and a protocol with a StreamReceiver gets its bytes
    # in this reader too. Anything slower goes to _serve_inbound with negotiate_timeout.
    def _negotiate_inline(self, st: Stream, data: bytes) -> None:
        machine = st._listener
        assert machine is not None
        self._consumed(st.stream_id, len(data))  # the machine holds these bytes now
        try:
            machine.receive_data(data)
        except ProtocolError as exc:
            log.debug("inbound stream %d from %s: %s", st.stream_id, self.remote_peer, exc)
            st._listener = None
            st._close_locally(reset=True)
            return
        out = machine.data_to_send()
        if out and not self._queue_small(st, out):
            st._listener = None
            st._close_locally(reset=True)
            return
        ev = machine.next_event()
        while ev is not None:
            if isinstance(ev, multistream.ProtocolAgreed):
                st._listener = None
                self._agreed(st, ev.protocol, machine.trailing_data())
                return
            ev = machine.next_event()

    def _agreed(self, st: Stream, proto: str, rest: bytes) -> None:
        st.protocol = proto
        host = self.host
        receiver = host.receivers.get(proto)
        if receiver is not None:
            st._receiver = receiver
            host.served[proto] += 1
            if st._buf.size:  # nothing normally: the negotiation took all that came
                rest += st._take(None)
            if rest:
                self._call_receiver(st, rest, credited=True)
            if st._eof and not st._closed:  # the peer's FIN came during a slow negotiation (a task)
                self._call_receiver(st, None)
                st._close_locally(reset=False)
            return
        handler = host.handlers.get(proto)
        if handler is None:  # removed meanwhile
            st._close_locally(reset=True)
            return
        st._unread(rest)  # credited when the machine took them
        host.served[proto] += 1
        self._nursery.start_soon(self._run_handler, st, proto, handler)

    def _deliver(self, st: Stream, data: bytes) -> None:
        self._data_seen = True  # last_active is set once per read (_reader)
        self._call_receiver(st, data)

    def _call_receiver(self, st: Stream, data: bytes | None, *, credited: bool = False) -> None:
        """Hand ``data`` (None: the peer's EOF) to the stream's receiver; its credit goes back
        at once, so the receiver must bound what it keeps. A receiver that raises loses the
        stream (reset), as a handler that raises does."""
        receiver = st._receiver
        assert receiver is not None
        if data is not None and not credited:
            self._consumed(st.stream_id, len(data))
        try:
            if data is None:
                receiver.eof_received(st)
            else:
                receiver.data_received(st, data)
        except Exception as exc:  # noqa: BLE001 - one stream's receiver fails that stream only
            log.warning("receiver %s for %s failed: %r", st.protocol, self.remote_peer, exc)
            st._receiver = None
            st._close_locally(reset=True)

    def _receiver_reset(self, st: Stream) -> None:
        receiver = st._receiver
        if receiver is None:
            return
        st._receiver = None
        try:
            receiver.stream_reset(st)
        except Exception as exc:  # noqa: BLE001 - as in _call_receiver
            log.warning("receiver %s for %s failed at reset: %r", st.protocol, self.remote_peer, exc)

    def _fail(self, exc: BaseException | None) -> None:
        if self.closed:
            return
        self.closed = True
        self._error = exc
        for st in list(self._streams.values()):
            st._readable.set()
            st._writable.set()
            st._listener = None
            self._receiver_reset(st)
        self._closed_event.set()

    async def _serve_inbound(self, st: Stream, listener: multistream.Listener) -> None:
        """Finish an inbound stream's negotiation (``listener``: already fed what came so far)."""
        try:
            async def _recv() -> bytes:
                await st._wait_readable()
                return st._take(None)

            async def _send(data: bytes) -> None:
                if self._queue_small(st, data):
                    await trio.lowlevel.checkpoint()
                else:
                    await st.send_all(data)

            proto, rest = await _timeout(
                self.host.negotiate_timeout,
                "inbound multistream",
                lambda: _negotiate(listener, _recv, _send),
            )
        except (ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            log.debug("inbound stream %d from %s: %s", st.stream_id, self.remote_peer, exc)
            await self._quiet_reset(st)
            return
        if st._closed or st._reset:
            return
        self._agreed(st, proto, rest)  # rest was taken, and credited, by _recv

    async def _run_handler(self, st: Stream, proto: str, handler: StreamHandler) -> None:
        try:
            await handler(st)
        except (ProtocolError, DecodeError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            log.debug("handler %s for %s: %s", proto, self.remote_peer, exc)
            await self._quiet_reset(st)
        except Exception:
            log.exception("handler %s for %s failed", proto, self.remote_peer)
            await self._quiet_reset(st)
        else:
            await st.aclose()

    async def _quiet_reset(self, st: Stream) -> None:
        try:
            await st.reset()
        except (ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    # -- public API -------------------------------------------------------------------------------
    async def open_stream(self, protocols: str | Sequence[str], *, lazy: bool = False) -> Stream:
        """Open a stream and agree on the first of ``protocols`` the peer accepts.

        Args:
            protocols: one protocol id or a preference-ordered list.
            lazy: (single protocol only) return at once and let the first
                ``receive_some`` consume the peer's echo; application bytes may
                be sent before it arrives (go-libp2p's lazy mode).

        Raises:
            NegotiationError: the peer refused them all.
            PeerTimeoutError: no answer within ``negotiate_timeout``.
            StreamResetError: the connection is closed or broke.
        """
        protos = [protocols] if isinstance(protocols, str) else list(protocols)
        if self.closed:
            raise StreamResetError(f"connection to {self.remote_peer} is closed")
        try:
            sid = self.session.open_stream()
        except LocalProtocolError as exc:
            raise StreamResetError(str(exc)) from exc
        st = Stream(self, sid, inbound=False)
        self._streams[sid] = st
        machine = multistream.Dialer(protos)
        if lazy:
            if len(protos) != 1:
                raise LocalProtocolError("lazy negotiation needs exactly one protocol")
            st.protocol = protos[0]
            st._lazy = machine
            # the SYN and our proposal leave with the caller's first write (or the background flush)
            if not self._queue_small(st, machine.data_to_send()):
                raise StreamResetError(f"stream {sid} closed before it was used")
            await trio.lowlevel.checkpoint()
            return st

        async def _recv() -> bytes:
            await st._wait_readable()
            return st._take(None)

        try:
            result = await _timeout(
                self.host.negotiate_timeout, f"negotiating {protos}", lambda: _negotiate(machine, _recv, st.send_all)
            )
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._quiet_reset(st)
            raise
        st.protocol, rest = result
        st._unread(rest)
        return st

    async def identify(self) -> _identify.Identify:
        """Ask the peer's identify (``/ipfs/id/1.0.0``)."""
        st = await self.open_stream(_identify.IDENTIFY_PROTOCOL)
        try:
            await st.send_eof()
            body = await read_lp_message(st, _identify.MAX_IDENTIFY_BYTES)
            if body is None:
                raise RemoteProtocolError("identify stream closed without a message")
            return _identify.decode_identify(body)
        finally:
            await st.aclose()

    async def ping(self) -> float:
        """Round-trip time (seconds) of one ``/ipfs/ping/1.0.0`` exchange."""
        import os

        st = await self.open_stream(_identify.PING_PROTOCOL)
        try:
            payload = os.urandom(_identify.PING_SIZE)
            start = trio.current_time()
            await st.send_all(payload)
            echo = await st.receive_exactly(_identify.PING_SIZE)
            if echo != payload:
                raise RemoteProtocolError("ping echo does not match")
            return trio.current_time() - start
        finally:
            await st.aclose()

    async def wait_closed(self) -> None:
        await self._closed_event.wait()

    async def aclose(self) -> None:
        """GoAway(0), then close the transport; every stream ends."""
        if self.closed:
            await trio.lowlevel.checkpoint()
            return
        with trio.move_on_after(2) as scope:
            scope.shield = True
            try:
                async with self._send_lock:
                    self.session.go_away(yamux.GoAwayCode.NORMAL)
                    await self._flush_locked()
            except (ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
        self._fail(None)
        await trio.aclose_forcefully(self.channel)


async def read_lp_message(stream: Stream, max_bytes: int) -> bytes | None:
    """Read one ``uvarint(len) ‖ body`` message; None at a clean EOF before it.

    Bytes after the message stay in the stream buffer for the next call.

    Raises:
        LimitExceededError: the prefix announces more than ``max_bytes``.
        RemoteProtocolError: EOF in the middle of the message.
    """
    buf = bytearray()
    while True:
        got = _identify.maybe_decode_lp(buf, max_bytes)
        if got is not None:
            body, used = got
            stream._unread(bytes(buf[used:]))
            return body
        chunk = await stream.receive_some()
        if not chunk:
            if buf:
                raise RemoteProtocolError(f"EOF inside a length-prefixed message ({len(buf)} bytes)")
            return None
        buf += chunk


class Host:
    """Our libp2p node: identity, stream handlers, dialing and listening.

    Args:
        identity: our key (a fresh Ed25519 one if None).
        agent_version: sent in identify.
        handshake_timeout: seconds for TCP connect + Noise + muxer selection.
        negotiate_timeout: seconds for multistream-select on a stream.
        read_timeout: idle seconds before a stream read raises PeerTimeoutError (None: never).
        early_muxer: offer yamux inside the Noise handshake.
        keepalive_interval: send yamux pings this often (None: only answer pings).
        write_timeout: seconds a write may make no progress before the connection fails.
        max_queued_output: control bytes owed to a peer before we stop reading from it.
        max_inbound_connections: accepted connections at once (None: no cap). At the cap a
            new connection replaces the inbound connection that has been idle longest (no
            stream opened, no stream data from the peer) if that one has been idle for at
            least ``idle_grace`` seconds; otherwise it is closed at accept, before any
            handshake work. So connections that only sit there cannot lock others out.
        idle_grace: seconds (kubo's connection manager uses a 20 s grace period too).
    """

    def __init__(
        self,
        identity: Identity | None = None,
        *,
        agent_version: str = f"pyipld/{__version__}",
        handshake_timeout: float = 10.0,
        negotiate_timeout: float = 10.0,
        read_timeout: float | None = 60.0,
        early_muxer: bool = True,
        max_inbound_streams: int = yamux.MAX_INBOUND_STREAMS,
        max_window: int = yamux.MAX_WINDOW,
        max_session_window: int = yamux.MAX_SESSION_WINDOW,
        keepalive_interval: float | None = None,
        write_timeout: float | None = 60.0,
        max_queued_output: int = MAX_QUEUED_OUTPUT,
        max_inbound_connections: int | None = None,
        idle_grace: float = 20.0,
    ) -> None:
        self.identity = identity or Identity.generate()
        self.write_timeout = write_timeout
        self.max_queued_output = max_queued_output
        self.max_inbound_connections = max_inbound_connections
        self.inbound_connections = 0  # accepted TCP connections being served now
        self.connections_refused = 0
        self.connections_evicted = 0
        self.idle_grace = idle_grace
        self.agent_version = agent_version
        self.handshake_timeout = handshake_timeout
        self.negotiate_timeout = negotiate_timeout
        self.read_timeout = read_timeout
        self.early_muxer = early_muxer
        self.max_inbound_streams = max_inbound_streams
        self.max_window = max_window
        self.max_session_window = max_session_window
        self.keepalive_interval = keepalive_interval
        self.listen_addrs: list[Multiaddr] = []
        self.connections: set[Connection] = set()
        self.served: Counter[str] = Counter()  # inbound streams handed to each handler
        self.handlers: dict[str, StreamHandler] = {
            _identify.IDENTIFY_PROTOCOL: self._handle_identify,
            _identify.IDENTIFY_PUSH_PROTOCOL: self._handle_identify_push,
            _identify.PING_PROTOCOL: self._handle_ping,
        }
        self.receivers: dict[str, StreamReceiver] = {}
        # what inbound streams may agree on (live; a protocol is in one of the two at most)
        self.protocols: ChainMap[str, Any] = ChainMap(self.handlers, self.receivers)

    @property
    def peer_id(self) -> PeerId:
        return self.identity.peer_id

    def set_stream_handler(self, protocol: str, handler: StreamHandler) -> None:
        """Serve ``protocol`` on streams peers open; advertised in identify."""
        self.receivers.pop(protocol, None)
        self.handlers[protocol] = handler

    def remove_stream_handler(self, protocol: str) -> None:
        self.handlers.pop(protocol, None)

    def set_stream_receiver(self, protocol: str, receiver: StreamReceiver) -> None:
        """Take ``protocol`` streams peers open with a :class:`StreamReceiver`: no task per
        stream, its bytes are handed over in the connection's reader (advertised in identify)."""
        self.handlers.pop(protocol, None)
        self.receivers[protocol] = receiver

    def remove_stream_receiver(self, protocol: str) -> None:
        self.receivers.pop(protocol, None)

    # -- built-in handlers ----------------------------------------------------------------------
    async def _handle_identify(self, stream: Stream) -> None:
        conn = stream.connection
        msg = _identify.build_identify(
            public_key=self.identity.public_key.to_protobuf(),
            protocols=list(self.protocols),
            agent_version=self.agent_version,
            listen_addrs=[a.without_peer_id().bytes for a in self.listen_addrs],
            observed_addr=conn.remote_addr.without_peer_id().bytes if conn.remote_addr else None,
        )
        await stream.send_all(msg)
        await stream.send_eof()

    async def _handle_identify_push(self, stream: Stream) -> None:
        await read_lp_message(stream, _identify.MAX_IDENTIFY_BYTES)

    async def _handle_ping(self, stream: Stream) -> None:
        echo = _identify.PingEcho()
        for _ in range(1_000_000):  # bounded: a ping stream is short-lived in practice
            data = await stream.receive_some()
            if not data:
                return
            echo.receive_data(data)
            out = echo.data_to_send()
            if out:
                await stream.send_all(out)

    # -- connection set-up -------------------------------------------------------------------------
    @asynccontextmanager
    async def upgrade(
        self,
        transport: trio.abc.Stream,
        *,
        initiator: bool,
        expected_peer: PeerId | None = None,
        remote_addr: Multiaddr | None = None,
    ) -> AsyncIterator[Connection]:
        """Secure and multiplex ``transport``; yields the running :class:`Connection`.

        Raises:
            RemoteProtocolError: handshake failure (bad signature, wrong peer id...).
            NegotiationError: the peer does not speak ``/noise`` or yamux.
            PeerTimeoutError: the whole upgrade took longer than ``handshake_timeout``.
        """
        try:
            result = await _timeout(
                self.handshake_timeout,
                "connection handshake",
                lambda: self._handshake(transport, initiator, expected_peer),
            )
        except BaseException:
            await trio.aclose_forcefully(transport)
            raise
        channel, handshake, muxer, rest = result
        session = yamux.YamuxSession(
            is_client=initiator,
            max_window=self.max_window,
            max_session_window=self.max_session_window,
            max_inbound_streams=self.max_inbound_streams,
            keepalive_interval=self.keepalive_interval,
        )
        try:
            async with trio.open_nursery() as nursery:
                conn = Connection(
                    self, channel, session, handshake, muxer,
                    initiator=initiator, remote_addr=remote_addr, nursery=nursery,
                )
                self.connections.add(conn)
                try:
                    if rest:
                        session.receive_data(rest)
                        conn._dispatch()
                    nursery.start_soon(conn._reader)
                    nursery.start_soon(conn._flusher)
                    if self.keepalive_interval is not None:
                        nursery.start_soon(self._timers, conn)
                    yield conn
                finally:
                    self.connections.discard(conn)
                    await conn.aclose()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # background tasks never raise, so a group holds the caller's own exception
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise

    async def _timers(self, conn: Connection) -> None:
        while not conn.closed:
            try:
                conn.session.handle_timer(trio.current_time())
            except PeerTimeoutError as exc:
                conn._fail(exc)
                await trio.aclose_forcefully(conn.channel)
                return
            conn._schedule_flush()
            deadline = conn.session.get_timer()
            await trio.sleep_until(min(deadline, trio.current_time() + 1) if deadline else trio.current_time() + 1)

    async def _handshake(
        self, transport: trio.abc.Stream, initiator: bool, expected_peer: PeerId | None
    ) -> tuple[NoiseStream, noise.HandshakeCompleted, str, bytes]:
        async def recv_raw() -> bytes:
            data = await transport.receive_some(_RECV_CHUNK)
            return bytes(data)

        # 1. multistream-select /noise on the raw transport
        ms: multistream.Dialer | multistream.Listener
        ms = multistream.Dialer([noise.PROTOCOL_ID]) if initiator else multistream.Listener([noise.PROTOCOL_ID])
        _, rest = await _negotiate(ms, recv_raw, transport.send_all)
        # 2. Noise XX
        session = noise.NoiseSession(
            self.identity,
            initiator=initiator,
            expected_peer=expected_peer,
            muxers=DEFAULT_MUXERS if self.early_muxer else (),
        )
        out = session.data_to_send()
        if out:
            await transport.send_all(out)
        if rest:
            session.receive_data(rest)
        done: noise.HandshakeCompleted | None = None
        pending = bytearray()
        while done is None:
            ev = session.next_event()
            if isinstance(ev, noise.HandshakeCompleted):
                done = ev
            elif isinstance(ev, noise.DataReceived):
                pending += ev.data
            elif ev is None:
                session.receive_data(await recv_raw())
                out = session.data_to_send()
                if out:
                    await transport.send_all(out)
        out = session.data_to_send()
        if out:
            await transport.send_all(out)
        channel = NoiseStream(transport, session)
        channel._pending.append(bytes(pending))
        # 3. muxer: agreed inside Noise, or multistream-select over the secure channel
        if done.selected_muxer == yamux.PROTOCOL_ID:
            return channel, done, yamux.PROTOCOL_ID, b""
        if done.selected_muxer is not None:
            raise NegotiationError(f"peer selected unsupported muxer {done.selected_muxer!r}")

        async def recv_secure() -> bytes:
            data = await channel.receive_some()
            if not data:
                raise RemoteProtocolError("EOF while negotiating the stream muxer")
            return data

        ms = multistream.Dialer([yamux.PROTOCOL_ID]) if initiator else multistream.Listener([yamux.PROTOCOL_ID])
        muxer, rest = await _negotiate(ms, recv_secure, channel.send_all)
        return channel, done, muxer, rest

    @asynccontextmanager
    async def connect(self, addr: Multiaddr | str, *, peer: PeerId | None = None) -> AsyncIterator[Connection]:
        """Dial ``/ip4|ip6|dns*/HOST/tcp/PORT/p2p/ID`` and yield the connection.

        The remote must prove the ``/p2p/`` peer id (or ``peer``); without
        either, any peer is accepted.
        """
        maddr = Multiaddr.parse(addr) if isinstance(addr, str) else addr
        expected = peer or maddr.peer_id
        host, port = maddr.tcp_address()
        try:
            with trio.fail_after(self.handshake_timeout):
                tcp = await trio.open_tcp_stream(host, port)
        except trio.TooSlowError:
            raise PeerTimeoutError(f"TCP connect to {maddr}: no answer within {self.handshake_timeout} s") from None
        async with self.upgrade(tcp, initiator=True, expected_peer=expected, remote_addr=maddr) as conn:
            yield conn

    async def listen(
        self,
        addr: Multiaddr | str = "/ip4/127.0.0.1/tcp/0",
        *,
        on_connection: Callable[[Connection], Awaitable[None]] | None = None,
        task_status: trio.TaskStatus[list[Multiaddr]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept connections until cancelled (use ``await nursery.start(host.listen, ...)``).

        ``task_status.started`` gets the bound addresses with ``/p2p/<our id>``;
        they are also added to :attr:`listen_addrs` (sent in identify).
        """
        maddr = Multiaddr.parse(addr) if isinstance(addr, str) else addr
        host, port = maddr.tcp_address()
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound: list[Multiaddr] = []
        for lst in listeners:
            sockname = lst.socket.getsockname()
            bound.append(Multiaddr.from_tcp(sockname[0], sockname[1], self.peer_id))
        self.listen_addrs.extend(bound)

        async def handle(tcp: trio.SocketStream) -> None:
            cap = self.max_inbound_connections
            if cap is not None and self.inbound_connections >= cap:
                victim = self._most_idle_inbound()
                if victim is None:
                    self.connections_refused += 1
                    log.info("refusing a connection: %d inbound connections (max %d)", self.inbound_connections, cap)
                    await trio.aclose_forcefully(tcp)
                    return
                self.connections_evicted += 1
                log.info("closing idle connection %s to make room", victim.remote_peer)
                victim._fail(PeerTimeoutError(f"idle for {self.idle_grace} s with {cap} connections open"))
                await trio.aclose_forcefully(victim.channel)
            self.inbound_connections += 1
            try:
                try:
                    peer_addr = tcp.socket.getpeername()
                    remote = Multiaddr.from_tcp(peer_addr[0], peer_addr[1])
                except (OSError, ValueError):
                    remote = None
                await self.serve_transport(tcp, remote_addr=remote, on_connection=on_connection)
            finally:
                self.inbound_connections -= 1

        try:
            task_status.started(bound)
            await trio.serve_listeners(handle, listeners)
        finally:
            for a in bound:
                if a in self.listen_addrs:
                    self.listen_addrs.remove(a)

    def _most_idle_inbound(self) -> Connection | None:
        """The inbound connection idle longest, if idle for ``idle_grace`` seconds or more."""
        now = trio.current_time()
        idle = [c for c in self.connections
                if not c.initiator and not c.closed and now - c.last_active >= self.idle_grace]
        return min(idle, key=lambda c: c.last_active, default=None)

    async def serve_transport(
        self,
        transport: trio.abc.Stream,
        *,
        remote_addr: Multiaddr | None = None,
        on_connection: Callable[[Connection], Awaitable[None]] | None = None,
    ) -> None:
        """Run the responder side on one accepted transport until it closes."""
        try:
            async with self.upgrade(transport, initiator=False, remote_addr=remote_addr) as conn:
                if on_connection is not None:
                    await on_connection(conn)
                await conn.wait_closed()
        except (ProtocolError, DecodeError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.debug("inbound connection from %s failed: %s", remote_addr, exc)
        except Exception as exc:  # noqa: BLE001 - whatever one peer causes ends with its connection
            log.warning("inbound connection from %s failed unexpectedly: %r", remote_addr, exc)
