"""go-fil-commp-hashhash random.txt: Lotus piece CIDs of Go math/rand(1337) data.

The inputs are regenerated here the way hashhash's own TestCommP does (its copy of
jbenet/go-random's generator): ``rand.New(rand.NewSource(1337))``, 4 MiB buffers
filled with ``Uint32()`` words, little-endian. math/rand's source is an additive
lagged Fibonacci generator (lags 607 and 273) seeded from a vendored table
(tests/vectors/go_math_rand_cooked.txt).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from pyipld.filecoin import commp as C
from tests._shared import shared_path

_COOKED = Path(__file__).with_name("vectors") / "go_math_rand_cooked.txt"
_LEN, _TAP = 607, 273
_M = (1 << 31) - 1
_MASK63 = (1 << 63) - 1


def _cooked() -> list[int]:
    words = [w for line in _COOKED.read_text().splitlines() if not line.startswith("#") for w in line.split()]
    return [int(w) for w in words]


def _seedrand(x: int) -> int:
    hi, lo = divmod(x, 44488)
    x = 48271 * lo - 3399 * hi
    return x + _M if x < 0 else x


class GoRand:
    """Go math/rand's rngSource: Int63 values, generated in vectorised blocks."""

    def __init__(self, seed: int) -> None:
        cooked = _cooked()
        assert len(cooked) == _LEN
        seed %= _M
        if seed == 0:
            seed = 89482311
        x = seed
        vec = [0] * _LEN
        for i in range(-20, _LEN):
            x = _seedrand(x)
            if i >= 0:
                u = x << 40
                x = _seedrand(x)
                u ^= x << 20
                x = _seedrand(x)
                u ^= x
                u ^= cooked[i]
                vec[i] = u & _MASK63
        # The first 607 outputs follow the register directly (tap, feed count down).
        tap, feed = 0, _LEN - _TAP
        first = []
        for _ in range(_LEN):
            tap = (tap - 1) % _LEN
            feed = (feed - 1) % _LEN
            vec[feed] = (vec[feed] + vec[tap]) & _MASK63
            first.append(vec[feed])
        # After that, output n = output n-607 + output n-273 (mod 2**63).
        self._out = np.array(first, dtype=np.uint64)

    def int63(self, count: int) -> np.ndarray:
        """The first ``count`` Int63 outputs."""
        out = np.empty(max(count, _LEN), dtype=np.uint64)
        out[:_LEN] = self._out[:_LEN]
        mask = np.uint64(_MASK63)
        n = _LEN
        while n < count:
            block = min(_TAP, count - n)
            np.add(out[n - _LEN : n - _LEN + block], out[n - _TAP : n - _TAP + block], out=out[n : n + block])
            out[n : n + block] &= mask
            n += block
        return out[:count]


def go_random_bytes(size: int, seed: int = 1337) -> bytes:
    """The payload of random.txt: successive ``Uint32()`` words, little-endian, truncated.

    (Filled in 4 MiB buffers, a multiple of 4, so only the very end cuts a word.)
    """
    words = -(-size // 4)
    values = (GoRand(seed).int63(words) >> np.uint64(31)).astype("<u4")
    return values.tobytes()[:size]


def _vectors(max_size: int) -> list[tuple[int, int, str]]:
    lines = shared_path("fixtures", "commp", "go-fil-commp-hashhash", "random.txt").read_text().split()
    assert len(lines) == 143
    out = []
    for line in lines:
        size, padded, cid = line.split(",")
        if int(size) <= max_size:
            out.append((int(size), int(padded), cid))
    return out


def test_cooked_table_is_pinned() -> None:
    assert hashlib.sha256(_COOKED.read_bytes()).hexdigest() == COOKED_SHA256


def test_go_rand_first_values_follow_recurrence() -> None:
    r = GoRand(1337)
    v = r.int63(2000)
    for n in (700, 1000, 1999):
        assert int(v[n]) == (int(v[n - 607]) + int(v[n - 273])) & _MASK63


def test_go_random_prefix_consistent() -> None:
    assert go_random_bytes(1000)[:333] == go_random_bytes(333)


@pytest.mark.parametrize("backend", ["python", "auto"])
def test_random_vectors_small(backend: str) -> None:
    vectors = _vectors(1 << 20)
    assert len(vectors) == 68
    data = go_random_bytes(vectors[-1][0])
    for size, padded, cid in vectors:
        info = C.commp_bytes(data[:size], backend=backend)
        assert (str(info.cid_v1), info.padded_size) == (cid, padded), size


@pytest.mark.slow
def test_random_vectors_up_to_64_mib() -> None:
    for size, padded, cid in _vectors(64 << 20):
        if size <= 1 << 20:
            continue
        data = go_random_bytes(size)
        info = C.commp_bytes(data, jobs=C.default_jobs())
        assert (str(info.cid_v1), info.padded_size) == (cid, padded), size


COOKED_SHA256 = "67b7b434ee708da3e68dd1f96dd435c354679a028aa4f4f55ca7a39762656502"  # of tests/vectors/go_math_rand_cooked.txt
