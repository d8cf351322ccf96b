"""A hostile bitswap peer against the server: issue 10, points 1 and 5.

Each attack the review found is a test here, run against the sans-I/O
machines (ServerSession, YamuxSession) where possible and against the trio
driver over in-memory streams otherwise. Memory is asserted by counting the
bytes a connection holds, never by timing. The real ``pyipld serve`` process
against a hostile client in ``unshare -n`` is tests/test_serve_netns.py.
"""

from __future__ import annotations

import errno
import functools
import hashlib
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipld._pb import iter_fields
from pyipld._varint import encode_varint
from pyipld.bitswap.message import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_1_2_0,
    BitswapMessage,
    MessageReader,
    PresenceType,
    WantlistEntry,
    WantType,
    cid_from_prefix,
    decode_message,
    encode_message,
    frame_message,
)
from pyipld.bitswap.protocol import ServerSession
from pyipld.bitswap.server import BitswapServer
from pyipld.blockstore import DirectoryBlockstore, MemoryBlockstore
from pyipld.errors import CIDError, NotFoundError, RemoteProtocolError
from pyipld.libp2p.driver import Connection, Host
from pyipld.libp2p.peer import Identity
from pyipld.libp2p.yamux import Flag, FrameType, YamuxSession, encode_header

# boxo verifcid maximumHashLength (pyipld.bitswap.message.MAX_DIGEST_BYTES); spelled out so this
# file also runs against the code from before the fix, to show that its tests fail there
MAX_DIGEST_BYTES = 128


def raw_cid(data: bytes) -> bytes:
    return b"\x01\x55\x12\x20" + hashlib.sha256(data).digest()


def absurd_cid(digest_len: int, fill: int = 7) -> bytes:
    """A parseable CIDv1 (raw, sha2-256 code) whose digest is ``digest_len`` bytes long."""
    return b"\x01\x55\x12" + encode_varint(digest_len) + bytes([fill]) * digest_len


def want_frame(cids: list[bytes], *, send_dont_have: bool = True) -> bytes:
    """A framed wantlist, encoded without any check of the CIDs (as a hostile peer would)."""
    entries = tuple(WantlistEntry(c, 1, False, WantType.BLOCK, send_dont_have) for c in cids)
    return frame_message(BitswapMessage(entries=entries), PROTOCOL_1_2_0, max_message_bytes=1 << 30)


def small_store(n: int = 8, size: int = 2000) -> tuple[MemoryBlockstore, list[bytes]]:
    store = MemoryBlockstore()
    cids = []
    for i in range(n):
        data = bytes([i]) * size
        store.put(raw_cid(data), data)
        cids.append(raw_cid(data))
    return store, cids


def drain(session: ServerSession, limit: int, *, strict: bool = True) -> list[BitswapMessage]:
    """Every reply the session has, each checked to be one frame within ``limit``.

    ``strict=False``: the wants bypassed the decoder, so presences may name CIDs the
    decoder refuses; only the payload blocks are decoded then.
    """
    out = []
    for _ in range(100_000):
        frame = session.data_to_send(PROTOCOL_1_2_0)
        if not frame:
            break
        bodies = MessageReader(max_message_bytes=limit).feed(frame)
        assert len(bodies) == 1 and len(bodies[0]) <= limit
        if strict:
            out.append(decode_message(bodies[0], max_block_bytes=limit))
        else:
            blocks = [field for number, _, field in iter_fields(bodies[0], "test") if number == 3]
            out.append(decode_message(b"".join(b"\x1a" + encode_varint(len(b)) + bytes(b) for b in blocks),
                                      max_block_bytes=limit))
    assert not session.has_pending
    return out


# -- point 1: a reply that cannot be framed; CIDs longer than any real one ----------------------

def test_absurd_cids_are_refused_at_decode() -> None:
    # the review's attack: want ~1 MB and ~3 MB digests with sendDontHave; the old server
    # accepted them and then raised LimitExceededError building a 4.2 MB DONT_HAVE reply
    session = ServerSession(MemoryBlockstore())
    frame = want_frame([absurd_cid(1_000_000), absurd_cid(3_000_000)])
    assert len(frame) < MAX_MESSAGE_BYTES  # a frame the reader accepts: the CIDs are the problem
    with pytest.raises(RemoteProtocolError, match="CID"):
        session.receive_data(1, frame)
    assert not session.has_pending


def test_longest_real_digest_is_still_accepted() -> None:
    session = ServerSession(MemoryBlockstore())
    session.receive_data(1, want_frame([absurd_cid(MAX_DIGEST_BYTES)]))
    (msg,) = drain(session, MAX_MESSAGE_BYTES)
    assert [p.type for p in msg.presences] == [PresenceType.DONT_HAVE]
    with pytest.raises(RemoteProtocolError):
        ServerSession(MemoryBlockstore()).receive_data(1, want_frame([absurd_cid(MAX_DIGEST_BYTES + 1)]))


def test_reply_is_split_never_oversized() -> None:
    # wants that reach the session without the decoder (receive_message) must not make it
    # build a frame it cannot send: answers are split over messages, or dropped
    limit = 64 * 1024
    session = ServerSession(MemoryBlockstore(), max_message_bytes=limit, target_message_bytes=limit)
    cids = [absurd_cid(30_000, 1), absurd_cid(50_000, 2), absurd_cid(200_000, 3)]
    session.receive_message(BitswapMessage(entries=tuple(
        WantlistEntry(c, 1, False, WantType.BLOCK, True) for c in cids)))
    bodies = []
    for _ in range(10):
        frame = session.data_to_send(PROTOCOL_1_2_0)  # the old session raised LimitExceededError here
        if not frame:
            break
        (body,) = MessageReader(max_message_bytes=limit).feed(frame)
        bodies.append(body)
    # each in its own message (the decoder would refuse these CIDs, so look for their bytes)
    assert [[c for c in cids if c in body] for body in bodies] == [[cids[0]], [cids[1]]]
    assert session.dropped_answers == 1  # the third cannot be framed at all
    assert not session.has_pending


class _FlakySource:
    """A BlockSource that fails for one CID the way DirectoryBlockstore did."""

    def __init__(self, store: MemoryBlockstore, bad: bytes) -> None:
        self.store, self.bad = store, bad

    def has(self, cid: bytes) -> bool:
        if cid == self.bad:
            raise OSError(errno.ENAMETOOLONG, "File name too long")
        return self.store.has(cid)

    def get(self, cid: bytes) -> bytes:
        return self.store.get(cid)


def test_one_bad_want_does_not_abort_the_batch() -> None:
    store, cids = small_store(4)
    bad = absurd_cid(100)
    session = ServerSession(_FlakySource(store, bad))
    session.receive_data(1, want_frame([cids[0], bad, cids[1], cids[2]]))
    replies = drain(session, MAX_MESSAGE_BYTES)
    got = {cid_from_prefix(b.prefix, b.data) for m in replies for b in m.payload}
    assert got == {cids[0], cids[1], cids[2]}
    assert [p.cid for m in replies for p in m.presences] == [bad]
    assert session.lookup_errors == 1


def test_directory_blockstore_has_any_cid(tmp_path: object) -> None:
    store = DirectoryBlockstore(str(tmp_path))
    data = b"hello"
    store.put(raw_cid(data), data)
    assert store.has(raw_cid(data))
    for n in (MAX_DIGEST_BYTES, 300, 100_000, 3_000_000):
        cid = absurd_cid(n)
        assert store.has(cid) is False  # was OSError(ENAMETOOLONG) from the 300-byte name up
        with pytest.raises(NotFoundError):
            store.get(cid)
    with pytest.raises(CIDError):
        store.put(absurd_cid(300), b"x")


def test_serving_a_directory_blockstore_answers_around_a_long_cid(tmp_path: object) -> None:
    store = DirectoryBlockstore(str(tmp_path))
    data = b"block"
    store.put(raw_cid(data), data)
    session = ServerSession(store)
    long = absurd_cid(MAX_DIGEST_BYTES)
    session.receive_data(1, want_frame([long, raw_cid(data)]))
    (msg,) = drain(session, MAX_MESSAGE_BYTES)
    assert [b.data for b in msg.payload] == [data]
    assert [p.cid for p in msg.presences] == [long]


# -- the serve fuzz: random wants, absurd CIDs among them ----------------------------------------

_BLOCKS = [bytes([i % 251]) * size for i, size in enumerate((0, 1, 1024, 1025, 70_000, 300_000))]
_STORE = MemoryBlockstore()
for _b in _BLOCKS:
    _STORE.put(raw_cid(_b), _b)

_cid = st.one_of(
    st.sampled_from([raw_cid(b) for b in _BLOCKS]),  # present
    st.binary(min_size=32, max_size=32).map(lambda d: b"\x01\x55\x12\x20" + d),  # missing
    st.integers(0, 4 * MAX_DIGEST_BYTES).map(absurd_cid),  # up to 4x too long
    st.sampled_from([absurd_cid(5_000), absurd_cid(30_000)]),
    st.binary(max_size=40),  # not a CID at all
)
_entry = st.builds(WantlistEntry, _cid, st.integers(-5, 5), st.booleans(), st.sampled_from(WantType), st.booleans())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.tuples(st.lists(_entry, max_size=12), st.booleans()), min_size=1, max_size=5),
       limit=st.sampled_from([16 * 1024, 64 * 1024, 512 * 1024, MAX_MESSAGE_BYTES]),
       via_decoder=st.booleans())
def test_serve_fuzz_random_wants(batches: list[tuple[list[WantlistEntry], bool]], limit: int,
                                 via_decoder: bool) -> None:
    session = ServerSession(_STORE, max_message_bytes=limit, target_message_bytes=limit // 2, max_pending=32)
    for entries, full in batches:
        msg = BitswapMessage(entries=tuple(entries), full=full)
        if via_decoder:
            try:
                session.receive_data(1, frame_message(msg, max_message_bytes=1 << 30))
            except RemoteProtocolError:
                return  # refused as a whole, the connection would close: nothing else may happen
        else:
            session.receive_message(msg)  # bypasses the decoder's CID checks: the session must cope
        # bounded state: at most max_pending wants of at most a few MB each (absurd CIDs included)
        assert len(session._pending) <= 32
        for reply in drain(session, limit, strict=via_decoder):  # never raises, every frame within the limit
            for block in reply.payload:
                assert _STORE.has(cid_from_prefix(block.prefix, block.data))


@given(prefix=st.binary(max_size=40), data_len=st.integers(0, 300_000), cid=st.binary(max_size=200),
       dont_have=st.booleans())
def test_answer_sizes_are_exact(prefix: bytes, data_len: int, cid: bytes, dont_have: bool) -> None:
    from pyipld.bitswap.message import BlockPresence, PayloadBlock
    from pyipld.bitswap.protocol import _answer_bytes

    block = PayloadBlock(prefix, b"x" * data_len)
    assert _answer_bytes(block) == len(encode_message(BitswapMessage(payload=(block,))))
    presence = BlockPresence(cid, PresenceType.DONT_HAVE if dont_have else PresenceType.HAVE)
    assert _answer_bytes(presence) == len(encode_message(BitswapMessage(presences=(presence,))))


# -- point 5: bounded memory per peer (sans-I/O) -----------------------------------------------

def test_unfinished_messages_on_many_streams_are_bounded() -> None:
    # the review held 2 connections x 64 streams x an unfinished 4 MiB message (621 MB)
    session = ServerSession(MemoryBlockstore())
    start = encode_varint(MAX_MESSAGE_BYTES) + b"\x0a" * (256 * 1024)  # announce 4 MiB, send 256 KiB
    fed = 0
    with pytest.raises(RemoteProtocolError):
        for stream in range(64):
            session.receive_data(stream, start)
            fed += len(start)
    assert fed < MAX_MESSAGE_BYTES + len(start)  # refused once the partial messages reach the budget
    assert session.buffered_bytes <= MAX_MESSAGE_BYTES + len(start)


def test_ping_flood_without_reading_is_bounded() -> None:
    # a peer that pings and never reads made pong ACKs pile up (55 -> 234 MB in 25 s)
    server = YamuxSession(is_client=False)
    pings = b"".join(encode_header(FrameType.PING, Flag.SYN, 0, i) for i in range(20_000))
    for i in range(0, len(pings), 4096 * 12):
        server.receive_data(pings[i : i + 4096 * 12])
        while server.next_event() is not None:
            pass
    queued = len(server.data_to_send())  # what the old machine would have had to hold
    assert queued <= 32 * 12
    assert server.pongs_dropped == 20_000 - 32


def test_data_frame_over_the_window_is_refused_from_its_header() -> None:
    server = YamuxSession(is_client=False)
    header = encode_header(FrameType.DATA, Flag.SYN, 1, 1 << 20)  # 1 MiB > the 256 KiB window
    with pytest.raises(RemoteProtocolError, match="window"):
        server.receive_data(header + b"\0" * 1000)
    assert server.buffered_bytes <= 64  # nothing of the payload kept (GoAway queued)


# -- point 5 through the driver: a peer whose output is blocked -------------------------------

def trio_test(fn: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    @functools.wraps(fn)
    def run() -> None:
        async def bounded() -> None:
            with trio.fail_after(60):
                await fn()
        trio.run(bounded)
    return run


def held_bytes(conn: Connection) -> int:
    """Bytes a server-side connection holds (counted from its buffers, old and new code alike)."""
    session = conn.session
    held = len(session._in) + len(session._out) + sum(len(st._buf) for st in conn._streams.values())
    return held + getattr(conn, "_inflight", 0) + len(conn.channel._pending)


async def hostile_session(host: Host, transport: trio.abc.Stream) -> trio.abc.Stream:
    """Handshake as a dialer, then hand back the secure channel for raw yamux frames."""
    channel, _, _, _ = await host._handshake(transport, True, None)
    return channel


@trio_test
async def test_peer_that_never_reads_is_paused_and_dropped() -> None:
    store, _ = small_store(2)
    host = Host(Identity.from_seed(b"\1" * 32), max_inbound_streams=4)
    host.write_timeout = 3.0  # a peer that reads none of our output for 3 s is dropped
    server = BitswapServer(store, host)
    # hostile -> server: a plain memory pipe; server -> hostile: lockstep, so once the
    # hostile peer stops reading, every write of the server blocks (a full TCP window)
    to_server_send, to_server_recv = trio.testing.memory_stream_one_way_pair()
    to_peer_send, to_peer_recv = trio.testing.lockstep_stream_one_way_pair()
    server_end = trio.StapledStream(to_peer_send, to_server_recv)
    peer_end = trio.StapledStream(to_server_send, to_peer_recv)
    peak = 0
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, None)
        nursery.start_soon(server.host.serve_transport, server_end)
        channel = await hostile_session(Host(Identity.from_seed(b"\2" * 32)), peer_end)
        while not server.host.connections:
            await trio.sleep(0.01)
        (conn,) = server.host.connections
        # 200,000 stream opens past max_inbound_streams: 2.4 MB in, an RST (12 bytes) owed for each
        flood = b"".join(encode_header(FrameType.WINDOW_UPDATE, Flag.SYN, 2 * i + 1, 0) for i in range(200_000))
        pings = b"".join(encode_header(FrameType.PING, Flag.SYN, 0, i) for i in range(20_000))
        with trio.move_on_after(20):
            for blob in (flood, pings):
                for i in range(0, len(blob), 60_000):
                    await channel.send_all(blob[i : i + 60_000])
                    await trio.lowlevel.checkpoint()
                    peak = max(peak, held_bytes(conn))
            await conn.wait_closed()
        peak = max(peak, held_bytes(conn))
        assert peak < 1_200_000, f"server held {peak} bytes for a peer that never reads"
        assert conn.closed, "a peer that never reads is dropped after write_timeout"
        assert getattr(conn, "reads_paused", 0) > 0
        nursery.cancel_scope.cancel()


@trio_test
async def test_unfinished_messages_through_the_driver_are_bounded() -> None:
    # the review: 2 connections x 64 streams x an unfinished 4 MiB message held 621 MB.
    # With serve's limits one connection holds about 11 MiB at most, whatever the peer sends.
    host = Host(Identity.from_seed(b"\3" * 32), max_inbound_streams=SERVE_MAX_STREAMS,
                max_window=SERVE_MAX_WINDOW, max_session_window=SERVE_MAX_SESSION_WINDOW)
    server = BitswapServer(MemoryBlockstore(), host)
    server.max_partial_bytes = SERVE_MAX_PARTIAL_BYTES
    a, b = trio.testing.memory_stream_pair()
    peak = 0

    def held(conn: Connection) -> int:
        state = server._states.get(conn)
        readers = state.session._readers._readers.values() if state is not None else ()
        return held_bytes(conn) + sum(r.buffered for r in readers)

    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, None)
        nursery.start_soon(host.serve_transport, b)
        async with Host(Identity.from_seed(b"\4" * 32)).upgrade(a, initiator=True) as peer:
            while not host.connections:
                await trio.sleep(0.01)
            (conn,) = host.connections
            start = encode_varint(MAX_MESSAGE_BYTES) + b"\x0a" * (1 << 20)  # 1 MiB of a 4 MiB message
            with trio.move_on_after(20):
                for _ in range(64):
                    try:
                        st = await peer.open_stream(PROTOCOL_1_2_0)
                        for i in range(0, len(start), 64 * 1024):
                            await st.send_all(start[i : i + 64 * 1024])
                            peak = max(peak, held(conn))
                    except (trio.BrokenResourceError, trio.ClosedResourceError, RemoteProtocolError):
                        break
                    await trio.sleep(0.01)
                    peak = max(peak, held(conn))
            assert peak < 12 << 20, f"one connection held {peak} bytes"
            assert conn.closed, "a peer past the partial-message budget is disconnected"
        nursery.cancel_scope.cancel()


# serve's limits (pyipld/_cli/net.py, docs/threat-model.md), spelled out so the tests above
# also run against the code from before them
SERVE_MAX_STREAMS = 32
SERVE_MAX_WINDOW = 1 << 20
SERVE_MAX_SESSION_WINDOW = 4 << 20
SERVE_MAX_PARTIAL_BYTES = 1 << 20


def test_serve_limits_are_the_documented_ones() -> None:
    from pyipld._cli import net

    assert (net.SERVE_MAX_STREAMS, net.SERVE_MAX_WINDOW, net.SERVE_MAX_SESSION_WINDOW, net.SERVE_MAX_PARTIAL_BYTES) == (
        SERVE_MAX_STREAMS, SERVE_MAX_WINDOW, SERVE_MAX_SESSION_WINDOW, SERVE_MAX_PARTIAL_BYTES)
    assert net.SERVE_MAX_CONNECTIONS == 128


def test_at_the_cap_only_a_connection_idle_for_the_grace_period_is_replaced() -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)

    async def main() -> None:
        host = Host(Identity.from_seed(b"\5" * 32), max_inbound_connections=2, idle_grace=20.0)
        async def nothing(stream: object) -> None:
            await trio.lowlevel.checkpoint()

        host.set_stream_handler("/test/1", nothing)
        async with trio.open_nursery() as nursery:
            peers = []
            for n in (6, 7):
                a, b = trio.testing.memory_stream_pair()
                nursery.start_soon(host.serve_transport, b)
                peers.append(await nursery.start(_hold_connection, a, n))
            while len(host.connections) < 2:
                await trio.sleep(0.01)
            active_peer = peers[0].host.peer_id
            await trio.sleep(10)
            assert host._most_idle_inbound() is None  # nobody idle for 20 s yet
            await trio.sleep(15)
            st = await peers[0].open_stream("/test/1")  # the first peer does something at t=25
            await st.aclose()
            await trio.sleep(5)
            victim = host._most_idle_inbound()
            assert victim is not None and victim.remote_peer != active_peer
            nursery.cancel_scope.cancel()

    trio.run(main, clock=clock)


async def _hold_connection(transport: trio.abc.Stream, n: int,
                           task_status: trio.TaskStatus[Connection] = trio.TASK_STATUS_IGNORED) -> None:
    async with Host(Identity.from_seed(bytes([n]) * 32)).upgrade(transport, initiator=True) as conn:
        task_status.started(conn)
        await trio.sleep_forever()
