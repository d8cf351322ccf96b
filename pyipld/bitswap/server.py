"""Bitswap server (trio, thin): answer peers' wantlists from a BlockSource.

Each connection gets a :class:`~pyipld.bitswap.protocol.ServerSession`.
Wantlists arrive on streams the peer opens (any of 1.2.0 / 1.1.0 / 1.0.0 /
legacy); answers go out on a stream we open, negotiated newest-first, as kubo
and Helia expect. Registering the bitswap handlers makes identify advertise
``/ipfs/bitswap/1.2.0``, which Helia needs before it asks us for anything.

A peer can never stop the server: everything that goes wrong for one
connection (a malformed or over-long message, a reply the peer does not read,
a block store error for one CID, a bug) ends that connection only. Limits per
connection (wants, partial messages, streams) are the ServerSession's and the
Host's; see docs/threat-model.md.

Usage::

    server = BitswapServer(DirectoryBlockstore("blocks"))
    async with trio.open_nursery() as nursery:
        addrs = await nursery.start(server.serve, "/ip4/127.0.0.1/tcp/4001")
        print(addrs[0])   # /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import trio

from ..blockstore import BlockSource
from ..errors import ProtocolError, RemoteProtocolError
from ..libp2p.driver import Connection, Host, Stream
from ..libp2p.multiaddr import Multiaddr
from .message import MAX_BLOCK_BYTES, MAX_MESSAGE_BYTES, PROTOCOLS
from .protocol import ServerSession

__all__ = ["BitswapServer"]

log = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class _PeerState:
    conn: Connection
    session: ServerSession
    kick: trio.Event = field(default_factory=trio.Event)
    protocol: str | None = None


class BitswapServer:
    """Serves ``source`` to every peer that connects (or that we are connected to).

    Args:
        source: blocks to serve (``has``/``get``).
        host: the libp2p host (a fresh identity when None).
        max_pending: wants remembered per peer.
        target_message_bytes: size a reply message grows to before it is sent.
        max_streams: inbound bitswap streams of one peer holding a partial message at once.
        max_partial_bytes: bytes of unfinished messages one peer may have us hold.
    """

    def __init__(
        self,
        source: BlockSource,
        host: Host | None = None,
        *,
        max_pending: int = 4096,
        target_message_bytes: int = 1 << 20,
        max_block_bytes: int = MAX_BLOCK_BYTES,
        max_streams: int = 16,
        max_partial_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.source = source
        self.max_streams = max_streams
        self.max_partial_bytes = max_partial_bytes
        self.connections_failed = 0  # connections ended by an error in their own tasks
        self.host = host or Host()
        self.max_pending = max_pending
        self.target_message_bytes = target_message_bytes
        self.max_block_bytes = max_block_bytes
        self.peers_served = 0
        self._done_blocks = 0
        self._done_bytes = 0
        self._states: dict[Connection, _PeerState] = {}
        self._nursery: trio.Nursery | None = None
        for proto in PROTOCOLS:
            self.host.set_stream_handler(proto, self._on_stream)

    async def serve(
        self,
        listen: str | Multiaddr | None = "/ip4/127.0.0.1/tcp/0",
        *,
        task_status: trio.TaskStatus[list[Multiaddr]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen and serve until cancelled; ``task_status.started`` gets our addresses.

        With ``listen=None`` nothing is bound: connections are handed in with
        ``host.serve_transport(stream)`` (tests, custom transports).
        """
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if listen is None:
                task_status.started([])
                await trio.sleep_forever()
            addrs = await nursery.start(self.host.listen, listen)
            task_status.started(addrs)

    def _state(self, conn: Connection) -> _PeerState:
        state = self._states.get(conn)
        if state is None:
            session = ServerSession(self.source, max_pending=self.max_pending,
                                    target_message_bytes=self.target_message_bytes,
                                    max_block_bytes=self.max_block_bytes,
                                    max_streams=self.max_streams,
                                    max_partial_bytes=self.max_partial_bytes)
            state = self._states[conn] = _PeerState(conn, session)
            self.peers_served += 1
            nursery = self._nursery
            if nursery is None:
                raise ProtocolError("BitswapServer.serve() is not running")
            nursery.start_soon(self._respond, state)
        return state

    async def _on_stream(self, stream: Stream) -> None:
        state = self._state(stream.connection)
        ended = False
        try:
            for _ in range(1 << 20):  # bounded: ends at EOF, reset or read timeout
                data = await stream.receive_some()
                ended = not data
                try:
                    state.session.receive_data(stream.stream_id, data)
                except RemoteProtocolError as exc:
                    log.info("peer %s: %s", stream.connection.remote_peer, exc)
                    await stream.connection.aclose()
                    return
                if state.session.has_pending:
                    state.kick.set()
                if ended:
                    return
        finally:
            if not ended:
                state.session.stream_reset(stream.stream_id)

    async def _respond(self, state: _PeerState) -> None:
        conn, session = state.conn, state.session
        try:
            while not conn.closed:
                if not session.has_pending:
                    state.kick = trio.Event()
                    with trio.move_on_after(1.0):  # also notices a closed connection
                        await state.kick.wait()
                    continue
                if state.protocol is None:
                    stream = await conn.open_stream(PROTOCOLS)
                    state.protocol = stream.protocol
                else:
                    stream = await conn.open_stream(state.protocol, lazy=True)
                try:
                    for _ in range(1 << 16):  # one stream per burst of messages
                        data = session.data_to_send(state.protocol)
                        if not data:
                            break
                        await stream.send_all(data)
                finally:
                    await stream.aclose()
        except (ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.info("serving %s stopped: %s", conn.remote_peer, exc)
            await self._drop(conn)
        except Exception as exc:  # noqa: BLE001 - contained: one peer never stops the server
            log.warning("serving %s failed: %r", conn.remote_peer, exc)
            await self._drop(conn)
        finally:
            self._states.pop(conn, None)
            self._done_blocks += session.blocks_sent
            self._done_bytes += session.bytes_sent

    async def _drop(self, conn: Connection) -> None:
        self.connections_failed += 1
        with trio.CancelScope(shield=True):
            await conn.aclose()

    def connection_bytes(self, conn: Connection) -> int:
        """Bytes held for one connection: transport buffers plus the bitswap session's."""
        state = self._states.get(conn)
        return conn.buffered_bytes() + (state.session.buffered_bytes if state is not None else 0)

    @property
    def blocks_sent(self) -> int:
        return self._done_blocks + sum(s.session.blocks_sent for s in self._states.values())

    @property
    def bytes_sent(self) -> int:
        return self._done_bytes + sum(s.session.bytes_sent for s in self._states.values())

    def stats(self) -> dict[str, Any]:
        return {"peers": self.peers_served, "blocks_sent": self.blocks_sent, "bytes_sent": self.bytes_sent}
