"""The trio driver: our dialer against our listener over in-memory streams."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from pyipld.errors import PeerTimeoutError, RemoteProtocolError
from pyipld.libp2p.driver import (
    Connection,
    Host,
    NegotiationError,
    Stream,
    StreamResetError,
)
from pyipld.libp2p.multiaddr import Multiaddr
from pyipld.libp2p.peer import Identity
from pyipld.libp2p.yamux import INITIAL_WINDOW

ECHO = "/test/echo/1"


async def echo(stream: Stream) -> None:
    while data := await stream.receive_some():
        await stream.send_all(data)


def hosts(**kw: Any) -> tuple[Host, Host]:
    a = Host(Identity.from_seed(b"\x01" * 32), **kw)
    b = Host(Identity.from_seed(b"\x02" * 32), **kw)
    b.set_stream_handler(ECHO, echo)
    return a, b


def run_pair(
    body: Callable[[Connection, Host, Host], Awaitable[None]],
    *,
    pair: Callable[[], tuple[Any, Any]] = trio.testing.memory_stream_pair,
    clock: Any = None,
    **kw: Any,
) -> None:
    a, b = hosts(**kw)

    async def main() -> None:
        s1, s2 = pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(b.serve_transport, s2)
            async with a.upgrade(s1, initiator=True, expected_peer=b.peer_id) as conn:
                await body(conn, a, b)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=clock)


@pytest.mark.parametrize("early", [True, False])
def test_echo_both_muxer_paths(early: bool) -> None:
    async def body(conn: Connection, a: Host, b: Host) -> None:
        assert conn.remote_peer == b.peer_id and conn.muxer == "/yamux/1.0.0"
        st = await conn.open_stream(["/nope", ECHO])
        assert st.protocol == ECHO
        await st.send_all(b"ping!")
        assert await st.receive_exactly(5) == b"ping!"
        await st.send_eof()
        assert await st.receive_some() == b""
        await st.aclose()

    run_pair(body, early_muxer=early)


def test_identify_and_ping_are_answered() -> None:
    async def body(conn: Connection, a: Host, b: Host) -> None:
        info = await conn.identify()
        assert info.public_key == b.identity.public_key.to_protobuf()
        assert ECHO in info.protocols and "/ipfs/ping/1.0.0" in info.protocols
        assert info.agent_version and info.agent_version.startswith("pyipld/")
        assert await conn.ping() >= 0
        assert b.served["/ipfs/id/1.0.0"] == 1 and b.served["/ipfs/ping/1.0.0"] == 1

    run_pair(body)


def test_unsupported_protocol_is_negotiation_error() -> None:
    async def body(conn: Connection, a: Host, b: Host) -> None:
        with pytest.raises(NegotiationError) as info:
            await conn.open_stream(["/x/1", "/x/2"])
        assert info.value.protocols == ("/x/1", "/x/2")
        st = await conn.open_stream(ECHO)  # the connection is still fine
        await st.send_all(b"ok")
        assert await st.receive_exactly(2) == b"ok"

    run_pair(body)


def test_lazy_open() -> None:
    async def body(conn: Connection, a: Host, b: Host) -> None:
        st = await conn.open_stream(ECHO, lazy=True)
        await st.send_all(b"early bytes")  # before the echo of the protocol arrived
        assert await st.receive_exactly(11) == b"early bytes"
        bad = await conn.open_stream("/nope", lazy=True)
        with pytest.raises(NegotiationError):
            await bad.receive_some()

    run_pair(body)


def test_server_opens_streams_back() -> None:
    """Replies on a stream the *listener* opens (how bitswap answers)."""
    got: list[bytes] = []
    done = trio.Event()

    async def on_reply(stream: Stream) -> None:
        got.append(await stream.receive_exactly(5))
        done.set()

    async def on_request(stream: Stream) -> None:
        data = await stream.receive_exactly(5)
        back = await stream.connection.open_stream("/test/reply/1")
        await back.send_all(data.upper())
        await back.aclose()

    async def body(conn: Connection, a: Host, b: Host) -> None:
        a.set_stream_handler("/test/reply/1", on_reply)
        b.set_stream_handler("/test/request/1", on_request)
        st = await conn.open_stream("/test/request/1")
        await st.send_all(b"hello")
        await st.send_eof()
        with trio.fail_after(5):
            await done.wait()
        assert got == [b"HELLO"]

    run_pair(body)


def test_wrong_peer_id_fails_handshake() -> None:
    a, b = hosts()

    async def main() -> None:
        s1, s2 = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(b.serve_transport, s2)
            with pytest.raises(RemoteProtocolError, match="expected"):
                async with a.upgrade(s1, initiator=True, expected_peer=Identity.generate().peer_id):
                    pass  # pragma: no cover
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_handshake_timeout_against_silent_peer() -> None:
    a, _ = hosts(handshake_timeout=5)

    async def main() -> None:
        s1, _s2 = trio.testing.memory_stream_pair()
        with pytest.raises(PeerTimeoutError):
            async with a.upgrade(s1, initiator=True):
                pass  # pragma: no cover

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_garbage_instead_of_noise() -> None:
    a, _ = hosts()

    async def fake_peer(stream: trio.testing.MemoryReceiveStream | Any) -> None:
        from pyipld.libp2p.multistream import encode_line

        await stream.send_all(encode_line("/multistream/1.0.0") + encode_line("/noise") + b"\x00\x20" + b"\x00" * 32)
        await stream.send_all(b"\x00\x10" + b"junk" * 4)

    async def main() -> None:
        s1, s2 = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fake_peer, s2)
            with pytest.raises(RemoteProtocolError):
                async with a.upgrade(s1, initiator=True):
                    pass  # pragma: no cover

    trio.run(main)


def test_read_timeout() -> None:
    async def silent(stream: Stream) -> None:
        await trio.sleep(1000)

    async def body(conn: Connection, a: Host, b: Host) -> None:
        b.set_stream_handler("/silent", silent)
        st = await conn.open_stream("/silent")
        with pytest.raises(PeerTimeoutError):
            await st.receive_some()

    run_pair(body, read_timeout=3, clock=trio.testing.MockClock(autojump_threshold=0))


def test_handler_failure_resets_stream() -> None:
    async def broken(stream: Stream) -> None:
        raise RemoteProtocolError("handler gives up")

    async def body(conn: Connection, a: Host, b: Host) -> None:
        b.set_stream_handler("/broken", broken)
        st = await conn.open_stream("/broken")
        with pytest.raises(StreamResetError):
            await st.receive_some()
        with pytest.raises(StreamResetError):
            await st.send_all(b"x")

    run_pair(body)


def test_bidirectional_bulk_without_deadlock() -> None:
    """Both sides write 3 MiB at once through a zero-buffer transport."""
    payload = bytes(range(256)) * (3 * 4096)

    async def body(conn: Connection, a: Host, b: Host) -> None:
        st = await conn.open_stream(ECHO)
        got = bytearray()

        async def reader() -> None:
            while len(got) < len(payload):
                got.extend(await st.receive_some())

        with trio.fail_after(60):
            async with trio.open_nursery() as n:
                n.start_soon(reader)
                await st.send_all(payload)
        assert bytes(got) == payload

    run_pair(body, pair=trio.testing.lockstep_stream_pair)


def test_slow_reader_buffers_at_most_one_window() -> None:
    seen: dict[str, int] = {}
    release = trio.Event()

    async def lazy_sink(stream: Stream) -> None:
        await release.wait()
        seen["buffered"] = len(stream._buf)
        total = 0
        while data := await stream.receive_some():
            total += len(data)
        seen["total"] = total

    async def body(conn: Connection, a: Host, b: Host) -> None:
        b.set_stream_handler("/sink", lazy_sink)
        st = await conn.open_stream("/sink")
        async with trio.open_nursery() as n:
            async def send() -> None:
                await st.send_all(b"z" * (4 << 20))
                await st.send_eof()
            n.start_soon(send)
            await trio.sleep(0.5)  # sender is stuck on the window by now
            release.set()
        with trio.fail_after(10):
            while "total" not in seen:
                await trio.sleep(0.01)
        assert seen["buffered"] <= INITIAL_WINDOW
        assert seen["total"] == 4 << 20

    run_pair(body)


def test_many_concurrent_streams() -> None:
    async def body(conn: Connection, a: Host, b: Host) -> None:
        results: list[bool] = []

        async def one(i: int) -> None:
            st = await conn.open_stream(ECHO)
            msg = f"stream {i}".encode() * 100
            await st.send_all(msg)
            await st.send_eof()
            got = bytearray()
            while data := await st.receive_some():
                got += data
            results.append(bytes(got) == msg)
            await st.aclose()

        async with trio.open_nursery() as n:
            for i in range(50):
                n.start_soon(one, i)
        assert results == [True] * 50
        assert not conn._streams  # closed streams are forgotten

    run_pair(body)


def test_remote_close_breaks_streams() -> None:
    a, b = hosts()
    server_conn: list[Connection] = []

    async def on_conn(conn: Connection) -> None:
        server_conn.append(conn)

    async def main() -> None:
        s1, s2 = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: b.serve_transport(s2, on_connection=on_conn))
            async with a.upgrade(s1, initiator=True) as conn:
                st = await conn.open_stream(ECHO)
                await server_conn[0].aclose()
                with trio.fail_after(5):
                    with pytest.raises(StreamResetError):
                        await st.receive_some()
                    await conn.wait_closed()
                assert conn.closed
                with pytest.raises(StreamResetError):
                    await conn.open_stream(ECHO)
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_tcp_listen_and_connect() -> None:
    a, b = hosts()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            addrs = await nursery.start(b.listen, "/ip4/127.0.0.1/tcp/0")
            assert addrs[0].peer_id == b.peer_id and b.listen_addrs == addrs
            async with a.connect(str(addrs[0])) as conn:
                info = await conn.identify()
                assert Multiaddr.from_bytes(info.listen_addrs[0]) == addrs[0].without_peer_id()
                assert info.observed_addr is not None
                host, _port = Multiaddr.from_bytes(info.observed_addr).tcp_address()
                assert host == "127.0.0.1"
                st = await conn.open_stream(ECHO)
                await st.send_all(b"over tcp")
                assert await st.receive_exactly(8) == b"over tcp"
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_keepalive_pings_flow() -> None:
    async def body(conn: Connection, a: Host, b: Host) -> None:
        await trio.sleep(35)
        assert not conn.closed
        (server,) = b.connections
        assert server.pings_answered >= 3

    run_pair(body, keepalive_interval=10, clock=trio.testing.MockClock(autojump_threshold=0))


async def _fake_server(transport: Any, identity: Identity, frames: list[bytes], seen: list[bytes]) -> None:
    """A hand-driven responder: real multistream + Noise, then raw (hostile) yamux frames."""
    from pyipld.libp2p import multistream, noise

    ms = multistream.Listener(["/noise"])
    while ms.state is not multistream.State.AGREED:
        ms.receive_data(await transport.receive_some())
    await transport.send_all(ms.data_to_send())
    session = noise.NoiseSession(identity, initiator=False, muxers=["/yamux/1.0.0"])
    if rest := ms.trailing_data():
        session.receive_data(rest)
    while session.state is not noise.State.TRANSPORT:
        if out := session.data_to_send():
            await transport.send_all(out)
        session.receive_data(await transport.receive_some())
    for frame in frames:
        session.send(frame)
    await transport.send_all(session.data_to_send())
    with trio.move_on_after(5):
        while data := await transport.receive_some():
            session.receive_data(data)
            while (ev := session.next_event()) is not None:
                if isinstance(ev, noise.DataReceived):
                    seen.append(ev.data)


def test_window_overrun_by_peer_closes_connection_with_goaway() -> None:
    from pyipld.libp2p.yamux import Flag, FrameType, encode_header

    server_id = Identity.from_seed(b"\x09" * 32)
    hostile = [
        encode_header(FrameType.DATA, Flag.SYN, 2, 10) + b"0123456789",
        encode_header(FrameType.DATA, 0, 2, INITIAL_WINDOW) + b"\0" * INITIAL_WINDOW,  # 10 bytes too many
    ]
    a, _ = hosts()
    seen: list[bytes] = []

    async def main() -> None:
        s1, s2 = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_fake_server, s2, server_id, hostile, seen)
            async with a.upgrade(s1, initiator=True, expected_peer=server_id.peer_id) as conn:
                with trio.fail_after(5):
                    await conn.wait_closed()
                assert isinstance(conn._error, RemoteProtocolError)
                with pytest.raises(StreamResetError):
                    await conn.open_stream(ECHO)

    trio.run(main)
    # the last thing we sent was GoAway(protocol error)
    assert b"".join(seen).endswith(bytes.fromhex("000300000000000000000001"))


def test_oversized_identify_is_rejected() -> None:
    from pyipld.errors import LimitExceededError

    async def huge_identify(stream: Stream) -> None:
        await stream.send_all(b"\x80\x80\x04" + b"\0" * 100)  # announces 64 KiB

    async def body(conn: Connection, a: Host, b: Host) -> None:
        b.set_stream_handler("/ipfs/id/1.0.0", huge_identify)
        with pytest.raises(LimitExceededError):
            await conn.identify()

    run_pair(body)


def test_pushed_back_bytes_are_not_credited_twice() -> None:
    """read_lp_message pushes surplus bytes back; the window must stay exact (regression:
    double credit let Helia send a 21 MB frame)."""
    from pyipld.libp2p.driver import read_lp_message
    from pyipld.libp2p.identify import encode_lp

    msg = encode_lp(b"m" * 999)

    async def many(stream: Stream) -> None:
        await stream.send_all(msg * 3000)  # ~3 MB in one burst

    async def body(conn: Connection, a: Host, b: Host) -> None:
        b.set_stream_handler("/many", many)
        st = await conn.open_stream("/many")
        state = conn.session._streams[st.stream_id]
        for _ in range(3000):
            assert await read_lp_message(st, 4096) == b"m" * 999
            # exact accounting: granted-but-unused + buffered (not yet credited) + owed credit
            assert state.recv_window + len(st._buf) - st._precredited + state.unacked == state.window_size
        assert await read_lp_message(st, 4096) is None

    run_pair(body)


def test_trio_half_closeable_stream_conformance() -> None:
    """trio's own conformance suite for HalfCloseableStream, on a pair of yamux streams."""

    async def main() -> None:
        async with trio.open_nursery() as outer:
            async def maker() -> tuple[Stream, Stream]:
                a, b = hosts()
                inbound: list[Stream] = []
                got = trio.Event()

                async def hold(stream: Stream) -> None:
                    inbound.append(stream)
                    got.set()
                    await trio.sleep_forever()

                b.set_stream_handler("/conformance", hold)
                s1, s2 = trio.testing.memory_stream_pair()
                outer.start_soon(b.serve_transport, s2)
                ready = trio.Event()
                box: list[Stream] = []

                async def client() -> None:
                    async with a.upgrade(s1, initiator=True) as conn:
                        box.append(await conn.open_stream("/conformance"))
                        ready.set()
                        await trio.sleep_forever()

                outer.start_soon(client)
                await ready.wait()
                await got.wait()
                return box[0], inbound[0]

            await trio.testing.check_half_closeable_stream(maker, None)
            outer.cancel_scope.cancel()

    trio.run(main)


@given(st.lists(st.tuples(st.sampled_from(["append", "front", "take", "all"]), st.binary(max_size=40),
                          st.integers(1, 60)), max_size=60))
def test_chunk_buffer_matches_a_bytearray(ops: list[tuple[str, bytes, int]]) -> None:
    # Stream and NoiseStream keep received bytes as chunks (no copy in, whole chunks out)
    from pyipld.libp2p.driver import _Chunks

    buf, ref = _Chunks(), bytearray()
    for op, data, n in ops:
        if op == "append":
            buf.append(data)
            ref += data
        elif op == "front":
            buf.push_front(data)
            ref[:0] = data
        else:
            limit = None if op == "all" else n
            got = buf.take(limit)
            want = bytes(ref[: len(ref) if limit is None else limit])
            del ref[: len(want)]
            assert got == want and type(got) is bytes
        assert len(buf) == len(ref)


RX = "/test/rx/1"


class _Recorder:
    """A StreamReceiver that records what it is handed (b"boom" makes it raise)."""

    def __init__(self) -> None:
        self.got: dict[int, bytearray] = {}
        self.ended: list[int] = []
        self.resets: list[int] = []

    def data_received(self, stream: Stream, data: bytes) -> None:
        if data.startswith(b"boom"):
            raise ValueError("boom")
        self.got.setdefault(stream.stream_id, bytearray()).extend(data)

    def eof_received(self, stream: Stream) -> None:
        self.ended.append(stream.stream_id)

    def stream_reset(self, stream: Stream) -> None:
        self.resets.append(stream.stream_id)


def test_stream_receiver_takes_streams_in_the_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = _Recorder()
    tasks: list[int] = []
    plain = Connection._serve_inbound

    async def counting(self: Connection, st: Stream, machine: Any = None) -> None:
        tasks.append(st.stream_id)
        await plain(self, st, machine)

    monkeypatch.setattr(Connection, "_serve_inbound", counting)
    payload = bytes(range(256)) * 2000  # 512 KB: more than one window, credit must flow

    async def body(conn: Connection, a: Host, b: Host) -> None:
        b.set_stream_receiver(RX, rec)
        assert RX in b.protocols and RX in (await conn.identify()).protocols
        # lazy: the SYN, the multistream lines and the first bytes arrive together
        st = await conn.open_stream(RX, lazy=True)
        await st.send_all(payload)
        await st.send_eof()
        assert await st.receive_some() == b""  # the echo, then the receiver side's FIN
        assert bytes(rec.got[st.stream_id]) == payload and rec.ended == [st.stream_id]
        assert tasks == [] and b.served[RX] == 1
        # a proposal refused first: the negotiation spans reads and goes to a task
        st2 = await conn.open_stream(["/nope/1", RX])
        await st2.send_all(b"later")
        await st2.send_eof()
        assert await st2.receive_some() == b""
        assert bytes(rec.got[st2.stream_id]) == b"later" and tasks == [st2.stream_id]
        # the peer resets: the receiver hears of it
        st3 = await conn.open_stream(RX)
        await st3.send_all(b"x")
        await st3.reset()
        with trio.fail_after(5):
            while st3.stream_id not in rec.resets:
                await trio.sleep(0.01)
        # a receiver that raises loses its stream, not the connection
        st4 = await conn.open_stream(RX)
        await st4.send_all(b"boom")
        with pytest.raises(StreamResetError):
            with trio.fail_after(5):
                await st4.receive_some()
        st5 = await conn.open_stream(ECHO)
        await st5.send_all(b"still here")
        assert await st5.receive_some() == b"still here"

    run_pair(body)


def test_stream_receiver_hears_of_a_lost_connection() -> None:
    rec = _Recorder()

    async def body(conn: Connection, a: Host, b: Host) -> None:
        b.set_stream_receiver(RX, rec)
        st = await conn.open_stream(RX)
        await st.send_all(b"partial")
        with trio.fail_after(5):
            while st.stream_id not in rec.got:
                await trio.sleep(0.01)
        await trio.aclose_forcefully(conn.channel)  # the transport dies, no FIN
        with trio.fail_after(5):
            while st.stream_id not in rec.resets:
                await trio.sleep(0.01)
        assert rec.ended == []

    run_pair(body)


def test_stream_receiver_gets_a_fin_that_came_during_a_slow_negotiation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The peer's data and FIN arrive while the negotiation task is still running: the receiver gets
    the data, then its EOF, and the stream is closed from our side too (it stayed half-open and
    counted against max_inbound_streams: kubo opens a stream per block)."""
    from pyipld.libp2p import driver

    rec = _Recorder()
    plain = driver._negotiate

    async def slow(machine: Any, *args: Any) -> Any:
        agreed = await plain(machine, *args)
        if isinstance(machine, driver.multistream.Listener):  # the listening side only
            await trio.sleep(0.3)  # the dialer has the agreement: its data and FIN come meanwhile
        return agreed

    monkeypatch.setattr(driver, "_negotiate", slow)

    async def body(conn: Connection, a: Host, b: Host) -> None:
        b.set_stream_receiver(RX, rec)
        st = await conn.open_stream(["/nope/1", RX])  # refused first: negotiated in a task
        await st.send_all(b"early")
        await st.send_eof()
        with trio.fail_after(5):
            assert await st.receive_some() == b""  # our FIN
        assert bytes(rec.got[st.stream_id]) == b"early" and rec.ended == [st.stream_id]

    run_pair(body)
