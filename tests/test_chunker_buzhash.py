"""Buzhash chunker: the shipped table, spec invariants, backends against the plain reference."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld.chunker import parse_chunker
from pyipld.chunker.buzhash import BUZ_MAX, BUZ_MIN, BYTEHASH, Buzhash, buzhash32
from tests._chunking import FAST_BACKENDS, check_invariants, lengths, split_reads
from tests._deterministic import chacha_bytes
from tests._shared import shared_path

TABLE_SHA256 = "10ea9f3f777f0dc2c64f09956418ed22014318f039d2baed6d4893ababdb30f7"  # shared/spec/chunkers.md §4.1
ALL = ["python", *FAST_BACKENDS]


def test_shipped_table_is_pinned() -> None:
    raw = resources.files("pyipld.chunker").joinpath("buzhash_table.txt").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == TABLE_SHA256
    assert len(BYTEHASH) == 256
    assert BYTEHASH[0] == 0x6236E7D5 and BYTEHASH[255] == 0x5C41857D


def test_shipped_table_equals_spec_copy() -> None:
    spec = shared_path("spec", "buzhash_table.txt").read_bytes()
    assert resources.files("pyipld.chunker").joinpath("buzhash_table.txt").read_bytes() == spec


def test_table_bit_bias() -> None:
    # boxo TestBuzhashBitsHashBias: every bit is set in exactly half of the entries.
    for bit in range(32):
        assert sum((v >> bit) & 1 for v in BYTEHASH) == 128


def test_window_hash_known_value() -> None:
    assert buzhash32(bytes(range(32))) == 0x9CA9DE24
    assert buzhash32(bytes(32)) == 0  # popcount(T[0]) is even
    with pytest.raises(ValueError):
        buzhash32(b"short")


def test_rolling_equals_window_hash() -> None:
    data = chacha_bytes("buz-roll", 300)
    state = 0
    for i in range(32):
        state = (((state << 1) | (state >> 31)) & 0xFFFFFFFF) ^ BYTEHASH[data[i]]
    assert state == buzhash32(data[:32])
    for i in range(32, len(data)):
        state = (((state << 1) | (state >> 31)) & 0xFFFFFFFF) ^ BYTEHASH[data[i - 32]] ^ BYTEHASH[data[i]]
        assert state == buzhash32(data[i - 31 : i + 1])


@pytest.mark.parametrize("backend", ALL)
def test_zero_input_cuts_at_128k(backend: str) -> None:
    data = bytes(1_000_000)
    assert lengths(Buzhash(backend=backend).split([data])) == [BUZ_MIN] * 7 + [1_000_000 - 7 * BUZ_MIN]


@pytest.mark.parametrize("backend", ALL)
@pytest.mark.parametrize("byte", [0x01, 0x02, 0x06, 0x41])
def test_constant_byte_runs(backend: str, byte: int) -> None:
    data = bytes([byte]) * 1_200_000
    odd = BYTEHASH[byte].bit_count() % 2 == 1
    size = BUZ_MAX if odd else BUZ_MIN
    got = lengths(Buzhash(backend=backend).split([data]))
    assert got[:-1] == [size] * (len(got) - 1)
    assert sum(got) == len(data)


@pytest.mark.parametrize("backend", ALL)
def test_small_and_empty_inputs(backend: str) -> None:
    chunker = Buzhash(backend=backend)
    assert list(chunker.split([])) == []
    assert list(chunker.split([b"Hello Worlds!\n"])) == [b"Hello Worlds!\n"]
    data = chacha_bytes("buz-small", BUZ_MIN - 1)
    assert list(chunker.split([data])) == [data]


def test_parse_ignores_suffix_like_boxo() -> None:
    assert isinstance(parse_chunker("buzhash"), Buzhash)
    assert isinstance(parse_chunker("buzhash-whatever"), Buzhash)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_large_random_fast_equals_reference(backend: str) -> None:
    data = chacha_bytes("buz-large", 4_000_000)
    ref = list(Buzhash(backend="python").split([data]))
    check_invariants(data, ref, BUZ_MIN, BUZ_MAX)
    assert len(ref) >= 8
    assert list(Buzhash(backend=backend).split(split_reads(data, [3, 1_048_576, 2_500_001]))) == ref


@st.composite
def buz_data(draw: st.DrawFn) -> bytes:
    """Random stretches and zero runs: zero windows are always candidates, so cuts land anywhere."""
    seed = draw(st.integers(0, 10**6))
    parts = draw(st.lists(st.tuples(st.booleans(), st.integers(0, 400_000)), min_size=1, max_size=6))
    out = bytearray()
    for i, (zeros, length) in enumerate(parts):
        out += bytes(length) if zeros else chacha_bytes(f"buz-{seed}-{i}", length)
    tweak = draw(st.lists(st.tuples(st.integers(0, max(len(out) - 1, 0)), st.integers(1, 255)), max_size=20))
    for pos, value in tweak:
        if pos < len(out):
            out[pos] = value
    return bytes(out)


@settings(max_examples=15)
@given(data=buz_data(), reads=st.lists(st.integers(0, 2_000_000), max_size=5))
def test_fast_equals_reference_any_data_any_reads(data: bytes, reads: list[int]) -> None:
    ref = list(Buzhash(backend="python").split([data]))
    check_invariants(data, ref, BUZ_MIN, BUZ_MAX)
    for backend in FAST_BACKENDS:
        assert list(Buzhash(backend=backend).split(split_reads(data, reads))) == ref


@pytest.mark.skipif("numpy" not in FAST_BACKENDS, reason="numpy backend unavailable")
@pytest.mark.parametrize(("sparse", "step", "segment"), [(False, 1 << 17, 1 << 18), (True, 1000, 777),
                                                          (True, 1 << 17, 4096)])
def test_numpy_strategies_agree(sparse: bool, step: int, segment: int) -> None:
    from pyipld.chunker.buzhash import _NumpyBuzhash

    data = bytes(300_000) + chacha_bytes("buz-strategies", 1_500_000) + bytes([1]) * 1_100_000
    ref = list(Buzhash(backend="python").split([data]))
    search = _NumpyBuzhash()
    search.sparse, search.first_step, search.segment = sparse, step, segment
    chunker = Buzhash(backend="numpy")
    chunker._decide = search.decide
    assert list(chunker.split([data])) == ref


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_every_phase_of_the_unrolled_scan(backend: str) -> None:
    """The numba scan takes four steps at a time: a cut in any of the four positions, and an
    EOF at any offset around the first steps, must give the one-step answer."""
    cuts = {}
    # Zero windows always cut: a zero run starting at MIN - 32 + k makes the cut land at
    # MIN + k (its first all-zero window), for k in every phase of the four-step loop.
    noise = chacha_bytes("buz-phase", BUZ_MIN + 64)
    for k in range(12):
        data = noise[: BUZ_MIN + k] + bytes(64) + noise[:5000]
        ref = lengths(Buzhash(backend="python").split([data]))
        cuts[k] = ref[0]
        assert lengths(Buzhash(backend=backend).split([data])) == ref
    assert len(set(cuts.values())) == 12  # the cut really moved through the phases
    for size in range(BUZ_MIN - 2, BUZ_MIN + 40):
        data = noise[:size]
        assert lengths(Buzhash(backend=backend).split([data])) == lengths(Buzhash(backend="python").split([data]))
