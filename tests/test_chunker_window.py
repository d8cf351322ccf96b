"""The streaming driver: blocks in place or assembled, pipelined decisions, bounded and safe."""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld.chunker import buzhash as buzhash_module
from pyipld.chunker import rabin as rabin_module
from pyipld.chunker._window import split_mapped, split_stream, split_stream_views
from pyipld.chunker.buzhash import Buzhash
from pyipld.chunker.rabin import Rabin
from tests._chunking import FAST_BACKENDS
from tests._deterministic import chacha_bytes


def every_k(k: int, lookahead: int):  # type: ignore[no-untyped-def]
    """A toy backend: cut every k bytes (a chunk settles once lookahead bytes follow its start)."""
    seen: list[int] = []

    def decide(buf, eof):  # type: ignore[no-untyped-def]
        seen.append(len(buf))
        ends, start = [], 0
        while start < len(buf) and (eof or len(buf) - start >= lookahead):
            start = min(start + k, len(buf))
            ends.append(start)
        return ends

    return decide, seen


@settings(max_examples=200)
@given(size=st.integers(0, 5000), k=st.integers(1, 40), block=st.integers(41, 400),
       cuts=st.lists(st.integers(0, 5000), max_size=8), as_bytes=st.booleans(), parallel=st.booleans())
def test_toy_backend_any_reads(size: int, k: int, block: int, cuts: list[int], as_bytes: bool,
                               parallel: bool) -> None:
    data = chacha_bytes("window", size)
    bounds = sorted({min(c, size) for c in cuts} | {0, size})
    reads = [data[a:b] if as_bytes else bytearray(data[a:b]) for a, b in itertools.pairwise(bounds)]
    decide, seen = every_k(k, 40)
    chunks = list(split_stream(reads, decide, lookahead=40, block_size=block, parallel=parallel))
    assert chunks == [data[i : i + k] for i in range(0, size, k)]
    assert all(n <= block + 40 for n in seen)  # blocks stay bounded


def test_refilled_bytearray_reads_are_copied_not_aliased() -> None:
    data = chacha_bytes("readinto", 3_000_000)
    ref = list(Rabin(87381, 262144, 393216, backend="python").split([data]))

    def readinto_style() -> Iterator[bytearray]:
        buf = bytearray(1 << 20)
        f = io.BytesIO(data)
        while n := f.readinto(buf):
            yield buf if n == len(buf) else buf[:n]  # the same buffer, refilled every time

    for backend in ["python", *FAST_BACKENDS]:
        assert list(Rabin(87381, 262144, 393216, backend=backend, block_size=1_000_000).split(readinto_style())) == ref


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_abandoned_split_stops_its_worker(backend: str) -> None:
    data = chacha_bytes("abandon", 12 << 20)
    before = threading.active_count()
    chunks = Buzhash(backend=backend).split([data])
    first = next(chunks)
    assert len(first) >= 128 * 1024
    chunks.close()  # GeneratorExit: the pipeline's worker thread is shut down
    assert threading.active_count() == before


def test_block_must_exceed_lookahead() -> None:
    decide, _ = every_k(1, 10)
    with pytest.raises(ValueError):
        list(split_stream([b"x"], decide, lookahead=10, block_size=10))


# -- views and mapped files (the importer's zero-copy paths) --------------------------------


@settings(max_examples=150)
@given(size=st.integers(0, 5000), k=st.integers(1, 40), block=st.integers(41, 400),
       cuts=st.lists(st.integers(0, 5000), max_size=8), as_bytes=st.booleans(), parallel=st.booleans())
def test_views_equal_bytes_and_outlive_the_reads(size: int, k: int, block: int, cuts: list[int],
                                                 as_bytes: bool, parallel: bool) -> None:
    data = chacha_bytes("views", size)
    bounds = sorted({min(c, size) for c in cuts} | {0, size})

    def reads() -> Iterator[bytes | bytearray]:
        for a, b in itertools.pairwise(bounds):
            if as_bytes:
                yield data[a:b]
            else:  # a producer that scribbles over its buffer once we moved on
                buf = bytearray(data[a:b])
                yield buf
                buf[:] = bytes(len(buf))

    decide, _ = every_k(k, 40)
    views = list(split_stream_views(reads(), decide, lookahead=40, block_size=block, parallel=parallel))
    assert all(isinstance(v, memoryview) for v in views)
    assert [bytes(v) for v in views] == [data[i : i + k] for i in range(0, size, k)]


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 70000), k=st.integers(50, 5000), extra=st.integers(100, 30000), parallel=st.booleans())
def test_mapped_file_equals_stream(tmp_path_factory: pytest.TempPathFactory, size: int, k: int, extra: int,
                                   parallel: bool) -> None:
    data = chacha_bytes("mapped", size)
    path = tmp_path_factory.mktemp("m") / "f.bin"
    path.write_bytes(data + b"appended later, not imported")
    lookahead = k + 7
    decide, seen = every_k(k, lookahead)
    with open(path, "rb") as f:
        # Copied as they come: every live view keeps its block's mapping.
        chunks = [bytes(v) for v in split_mapped(f.fileno(), size, decide, lookahead=lookahead,
                                                 block_size=lookahead + extra, parallel=parallel)]
    assert chunks == [data[i : i + k] for i in range(0, size, k)]
    assert all(n <= lookahead + extra for n in seen)


def test_mapped_file_truncated_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "shrinks.bin"
    path.write_bytes(bytes(4 << 20))
    decide, _ = every_k(1000, 2000)
    with open(path, "rb") as f:
        chunks = split_mapped(f.fileno(), 4 << 20, decide, lookahead=2000, block_size=1 << 20)
        next(chunks)
        with open(path, "r+b") as g:
            g.truncate(1 << 20)
        with pytest.raises(OSError, match="shrank"):
            for _ in chunks:
                pass


@pytest.mark.parametrize("backend", ["python", *FAST_BACKENDS])
@pytest.mark.parametrize("make", [
    lambda b: Rabin(16, 64, 256, backend=b, block_size=600),
    lambda b: Rabin(1000, 4096, 9000, backend=b, block_size=20000),
    lambda b: Rabin(8, 30, 40, backend=b),  # rabin-30: one chunk (MIN < 16)
    lambda b: Buzhash(backend=b, block_size=(1 << 20) + 1),
], ids=["rabin-16-64-256", "rabin-1000-4096-9000", "rabin-30", "buzhash"])
def test_chunker_views_and_mapped_equal_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str,
                                              make) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(rabin_module, "MAPPED_BLOCKS", 1)  # several mapped blocks even on small files
    monkeypatch.setattr(buzhash_module, "MAPPED_BLOCKS", 1)
    chunker = make(backend)
    size = 3_000_000 if isinstance(chunker, Buzhash) else 200_000
    data = chacha_bytes("cdc-mapped", size // 2) + bytes(size // 4) + b"ab" * (size // 8)
    ref = list(chunker.split([data]))
    assert b"".join(ref) == data
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    with open(path, "rb") as f:
        mapped = [bytes(c) for c in chunker.split_mapped(f.fileno(), len(data))]
    assert mapped == ref
    reads = [data[i : i + 70001] for i in range(0, len(data), 70001)]
    assert [bytes(c) for c in chunker.split_views(reads)] == ref
    assert [bytes(c) for c in chunker.split_views([bytearray(r) for r in reads])] == ref
