"""dag-pb: the ipld codec-fixtures byte for byte, the negative fixtures, and properties."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld.cid import CID, DAG_PB
from pyipld.dagpb import PBLink, PBNode, decode_pbnode, encode_pbnode
from pyipld.errors import DagPBError, DecodeError
from tests._shared import fixture_path, shared_path


def _fixture_dirs() -> list[Path]:
    base = fixture_path("codec-fixtures", "fixtures")
    return sorted(p for p in base.iterdir() if p.name.startswith("dagpb_"))


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize("fixture", _fixture_dirs() or [pytest.param(None, marks=pytest.mark.skip(
    reason="codec-fixtures absent"))], ids=lambda p: p.name if p else "none")
def test_codec_fixture_round_trip(fixture: Path) -> None:
    [pb_file] = fixture.glob("*.dag-pb")
    block = pb_file.read_bytes()
    cid = CID.decode(pb_file.stem)
    assert cid.codec == DAG_PB and cid.verify(block)
    node = decode_pbnode(block)
    assert encode_pbnode(node.links, node.data) == block
    # The DAG-JSON sibling describes the same node.
    [json_file] = fixture.glob("*.dag-json")
    form = json.loads(json_file.read_text())
    expected_data = _unb64(form["Data"]["/"]["bytes"]) if "Data" in form else None
    assert node.data == expected_data
    assert len(node.links) == len(form["Links"])
    for link, want in zip(node.links, form["Links"], strict=True):
        assert str(CID.from_bytes(link.cid)) == str(CID.decode(want["Hash"]["/"]))
        assert link.name == (want["Name"].encode() if "Name" in want else None)
        assert link.tsize == want.get("Tsize")


def _negative_cases() -> list[object]:
    try:
        path = shared_path("fixtures", "codec-fixtures", "negative-fixtures", "dag-pb", "decode", "edges.json")
    except pytest.skip.Exception:
        return [pytest.param(None, marks=pytest.mark.skip(reason="codec-fixtures absent"))]
    return [pytest.param(case, id=case["name"]) for case in json.loads(path.read_text())]


@pytest.mark.parametrize("case", _negative_cases())
def test_negative_fixtures(case: dict[str, str]) -> None:
    with pytest.raises(DagPBError) as info:
        decode_pbnode(bytes.fromhex(case["hex"]))
    first_words = case["error"].split(",")[0].split("(")[0].strip()
    assert first_words.lower() in str(info.value).lower()


def test_file_link_always_carries_name_and_tsize() -> None:
    cid = CID.decode("Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD").bytes
    block = encode_pbnode([PBLink(cid, b"", 19)], b"\x08\x02")
    assert block == b"\x12\x28\x0a\x22" + cid + b"\x12\x00\x18\x13" + b"\x0a\x02\x08\x02"


@pytest.mark.parametrize(("hexbytes", "why"), [
    ("0a", "bad length"), ("0a05", "runs past"), ("0a00" + "0a00", "duplicate Data"),
    ("1a00", "unexpected field"), ("08", "unexpected field"), ("ff", "bad field key"),
    ("12020a00", "Invalid Hash"), ("1206" + "0a0212201800", "Invalid Hash"),
])
def test_strict_decoder(hexbytes: str, why: str) -> None:
    with pytest.raises(DagPBError, match=why):
        decode_pbnode(bytes.fromhex(hexbytes))


def test_link_fields_out_of_order() -> None:
    cid = CID.decode("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e").bytes
    body = b"\x12\x00" + b"\x0a" + bytes([len(cid)]) + cid  # Name before Hash
    with pytest.raises(DagPBError, match="out of order"):
        decode_pbnode(b"\x12" + bytes([len(body)]) + body)


_cids = st.builds(lambda d, raw: (b"\x01\x55" if raw else b"") + b"\x12\x20" + hashlib.sha256(d).digest(),
                  st.binary(max_size=8), st.booleans())
_links = st.builds(PBLink, _cids, st.one_of(st.none(), st.binary(max_size=12)),
                   st.one_of(st.none(), st.integers(0, 2**64 - 1)))
_nodes = st.builds(PBNode, st.lists(_links, max_size=5).map(tuple), st.one_of(st.none(), st.binary(max_size=40)))


@given(_nodes)
def test_decode_encode_round_trip(node: PBNode) -> None:
    block = encode_pbnode(node.links, node.data)
    assert decode_pbnode(block) == node
    assert encode_pbnode(*_parts(decode_pbnode(block))) == block


def _parts(node: PBNode) -> tuple[tuple[PBLink, ...], bytes | None]:
    return node.links, node.data


@given(st.binary(max_size=200))
def test_garbage_returns_or_raises_decode_error(data: bytes) -> None:
    try:
        decode_pbnode(data)
    except DecodeError:
        pass


@given(_nodes, st.data())
def test_mutations_never_crash(node: PBNode, data: st.DataObject) -> None:
    block = bytearray(encode_pbnode(node.links, node.data))
    if block:
        i = data.draw(st.integers(0, len(block) - 1))
        block[i] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(block)))
        try:
            decode_pbnode(bytes(block[:cut]))
        except DecodeError:
            pass
