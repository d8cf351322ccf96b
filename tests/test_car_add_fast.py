"""`add --car`'s fast path (issue 14): leaves read and hashed on threads into pooled span buffers,
written with os.writev from those very buffers by the CAR writer's thread, and the buffers read
into again once written. The CAR bytes equal the one-thread, joined-block reference."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipld.car import _bgwrite
from pyipld.car.resume import open_resumable_car_sink
from pyipld.car.sink import open_car_sink, placeholder_root_for
from pyipld.car.v1 import CarV1Writer
from pyipld.unixfs import _fileread, importer
from pyipld.unixfs.importer import import_file
from pyipld.unixfs.params import ImportParams
from tests._deterministic import chacha_bytes


class PutOnly:
    def __init__(self, writer: CarV1Writer) -> None:
        self.writer = writer

    def put(self, cid: bytes, data: bytes) -> None:
        self.writer.put(cid, data)


def _reference(src: Path, params: ImportParams) -> bytes:
    out = io.BytesIO()
    writer = CarV1Writer(out, background=False)
    writer.set_roots([import_file(src, params, PutOnly(writer), jobs=1).cid])
    writer.close()
    return out.getvalue()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 700_000), chunk=st.sampled_from([1000, 4096, 65536, 262144]),
       cid_version=st.sampled_from([0, 1]), raw=st.booleans(), version=st.sampled_from([1, 2]),
       span=st.integers(1, 300_000), pending=st.integers(1, 1 << 20), jobs=st.integers(2, 3))
def test_fast_car_equals_reference(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory,
                                   size: int, chunk: int, cid_version: int, raw: bool, version: int, span: int,
                                   pending: int, jobs: int) -> None:
    monkeypatch.setattr(importer, "MIN_THREADED_BYTES", 0)
    monkeypatch.setattr(importer, "MIN_THREADED_CHUNK", 0)
    monkeypatch.setattr(_fileread, "SPAN_BYTES", span)  # spans of one chunk or many; buffers reused often
    monkeypatch.setattr(_bgwrite, "_DEFAULT_PENDING_BYTES", pending)  # the writer thread falls behind
    d = tmp_path_factory.mktemp("a")
    src = d / "in.bin"
    data = chacha_bytes(f"fast-car-{size}", size)
    src.write_bytes(data[: size // 3] * 2 + data[: size - 2 * (size // 3)])  # repeated chunks: dedupe
    params = ImportParams(cid_version=cid_version, raw_leaves=raw, chunker=f"size-{chunk}")
    out = d / "out.car"
    with open_car_sink(out, version, params=params) as car:
        car.set_roots([import_file(src, params, car, jobs=jobs).cid])
    expected = _reference(src, params)
    if version == 2:
        from pyipld.car.v2 import wrap_v1

        wrapped = io.BytesIO()
        wrap_v1(io.BytesIO(expected), wrapped)
        expected = wrapped.getvalue()
    assert out.read_bytes() == expected


def test_span_buffers_are_reused_only_after_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer thread is held back: no span buffer may be read into again before its blocks
    are on disk (else the CAR would hold bytes of a later span), and some are reused after."""
    monkeypatch.setattr(_fileread, "SPAN_BYTES", 64 << 10)
    monkeypatch.setattr(importer, "MIN_THREADED_BYTES", 0)
    real = _bgwrite._writev_all

    def slow(fd: int, parts: list[bytes | bytearray | memoryview]) -> None:
        time.sleep(0.002)
        real(fd, parts)

    monkeypatch.setattr(_bgwrite, "_writev_all", slow)
    src = tmp_path / "in.bin"
    src.write_bytes(chacha_bytes("reuse", 3_000_000))
    params = ImportParams(cid_version=1, chunker="size-16384")
    out = tmp_path / "o.car"
    with open_car_sink(out, 1, params=params) as car:
        car.set_roots([import_file(src, params, car, jobs=2).cid])
    assert out.read_bytes() == _reference(src, params)


@pytest.mark.parametrize("resumable", [False, True])
def test_span_buffers_come_from_a_bounded_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               resumable: bool) -> None:
    """Regression: ``add --car`` (the resumable CAR sink) gave every span a fresh buffer (page
    faults and zeroing for each 2 MiB) because that sink had no ``when_written``."""
    monkeypatch.setattr(_fileread, "SPAN_BYTES", 64 << 10)
    monkeypatch.setattr(importer, "MIN_THREADED_BYTES", 0)
    monkeypatch.setattr(_bgwrite, "_DEFAULT_PENDING_BYTES", 256 << 10)  # 4 spans queued at most
    made: list[int] = []

    def counting_bytearray(*args: int) -> bytearray:
        made.append(args[0] if args else 0)
        return bytearray(*args)

    monkeypatch.setattr(_fileread, "bytearray", counting_bytearray, raising=False)
    src = tmp_path / "in.bin"
    src.write_bytes(chacha_bytes("pool", 8 << 20))  # 128 spans
    params = ImportParams(cid_version=1, chunker="size-16384")
    out = tmp_path / "o.car"
    opened = (open_resumable_car_sink(out, 1, key="k", placeholder_roots=[placeholder_root_for(params)])
              if resumable else open_car_sink(out, 1, params=params))
    with opened as car:
        car.set_roots([import_file(src, params, car, jobs=2).cid])
    assert out.read_bytes() == _reference(src, params)
    spans = [n for n in made if n == 64 << 10]
    assert 0 < len(spans) <= 12, len(spans)  # the window (4), the writer's queue (4 + 1), not one per span


def test_writev_all_partial_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    calls = []
    real = os.writev

    def short(fd: int, views: list[memoryview]) -> int:  # at most 5 bytes a call
        calls.append(len(views))
        first = next((v for v in views if len(v)), b"")
        return real(fd, [first[:5]]) if first else 0

    monkeypatch.setattr(os, "writev", short)
    path = tmp_path / "w"
    parts = [b"abc", b"", bytearray(b"defghijk"), memoryview(b"lmnopqrstu")[2:], b"z"]
    with open(path, "wb") as f:
        _bgwrite._writev_all(f.fileno(), parts)
    assert path.read_bytes() == b"abcdefghijknopqrstuz"
    assert len(calls) > 3


def test_call_when_written_runs_after_the_parts_before_it(tmp_path: Path) -> None:
    path = tmp_path / "w"
    seen: list[bytes] = []
    with open(path, "wb") as f:
        bg = _bgwrite.BackgroundWriter(f, fd=f.fileno())
        bg.write(b"one", b"two")
        bg.call_when_written(lambda: seen.append(path.read_bytes()))
        bg.write(b"three")
        bg.close()
    assert seen == [b"onetwo"]
    assert path.read_bytes() == b"onetwothree"


def test_disk_full_on_the_writer_thread_is_raised_and_no_file_is_left(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    monkeypatch.setattr(importer, "MIN_THREADED_BYTES", 0)
    real = os.writev
    calls = [0]

    def full(fd: int, views: list[memoryview]) -> int:
        calls[0] += 1
        if calls[0] > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, views)

    monkeypatch.setattr(os, "writev", full)
    src = tmp_path / "in.bin"
    src.write_bytes(chacha_bytes("full", 5_000_000))
    params = ImportParams(cid_version=1)
    out = tmp_path / "o.car"
    with pytest.raises(OSError, match="No space left"), open_car_sink(out, 1, params=params) as car:
        car.set_roots([import_file(src, params, car, jobs=2).cid])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin"]


def test_an_error_seen_by_write_leaves_nothing_pending(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: when a write error reached the producer through ``write()``, the thread was
    stopped with sections still queued and counted as pending, so the ``drain()`` of the error
    path (the resumable sink's ``interrupted()``) waited forever: ``add --car`` onto a full disk
    hung about one run in four instead of printing ``Error: …``."""
    import errno
    import threading

    from pyipld.errors import CarError

    go, in_call, drained = threading.Event(), threading.Event(), threading.Event()

    def full(fd: int, parts: list[bytes | bytearray | memoryview]) -> None:
        go.wait(10)
        raise OSError(errno.ENOSPC, "No space left on device")

    def slow_call() -> None:  # holds the thread while the producer sees the error
        in_call.set()
        time.sleep(0.3)

    monkeypatch.setattr(_bgwrite, "_writev_all", full)
    with open(tmp_path / "w", "wb") as f:
        bg = _bgwrite.BackgroundWriter(f, fd=f.fileno())
        bg.write(b"first")
        bg.call_when_written(slow_call)
        bg.write(b"still queued when the error is seen")
        go.set()
        assert in_call.wait(10)
        with pytest.raises(OSError, match="No space left"):
            bg.write(b"after")
        waiter = threading.Thread(target=lambda: (bg.drain(), drained.set()), daemon=True)
        waiter.start()
        waiter.join(10)
        assert drained.is_set(), "drain() still waiting for sections nobody will write"
        with pytest.raises(CarError, match="stopped"):
            bg.write(b"more")
        bg.close()
