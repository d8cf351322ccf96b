"""Sans-I/O bitswap sessions: client <-> server back to back, hostile input, timers, routing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld._varint import decode_varint
from pyipld.bitswap.message import (
    PROTOCOL_1_0_0,
    PROTOCOL_1_1_0,
    BitswapMessage,
    BlockPresence,
    PayloadBlock,
    PresenceType,
    WantlistEntry,
    WantType,
    decode_message,
    encode_prefix,
    frame_message,
)
from pyipld.bitswap.protocol import (
    BlockReceived,
    BlockRejected,
    ClientSession,
    DontHave,
    Event,
    Have,
    ServerSession,
    SessionState,
    WantFailed,
    WantRouter,
    WantTimedOut,
)
from pyipld.blockstore import MemoryBlockstore
from pyipld.cid import CidBuilder
from pyipld.errors import LocalProtocolError, RemoteProtocolError

V1 = CidBuilder(1)
V0 = CidBuilder(0)


def make_store(n: int, size: int = 100, codec: int = 0x55) -> tuple[MemoryBlockstore, list[bytes]]:
    store = MemoryBlockstore()
    cids = []
    for i in range(n):
        data = (b"%d-" % i) * (size // 3 + 1)
        cid = (V1 if codec == 0x55 else V0).cid_bytes(codec, data)
        store.put(cid, data)
        cids.append(cid)
    return store, cids


def shuttle(client: ClientSession, server: ServerSession, stream: int = 0, chunk: int = 0) -> list[Event]:
    """Move bytes both ways until quiet; returns client events."""
    events: list[Event] = []
    for _ in range(1000):
        out = client.data_to_send()
        if out:
            server.receive_data(("c", stream), out)
            server.receive_data(("c", stream), b"")
            stream += 1
        back = b""
        while server.has_pending:
            back += server.data_to_send()
        if back:
            pieces = [back] if not chunk else [back[i : i + chunk] for i in range(0, len(back), chunk)]
            for piece in pieces:
                client.receive_data(("s", stream), piece)
            client.receive_data(("s", stream), b"")
            stream += 1
        events += client.events()
        if not out and not back:
            return events
    raise AssertionError("did not settle")


def test_fetch_all_blocks_back_to_back() -> None:
    store, cids = make_store(300)
    client = ClientSession(max_outstanding=16)
    server = ServerSession(store, target_message_bytes=1000)
    for cid in cids:
        client.want(cid)
    events = shuttle(client, server)
    got = {e.cid: e.data for e in events if isinstance(e, BlockReceived)}
    assert got == {cid: store.get(cid) for cid in cids}
    assert client.pending == 0 and client.outstanding == 0


def test_window_is_bounded() -> None:
    _, cids = make_store(50)
    client = ClientSession(max_outstanding=7)
    for cid in cids:
        client.want(cid)
    msg = decode_message(_body(client.data_to_send()))
    assert len(msg.entries) == 7 and client.outstanding == 7
    assert client.data_to_send() == b""  # window full
    assert all(e.send_dont_have and e.want_type is WantType.BLOCK for e in msg.entries)
    priorities = [e.priority for e in msg.entries]
    assert priorities == sorted(priorities, reverse=True)


def test_dont_have_and_have() -> None:
    store, cids = make_store(2, size=5000)
    missing = V1.cid_bytes(0x55, b"nobody has this")
    client = ClientSession()
    server = ServerSession(store)
    client.want(missing)
    client.want(cids[0], want_type=WantType.HAVE)
    events = shuttle(client, server)
    assert DontHave(missing) in events and Have(cids[0]) in events
    assert client.pending == 0


def test_want_have_small_block_comes_whole() -> None:
    store, cids = make_store(1, size=200)
    client = ClientSession()
    client.want(cids[0], want_type=WantType.HAVE)
    events = shuttle(client, ServerSession(store))
    assert events == [BlockReceived(cids[0], store.get(cids[0]))]


def test_wrong_bytes_are_rejected_never_returned() -> None:
    _store, cids = make_store(1)
    client = ClientSession(max_rejected_blocks=2)
    client.want(cids[0])
    client.data_to_send()
    evil = frame_message(BitswapMessage(payload=(PayloadBlock(encode_prefix(cids[0]), b"not the block"),)))
    client.receive_data(1, evil)
    events = list(client.events())
    assert len(events) == 1 and isinstance(events[0], BlockRejected)
    assert client.wants(cids[0])  # still wanted
    client.receive_data(1, evil)
    with pytest.raises(RemoteProtocolError, match="did not match"):
        client.receive_data(1, evil)
    assert client.state is SessionState.CLOSED
    assert not any(isinstance(e, BlockReceived) for e in client.events())


def test_late_duplicates_are_not_hostile() -> None:
    store, cids = make_store(1)
    client = ClientSession(max_rejected_blocks=0)
    client.want(cids[0])
    client.data_to_send()
    good = frame_message(BitswapMessage(payload=(PayloadBlock(encode_prefix(cids[0]), store.get(cids[0])),)))
    client.receive_data(1, good + good)
    assert list(client.events()) == [BlockReceived(cids[0], store.get(cids[0]))]
    assert client.duplicate_blocks == 1


def test_v0_v1_spellings_match() -> None:
    data = b"a dag-pb-ish block"
    v0 = V0.cid_bytes(0x70, data)
    v1 = V1.cid_bytes(0x70, data)
    client = ClientSession()
    client.want(v0)
    client.data_to_send()
    client.receive_data(1, frame_message(BitswapMessage(payload=(PayloadBlock(encode_prefix(v1), data),))))
    assert list(client.events()) == [BlockReceived(v0, data)]
    client.want(v1)
    client.data_to_send()
    client.receive_message(BitswapMessage(presences=(BlockPresence(v0, PresenceType.DONT_HAVE),)))
    assert list(client.events()) == [DontHave(v1)]


def test_bitswap_1_0_0_blocks_field() -> None:
    store, cids = make_store(3, codec=0x70)
    client = ClientSession(protocol=PROTOCOL_1_0_0)
    server = ServerSession(store, protocol=PROTOCOL_1_0_0)
    for cid in cids:
        client.want(cid)
    events = shuttle(client, server)
    assert {e.cid for e in events if isinstance(e, BlockReceived)} == set(cids)
    with pytest.raises(LocalProtocolError):
        ClientSession(protocol=PROTOCOL_1_1_0).want(cids[0], want_type=WantType.HAVE)


def test_timeouts_retry_then_fail() -> None:
    _, cids = make_store(2)
    client = ClientSession(want_timeout=5, max_attempts=2)
    client.handle_timer(100.0)
    for cid in cids:
        client.want(cid)
    assert len(decode_message(_body(client.data_to_send())).entries) == 2
    assert client.get_timer() == 105.0
    client.handle_timer(104.9)
    assert client.data_to_send() == b""
    client.handle_timer(105.0)
    assert client.outstanding == 0
    assert len(decode_message(_body(client.data_to_send())).entries) == 2  # re-sent
    client.handle_timer(110.0)
    assert sorted(client.events(), key=lambda e: e.cid) == sorted(  # type: ignore[union-attr]
        [WantTimedOut(c, 2) for c in cids], key=lambda e: e.cid)
    assert client.pending == 0 and client.get_timer() is None


def test_cancel_and_close() -> None:
    _, cids = make_store(3)
    client = ClientSession()
    client.want(cids[0])
    client.data_to_send()
    client.want(cids[1])
    client.cancel(cids[1])  # never sent: no cancel entry
    client.cancel(cids[0])
    msg = decode_message(_body(client.data_to_send()))
    assert [(e.cid, e.cancel) for e in msg.entries] == [(cids[0], True)]
    client.want(cids[2])
    client.data_to_send()
    client.close()
    assert [e.cid for e in decode_message(_body(client.data_to_send())).entries] == [cids[2]]
    with pytest.raises(LocalProtocolError):
        client.want(cids[0])


def test_identity_and_queue_limits() -> None:
    client = ClientSession(max_queued=2)
    with pytest.raises(LocalProtocolError, match="identity"):
        client.want(bytes.fromhex("015500") + b"\x03abc")
    _, cids = make_store(3)
    client.want(cids[0])
    client.want(cids[1])
    with pytest.raises(LocalProtocolError, match="max_queued=2"):
        client.want(cids[2])


def test_stream_cut_mid_message_and_oversized() -> None:
    client = ClientSession(max_message_bytes=100)
    client.receive_data(1, b"\x0a\x00")
    with pytest.raises(RemoteProtocolError, match="inside a message"):
        client.receive_data(1, b"")
    client = ClientSession(max_message_bytes=100)
    with pytest.raises(RemoteProtocolError, match="max_message_bytes=100"):
        client.receive_data(1, b"\xe9\x07")
    client = ClientSession()
    with pytest.raises(RemoteProtocolError, match="bad bitswap message"):
        client.receive_data(1, b"\x02\x0b\x00")


def test_server_limits_cancel_full_and_missing() -> None:
    store, cids = make_store(5)
    server = ServerSession(store, max_pending=3)
    client = ClientSession()
    for cid in cids:
        client.want(cid)
    server.receive_data(1, client.data_to_send())
    assert server.dropped_wants == 2
    client.cancel(cids[0])
    server.receive_data(1, client.data_to_send())
    reply = decode_message(_body(server.data_to_send()))
    assert [p.data for p in reply.payload] == [store.get(c) for c in cids[1:3]]
    server.receive_message(BitswapMessage(full=True))
    assert not server.has_pending
    # without sendDontHave a missing block gets no answer at all
    server.receive_message(BitswapMessage(entries=(WantlistEntry(V1.cid_bytes(0x55, b"?")),)))
    assert server.data_to_send() == b"" and not server.has_pending


def _body(framed: bytes) -> bytes:
    n, k = decode_varint(framed)
    assert len(framed) == n + k
    return framed[k:]


@given(st.lists(st.integers(1, 64), min_size=1, max_size=10), st.integers(1, 8))
def test_same_events_for_any_fragmentation(chunks: list[int], window: int) -> None:
    store, cids = make_store(12, size=300)
    reference = None
    for chunk in (0, *chunks):
        client = ClientSession(max_outstanding=window)
        server = ServerSession(store, target_message_bytes=700)
        for cid in cids:
            client.want(cid)
        events = shuttle(client, server, chunk=chunk)
        if reference is None:
            reference = events
        assert events == reference
    assert reference is not None and len(reference) == 12


@given(st.lists(st.tuples(st.sampled_from(["want", "cancel", "have", "dont", "block", "bad", "timer"]),
                          st.integers(0, 5)), max_size=40))
def test_event_orders_keep_invariants(ops: list[tuple[str, int]]) -> None:
    store, cids = make_store(6)
    client = ClientSession(max_outstanding=3, want_timeout=1, max_rejected_blocks=1000)
    now = 0.0
    received: list[bytes] = []
    for op, i in ops:
        cid = cids[i]
        if op == "want":
            client.want(cid)
        elif op == "cancel":
            client.cancel(cid)
        elif op == "timer":
            now += 0.6
            client.handle_timer(now)
        else:
            if op == "block":
                msg = BitswapMessage(payload=(PayloadBlock(encode_prefix(cid), store.get(cid)),))
            elif op == "bad":
                msg = BitswapMessage(payload=(PayloadBlock(encode_prefix(cid), b"bad"),))
            else:
                kind = PresenceType.HAVE if op == "have" else PresenceType.DONT_HAVE
                msg = BitswapMessage(presences=(BlockPresence(cid, kind),))
            client.receive_message(msg)
        client.data_to_send()
        assert 0 <= client.outstanding <= 3
        assert client.outstanding <= client.pending
        for event in client.events():
            if isinstance(event, BlockReceived):
                assert store.get(event.cid) == event.data
                received.append(event.cid)
            if isinstance(event, BlockRejected):
                assert event.reason


# -- router ---------------------------------------------------------------------------

def run_router(router: WantRouter, servers: dict[str, ServerSession]) -> list[Event]:
    out: list[Event] = []
    for _ in range(100):
        moved = False
        for peer in list(router.peers):
            session = router.session(peer)
            data = session.data_to_send()
            if data:
                moved = True
                servers[peer].receive_data(1, data)
                servers[peer].receive_data(1, b"")
            while servers[peer].has_pending:
                session.receive_data(2, servers[peer].data_to_send())
                moved = True
            session.receive_data(2, b"")
            for event in session.events():
                out += router.on_event(peer, event)
        if not moved:
            return out
    raise AssertionError("router did not settle")


def test_router_asks_next_peer_after_dont_have() -> None:
    store_a, _cids_a = make_store(4)
    store_b, cids_b = make_store(8)  # b has everything a has, and more
    router = WantRouter()
    router.add_peer("a", ClientSession())
    router.add_peer("b", ClientSession())
    servers = {"a": ServerSession(store_a), "b": ServerSession(store_b)}
    missing = V1.cid_bytes(0x55, b"missing everywhere")
    for cid in [*cids_b, missing]:
        router.want(cid)
    events = run_router(router, servers)
    got = {e.cid for e in events if isinstance(e, BlockReceived)}
    assert got == set(cids_b)
    (failed,) = [e for e in events if isinstance(e, WantFailed)]
    assert failed.cid == missing and len(failed.reasons) == 2 and "DONT_HAVE" in failed.reasons[0]
    assert router.pending == 0


def test_router_moves_wants_when_a_peer_goes_away() -> None:
    store, cids = make_store(4)
    router = WantRouter()
    router.add_peer("a", ClientSession())
    for cid in cids:
        router.want(cid)
    router.add_peer("b", ClientSession())
    assert router.session("b").pending == 0  # everything went to a (least loaded when asked)
    router.session("a").data_to_send()
    assert router.remove_peer("a", "connection reset") == []
    assert router.session("b").pending == 4
    events = run_router(router, {"b": ServerSession(store)})
    assert {e.cid for e in events if isinstance(e, BlockReceived)} == set(cids)


def test_router_waits_for_first_peer_and_fails_without_any() -> None:
    store, cids = make_store(2)
    router = WantRouter()
    assert router.want(cids[0]) == []  # waiting for a peer
    router.add_peer("a", ClientSession())
    events = run_router(router, {"a": ServerSession(store)})
    assert [e.cid for e in events if isinstance(e, BlockReceived)] == [cids[0]]
    router.want(cids[1])
    failed = router.remove_peer("a", "went away")
    assert failed == [WantFailed(cids[1], ("a: went away",))]


def test_reset_streams_do_not_pile_up() -> None:
    client = ClientSession()
    for stream in range(200):  # each a partial message, then reset
        client.receive_data(stream, b"\x05\x0a")
        client.stream_reset(stream)
    server = ServerSession(MemoryBlockstore())
    for stream in range(200):
        server.receive_data(stream, b"\x05")
        server.stream_reset(stream)
    with pytest.raises(RemoteProtocolError, match="concurrent"):
        for stream in range(200):
            client.receive_data(stream, b"\x05\x0a")


def _answer(client: ClientSession, store: MemoryBlockstore, cids: list[bytes], key: object) -> None:
    server = ServerSession(store)
    server.receive_data(key, frame_message(BitswapMessage(entries=tuple(WantlistEntry(c, 1) for c in cids))))
    while server.has_pending:
        client.receive_data(key, server.data_to_send())


def test_wants_leave_in_batches_while_the_window_is_more_than_half_full() -> None:
    store, cids = make_store(40)
    client = ClientSession(max_outstanding=8, send_batch=3)
    for cid in cids[:8]:
        client.want(cid)
    assert client.has_data_to_send
    assert len(decode_message(_body(client.data_to_send())).entries) == 8
    for i in range(2):  # steady state: each answer frees room for one new want
        _answer(client, store, cids[i : i + 1], ("s", i))
        client.want(cids[8 + i])
        assert client.outstanding == 7 - i and not client.has_data_to_send  # fewer than 3 queued
    _answer(client, store, cids[2:3], "s2")
    client.want(cids[10])
    assert client.has_data_to_send  # a batch of 3
    assert len(decode_message(_body(client.data_to_send())).entries) == 3
    assert client.outstanding == 8
    _answer(client, store, cids[3:4], "s3")
    client.want(cids[11])
    assert client.outstanding == 7 and not client.has_data_to_send
    _answer(client, store, cids[4:7], "s4")  # 4 in flight: half, so one want goes at once
    assert client.outstanding == 4 and client.has_data_to_send
    assert [e.cid for e in decode_message(_body(client.data_to_send())).entries] == [cids[11]]
    assert ClientSession(send_batch=1).send_batch == 1  # 1: every want at once
    with pytest.raises(ValueError):
        ClientSession(send_batch=0)
