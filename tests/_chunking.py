"""Helpers shared by the chunker tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pyipld._accel import available_backends

FAST_BACKENDS = [b for b in available_backends() if b != "python"]


def split_reads(data: bytes, cuts: Sequence[int]) -> Iterator[bytes]:
    """``data`` delivered as reads cut at the (sorted, clipped) offsets ``cuts``."""
    prev = 0
    for cut in sorted({min(max(c, 0), len(data)) for c in cuts}):
        yield data[prev:cut]
        prev = cut
    yield data[prev:]


def lengths(chunks: Iterator[bytes]) -> list[int]:
    return [len(c) for c in chunks]


def check_invariants(data: bytes, chunks: list[bytes], min_size: int, max_size: int) -> None:
    assert b"".join(chunks) == data
    assert all(chunks), "empty chunk"
    for chunk in chunks[:-1]:
        assert min_size <= len(chunk) <= max_size
    if chunks:
        assert 0 < len(chunks[-1]) <= max_size
