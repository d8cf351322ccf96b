"""The parallel private-read path of a regular file (issue 14): same CIDs, blocks and CAR bytes
as the reference path, no copy of kept blocks, and a file that changes size is an error."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipld.blockstore import MemoryBlockstore, NullSink
from pyipld.car.v1 import CarV1Writer
from pyipld.errors import FileChangedError
from pyipld.unixfs import _fileread, importer
from pyipld.unixfs._fileread import FileChunks
from pyipld.unixfs.importer import import_bytes, import_file, iter_file_chunks
from pyipld.unixfs.nodes import LeafMaker
from pyipld.unixfs.params import ImportParams
from tests._deterministic import chacha_bytes

PARAMS = [ImportParams(), ImportParams(cid_version=1), ImportParams(raw_leaves=True, chunker="size-65536"),
          ImportParams(chunker="size-20000", layout="trickle"), ImportParams(cid_version=1, max_links=3,
                                                                             chunker="size-16384")]


@pytest.fixture(autouse=True)
def small_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_fileread, "SPAN_BYTES", 48 << 10)  # many spans, many tasks in flight, small files
    monkeypatch.setattr(importer, "MIN_THREADED_BYTES", 0)  # small files take the threaded path too
    real = FileChunks.leaf_links

    def counted(self: FileChunks, *args: object) -> object:
        PARALLEL_CALLS.append(self.size)
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(FileChunks, "leaf_links", counted)


PARALLEL_CALLS: list[int] = []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 700_000), which=st.integers(0, len(PARAMS) - 1), jobs=st.integers(2, 4))
def test_parallel_path_equals_reference(tmp_path_factory: pytest.TempPathFactory, size: int, which: int,
                                        jobs: int) -> None:
    params = PARAMS[which]
    data = chacha_bytes(f"fileread-{size}", size)
    path = tmp_path_factory.mktemp("f") / "f.bin"
    path.write_bytes(data)
    ref_store, par_store = MemoryBlockstore(), MemoryBlockstore()
    ref = import_bytes(data, params, ref_store)
    before = len(PARALLEL_CALLS)
    assert import_file(path, params, par_store, jobs=jobs) == ref
    assert len(PARALLEL_CALLS) == before + 1  # the parallel path ran
    assert {c: par_store.get(c) for c in par_store} == {c: ref_store.get(c) for c in ref_store}
    ref_car, par_car = io.BytesIO(), io.BytesIO()
    with CarV1Writer(ref_car, [ref.cid]) as w:
        import_bytes(data, params, w)
    with CarV1Writer(par_car, [ref.cid]) as w:
        import_file(path, params, w, jobs=jobs)
    assert par_car.getvalue() == ref_car.getvalue()


def test_kept_blocks_are_views_of_the_read_buffer(tmp_path: Path) -> None:
    """add --car: each leaf goes to the writer as views of the buffer it was hashed from (no copy)."""
    data = chacha_bytes("views", 300_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    seen: list[tuple[bytes, tuple[object, ...]]] = []

    class Recorder:
        def put(self, cid: bytes, block: bytes) -> None:
            seen.append((cid, (block,)))

        def put_parts(self, cid: bytes, parts: tuple[object, ...]) -> None:
            seen.append((cid, tuple(parts)))

    params = ImportParams(cid_version=1, chunker="size-32768")
    with open(path, "rb", buffering=0) as f:
        chunks = iter_file_chunks(f, params.resolve().chunker, path)
        assert isinstance(chunks, FileChunks)
        leaves = LeafMaker(params.resolve().cid_builder, raw=True)
        links = list(chunks.leaf_links(leaves, Recorder(), 2))  # type: ignore[arg-type]
    leaf_parts = [parts for _, parts in seen]
    assert len(leaf_parts) == len(links) == 10
    assert all(len(p) == 1 and isinstance(p[0], memoryview) and isinstance(p[0].obj, bytearray) for p in leaf_parts)
    assert b"".join(bytes(p[0]) for p in leaf_parts) == data  # type: ignore[arg-type]


@pytest.mark.parametrize("jobs", [1, 2])
def test_shorter_than_opened_is_an_error(tmp_path: Path, jobs: int) -> None:
    """A file that is shorter than its size at open (it shrank) fails on the read that meets EOF."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 200_000)
    with open(path, "rb", buffering=0) as f:
        chunks = FileChunks(f.fileno(), 500_000, 65536, str(path))
        with pytest.raises(FileChangedError, match="500000 bytes when opened, 200000 bytes now"):
            if jobs == 1:
                list(chunks)
            else:
                leaves = LeafMaker(ImportParams().resolve().cid_builder, raw=False)
                list(chunks.leaf_links(leaves, NullSink(), jobs))


def test_longer_than_opened_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"y" * 300_000)
    with open(path, "rb", buffering=0) as f:
        chunks = FileChunks(f.fileno(), 250_000, 65536, str(path))
        leaves = LeafMaker(ImportParams().resolve().cid_builder, raw=False)
        with pytest.raises(FileChangedError, match="250000 bytes when opened, 300000 bytes now"):
            list(chunks.leaf_links(leaves, NullSink(), 2))


def test_parallel_after_serial_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"z" * 100_000)
    with open(path, "rb", buffering=0) as f:
        chunks = FileChunks(f.fileno(), os.fstat(f.fileno()).st_size, 65536, str(path))
        next(chunks)
        leaves = LeafMaker(ImportParams().resolve().cid_builder, raw=False)
        with pytest.raises(RuntimeError, match="one by one"):
            list(chunks.leaf_links(leaves, NullSink(), 2))
