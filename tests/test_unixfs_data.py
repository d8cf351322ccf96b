"""The UnixFS Data message: spec bytes, round trips, negative mtime, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld.errors import DecodeError, UnixFSError
from pyipld.unixfs.data import (
    DataType,
    Mtime,
    UnixFSData,
    decode_unixfs_data,
    encode_unixfs_data,
)


@pytest.mark.parametrize(("msg", "hexbytes"), [
    # shared/spec/unixfs-importer.md §6: empty file, mode 0640, mtime 1604320482
    (UnixFSData(DataType.FILE, filesize=0, mode=0o640, mtime=Mtime(1604320482)), "0802180038a003420608e2f9fffc05"),
    # §1.4: empty dag-pb file, basic directory, "hello world" leaf, size-4 root
    (UnixFSData(DataType.FILE, filesize=0), "08021800"),
    (UnixFSData(DataType.DIRECTORY), "0801"),
    (UnixFSData(DataType.FILE, data=b"hello world", filesize=11), "0802120b68656c6c6f20776f726c64180b"),
    (UnixFSData(DataType.FILE, filesize=10, blocksizes=(4, 4, 2)), "0802180a200420042002"),
    # §4.3 HAMT shard Data
    (UnixFSData(DataType.HAMT_SHARD, data=bytes.fromhex("0100000000004000000000000000"), hash_type=0x22,
                fanout=256), "0805120e0100000000004000000000000000282230 8002".replace(" ", "")),
    # nanos only when > 0, as fixed32
    (UnixFSData(DataType.FILE, filesize=0, mtime=Mtime(1, 5)), "08021800420708011505000000"),
    (UnixFSData(DataType.FILE, filesize=0, mtime=Mtime(1, 0)), "080218004202 0801".replace(" ", "")),
])
def test_spec_bytes(msg: UnixFSData, hexbytes: str) -> None:
    assert encode_unixfs_data(msg).hex() == hexbytes
    assert decode_unixfs_data(bytes.fromhex(hexbytes)) == msg


def test_negative_mtime_is_ten_byte_varint() -> None:
    msg = UnixFSData(DataType.FILE, filesize=0, mtime=Mtime(-1))
    raw = encode_unixfs_data(msg)
    assert raw.endswith(bytes.fromhex("420b08ffffffffffffffffff01"))
    assert decode_unixfs_data(raw).mtime == Mtime(-1)


def test_mode_zero_is_omitted() -> None:
    assert encode_unixfs_data(UnixFSData(DataType.FILE, filesize=0, mode=0)) == bytes.fromhex("08021800")


def test_packed_blocksizes_are_accepted() -> None:
    assert decode_unixfs_data(bytes.fromhex("0802180a2203040402")).blocksizes == (4, 4, 2)


@pytest.mark.parametrize(("hexbytes", "why"), [
    ("", "without Type"), ("1800", "without Type"), ("0809", "invalid UnixFS data"),
    ("08021205", "runs past the end"), ("0802 4200".replace(" ", ""), "mtime without seconds"),
    ("0802 420708011500ca9a3b".replace(" ", ""), "out of range"), ("08024202 0801 4a00".replace(" ", ""),
                                                                     "unexpected bytes field"),
    ("0802 5000".replace(" ", ""), "unexpected varint field"), ("0802 0d00000000".replace(" ", ""), "wire type"),
    ("0802 4203080115".replace(" ", ""), "mtime: truncated fixed field 2"),  # nanos is fixed32 field 2
])
def test_bad_messages(hexbytes: str, why: str) -> None:
    with pytest.raises(UnixFSError, match=why):
        decode_unixfs_data(bytes.fromhex(hexbytes))


_u64 = st.integers(0, 2**64 - 1)
_msgs = st.builds(
    UnixFSData,
    st.sampled_from(list(DataType)),
    st.one_of(st.none(), st.binary(max_size=30)),
    st.one_of(st.none(), _u64),
    st.lists(_u64, max_size=5).map(tuple),
    st.one_of(st.none(), _u64),
    st.one_of(st.none(), _u64),
    st.one_of(st.none(), st.integers(1, 2**32 - 1)),
    st.one_of(st.none(), st.builds(Mtime, st.integers(-(2**63), 2**63 - 1), st.integers(0, 999_999_999))),
)


@given(_msgs)
def test_round_trip(msg: UnixFSData) -> None:
    assert decode_unixfs_data(encode_unixfs_data(msg)) == msg


@given(st.binary(max_size=60))
def test_garbage_returns_or_raises_decode_error(data: bytes) -> None:
    try:
        decode_unixfs_data(data)
    except DecodeError:
        pass
