"""The CAR blockstore: index or scan, reads only what it needs, never trusts the index."""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from pyipld.blockstore import BlockSource, get_verified, get_verified_view
from pyipld.car.blockstore import CarBlockstore
from pyipld.car.index import build_index, encode_index
from pyipld.car.reader import CarFile
from pyipld.car.v2 import (
    HEADER_SIZE,
    PRAGMA,
    PRAGMA_SIZE,
    CarV2Header,
    encode_v2_header,
)
from pyipld.cid import CID
from pyipld.errors import CarIndexError, IntegrityError, NotFoundError
from tests._shared import shared_path


def sections(name: str) -> list[tuple[bytes, bytes, int]]:
    with CarFile(shared_path("fixtures", "go-car", name)) as car:
        return [(s.cid, s.data, s.offset) for s in car.iter_sections()]


@pytest.mark.parametrize(("name", "indexed"), [
    ("sample-v1.car", False), ("sample-wrapped-v2.car", True), ("sample-v2-indexless.car", False),
])
def test_every_block_by_cid(name: str, indexed: bool) -> None:
    with CarBlockstore(shared_path("fixtures", "go-car", name), verify_index=True) as bs:
        assert isinstance(bs, BlockSource)
        assert (bs.index is not None) == indexed
        for cid, data, _ in sections("sample-v1.car"):
            assert bs.get(cid) == data
            assert bs.has(cid)
            assert get_verified(bs, cid) == data
        assert str(bs.roots[0]).startswith("bafy2bzaced4ueel")
        missing = CID.decode("bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4")
        assert not bs.has(missing)
        with pytest.raises(NotFoundError, match="could not find"):
            bs.get(missing)


def test_cidv0_and_v1_of_the_same_multihash() -> None:
    with CarBlockstore(shared_path("fixtures", "go-car", "simple-unixfs.car")) as bs:
        root = bs.roots[0]
        assert root.version == 0
        assert bs.get(root.to_v1()) == bs.get(root)


def test_get_block_fixture() -> None:
    want = shared_path("fixtures", "go-car",
                       "bafy2bzacebohz654namrgmwjjx4qmtwgxixsd7pn4tlanyrc3g3hwj75hlxrw.block").read_bytes()
    with CarBlockstore(shared_path("fixtures", "go-car", "sample-wrapped-v2.car")) as bs:
        assert bs.get(CID.decode("bafy2bzacebohz654namrgmwjjx4qmtwgxixsd7pn4tlanyrc3g3hwj75hlxrw")) == want


class CountingFile(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, n: int | None = -1) -> bytes:
        out = super().read(n)
        self.bytes_read += len(out)
        return out


def test_indexed_get_reads_only_the_block() -> None:
    data = shared_path("fixtures", "go-car", "sample-wrapped-v2.car").read_bytes()
    f = CountingFile(data)
    bs = CarBlockstore(f)
    opened = f.bytes_read
    assert opened < 60_000  # header + index, not the 480 kB payload
    cid, block, _ = sections("sample-v1.car")[500]
    f.bytes_read = 0
    assert bs.get(cid) == block
    assert f.bytes_read < len(block) + 200


def test_scan_skips_block_data() -> None:
    from pyipld.car.v1 import CarV1Writer
    from pyipld.multihash import SHA2_256

    blocks = [bytes([i]) * 100_000 for i in range(20)]  # large blocks are sought over, not read
    buf = io.BytesIO()
    with CarV1Writer(buf, []) as w:
        for b in blocks:
            w.put(b"\x01\x55" + SHA2_256.multihash(b), b)
    f = CountingFile(buf.getvalue())
    bs = CarBlockstore(f)
    assert f.bytes_read < 20 * 100
    f.bytes_read = 0
    assert bs.get(b"\x01\x55" + SHA2_256.multihash(blocks[7])) == blocks[7]
    assert f.bytes_read < 100_000 + 200


def _v2_with_index(v1: bytes, records: list[tuple[bytes, int]]) -> bytes:
    index = encode_index(build_index(records))
    header = CarV2Header(PRAGMA_SIZE + HEADER_SIZE, len(v1), PRAGMA_SIZE + HEADER_SIZE + len(v1))
    return PRAGMA + encode_v2_header(header) + v1 + index


def test_index_pointing_at_the_wrong_block_is_never_trusted() -> None:
    v1 = shared_path("fixtures", "go-car", "sample-v1.car").read_bytes()
    secs = sections("sample-v1.car")
    records = [(c, o) for c, _, o in secs]
    # swap the offsets of two blocks
    (c1, o1), (c2, o2) = records[10], records[20]
    records[10], records[20] = (c1, o2), (c2, o1)
    lying = _v2_with_index(v1, records)
    with CarBlockstore(io.BytesIO(lying)) as bs:
        for cid in (c1, c2):
            with pytest.raises(NotFoundError):
                bs.get(cid)  # never the other block's bytes
        assert bs.get(secs[30][0]) == secs[30][1]
        with pytest.raises(CarIndexError, match="points at payload offset"):
            bs.verify_index()
    with pytest.raises(CarIndexError):
        CarBlockstore(io.BytesIO(lying), verify_index=True)
    # an offset in the middle of a section: typed error from verify, lookups fail safe
    records2 = [(c, o) for c, _, o in secs]
    records2[5] = (records2[5][0], records2[5][1] + 3)
    bad = _v2_with_index(v1, records2)
    with CarBlockstore(io.BytesIO(bad)) as bs:
        with pytest.raises(NotFoundError):
            bs.get(records2[5][0])
        with pytest.raises(CarIndexError):
            bs.verify_index()
    # a block missing from the index
    partial = _v2_with_index(v1, [(c, o) for c, _, o in secs[:-10]])
    with CarBlockstore(io.BytesIO(partial)) as bs, pytest.raises(CarIndexError, match="not in the index"):
        bs.verify_index()


def test_unusable_index_falls_back_to_a_scan() -> None:
    v1 = shared_path("fixtures", "go-car", "sample-v1.car").read_bytes()
    header = CarV2Header(51, len(v1), 51 + len(v1))
    broken = PRAGMA + encode_v2_header(header) + v1 + b"\x81\x08" + struct.pack("<i", -1)
    with CarBlockstore(io.BytesIO(broken)) as bs:
        assert bs.index is None and bs.index_error is not None
        cid, data, _ = sections("sample-v1.car")[3]
        assert bs.get(cid) == data


def test_block_not_matching_its_cid() -> None:
    v1 = bytearray(shared_path("fixtures", "go-car", "sample-v1.car").read_bytes())
    secs = sections("sample-v1.car")
    cid, data, offset = secs[100]
    v1[offset + 1 + len(cid) + 5] ^= 0xFF  # flip one byte of the block data
    with CarBlockstore(io.BytesIO(bytes(v1))) as bs:
        with pytest.raises(IntegrityError, match="mismatch in content integrity"):
            bs.get(cid)
        assert bs.get(secs[99][0]) == secs[99][1]
        with pytest.raises(IntegrityError):
            bs.verify_all()
    with CarBlockstore(io.BytesIO(bytes(v1)), verify=False) as bs:
        assert bs.get(cid) != data


def test_identity_cids_answer_from_the_cid() -> None:
    with CarBlockstore(shared_path("fixtures", "go-car", "sample-wrapped-v2.car")) as bs:
        cid = CID.from_bytes(b"\x01\x55\x00\x03abc")
        assert bs.has(cid) and bs.get(cid) == b"abc"


def test_concurrent_gets() -> None:
    from concurrent.futures import ThreadPoolExecutor

    secs = sections("sample-v1.car")
    with CarBlockstore(shared_path("fixtures", "go-car", "sample-wrapped-v2.car")) as bs, \
            ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda s: bs.get(s[0]) == s[1], secs * 2))
    assert all(got)


@pytest.mark.parametrize("index", ["sample-index.carindex", "sample-multihash-index-sorted.carindex"])
def test_detached_index_for_a_v1(index: str) -> None:
    path = shared_path("fixtures", "go-car", index)
    with CarBlockstore(shared_path("fixtures", "go-car", "sample-v1.car"), index=path, verify_index=True) as bs:
        assert bs.index is not None
        for cid, data, _ in sections("sample-v1.car")[::50]:
            assert bs.get(cid) == data
    # an index of another CAR is caught by verification
    other = build_index([(c, o + 1) for c, _, o in sections("sample-v1.car")])
    with pytest.raises(CarIndexError):
        CarBlockstore(shared_path("fixtures", "go-car", "sample-v1.car"), index=other, verify_index=True)


def test_verify_blocks_mmap_and_stream(tmp_path: object) -> None:
    path = shared_path("fixtures", "go-car", "sample-wrapped-v2.car")
    seen: list[int] = []
    with CarFile(path) as car:
        assert car.verify_blocks(progress=seen.append) == 1049
    with CarFile(path) as car:
        assert sum(seen) == sum(h.length for h in car.iter_heads())  # every section, not the header
    data = bytearray(path.read_bytes())
    secs = sections("sample-v1.car")
    data[51 + secs[7][2] + 1 + len(secs[7][0]) + 3] ^= 1
    with CarFile(io.BytesIO(bytes(data))) as car, pytest.raises(IntegrityError):
        car.verify_blocks()  # BytesIO: streaming fallback
    bad = tmp_path / "bad.car"  # type: ignore[operator]
    bad.write_bytes(bytes(data))
    with CarFile(bad) as car, pytest.raises(IntegrityError, match="mismatch in content integrity"):
        car.verify_blocks()  # file: mmap path


# -- get_view: blocks as views, of reads or (PYIPLD_MMAP=1) of the mapped file (what the gateway
# server streams) -----------------------------------------------------------------------------------


@pytest.fixture(params=["read", "mapped"])
def view_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A get_view test runs with the default reads and with the opt-in mapping."""
    monkeypatch.setenv("PYIPLD_MMAP", "1" if request.param == "mapped" else "0")
    return str(request.param)


@pytest.mark.usefixtures("view_kind")
@pytest.mark.parametrize("name", ["sample-v1.car", "sample-wrapped-v2.car", "sample-v2-indexless.car"])
def test_get_view_equals_get(name: str) -> None:
    with CarBlockstore(shared_path("fixtures", "go-car", name)) as bs:
        for cid, data, _ in sections("sample-v1.car"):
            view = bs.get_view(cid)
            assert isinstance(view, memoryview) and view.readonly and view == data
            assert get_verified_view(bs, cid) == data
        with pytest.raises(NotFoundError):
            bs.get_view(CID.decode("bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"))
        assert bytes(bs.get_view(CID.from_bytes(b"\x01\x55\x00\x03abc"))) == b"abc"


@pytest.mark.usefixtures("view_kind")
def test_get_view_other_cid_version_and_unmappable_source() -> None:
    path = shared_path("fixtures", "go-car", "simple-unixfs.car")
    with CarBlockstore(path) as bs:
        root = bs.roots[0]
        assert root.version == 0
        assert bs.get_view(root.to_v1()) == bs.get(root) == bs.get_view(root)  # stored as v0: the slow lookup
    with CarBlockstore(io.BytesIO(path.read_bytes())) as bs:  # no file to map: a view of a copy
        assert bs.get_view(bs.roots[0]) == bs.get(bs.roots[0])


@pytest.mark.usefixtures("view_kind")
def test_get_view_corrupt_block_and_lying_index(tmp_path: Path) -> None:
    v1 = bytearray(shared_path("fixtures", "go-car", "sample-v1.car").read_bytes())
    secs = sections("sample-v1.car")
    cid, data, offset = secs[100]
    v1[offset + 1 + len(cid) + 5] ^= 0xFF
    corrupt = tmp_path / "corrupt.car"
    corrupt.write_bytes(v1)
    with CarBlockstore(corrupt) as bs:
        with pytest.raises(IntegrityError):
            bs.get_view(cid)
        assert bs.get_view(secs[99][0]) == secs[99][1]
    with CarBlockstore(corrupt, verify=False) as bs:  # unverified here; get_verified_view still checks
        assert bs.get_view(cid) != data
        with pytest.raises(IntegrityError):
            get_verified_view(bs, cid)
    records = [(c, o) for c, _, o in secs]
    (c1, o1), (c2, o2) = records[10], records[20]
    records[10], records[20] = (c1, o2), (c2, o1)
    records[5] = (records[5][0], records[5][1] + 3)  # an offset inside a section
    lying = tmp_path / "lying.car"
    lying.write_bytes(_v2_with_index(bytes(shared_path("fixtures", "go-car", "sample-v1.car").read_bytes()),
                                     records))
    with CarBlockstore(lying, verify=False) as bs:
        for c in (c1, c2, records[5][0]):
            with pytest.raises(NotFoundError):
                bs.get_view(c)  # never another block's bytes


@pytest.mark.usefixtures("view_kind")
def test_get_view_outlives_close() -> None:
    cid, data, _ = sections("sample-v1.car")[7]
    bs = CarBlockstore(shared_path("fixtures", "go-car", "sample-v1.car"))
    view = bs.get_view(cid)
    bs.close()
    assert view == data


def _mapped_rss_kib(path: Path) -> int:
    """Resident KiB of this process's mappings of ``path`` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):  # a mapping's header line
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs /proc/self/smaps")
@pytest.mark.parametrize("trim_bytes", [1, 1 << 40])
def test_get_view_keeps_resident_memory_flat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             trim_bytes: int) -> None:
    """Mapped (PYIPLD_MMAP=1), the pages are dropped every _TRIM_BYTES of views, so RSS does not
    follow the file size."""
    import pyipld.car.blockstore as car_blockstore

    monkeypatch.setenv("PYIPLD_MMAP", "1")

    monkeypatch.setattr(car_blockstore, "_TRIM_BYTES", trim_bytes)
    car = tmp_path / "s.car"
    car.write_bytes(shared_path("fixtures", "go-car", "sample-v1.car").read_bytes())
    with CarBlockstore(car) as bs:
        for cid, data, _ in sections("sample-v1.car"):
            assert bs.get_view(cid) == data
        resident = _mapped_rss_kib(car)
    if trim_bytes == 1:
        assert resident * 1024 < car.stat().st_size // 4
    else:  # without trims every page read stays resident: the check above can fail
        assert resident * 1024 >= car.stat().st_size // 2


_TRUNCATED = """
import os, sys
from pyipld.car.blockstore import CarBlockstore
from pyipld.errors import CarError
path = sys.argv[1]
with CarBlockstore(path) as bs:
    cids = list(bs.iter_cids())
    assert bs.get_view(cids[1])
    os.truncate(path, 200)  # another process rewrites the CAR in place
    try:
        bs.get_view(cids[-1])
    except CarError as exc:
        print("CarError", exc)
"""


def test_a_car_truncated_while_served_is_an_error_not_sigbus(tmp_path: Path) -> None:
    """Regression: the gateway's CAR blockstore mapped every CAR, so a CAR truncated in place while
    served killed the server with SIGBUS on the next view. By default it now reads (one pread per
    block) and the shrunk file is a CarError; PYIPLD_MMAP=1 opts back into the mapping."""
    car = tmp_path / "s.car"
    car.write_bytes(shared_path("fixtures", "go-car", "sample-v1.car").read_bytes())
    env = {**os.environ, "PYIPLD_MMAP": "0"}
    done = subprocess.run([sys.executable, "-c", _TRUNCATED, str(car)], check=False, capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("CarError")
