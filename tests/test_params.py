"""kubo's add parameter rules (core/commands/add.go; shared/spec/unixfs-importer.md §2, §7, §8)."""

from __future__ import annotations

import pytest

from pyipld.chunker.fixed import FixedSize
from pyipld.errors import ConfigError
from pyipld.multihash import get_hash
from pyipld.unixfs.params import (
    DEFAULT_MAX_LINKS,
    MAX_INLINE_LIMIT,
    PROFILES,
    UNIXFS_V0_2015,
    UNIXFS_V1_2025,
    ImportParams,
)


def test_defaults_are_kubo_defaults() -> None:
    r = ImportParams().resolve()
    assert (r.cid_builder.version, r.raw_leaves, r.max_links, r.layout) == (0, False, 174, "balanced")
    assert isinstance(r.chunker, FixedSize) and r.chunker.chunk_size == 262144
    assert DEFAULT_MAX_LINKS == 8192 // 47


@pytest.mark.parametrize(("params", "version", "raw"), [
    (ImportParams(cid_version=1), 1, True),  # CIDv1 implies raw leaves...
    (ImportParams(cid_version=1, raw_leaves=False), 1, False),  # ...unless set explicitly
    (ImportParams(raw_leaves=True), 0, True),  # raw leaves under CIDv0
    (ImportParams(hash="sha2-512"), 1, True),  # another hash implies CIDv1
    (ImportParams(hash="blake2b-256", raw_leaves=False), 1, False),
    (ImportParams(cid_version=1, mode=0o644), 1, False),  # metadata forces raw leaves off
    (ImportParams(cid_version=1, preserve_mtime=True), 1, False),
])
def test_version_and_raw_leaves_rules(params: ImportParams, version: int, raw: bool) -> None:
    r = params.resolve()
    assert (r.cid_builder.version, r.raw_leaves) == (version, raw)


@pytest.mark.parametrize(("params", "message"), [
    (ImportParams(cid_version=2), "unknown CID version: 2"),
    (ImportParams(cid_version=0, hash="sha2-512"), "CIDv0 only supports sha2-256"),
    (ImportParams(raw_leaves=True, mode=0o644), "raw-leaves can't be used with UnixFS metadata"),
    (ImportParams(inline=True, inline_limit=MAX_INLINE_LIMIT + 1), "exceeds maximum allowed size of 128"),
    (ImportParams(chunker="size-0"), "greater than 0"),
    (ImportParams(chunker="size-abc"), "invalid syntax"),  # boxo: strconv.Atoi error
    (ImportParams(chunker="size-2096897"), "may not exceed the maximum chunk size"),
    (ImportParams(chunker="bogus"), "unrecognized chunker option"),
    (ImportParams(chunker="size-1-2"), "incorrect chunker string format"),
    (ImportParams(hash="md5"), "potentially insecure hash functions not allowed"),
    (ImportParams(hash="sha2-257"), 'unrecognized hash function: "sha2-257"'),
    (ImportParams(max_links=1), "at least 2"),
    (ImportParams(layout="zigzag"), "unknown layout"),  # type: ignore[arg-type]
    (ImportParams(hamt_fanout=100), "power of 2"),
    (ImportParams(hamt_fanout=2048), "power of 2"),
])
def test_errors_name_the_problem(params: ImportParams, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        params.resolve()


def test_largest_chunk_size_is_accepted() -> None:
    assert ImportParams(chunker="size-2096896").resolve().chunker.max_chunk_size == 2 * 1024 * 1024 - 256


def test_profiles() -> None:
    assert PROFILES["legacy-cid-v0"] is UNIXFS_V0_2015
    v1 = UNIXFS_V1_2025.resolve()
    assert (v1.cid_builder.version, v1.raw_leaves, v1.max_links, v1.chunker.max_chunk_size) == (1, True, 1024, 1 << 20)
    v0 = ImportParams.from_profile("unixfs-v0-2015", max_links=7).resolve()
    assert (v0.cid_builder.version, v0.max_links) == (0, 7)
    with pytest.raises(ConfigError, match="unknown profile"):
        ImportParams.from_profile("unixfs-v9")


def test_profile_with_metadata_errors_like_kubo() -> None:
    # The v1 profile sets raw leaves explicitly, so metadata is an error (spec §2.1).
    with pytest.raises(ConfigError, match="raw-leaves"):
        ImportParams.from_profile("unixfs-v1-2025", mode=0o644).resolve()


def test_inline_builder() -> None:
    r = ImportParams(inline=True).resolve()
    assert r.cid_builder.inline_limit == 32
    assert ImportParams().resolve().cid_builder.inline_limit is None  # None = off; 0 still inlines b""
    assert ImportParams(inline=True, inline_limit=0).resolve().cid_builder.inline_limit == 0
    assert ImportParams(hash="SHA2-512").resolve().cid_builder.hash is get_hash("sha2-512")


def test_zero_mode_and_mtime_are_unset_like_kubo() -> None:
    # kubo add.go only passes --mode/--mtime on when non-zero, so raw leaves stay on with CIDv1.
    assert ImportParams(mode=0, mtime=(0, 0)) == ImportParams()
    assert ImportParams(cid_version=1, mode=0).resolve().raw_leaves is True
    assert ImportParams(cid_version=1, mode=0o644).resolve().raw_leaves is False
    with pytest.raises(ConfigError, match='requires "mtime"'):
        ImportParams(mtime=(0, 5))


@pytest.mark.parametrize("nanos", [1_000_000_000, 2_000_000_000, 2**32 - 1, -1])
def test_mtime_nanoseconds_beyond_a_second_are_refused_like_kubo(nanos: int) -> None:
    """Regression: --mtime 1 --mtime-nsecs 2000000000 stored nanos=2e9, a node our own reader (and
    the UnixFS spec) refuses. kubo's options.Unixfs.Mtime: nsecs > 999999999 is an error."""
    with pytest.raises(ConfigError, match=r"^mtime nanoseconds must be in range \[1, 999999999\]$"):
        ImportParams(mtime=(1, nanos))
    assert ImportParams(mtime=(1, 999_999_999)).mtime == (1, 999_999_999)
