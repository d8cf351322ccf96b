"""CommP / piece CIDs: known answers from shared/fixtures/commp, fast == reference, bad sizes."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld.cid import CID
from pyipld.errors import CIDError, ConfigError
from pyipld.filecoin import _commp_accel
from pyipld.filecoin import commp as C
from pyipld.filecoin._commp_ref import (
    ref_commp,
    ref_fr32_pad,
    ref_fr32_unpad,
    ref_padded_size,
)
from tests._shared import shared_path

NATIVE = _commp_accel.load()
BACKENDS = ["python"] + (["native"] if NATIVE is not None else [])
needs_native = pytest.mark.skipif(NATIVE is None, reason="no C compiler or PYIPLD_PUREPYTHON=1: accelerator absent")


def _parse_payload(spec: str, length: int) -> bytes:
    if spec == "empty":
        return b""
    out = b""
    for part in spec.split(" + "):
        byte, count = part.split("*")
        out += bytes([int(byte, 16)]) * int(count)
    assert len(out) == length
    return out


# -- known answers ---------------------------------------------------------------------


def test_zero_commitments_match_go_data_segment_table() -> None:
    table = shared_path("fixtures", "commp", "go-data-segment", "zerocomm.bin").read_bytes()
    assert len(table) == 64 * 32
    for level in range(64):
        assert C.zero_commitment(level) == table[32 * level : 32 * level + 32], level


@pytest.mark.parametrize("backend", BACKENDS)
def test_hashhash_zero_vectors(backend: str) -> None:
    lines = shared_path("fixtures", "commp", "go-fil-commp-hashhash", "zero.txt").read_text().split()
    assert len(lines) == 18
    for line in lines:
        size, padded, cid = line.split(",")
        info = C.commp_bytes(bytes(int(size)), backend=backend)
        assert (str(info.cid_v1), info.padded_size) == (cid, int(padded)), line
        assert C.padded_piece_size(int(size)) == int(padded)


def test_hashhash_zero_vectors_with_zero_shortcut_at_any_size() -> None:
    # The zero vectors' roots are zero commitments: a zero piece of any size is instant.
    for line in shared_path("fixtures", "commp", "go-fil-commp-hashhash", "zero.txt").read_text().split():
        _, padded, cid = line.split(",")
        height = int(padded).bit_length() - 6
        assert str(C.piece_cid_v1(C.zero_commitment(height))) == cid


def test_frc0069_vectors() -> None:
    doc = json.loads(shared_path("fixtures", "commp", "frc-0069", "vectors.json").read_text())
    assert len(doc["vectors"]) == 9
    for v in doc["vectors"]:
        n = v["len"]
        if v["payload"].startswith("zeros"):
            # 32/64 GiB of zeros: the root is the zero commitment of the piece height.
            padded = C.padded_piece_size(n)
            info = C.PieceInfo(C.zero_commitment(v["height"]), n, padded)
            # The streaming path with a requested piece size reaches the same root.
            c = C.CommP()
            c.update(bytes(127))
            assert c.digest(padded).commp == info.commp
        else:
            info = C.commp_bytes(_parse_payload(v["payload"], n))
        assert info.height == v["height"]
        assert info.padding == v["padding"]
        assert str(info.cid_v2) == v["piece_cid_v2"]
        if "piece_cid_v1" in v:
            assert str(info.cid_v1) == v["piece_cid_v1"]
        if "piece_cid_v1_same_root" in v:
            assert str(info.cid_v1) == v["piece_cid_v1_same_root"]
        if "v2_hex" in v:
            assert "f" + info.cid_v2.bytes.hex() == v["v2_hex"]
        root, size, payload = C.decode_piece_cid(v["piece_cid_v2"])
        assert (root, size, payload) == (info.commp, info.padded_size, n)


@pytest.mark.parametrize("name", ["cat.png.car", "Verifiable_Data_Aggregation.png.car", "index.data"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_data_segment_vectors(name: str, backend: str) -> None:
    data = shared_path("fixtures", "commp", "go-data-segment", name).read_bytes()
    expected = {}
    for line in shared_path("fixtures", "commp", "go-data-segment", name + ".commp").read_text().splitlines():
        key, _, value = line.partition(":")
        expected[key.strip()] = value.strip()
    info = C.commp_bytes(data, backend=backend)
    assert str(info.cid_v1) == expected["CID"]
    assert info.unpadded_size == int(expected["Piece size in bytes"])


def test_data_segment_index_entries() -> None:
    # The aggregate index lists each sub-piece's CommD and padded size: recompute both.
    doc = json.loads(shared_path("fixtures", "commp", "go-data-segment", "index.json").read_text())
    text = json.dumps(doc)
    for name in ("cat.png.car", "Verifiable_Data_Aggregation.png.car"):
        info = C.commp_bytes(shared_path("fixtures", "commp", "go-data-segment", name).read_bytes())
        assert str(info.padded_size) in text
        assert str(list(info.commp)).replace(" ", "") in text.replace(" ", "")


# -- fast == reference ---------------------------------------------------------------------


_sizes = st.one_of(
    st.integers(0, 1100),
    st.integers(1, 40).map(lambda k: 127 * k),
    st.integers(1, 40).map(lambda k: 127 * k + 1),
    st.integers(1, 40).map(lambda k: 127 * k - 1),
    st.sampled_from([63, 64, 65, 96, 128, 254, 255, 508, 509, 1016, 1017, 4064, 4065]),
)


@settings(max_examples=60)
@given(size=_sizes, seed=st.integers(0, 2**32 - 1), backend=st.sampled_from(BACKENDS))
def test_fast_equals_reference_small(size: int, seed: int, backend: str) -> None:
    data = random.Random(seed).randbytes(size)
    info = C.commp_bytes(data, backend=backend)
    assert (info.commp, info.padded_size) == ref_commp(data)
    assert info.payload_size == size


@settings(max_examples=40)
@given(data=st.binary(min_size=0, max_size=40 * 127))
def test_fr32_matches_reference_and_round_trips(data: bytes) -> None:
    data = data[: len(data) - len(data) % 127]
    padded = C.fr32_pad(data)
    assert padded == ref_fr32_pad(data)
    assert C.fr32_unpad(padded) == data == ref_fr32_unpad(padded)
    for i in range(31, len(padded), 32):
        assert padded[i] & 0xC0 == 0
    if NATIVE is not None:
        assert NATIVE.fr32(data) == padded


@needs_native
@settings(max_examples=30)
@given(level=st.binary(min_size=0, max_size=64 * 20).map(lambda b: b[: len(b) - len(b) % 64]))
def test_native_nodes_match_hashlib(level: bytes) -> None:
    assert NATIVE is not None
    assert NATIVE.hash_pairs(level) == C._hash_pairs_py(level)
    assert C._hash_pairs_py(level) == b"".join(C.node(level[i : i + 32], level[i + 32 : i + 64])
                                               for i in range(0, len(level), 64))


# Around chunk boundaries (the stack / tail logic): 1..5 chunks, ± a few bytes.
_BIG = [C.CHUNK_BYTES - 1, C.CHUNK_BYTES, C.CHUNK_BYTES + 1, 2 * C.CHUNK_BYTES, 3 * C.CHUNK_BYTES + 127,
        4 * C.CHUNK_BYTES, 5 * C.CHUNK_BYTES - 3]


@pytest.mark.parametrize("size", _BIG)
def test_multi_chunk_equals_reference(size: int) -> None:
    data = random.Random(size).randbytes(size)
    expected = ref_commp(data) if size <= 2 * C.CHUNK_BYTES else None
    results = set()
    for backend in BACKENDS:
        for jobs in (1, 2) if backend != "python" or size <= 2 * C.CHUNK_BYTES else (1,):
            info = C.commp_bytes(data, backend=backend, jobs=jobs)
            results.add((info.commp, info.padded_size))
    assert len(results) == 1
    if expected is not None:
        assert results == {expected}
    elif len(BACKENDS) == 1:
        pytest.skip("only one backend here: nothing independent to compare large sizes with")


def test_multi_chunk_reference_large() -> None:
    # 3 chunks + a tail: compared with the plain reference (a few seconds).
    data = random.Random(7).randbytes(3 * C.CHUNK_BYTES + 1000)
    assert (C.commp_bytes(data).commp, C.padded_piece_size(len(data))) == ref_commp(data)


@settings(max_examples=20)
@given(cuts=st.lists(st.integers(0, 3 * 127 * 8), max_size=8), seed=st.integers(0, 1000))
def test_split_invariance(cuts: list[int], seed: int) -> None:
    data = random.Random(seed).randbytes(3 * 127 * 8 + 5)
    c = C.CommP()
    prev = 0
    for cut in sorted(cuts) + [len(data)]:
        c.update(data[prev:cut])
        prev = cut
    assert c.digest() == C.commp_bytes(data)


def test_irregular_writes_across_chunks() -> None:
    # hashhash's test: 127 B, 1/4, 254 B, 1/3, 1/4, rest.
    data = random.Random(3).randbytes(2 * C.CHUNK_BYTES + 999)
    n = len(data)
    pieces = [127, n // 4, 254, n // 3, n // 4]
    c = C.CommP()
    off = 0
    for p in pieces:
        c.update(data[off : off + p])
        off += p
    c.update(data[off:])
    assert c.digest() == C.commp_bytes(data)


def test_digest_is_not_destructive() -> None:
    data = random.Random(5).randbytes(C.CHUNK_BYTES + 77)
    c = C.CommP()
    c.update(data[:500])
    assert c.digest() == C.commp_bytes(data[:500])
    c.update(data[500:])
    assert c.digest() == C.commp_bytes(data)
    assert c.digest() == c.digest()


# -- padding to a piece size -----------------------------------------------------------------


@settings(max_examples=30)
@given(size=st.integers(0, 3000), extra=st.integers(0, 4), seed=st.integers(0, 99))
def test_padding_to_piece_size(size: int, extra: int, seed: int) -> None:
    data = random.Random(seed).randbytes(size)
    natural = ref_padded_size(size)
    target = natural << extra
    info = C.commp_bytes(data, piece_size=target)
    assert (info.commp, info.padded_size) == ref_commp(data, target)
    assert C.pad_commp(C.commp_bytes(data).commp, natural, target) == info.commp
    assert info.padding == target // 128 * 127 - size


def test_pad_multi_chunk_to_large_piece() -> None:
    data = random.Random(11).randbytes(C.CHUNK_BYTES * 2 + 5)
    base = C.commp_bytes(data)
    big = C.commp_bytes(data, piece_size=1 << 34)
    assert big.commp == C.pad_commp(base.commp, base.padded_size, 1 << 34)
    assert big.height == 29


def test_sizes() -> None:
    assert C.unpadded_piece_size(32 << 30) == 34091302912
    assert C.padded_piece_size(0) == 128
    assert C.padded_piece_size(34091302912) == 32 << 30
    assert C.padded_piece_size(34091302913) == 64 << 30
    assert C.parse_piece_size("32GiB") == 32 << 30
    assert C.parse_piece_size("256MiB") == 256 << 20
    assert C.parse_piece_size("2048") == 2048
    assert C.parse_piece_size("1k") == 1024


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 64, 127, 129, 192, 1000, 3 << 20, -128, 1 << 64])
def test_bad_piece_size(size: int) -> None:
    with pytest.raises(ConfigError):
        C.check_piece_size(size)
    with pytest.raises(ConfigError):
        C.commp_bytes(b"x" * 10, piece_size=size)


def test_piece_size_too_small_for_payload() -> None:
    with pytest.raises(ConfigError, match="too small"):
        C.commp_bytes(bytes(509), piece_size=512)
    with pytest.raises(ConfigError):
        C.pad_commp(bytes(32), 1024, 512)
    with pytest.raises(ConfigError):
        C.piece_cid_v2(bytes(32), 600, 512)


@pytest.mark.parametrize("text", ["", "GiB", "12XB", "1.5GiB", "-3"])
def test_bad_size_text(text: str) -> None:
    with pytest.raises(ConfigError):
        C.parse_piece_size(text)


def test_bad_inputs() -> None:
    with pytest.raises(ConfigError):
        C.fr32_pad(b"x" * 128)
    with pytest.raises(ConfigError):
        C.fr32_unpad(b"x" * 127)
    with pytest.raises(ConfigError):
        C.piece_cid_v1(b"x" * 31)
    with pytest.raises(ConfigError):
        C.CommP(jobs=0)
    with pytest.raises(ConfigError):
        C.CommP(backend="gpu")
    with pytest.raises(CIDError):
        C.decode_piece_cid("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e")


# -- side tap / patch ----------------------------------------------------------------------


@pytest.mark.parametrize("size", [300, C.CHUNK_BYTES + 10, 5 * C.CHUNK_BYTES + 10])
def test_writer_follows_header_patch(size: int) -> None:
    data = bytearray(random.Random(size).randbytes(size))
    out = io.BytesIO()
    w = C.CommPWriter(out)
    w.write(b"\x00" * 40)  # placeholder header
    w.write(data[40:])
    w.seek(0)
    w.write(data[:40])  # patch on close, as a CAR writer does
    w.seek(0, io.SEEK_END)
    assert out.getvalue() == data
    assert w.digest() == C.commp_bytes(bytes(data))


def test_patch_outside_first_chunk_is_refused() -> None:
    c = C.CommP()
    c.update(bytes(3 * C.CHUNK_BYTES + 5))
    c.patch(3 * C.CHUNK_BYTES + 1, b"\x01")  # unhashed tail: fine
    with pytest.raises(ConfigError):
        c.patch(C.CHUNK_BYTES + 1, b"\x01")
    with pytest.raises(ConfigError):
        c.patch(3 * C.CHUNK_BYTES + 4, b"\x01\x02")


def test_cid_shapes() -> None:
    info = C.commp_bytes(bytes(127))
    assert str(info.cid_v1).startswith("baga6ea4sea")
    assert str(info.cid_v2).startswith("bafkzcib")
    assert CID.decode(str(info.cid_v1)).codec == C.FIL_COMMITMENT_UNSEALED
    assert C.decode_piece_cid(info.cid_v1) == (info.commp, None, None)


def test_writer_survives_header_growth_with_car_writer(tmp_path: Path) -> None:
    # A placeholder root of another length makes the CAR writer shift the body:
    # the tap re-reads its output and still gives the commitment of the final bytes.
    from pyipld.car.v1 import CarV1Writer
    from pyipld.cid import CidBuilder

    builder = CidBuilder.create(1)
    blocks = [random.Random(i).randbytes(700_000) for i in range(3)]
    path = tmp_path / "x.car"
    with open(path, "w+b") as f:
        tap = C.CommPWriter(f)
        w = CarV1Writer(tap)  # type: ignore[arg-type]
        cids = [builder.cid_bytes(0x55, b) for b in blocks]
        for cid, b in zip(cids, blocks, strict=True):
            w.put(cid, b)
        w.set_roots([CID.from_bytes(c) for c in cids])  # 3 roots: longer header than the placeholder
        w.close()
        info = tap.digest()
    assert tap.stale
    assert info == C.commp_bytes(path.read_bytes())


def test_writer_patch_same_length_root(tmp_path: Path) -> None:
    from pyipld.car.v1 import CarV1Writer
    from pyipld.cid import CidBuilder

    builder = CidBuilder.create(1)
    blocks = [random.Random(i).randbytes(600_000) for i in range(4)]
    out = io.BytesIO()
    tap = C.CommPWriter(out)
    w = CarV1Writer(tap)  # type: ignore[arg-type]
    cids = [builder.cid_bytes(0x55, b) for b in blocks]
    for cid, b in zip(cids, blocks, strict=True):
        w.put(cid, b)
    w.set_roots([CID.from_bytes(cids[0])])
    w.close()
    assert not tap.stale
    assert tap.digest() == C.commp_bytes(out.getvalue())


@settings(max_examples=200)
@given(data=st.one_of(st.binary(max_size=80),
                      st.binary(max_size=60).map(lambda b: bytes.fromhex("01559120") + b),
                      st.binary(max_size=60).map(lambda b: bytes.fromhex("0181e2039220") + b)))
def test_decode_piece_cid_fuzz(data: bytes) -> None:
    from pyipld.errors import DecodeError

    try:
        root, size, payload = C.decode_piece_cid(data)
    except DecodeError:
        return
    assert len(root) == 32
    if size is not None:
        assert payload is not None and 0 <= payload <= size // 128 * 127
        assert C.decode_piece_cid(C.piece_cid_v2(root, payload, size)) == (root, size, payload)
