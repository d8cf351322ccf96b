"""The streaming driver: blocks in place or assembled, pipelined decisions, bounded and safe."""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld.chunker._window import split_stream
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
