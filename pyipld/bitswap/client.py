"""Bitswap client (trio, thin): fetch blocks, whole DAGs and UnixFS files from peers.

All protocol decisions live in :mod:`pyipld.bitswap.protocol` (one
:class:`~pyipld.bitswap.protocol.ClientSession` per peer, a
:class:`~pyipld.bitswap.protocol.WantRouter` over them); this module moves
bytes between those machines and :mod:`pyipld.libp2p.driver` streams.

Usage::

    async with BitswapClient.connect(["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…"]) as client:
        data = await client.get_block(cid)
        stats = await client.fetch_dag(root, MemoryBlockstore())
        async for chunk in client.iter_file(root):
            ...

    fetch_dag_sync(root, peers, sink)      # same, for code that is not async

Every block handed out or put into a sink was verified by the session: its
bytes hash to the CID asked for. Everything waits with a bound: wants time out
per peer (``want_timeout`` x ``max_attempts``), and a fetch with no progress for
``idle_timeout`` seconds raises :class:`~pyipld.errors.PeerTimeoutError`.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from ..blockstore import BlockSink, BlockSource
from ..cid import CID, DAG_CBOR, DAG_PB
from ..errors import (
    DecodeError,
    IntegrityError,
    LocalProtocolError,
    NotFoundError,
    PeerTimeoutError,
    ProtocolError,
    PyipldError,
    RemoteProtocolError,
)
from ..libp2p.driver import Connection, Host, Stream, StreamResetError
from ..libp2p.multiaddr import Multiaddr
from ..links import iter_links
from ..unixfs.reader import decode_file_node
from .message import MAX_BLOCK_BYTES, PROTOCOLS
from .protocol import (
    BlockReceived,
    BlockRejected,
    ClientSession,
    Event,
    WantFailed,
    WantRouter,
)

__all__ = [
    "BitswapClient",
    "FetchStats",
    "block_links",
    "fetch_block_sync",
    "fetch_dag_sync",
    "fetch_file_sync",
]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
_Result = tuple[bytes, bytes | None, Exception | None]
Dialer = Callable[[Multiaddr], Awaitable[trio.abc.Stream]]


@dataclass(slots=True)
class FetchStats:
    """What a fetch did."""

    blocks: int = 0
    bytes: int = 0
    seconds: float = 0.0
    peers: list[str] = field(default_factory=list)


def block_links(cid: bytes, data: bytes) -> list[bytes]:
    """Binary CIDs a block links to, in order (dag-pb, dag-cbor, dag-json; raw has none).

    The same walk ``car export`` uses (:func:`pyipld.links.iter_links`).

    Raises:
        DecodeError: the block does not decode, or its codec is unknown.
    """
    return list(iter_links(cid, data))


def _identity_data(cid: bytes) -> bytes | None:
    parsed = CID.from_bytes(cid)
    return parsed.digest if parsed.hash_code == 0 else None


def _want_failed_error(event: WantFailed, rejected: int) -> PyipldError:
    text = f"block {CID.from_bytes(event.cid)} not fetched: " + "; ".join(event.reasons)
    if all(r.endswith("DONT_HAVE") for r in event.reasons):
        return NotFoundError(text)
    if rejected:
        return IntegrityError(f"{text}; {rejected} received block(s) were rejected because their "
                              "bytes did not match any CID we asked for")
    if any("no answer" in r or "timed out" in r or "within" in r for r in event.reasons):
        return PeerTimeoutError(text)
    return RemoteProtocolError(text)


@dataclass(eq=False, slots=True)
class _Peer:
    key: str
    conn: Connection
    session: ClientSession
    kick: trio.Event = field(default_factory=trio.Event)
    negotiated: bool = False
    error: BaseException | None = None
    want_stream: Stream | None = None  # our outbound stream for wantlist messages
    want_sent_at: float = 0.0


class BitswapClient:
    """Fetches blocks over bitswap from a set of peers (see the module docstring).

    Args:
        host: the libp2p host (a fresh identity when None).
        max_outstanding: window of sent, unanswered wants per peer.
        window: blocks in flight per fetch (DAG walk / file stream).
        want_timeout: seconds before a want to one peer is re-sent, then given up.
        max_attempts: sends per want and peer.
        idle_timeout: seconds a fetch may go without receiving anything.
        max_block_bytes: larger blocks are refused.
        dial: ``async (multiaddr) -> trio.abc.Stream`` replacing TCP (tests,
            custom transports); the stream is then secured and multiplexed.
        want_stream_idle: seconds after which our wantlist stream to a peer is replaced
            by a new one rather than written again (see :meth:`_send_wants`).
    """

    def __init__(
        self,
        host: Host | None = None,
        *,
        max_outstanding: int = 128,
        window: int = 128,
        want_timeout: float = 20.0,
        max_attempts: int = 2,
        idle_timeout: float = 60.0,
        max_block_bytes: int = MAX_BLOCK_BYTES,
        max_rejected_blocks: int = 8,
        dial: Dialer | None = None,
        want_stream_idle: float = 2.0,
    ) -> None:
        self.host = host or Host()
        self._dial = dial
        self.max_outstanding = max_outstanding
        self.window = window
        self.want_timeout = want_timeout
        self.max_attempts = max_attempts
        self.idle_timeout = idle_timeout
        self.max_block_bytes = max_block_bytes
        self.max_rejected_blocks = max_rejected_blocks
        self.want_stream_idle = want_stream_idle
        self.rejected_blocks = 0
        self._router = WantRouter()
        self._by_conn: dict[Connection, _Peer] = {}
        self._listeners: dict[bytes, list[trio.MemorySendChannel[_Result]]] = {}
        self._failures: dict[str, str] = {}
        self._dialing = 0
        self._changed = trio.Event()
        self._closing = False

    # -- set-up ---------------------------------------------------------------------------
    @classmethod
    @asynccontextmanager
    async def connect(
        cls, peers: Sequence[str | Multiaddr], *, host: Host | None = None, **options: Any
    ) -> AsyncIterator[BitswapClient]:
        """Dial ``peers`` (multiaddrs with ``/p2p/``) and yield a ready client.

        Returns once one peer is connected; the others join as they connect.

        Raises:
            ProtocolError / OSError: no peer could be connected (the reasons of all).
        """
        if not peers:
            raise LocalProtocolError("no peer given")
        client = cls(host, **options)
        for proto in PROTOCOLS:
            client.host.set_stream_receiver(proto, client)
        try:
            async with trio.open_nursery() as nursery:
                for addr in peers:
                    maddr = Multiaddr.parse(addr) if isinstance(addr, str) else addr
                    client._dialing += 1
                    nursery.start_soon(client._run_peer, maddr)
                while not client._by_conn and client._dialing:
                    await client._wait_changed()
                if not client._by_conn:
                    raise client._no_peer_error()
                try:
                    yield client
                finally:
                    client._closing = True
                    for peer in list(client._by_conn.values()):
                        peer.session.close()
                        peer.kick.set()
                    with trio.move_on_after(2):  # let the final cancels go out
                        while client._by_conn:
                            await client._wait_changed()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            for proto in PROTOCOLS:
                client.host.remove_stream_receiver(proto)

    @property
    def peers(self) -> list[str]:
        """Peer ids currently connected."""
        return [p.key for p in self._by_conn.values()]

    def _no_peer_error(self) -> ProtocolError:
        reasons = "; ".join(f"{k}: {v}" for k, v in self._failures.items()) or "none connected"
        return ProtocolError(f"could not connect to any peer: {reasons}")

    async def _wait_changed(self) -> None:
        await self._changed.wait()

    def _signal(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _run_peer(self, addr: Multiaddr) -> None:
        key = str(addr.peer_id) if addr.peer_id else str(addr)
        reason = "closed"
        try:
            if self._dial is None:
                manager = self.host.connect(addr)
            else:
                transport = await self._dial(addr)
                manager = self.host.upgrade(transport, initiator=True, expected_peer=addr.peer_id,
                                            remote_addr=addr)
            async with manager as conn:
                key = str(conn.remote_peer)
                session = ClientSession(
                    max_outstanding=self.max_outstanding, want_timeout=self.want_timeout,
                    max_attempts=self.max_attempts, max_block_bytes=self.max_block_bytes,
                    max_rejected_blocks=self.max_rejected_blocks,
                )
                peer = _Peer(key, conn, session)
                self._by_conn[conn] = peer
                self._dialing -= 1
                self._deliver(self._router.add_peer(key, session))
                self._signal()
                try:
                    await self._peer_loop(peer)
                    if peer.error is not None:
                        reason = str(peer.error)
                finally:
                    del self._by_conn[conn]
                    self._dialing += 1  # balanced below
        except (ProtocolError, DecodeError, OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            reason = f"{type(exc).__name__}: {exc}"  # that peer is gone; the others carry on
            log.debug("peer %s: %s", key, reason)
        self._dialing -= 1
        if not self._closing:
            self._failures[key] = reason
        self._deliver(self._router.remove_peer(key, reason))
        self._kick_all()
        if not self._by_conn and not self._dialing:
            self._fail_everything()
        self._signal()

    async def _peer_loop(self, peer: _Peer) -> None:
        session, conn = peer.session, peer.conn
        try:
            while not conn.closed and peer.error is None:
                session.handle_timer(trio.current_time())
                self._drain(peer)
                if session.has_data_to_send:
                    await self._send_wants(peer)
                    continue
                if self._closing:
                    return
                peer.kick = trio.Event()
                deadline = session.get_timer()
                now = trio.current_time()
                with trio.move_on_at(min(deadline, now + 1.0) if deadline is not None else now + 1.0):
                    await peer.kick.wait()
        finally:
            if peer.want_stream is not None:
                with trio.CancelScope(shield=True):
                    await peer.want_stream.aclose()  # FIN
                peer.want_stream = None

    async def _send_wants(self, peer: _Peer) -> None:
        """Write the session's pending wantlist messages on the peer's want stream.

        Messages follow each other on one outbound stream (kubo and Helia read any number
        per stream; replies come on streams the peer opens). The stream is replaced when
        it is broken, and when it has been idle for ``want_stream_idle`` seconds: Helia
        resets an inbound bitswap stream after 10 s without a message, and a want written
        just as that reset crosses it would be lost until ``want_timeout``.
        """
        session, conn = peer.session, peer.conn
        now = trio.current_time()
        stream = peer.want_stream
        if stream is not None and (not stream.writable() or now - peer.want_sent_at > self.want_stream_idle):
            peer.want_stream = None
            await stream.aclose()
            stream = None
        fresh = stream is None
        if stream is None:
            stream = await self._open_want_stream(peer)
        data = session.data_to_send()
        try:
            await stream.send_all(data)
        except StreamResetError:
            peer.want_stream = None
            if fresh or conn.closed:
                raise
            # the peer dropped the stream as we wrote: once more on a new one
            stream = await self._open_want_stream(peer)
            await stream.send_all(data)
        peer.want_sent_at = trio.current_time()

    async def _open_want_stream(self, peer: _Peer) -> Stream:
        conn, session = peer.conn, peer.session
        if peer.negotiated:
            stream = await conn.open_stream(session.protocol, lazy=True)
        else:
            stream = await conn.open_stream(PROTOCOLS)
            assert stream.protocol is not None
            session.protocol = stream.protocol
            peer.negotiated = True
        peer.want_stream = stream
        return stream

    # -- inbound bitswap streams: the peer's replies (and wantlists, ignored) ------------------
    # A StreamReceiver (libp2p.driver): kubo opens a stream per reply message, i.e. per
    # block, and these bytes are handed over in the connection's reader, without a task.
    def data_received(self, stream: Stream, data: bytes) -> None:
        self._feed(stream, data)

    def eof_received(self, stream: Stream) -> None:
        self._feed(stream, b"")

    def stream_reset(self, stream: Stream) -> None:
        peer = self._by_conn.get(stream.connection)
        if peer is not None:
            peer.session.stream_reset(stream.stream_id)

    def _feed(self, stream: Stream, data: bytes) -> None:
        peer = self._by_conn.get(stream.connection)
        if peer is None or peer.error is not None:
            return
        try:
            peer.session.receive_data(stream.stream_id, data)
        except RemoteProtocolError as exc:
            peer.error = exc  # the peer loop ends, and with it the connection
            peer.kick.set()
        self._drain(peer)

    # -- event plumbing -------------------------------------------------------------------
    def _drain(self, peer: _Peer) -> None:
        delivered = False
        for event in peer.session.events():
            if isinstance(event, BlockRejected):
                self.rejected_blocks += 1
                log.warning("peer %s: rejected block: %s", peer.key, event.reason)
            self._deliver(self._router.on_event(peer.key, event))
            delivered = True
        if delivered:
            self._kick_all()

    def _deliver(self, events: Iterable[Event]) -> None:
        for event in events:
            if isinstance(event, BlockReceived):
                self._send(event.cid, event.data, None)
            elif isinstance(event, WantFailed):
                self._send(event.cid, None, _want_failed_error(event, self.rejected_blocks))

    def _send(self, cid: bytes, data: bytes | None, error: Exception | None) -> None:
        for channel in self._listeners.pop(cid, []):
            try:
                channel.send_nowait((cid, data, error))
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    def _kick_all(self) -> None:
        for peer in self._by_conn.values():
            if peer.session.has_data_to_send:
                peer.kick.set()

    def _fail_everything(self) -> None:
        error = self._no_peer_error()
        for cid in list(self._listeners):
            self._send(cid, None, error)

    # -- requests -------------------------------------------------------------------------
    def _request(self, cid: bytes, channel: trio.MemorySendChannel[_Result]) -> None:
        inline = _identity_data(cid)
        if inline is not None:
            channel.send_nowait((cid, inline, None))
            return
        first = cid not in self._listeners
        self._listeners.setdefault(cid, []).append(channel)
        if not self._by_conn and not self._dialing:
            self._send(cid, None, self._no_peer_error())
            return
        if first:
            self._deliver(self._router.want(cid))
            self._kick_all()

    def _unrequest(self, cid: bytes, channel: trio.MemorySendChannel[Any]) -> None:
        listeners = self._listeners.get(cid)
        if listeners and channel in listeners:
            listeners.remove(channel)
            if not listeners:
                del self._listeners[cid]
                self._router.cancel(cid)
                self._kick_all()

    async def _receive(self, recv: trio.MemoryReceiveChannel[_Result],
                       waiting: int) -> tuple[bytes, bytes]:
        try:
            # a block already delivered (a read often completes several) is taken without a
            # trip through the scheduler or a timeout scope; cancellation is still checked
            await trio.lowlevel.checkpoint_if_cancelled()
            cid, data, error = recv.receive_nowait()
        except trio.WouldBlock:
            pass
        else:
            if error is not None:
                raise error
            assert data is not None
            return cid, data
        try:
            with trio.fail_after(self.idle_timeout):
                cid, data, error = await recv.receive()
        except trio.TooSlowError:
            raise PeerTimeoutError(
                f"no block from any peer within idle_timeout={self.idle_timeout} s "
                f"({waiting} blocks outstanding; peers: {', '.join(self.peers) or 'none'})") from None
        if error is not None:
            raise error
        assert data is not None
        return cid, data

    async def get_block(self, cid: bytes | str | CID) -> bytes:
        """Fetch one block (verified against ``cid``)."""
        raw = CID.parse(cid).bytes
        send, recv = trio.open_memory_channel[_Result](1)
        self._request(raw, send)
        try:
            return (await self._receive(recv, 1))[1]
        finally:
            self._unrequest(raw, send)

    async def fetch_dag(
        self,
        root: bytes | str | CID,
        sink: BlockSink,
        *,
        max_blocks: int = 1 << 26,
        progress: Progress | None = None,
    ) -> FetchStats:
        """Fetch every block reachable from ``root`` into ``sink``, breadth first.

        At most ``window`` blocks are in flight. Identity-hash links are
        decoded locally and not stored. Links of unknown codecs are not followed.

        Raises:
            NotFoundError: every peer said DONT_HAVE for some block.
            PeerTimeoutError: nothing arrived for ``idle_timeout`` seconds.
            ProtocolError: no usable peer left.
            LimitExceededError: more than ``max_blocks`` blocks.
        """
        from ..errors import LimitExceededError

        start = trio.current_time()
        stats = FetchStats(peers=self.peers)
        queue: deque[bytes] = deque([CID.parse(root).bytes])
        seen: set[bytes] = {queue[0]}
        in_flight: set[bytes] = set()
        send, recv = trio.open_memory_channel[_Result](math.inf)
        try:
            while queue or in_flight:
                while queue and len(in_flight) < self.window:
                    cid = queue.popleft()
                    if _identity_data(cid) is not None:
                        continue  # inline data: nothing to fetch or store
                    in_flight.add(cid)
                    self._request(cid, send)
                cid, data = await self._receive(recv, len(in_flight))
                in_flight.discard(cid)
                sink.put(cid, data)
                stats.blocks += 1
                stats.bytes += len(data)
                if progress is not None:
                    progress(stats.blocks, stats.bytes)
                try:
                    links = block_links(cid, data)
                except DecodeError as exc:
                    if CID.from_bytes(cid).codec in (DAG_PB, DAG_CBOR):
                        raise
                    log.info("not following links of %s: %s", CID.from_bytes(cid), exc)
                    links = []
                for link in links:
                    if link not in seen:
                        if len(seen) >= max_blocks:
                            raise LimitExceededError(f"DAG has more than max_blocks={max_blocks} blocks")
                        seen.add(link)
                        queue.append(link)
        finally:
            for cid in in_flight:
                self._unrequest(cid, send)
        stats.seconds = trio.current_time() - start
        return stats

    async def iter_file(
        self, root: bytes | str | CID, *, sink: BlockSink | None = None, progress: Progress | None = None,
        have: BlockSource | None = None,
    ) -> AsyncIterator[bytes]:
        """Yield a UnixFS file's bytes in order while its blocks are fetched.

        Blocks ahead of the read position are prefetched (up to ``window``);
        an internal node is expanded as soon as it arrives, wherever it is.
        Each block is also put into ``sink`` when one is given. Blocks ``have`` holds
        (already verified, e.g. the root fetched to resolve a path) are not asked for
        again: a peer that just sent a block may not answer a second want for it (Helia).

        Raises:
            UnixFSError: the root is not a file (a directory, say).
        """
        # items[head:]: the rest of the file as an ordered list of parts: ("cid", cid) for
        # blocks, ("data", bytes) for bytes an inner node carries itself. Each block is
        # decoded once, when it arrives: ``ready`` maps it to its parts (an inner node) or
        # its bytes (a leaf). Arrived inner nodes wait in ``inner`` until they are expanded
        # in place, so an arrival costs one pass over the window, not one decode per item.
        items: list[tuple[str, bytes]] = [("cid", CID.parse(root).bytes)]
        head = 0
        ready: dict[bytes, list[tuple[str, bytes]] | bytes] = {}
        inner: set[bytes] = set()
        refs: Counter[bytes] = Counter({items[0][1]: 1})
        requested: set[bytes] = set()
        n_blocks = n_bytes = 0
        send, recv = trio.open_memory_channel[_Result](math.inf)

        def arrived(cid: bytes, block: bytes) -> None:
            parsed = ready[cid] = _file_parts(cid, block)
            if isinstance(parsed, list):
                inner.add(cid)

        def release(cid: bytes) -> None:
            refs[cid] -= 1
            if refs[cid] <= 0:
                del ready[cid], refs[cid]
                inner.discard(cid)

        def expand(idx: int, cid: bytes) -> None:
            parts = ready[cid]
            assert isinstance(parts, list)
            release(cid)
            for k, v in parts:
                if k == "cid":
                    refs[v] += 1
            items[idx : idx + 1] = parts

        def expand_in_window() -> bool:
            """Expand one arrived inner node inside the window (False: none there)."""
            end = min(len(items), head + self.window)
            for cid in inner:
                try:
                    idx = items.index(("cid", cid), head, end)
                except ValueError:
                    continue  # further on: expanded when the window reaches it
                expand(idx, cid)
                return True
            return False

        try:
            while True:
                # 1. emit the head while it is here; expand arrived inner nodes in the window
                while True:
                    while head < len(items):
                        kind, value = items[head]
                        if kind == "data":
                            head += 1
                            if value:
                                yield value
                            continue
                        got = ready.get(value)
                        if got is None:
                            break
                        if isinstance(got, list):
                            expand(head, value)
                            continue
                        head += 1
                        release(value)
                        if got:
                            yield got
                    if head >= len(items) or not inner or not expand_in_window():
                        break
                if head >= len(items):
                    break
                if head > 4096 and 2 * head > len(items):
                    del items[:head]
                    head = 0
                # 2. request what the window covers
                inline_ready = False
                for kind, value in items[head : head + self.window]:
                    if kind == "cid" and value not in ready and value not in requested:
                        inline = _identity_data(value)
                        if inline is None and have is not None and have.has(value):
                            inline = have.get(value)
                        if inline is not None:
                            arrived(value, inline)
                            inline_ready = True
                            continue
                        requested.add(value)
                        self._request(value, send)
                if inline_ready:
                    continue
                cid, data = await self._receive(recv, len(requested))
                requested.discard(cid)
                arrived(cid, data)
                n_blocks += 1
                n_bytes += len(data)
                if sink is not None:
                    sink.put(cid, data)
                if progress is not None:
                    progress(n_blocks, n_bytes)
        finally:
            for cid in requested:
                self._unrequest(cid, send)


def _file_parts(cid: bytes, data: bytes) -> list[tuple[str, bytes]] | bytes:
    """An inner UnixFS file node's own bytes then its children; a leaf's bytes."""
    node = decode_file_node(cid, data)
    if not node.links:
        return node.data
    parts: list[tuple[str, bytes]] = [("data", node.data)] if node.data else []
    parts.extend(("cid", link) for link in node.links)
    return parts


# -- synchronous entry points -------------------------------------------------------------

def fetch_block_sync(cid: bytes | str | CID, peers: Sequence[str | Multiaddr], **options: Any) -> bytes:
    """Fetch one block from ``peers`` (blocking; runs its own trio loop)."""

    async def run() -> bytes:
        async with BitswapClient.connect(peers, **options) as client:
            return await client.get_block(cid)

    return trio.run(run)


def fetch_dag_sync(
    root: bytes | str | CID,
    peers: Sequence[str | Multiaddr],
    sink: BlockSink,
    *,
    progress: Progress | None = None,
    **options: Any,
) -> FetchStats:
    """Fetch a whole DAG into ``sink`` (blocking; runs its own trio loop)."""

    async def run() -> FetchStats:
        async with BitswapClient.connect(peers, **options) as client:
            return await client.fetch_dag(root, sink, progress=progress)

    return trio.run(run)


def fetch_file_sync(
    root: bytes | str | CID,
    peers: Sequence[str | Multiaddr],
    write: Callable[[bytes], object],
    *,
    sink: BlockSink | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> int:
    """Stream a UnixFS file's bytes to ``write`` in order; returns the byte count."""

    async def run() -> int:
        total = 0
        async with BitswapClient.connect(peers, **options) as client:
            async for chunk in client.iter_file(root, sink=sink, progress=progress):
                write(chunk)
                total += len(chunk)
        return total

    return trio.run(run)

