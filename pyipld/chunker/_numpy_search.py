"""Shared numpy machinery of the rabin and buzhash chunkers: candidates, then boundaries.

A subclass computes, for a range of window ends ``[e0, e1)``, which ends are
candidates (the window hash has its mask bits zero). Boundaries are then chosen
greedily: from chunk start ``s`` the first candidate in ``[s+min_size, s+last_ok]``,
else a forced cut at ``s+lookahead`` (the maximum chunk), else — only at EOF — the end.

Two strategies give the same cuts:

* **dense**: candidates for the whole buffer, then ``searchsorted`` (best when
  chunks are small, so per-chunk numpy calls would dominate);
* **sparse**: per chunk, only the ends that can matter, from ``s+min_size`` on, in
  growing steps until a candidate turns up (bytes closer than ``min_size`` to a
  chunk start are never hashed — a third to a half of all bytes with kubo's sizes).
"""

from __future__ import annotations

from typing import Any

from .._accel import numpy_module
from . import BytesLike

__all__ = ["NumpyCandidateSearch", "greedy_cuts"]


def greedy_cuts(np: Any, cand: Any, n: int, eof: bool, min_size: int, last_ok: int, lookahead: int) -> list[int]:
    """Pick boundaries from sorted candidate ends (see the module docstring).

    A chunk is settled only when ``lookahead`` bytes follow its start, or at EOF.
    """
    ends: list[int] = []
    start = 0
    size = len(cand)
    while start < n and (eof or n - start >= lookahead):
        i = int(np.searchsorted(cand, start + min_size))
        if i < size and int(cand[i]) <= min(start + last_ok, n):
            start = int(cand[i])
        elif n - start >= lookahead:
            start += lookahead
        else:
            start = n
        ends.append(start)
    return ends


class NumpyCandidateSearch:
    """Base of the numpy backends; subclasses implement :meth:`scan`."""

    window: int = 16
    segment: int = 1 << 18  # window ends per vectorized step (keeps temporaries cache-sized)
    first_step: int = 1 << 17  # sparse strategy: ends examined first after s+min_size (then doubled)

    def __init__(self, min_size: int, last_ok: int, lookahead: int, *, sparse: bool) -> None:
        np = numpy_module()
        if np is None:  # pragma: no cover - guarded by _accel
            raise RuntimeError("numpy backend without numpy")
        self.np: Any = np
        self.min_size, self.last_ok, self.lookahead = min_size, last_ok, lookahead
        self.sparse = sparse

    def scan(self, data: Any, e0: int, e1: int) -> Any:
        """Offsets ``e - e0`` (sorted, int64) of the candidate ends e in ``[e0, e1)``; ``e0 >= window``."""
        raise NotImplementedError

    def candidates(self, data: Any, e0: int, e1: int, *, first_only: bool = False) -> Any:
        """Sorted candidate ends in ``[e0, e1)``, computed segment by segment."""
        np = self.np
        found = [np.empty(0, dtype=np.int64)]
        for start in range(e0, e1, self.segment):
            hits = self.scan(data, start, min(start + self.segment, e1))
            if hits.size:
                found.append(hits + start)
                if first_only:
                    break
        return np.concatenate(found)

    def decide(self, buf: BytesLike, eof: bool) -> list[int]:
        np = self.np
        data = np.frombuffer(buf, dtype=np.uint8)
        n = len(data)
        if not self.sparse:
            cand = self.candidates(data, self.window, n + 1)
            return greedy_cuts(np, cand, n, eof, self.min_size, self.last_ok, self.lookahead)
        ends: list[int] = []
        start = 0
        while start < n and (eof or n - start >= self.lookahead):
            lo, hi = start + self.min_size, min(start + self.last_ok, n)
            cut = -1
            step = self.first_step
            while lo <= hi:
                top = min(lo + step, hi + 1)
                cand = self.candidates(data, lo, top, first_only=True)
                if cand.size:
                    cut = int(cand[0])
                    break
                lo, step = top, step * 2
            if cut < 0:
                cut = start + self.lookahead if n - start >= self.lookahead else n
            ends.append(cut)
            start = cut
        return ends
