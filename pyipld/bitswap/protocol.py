"""Sans-I/O bitswap: a client session, a server session and a multi-peer want router.

No sockets, no clocks: bytes and time are arguments (shared/STYLE.md §3).

Theory of operation
-------------------
:class:`ClientSession` talks to ONE remote peer. ``want(cid)`` queues a
want-block (or want-have). ``data_to_send()`` moves queued wants into the
*window* (at most ``max_outstanding`` sent and unanswered) and returns framed
messages, which the driver writes on its outbound bitswap stream. While more
than half the window is in flight, ``has_data_to_send`` waits for
``send_batch`` new wants, so a steady stream of arrivals is answered with one
wantlist message per batch rather than one per block. Replies
arrive on streams the remote opens: ``receive_data(stream_key, data)`` (``b""``
= that stream's EOF) or, when the driver already decoded a message,
``receive_message(msg)``. ``next_event()`` then yields:

* :class:`BlockReceived` — only for a block whose bytes hash (via the CID
  prefix the peer sent) to a CID we want. Nothing else ever becomes a block.
* :class:`DontHave` / :class:`Have` — presences for CIDs we want.
* :class:`BlockRejected` — a block that is not something we want (bad prefix,
  wrong bytes, unsolicited). After ``max_rejected_blocks`` of these the peer
  is treated as hostile: :class:`~pyipld.errors.RemoteProtocolError`.
* :class:`WantTimedOut` — no answer within ``want_timeout`` seconds after
  ``max_attempts`` sends.

Time only moves through ``handle_timer(now)``; ``get_timer()`` says when to
call it next. A want sent is stamped with the latest ``now``.

States: ``OPEN`` -> ``CLOSED`` (``close()``, or a protocol error, which
raises). In ``CLOSED`` every command raises LocalProtocolError and input is
ignored.

:class:`ServerSession` answers a remote's wantlist from a
:class:`~pyipld.blockstore.BlockSource`: want-block -> block (or DONT_HAVE when
asked ``sendDontHave``), want-have -> HAVE (small blocks are sent whole, as kubo
and Helia do), cancel -> drop, ``full`` -> replace. Blocks are read from the
source only when ``data_to_send()`` builds a message, so memory stays at one
message however long the wantlist.

:class:`WantRouter` spreads wants over several ClientSessions: each CID is
asked from one peer at a time; DONT_HAVE, a time-out or the peer going away
moves it to the next peer that has not refused it; when none is left the CID
fails with :class:`WantFailed`.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Final

from ..blockstore import BlockSource
from ..cid import CID
from ..errors import (
    CIDError,
    DecodeError,
    LocalProtocolError,
    NotFoundError,
    RemoteProtocolError,
)
from .message import (
    MAX_BLOCK_BYTES,
    MAX_MESSAGE_BYTES,
    PROTOCOL_1_2_0,
    BitswapMessage,
    BlockPresence,
    MessageReader,
    PayloadBlock,
    PresenceType,
    WantlistEntry,
    WantType,
    cid_from_prefix,
    decode_message,
    encode_prefix,
    frame_message,
)

__all__ = [
    "BlockReceived",
    "BlockRejected",
    "ClientSession",
    "DontHave",
    "Event",
    "Have",
    "ServerSession",
    "SessionState",
    "WantFailed",
    "WantRouter",
    "WantTimedOut",
]

# Entries per outgoing wantlist message: 256 x ~45 bytes, far below 4 MiB;
# kubo and Helia cap a peer's wantlist at 1024 entries.
_MAX_ENTRIES_PER_MESSAGE: Final = 256
# CIDs we have finished with (received, cancelled): late duplicates of these are
# ignored silently instead of counted as hostile.
_RECENT_DONE: Final = 4096
# kubo (boxo engine) sends the block itself in answer to want-have for blocks
# of at most 1024 bytes (Helia: < 1024).
_SMALL_BLOCK_BYTES: Final = 1024
_INT32_MAX: Final = 2**31 - 1


# -- events ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BlockReceived:
    """A wanted block, verified: ``data`` hashes to ``cid``."""

    cid: bytes
    data: bytes


@dataclass(frozen=True, slots=True)
class DontHave:
    """The peer says it does not have ``cid``."""

    cid: bytes


@dataclass(frozen=True, slots=True)
class Have:
    """The peer says it has ``cid`` (answer to a want-have)."""

    cid: bytes


@dataclass(frozen=True, slots=True)
class BlockRejected:
    """A block that was dropped; ``cid`` is what its bytes hash to, if known."""

    cid: bytes | None
    reason: str


@dataclass(frozen=True, slots=True)
class WantTimedOut:
    """No answer for ``cid`` after ``attempts`` sends."""

    cid: bytes
    attempts: int


@dataclass(frozen=True, slots=True)
class WantFailed:
    """(router) No peer could provide ``cid``; ``reasons`` per peer."""

    cid: bytes
    reasons: tuple[str, ...]


Event = BlockReceived | DontHave | Have | BlockRejected | WantTimedOut | WantFailed


class SessionState(Enum):
    OPEN = "open"
    CLOSED = "closed"


# -- helpers --------------------------------------------------------------------------

def _alt_cid(cid: bytes) -> bytes | None:
    """The other spelling of a dag-pb sha2-256 CID (v0 <-> v1), else None."""
    if len(cid) == 34 and cid[:2] == b"\x12\x20":
        return b"\x01\x70" + cid
    if len(cid) == 36 and cid[:4] == b"\x01\x70\x12\x20":
        return cid[2:]
    return None


def _show(cid: bytes) -> str:
    try:
        return str(CID.from_bytes(cid))
    except (CIDError, DecodeError):
        return cid.hex()


class _StreamReaders:
    """One MessageReader per inbound stream key, with a budget for all of them.

    At most ``max_streams`` streams may hold a partial message at once, and
    the partial messages together at most ``max_partial_bytes``: a peer that
    starts many large messages and never finishes them is a protocol error,
    not memory we keep.
    """

    def __init__(self, max_message_bytes: int, max_streams: int = 64,
                 max_partial_bytes: int | None = None) -> None:
        self._readers: dict[Hashable, MessageReader] = {}
        self._max_message_bytes = max_message_bytes
        self._max_streams = max_streams
        self._max_partial_bytes = max_partial_bytes if max_partial_bytes is not None else 4 * max_message_bytes
        self.buffered = 0  # bytes of partial messages over all streams

    def forget(self, stream: Hashable) -> None:
        """Drop a stream's partial frame (it was reset: nothing more will come)."""
        reader = self._readers.pop(stream, None)
        if reader is not None:
            self.buffered -= reader.buffered

    def feed(self, stream: Hashable, data: bytes | bytearray | memoryview) -> list[bytes | bytearray | memoryview]:
        reader = self._readers.get(stream)
        if not data:
            if reader is not None:
                del self._readers[stream]
                self.buffered -= reader.buffered
                if not reader.at_boundary():
                    raise RemoteProtocolError(
                        f"bitswap stream ended inside a message ({reader.buffered} bytes buffered)")
            return []
        if reader is None:
            if len(self._readers) >= self._max_streams:
                raise RemoteProtocolError(f"more than {self._max_streams} concurrent inbound bitswap streams")
            reader = self._readers[stream] = MessageReader(max_message_bytes=self._max_message_bytes)
        before = reader.buffered
        try:
            bodies = reader.feed_views(data)
        except DecodeError as exc:
            raise RemoteProtocolError(f"bad bitswap frame: {exc}") from exc
        self.buffered += reader.buffered - before
        if self.buffered > self._max_partial_bytes:
            raise RemoteProtocolError(
                f"unfinished bitswap messages hold {self.buffered} bytes > max_partial_bytes={self._max_partial_bytes}")
        if reader.at_boundary():  # nothing held: keep no reader for an idle stream
            del self._readers[stream]
        return bodies


@dataclass(slots=True)
class _Want:
    cid: bytes
    want_type: WantType
    send_dont_have: bool
    priority: int
    sent: bool = False
    deadline: float = 0.0
    attempts: int = 0


# -- client ---------------------------------------------------------------------------

class ClientSession:
    """Our wants towards one peer (see the module docstring).

    Args:
        protocol: the bitswap protocol id negotiated for our outbound streams.
        max_outstanding: wants sent and not yet answered (the window).
        max_queued: wants held locally in total; more is a LocalProtocolError.
        want_timeout: seconds to wait for an answer to a sent want.
        max_attempts: sends of one want before :class:`WantTimedOut`.
        max_rejected_blocks: unwanted or corrupt blocks tolerated from the peer.
        send_batch: while more than half the window is in flight, new wants wait until
            this many are queued, so a stream of arrivals costs one message per batch
            instead of one per block (1: send every want at once).
    """

    def __init__(
        self,
        *,
        protocol: str = PROTOCOL_1_2_0,
        max_outstanding: int = 128,
        max_queued: int = 1 << 16,
        want_timeout: float = 30.0,
        max_attempts: int = 2,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_block_bytes: int = MAX_BLOCK_BYTES,
        max_rejected_blocks: int = 8,
        send_batch: int = 16,
    ) -> None:
        if max_outstanding < 1 or max_attempts < 1 or want_timeout <= 0 or send_batch < 1:
            raise ValueError("max_outstanding, max_attempts, want_timeout and send_batch must be positive")
        self.send_batch = send_batch
        self.protocol = protocol
        self.max_outstanding = max_outstanding
        self.max_queued = max_queued
        self.want_timeout = want_timeout
        self.max_attempts = max_attempts
        self.max_message_bytes = max_message_bytes
        self.max_block_bytes = max_block_bytes
        self.max_rejected_blocks = max_rejected_blocks
        self.state = SessionState.OPEN
        self.rejected_blocks = 0
        self.duplicate_blocks = 0
        self._now = 0.0
        self._wants: dict[bytes, _Want] = {}
        self._queue: deque[bytes] = deque()
        self._cancels: list[bytes] = []
        self._events: deque[Event] = deque()
        self._recent: OrderedDict[bytes, None] = OrderedDict()
        self._readers = _StreamReaders(max_message_bytes)
        self._priority = _INT32_MAX
        self._outstanding = 0

    # -- introspection
    @property
    def outstanding(self) -> int:
        """Wants sent and not answered yet."""
        return self._outstanding

    @property
    def pending(self) -> int:
        """All wants not yet answered (queued or sent)."""
        return len(self._wants)

    def wants(self, cid: bytes) -> bool:
        return cid in self._wants

    @property
    def has_data_to_send(self) -> bool:
        """True when ``data_to_send()`` would return bytes."""
        if self._cancels:
            return True
        if self.state is SessionState.CLOSED or self._outstanding >= self.max_outstanding:
            return False
        # Above half the window, wants leave in batches; at half or below a single want goes
        # at once. Nothing stalls: what is in flight is answered or times out, and then the
        # window is at half.
        needed = 1 if 2 * self._outstanding <= self.max_outstanding else self.send_batch
        wants = self._wants
        unsent = 0
        for cid in self._queue:
            want = wants.get(cid)
            if want is not None and not want.sent:
                unsent += 1
                if unsent >= needed:
                    return True
        return False

    # -- commands
    def want(self, cid: bytes, *, want_type: WantType = WantType.BLOCK, send_dont_have: bool = True) -> None:
        """Queue a want for ``cid`` (binary). Wanting a CID twice is a no-op.

        Raises:
            LocalProtocolError: closed session, identity CID, or more than
                ``max_queued`` wants.
        """
        self._check_open()
        if cid in self._wants:
            return
        parsed = CID.from_bytes(cid)
        if parsed.hash_code == 0:
            raise LocalProtocolError(f"identity CID {parsed} carries its data; never ask a peer for it")
        if want_type is WantType.HAVE and self.protocol != PROTOCOL_1_2_0:
            raise LocalProtocolError(f"want-have needs {PROTOCOL_1_2_0}, peer speaks {self.protocol}")
        if len(self._wants) >= self.max_queued:
            raise LocalProtocolError(f"more than max_queued={self.max_queued} wants")
        self._wants[cid] = _Want(cid, want_type, send_dont_have, self._priority)
        self._priority = max(1, self._priority - 1)  # earlier wants first, like kubo
        self._queue.append(cid)
        self._recent.pop(cid, None)

    def cancel(self, cid: bytes) -> None:
        """Forget a want; tell the peer if it was already sent."""
        self._check_open()
        want = self._wants.pop(cid, None)
        if want is None:
            return
        if want.sent:
            self._outstanding -= 1
            self._cancels.append(cid)
        self._remember(cid)

    def close(self) -> None:
        """Cancel every sent want (drain ``data_to_send()`` once more) and close."""
        if self.state is SessionState.CLOSED:
            return
        for cid in list(self._wants):
            self.cancel(cid)
        self.state = SessionState.CLOSED

    # -- output
    def data_to_send(self) -> bytes:
        """Framed messages for a new outbound bitswap stream (``b""``: nothing to send)."""
        if self.state is SessionState.CLOSED and not self._cancels:
            return b""
        entries: list[WantlistEntry] = [WantlistEntry(cid, 0, cancel=True) for cid in self._cancels]
        self._cancels.clear()
        while self._queue and self._outstanding < self.max_outstanding and self.state is SessionState.OPEN:
            cid = self._queue.popleft()
            want = self._wants.get(cid)
            if want is None or want.sent:
                continue  # cancelled or answered while queued
            want.sent = True
            want.attempts += 1
            want.deadline = self._now + self.want_timeout
            self._outstanding += 1
            entries.append(WantlistEntry(cid, want.priority, False, want.want_type, want.send_dont_have))
        out = []
        for i in range(0, len(entries), _MAX_ENTRIES_PER_MESSAGE):
            msg = BitswapMessage(entries=tuple(entries[i : i + _MAX_ENTRIES_PER_MESSAGE]))
            out.append(frame_message(msg, self.protocol, max_message_bytes=self.max_message_bytes))
        return b"".join(out)

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def events(self) -> Iterator[Event]:
        """Drain all pending events."""
        while self._events:
            yield self._events.popleft()

    # -- input
    def receive_data(self, stream: Hashable, data: bytes | bytearray | memoryview) -> None:
        """Bytes from inbound bitswap stream ``stream``; ``b""`` is its EOF.

        Raises:
            RemoteProtocolError: bad framing, oversized or malformed message,
                too many rejected blocks. The session is then CLOSED.
        """
        if self.state is SessionState.CLOSED:
            return
        try:
            bodies = self._readers.feed(stream, data)
        except RemoteProtocolError:
            self.state = SessionState.CLOSED
            raise
        for body in bodies:
            try:
                msg = decode_message(body, max_block_bytes=self.max_block_bytes)
            except DecodeError as exc:
                self.state = SessionState.CLOSED
                raise RemoteProtocolError(f"bad bitswap message: {exc}") from exc
            self.receive_message(msg)

    def stream_reset(self, stream: Hashable) -> None:
        """Inbound stream ``stream`` was reset: forget its partial message."""
        self._readers.forget(stream)

    def receive_message(self, msg: BitswapMessage) -> None:
        """A decoded message from the peer (its wantlist part is ignored here)."""
        if self.state is SessionState.CLOSED:
            return
        for data in msg.blocks:  # 1.0.0: CIDv0 implied
            self._on_block(b"\x00\x70\x12\x20", data)
        for block in msg.payload:
            self._on_block(block.prefix, block.data)
        for presence in msg.presences:
            self._on_presence(presence)

    def handle_timer(self, now: float) -> None:
        """Advance time; re-send or time out wants whose deadline passed."""
        self._now = now
        if self.state is SessionState.CLOSED:
            return
        for want in list(self._wants.values()):
            if want.sent and want.deadline <= now:
                self._outstanding -= 1
                if want.attempts < self.max_attempts:
                    want.sent = False
                    self._queue.appendleft(want.cid)
                else:
                    del self._wants[want.cid]
                    self._remember(want.cid)
                    self._events.append(WantTimedOut(want.cid, want.attempts))

    def get_timer(self) -> float | None:
        """The earliest want deadline, or None."""
        deadlines = [w.deadline for w in self._wants.values() if w.sent]
        return min(deadlines) if deadlines else None

    # -- internals
    def _check_open(self) -> None:
        if self.state is SessionState.CLOSED:
            raise LocalProtocolError("bitswap session is closed")

    def _remember(self, cid: bytes) -> None:
        self._recent[cid] = None
        if len(self._recent) > _RECENT_DONE:
            self._recent.popitem(last=False)

    def _take(self, cid: bytes) -> tuple[bytes, _Want] | None:
        want = self._wants.get(cid)
        if want is None:
            alt = _alt_cid(cid)
            if alt is not None and alt in self._wants:
                cid, want = alt, self._wants[alt]
        if want is None:
            return None
        del self._wants[cid]
        if want.sent:
            self._outstanding -= 1
        self._remember(cid)
        return cid, want

    def _reject(self, cid: bytes | None, reason: str) -> None:
        self.rejected_blocks += 1
        self._events.append(BlockRejected(cid, reason))
        if self.rejected_blocks > self.max_rejected_blocks:
            self.state = SessionState.CLOSED
            raise RemoteProtocolError(
                f"peer sent {self.rejected_blocks} blocks we did not want or that did not match "
                f"their CID (max_rejected_blocks={self.max_rejected_blocks}); last: {reason}")

    def _on_block(self, prefix: bytes, data: bytes) -> None:
        try:
            cid = cid_from_prefix(prefix, data)
        except (CIDError, DecodeError) as exc:
            self._reject(None, f"unusable block prefix: {exc}")
            return
        taken = self._take(cid)
        if taken is None:
            if cid in self._recent or (_alt_cid(cid) or b"") in self._recent:
                self.duplicate_blocks += 1  # a late answer to something finished
                return
            self._reject(cid, f"block {_show(cid)} ({len(data)} bytes) was not wanted: "
                              "its bytes do not hash to any CID we asked for")
            return
        self._events.append(BlockReceived(taken[0], data))

    def _on_presence(self, presence: BlockPresence) -> None:
        cid = presence.cid
        want = self._wants.get(cid)
        if want is None:
            alt = _alt_cid(cid)
            if alt is None or alt not in self._wants:
                return  # about something we no longer want
            cid, want = alt, self._wants[alt]
        if presence.type is PresenceType.DONT_HAVE:
            self._take(cid)
            self._events.append(DontHave(cid))
        elif want.want_type is WantType.HAVE:
            self._take(cid)
            self._events.append(Have(cid))


# -- server ---------------------------------------------------------------------------

class ServerSession:
    """Answers one peer's wantlist from ``source`` (see the module docstring).

    Nothing the peer asks for can make this session fail or hold more than its
    limits: a reply that would not fit in ``max_message_bytes`` is split, an
    answer that cannot fit in any message is dropped (counted in
    :attr:`dropped_answers`), and a source that raises for one CID (a name too
    long for the file system, an I/O error) answers DONT_HAVE for that CID
    only (counted in :attr:`lookup_errors`).

    Args:
        source: where blocks come from (``has``/``get``).
        max_pending: wants remembered at once; extra entries are dropped
            (kubo keeps at most 1024 per peer).
        max_message_bytes: hard limit of one reply (go-bitswap MessageSizeMax).
        target_message_bytes: a message stops growing past this size
            (a block is never split; kubo aims at ~16 KiB-1 MiB batches).
        max_streams: inbound streams that may hold a partial message at once.
        max_partial_bytes: bytes of unfinished inbound messages over all streams.
    """

    def __init__(
        self,
        source: BlockSource,
        *,
        protocol: str = PROTOCOL_1_2_0,
        max_pending: int = 4096,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        target_message_bytes: int = 1 << 20,
        max_block_bytes: int = MAX_BLOCK_BYTES,
        max_streams: int = 16,
        max_partial_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.source = source
        self.protocol = protocol
        self.max_pending = max_pending
        self.max_message_bytes = max_message_bytes
        self.target_message_bytes = min(target_message_bytes, max_message_bytes)
        self.max_block_bytes = max_block_bytes
        self.blocks_sent = 0
        self.bytes_sent = 0
        self.dropped_wants = 0
        self.dropped_answers = 0
        self.lookup_errors = 0
        self.last_lookup_error: BaseException | None = None
        self._pending: OrderedDict[bytes, WantlistEntry] = OrderedDict()
        self._pending_bytes = 0  # CID bytes held in _pending
        self._carry: tuple[bytes, BlockPresence | PayloadBlock, int] | None = None  # did not fit last time
        self._readers = _StreamReaders(max_message_bytes, max_streams, max_partial_bytes)

    @property
    def has_pending(self) -> bool:
        return bool(self._pending) or self._carry is not None

    @property
    def buffered_bytes(self) -> int:
        """Bytes held for this peer: partial messages, remembered wants, one carried answer."""
        carried = self._carry[2] if self._carry is not None else 0
        return self._readers.buffered + self._pending_bytes + 64 * len(self._pending) + carried

    def receive_data(self, stream: Hashable, data: bytes | bytearray | memoryview) -> None:
        """Bytes of an inbound bitswap stream (``b""`` = EOF).

        Raises:
            RemoteProtocolError: bad framing or message (an over-long CID
                included), or more partial data than the limits allow.
        """
        for body in self._readers.feed(stream, data):
            try:
                msg = decode_message(body, max_block_bytes=self.max_block_bytes)
            except DecodeError as exc:
                raise RemoteProtocolError(f"bad bitswap message: {exc}") from exc
            self.receive_message(msg)

    def stream_reset(self, stream: Hashable) -> None:
        """Inbound stream ``stream`` was reset: forget its partial message."""
        self._readers.forget(stream)

    def receive_message(self, msg: BitswapMessage) -> None:
        """Apply a peer's wantlist (blocks and presences in it are ignored)."""
        if msg.full:
            self._pending.clear()
            self._pending_bytes = 0
        for entry in msg.entries:
            if entry.cancel:
                if self._pending.pop(entry.cid, None) is not None:
                    self._pending_bytes -= len(entry.cid)
                continue
            if entry.cid in self._pending:
                self._pending[entry.cid] = entry
                continue
            if len(self._pending) >= self.max_pending:
                self.dropped_wants += 1
                continue
            self._pending[entry.cid] = entry
            self._pending_bytes += len(entry.cid)

    def _next_answer(self, new_style: bool) -> tuple[bytes, BlockPresence | PayloadBlock, int] | None:
        """Pop the oldest want and build its answer (None: nothing to say about it)."""
        cid, entry = self._pending.popitem(last=False)
        self._pending_bytes -= len(cid)
        data = self._lookup(cid)
        answer: BlockPresence | PayloadBlock
        if data is None:
            if not (entry.send_dont_have and new_style):
                return None
            answer = BlockPresence(cid, PresenceType.DONT_HAVE)
        elif entry.want_type is WantType.HAVE and len(data) > _SMALL_BLOCK_BYTES and new_style:
            answer = BlockPresence(cid, PresenceType.HAVE)
        else:
            answer = PayloadBlock(encode_prefix(cid), data)
            if _answer_bytes(answer) > self.max_message_bytes:  # cannot be framed: say so instead
                self.dropped_answers += 1
                if not (entry.send_dont_have and new_style):
                    return None
                answer = BlockPresence(cid, PresenceType.DONT_HAVE)
        return cid, answer, _answer_bytes(answer)

    def data_to_send(self, protocol: str | None = None) -> bytes:
        """One framed message answering pending wants (``b""`` when none).

        The message never exceeds ``max_message_bytes`` (an answer that does
        not fit into the current message waits for the next one). Call
        repeatedly while :attr:`has_pending`.
        """
        proto = protocol or self.protocol
        new_style = proto == PROTOCOL_1_2_0
        payload: list[PayloadBlock] = []
        presences: list[BlockPresence] = []
        size = 0
        while self._carry is not None or self._pending:
            item, self._carry = (self._carry, None) if self._carry is not None else (None, None)
            if item is None:
                item = self._next_answer(new_style)
                if item is None:
                    continue
            _, answer, cost = item
            if cost > self.max_message_bytes:
                self.dropped_answers += 1  # cannot be framed at all
                continue
            if size and (size + cost > self.target_message_bytes or size + cost > self.max_message_bytes):
                self._carry = item  # first of the next message
                break
            size += cost
            if isinstance(answer, PayloadBlock):
                payload.append(answer)
                self.blocks_sent += 1
                self.bytes_sent += len(answer.data)
            else:
                presences.append(answer)
            if size >= self.target_message_bytes:
                break
        if not payload and not presences:
            return b""
        msg = BitswapMessage(payload=tuple(payload), presences=tuple(presences))
        return frame_message(msg, proto, max_message_bytes=self.max_message_bytes)

    def _lookup(self, cid: bytes) -> bytes | None:
        try:
            if not self.source.has(cid):
                return None
            data = self.source.get(cid)
        except (NotFoundError, CIDError):
            return None
        except Exception as exc:  # noqa: BLE001 - one bad want (ENAMETOOLONG, EIO...) must not stop the others
            self.lookup_errors += 1
            self.last_lookup_error = exc
            return None
        return data


def _pb_len(n: int) -> int:
    """Bytes of a protobuf varint."""
    return max(1, (n.bit_length() + 6) // 7)


def _field_bytes(body: int) -> int:
    """Bytes of a length-delimited field with a one-byte key and a ``body``-byte value."""
    return 1 + _pb_len(body) + body


def _answer_bytes(answer: BlockPresence | PayloadBlock) -> int:
    """Exact encoded size of one answer inside a Message (as encode_message writes it)."""
    if isinstance(answer, PayloadBlock):
        return _field_bytes(_field_bytes(len(answer.prefix)) + _field_bytes(len(answer.data)))
    return _field_bytes(_field_bytes(len(answer.cid)) + (2 if answer.type else 0))


# -- multi-peer router ----------------------------------------------------------------

class WantRouter:
    """Ask each wanted CID from one peer at a time, moving on after a refusal.

    Peers are keys of your choice mapped to :class:`ClientSession` objects.
    Feed every session event to :meth:`on_event`; it returns the events the
    caller cares about: :class:`BlockReceived` and :class:`WantFailed`.
    """

    def __init__(self) -> None:
        self._sessions: dict[Hashable, ClientSession] = {}
        self._assigned: dict[bytes, Hashable] = {}
        self._refused: dict[bytes, list[str]] = {}
        self._tried: dict[bytes, set[Hashable]] = {}
        self._waiting: deque[bytes] = deque()  # wanted, no peer yet

    @property
    def peers(self) -> list[Hashable]:
        return list(self._sessions)

    def session(self, peer: Hashable) -> ClientSession:
        return self._sessions[peer]

    @property
    def pending(self) -> int:
        return len(self._tried)

    def add_peer(self, peer: Hashable, session: ClientSession) -> list[Event]:
        """Start using ``peer``; wants that were waiting for a peer go to it."""
        self._sessions[peer] = session
        waiting, self._waiting = self._waiting, deque()
        out: list[Event] = []
        for cid in waiting:
            out.extend(self._assign(cid))
        return out

    def remove_peer(self, peer: Hashable, reason: str) -> list[Event]:
        """``peer`` went away: move its wants elsewhere (or fail them)."""
        session = self._sessions.pop(peer, None)
        if session is None:
            return []
        out: list[Event] = []
        for cid, owner in list(self._assigned.items()):
            if owner == peer:
                del self._assigned[cid]
                self._refused[cid].append(f"{peer}: {reason}")
                out.extend(self._assign(cid))
        return out

    def want(self, cid: bytes) -> list[Event]:
        if cid in self._tried:
            return []
        self._tried[cid] = set()
        self._refused[cid] = []
        return self._assign(cid)

    def cancel(self, cid: bytes) -> None:
        owner = self._assigned.pop(cid, None)
        if owner is not None and owner in self._sessions:
            self._sessions[owner].cancel(cid)
        self._tried.pop(cid, None)
        self._refused.pop(cid, None)

    def on_event(self, peer: Hashable, event: Event) -> list[Event]:
        """Digest one event from ``peer``'s session."""
        if isinstance(event, BlockReceived):
            if self._assigned.get(event.cid) == peer or event.cid in self._tried:
                self._finish(event.cid)
                return [event]
            return []
        if isinstance(event, (DontHave, WantTimedOut)):
            cid = event.cid
            if self._assigned.get(cid) != peer:
                return []
            del self._assigned[cid]
            what = "DONT_HAVE" if isinstance(event, DontHave) else f"no answer after {event.attempts} tries"
            self._refused[cid].append(f"{peer}: {what}")
            return self._assign(cid)
        return [event] if isinstance(event, BlockRejected) else []

    def _finish(self, cid: bytes) -> None:
        owner = self._assigned.pop(cid, None)
        self._tried.pop(cid, None)
        self._refused.pop(cid, None)
        if owner is not None and owner in self._sessions:
            session = self._sessions[owner]
            if session.wants(cid) and session.state is SessionState.OPEN:
                session.cancel(cid)

    def _assign(self, cid: bytes) -> list[Event]:
        tried = self._tried[cid]
        candidates = [p for p in self._sessions if p not in tried
                      and self._sessions[p].state is SessionState.OPEN]
        if not candidates:
            if not self._sessions and not self._refused[cid]:
                self._waiting.append(cid)
                return []
            reasons = tuple(self._refused[cid]) or ("no connected peer",)
            self._tried.pop(cid, None)
            self._refused.pop(cid, None)
            return [WantFailed(cid, reasons)]
        peer = min(candidates, key=lambda p: self._sessions[p].pending)
        tried.add(peer)
        self._assigned[cid] = peer
        self._sessions[peer].want(cid)
        return []
