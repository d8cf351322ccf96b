"""yamux session machine: frame vectors, flow control, hostile frames, fragmentation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld.errors import LocalProtocolError, PeerTimeoutError, RemoteProtocolError
from pyipld.libp2p.yamux import (
    INITIAL_WINDOW,
    MAX_WINDOW,
    ConnectionTerminated,
    DataReceived,
    Event,
    Flag,
    FrameType,
    GoAwayCode,
    GoAwayReceived,
    PingReceived,
    PongReceived,
    StreamEnded,
    StreamOpened,
    StreamReset,
    StreamState,
    WindowUpdated,
    YamuxSession,
    encode_header,
)
from tests._libp2p_vectors import vectors


def events(s: YamuxSession) -> list[Event]:
    out = []
    while (ev := s.next_event()) is not None:
        out.append(ev)
    return out


def pair() -> tuple[YamuxSession, YamuxSession]:
    return YamuxSession(is_client=True), YamuxSession(is_client=False)


def move(a: YamuxSession, b: YamuxSession) -> None:
    out = a.data_to_send()
    if out:
        b.receive_data(out)


def test_frame_vectors() -> None:
    v = vectors("yamux_frames")
    assert encode_header(FrameType.WINDOW_UPDATE, Flag.SYN, 1, 0).hex() == v["open_stream_1_window_update_syn"]
    assert encode_header(FrameType.DATA, Flag.SYN, 1, 20).hex() == v["data_stream_1_syn_20_bytes_header"]
    assert encode_header(FrameType.WINDOW_UPDATE, Flag.ACK, 2, 0).hex() == v["ack_inbound_stream_2"]
    assert encode_header(FrameType.WINDOW_UPDATE, 0, 2, 256 * 1024).hex() == v["window_update_stream_2_plus_256KiB"]
    assert encode_header(FrameType.WINDOW_UPDATE, Flag.FIN, 1, 0).hex() == v["fin_stream_1"]
    assert encode_header(FrameType.WINDOW_UPDATE, Flag.RST, 3, 0).hex() == v["rst_stream_3"]
    assert encode_header(FrameType.GO_AWAY, 0, 0, 1).hex() == v["go_away_protocol_error"]
    c = YamuxSession(is_client=True)
    assert c.open_stream() == 1
    assert c.data_to_send().hex() == v["open_stream_1_window_update_syn"]
    c.send_eof(1)
    assert c.data_to_send().hex() == v["fin_stream_1"]
    c.go_away()
    assert c.data_to_send().hex() == v["go_away_normal"]


def test_ping_vectors() -> None:
    v = vectors("yamux_frames")
    s = YamuxSession(is_client=False)
    s.receive_data(bytes.fromhex(v["ping_syn_opaque_7"]))
    assert events(s) == [PingReceived(7)]
    assert s.data_to_send().hex() == v["ping_ack_opaque_7"]
    c = YamuxSession(is_client=True)
    op = c.ping()
    s.receive_data(c.data_to_send())
    c.receive_data(s.data_to_send())
    assert events(c) == [PongReceived(op)]
    c.receive_data(bytes.fromhex(v["ping_ack_opaque_7"]))  # unsolicited ACK: ignored
    assert events(c) == []


def test_stream_lifecycle_and_ack() -> None:
    c, s = pair()
    sid = c.open_stream()
    assert c.send_data(sid, b"hello") == 5
    move(c, s)
    assert events(s) == [StreamOpened(1), DataReceived(1, b"hello")]
    ack = s.data_to_send()
    assert ack[:12] == bytes.fromhex("000100020000000100000000")  # ACK at once
    c.receive_data(ack)
    sid2 = c.open_stream()
    assert sid2 == 3
    s.send_data(1, b"world")
    s.send_eof(1)
    move(s, c)
    assert events(c) == [DataReceived(1, b"world"), StreamEnded(1)]
    assert c.stream_state(1) is StreamState.REMOTE_CLOSED
    c.send_eof(1)
    assert c.stream_state(1) is StreamState.CLOSED
    move(c, s)
    assert StreamEnded(1) in events(s) and s.stream_state(1) is StreamState.CLOSED
    with pytest.raises(LocalProtocolError):
        c.send_data(1, b"late")


def test_server_opens_even_ids() -> None:
    c, s = pair()
    assert s.open_stream() == 2 and s.open_stream() == 4
    move(s, c)
    assert events(c) == [StreamOpened(2), StreamOpened(4)]


def test_send_window_limits_and_updates() -> None:
    c, s = pair()
    sid = c.open_stream()
    big = b"x" * (INITIAL_WINDOW + 1000)
    assert c.send_data(sid, big) == INITIAL_WINDOW
    assert c.send_data(sid, b"more") == 0
    move(c, s)
    got = sum(len(e.data) for e in events(s) if isinstance(e, DataReceived))
    assert got == INITIAL_WINDOW
    s.data_to_send()
    s.stream_consumed(sid, INITIAL_WINDOW // 2 - 1)
    assert s.data_to_send() == b""  # not yet half a window
    s.stream_consumed(sid, 1)
    upd = s.data_to_send()
    # half the window returned plus auto-tune growth to 512 KiB
    assert upd == encode_header(FrameType.WINDOW_UPDATE, 0, sid, INITIAL_WINDOW // 2 + INITIAL_WINDOW)
    c.receive_data(upd)
    assert events(c) == [WindowUpdated(sid, INITIAL_WINDOW // 2 + INITIAL_WINDOW)]
    assert s.receive_window(sid) == 2 * INITIAL_WINDOW


def test_autotune_reaches_max_window() -> None:
    c, s = pair()
    sid = c.open_stream()
    move(c, s)
    events(s)
    s.data_to_send()
    for _ in range(200):
        n = c.send_data(sid, b"\0" * c.send_window(sid))
        move(c, s)
        s.stream_consumed(sid, n)
        move(s, c)
        events(s), events(c)
        if s.receive_window(sid) == MAX_WINDOW:
            break
    assert s.receive_window(sid) == MAX_WINDOW
    assert c.send_window(sid) <= MAX_WINDOW


def test_window_overrun_is_a_protocol_error() -> None:
    s = YamuxSession(is_client=False)
    s.receive_data(encode_header(FrameType.WINDOW_UPDATE, Flag.SYN, 1, 0))
    s.data_to_send()
    s.receive_data(encode_header(FrameType.DATA, 0, 1, INITIAL_WINDOW) + b"\0" * INITIAL_WINDOW)
    with pytest.raises(RemoteProtocolError, match="window") as info:
        s.receive_data(encode_header(FrameType.DATA, 0, 1, 1) + b"\0")
    assert info.value.error_code == GoAwayCode.PROTOCOL_ERROR
    assert s.data_to_send() == bytes.fromhex(vectors("yamux_frames")["go_away_protocol_error"])
    with pytest.raises(LocalProtocolError):
        s.receive_data(b"\0")


def test_oversized_frame_rejected_from_header_alone() -> None:
    s = YamuxSession(is_client=False)
    with pytest.raises(RemoteProtocolError):
        s.receive_data(encode_header(FrameType.DATA, Flag.SYN, 1, 0xFFFFFFFF))  # no payload needed


@pytest.mark.parametrize(
    "frame",
    [
        bytes([1]) + encode_header(0, 0, 0, 0)[1:],  # version 1
        encode_header(7, 0, 0, 0),  # unknown type
        encode_header(FrameType.WINDOW_UPDATE, Flag.SYN, 1, 0),  # client receiving its own (odd) parity
        encode_header(FrameType.DATA, 0, 0, 0),  # data on stream 0
        encode_header(FrameType.PING, Flag.SYN | Flag.ACK, 0, 1),
        encode_header(FrameType.PING, Flag.SYN, 3, 1),
        encode_header(FrameType.GO_AWAY, 0, 5, 0),
    ],
)
def test_hostile_frames(frame: bytes) -> None:
    c = YamuxSession(is_client=True)
    with pytest.raises(RemoteProtocolError):
        c.receive_data(frame)
    assert c.closed


def test_data_after_fin_and_duplicate_syn() -> None:
    c, s = pair()
    sid = c.open_stream()
    c.send_eof(sid)
    move(c, s)
    with pytest.raises(RemoteProtocolError, match="REMOTE_CLOSED"):
        s.receive_data(encode_header(FrameType.DATA, 0, sid, 1) + b"x")
    c, s = pair()
    c.open_stream()
    move(c, s)
    with pytest.raises(RemoteProtocolError, match="already open"):
        s.receive_data(encode_header(FrameType.WINDOW_UPDATE, Flag.SYN, 1, 0))


def test_unknown_stream_frames_ignored() -> None:
    s = YamuxSession(is_client=False)
    s.receive_data(encode_header(FrameType.DATA, 0, 9, 3) + b"abc" + encode_header(FrameType.WINDOW_UPDATE, 0, 9, 5))
    assert events(s) == [] and s.data_to_send() == b""


def test_reset() -> None:
    c, s = pair()
    sid = c.open_stream()
    move(c, s)
    events(s)
    s.reset_stream(sid)
    assert s.stream_state(sid) is StreamState.CLOSED
    move(s, c)
    assert events(c) == [StreamReset(sid)]
    assert c.stream_state(sid) is StreamState.CLOSED
    c.reset_stream(sid)  # already gone: no-op


def test_inbound_stream_limit() -> None:
    s = YamuxSession(is_client=False, max_inbound_streams=2)
    for sid in (1, 3, 5):
        s.receive_data(encode_header(FrameType.WINDOW_UPDATE, Flag.SYN, sid, 0))
    assert events(s) == [StreamOpened(1), StreamOpened(3)]
    assert s.data_to_send().endswith(encode_header(FrameType.WINDOW_UPDATE, Flag.RST, 5, 0))
    s.reset_stream(1)
    s.receive_data(encode_header(FrameType.WINDOW_UPDATE, Flag.SYN, 7, 0))
    assert events(s) == [StreamOpened(7)]


def test_go_away() -> None:
    c, s = pair()
    s.go_away()
    move(s, c)
    assert events(c) == [GoAwayReceived(0)]
    with pytest.raises(LocalProtocolError):
        c.open_stream()
    with pytest.raises(LocalProtocolError):
        s.open_stream()


def test_eof() -> None:
    c, s = pair()
    c.open_stream()
    move(c, s)
    s.receive_data(b"")
    assert events(s)[-1] == ConnectionTerminated()
    c2 = YamuxSession(is_client=True)
    c2.receive_data(encode_header(FrameType.DATA, 0, 2, 5) + b"ab")
    with pytest.raises(RemoteProtocolError, match="EOF"):
        c2.receive_data(b"")


def test_keepalive_and_ping_timeout() -> None:
    c = YamuxSession(is_client=True, keepalive_interval=10, ping_timeout=5)
    assert c.get_timer() is None
    c.handle_timer(100.0)
    assert c.get_timer() == 110.0 and c.data_to_send() == b""
    c.handle_timer(110.0)
    assert c.data_to_send() == encode_header(FrameType.PING, Flag.SYN, 0, 1)
    assert c.get_timer() == 115.0
    c.handle_timer(114.9)
    with pytest.raises(PeerTimeoutError):
        c.handle_timer(115.0)


def test_pong_clears_ping_timer() -> None:
    c, s = pair()
    c.ping(now=0.0)
    move(c, s)
    move(s, c)
    c.handle_timer(1000.0)  # answered: no timeout
    assert not c.closed


def test_local_misuse() -> None:
    c = YamuxSession(is_client=True)
    with pytest.raises(LocalProtocolError):
        c.send_data(1, b"x")
    with pytest.raises(LocalProtocolError):
        YamuxSession(is_client=True, initial_window=1000)


def _script() -> bytes:
    """A server-side byte stream: open, data, window update, ping, FIN, another stream, RST."""
    return (
        encode_header(FrameType.WINDOW_UPDATE, Flag.SYN, 1, 0)
        + encode_header(FrameType.DATA, 0, 1, 10) + b"0123456789"
        + encode_header(FrameType.PING, Flag.SYN, 0, 42)
        + encode_header(FrameType.WINDOW_UPDATE, 0, 1, 100)
        + encode_header(FrameType.DATA, Flag.SYN, 3, 3) + b"abc"
        + encode_header(FrameType.DATA, Flag.FIN, 1, 2) + b"xy"
        + encode_header(FrameType.WINDOW_UPDATE, Flag.RST, 3, 0)
        + encode_header(FrameType.GO_AWAY, 0, 0, 0)
    )


@settings(max_examples=80)
@given(st.lists(st.integers(1, 40), max_size=40))
def test_fragmentation_gives_same_events(cuts: list[int]) -> None:
    wire = _script()
    ref = YamuxSession(is_client=False)
    ref.receive_data(wire)
    expected, expected_out = events(ref), ref.data_to_send()
    s = YamuxSession(is_client=False)
    pos = 0
    for c in cuts:
        if wire[pos : pos + c]:
            s.receive_data(wire[pos : pos + c])
        pos += c
    if wire[pos:]:
        s.receive_data(wire[pos:])
    assert events(s) == expected
    assert s.data_to_send() == expected_out
    assert PingReceived(42) in expected and StreamReset(3) in expected


@settings(max_examples=80)
@given(st.binary(max_size=300))
def test_fuzz(blob: bytes) -> None:
    s = YamuxSession(is_client=False)
    try:
        s.receive_data(blob)
    except RemoteProtocolError:
        assert s.closed


@settings(max_examples=30)
@given(st.lists(st.sampled_from(["open", "send", "eof", "reset", "consume", "ping"]), max_size=30))
def test_random_command_orders_stay_consistent(ops: list[str]) -> None:
    """Any sequence of legal commands on one side is accepted by the other side."""
    c, s = pair()
    streams: list[int] = []
    for op in ops:
        try:
            if op == "open" or not streams:
                streams.append(c.open_stream())
            elif op == "send":
                c.send_data(streams[-1], b"d" * 1000)
            elif op == "eof":
                c.send_eof(streams[-1])
            elif op == "reset":
                c.reset_stream(streams.pop())
            elif op == "consume":
                s.stream_consumed(streams[-1], 1000)
            else:
                c.ping()
        except LocalProtocolError:
            continue  # illegal in this state: refused without harm
        move(c, s)
        move(s, c)
        events(s), events(c)
    assert not c.closed and not s.closed


def test_over_consumption_is_clamped() -> None:
    """A caller that reports more consumed bytes than it received cannot inflate the window."""
    c, s = pair()
    sid = c.open_stream()
    c.send_data(sid, b"x" * 1000)
    move(c, s)
    s.data_to_send()
    s.stream_consumed(sid, 10 * INITIAL_WINDOW)
    upd = s.data_to_send()
    assert upd == b""  # only 1000 bytes were really received: below half a window
    c.send_data(sid, b"y" * (INITIAL_WINDOW - 1000))
    move(c, s)
    s.stream_consumed(sid, 10 * INITIAL_WINDOW)
    st = s._streams[sid]
    assert st.recv_window <= st.window_size


def test_session_window_budget_caps_growth() -> None:
    c = YamuxSession(is_client=True)
    s = YamuxSession(is_client=False, max_session_window=3 * INITIAL_WINDOW)
    sids = [c.open_stream() for _ in range(2)]
    move(c, s)
    events(s)
    s.data_to_send()
    for _ in range(20):
        for sid in sids:
            n = c.send_data(sid, b"\0" * c.send_window(sid))
            move(c, s)
            s.stream_consumed(sid, n)
            move(s, c)
        events(s), events(c)
    # 2 x 256 KiB initial + at most 256 KiB of growth in total
    assert sum(s.receive_window(sid) for sid in sids) == 3 * INITIAL_WINDOW
    s.reset_stream(sids[0])
    assert s._window_total == s.receive_window(sids[1])


@pytest.mark.parametrize("state", [StreamState.OPEN, StreamState.LOCAL_CLOSED, StreamState.REMOTE_CLOSED])
@pytest.mark.parametrize("command", ["send_data", "send_eof", "reset_stream"])
def test_local_commands_follow_the_transition_table(state: StreamState, command: str) -> None:
    """Every (state, local command) pair either follows _STREAM_TRANSITIONS or is refused."""
    from pyipld.libp2p.yamux import _STREAM_TRANSITIONS, _In

    c, s = pair()
    sid = c.open_stream()
    move(c, s)
    move(s, c)
    if state is StreamState.LOCAL_CLOSED:
        c.send_eof(sid)
    elif state is StreamState.REMOTE_CLOSED:
        s.send_eof(sid)
        move(s, c)
    assert c.stream_state(sid) is state
    inp = {"send_data": _In.SEND_DATA, "send_eof": _In.SEND_FIN, "reset_stream": _In.SEND_RST}[command]
    expected = _STREAM_TRANSITIONS.get((state, inp))
    args = (sid, b"x") if command == "send_data" else (sid,)
    if expected is None:
        with pytest.raises(LocalProtocolError):
            getattr(c, command)(*args)
        assert c.stream_state(sid) is state and not c.closed
    else:
        getattr(c, command)(*args)
        assert c.stream_state(sid) is expected
        move(c, s)  # and the peer accepts what we sent
        assert not s.closed


@settings(max_examples=40)
@given(st.lists(st.integers(1, 40), max_size=40), st.sampled_from(["bytes", "bytearray", "memoryview"]))
def test_fragments_of_any_buffer_type_and_reused_buffers(cuts: list[int], kind: str) -> None:
    # bytes are parsed in place, other buffers are copied first: a caller that reuses its
    # buffer after receive_data must not change what was parsed or what is still pending
    wire = _script()
    ref = YamuxSession(is_client=False)
    ref.receive_data(wire)
    expected = events(ref)
    s = YamuxSession(is_client=False)
    pos = 0
    for c in [*cuts, len(wire)]:
        piece = wire[pos : pos + c]
        pos += c
        if not piece:
            continue
        buf = bytearray(piece)
        s.receive_data(bytes(buf) if kind == "bytes" else buf if kind == "bytearray" else memoryview(buf))
        buf[:] = b"\xff" * len(buf)  # the caller reuses its buffer
    assert events(s) == expected


def test_protocol_error_after_a_pending_partial_frame() -> None:
    # the failure path drops the pending bytes while the parser still looks at them
    s = YamuxSession(is_client=False)
    frame = encode_header(FrameType.DATA, Flag.SYN, 1, 5) + b"hello"
    s.receive_data(frame[:7])
    assert s.buffered_bytes == 7
    with pytest.raises(RemoteProtocolError, match="version"):
        s.receive_data(frame[7:] + b"\x01" + bytes(11))  # complete frame, then version 1
    assert s.closed and s.buffered_bytes == len(s.data_to_send()) == 24  # the ACK, GoAway(1); no payload held
    assert StreamOpened(1) in events(s)
