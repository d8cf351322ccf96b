"""One conformance suite for every blockstore, plus the directory store's atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyipld.blockstore import (
    BlockSink,
    BlockSource,
    DirectoryBlockstore,
    MemoryBlockstore,
    NullSink,
    get_verified,
)
from pyipld.cid import CID, DAG_PB, RAW, CidBuilder
from pyipld.errors import IntegrityError, NotFoundError

V1 = CidBuilder.create(1)
V0 = CidBuilder.create(0)


class BlockstoreConformance:
    """Subclasses provide ``store``; every backend must pass the same tests."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> MemoryBlockstore | DirectoryBlockstore:
        raise NotImplementedError

    def test_protocols(self, store: MemoryBlockstore | DirectoryBlockstore) -> None:
        assert isinstance(store, BlockSink) and isinstance(store, BlockSource)

    def test_put_get_has(self, store: MemoryBlockstore | DirectoryBlockstore) -> None:
        cid = V1.cid_bytes(RAW, b"hello")
        assert not store.has(cid)
        store.put(cid, b"hello")
        assert store.has(cid) and store.get(cid) == b"hello"
        store.put(cid, b"hello")  # idempotent
        assert store.get(cid) == b"hello"

    def test_empty_block(self, store: MemoryBlockstore | DirectoryBlockstore) -> None:
        cid = V1.cid_bytes(RAW, b"")
        store.put(cid, b"")
        assert store.get(cid) == b""

    def test_v0_cids(self, store: MemoryBlockstore | DirectoryBlockstore) -> None:
        block = bytes.fromhex("0a0408021800")
        cid = V0.cid_bytes(DAG_PB, block)
        store.put(cid, block)
        assert get_verified(store, cid) == block

    def test_missing_names_the_cid(self, store: MemoryBlockstore | DirectoryBlockstore) -> None:
        cid = V1.cid_bytes(RAW, b"absent")
        with pytest.raises(NotFoundError, match=str(CID.from_bytes(cid))):
            store.get(cid)
        with pytest.raises(KeyError):  # NotFoundError is also a KeyError
            store.get(cid)

    def test_get_verified_catches_corruption(self, store: MemoryBlockstore | DirectoryBlockstore) -> None:
        cid = V1.cid_bytes(RAW, b"good")
        store.put(cid, b"evil")
        with pytest.raises(IntegrityError, match=str(CID.from_bytes(cid))):
            get_verified(store, cid)

    def test_identity_needs_no_store(self, store: MemoryBlockstore | DirectoryBlockstore) -> None:
        cid = CidBuilder.create(1, inline_limit=32).cid_bytes(RAW, b"tiny")
        assert get_verified(store, cid) == b"tiny"

    def test_many_blocks(self, store: MemoryBlockstore | DirectoryBlockstore) -> None:
        blocks = {V1.cid_bytes(RAW, bytes([i]) * i): bytes([i]) * i for i in range(50)}
        for cid, data in blocks.items():
            store.put(cid, data)
        assert all(get_verified(store, cid) == data for cid, data in blocks.items())


class TestMemoryBlockstore(BlockstoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> MemoryBlockstore:
        return MemoryBlockstore()

    def test_len_and_iter(self, store: MemoryBlockstore) -> None:
        cid = V1.cid_bytes(RAW, b"x")
        store.put(cid, b"x")
        assert len(store) == 1 and list(store) == [cid]


class TestDirectoryBlockstore(BlockstoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> DirectoryBlockstore:
        return DirectoryBlockstore(tmp_path / "blocks")

    def test_reopen_sees_blocks(self, store: DirectoryBlockstore) -> None:
        cid = V1.cid_bytes(RAW, b"persist")
        store.put(cid, b"persist")
        assert DirectoryBlockstore(store.root, create=False).get(cid) == b"persist"

    def test_v0_and_v1_share_a_file(self, store: DirectoryBlockstore) -> None:
        block = bytes.fromhex("0a0408021800")
        v0 = CID.from_bytes(V0.cid_bytes(DAG_PB, block))
        store.put(v0.bytes, block)
        assert store.get(v0.to_v1().bytes) == block

    def test_missing_directory(self, tmp_path: Path) -> None:
        with pytest.raises(NotFoundError, match="blockstore directory not found"):
            DirectoryBlockstore(tmp_path / "nope", create=False)

    def test_a_file_is_not_called_missing(self, tmp_path: Path) -> None:
        """Regression: ``--blockstore FILE`` said the directory was not found, though FILE exists."""
        (tmp_path / "f").write_bytes(b"")
        with pytest.raises(NotFoundError, match=r"not a blockstore directory: .*f is not a directory"):
            DirectoryBlockstore(tmp_path / "f", create=False)

    def test_no_temp_files_left(self, store: DirectoryBlockstore) -> None:
        for i in range(20):
            store.put(V1.cid_bytes(RAW, bytes([i])), bytes([i]))
        names = [p.name for p in store.root.rglob("*") if p.is_file()]
        assert len(names) == 20 and not any(".tmp-" in n for n in names)

    def test_failed_write_leaves_nothing(self, store: DirectoryBlockstore, monkeypatch: pytest.MonkeyPatch) -> None:
        cid = V1.cid_bytes(RAW, b"crash")

        def boom(src: str, dst: str) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(os, "replace", boom)
        with pytest.raises(OSError, match="disk full"):
            store.put(cid, b"crash")
        monkeypatch.undo()
        assert not store.has(cid)
        assert not [p for p in store.root.rglob("*") if p.is_file()]

    def test_verify_all_reports_corrupt_files(self, store: DirectoryBlockstore) -> None:
        good, bad = V1.cid_bytes(RAW, b"good"), V1.cid_bytes(RAW, b"bad")
        store.put(good, b"good")
        store.put(bad, b"bad")
        store._path(bad).write_bytes(b"tampered")
        errors = list(store.verify_all())
        assert len(errors) == 1 and str(CID.from_bytes(bad)) in str(errors[0])


def test_null_sink_keeps_nothing() -> None:
    sink = NullSink()
    sink.put(V1.cid_bytes(RAW, b"x"), b"x")
    assert isinstance(sink, BlockSink) and not isinstance(sink, BlockSource)


def test_a_block_file_that_is_not_a_plain_file_is_refused_not_read(tmp_path: Path) -> None:
    """Regression: a block file replaced by a symlink to /dev/zero was read until memory ran out
    (6.6 GB in 10 s), and a FIFO blocked forever. Only a regular file of at most
    MAX_STORED_BLOCK_BYTES is read."""
    limit = 8 << 20  # pyipld.blockstore.MAX_STORED_BLOCK_BYTES, the CAR readers' section limit

    store = DirectoryBlockstore(tmp_path / "bs")
    cids = []
    for i in range(4):
        data = b"block %d" % i
        cid = V1.cid_bytes(RAW, data)
        store.put(cid, data)
        cids.append(cid)
    paths = [store._path(cid) for cid in cids]
    assert all(p is not None for p in paths)
    os.unlink(paths[0])
    os.symlink("/dev/zero", paths[0])  # type: ignore[arg-type]
    os.unlink(paths[1])
    os.mkfifo(paths[1])  # type: ignore[arg-type]
    with open(paths[2], "wb") as f:  # type: ignore[arg-type]
        f.truncate(limit + 1)
    for cid in (cids[2], cids[0], cids[1]):  # the oversized file first: the old code returned it
        with pytest.raises(IntegrityError):
            store.get(cid)
    assert store.get(cids[3]) == b"block 3"
