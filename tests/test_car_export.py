"""DAG export in ``ipfs dag export`` order, and one-pass imports into CAR files."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from pathlib import Path

import pytest

from pyipld.blockstore import MemoryBlockstore
from pyipld.car.blockstore import CarBlockstore
from pyipld.car.export import export_dag, iter_links
from pyipld.car.reader import CarFile
from pyipld.car.sink import atomic_output, open_car_sink
from pyipld.car.v1 import CarV1Writer
from pyipld.car.v2 import CarV2Writer
from pyipld.cid import CID
from pyipld.errors import ConfigError, DecodeError, NotFoundError
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.params import ImportParams
from tests._deterministic import chacha_bytes
from tests._shared import shared_path

VECTORS = Path(__file__).parent / "vectors" / "car_oracle_blocks.json"


class Store(MemoryBlockstore):
    """An empty MemoryBlockstore is falsy (``__len__``), and importer.import_file does
    ``sink or NullSink()``: keep the store truthy so blocks are kept."""

    def __bool__(self) -> bool:
        return True


def load(path: Path, *, shuffle: bool = False) -> tuple[MemoryBlockstore, tuple[CID, ...]]:
    store = MemoryBlockstore()
    with CarFile(path) as car:
        secs = list(car.iter_sections())
        roots = car.roots
    if shuffle:
        random.Random(7).shuffle(secs)
    for s in secs:
        store.put(s.cid, s.data)
    return store, roots


def export_bytes(store: MemoryBlockstore, root: CID, **kw: bool) -> bytes:
    out = io.BytesIO()
    export_dag(store, root, out, **kw)
    return out.getvalue()


def test_kubo_t0054_reexport_is_byte_identical() -> None:
    base = ("fixtures", "kubo", "t0054-dag-car-import-export")
    store, roots = load(shared_path(*base, "lotus_devnet_genesis_shuffled_noroots.car"))
    assert roots == ()
    want = shared_path(*base, "lotus_devnet_genesis.car").read_bytes()
    root = CID.decode("bafy2bzaceaxm23epjsmh75yvzcecsrbavlmkcxnva66bkdebdcnyw3bjrc74u")
    assert export_bytes(store, root) == want


def test_testnet_export_from_shuffled_blocks() -> None:
    path = shared_path("fixtures", "go-car", "sample-v1.car")  # = kubo's lotus_testnet_export_128.car
    store, roots = load(path, shuffle=True)
    assert export_bytes(store, roots[0]) == path.read_bytes()


GWC_COMPLETE = [
    "dir-with-percent-encoded-filename.car", "dir_listing-fixtures.car", "gateway-cache-fixtures.car",
    "gateway-raw-block.car", "path_gateway_dag-dag-cbor-traversal.car", "path_gateway_dag-dag-json-traversal.car",
    "path_gateway_dag-dag-pb.car", "path_gateway_dag-gateway-json-cbor.car",
    "path_gateway_dag-plain-cbor-that-can-be-dag-cbor.car", "path_gateway_dag-plain-cbor-that-can-be-dag-json.car",
    "path_gateway_dag-plain-cbor.car", "path_gateway_dag-plain-json.car", "path_gateway_tar-inside-root.car",
    "path_gateway_tar-outside-root.car", "redirects-spa.car", "tooling-hello_ipfs.car",
    "trustless-dir-with-dag-cbor-with-links.car", "trustless-subdir-with-two-single-block-files.car",
]


@pytest.mark.parametrize("name", GWC_COMPLETE)
def test_gateway_conformance_reexport(name: str) -> None:
    path = shared_path("fixtures", "gateway-conformance", name)
    store, roots = load(path, shuffle=True)
    assert export_bytes(store, roots[0]) == path.read_bytes()


@pytest.mark.parametrize("name", ["trustless-file-3k-and-3-blocks-missing-block.car",
                                  "tooling-file-3k-and-3-blocks-missing-block.car"])
def test_partial_dags(name: str) -> None:
    path = shared_path("fixtures", "gateway-conformance", name)
    store, roots = load(path)
    with pytest.raises(NotFoundError, match="could not find"):
        export_bytes(store, roots[0])
    # kubo --local-only skips the missing sub-DAG; `car filter` kept the same order
    assert export_bytes(store, roots[0], local_only=True) == path.read_bytes()


def test_export_into_a_v2_writer_and_deep_chain() -> None:
    # a 3000-long chain of dag-cbor links would overflow a recursive walk
    store = MemoryBlockstore()
    prev = b""
    for i in range(3000):
        body = b"\xa2\x61i" + b"\x19" + i.to_bytes(2, "big") + b"\x64prev"
        body += (b"\xd8\x2a\x58\x25\x00" + prev) if prev else b"\xf6"
        from pyipld.multihash import SHA2_256

        cid = b"\x01\x71" + SHA2_256.multihash(body)
        store.put(cid, body)
        prev = cid
    out = io.BytesIO()
    w = CarV2Writer(out, [CID.from_bytes(prev)])
    stats = export_dag(store, prev, w)
    w.close()
    assert stats.blocks == 3000
    with CarFile(io.BytesIO(out.getvalue())) as car:
        assert next(s.cid for s in car.iter_sections()) == prev


def test_iter_links_rejects_bad_blocks() -> None:
    with pytest.raises(DecodeError):
        list(iter_links(b"\x01\x71" + b"\x12\x20" + bytes(32), b"\xd8\x30\x00"))  # tag 48
    with pytest.raises(DecodeError):
        list(iter_links(b"\x01\x71" + b"\x12\x20" + bytes(32), b"\x82\x01"))  # truncated list
    with pytest.raises(DecodeError):
        list(iter_links(b"\x01\x81\x01" + b"\x12\x20" + bytes(32), b""))  # unknown codec


# -- our imports vs kubo (oracle vectors) ----------------------------------------------------------


def _cases() -> list[dict[str, object]]:
    return json.loads(VECTORS.read_text())["cases"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", _cases(), ids=lambda c: str(c["name"]))
def test_import_then_export_matches_kubo_blocks(case: dict[str, object]) -> None:
    data = chacha_bytes("pyipld-car-export", 1234567)[: int(case["size"])]  # type: ignore[call-overload]
    store = Store()
    result = import_bytes(data, ImportParams(**case["params"]), store)  # type: ignore[arg-type]
    assert str(result.cid) == case["root"]
    car = export_bytes(store, result.cid)
    with CarFile(io.BytesIO(car)) as reader:
        cids = [s.cid for s in reader.iter_sections()]
    if all(CID.from_bytes(c).hash_code != 0 for c in cids):
        # no inlined blocks: same bytes as the oracle's pre-order CAR
        assert hashlib.sha256(car).hexdigest() == case["car_sha256"]
    # The oracle skips identity CIDs *and their sub-DAGs* (an inlined dag-pb node can link to a
    # normal leaf); walk the same way to compare block sets.
    oracle_view = _walk_skipping_identity(store, result.cid.bytes)
    assert len(oracle_view) == case["blocks"]
    assert hashlib.sha256(b"".join(sorted(oracle_view))).hexdigest() == case["cids_sha256"]
    assert set(oracle_view) <= set(cids)


def _walk_skipping_identity(store: MemoryBlockstore, root: bytes) -> list[bytes]:
    seen: set[bytes] = set()
    order: list[bytes] = []
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid in seen or CID.from_bytes(cid).hash_code == 0:
            continue
        seen.add(cid)
        order.append(cid)
        stack.extend(reversed(list(iter_links(cid, store.get(cid)))))
    return order


@pytest.mark.parametrize("version", [1, 2])
def test_one_pass_import_into_a_car_file(tmp_path: Path, version: int) -> None:
    case = _cases()[1]
    data = chacha_bytes("pyipld-car-export", 1234567)
    params = ImportParams(**case["params"])  # type: ignore[arg-type]
    out = tmp_path / "out.car"
    with open_car_sink(out, version) as car:
        result = import_bytes(data, params, car)
        car.set_roots([result.cid])
    assert str(result.cid) == case["root"]
    with CarBlockstore(out, verify_index=True) as bs:
        assert bs.car.version == version
        assert [str(r) for r in bs.roots] == [case["root"]]
        # every block of the DAG is there: export from the CAR gives the oracle's bytes
        assert hashlib.sha256(export_bytes(bs, result.cid)).hexdigest() == case["car_sha256"]  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == ["out.car"]
    assert (out.stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_failed_import_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "out.car"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError), open_car_sink(out, 2) as car:
        car.put(b"\x01\x55\x00\x01a", b"a")
        raise RuntimeError("import failed")
    assert out.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.car"]
    with pytest.raises(ConfigError), open_car_sink(tmp_path / "new.car", 1):  # roots never set
        pass
    assert os.listdir(tmp_path) == ["out.car"]
    with pytest.raises(ValueError), atomic_output(tmp_path / "x"):
        raise ValueError
    assert os.listdir(tmp_path) == ["out.car"]


def test_sink_protocol_members() -> None:
    for cls in (CarV1Writer, CarV2Writer):
        for name in ("put", "set_roots", "close", "has", "blocks_written", "data_bytes_written"):
            assert hasattr(cls, name) or name in ("blocks_written", "data_bytes_written")
