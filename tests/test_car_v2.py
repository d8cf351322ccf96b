"""CARv2: wrap/extract reproduce go-car and kubo fixtures, the one-pass writer, header checks."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld.car.index import INDEX_SORTED
from pyipld.car.reader import CarFile
from pyipld.car.v1 import CarV1Writer
from pyipld.car.v2 import (
    FULLY_INDEXED,
    PRAGMA,
    CarV2Header,
    CarV2Writer,
    decode_v2_header,
    encode_v2_header,
    extract_v1,
    wrap_v1,
)
from pyipld.cid import CID, RAW
from pyipld.errors import CarError, ConfigError
from pyipld.multihash import SHA2_256
from tests._shared import shared_path


def fixture(*parts: str) -> bytes:
    return shared_path("fixtures", *parts).read_bytes()


def wrap(data: bytes, **kw: object) -> bytes:
    out = io.BytesIO()
    wrap_v1(io.BytesIO(data), out, **kw)  # type: ignore[arg-type]
    return out.getvalue()


def test_wrap_sample_v1_is_sample_wrapped_v2() -> None:
    assert wrap(fixture("go-car", "sample-v1.car")) == fixture("go-car", "sample-wrapped-v2.car")


def test_wrap_without_index_is_sample_v2_indexless() -> None:
    assert wrap(fixture("go-car", "sample-v1.car"), index_codec=None) == fixture("go-car", "sample-v2-indexless.car")


@pytest.mark.parametrize(("v1", "v2"), [
    (("kubo", "t0054-dag-car-import-export", "lotus_devnet_genesis.car"),
     ("kubo", "t0054-dag-car-import-export", "lotus_devnet_genesis_v2.car")),
    (("go-car", "sample-v1.car"), ("kubo", "t0054-dag-car-import-export", "lotus_testnet_export_128_v2.car")),
])
def test_wrap_with_identity_reproduces_kubo_v2_fixtures(v1: tuple[str, ...], v2: tuple[str, ...]) -> None:
    # made by go-car's `car index`, which indexes identity CIDs but leaves characteristics 0
    assert wrap(fixture(*v1), include_identity=True) == fixture(*v2)


def test_kubo_dag_stat_v2_fixture() -> None:
    v2 = fixture("kubo", "cli", "TestDagStatCARv2.car")
    with CarFile(io.BytesIO(v2)) as car:
        index = car.read_index(strict=True)
        assert index is not None
        car.verify_index(index)
        assert [str(r) for r in car.roots] == ["bafyreifrm6uf5o4dsaacuszf35zhibyojlqclabzrms7iak67pf62jygaq"]
    out = io.BytesIO()
    extract_v1(io.BytesIO(v2), out)
    assert wrap(out.getvalue()) == v2


@pytest.mark.parametrize("name", ["sample-wrapped-v2.car", "sample-v2-indexless.car"])
def test_extract_v1(name: str) -> None:
    out = io.BytesIO()
    extract_v1(io.BytesIO(fixture("go-car", name)), out)
    assert out.getvalue() == fixture("go-car", "sample-v1.car")


def test_extract_refuses_other_versions() -> None:
    with pytest.raises(CarError, match="source version must be 2; got: 1"):
        extract_v1(io.BytesIO(fixture("go-car", "sample-v1.car")), io.BytesIO())
    with pytest.raises(CarError, match="source version must be 2; got: 42"):
        extract_v1(io.BytesIO(fixture("go-car", "sample-rootless-v42.car")), io.BytesIO())


def test_rw_bs_fixture_has_padding() -> None:
    with CarFile(shared_path("fixtures", "go-car", "sample-rw-bs-v2.car")) as car:
        assert car.v2_header == CarV2Header(1464, 273, 1737)
        assert len(list(car.iter_sections())) == 3


def _blocks(datas: list[bytes]) -> list[tuple[bytes, bytes]]:
    return [(b"\x01" + bytes([RAW]) + SHA2_256.multihash(d), d) for d in datas] + [(b"\x01\x55\x00\x02hi", b"hi")]


@given(st.lists(st.binary(max_size=200), max_size=10), st.sampled_from([None, INDEX_SORTED, 0x0401]),
       st.booleans(), st.booleans())
def test_v2_writer_equals_wrap_of_v1_writer(datas: list[bytes], codec: int | None, identity: bool,
                                            late_roots: bool) -> None:
    blocks = _blocks(datas)
    root = CID.from_bytes(blocks[0][0])
    v1 = io.BytesIO()
    with CarV1Writer(v1, [root]) as w1:
        for c, d in blocks:
            w1.put(c, d)

    class Pipe(io.BytesIO):
        def seekable(self) -> bool:
            return False

    for out in (io.BytesIO(), Pipe()):
        w2 = CarV2Writer(out, None if late_roots else [root], index_codec=codec, include_identity=identity)
        for c, d in blocks:
            w2.put(c, d)
        if late_roots:
            w2.set_roots([root])
        w2.close()
        assert out.getvalue() == wrap(v1.getvalue(), index_codec=codec, include_identity=identity)
    # and back: v1 -> v2 -> v1 is the identity
    back = io.BytesIO()
    extract_v1(io.BytesIO(out.getvalue()), back)
    assert back.getvalue() == v1.getvalue()


def test_fully_indexed_characteristic() -> None:
    data = wrap(fixture("go-car", "sample-v1.car"), include_identity=True, fully_indexed=True)
    assert data[11] == 0x80
    with CarFile(io.BytesIO(data)) as car:
        assert car.v2_header is not None and car.v2_header.fully_indexed
        assert car.v2_header.characteristics_hi == FULLY_INDEXED
    with pytest.raises(ConfigError):
        wrap(fixture("go-car", "sample-v1.car"), fully_indexed=True)


def test_header_round_trip_and_checks() -> None:
    h = CarV2Header(51, 100, 151, FULLY_INDEXED, 0)
    assert decode_v2_header(encode_v2_header(h)) == h
    with pytest.raises(CarError, match="invalid data payload offset"):
        decode_v2_header(encode_v2_header(CarV2Header(50, 100, 0)))
    with pytest.raises(CarError, match="invalid data payload size"):
        decode_v2_header(encode_v2_header(CarV2Header(51, 0, 0)))
    with pytest.raises(CarError, match="inside the data payload"):
        decode_v2_header(encode_v2_header(CarV2Header(51, 100, 120)))
    with pytest.raises(CarError, match="past the end"):
        decode_v2_header(encode_v2_header(CarV2Header(51, 100, 0)), file_size=140)
    with pytest.raises(CarError, match="past the end"):
        decode_v2_header(encode_v2_header(CarV2Header(51, 100, 200)), file_size=160)
    with pytest.raises(CarError, match="unexpected EOF"):
        decode_v2_header(b"\0" * 39)


def test_payload_is_confined_to_data_size() -> None:
    v2 = bytearray(fixture("go-car", "sample-wrapped-v2.car"))
    # claim a shorter payload: the last section now runs past it
    short = CarV2Header(51, 479907 - 10, 0)
    v2[11:51] = encode_v2_header(short)
    with CarFile(io.BytesIO(bytes(v2))) as car, pytest.raises(CarError, match="past the end of the data payload"):
        list(car.iter_sections())


def test_inner_header_must_be_v1() -> None:
    data = PRAGMA + encode_v2_header(CarV2Header(51, 11, 0)) + PRAGMA
    with pytest.raises(CarError, match="expected 1, got 2"):
        CarFile(io.BytesIO(data))


@pytest.mark.parametrize("background", [False, True])
def test_v2_writer_with_a_root_of_another_length(background: bool) -> None:
    # CIDv0 root (34 bytes) vs the CIDv1 placeholder (36): the payload is moved, offsets follow
    from pyipld.dagpb import encode_pbnode

    blocks = _blocks([b"a" * 1000, b"b" * 2000])
    node = encode_pbnode([], b"\x08\x02")
    root = CID(0, 0x70, SHA2_256.multihash(node))
    blocks.append((root.bytes, node))
    out = io.BytesIO()
    w = CarV2Writer(out, background=background)
    for c, d in blocks:
        w.put(c, d)
    w.set_roots([root])
    w.close()
    v1 = io.BytesIO()
    with CarV1Writer(v1, [root]) as w1:
        for c, d in blocks:
            w1.put(c, d)
    assert out.getvalue() == wrap(v1.getvalue())
    with CarFile(io.BytesIO(out.getvalue())) as car:
        index = car.read_index(strict=True)
        assert index is not None
        car.verify_index(index)
