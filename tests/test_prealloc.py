"""Disk space reserved ahead of appended writes: reserved while writing, never visible in the
file's size, freed when done, and quietly skipped where it cannot be had."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyipld._prealloc import SpaceReserver
from pyipld.block import Block
from pyipld.blockstore import MemoryBlockstore
from pyipld.car.v1 import CarV1Writer, iter_blocks
from pyipld.unixfs import import_bytes
from pyipld.unixfs.extract import extract

MIB = 1 << 20


def _allocated(fd_or_path: int | Path) -> int:
    st = os.fstat(fd_or_path) if isinstance(fd_or_path, int) else os.stat(fd_or_path)
    return st.st_blocks * 512


@pytest.fixture
def fd(tmp_path: Path) -> Iterator[int]:
    """A new file ``out`` in tmp_path, open for writing."""
    descriptor = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        yield descriptor
    finally:
        os.close(descriptor)


@pytest.fixture
def reserving(tmp_path: Path) -> None:
    """Skip where this file system or platform gives no reservations (the code then does nothing)."""
    fd = os.open(tmp_path / "probe", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        space = SpaceReserver(fd, step=MIB)
        space.ensure(1)
        if not space.active or _allocated(fd) < MIB:
            pytest.skip("fallocate(KEEP_SIZE) is not available here")
        space.release()
    finally:
        os.close(fd)


@pytest.mark.usefixtures("reserving")
def test_reserves_ahead_without_changing_the_size_then_frees(tmp_path: Path, fd: int) -> None:
    space = SpaceReserver(fd, step=4 * MIB)
    space.ensure(MIB)
    assert os.fstat(fd).st_size == 0
    assert _allocated(fd) >= 5 * MIB
    os.write(fd, b"x" * MIB)
    space.ensure(MIB)  # within what is reserved: no call, nothing changes
    space.ensure(5 * MIB + 1)  # past it: the next reservation continues where the last ended
    assert _allocated(fd) >= 9 * MIB
    space.release()
    assert os.fstat(fd).st_size == MIB
    assert _allocated(fd) < 2 * MIB
    assert not space.active
    space.ensure(50 * MIB)  # released: no more reservations
    assert _allocated(fd) < 2 * MIB
    assert (tmp_path / "out").read_bytes() == b"x" * MIB


@pytest.mark.usefixtures("reserving")
def test_nothing_is_reserved_below_min_end(fd: int) -> None:
    space = SpaceReserver(fd, step=4 * MIB, min_end=2 * MIB)
    space.ensure(MIB)
    assert _allocated(fd) == 0
    space.ensure(2 * MIB)
    assert _allocated(fd) >= 6 * MIB
    space.release()
    assert _allocated(fd) == 0


def test_a_refused_reservation_stops_quietly(tmp_path: Path) -> None:
    path = tmp_path / "ro"
    path.write_bytes(b"abc")
    fd = os.open(path, os.O_RDONLY)  # fallocate needs a writable descriptor: EBADF
    try:
        space = SpaceReserver(fd, step=MIB)
        space.ensure(10)
        assert not space.active
        space.release()
    finally:
        os.close(fd)
    assert path.read_bytes() == b"abc"


def test_turned_off_by_the_environment(fd: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYIPLD_NO_PREALLOC", "1")
    space = SpaceReserver(fd, step=MIB)
    space.ensure(10)
    assert not space.active
    assert _allocated(fd) == 0


def _blocks(total: int) -> list[Block]:
    store = MemoryBlockstore()
    import_bytes(os.urandom(total), sink=store)
    return [Block(cid, store.get(cid)) for cid in store]


@pytest.mark.usefixtures("reserving")
def test_background_car_writer_reserves_while_writing_and_leaves_nothing(tmp_path: Path) -> None:
    blocks = _blocks(2 * MIB)
    seen: list[tuple[int, int]] = []
    path = tmp_path / "out.car"
    with path.open("wb") as out:
        writer = CarV1Writer(out, [blocks[0].cid], background=True)
        fd = out.fileno()
        for block in blocks:
            writer.put(block.cid, block.data)
        writer.when_written(lambda: seen.append((os.fstat(fd).st_size, _allocated(fd))))
        writer.close()
    (size, allocated), = seen
    assert allocated >= size + (32 << 20)  # reserved ahead while the writer thread wrote
    assert _allocated(path) < path.stat().st_size + MIB
    plain = io.BytesIO()
    writer = CarV1Writer(plain, [blocks[0].cid])
    for block in blocks:
        writer.put(block.cid, block.data)
    writer.close()
    assert path.read_bytes() == plain.getvalue()
    assert [b.cid for b in iter_blocks(io.BytesIO(path.read_bytes()))] == [b.cid for b in blocks]


@pytest.mark.usefixtures("reserving")
def test_extracted_large_file_keeps_no_reserved_space(tmp_path: Path) -> None:
    data = os.urandom(9 * MIB)
    store = MemoryBlockstore()
    root = import_bytes(data, sink=store).cid
    dest = tmp_path / "got"
    extract(store, root, dest)
    assert dest.read_bytes() == data
    assert _allocated(dest) < len(data) + MIB


@pytest.mark.usefixtures("reserving")
def test_a_file_someone_else_also_wrote_is_left_alone(tmp_path: Path, fd: int) -> None:
    space = SpaceReserver(fd, step=4 * MIB)
    space.ensure(MIB)
    os.write(fd, b"x" * MIB)
    with (tmp_path / "out").open("ab") as other:
        other.write(b"theirs")
    space.release(written_to=MIB)  # not ours alone: no truncation that could race with them
    assert _allocated(fd) >= 4 * MIB
    mine = SpaceReserver(fd, step=4 * MIB)
    mine.ensure(MIB + 6)
    mine.release(written_to=MIB + 6)
    assert _allocated(fd) < 2 * MIB
    assert (tmp_path / "out").read_bytes() == b"x" * MIB + b"theirs"
