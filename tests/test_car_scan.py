"""The pread head walk (pyipld.car._scan) against the stream reader it stands in for (issue 14):
the same heads, and at a malformed or cut section the same error, for CARv1 and CARv2."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipld.car import _scan
from pyipld.car.reader import CarFile
from pyipld.car.v1 import CarV1Writer
from pyipld.car.v2 import wrap_v1
from pyipld.cid import CID
from pyipld.errors import PyipldError
from pyipld.multihash import encode_multihash, get_hash

_CODECS = (0x55, 0x70, 0x71, 0x0129)  # 0x0129 (dag-json): a two-byte codec varint
_HASHES = ("sha2-256", "sha2-512", "blake2b-256", "identity")


def _car(blocks: list[tuple[int, str, bytes]], v0_first: bool) -> bytes:
    out = io.BytesIO()
    cids = []
    for i, (codec, hname, data) in enumerate(blocks):
        if i == 0 and v0_first:
            cids.append(CID(0, 0x70, get_hash("sha2-256").multihash(data)))
        else:
            fn = get_hash(hname)
            cids.append(CID(1, codec, encode_multihash(fn.code, fn.digest(data))))
    with CarV1Writer(out, cids[:1] or [CID(1, 0x55, get_hash("sha2-256").multihash(b""))]) as w:
        for cid, (_, _, data) in zip(cids, blocks):
            w.put(cid, data)
    return out.getvalue()


def _walk(car: CarFile, fast: bool) -> tuple[str, object]:
    try:
        if fast:
            return "ok", [(h, c, d) for h, c, d in car._scan_heads()]
        heads = list(car._reader(verify=False).iter_heads())
        return "ok", [(h, CID.from_bytes(h.cid).hash_code, CID.from_bytes(h.cid).digest) for h in heads]
    except PyipldError as exc:
        return type(exc).__name__, str(exc)


blocks_st = st.lists(st.tuples(st.sampled_from(_CODECS), st.sampled_from(_HASHES), st.binary(max_size=3000)),
                     max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blocks=blocks_st, v0_first=st.booleans(), v2=st.booleans(), window=st.integers(70, 5000),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=2),
       cut=st.none() | st.floats(0.0, 1.0), zero_eof=st.booleans())
def test_fast_walk_equals_reference(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory,
                                    blocks: list[tuple[int, str, bytes]], v0_first: bool, v2: bool, window: int,
                                    flips: list[tuple[float, int]], cut: float | None, zero_eof: bool) -> None:
    monkeypatch.setattr(_scan, "WINDOW_BYTES", window)
    body = _car(blocks, v0_first)
    lo = body[0] + 1  # the first section (headers here are < 128 bytes)
    if v2:  # the payload inside a CARv2 (wrapped intact; corrupted below)
        dst = io.BytesIO()
        wrap_v1(io.BytesIO(body), dst)
        lo += 51
        blob = bytearray(dst.getvalue())
        hi = 51 + len(body)
    else:
        blob = bytearray(body)
        hi = len(blob)
    for where, bits in flips:  # corrupt the sections, not the header (that fails on open, both ways)
        if hi > lo:
            blob[lo + int(where * (hi - lo - 1))] ^= bits
    if cut is not None and not v2:  # (a cut CARv2 fails on open: its header names the data's end)
        blob = blob[: lo + int(cut * (hi - lo))]
    path = tmp_path_factory.mktemp("s") / "c.car"
    path.write_bytes(bytes(blob))
    try:
        opened = CarFile(path, zero_length_section_as_eof=zero_eof)
    except PyipldError:
        return
    with opened as car:
        assert _walk(car, fast=True) == _walk(car, fast=False)


def test_identity_cid_longer_than_the_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_scan, "WINDOW_BYTES", 100)
    data = bytes(range(256)) * 2
    path = tmp_path / "c.car"
    path.write_bytes(_car([(0x55, "identity", data), (0x55, "sha2-256", b"x" * 500)], False))
    with CarFile(path) as car:
        assert _walk(car, fast=True) == _walk(car, fast=False)
        assert len(list(car.iter_heads())) == 2


def test_carv1_grown_after_open_is_walked_to_its_new_end(tmp_path: Path) -> None:
    """The stream reader reads a CARv1 to EOF as it finds it; so does the pread walk."""
    one = _car([(0x55, "sha2-256", b"a" * 100)], False)
    two = _car([(0x55, "sha2-256", b"a" * 100), (0x55, "sha2-256", b"b" * 200)], False)
    path = tmp_path / "c.car"
    path.write_bytes(one)
    with CarFile(path) as car:
        path.write_bytes(two)  # same header (same first root), one more section
        assert _walk(car, fast=True) == _walk(car, fast=False)
        assert len(list(car.iter_heads())) == 2
        assert car.verify_blocks(jobs=2) == 2
