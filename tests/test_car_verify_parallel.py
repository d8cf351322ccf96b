"""CarFile.verify_blocks on a regular file reads spans with pread and hashes them on threads (issue 14):
the same count and the same first error as the streaming reference, and never a mapping."""

from __future__ import annotations

import io
import mmap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipld.car import reader as car_reader
from pyipld.car.reader import CarFile
from pyipld.car.v1 import CarV1Writer
from pyipld.errors import CarError, IntegrityError, PyipldError
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.params import ImportParams
from tests._deterministic import chacha_bytes


@pytest.fixture(autouse=True)
def small_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(car_reader, "VERIFY_SPAN_BYTES", 40_000)  # many spans in flight


def _car(size: int, seed: str) -> bytes:
    data = chacha_bytes(seed, size)
    params = ImportParams(cid_version=1, chunker="size-16384")
    root = import_bytes(data, params).cid
    out = io.BytesIO()
    with CarV1Writer(out, [root]) as w:
        import_bytes(data, params, w)
    return out.getvalue()


def _reference(path: Path) -> tuple[str, int | str]:
    """The streaming reader's verdict (file object that is not a regular file: no fileno)."""
    try:
        with CarFile(io.BytesIO(path.read_bytes())) as car:
            return "ok", car.verify_blocks()
    except PyipldError as exc:
        return type(exc).__name__, str(exc)


def _parallel(path: Path, jobs: int) -> tuple[str, int | str]:
    try:
        with CarFile(path) as car:
            return "ok", car.verify_blocks(jobs=jobs)
    except PyipldError as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(1, 400_000), flips=st.lists(st.floats(0.05, 1.0), max_size=2), cut=st.none() | st.floats(0.1, 1.0),
       jobs=st.integers(1, 3))
def test_parallel_verify_equals_streaming(tmp_path_factory: pytest.TempPathFactory, size: int, flips: list[float],
                                          cut: float | None, jobs: int) -> None:
    car = bytearray(_car(size, f"verify-{size}"))
    for where in flips:  # corrupt bytes (maybe block data, maybe framing)
        i = min(len(car) - 1, int(where * len(car)))
        car[i] ^= 0x55
    if cut is not None:
        car = car[: max(60, int(cut * len(car)))]
    path = tmp_path_factory.mktemp("c") / "c.car"
    path.write_bytes(car)
    assert _parallel(path, jobs) == _reference(path)


def test_bad_block_before_a_malformed_section_is_reported_first(tmp_path: Path) -> None:
    car = bytearray(_car(300_000, "order"))
    with CarFile(io.BytesIO(bytes(car))) as ref:
        heads = list(ref.iter_heads())
        first_data = ref.payload_offset + heads[1].data_offset
    car[first_data + 5] ^= 1  # the 2nd block's data
    car = car[: len(car) - 100]  # the last section is cut short
    path = tmp_path / "c.car"
    path.write_bytes(car)
    with pytest.raises(IntegrityError, match=f"at offset {heads[1].offset}"), CarFile(path) as car_file:
        car_file.verify_blocks(jobs=2)


def test_verify_never_maps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CAR truncated during `car verify` must not SIGBUS the process: no mmap at all."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("verify_blocks mapped the file")

    monkeypatch.setattr(mmap, "mmap", refuse)
    path = tmp_path / "c.car"
    path.write_bytes(_car(200_000, "nomap"))
    with CarFile(path) as car:
        assert car.verify_blocks(jobs=2) == len(list(car.iter_heads()))


def test_shrunk_after_open_is_a_car_error(tmp_path: Path) -> None:
    path = tmp_path / "c.car"
    path.write_bytes(_car(200_000, "shrink"))
    with CarFile(path) as car:
        first = next(car.iter_heads())
        with open(path, "r+b") as f:
            f.truncate(car.payload_offset + first.data_offset + 10)
        with pytest.raises(CarError, match="unexpected EOF in section data"):
            car.verify_blocks(jobs=2)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(1, 200_000), span=st.integers(1, 70_000))
def test_spans_smaller_than_sections(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory,
                                     size: int, span: int) -> None:
    """A section longer than a span is read whole; any span size gives the reference's count."""
    monkeypatch.setattr(car_reader, "VERIFY_SPAN_BYTES", span)
    path = tmp_path_factory.mktemp("c") / "c.car"
    path.write_bytes(_car(size, f"span-{size}"))
    assert _parallel(path, 2) == _reference(path)


def test_roots_and_progress_from_the_one_walk(tmp_path: Path) -> None:
    path = tmp_path / "c.car"
    path.write_bytes(_car(150_000, "seen"))
    seen: list[bytes] = []
    done: list[int] = []
    with CarFile(path) as car:
        n = car.verify_blocks(jobs=2, seen=lambda head: seen.append(head.cid), progress=done.append)
        heads = list(car._reader(verify=False).iter_heads())
    assert n == len(heads) == len(seen)
    assert seen == [h.cid for h in heads]
    assert done == [h.length for h in heads]


def test_shrunk_between_walk_and_read_is_a_car_error(tmp_path: Path) -> None:
    """The heads were walked, then the file shrank under a span a worker reads: a CarError."""
    import os
    import threading

    path = tmp_path / "c.car"
    path.write_bytes(_car(200_000, "shrink-late"))
    with CarFile(path) as car:
        first = next(car.iter_heads())
        with open(path, "r+b") as f:
            f.truncate(car.payload_offset + first.data_offset + 10)
        fd = os.open(path, os.O_RDONLY)
        try:
            with pytest.raises(CarError, match="unexpected EOF in section data.*the file shrank"):
                car_reader._verify_span(fd, car.payload_offset + first.data_offset, first.data_length,
                                        [(0, first.data_length, 0x12, b"", first.cid, first.offset)],
                                        threading.local())
        finally:
            os.close(fd)


@pytest.mark.parametrize("k", range(6))
def test_bad_block_in_either_lane_of_a_pair(tmp_path: Path, k: int) -> None:
    """Blocks are hashed two at a time: a flipped byte in the k-th block (first or second lane,
    last odd one) is the error, naming that block, as the streaming reader says."""
    car = bytearray(_car(6 * 16384, "lanes"))
    with CarFile(io.BytesIO(bytes(car))) as parsed:
        heads = list(parsed.iter_heads())
    leaves = [h for h in heads if h.data_length == 16384]
    assert len(leaves) == 6
    car[leaves[k].data_offset + 100] ^= 1
    path = tmp_path / "c.car"
    path.write_bytes(car)
    verdict = _parallel(path, 2)
    assert verdict[0] == "IntegrityError"
    assert verdict == _reference(path)
