"""CARv2 indexes: go-car's two formats byte for byte, corrupt indexes, the legacy body."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld.car.index import (
    INDEX_SORTED,
    MULTIHASH_INDEX_SORTED,
    build_index,
    decode_index,
    decode_legacy_index_sorted,
    encode_index,
    index_codec_by_name,
    iter_index_records,
    scan_index,
)
from pyipld.car.reader import CarFile
from pyipld.car.v1 import CarV1Reader
from pyipld.cid import CID
from pyipld.errors import CarIndexError, ConfigError, DecodeError
from pyipld.multihash import SHA2_256, encode_multihash, get_hash
from tests._shared import shared_path


def sample_records() -> list[tuple[bytes, int]]:
    with open(shared_path("fixtures", "go-car", "sample-v1.car"), "rb") as f:
        return [(h.cid, h.offset) for h in CarV1Reader(f).iter_heads()]


def test_multihash_index_sorted_is_byte_identical() -> None:
    want = shared_path("fixtures", "go-car", "sample-multihash-index-sorted.carindex").read_bytes()
    assert encode_index(build_index(sample_records())) == want
    assert want[:2] == b"\x81\x08"


def test_index_sorted_with_identity_is_byte_identical() -> None:
    want = shared_path("fixtures", "go-car", "sample-index.carindex").read_bytes()
    assert encode_index(build_index(sample_records(), INDEX_SORTED, include_identity=True)) == want
    assert want[:2] == b"\x80\x08"
    widths = sorted(decode_index(want).buckets[None])
    assert widths == [18, 19, 20, 21, 40]


@pytest.mark.parametrize("name", ["sample-index.carindex", "sample-multihash-index-sorted.carindex"])
def test_decode_then_lookup_every_block(name: str) -> None:
    raw = shared_path("fixtures", "go-car", name).read_bytes()
    index = decode_index(raw, strict=True)
    assert encode_index(index) == raw
    records = sample_records()
    listed = 0
    for cid, offset in records:
        hits = index.find(cid)
        if CID.from_bytes(cid).hash_code == 0 and index.codec == MULTIHASH_INDEX_SORTED:
            assert hits == []
            continue
        assert hits == [offset]
        listed += 1
    assert listed == len(index)


def test_index_of_wrapped_v2_matches_detached_file() -> None:
    with CarFile(shared_path("fixtures", "go-car", "sample-wrapped-v2.car")) as car:
        raw = car.index_bytes()
    assert raw == shared_path("fixtures", "go-car", "sample-multihash-index-sorted.carindex").read_bytes()


def test_hex_index_vectors() -> None:
    vectors = json.loads(shared_path("fixtures", "go-car", "inspect-hex-vectors.json").read_text())
    with CarFile(io.BytesIO(bytes.fromhex(vectors["index_valid_hex"]))) as car:
        index = car.read_index(allow_legacy=False, strict=True)
        assert index is not None and len(index) == 1
        car.verify_index(index)
    for case in vectors["index_errors"]:
        with CarFile(io.BytesIO(bytes.fromhex(case["hex"]))) as car, pytest.raises(CarIndexError) as info:
            car.read_index(allow_legacy=False)
        go = case["index_error"]
        if "overflowing" in go:
            assert go in str(info.value)
        else:
            assert "unexpected EOF" in str(info.value)


def test_legacy_index_of_carv2_basic() -> None:
    spec = json.loads(shared_path("fixtures", "ipld-specs", "carv2-basic.json").read_text())
    with CarFile(shared_path("fixtures", "ipld-specs", "carv2-basic.car")) as car:
        raw = car.index_bytes()
        assert raw is not None
        with pytest.raises(CarIndexError, match="unknown index codec"):
            decode_index(raw)
        index = decode_legacy_index_sorted(raw)
        car.verify_index(index)
        base = car.payload_offset
    for block in spec["blocks"]:
        assert [base + o for o in index.find(CID.decode(block["cid"]["/"]))] == [block["offset"]]


def test_malformed_indexes() -> None:
    with pytest.raises(CarIndexError, match="width must be at least 8"):
        decode_index(b"\x80\x08" + bytes.fromhex("01000000" "04000000" "0000000000000000"))
    with pytest.raises(CarIndexError, match="not a multiple"):
        decode_index(b"\x80\x08" + bytes.fromhex("01000000" "28000000" "0500000000000000") + b"\0" * 5)
    with pytest.raises(CarIndexError, match="unknown index codec"):
        decode_index(b"\x01")
    with pytest.raises(CarIndexError, match="trailing"):
        decode_index(b"\x80\x08" + bytes(4) + b"x", strict=True)
    unsorted = b"\x80\x08" + bytes.fromhex("01000000" "09000000" "1200000000000000") + (
        b"\x02" + bytes(8) + b"\x01" + bytes(8))
    with pytest.raises(CarIndexError, match="not sorted"):
        decode_index(unsorted, strict=True)


def test_codec_names() -> None:
    assert index_codec_by_name("car-index-sorted") == INDEX_SORTED
    assert index_codec_by_name("car-multihash-index-sorted") == MULTIHASH_INDEX_SORTED
    with pytest.raises(ConfigError):
        index_codec_by_name("nope")


hash_names = st.sampled_from(["sha2-256", "sha2-512", "blake2b-256", "identity"])


@given(st.lists(st.tuples(st.binary(max_size=40), hash_names, st.integers(0, 2**40)), max_size=30),
       st.sampled_from([INDEX_SORTED, MULTIHASH_INDEX_SORTED]), st.booleans())
def test_build_encode_decode_round_trip(entries: list[tuple[bytes, str, int]], codec: int, identity: bool) -> None:
    records = []
    for data, name, offset in entries:
        fn = get_hash(name)
        records.append((b"\x01\x55" + encode_multihash(fn.code, fn.digest(data)), offset))
    index = build_index(records, codec, include_identity=identity)
    raw = encode_index(index)
    again = decode_index(raw, strict=True)
    assert encode_index(again) == raw
    for cid, offset in records:
        if CID.from_bytes(cid).hash_code == 0 and not identity:
            continue
        assert offset in again.find(cid)


@given(st.binary(max_size=300))
def test_fuzz_decode_index(data: bytes) -> None:
    for fn in (decode_index, decode_legacy_index_sorted):
        try:
            fn(data)
        except DecodeError:
            pass
    try:
        decode_index(b"\x81\x08" + data, strict=True)
    except DecodeError:
        pass


def test_digest_only_lookup_matches_other_codecs() -> None:
    # go-car indexes digests only: the same bytes under dag-pb and raw share an entry
    digest_cid = b"\x01\x55" + SHA2_256.multihash(b"x")
    index = build_index([(digest_cid, 100)])
    assert index.find(b"\x01\x70" + SHA2_256.multihash(b"x")) == [100]


@given(st.integers(1, 700), st.integers(1, 700), st.integers(0, 2**32))
def test_fenced_lookup_equals_a_linear_scan(count: int, distinct: int, salt: int) -> None:
    """Buckets of up to 11 fences (every 64th digest) with runs of equal digests: each lookup finds
    exactly the offsets a scan of every entry finds, for every digest present and some absent."""
    data = [f"{salt}:{i % distinct}".encode() for i in range(count)]
    records = [(b"\x01\x55" + SHA2_256.multihash(d), 1000 + i) for i, d in enumerate(data)]
    index = decode_index(encode_index(build_index(records)), strict=True)
    every = list(index)
    for d in sorted(set(data)) + [f"{salt}:absent{i}".encode() for i in range(5)]:
        digest = SHA2_256.digest(d)
        want = sorted(r.offset for r in every if r.digest == digest)
        assert want or b"absent" in d
        assert sorted(index.find_digest(SHA2_256.code, digest)) == want
        assert sorted(index.find(b"\x01\x70" + SHA2_256.multihash(d))) == want


def _streamed(raw: bytes) -> list[object]:
    return list(iter_index_records(io.BytesIO(raw)))


@given(st.lists(st.tuples(st.binary(max_size=40), hash_names, st.integers(0, 2**64 - 1)), max_size=30),
       st.sampled_from([INDEX_SORTED, MULTIHASH_INDEX_SORTED]), st.booleans())
def test_streamed_records_equal_decoded(entries: list[tuple[bytes, str, int]], codec: int, identity: bool) -> None:
    """iter_index_records (a chunk at a time, for `car detach-index list`) == decode_index's records."""
    records = [(b"\x01\x55" + encode_multihash(get_hash(name).code, get_hash(name).digest(data)), offset)
               for data, name, offset in entries]
    raw = encode_index(build_index(records, codec, include_identity=identity))
    assert _streamed(raw) == list(decode_index(raw))
    assert scan_index(io.BytesIO(raw + b"tail"), len(raw) + 4) is True


@pytest.mark.parametrize("name", ["sample-index.carindex", "sample-multihash-index-sorted.carindex"])
def test_streamed_fixture_records(name: str) -> None:
    raw = shared_path("fixtures", "go-car", name).read_bytes()
    want = list(decode_index(raw))
    assert len(want) in (1043, 1049) and _streamed(raw) == want
    for cut in (1, 2, 7, 30, len(raw) // 2, len(raw) - 1):  # truncated: the scan says so before any record
        with pytest.raises(CarIndexError, match="unexpected EOF"):
            scan_index(io.BytesIO(raw[:cut]), cut)


@given(st.binary(max_size=300), st.sampled_from([b"", b"\x80\x08", b"\x81\x08"]))
def test_fuzz_streamed_index(data: bytes, head: bytes) -> None:
    """Any input: the stream either fails with CarIndexError or gives decode_index's records; the
    scan agrees (it fails exactly when decode_index does, bar the buckets' order)."""
    raw = head + data
    try:
        streamed: list[object] | None = _streamed(raw)
    except CarIndexError:
        streamed = None
    try:
        decoded: list[object] | None = list(decode_index(raw))
    except CarIndexError:
        decoded = None
    try:
        ordered: bool | None = scan_index(io.BytesIO(raw), len(raw))
    except CarIndexError:
        ordered = None
    assert (ordered is None) == (decoded is None) or (decoded is None and ordered is False)
    if streamed is not None:
        assert streamed == decoded and ordered is True
    elif decoded is not None:
        assert ordered is False  # only an index out of order is refused by the stream


def test_streamed_index_of_an_endless_input_is_constant_memory() -> None:
    """A valid header and then zeros for ever: records come a chunk at a time (old `car detach-index
    list` read the whole input first)."""
    import itertools
    import tracemalloc

    class Endless(io.RawIOBase):
        head = b"\x80\x08" + (1).to_bytes(4, "little") + (40).to_bytes(4, "little") + (40 << 40).to_bytes(8, "little")

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            n = len(b)
            take, self.head = self.head[:n], self.head[n:]
            b[: len(take)] = take
            b[len(take) : n] = bytes(n - len(take))
            return n

    tracemalloc.start()
    try:
        got = list(itertools.islice(iter_index_records(io.BufferedReader(Endless())), 200_000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got[-1].digest == bytes(32) and got[-1].offset == 0 and got[0].code is None
    assert peak < 64 << 20  # the list of 200,000 records itself, plus one 1 MiB chunk
