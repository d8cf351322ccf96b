"""Basic directories, both size estimators and the HAMT switch rule (spec §4.1–§4.2, kubo vectors)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld.blockstore import MemoryBlockstore
from pyipld.cid import CID, CidBuilder
from pyipld.dagpb import decode_pbnode
from pyipld.errors import UnixFSError
from pyipld.unixfs.data import DataType, Mtime, decode_unixfs_data
from pyipld.unixfs.directory import (
    DirectoryBuilder,
    DirEntry,
    build_directory,
    encode_basic_directory,
    link_block_size,
    needs_sharding,
)
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.nodes import Metadata
from pyipld.unixfs.params import UNIXFS_V0_2015, UNIXFS_V1_2025, ImportParams
from tests._dirgen import kubo_dir_names
from tests._shared import shared_path


def test_empty_directory_known_answers() -> None:
    """ipfs/specs unixfs.md appendix; spec §4.1."""
    assert encode_basic_directory([]) == bytes.fromhex("0a020801")
    assert str(CID.from_bytes(build_directory([]).cid)) == "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    v1 = build_directory([], ImportParams(cid_version=1))
    assert str(CID.from_bytes(v1.cid)) == "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
    inline = build_directory([], ImportParams(cid_version=1, inline=True))
    assert str(CID.from_bytes(inline.cid)) == "bafyaabakaieac"
    assert v1.tsize == 4


@pytest.mark.parametrize(("params", "want"), [
    (ImportParams(), "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY"),
    (ImportParams(raw_leaves=True), "QmfWfQfKCY5Ukv9peBbxM5vqWM9BzmqUSXvdCgjT2wsiBT"),
    (ImportParams(cid_version=1), "bafybeih7e5dmkyk25up5vxug4q3hrg2fxbzf23dfrac2fns5h7z4aa7ioi"),
])
def test_mars_venus_directory(params: ImportParams, want: str) -> None:
    """kubo t0040-add-and-cat.sh (spec §9), built from entries in reverse order."""
    m = import_bytes(b"Hello Mars!\n", params)
    v = import_bytes(b"Hello Venus!\n", params)
    entries = [(b"venus.txt", v.cid.bytes, v.tsize), (b"mars.txt", m.cid.bytes, m.tsize)]
    assert str(CID.from_bytes(build_directory(entries, params).cid)) == want


def test_links_sorted_by_raw_bytes_not_text() -> None:
    # 'Z' (0x5a) < 'a' (0x61) < 'é' (0xc3 0xa9) as bytes; str.lower()/locale order would differ.
    cid = import_bytes(b"x").cid.bytes
    names = ["é", "a", "Z", "ab", "a b", "\U0001f600", "ﬀ"]
    block = encode_basic_directory([DirEntry(n.encode(), cid, 1) for n in names])
    got = [link.name for link in decode_pbnode(block).links]
    assert got == sorted(n.encode() for n in names)
    assert got != [n.encode() for n in sorted(names, key=str.casefold)]


@pytest.mark.parametrize(("name_len", "cid_len", "tsize", "want"), [
    (255, 34, 0, 299), (255, 36, 0, 301), (10, 36, 0, 54), (255, 36, 34359738367, 305),
    (11, 36, 1, 55), (21, 36, 1, 65), (22, 36, 1, 66),
])
def test_link_block_size_matches_kubo_helper(name_len: int, cid_len: int, tsize: int, want: int) -> None:
    """kubo test/cli/cid_profiles_test.go TestProtobufHelpers / LinkSerializedSize."""
    assert link_block_size(name_len, cid_len, tsize) == want


@given(entries=st.dictionaries(st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\0" not in b
                                                                        and b not in (b".", b"..")),
                               st.tuples(st.sampled_from([0, 1]), st.integers(0, 2**40)), max_size=30),
       mode=st.one_of(st.none(), st.integers(1, 0o7777)),
       mtime=st.one_of(st.none(), st.tuples(st.integers(-2**40, 2**40), st.integers(0, 999_999_999))))
def test_block_estimate_is_exact_block_size(entries: dict, mode: int | None, mtime: tuple | None) -> None:
    meta = Metadata(mode, Mtime(*mtime) if mtime else None)
    builder = DirectoryBuilder(ImportParams(hamt_threshold=0), _builder(), meta)
    dir_entries = []
    for name, (version, tsize) in entries.items():
        cid = import_bytes(name, ImportParams(cid_version=version)).cid.bytes
        builder.add(name, cid, tsize)
        dir_entries.append(DirEntry(name, cid, tsize))
    assert builder.block_size == len(encode_basic_directory(dir_entries, meta))
    assert builder.links_size == sum(len(e.name) + len(e.cid) for e in dir_entries)


def _builder() -> CidBuilder:
    return ImportParams().resolve().cid_builder


@pytest.mark.parametrize(("estimation", "inclusive", "size", "shard"), [
    ("links", False, 100, False), ("links", False, 101, True),
    ("links", True, 99, False), ("links", True, 100, True),
    ("block", False, 100, False), ("block", False, 101, True),
    ("block", True, 100, True),
])
def test_switch_rule(estimation: str, inclusive: bool, size: int, shard: bool) -> None:
    params = ImportParams(hamt_threshold=100, hamt_estimation=estimation,  # type: ignore[arg-type]
                          hamt_threshold_inclusive=inclusive)
    kw = {"links_size": size, "block_size": 0} if estimation == "links" else {"links_size": 0, "block_size": size}
    assert needs_sharding(params, count=1, **kw) is shard


def test_threshold_zero_never_shards_even_with_max_links() -> None:
    assert not needs_sharding(ImportParams(hamt_threshold=0, max_directory_links=1), count=10**6,
                              links_size=10**9, block_size=10**9)


def test_max_directory_links() -> None:
    params = ImportParams(max_directory_links=3)
    assert not needs_sharding(params, count=3, links_size=0, block_size=0)
    assert needs_sharding(params, count=4, links_size=0, block_size=0)
    cid = import_bytes(b"x").cid.bytes
    four = [(f"f{i}".encode(), cid, 11) for i in range(4)]
    assert build_directory(four[:3], params).sharded is False
    link = build_directory(four, params)
    assert link.sharded is True


def test_duplicate_and_invalid_names_are_refused() -> None:
    cid = import_bytes(b"x").cid.bytes
    with pytest.raises(UnixFSError, match="duplicate"):
        build_directory([(b"a", cid, 1), (b"a", cid, 1)])
    for bad in (b"", b".", b"..", b"a/b", b"a\0b"):
        with pytest.raises(UnixFSError, match="invalid"):
            build_directory([(bad, cid, 1)])


def test_directory_metadata_in_data() -> None:
    store = MemoryBlockstore()
    link = build_directory([], ImportParams(), store, meta=Metadata(0o755, Mtime(1604320482, 7)))
    data = decode_unixfs_data(decode_pbnode(store.get(link.cid)).data or b"")
    assert data.type == DataType.DIRECTORY and data.mode == 0o755 and data.mtime == Mtime(1604320482, 7)


# -- kubo's HAMT threshold vectors ---------------------------------------------------------------

_HAMT_CASES = [
    # (profile, seed, files, nameLen, lastNameLen, expected CID, sharded) — kubo cid_profiles_test.go
    (UNIXFS_V0_2015, "hamt-unixfs-v0-2015", 4096, 30, 30, "QmX5GtRk3TSSEHtdrykgqm4eqMEn3n2XhfkFAis5fjyZmN", False),
    (UNIXFS_V0_2015, "hamt-unixfs-v0-2015", 4033, 31, 31, "QmeMiJzmhpJAUgynAcxTQYek5PPKgdv3qEvFsdV3XpVnvP", True),
    (UNIXFS_V1_2025, "hamt-unixfs-v1-2025", 4766, 11, 21,
     "bafybeic3h7rwruealwxkacabdy45jivq2crwz6bufb5ljwupn36gicplx4", False),
    (UNIXFS_V1_2025, "hamt-unixfs-v1-2025", 4766, 11, 22,
     "bafybeiegvuterwurhdtkikfhbxcldohmxp566vpjdofhzmnhv6o4freidu", True),
]


@pytest.mark.parametrize(("profile", "seed", "files", "name_len", "last", "want", "sharded"), _HAMT_CASES)
def test_kubo_hamt_threshold_vectors(profile: ImportParams, seed: str, files: int, name_len: int, last: int,
                                     want: str, sharded: bool) -> None:
    x = import_bytes(b"x", profile)
    entries = [(n.encode(), x.cid.bytes, x.tsize) for n in kubo_dir_names(seed, files, name_len, last)]
    store = MemoryBlockstore()
    link = build_directory(entries, profile, store)
    assert str(CID.from_bytes(link.cid)) == want
    assert link.sharded is sharded
    if not sharded:
        # At the threshold exactly: the inclusive rule of kubo < 0.40 shards it.
        assert build_directory(entries, replace(profile, hamt_threshold_inclusive=True)).sharded
        if profile.hamt_estimation == "block":
            assert len(store.get(link.cid)) == 262144


def test_fixture_json_vectors_agree() -> None:
    """The same directory vectors as recorded in shared/fixtures/kubo/cid-profile-vectors.json."""
    vectors = json.loads(shared_path("fixtures", "kubo", "cid-profile-vectors.json").read_text())["vectors"]
    dirs = [v for v in vectors if isinstance(v["input"], dict) and "dir_seed" in v["input"]]
    assert len(dirs) == 2
    for v in dirs:
        profile = UNIXFS_V1_2025 if v["params"] == "unixfs-v1-2025" else UNIXFS_V0_2015
        inp = v["input"]
        x = import_bytes(b"x", profile)
        names = kubo_dir_names(inp["dir_seed"], inp["files"], inp["nameLen"], inp["lastNameLen"])
        link = build_directory([(n.encode(), x.cid.bytes, x.tsize) for n in names], profile)
        assert str(CID.from_bytes(link.cid)) == v["cid"], v["name"]
