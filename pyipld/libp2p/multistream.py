"""Sans-I/O multistream-select 1.0: agree on one protocol for a byte stream.

Spec: https://github.com/multiformats/multistream-select

Theory of operation
-------------------
Every message is ``uvarint(len(line) + 1) ‖ line ‖ "\\n"``; a line is at most
1024 bytes (js and go both cap it). Both sides open with the header
``/multistream/1.0.0``.

:class:`Dialer` (connection upgrade, every outbound stream) queues the header
and its first proposal at construction::

    AWAIT_HEADER --header--> AWAIT_ANSWER --echo--> AGREED
                                  |  --"na", more left--> AWAIT_ANSWER (next proposal queued)
                                  '--"na", none left----> FAILED   (event NegotiationFailed)

:class:`Listener` (every inbound stream) queues its header at construction::

    AWAIT_HEADER --header--> AWAIT_PROPOSAL --supported--> AGREED (echo queued)
                                  |  --unsupported--> AWAIT_PROPOSAL ("na" queued)
                                  '--"ls"----------> AWAIT_PROPOSAL (list queued)

Any other (state, input) pair, EOF before AGREED, a bad header or an
over-long line moves the machine to CLOSED and raises
:class:`~pyipld.errors.RemoteProtocolError`. Feeding bytes after AGREED or
FAILED raises :class:`~pyipld.errors.LocalProtocolError`. Bytes that arrived
after the agreed line belong to the application: :meth:`trailing_data`.
A refusal (``na``) is an event, never an error.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import Enum, auto
from typing import Final

from .._varint import decode_varint, encode_varint
from ..errors import LocalProtocolError, RemoteProtocolError, VarintError

__all__ = [
    "MAX_LINE_BYTES",
    "PROTOCOL_ID",
    "Dialer",
    "Event",
    "Listener",
    "NegotiationFailed",
    "ProtocolAgreed",
    "ProtocolRefused",
    "ProtocolRejected",
    "State",
    "encode_line",
]

PROTOCOL_ID: Final = "/multistream/1.0.0"
MAX_LINE_BYTES: Final = 1024  # go-multistream and js-libp2p both refuse longer messages
MAX_PROPOSALS: Final = 64  # a listener stops after this many refused proposals
_NA: Final = "na"
_LS: Final = "ls"


def encode_line(line: str) -> bytes:
    """One multistream message: ``uvarint(len+1) ‖ line ‖ "\\n"``."""
    raw = line.encode("utf-8") + b"\n"
    if len(raw) > MAX_LINE_BYTES:
        raise LocalProtocolError(f"multistream line of {len(raw)} bytes > {MAX_LINE_BYTES}")
    return encode_varint(len(raw)) + raw


@dataclass(frozen=True, slots=True)
class ProtocolAgreed:
    """Both sides now speak ``protocol`` on this stream."""

    protocol: str


@dataclass(frozen=True, slots=True)
class ProtocolRejected:
    """(Dialer) the listener answered ``na`` to ``protocol``."""

    protocol: str


@dataclass(frozen=True, slots=True)
class NegotiationFailed:
    """(Dialer) the listener refused every proposal."""

    protocols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProtocolRefused:
    """(Listener) we answered ``na`` to the remote's ``protocol``."""

    protocol: str


Event = ProtocolAgreed | ProtocolRejected | NegotiationFailed | ProtocolRefused


class State(Enum):
    AWAIT_HEADER = auto()
    AWAIT_ANSWER = auto()
    AWAIT_PROPOSAL = auto()
    AGREED = auto()
    FAILED = auto()
    CLOSED = auto()


class _In(Enum):
    HEADER = auto()
    ECHO = auto()
    NA_RETRY = auto()
    NA_LAST = auto()
    SUPPORTED = auto()
    UNSUPPORTED = auto()
    LS = auto()


_DIALER_TRANSITIONS: Final = {
    (State.AWAIT_HEADER, _In.HEADER): State.AWAIT_ANSWER,
    (State.AWAIT_ANSWER, _In.ECHO): State.AGREED,
    (State.AWAIT_ANSWER, _In.NA_RETRY): State.AWAIT_ANSWER,
    (State.AWAIT_ANSWER, _In.NA_LAST): State.FAILED,
}
_LISTENER_TRANSITIONS: Final = {
    (State.AWAIT_HEADER, _In.HEADER): State.AWAIT_PROPOSAL,
    (State.AWAIT_PROPOSAL, _In.SUPPORTED): State.AGREED,
    (State.AWAIT_PROPOSAL, _In.UNSUPPORTED): State.AWAIT_PROPOSAL,
    (State.AWAIT_PROPOSAL, _In.LS): State.AWAIT_PROPOSAL,
}


class _Machine:
    _transitions: dict[tuple[State, _In], State]

    def __init__(self) -> None:
        self.state = State.AWAIT_HEADER
        self._in = bytearray()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._eof = False

    # -- the sans-I/O surface -------------------------------------------------------
    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the peer; ``b""`` means EOF.

        Raises:
            RemoteProtocolError: malformed or unexpected message, EOF before agreement.
            LocalProtocolError: called after AGREED/FAILED/CLOSED.
        """
        if self.state in (State.AGREED, State.FAILED, State.CLOSED):
            raise LocalProtocolError(f"multistream: receive_data in state {self.state.name}")
        if not data:
            self._eof = True
        else:
            self._in += data
        self._parse()

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def trailing_data(self) -> bytes:
        """Bytes received after the agreed line (the application's first bytes)."""
        out = bytes(self._in)
        self._in.clear()
        return out

    # -- internals --------------------------------------------------------------------
    def _fail(self, message: str) -> RemoteProtocolError:
        self.state = State.CLOSED
        return RemoteProtocolError(f"multistream: {message}")

    def _move(self, inp: _In) -> None:
        nxt = self._transitions.get((self.state, inp))
        if nxt is None:
            raise self._fail(f"unexpected {inp.name} in state {self.state.name}")
        self.state = nxt

    def _maybe_read_line(self) -> str | None:
        try:
            length, n = decode_varint(self._in, 0, max_bytes=2)
        except VarintError as exc:
            if "truncated" in str(exc):
                return None
            raise self._fail(f"bad length prefix: {exc}") from exc
        if length > MAX_LINE_BYTES:
            raise self._fail(f"message of {length} bytes > {MAX_LINE_BYTES}")
        if len(self._in) < n + length:
            return None
        raw = bytes(self._in[n : n + length])
        del self._in[: n + length]
        if not raw.endswith(b"\n"):
            raise self._fail(f"message {raw[:64]!r} does not end with a newline")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail("message is not UTF-8") from None

    def _parse(self) -> None:
        while self.state not in (State.AGREED, State.FAILED, State.CLOSED):
            line = self._maybe_read_line()
            if line is None:
                if self._eof:
                    raise self._fail(f"EOF in state {self.state.name}")
                return
            self._handle(line)

    def _handle(self, line: str) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class Dialer(_Machine):
    """The initiator: proposes ``protocols`` in order until one is echoed."""

    _transitions = _DIALER_TRANSITIONS

    def __init__(self, protocols: Iterable[str]) -> None:
        super().__init__()
        self.protocols = tuple(protocols)
        if not self.protocols:
            raise LocalProtocolError("multistream dialer needs at least one protocol")
        self._next = 0
        self._out += encode_line(PROTOCOL_ID)
        self._propose()

    @property
    def proposed(self) -> str:
        """The protocol currently awaiting an answer."""
        return self.protocols[self._next - 1]

    def _propose(self) -> None:
        self._out += encode_line(self.protocols[self._next])
        self._next += 1

    def _handle(self, line: str) -> None:
        if self.state is State.AWAIT_HEADER:
            if line != PROTOCOL_ID:
                raise self._fail(f"expected header {PROTOCOL_ID!r}, got {line[:64]!r}")
            self._move(_In.HEADER)
        elif line == self.proposed:
            self._move(_In.ECHO)
            self._events.append(ProtocolAgreed(line))
        elif line == _NA:
            rejected = self.proposed
            last = self._next >= len(self.protocols)
            self._move(_In.NA_LAST if last else _In.NA_RETRY)
            self._events.append(ProtocolRejected(rejected))
            if last:
                self._events.append(NegotiationFailed(self.protocols))
            else:
                self._propose()
        else:
            raise self._fail(f"answer {line[:64]!r} to proposal {self.proposed!r}")


class Listener(_Machine):
    """The responder: echoes the first proposal found in ``supported``, else ``na``.

    ``supported`` is consulted at each proposal, so a live view (a dict's keys)
    works. ``ls`` is answered with the list.
    """

    _transitions = _LISTENER_TRANSITIONS

    def __init__(self, supported: Collection[str], *, max_proposals: int = MAX_PROPOSALS) -> None:
        super().__init__()
        self.supported = supported
        self.max_proposals = max_proposals
        self._refused = 0
        self._out += encode_line(PROTOCOL_ID)

    def _handle(self, line: str) -> None:
        if self.state is State.AWAIT_HEADER:
            if line != PROTOCOL_ID:
                raise self._fail(f"expected header {PROTOCOL_ID!r}, got {line[:64]!r}")
            self._move(_In.HEADER)
        elif line == _LS:
            self._move(_In.LS)
            body = b"".join(encode_line(p) for p in self.supported) + b"\n"
            self._out += encode_varint(len(body)) + body
        elif line in self.supported and line not in (_NA, PROTOCOL_ID):
            self._move(_In.SUPPORTED)
            self._out += encode_line(line)
            self._events.append(ProtocolAgreed(line))
        else:
            self._move(_In.UNSUPPORTED if line != PROTOCOL_ID else _In.HEADER)
            self._refused += 1
            if self._refused > self.max_proposals:
                raise self._fail(f"more than {self.max_proposals} refused proposals")
            self._out += encode_line(_NA)
            self._events.append(ProtocolRefused(line))
