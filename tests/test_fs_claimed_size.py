"""A file's claimed size must not drive memory or time: a root that claims 1 TiB over a 3-byte leaf
(t26 of the API probe: 31 s and +1.7 GB before the error) fails at its first piece, with a bounded
number of pieces ever submitted; a root whose ``filesize`` disagrees with its ``blocksizes`` is
refused before any piece is read."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fsspec")

from pyipld.car import CarV1Writer
from pyipld.cid import CID, CidBuilder
from pyipld.dagpb import PBLink, encode_pbnode
from pyipld.errors import UnixFSError
from pyipld.fs import IPFSFileSystem, core
from pyipld.unixfs.data import DataType, UnixFSData, encode_unixfs_data
from pyipld.unixfs.directory import DirEntry, encode_basic_directory

BIG = 1 << 40
LEAF = b"abc"


@pytest.fixture(scope="module")
def liar(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``liar.bin``: filesize = blocksizes = 2**40 over a 3-byte raw leaf (consistent on its face);
    ``liar2.bin``: filesize 2**40 but blocksizes (3,); ``short.txt`` / ``zero.txt``: a raw leaf whose
    link claims more / fewer bytes than it holds."""
    b = CidBuilder.create(1)
    leaf = b.cid_bytes(0x55, LEAF)
    files = {}
    for name, blocksizes in ((b"liar.bin", (BIG,)), (b"liar2.bin", (3,))):
        node = encode_pbnode([PBLink(leaf, b"", 3)],
                             encode_unixfs_data(UnixFSData(DataType.FILE, filesize=BIG, blocksizes=blocksizes)))
        files[name] = (b.cid_bytes(0x70, node), node)
    dir_block = encode_basic_directory([DirEntry(n, c, 100) for n, (c, _) in files.items()]
                                       + [DirEntry(b"short.txt", leaf, BIG), DirEntry(b"zero.txt", leaf, 0)])
    dir_cid = b.cid_bytes(0x70, dir_block)
    car = tmp_path_factory.mktemp("liar") / "liar.car"
    with open(car, "wb") as f:
        w = CarV1Writer(f, [dir_cid])
        for cid, data in [(dir_cid, dir_block), *files.values(), (leaf, LEAF)]:
            w.put(cid, data)
        w.close()
    return car, str(CID.from_bytes(dir_cid))


class _Counting(ThreadPoolExecutor):
    def __init__(self, workers: int) -> None:
        super().__init__(workers, thread_name_prefix="counted-split")
        self.submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


@pytest.fixture()
def counted(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(core, "_SPLIT_WORKERS", 4)  # split whatever this machine's core count
    return 4


def _fs(car: Path) -> tuple[IPFSFileSystem, _Counting]:
    fs = IPFSFileSystem(cars=[str(car)], use_env=False, skip_instance_cache=True)
    pool = _Counting(4)
    fs._st()._split = pool
    return fs, pool


def test_a_claimed_terabyte_fails_at_once_with_few_pieces_submitted(liar: tuple[Path, str], counted: int) -> None:
    car, root = liar
    fs, pool = _fs(car)
    p = f"{root}/liar.bin"
    assert fs.info(p)["size"] == BIG  # the claim, as the root states it
    bound = 4 * counted  # a few per pool thread, whatever the claim
    for call in (lambda: fs.cat_file(p), lambda: fs.open(p).read(), lambda: fs.cat_file(p, 0, 64 << 20),
                 lambda: fs.cat_file(p, -10), lambda: fs.open(p).read(10 << 20)):
        pool.submitted = 0
        with pytest.raises(UnixFSError, match="parent's blocksizes say"):
            call()
        assert pool.submitted <= bound  # before: one future per 2 MiB of the claim (524,287)
    out = bytearray(16 << 20)
    pool.submitted = 0
    with pytest.raises(UnixFSError):
        fs.read_cid_into(fs._file_entry(p).cid, BIG, 0, out)
    assert pool.submitted <= bound
    fs.close()


def test_a_root_whose_filesize_disagrees_with_its_blocksizes_is_refused_before_reading(
        liar: tuple[Path, str], counted: int) -> None:
    car, root = liar
    fs, pool = _fs(car)
    p = f"{root}/liar2.bin"
    for call in (lambda: fs.cat_file(p), lambda: fs.open(p).read(), lambda: fs.cat_file(p, 5, 10),
                 lambda: fs.read_cid_into(fs._file_entry(p).cid, BIG, 0, bytearray(16 << 20))):
        with pytest.raises(UnixFSError, match=r"filesize 1099511627776 != data 0 \+ sum\(blocksizes\) 3"):
            call()
    assert pool.submitted == 0
    fs.close()


def test_a_raw_file_whose_link_overstates_it_is_refused(liar: tuple[Path, str], counted: int) -> None:
    car, root = liar
    fs, pool = _fs(car)
    p = f"{root}/short.txt"
    assert fs.info(p)["size"] == BIG
    for call in (lambda: fs.cat_file(p), lambda: fs.cat_file(p, 0, 3), lambda: fs.open(p).read()):
        with pytest.raises(UnixFSError, match="root holds 3 bytes, its entry says 1099511627776"):
            call()
    assert pool.submitted == 0
    z = f"{root}/zero.txt"
    assert fs.info(z)["size"] == 0
    for call in (lambda: fs.cat_file(z), lambda: fs.open(z).read(), lambda: fs.read_cid(fs._file_entry(z).cid, 0)):
        with pytest.raises(UnixFSError, match="root holds 3 bytes, its entry says 0"):  # not b""
            call()
    fs.close()


def test_the_window_keeps_reads_correct_when_pieces_outnumber_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   counted: int) -> None:
    from ._deterministic import chacha_bytes
    from ._fs import build_car

    monkeypatch.setattr(core, "_SPLIT_MIN", 40_000)
    monkeypatch.setattr(core, "_SPLIT_PIECE", 16_384)
    (tmp_path / "src").mkdir()
    data = chacha_bytes("window", 1_000_003)  # 62 pieces, a window of 8
    (tmp_path / "src" / "f.bin").write_bytes(data)
    root = build_car(tmp_path / "src", tmp_path / "t.car")
    fs, pool = _fs(tmp_path / "t.car")
    assert fs.cat_file(f"{root}/f.bin") == data
    assert fs.cat_file(f"{root}/f.bin", 12_345, -777) == data[12_345:-777]
    out = bytearray(len(data))
    assert fs.read_cid_into(fs._file_entry(f"{root}/f.bin").cid, len(data), 0, out) == len(data) and out == data
    assert 0 < pool.submitted < 3 * 62
    fs.close()
