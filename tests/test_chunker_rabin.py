"""Rabin chunker: spec constants, cut rule, backends against the plain reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld.chunker import parse_chunker
from pyipld.chunker.rabin import (
    BLOCK_SIZE_LIMIT,
    MOD_TABLE,
    OUT_TABLE,
    POLYNOMIAL,
    Rabin,
    fingerprint,
    pmod,
)
from pyipld.errors import ConfigError
from tests._chunking import FAST_BACKENDS, check_invariants, lengths, split_reads
from tests._deterministic import chacha_bytes

SMALL = [(16, 64, 256), (20, 128, 300), (32, 100, 333), (36, 512, 1024)]


def rule_cuts(data: bytes, min_size: int, avg_size: int, max_size: int) -> list[int]:
    """The spec's closed-form rule, written independently of the rolling loop."""
    mask = (1 << (avg_size.bit_length() - 1)) - 1
    out, start, n = [], 0, len(data)
    while start < n:
        end = min(n, start + max_size)
        cut = end
        for e in range(start + min_size, end + 1):
            if fingerprint(data[e - 16 : e]) & mask == 0:
                cut = e
                break
        out.append(cut - start)
        start = cut
    return out


def test_polynomial_and_tables_match_spec() -> None:
    assert POLYNOMIAL == 17437180132763653
    assert OUT_TABLE[1] == 0x17FA63217C2AD7
    assert OUT_TABLE[2] == 0x1207C39D4AFDAB
    assert OUT_TABLE[255] == 0x171E3ADED86A75
    assert MOD_TABLE[1] == POLYNOMIAL
    assert MOD_TABLE[2] == 0x46150E60D7F80F
    assert all(v < 1 << 53 for v in OUT_TABLE)


def test_pmod() -> None:
    assert pmod(POLYNOMIAL) == 0
    assert pmod(1 << 53) == POLYNOMIAL ^ (1 << 53)
    assert pmod(12345) == 12345
    assert fingerprint(b"\x00" * 16) == 0


def test_rolling_reference_matches_the_closed_form_rule() -> None:
    data = chacha_bytes("rabin-rule", 20_000)
    for params in SMALL:
        assert lengths(Rabin(*params, backend="python").split([data])) == rule_cuts(data, *params)


def test_zero_input_cuts_at_min() -> None:
    data = bytes(1_000_000)
    for backend in ["python", *FAST_BACKENDS]:
        got = lengths(Rabin(87381, 262144, 393216, backend=backend).split([data]))
        assert got == [87381] * 11 + [1_000_000 - 11 * 87381]


@pytest.mark.parametrize("byte", [0x01, 0x41, 0xFF])
def test_constant_byte_runs(byte: int) -> None:
    data = bytes([byte]) * 1_000_000
    expected_len = 87381 if fingerprint(bytes([byte]) * 16) & 0x3FFFF == 0 else 393216
    got = lengths(Rabin(87381, 262144, 393216, backend="python").split([data]))
    assert got[:-1] == [expected_len] * (len(got) - 1)
    for backend in FAST_BACKENDS:
        assert lengths(Rabin(87381, 262144, 393216, backend=backend).split([data])) == got


def test_empty_input_gives_no_chunk() -> None:
    for backend in ["python", *FAST_BACKENDS]:
        assert list(Rabin(16, 64, 256, backend=backend).split([])) == []
        assert list(Rabin(16, 64, 256, backend=backend).split([b"", b""])) == []


def test_short_input_is_one_chunk() -> None:
    assert list(parse_chunker("rabin").split([b"Hello Worlds!\n"])) == [b"Hello Worlds!\n"]
    for backend in ["python", *FAST_BACKENDS]:
        assert list(Rabin(87381, 262144, 393216, backend=backend).split([b"x" * 87381])) == [b"x" * 87381]


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_default_params_large_input_fast_equals_reference(backend: str) -> None:
    data = chacha_bytes("rabin-large", 3_000_000)
    ref = lengths(Rabin(87381, 262144, 393216, backend="python").split([data]))
    assert len(ref) > 5
    assert lengths(Rabin(87381, 262144, 393216, backend=backend).split([data])) == ref
    # many small blocks: every block boundary is crossed by some chunk
    small_blocks = Rabin(87381, 262144, 393216, backend=backend, block_size=800_000)
    assert lengths(small_blocks.split(split_reads(data, [1, 7, 99_999, 2_000_000]))) == ref


@st.composite
def data_with_runs(draw: st.DrawFn, max_size: int = 6000) -> bytes:
    """Random bytes mixed with constant runs, so both content and forced cuts happen."""
    parts = draw(st.lists(st.tuples(st.sampled_from(["random", "zeros", "byte"]), st.integers(0, 1500),
                                    st.binary(min_size=1, max_size=1)), max_size=8))
    out = bytearray()
    for kind, length, byte in parts:
        if kind == "random":
            out += draw(st.binary(min_size=length, max_size=length))
        else:
            out += (b"\x00" if kind == "zeros" else byte) * length
    return bytes(out[:max_size])


@settings(max_examples=60)
@given(data=data_with_runs(), params=st.sampled_from(SMALL),
       reads=st.lists(st.integers(0, 6000), max_size=6), block=st.integers(0, 3000))
def test_fast_equals_reference_any_data_any_reads(data: bytes, params: tuple[int, int, int],
                                                  reads: list[int], block: int) -> None:
    ref = list(Rabin(*params, backend="python").split([data]))
    check_invariants(data, ref, params[0], params[2])
    assert lengths(Rabin(*params, backend="python", block_size=block).split(split_reads(data, reads))) == \
        lengths(iter(ref))
    for backend in FAST_BACKENDS:
        chunker = Rabin(*params, backend=backend, block_size=block)
        assert list(chunker.split(split_reads(data, reads))) == ref


@settings(max_examples=20)
@given(seed=st.integers(0, 10**6), size=st.integers(0, 600_000), reads=st.lists(st.integers(0, 600_000), max_size=4))
def test_mid_params_random_data(seed: int, size: int, reads: list[int]) -> None:
    data = chacha_bytes(f"rabin-{seed}", size)
    ref = list(Rabin(4096, 16384, 32768, backend="python").split([data]))
    check_invariants(data, ref, 4096, 32768)
    for backend in FAST_BACKENDS:
        assert list(Rabin(4096, 16384, 32768, backend=backend).split(split_reads(data, reads))) == ref


def test_min_below_16_is_one_chunk_like_kubo() -> None:
    chunker = parse_chunker("rabin-30")  # MIN = 10: the library never cuts
    assert chunker.max_chunk_size == BLOCK_SIZE_LIMIT
    data = chacha_bytes("tiny-avg", 100_000)
    assert list(chunker.split(split_reads(data, [5, 50_000]))) == [data]
    assert list(parse_chunker("rabin-0").split([b"abc"])) == [b"abc"]
    assert list(chunker.split([bytes(BLOCK_SIZE_LIMIT)])) == [bytes(BLOCK_SIZE_LIMIT)]
    with pytest.raises(ConfigError, match="object size limit exceeded"):
        list(chunker.split([bytes(BLOCK_SIZE_LIMIT), b"x"]))


def test_memoryview_and_bytearray_reads() -> None:
    data = chacha_bytes("views", 5000)
    ref = list(Rabin(16, 64, 256, backend="python").split([data]))
    for backend in ["python", *FAST_BACKENDS]:
        words = memoryview(bytearray(data[4000:5000])).cast("H")  # a non-byte format is read as bytes
        reads = [bytearray(data[:100]), memoryview(data)[100:4000], words]
        assert list(Rabin(16, 64, 256, backend=backend).split(reads)) == ref


def test_constructor_sanity() -> None:
    with pytest.raises(ConfigError):
        Rabin(100, 64, 50)
    with pytest.raises(ConfigError, match="maximum chunk size"):
        Rabin(16, 64, 4 << 20)
    with pytest.raises(ValueError, match="not available"):
        Rabin(16, 64, 256, backend="fortran")


@pytest.mark.skipif("numpy" not in FAST_BACKENDS, reason="numpy backend unavailable")
@settings(max_examples=40)
@given(data=data_with_runs(), params=st.sampled_from(SMALL), step=st.integers(1, 300), block=st.integers(0, 3000))
def test_numpy_dense_and_sparse_strategies_agree(data: bytes, params: tuple[int, int, int], step: int,
                                                 block: int) -> None:
    from pyipld.chunker.rabin import _NumpyRabin

    ref = list(Rabin(*params, backend="python").split([data]))
    lo, avg, hi = params
    for sparse in (False, True):
        search = _NumpyRabin(lo, hi, (1 << (avg.bit_length() - 1)) - 1, sparse=sparse)
        search.first_step = step  # tiny steps exercise the growing search
        search.segment = max(step, 17)  # and many segments per step
        chunker = Rabin(*params, backend="numpy", block_size=block)
        chunker._decide = search.decide
        assert list(chunker.split([data])) == ref
