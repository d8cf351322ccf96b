"""Bitswap wire messages: fixture vectors, round trips, framing limits, hostile bytes."""

from __future__ import annotations

import hashlib
import json
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld.bitswap.message import (
    PROTOCOL_1_0_0,
    PROTOCOL_1_1_0,
    PROTOCOL_1_2_0,
    BitswapMessage,
    BlockPresence,
    MessageReader,
    PayloadBlock,
    Prefix,
    PresenceType,
    WantlistEntry,
    WantType,
    cid_from_prefix,
    decode_message,
    decode_prefix,
    encode_message,
    encode_prefix,
    frame_message,
)
from pyipld.cid import CID, CidBuilder
from pyipld.errors import CIDError, DecodeError, LimitExceededError

from ._shared import shared_path


@pytest.fixture(scope="module")
def vectors() -> dict[str, str]:
    data = json.loads(shared_path("fixtures", "libp2p-vectors.json").read_text())
    return data["bitswap"]  # type: ignore[no-any-return]


def test_want_block_vector(vectors: dict[str, str]) -> None:
    cid = bytes.fromhex(vectors["cid_v1_raw_bytes"])
    assert CID.decode(vectors["cid_v1_raw"]).bytes == cid
    msg = BitswapMessage(entries=(WantlistEntry(cid, 1, send_dont_have=True),))
    assert encode_message(msg).hex() == vectors["want_block_send_dont_have"]
    assert frame_message(msg).hex() == vectors["want_block_send_dont_have_length_prefixed"]
    assert decode_message(bytes.fromhex(vectors["want_block_send_dont_have"])) == msg


def test_helia_encoding_decodes_the_same(vectors: dict[str, str]) -> None:
    ours = decode_message(bytes.fromhex(vectors["want_block_send_dont_have"]))
    helia = decode_message(bytes.fromhex(vectors["want_block_as_encoded_by_helia"]))
    assert ours == helia
    assert helia.entries[0].want_type is WantType.BLOCK and helia.entries[0].send_dont_have


def test_cancel_vector(vectors: dict[str, str]) -> None:
    cid = bytes.fromhex(vectors["cid_v1_raw_bytes"])
    msg = BitswapMessage(entries=(WantlistEntry(cid, 0, cancel=True),))
    assert encode_message(msg).hex() == vectors["cancel"]


def test_response_vector_and_prefix_reconstruction(vectors: dict[str, str]) -> None:
    msg = decode_message(bytes.fromhex(vectors["response_payload_block_plus_donthave_for_cid_v0"]))
    (block,) = msg.payload
    assert block.prefix.hex() == vectors["prefix_v1_raw_sha256"]
    assert block.data == vectors["block_data_utf8"].encode()
    assert cid_from_prefix(block.prefix, block.data).hex() == vectors["cid_v1_raw_bytes"]
    (presence,) = msg.presences
    assert presence.type is PresenceType.DONT_HAVE
    assert CID.from_bytes(presence.cid).encode() == vectors["cid_v0"]
    assert encode_message(msg).hex() == vectors["response_payload_block_plus_donthave_for_cid_v0"]


@pytest.mark.parametrize("key,codec,version", [
    ("prefix_v1_raw_sha256", 0x55, 1), ("prefix_v1_dagpb_sha256", 0x70, 1),
    ("prefix_v1_dagcbor_sha256", 0x71, 1), ("prefix_v0", 0x70, 0)])
def test_prefix_vectors(vectors: dict[str, str], key: str, codec: int, version: int) -> None:
    prefix = bytes.fromhex(vectors[key])
    assert decode_prefix(prefix) == Prefix(version, codec, 0x12, 32)
    data = b"some block"
    cid = CidBuilder(version=version).cid_bytes(codec, data) if codec != 0x55 else CidBuilder(1).cid_bytes(codec, data)
    assert encode_prefix(cid) == prefix
    assert cid_from_prefix(prefix, data) == cid


def test_prefix_other_hash_and_truncation() -> None:
    data = b"x" * 100
    cid = CidBuilder.create(1, "blake2b-256").cid_bytes(0x55, data)
    assert cid_from_prefix(encode_prefix(cid), data) == cid
    truncated = bytes.fromhex("01551214")  # sha2-256 truncated to 20 bytes (go-multihash Sum)
    assert cid_from_prefix(truncated, data) == bytes.fromhex("01551214") + hashlib.sha256(data).digest()[:20]


@pytest.mark.parametrize("prefix", ["015512", "0155122000", "02551220", "00551220", "01550004",
                                    "01551221", "01551210", "0155ff0120"])
def test_bad_prefixes(prefix: str) -> None:
    with pytest.raises(CIDError):
        cid_from_prefix(bytes.fromhex(prefix), b"data")


entries = st.builds(
    WantlistEntry,
    cid=st.binary(min_size=32, max_size=32).map(lambda d: b"\x01\x55\x12\x20" + d),
    priority=st.integers(-(2**31), 2**31 - 1),
    cancel=st.booleans(),
    want_type=st.sampled_from(WantType),
    send_dont_have=st.booleans(),
)
messages = st.builds(
    BitswapMessage,
    entries=st.lists(entries, max_size=4).map(tuple),
    full=st.booleans(),
    payload=st.lists(st.builds(PayloadBlock, prefix=st.just(b"\x01\x55\x12\x20"), data=st.binary(max_size=64)),
                     max_size=3).map(tuple),
    presences=st.lists(st.builds(BlockPresence, cid=st.binary(min_size=32, max_size=32).map(
        lambda d: b"\x12\x20" + d), type=st.sampled_from(PresenceType)), max_size=3).map(tuple),
    pending_bytes=st.integers(0, 2**31 - 1),
)


@given(messages)
def test_roundtrip_1_2_0(msg: BitswapMessage) -> None:
    assert decode_message(encode_message(msg)) == msg


@given(messages)
def test_older_versions_drop_new_fields(msg: BitswapMessage) -> None:
    v11 = decode_message(encode_message(msg, PROTOCOL_1_1_0))
    assert v11.presences == () and v11.pending_bytes == 0 and v11.payload == msg.payload
    assert all(e.want_type is WantType.BLOCK and not e.send_dont_have for e in v11.entries)
    v10 = decode_message(encode_message(msg, PROTOCOL_1_0_0))
    assert v10.payload == () and v10.blocks == tuple(b.data for b in msg.payload)


@given(messages, st.lists(st.integers(1, 50), max_size=20))
def test_reader_any_fragmentation(msg: BitswapMessage, cuts: list[int]) -> None:
    stream = frame_message(msg) * 3
    reader = MessageReader()
    bodies: list[bytes] = []
    pos = 0
    for cut in cuts:
        bodies += reader.feed(stream[pos : pos + cut])
        pos += cut
    bodies += reader.feed(stream[pos:])
    assert reader.at_boundary()
    assert [decode_message(b) for b in bodies] == [msg] * 3


def test_reader_rejects_oversized_prefix_before_body() -> None:
    reader = MessageReader(max_message_bytes=1000)
    with pytest.raises(LimitExceededError, match="max_message_bytes=1000"):
        reader.feed(b"\xe9\x07")  # 1001, and no body at all
    default = MessageReader()
    with pytest.raises(LimitExceededError):
        default.feed(bytes.fromhex("8180808002"))  # 4 MiB + 1
    assert default.buffered <= 5


def test_reader_waits_for_split_prefix_and_rejects_bad_varints() -> None:
    reader = MessageReader()
    assert reader.feed(b"\x80") == [] and not reader.at_boundary()
    assert reader.feed(b"\x01") == []  # 128-byte message announced
    assert reader.feed(b"\0" * 128) == [b"\0" * 128]
    with pytest.raises(DecodeError):
        MessageReader().feed(b"\x80\x00")  # non-minimal
    with pytest.raises(DecodeError):
        MessageReader().feed(b"\xff" * 10)


def test_decode_limits() -> None:
    big = PayloadBlock(b"\x01\x55\x12\x20", b"z" * 2000)
    body = encode_message(BitswapMessage(payload=(big,)))
    with pytest.raises(LimitExceededError, match="max_block_bytes=1000"):
        decode_message(body, max_block_bytes=1000)
    cid = b"\x01\x55\x12\x20" + b"\1" * 32
    many = encode_message(BitswapMessage(entries=tuple(WantlistEntry(cid) for _ in range(11))))
    with pytest.raises(LimitExceededError, match="max_entries=10"):
        decode_message(many, max_entries=10)
    with pytest.raises(LimitExceededError):
        frame_message(BitswapMessage(payload=(big,)), max_message_bytes=1000)


@pytest.mark.parametrize("body", [
    "0a", "0a05", "0a020a00",  # truncated wantlist / entry without CID
    "0a060a040a0201ff",  # entry with a bad CID
    "0a0a0a080a0212201002",  # bad CID again (too short)
    "22050a0012200a",  # presence with empty cid
    "1a060a0401551220" + "0000",  # extra trailing garbage in payload
    "1a040a020155",  # truncated prefix
    "0b", "00",  # group wire type / field 0
])
def test_malformed_bodies(body: str) -> None:
    with pytest.raises(DecodeError):
        decode_message(bytes.fromhex(body))


def test_unknown_fields_are_skipped() -> None:
    body = bytes.fromhex("3005") + bytes.fromhex("3d01020304") + bytes.fromhex("3101020304050607082801")
    assert decode_message(body) == BitswapMessage(pending_bytes=1)


@given(st.binary(max_size=200))
def test_fuzz_decode(data: bytes) -> None:
    try:
        decode_message(data)
    except DecodeError:
        pass


@given(st.binary(max_size=50))
def test_fuzz_reader(data: bytes) -> None:
    try:
        for body in MessageReader(max_message_bytes=64).feed(data):
            assert len(body) <= 64
    except DecodeError:
        pass


def test_protocol_ids() -> None:
    assert PROTOCOL_1_2_0 == "/ipfs/bitswap/1.2.0"


@given(messages, st.lists(st.integers(1, 50), max_size=20))
def test_reader_views_equal_copies(msg: BitswapMessage, cuts: list[int]) -> None:
    # feed_views (what the sessions use) gives the same bodies as feed, however cut
    stream = frame_message(msg) * 3
    a, b = MessageReader(), MessageReader()
    got: list[bytes] = []
    want: list[bytes] = []
    pos = 0
    for cut in [*cuts, len(stream)]:
        piece = stream[pos : pos + cut]
        got += [bytes(v) for v in a.feed_views(piece)]
        want += b.feed(piece)
        pos += cut
    assert got == want and len(got) == 3 and a.at_boundary()


def test_reader_views_copy_nothing_and_check_the_limit_first() -> None:
    body = b"\x07" * 300
    frames = frame_message(BitswapMessage(blocks=(body,)), PROTOCOL_1_0_0)
    data = frames * 2 + frames[:5]
    reader = MessageReader()
    views = reader.feed_views(data)
    assert len(views) == 2 and all(isinstance(v, memoryview) and v.obj is data for v in views)
    assert reader.feed(frames[5:]) == [frames[2:]]  # the rest completes the third
    with pytest.raises(LimitExceededError):
        MessageReader(max_message_bytes=100).feed_views(frames)  # refused from the prefix


@given(messages, st.lists(st.integers(1, 50), max_size=20))
def test_reader_keeps_nothing_aliasing_a_reused_buffer(msg: BitswapMessage, cuts: list[int]) -> None:
    # pieces in a bytearray the caller overwrites after each feed: bodies still decode
    stream = frame_message(msg) * 2
    reader = MessageReader()
    got: list[bytes] = []
    pos = 0
    for cut in [*cuts, len(stream)]:
        buf = bytearray(stream[pos : pos + cut])
        pos += cut
        got += [bytes(v) for v in reader.feed_views(buf)]
        buf[:] = bytes(len(buf))
    assert [decode_message(b) for b in got] == [msg] * 2 and reader.at_boundary()


def test_reader_keeps_nothing_aliasing_a_read_only_view_of_a_reused_buffer() -> None:
    """Regression: a read-only view was trusted as immutable, but one of a bytearray is not."""
    frame = frame_message(BitswapMessage(blocks=(bytes(range(200)),)), PROTOCOL_1_0_0)
    (want,) = MessageReader().feed(frame)
    reader = MessageReader()
    buf = bytearray(frame[:-50])
    assert reader.feed_views(memoryview(buf).toreadonly()) == []
    buf[:] = bytes(len(buf))  # the caller reuses its buffer
    (got,) = reader.feed_views(frame[-50:])
    assert bytes(got) == want


def test_reader_does_not_pin_a_large_chunk_for_a_small_tail() -> None:
    # buffered counts what is held; a 5-byte partial body must not keep 1 MiB alive
    body = b"\x07" * 300
    frame = frame_message(BitswapMessage(blocks=(body,)), PROTOCOL_1_0_0)
    chunk = bytes(1 << 20)[: (1 << 20) - 10]
    data = frame_message(BitswapMessage(blocks=(chunk,)), PROTOCOL_1_0_0) + frame[:10]
    reader = MessageReader(max_message_bytes=2 << 20)
    before = sys.getrefcount(data)
    assert len(reader.feed_views(data)) == 1
    assert sys.getrefcount(data) == before and reader.buffered == 8  # 10 less the 2-byte prefix
    big_tail = frame[:4]  # most of the chunk is the partial body: kept as a view, not copied
    reader2 = MessageReader()
    reader2.feed_views(big_tail)
    assert reader2.feed(frame[4:]) == [frame[2:]]
