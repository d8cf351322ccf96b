"""read_exact: short reads are retried, EOF gives fewer bytes (Go io.ReadFull)."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from pyipld._io import read_exact


class _Trickle(io.RawIOBase):
    """A stream that returns at most ``step`` bytes per read, like a pipe."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        take = self._step if n < 0 else min(n, self._step)
        out = self._data[self._pos : self._pos + take]
        self._pos += len(out)
        return out


@given(st.binary(max_size=300), st.integers(1, 7), st.integers(1, 64))
def test_read_exact_joins_short_reads(data: bytes, step: int, n: int) -> None:
    stream = _Trickle(data, step)
    got = []
    while chunk := read_exact(stream, n):  # type: ignore[arg-type]
        got.append(chunk)
    assert b"".join(got) == data
    assert all(len(c) == n for c in got[:-1])
