"""Sans-I/O yamux session (``/yamux/1.0.0``): streams, flow control, ping, go-away.

Spec: https://github.com/hashicorp/yamux/blob/master/spec.md and
https://github.com/libp2p/specs/blob/master/yamux/README.md

Theory of operation
-------------------
Every frame has a 12-byte big-endian header ``version(0) | type | flags(u16) |
stream_id(u32) | length(u32)``. Types: Data (``length`` payload bytes follow),
WindowUpdate (``length`` = credit delta), Ping (``length`` = opaque), GoAway
(``length`` = code). Flags SYN/ACK/FIN/RST ride on Data and WindowUpdate.
The TCP dialer is the *client* and opens odd stream ids, the listener even
ones; id 0 is the session (Ping, GoAway).

Per-stream states (inputs are the frames we send or receive)::

    OPEN ──send FIN──> LOCAL_CLOSED ──recv FIN──> CLOSED (forgotten)
      └───recv FIN──> REMOTE_CLOSED ──send FIN──> CLOSED
    any ──send/recv RST──> CLOSED (forgotten; a received RST is a StreamReset event)

Data received in REMOTE_CLOSED is a protocol error. Frames for unknown
(forgotten) stream ids are ignored, as js and go do.

Flow control: each direction of each stream starts with a 256 KiB window.
We may send Data only within the peer's credit (:meth:`send_data` returns how
many bytes it took). A peer that sends more than the credit we granted breaks
the protocol: :class:`~pyipld.errors.RemoteProtocolError` (and a queued
GoAway(protocol error)). The application reports consumed bytes with
:meth:`stream_consumed`; once half a window has been consumed we return the
credit, and (auto-tuning, like go-yamux and js) double the window each time
up to ``max_window`` (16 MiB) while the sum over all streams stays within
``max_session_window`` (64 MiB). So a stream never buffers more than its
window and a connection never more than the larger of that budget and
256 KiB times its streams.

Pings with SYN are answered at once (ACK, same opaque), but at most
``max_queued_pongs`` answers wait in the outbound buffer at a time; more are
dropped, as go-yamux does (its ``pongCh`` has room for 32 and drops on
overflow), so a peer that pings and never reads cannot grow our output.
:attr:`outbound_bytes` tells the driver how much output is queued: it stops
reading from a peer whose output is not draining. A Data frame longer than the
stream's remaining receive window is refused from its header, before any of
its payload is buffered. An unsolicited ping ACK is ignored. GoAway from the peer forbids new outbound streams; ours
is queued by :meth:`go_away`. Any remote protocol violation moves the session
to CLOSED, queues GoAway(1) and raises; later calls raise
:class:`~pyipld.errors.LocalProtocolError`. Time is an argument:
:meth:`handle_timer` sends keep-alive pings and raises
:class:`~pyipld.errors.PeerTimeoutError` for an unanswered one.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from enum import Enum, IntEnum, IntFlag, auto
from typing import Final

from ..errors import LocalProtocolError, PeerTimeoutError, RemoteProtocolError

__all__ = [
    "INITIAL_WINDOW",
    "MAX_QUEUED_PONGS",
    "MAX_SESSION_WINDOW",
    "MAX_WINDOW",
    "PROTOCOL_ID",
    "ConnectionTerminated",
    "DataReceived",
    "Event",
    "Flag",
    "FrameType",
    "GoAwayCode",
    "GoAwayReceived",
    "PingReceived",
    "PongReceived",
    "StreamEnded",
    "StreamOpened",
    "StreamReset",
    "StreamState",
    "WindowUpdated",
    "YamuxSession",
    "encode_header",
]

PROTOCOL_ID: Final = "/yamux/1.0.0"
INITIAL_WINDOW: Final = 256 * 1024  # spec: every stream starts with a 256 KiB window
MAX_WINDOW: Final = 16 * 1024 * 1024  # go-yamux MaxStreamWindowSize / js maxStreamWindowSize
MAX_DATA_FRAME: Final = 64 * 1024  # js and go send <= 64 KiB per Data frame; so do we
MAX_INBOUND_STREAMS: Final = 256
# go-yamux (libp2p fork) session.go: pongCh = make(chan uint32, 32), a full channel drops the pong
MAX_QUEUED_PONGS: Final = 32
# Windows grow past 256 KiB only while the sum over all streams stays below this, so a
# connection never commits to buffering more (initial windows are always granted)
MAX_SESSION_WINDOW: Final = 64 * 1024 * 1024
_HEADER: Final = struct.Struct(">BBHII")
_HEADER_LEN: Final = 12


class FrameType(IntEnum):
    DATA = 0
    WINDOW_UPDATE = 1
    PING = 2
    GO_AWAY = 3


class Flag(IntFlag):
    NONE = 0
    SYN = 0x1
    ACK = 0x2
    FIN = 0x4
    RST = 0x8


class GoAwayCode(IntEnum):
    NORMAL = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


# The frame paths use plain ints: an ``IntFlag`` ``&`` builds a new enum member each time
# (~3 us), and the receive path tested flags three times per frame
_DATA, _WINDOW_UPDATE, _PING, _GO_AWAY = (int(t) for t in FrameType)
_SYN, _ACK, _FIN, _RST = (int(f) for f in (Flag.SYN, Flag.ACK, Flag.FIN, Flag.RST))


def encode_header(frame_type: int, flags: int, stream_id: int, length: int) -> bytes:
    """One 12-byte yamux header."""
    return _HEADER.pack(0, frame_type, flags, stream_id, length)


# -- events ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StreamOpened:
    """The peer opened ``stream_id`` (we already queued the ACK)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class DataReceived:
    stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The peer half-closed ``stream_id`` (FIN): no more data will come."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class StreamReset:
    """The peer aborted ``stream_id`` (RST)."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class WindowUpdated:
    """The peer granted credit: ``send_window`` bytes may now be sent on ``stream_id``."""

    stream_id: int
    send_window: int


@dataclass(frozen=True, slots=True)
class PingReceived:
    opaque: int


@dataclass(frozen=True, slots=True)
class PongReceived:
    opaque: int


@dataclass(frozen=True, slots=True)
class GoAwayReceived:
    code: int


@dataclass(frozen=True, slots=True)
class ConnectionTerminated:
    """EOF from the transport on a frame boundary."""


Event = (
    StreamOpened
    | DataReceived
    | StreamEnded
    | StreamReset
    | WindowUpdated
    | PingReceived
    | PongReceived
    | GoAwayReceived
    | ConnectionTerminated
)


class StreamState(Enum):
    OPEN = auto()
    LOCAL_CLOSED = auto()
    REMOTE_CLOSED = auto()
    CLOSED = auto()

    # members are singletons compared by identity: the C-level identity hash is exact, and
    # the transition lookup on every received frame skips Enum's Python-level __hash__
    __hash__ = object.__hash__


class _In(Enum):
    SEND_DATA = auto()
    RECV_DATA = auto()
    SEND_FIN = auto()
    RECV_FIN = auto()
    SEND_RST = auto()
    RECV_RST = auto()

    __hash__ = object.__hash__  # as StreamState


_S = StreamState
_STREAM_TRANSITIONS: Final = {
    (_S.OPEN, _In.SEND_DATA): _S.OPEN,
    (_S.OPEN, _In.RECV_DATA): _S.OPEN,
    (_S.OPEN, _In.SEND_FIN): _S.LOCAL_CLOSED,
    (_S.OPEN, _In.RECV_FIN): _S.REMOTE_CLOSED,
    (_S.LOCAL_CLOSED, _In.RECV_DATA): _S.LOCAL_CLOSED,
    (_S.LOCAL_CLOSED, _In.RECV_FIN): _S.CLOSED,
    (_S.REMOTE_CLOSED, _In.SEND_DATA): _S.REMOTE_CLOSED,
    (_S.REMOTE_CLOSED, _In.SEND_FIN): _S.CLOSED,
    **{(s, _In.SEND_RST): _S.CLOSED for s in (_S.OPEN, _S.LOCAL_CLOSED, _S.REMOTE_CLOSED)},
    **{(s, _In.RECV_RST): _S.CLOSED for s in (_S.OPEN, _S.LOCAL_CLOSED, _S.REMOTE_CLOSED)},
}


class _Stream:
    __slots__ = (
        "inbound",
        "need_ack",
        "recv_window",
        "send_window",
        "state",
        "stream_id",
        "unacked",
        "window_size",
    )

    def __init__(self, stream_id: int, inbound: bool, window_size: int) -> None:
        self.stream_id = stream_id
        self.state = StreamState.OPEN
        self.inbound = inbound
        self.need_ack = inbound
        self.send_window = INITIAL_WINDOW  # the peer's grant to us
        self.recv_window = window_size  # what the peer may still send us
        self.window_size = window_size  # our current target window
        self.unacked = 0  # consumed by the application, credit not yet returned


class YamuxSession:
    """One end of a yamux session.

    Args:
        is_client: True for the TCP dialer (odd stream ids).
        initial_window: receive window announced on each new stream (>= 256 KiB).
        max_window: ceiling for auto-tuned receive windows.
        max_inbound_streams: concurrent peer-opened streams; more are reset.
        max_session_window: budget for auto-tuned growth summed over all streams.
        keepalive_interval / ping_timeout: seconds; None disables keep-alive pings.
        max_queued_pongs: ping answers waiting in the outbound buffer; more are dropped.
    """

    def __init__(
        self,
        *,
        is_client: bool,
        initial_window: int = INITIAL_WINDOW,
        max_window: int = MAX_WINDOW,
        max_inbound_streams: int = MAX_INBOUND_STREAMS,
        max_session_window: int = MAX_SESSION_WINDOW,
        keepalive_interval: float | None = None,
        ping_timeout: float = 30.0,
        max_queued_pongs: int = MAX_QUEUED_PONGS,
    ) -> None:
        if not INITIAL_WINDOW <= initial_window <= max_window < 2**32:
            raise LocalProtocolError("need 256 KiB <= initial_window <= max_window < 4 GiB")
        self.is_client = is_client
        self.initial_window = initial_window
        self.max_window = max_window
        self.max_inbound_streams = max_inbound_streams
        self.max_session_window = max_session_window
        self._window_total = 0  # sum of our receive windows: what the peer may have in flight
        self.keepalive_interval = keepalive_interval
        self.ping_timeout = ping_timeout
        self.max_queued_pongs = max_queued_pongs
        self.pongs_dropped = 0
        self._queued_pongs = 0  # ping answers in _out since the last data_to_send()
        self.closed = False
        self.local_goaway = False
        self.remote_goaway: int | None = None
        self._next_id = 1 if is_client else 2
        self._streams: dict[int, _Stream] = {}
        self._inbound_count = 0
        self._in = bytearray()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._next_opaque = 1
        self._pings: dict[int, float | None] = {}  # opaque -> sent at (None: unknown time)
        self._next_keepalive: float | None = None

    # -- queries -----------------------------------------------------------------------
    def stream_state(self, stream_id: int) -> StreamState:
        """State of a stream; forgotten (fully closed/reset) streams are CLOSED."""
        st = self._streams.get(stream_id)
        return st.state if st else StreamState.CLOSED

    def send_window(self, stream_id: int) -> int:
        """Bytes :meth:`send_data` would accept now on ``stream_id`` (0 if gone)."""
        st = self._streams.get(stream_id)
        return st.send_window if st else 0

    def receive_window(self, stream_id: int) -> int:
        """Current auto-tuned receive window size of ``stream_id`` (0 if gone)."""
        st = self._streams.get(stream_id)
        return st.window_size if st else 0

    @property
    def has_data_to_send(self) -> bool:
        """True when :meth:`data_to_send` would return bytes."""
        return bool(self._out)

    @property
    def outbound_bytes(self) -> int:
        """Bytes queued for :meth:`data_to_send` (the driver pauses reading while this is high)."""
        return len(self._out)

    @property
    def buffered_bytes(self) -> int:
        """Bytes this machine holds: a partial inbound frame plus queued output."""
        return len(self._in) + len(self._out)

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    # -- commands ------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise LocalProtocolError("yamux: session is closed")

    def _stream(self, stream_id: int) -> _Stream:
        self._check_open()
        st = self._streams.get(stream_id)
        if st is None:
            raise LocalProtocolError(f"yamux: stream {stream_id} is not open")
        return st

    def _local_move(self, st: _Stream, inp: _In) -> None:
        nxt = _STREAM_TRANSITIONS.get((st.state, inp))
        if nxt is None:
            raise LocalProtocolError(f"yamux: {inp.name} on stream {st.stream_id} in state {st.state.name}")
        st.state = nxt
        if nxt is StreamState.CLOSED:
            self._forget(st)

    def _forget(self, st: _Stream) -> None:
        if self._streams.pop(st.stream_id, None) is not None:
            self._window_total -= st.window_size
            if st.inbound:
                self._inbound_count -= 1

    def _flags_for(self, st: _Stream, flags: int) -> int:
        if st.need_ack:
            st.need_ack = False
            flags |= _ACK
        return flags

    def open_stream(self) -> int:
        """Open an outbound stream (SYN queued); returns its id.

        Raises:
            LocalProtocolError: the session is closed or a GoAway was sent/received.
        """
        self._check_open()
        if self.local_goaway or self.remote_goaway is not None:
            raise LocalProtocolError("yamux: no new streams after GoAway")
        sid = self._next_id
        if sid >= 2**32:
            raise LocalProtocolError("yamux: stream ids exhausted")
        self._next_id += 2
        st = _Stream(sid, inbound=False, window_size=self.initial_window)
        self._window_total += st.window_size
        self._streams[sid] = st
        self._out += encode_header(_WINDOW_UPDATE, _SYN, sid, self.initial_window - INITIAL_WINDOW)
        return sid

    def send_data(self, stream_id: int, data: bytes | bytearray | memoryview) -> int:
        """Queue as much of ``data`` as the peer's window allows; returns bytes taken."""
        st = self._stream(stream_id)
        n = min(len(data), st.send_window)
        if n == 0 and len(data):
            return 0
        self._local_move(st, _In.SEND_DATA)
        view = memoryview(data)
        for start in range(0, n, MAX_DATA_FRAME):
            chunk = view[start : min(n, start + MAX_DATA_FRAME)]
            self._out += encode_header(_DATA, self._flags_for(st, 0), stream_id, len(chunk))
            self._out += chunk
        st.send_window -= n
        return n

    def send_eof(self, stream_id: int) -> None:
        """Half-close our direction (FIN)."""
        st = self._stream(stream_id)
        self._local_move(st, _In.SEND_FIN)
        self._out += encode_header(_WINDOW_UPDATE, self._flags_for(st, _FIN), stream_id, 0)

    def reset_stream(self, stream_id: int) -> None:
        """Abort both directions (RST); a no-op for streams already gone."""
        self._check_open()
        st = self._streams.get(stream_id)
        if st is None:
            return
        self._local_move(st, _In.SEND_RST)
        self._out += encode_header(_WINDOW_UPDATE, self._flags_for(st, _RST), stream_id, 0)

    def stream_consumed(self, stream_id: int, n: int) -> None:
        """The application consumed ``n`` received bytes: return credit when due."""
        st = self._streams.get(stream_id)
        if st is None or self.closed or n <= 0:
            return
        # recv_window + buffered + unacked == window_size, so credit can never exceed
        # window_size - recv_window: clamp, so a caller that double-counts cannot make
        # us grant (and then have to buffer) more than the window
        st.unacked = min(st.unacked + n, st.window_size - st.recv_window)
        if st.state in (StreamState.REMOTE_CLOSED,) or st.unacked < st.window_size // 2:
            return
        growth = 0
        if st.window_size < self.max_window:  # auto-tune: a stream that fills windows gets more
            growth = min(st.window_size * 2, self.max_window) - st.window_size
            growth = max(0, min(growth, self.max_session_window - self._window_total))
        delta = st.unacked + growth
        st.window_size += growth
        self._window_total += growth
        st.recv_window += delta
        st.unacked = 0
        self._out += encode_header(_WINDOW_UPDATE, self._flags_for(st, 0), stream_id, delta)

    def ping(self, now: float | None = None) -> int:
        """Queue a ping (SYN); returns its opaque value (the pong carries it)."""
        self._check_open()
        opaque = self._next_opaque
        self._next_opaque = (self._next_opaque + 1) & 0xFFFFFFFF
        self._pings[opaque] = now
        self._out += encode_header(_PING, _SYN, 0, opaque)
        return opaque

    def go_away(self, code: int = GoAwayCode.NORMAL) -> None:
        """Queue GoAway(code): we open no more streams."""
        self._check_open()
        if not self.local_goaway:
            self.local_goaway = True
            self._out += encode_header(_GO_AWAY, 0, 0, code)

    # -- timers --------------------------------------------------------------------------
    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` next needs calling (None: never)."""
        deadlines = [t + self.ping_timeout for t in self._pings.values() if t is not None]
        if self._next_keepalive is not None:
            deadlines.append(self._next_keepalive)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Send due keep-alive pings; fail on a ping unanswered for ``ping_timeout``.

        Raises:
            PeerTimeoutError: a ping got no answer in time (session CLOSED).
        """
        if self.closed:
            return
        for sent in self._pings.values():
            if sent is not None and now - sent >= self.ping_timeout:
                self.closed = True
                raise PeerTimeoutError(f"yamux: ping unanswered for {self.ping_timeout} s")
        if self.keepalive_interval is None:
            return
        if self._next_keepalive is None:
            self._next_keepalive = now + self.keepalive_interval
        elif now >= self._next_keepalive:
            self.ping(now)
            self._next_keepalive = now + self.keepalive_interval

    # -- receiving ---------------------------------------------------------------------------
    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        self._queued_pongs = 0
        return out

    def _fail(self, message: str) -> RemoteProtocolError:
        self._in = bytearray()  # nothing more will be parsed: keep none of the peer's bytes (a
        # new object, not clear(): receive_data may hold a view of the old one)
        if not self.closed:
            self.closed = True
            if not self.local_goaway:
                self.local_goaway = True
                self._out += encode_header(_GO_AWAY, 0, 0, GoAwayCode.PROTOCOL_ERROR)
        return RemoteProtocolError(f"yamux: {message}", error_code=GoAwayCode.PROTOCOL_ERROR)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the transport; ``b""`` means EOF.

        Raises:
            RemoteProtocolError: a malformed frame or a protocol violation.
            LocalProtocolError: the session is already closed.
        """
        self._check_open()
        if not data:
            if self._in:
                raise self._fail(f"EOF inside a frame ({len(self._in)} bytes pending)")
            self.closed = True
            self._streams.clear()
            self._events.append(ConnectionTerminated())
            return
        # Frames are parsed straight out of ``data`` (each payload is one slice copy). A frame
        # split across calls waits in ``_in``: it is completed from the head of the next
        # ``data`` (its header first, so a refused frame is refused before its payload is
        # copied), and the rest of ``data`` is parsed in place again.
        if not isinstance(data, bytes):
            data = bytes(data)  # the caller may reuse its buffer
        pos = 0
        end = len(data)
        while self._in and not self.closed:
            have = len(self._in)
            if have < _HEADER_LEN:
                want = _HEADER_LEN - have
            else:
                length = int.from_bytes(self._in[8:12], "big")
                want = (_HEADER_LEN + length if self._in[1] == _DATA else _HEADER_LEN) - have
            take = min(want, end - pos)
            if take <= 0:
                break
            self._in += memoryview(data)[pos : pos + take]  # one copy, into the pending frame
            pos += take
            done = self._parse(self._in, 0)
            if done:
                del self._in[:done]
            elif pos >= end:
                return
        if pos < end and not self.closed:
            done = self._parse(data, pos)
            if done < end and not self.closed:
                self._in += memoryview(data)[done:]

    def _parse(self, buf: bytes | bytearray, pos: int) -> int:
        """Handle the complete frames in ``buf`` from ``pos``; returns where the first
        incomplete one starts (its header was checked if complete)."""
        end = len(buf)
        view = memoryview(buf)
        try:
            while end - pos >= _HEADER_LEN and not self.closed:
                version, ftype, flags, sid, length = _HEADER.unpack_from(buf, pos)
                if version != 0:
                    raise self._fail(f"frame version {version} at stream {sid}")
                if ftype == _DATA:
                    if length > self.max_window:
                        raise self._fail(f"data frame of {length} bytes > max window {self.max_window}")
                    known = self._streams.get(sid)
                    room = known.recv_window if known is not None else self.initial_window
                    if length > room and (known is not None or flags & _SYN):
                        # refuse from the header: never buffer a payload the window forbids
                        raise self._fail(f"stream {sid}: data frame of {length} bytes > remaining window {room}")
                    if end - pos - _HEADER_LEN < length:
                        break
                    payload = bytes(view[pos + _HEADER_LEN : pos + _HEADER_LEN + length])
                    pos += _HEADER_LEN + length
                    self._on_stream_frame(flags, sid, payload, 0)
                elif ftype == _WINDOW_UPDATE:
                    pos += _HEADER_LEN
                    self._on_stream_frame(flags, sid, None, length)
                elif ftype == _PING:
                    pos += _HEADER_LEN
                    self._on_ping(flags, sid, length)
                elif ftype == _GO_AWAY:
                    pos += _HEADER_LEN
                    if sid != 0:
                        raise self._fail(f"GoAway on stream {sid}")
                    self.remote_goaway = length
                    self._events.append(GoAwayReceived(length))
                else:
                    raise self._fail(f"unknown frame type {ftype}")
        finally:
            view.release()  # before ``_in`` is resized: a live export forbids it
        return pos

    def _on_ping(self, flags: int, sid: int, opaque: int) -> None:
        if sid != 0:
            raise self._fail(f"ping on stream {sid}")
        if flags == _SYN:
            if self._queued_pongs >= self.max_queued_pongs:
                self.pongs_dropped += 1  # the peer is not reading our answers (go-yamux drops too)
                return
            self._queued_pongs += 1
            self._out += encode_header(_PING, _ACK, 0, opaque)
            self._events.append(PingReceived(opaque))
        elif flags == _ACK:
            if opaque in self._pings:  # an unsolicited ACK is ignored
                del self._pings[opaque]
                self._events.append(PongReceived(opaque))
        else:
            raise self._fail(f"ping with flags 0x{flags:x}")

    def _on_stream_frame(self, flags: int, sid: int, payload: bytes | None, delta: int) -> None:
        if sid == 0:
            raise self._fail("data or window update on stream 0")
        st = self._streams.get(sid)
        if flags & _SYN:
            if st is not None:
                raise self._fail(f"SYN for stream {sid}, which is already open")
            if (sid % 2 == 1) == self.is_client:
                raise self._fail(f"peer opened stream {sid} with our parity")
            if self.local_goaway or self._inbound_count >= self.max_inbound_streams:
                self._out += encode_header(_WINDOW_UPDATE, _RST, sid, 0)
                return
            st = _Stream(sid, inbound=True, window_size=self.initial_window)
            self._window_total += st.window_size
            self._streams[sid] = st
            self._inbound_count += 1
            self._events.append(StreamOpened(sid))
            # ACK at once (go and js do the same on accept), announcing our window
            st.need_ack = False
            self._out += encode_header(
                _WINDOW_UPDATE, _ACK, sid, self.initial_window - INITIAL_WINDOW
            )
        if st is None:
            return  # unknown or forgotten stream: ignore, as js and go do
        if flags & _RST:
            st.state = StreamState.CLOSED
            self._forget(st)
            self._events.append(StreamReset(sid))
            return
        if delta:
            st.send_window += delta
            if st.send_window >= 2**32:
                raise self._fail(f"window of stream {sid} overflows 32 bits")
            self._events.append(WindowUpdated(sid, st.send_window))
        if payload:
            if len(payload) > st.recv_window:
                raise self._fail(
                    f"stream {sid}: {len(payload)} data bytes > remaining window {st.recv_window}"
                )
            self._remote_move(st, _In.RECV_DATA)
            st.recv_window -= len(payload)
            self._events.append(DataReceived(sid, payload))
        if flags & _FIN:
            self._remote_move(st, _In.RECV_FIN)
            self._events.append(StreamEnded(sid))
            if st.state is StreamState.CLOSED:
                self._forget(st)

    def _remote_move(self, st: _Stream, inp: _In) -> None:
        nxt = _STREAM_TRANSITIONS.get((st.state, inp))
        if nxt is None:
            raise self._fail(f"{inp.name} on stream {st.stream_id} in state {st.state.name}")
        st.state = nxt
