"""Chunker strings: what boxo chunker/parse.go accepts (kubo >= 0.40 limits) and its error texts."""

from __future__ import annotations

import pytest

from pyipld.chunker import CHUNK_SIZE_LIMIT, parse_chunker
from pyipld.chunker.buzhash import Buzhash
from pyipld.chunker.fixed import FixedSize
from pyipld.chunker.rabin import Rabin
from pyipld.errors import ConfigError

SIZE_MAX = f"chunker parameters may not exceed the maximum chunk size of {CHUNK_SIZE_LIMIT}"
RABIN_FORMAT = "incorrect format (expected 'rabin' 'rabin-[avg]' or 'rabin-[min]-[avg]-[max]'"


@pytest.mark.parametrize(
    ("spec", "sizes"),
    [
        ("rabin", (87381, 262144, 393216)),
        ("rabin-262144", (87381, 262144, 393216)),
        ("rabin-+100", (33, 100, 150)),  # Go's Atoi takes a sign
        ("rabin-65536", (21845, 65536, 98304)),
        ("rabin-1397931", (465977, 1397931, CHUNK_SIZE_LIMIT)),  # int(float32(avg)*1.5) == limit
        ("rabin-16-64-256", (16, 64, 256)),
        ("rabin-36-512-1024", (36, 512, 1024)),
        ("rabin-min:16-avg:64-max:256", (16, 64, 256)),
        ("rabin-16-avg:64-256", (16, 64, 256)),
        ("rabin-min:x:16-64-256", (16, 64, 256)),  # boxo only checks the first label, takes the last field
        ("rabin-16-64-2096896", (16, 64, CHUNK_SIZE_LIMIT)),
        ("rabin-48", (16, 48, 72)),
    ],
)
def test_rabin_accepted(spec: str, sizes: tuple[int, int, int]) -> None:
    chunker = parse_chunker(spec)
    assert isinstance(chunker, Rabin)
    assert (chunker.min_size, chunker.avg_size, chunker.max_size) == sizes
    assert not chunker.whole_input
    assert chunker.max_chunk_size == sizes[2]


@pytest.mark.parametrize("spec", ["rabin-47", "rabin-30", "rabin-1", "rabin-0"])
def test_rabin_avg_below_48_is_whole_input(spec: str) -> None:
    chunker = parse_chunker(spec)
    assert isinstance(chunker, Rabin) and chunker.whole_input


def test_mask_is_floor_log2_avg() -> None:
    assert parse_chunker("rabin").mask == 0x3FFFF  # type: ignore[attr-defined]
    assert parse_chunker("rabin-16-100-300").mask == 63  # type: ignore[attr-defined]
    assert parse_chunker("rabin-16-128-300").mask == 127  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("rabin-12-512-1024", "rabin min must be greater than 16"),  # kubo t0040-add-and-cat.sh
        ("rabin-15-16-17", "rabin min must be greater than 16"),
        ("rabin-8-x-y", "rabin min must be greater than 16"),  # checked before avg is parsed
        ("rabin-1-2", RABIN_FORMAT),
        ("rabin-1-2-3-4", RABIN_FORMAT),
        ("rabin--5", RABIN_FORMAT),
        ("rabin-x", 'strconv.Atoi: parsing "x": invalid syntax'),
        ("rabin-", 'strconv.Atoi: parsing "": invalid syntax'),
        ("rabin-1_000", 'strconv.Atoi: parsing "1_000": invalid syntax'),
        ("rabin- 5", 'strconv.Atoi: parsing " 5": invalid syntax'),
        ("rabin-٣", 'strconv.Atoi: parsing "٣": invalid syntax'),
        ("rabin-avg:100", 'strconv.Atoi: parsing "avg:100": invalid syntax'),
        ("rabin-99999999999999999999", 'strconv.Atoi: parsing "99999999999999999999": value out of range'),
        ("rabin-1397932", SIZE_MAX),
        ("rabin-16-x-256", 'strconv.Atoi: parsing "x": invalid syntax'),
        ("rabin-max:16-avg:64-min:256", "first label must be min"),
        ("rabin-:16-64-256", "first label must be min"),
        ("rabin-16-max:64-256", "second label must be avg"),
        ("rabin-16-64-avg:256", "final label must be max"),
        ("rabin-64-64-256", "incorrect format: rabin-min must be smaller than rabin-avg"),
        ("rabin-100-64-256", "incorrect format: rabin-min must be smaller than rabin-avg"),
        ("rabin-16-256-256", "incorrect format: rabin-avg must be smaller than rabin-max"),
        ("rabin-16-64-2096897", SIZE_MAX),
        ("size-0", "chunker size must be greater than 0"),  # kubo t0040-add-and-cat.sh
        ("size-x", 'strconv.Atoi: parsing "x": invalid syntax'),
        ("size-", 'strconv.Atoi: parsing "": invalid syntax'),
        ("size-1-2", "incorrect chunker string format (expected size-{size})"),
        ("size", "incorrect chunker string format (expected size-{size})"),
        (f"size-{CHUNK_SIZE_LIMIT + 1}", SIZE_MAX),
    ],
)
def test_errors_have_boxo_texts(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_chunker(spec)
    assert str(info.value) == message


@pytest.mark.parametrize("spec", ["rabinx", "Rabin", "buz", "fastcdc-1-2-3", "size64", "-rabin"])
def test_unknown_names(spec: str) -> None:
    with pytest.raises(ConfigError, match="^unrecognized chunker option"):
        parse_chunker(spec)


def test_other_chunkers() -> None:
    assert isinstance(parse_chunker("buzhash"), Buzhash)
    assert isinstance(parse_chunker("buzhash-anything-at-all"), Buzhash)  # boxo ignores the rest
    assert parse_chunker("buzhash").max_chunk_size == 512 * 1024
    sized = parse_chunker(f"size-{CHUNK_SIZE_LIMIT}")
    assert isinstance(sized, FixedSize) and sized.chunk_size == CHUNK_SIZE_LIMIT
    assert isinstance(parse_chunker("size-+64"), FixedSize)
    for default in ("", "default"):
        chunker = parse_chunker(default)
        assert isinstance(chunker, FixedSize) and chunker.chunk_size == 262144


def test_hello_worlds_is_one_chunk_for_every_chunker() -> None:
    # kubo t0040-add-and-cat.sh: all of these give the default one-chunk CID.
    for spec in ("rabin", "rabin-36-512-1024", "buzhash", "size-64"):
        chunks = list(parse_chunker(spec).split([b"Hello Worlds!\n"]))
        assert chunks == [b"Hello Worlds!\n"]
