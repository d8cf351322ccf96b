"""Leaves handed to a CAR writer in pieces (``put_parts``) give the same bytes as ``put``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pyipld.car.v1 import CarV1Writer
from pyipld.car.v2 import CarV2Writer
from pyipld.cid import CidBuilder
from pyipld.multihash import get_hash
from pyipld.unixfs import importer
from pyipld.unixfs.data import DataType
from pyipld.unixfs.importer import import_file
from pyipld.unixfs.nodes import LeafMaker
from pyipld.unixfs.params import ImportParams
from tests._deterministic import chacha_bytes


class PutOnly:
    """Forwards ``put`` only, so the importer takes the joined-block path."""

    def __init__(self, writer: CarV1Writer | CarV2Writer) -> None:
        self.writer = writer

    def put(self, cid: bytes, data: bytes) -> None:
        assert type(data) is bytes
        self.writer.put(cid, data)


def _car(version: int, src: Path, params: ImportParams, jobs: int, *, parts: bool, background: bool) -> bytes:
    out = io.BytesIO()
    writer: CarV1Writer | CarV2Writer
    if version == 1:
        writer = CarV1Writer(out, background=background)
    else:
        writer = CarV2Writer(out, background=background)
    result = import_file(src, params, writer if parts else PutOnly(writer), jobs=jobs)
    writer.set_roots([result.cid])
    writer.close()
    return out.getvalue()


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("params", [ImportParams(), ImportParams(cid_version=1),
                                    ImportParams(chunker="size-1000", layout="trickle")])
def test_put_parts_same_car_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: int, jobs: int, params: ImportParams
) -> None:
    monkeypatch.setattr(importer, "MIN_THREADED_BYTES", 0)  # jobs=2: through the hashing pool
    # > MMAP_MIN_BYTES and not a multiple of the chunk size: mapped views, a short last chunk,
    # and the same chunk twice (dedupe through put_parts)
    data = chacha_bytes("put-parts", 1_300_000)
    data = data[:262144] * 2 + data
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    expected = _car(version, src, params, jobs, parts=False, background=False)
    for background in (False, True):
        assert _car(version, src, params, jobs, parts=True, background=background) == expected


@pytest.mark.parametrize("raw", [False, True])
@pytest.mark.parametrize("builder", [CidBuilder(0, get_hash("sha2-256")), CidBuilder(1, get_hash("sha2-256")),
                                     CidBuilder(1, get_hash("sha2-512")), CidBuilder(1, get_hash("sha2-256"), 40)])
@pytest.mark.parametrize("size", [0, 1, 30, 127, 128, 262144])
def test_leaf_parts_join_to_encode(raw: bool, builder: CidBuilder, size: int) -> None:
    leaves = LeafMaker(builder, raw=raw, leaf_type=DataType.FILE)
    chunk = chacha_bytes(f"leaf-{size}", size)
    cid, parts, block_len = leaves.leaf_parts(memoryview(chunk))
    ref_cid, ref_block = leaves.encode(chunk)
    assert (cid, b"".join(parts), block_len) == (ref_cid, ref_block, len(ref_block))
