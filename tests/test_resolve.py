"""Path resolution and reading third-party UnixFS CARs: the wikipedia HAMT, gateway and go-car
fixtures extracted and re-imported to the same root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyipld.blockstore import MemoryBlockstore
from pyipld.cid import CID
from pyipld.errors import CIDError, NotFoundError, UnixFSError, UnsafePathError
from pyipld.unixfs.extract import extract
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.reader import read_file
from pyipld.unixfs.resolve import resolve_path, split_path
from pyipld.unixfs.tree import import_directory, import_paths
from pyipld.unixfs.walk import iter_directory, load_node, walk
from tests._car import read_car
from tests._shared import shared_path

WIKI_ROOT = "bafybeiaysi4s6lnjev27ln5icwm6tueaw2vdykrtjkwiphwekaywqhcjze"


def _wiki() -> MemoryBlockstore:
    roots, store = read_car(shared_path("fixtures", "go-car", "wikipedia-cryptographic-hash-function.car"))
    assert [str(r) for r in roots] == [WIKI_ROOT]
    return store


def test_split_path_forms() -> None:
    cid = CID.decode(WIKI_ROOT)
    assert split_path(f"/ipfs/{WIKI_ROOT}/wiki//x/") == (cid, (b"wiki", b"x"))
    assert split_path(WIKI_ROOT) == (cid, ())
    assert split_path(cid.bytes) == (cid, ())
    for bad in (f"{WIKI_ROOT}/../x", f"{WIKI_ROOT}/a/./b"):
        with pytest.raises(UnsafePathError, match=f"in '{bad}'$"):  # the path as text, not b'…'
            split_path(bad)


@pytest.mark.parametrize("path", [5, 2.0, None, ["Qm"]])
def test_split_path_of_the_wrong_type(path: object) -> None:
    """``5`` was taken as ``bytes(5)``: "invalid CID '\\x00\\x00\\x00\\x00\\x00'"; None a TypeError."""
    with pytest.raises(CIDError, match=f"an IPFS path is a CID, its text or its bytes, not a {type(path).__name__}"):
        split_path(path)  # type: ignore[arg-type]
    with pytest.raises(CIDError, match="not a"):
        resolve_path(MemoryBlockstore(), path)  # type: ignore[arg-type]


def test_wikipedia_sharded_lookup_by_name() -> None:
    """go-car testdata: only the path wiki/Cryptographic_hash_function is present (4 shards + 1 leaf)."""
    store = _wiki()
    got = resolve_path(store, f"{WIKI_ROOT}/wiki/Cryptographic_hash_function")
    assert got.node.kind == "file"
    assert b"  <title>Cryptographic hash function</title>" in read_file(store, got.node.cid)
    root = load_node(store, CID.decode(WIKI_ROOT))
    assert root.sharded
    names = [entry.name for entry in iter_directory(store, root)]
    assert {b"wiki", b"index.html", b"favicon.ico", b"zimdump_version"} <= set(names)
    # 'wiki' is itself sharded and only one path of it is in the CAR: listing it hits a missing shard.
    wiki = resolve_path(store, f"{WIKI_ROOT}/wiki").node
    assert wiki.sharded
    with pytest.raises(NotFoundError):
        list(iter_directory(store, wiki))
    with pytest.raises(NotFoundError):
        resolve_path(store, f"{WIKI_ROOT}/wiki/Cryptographic_hash_functions")  # absent name or block


def test_resolution_errors() -> None:
    store = _wiki()
    with pytest.raises(UnixFSError, match="not a directory"):
        resolve_path(store, f"{WIKI_ROOT}/wiki/Cryptographic_hash_function/deeper")
    roots, simple = read_car(shared_path("fixtures", "go-car", "simple-unixfs.car"))
    with pytest.raises(NotFoundError, match="no link named"):
        resolve_path(simple, f"{roots[0]}/a/zzz")
    assert read_file(simple, resolve_path(simple, f"{roots[0]}/b/5/E.txt").node.cid) == b"b5E\n"


def test_simple_unixfs_walk_matches_go_car_extract() -> None:
    roots, store = read_car(shared_path("fixtures", "go-car", "simple-unixfs.car"))
    files = {b"/".join(p).decode(): read_file(store, n.cid) for p, n in walk(store, roots[0]) if n.kind == "file"}
    assert files == {f"{d}/{n}/{c}.txt": f"{d}{n}{c}\n".encode() for d, n, c in [
        ("a", 1, "A"), ("a", 2, "B"), ("a", 3, "C"), ("b", 4, "D"), ("b", 5, "E"), ("b", 6, "F"),
        ("c", 7, "G"), ("c", 8, "H"), ("c", 9, "I")]}


# (fixture, parameters that `ipfs add -r` used) — MANIFEST.md recipes
_REIMPORT = [
    ("go-car", "simple-unixfs.car", ImportParams()),
    ("gateway-conformance", "dir_listing-fixtures.car", ImportParams(cid_version=1)),
    ("gateway-conformance", "gateway-cache-fixtures.car", ImportParams(cid_version=1)),
    ("gateway-conformance", "gateway-raw-block.car", ImportParams(cid_version=1)),
    ("gateway-conformance", "path_gateway_dag-dag-pb.car", ImportParams(cid_version=1)),
    ("gateway-conformance", "path_gateway_dag-gateway-json-cbor.car", ImportParams(cid_version=1)),
    ("gateway-conformance", "dir-with-percent-encoded-filename.car", ImportParams(cid_version=1)),
    ("gateway-conformance", "redirects-spa.car", ImportParams(cid_version=1)),
    ("gateway-conformance", "trustless-subdir-with-two-single-block-files.car", ImportParams(cid_version=1)),
    ("gateway-conformance", "tooling-hello_ipfs.car", ImportParams(cid_version=1)),
]


@pytest.mark.parametrize(("group", "name", "params"), _REIMPORT, ids=[n for _, n, _ in _REIMPORT])
def test_fixture_extract_and_reimport(tmp_path: Path, group: str, name: str, params: ImportParams) -> None:
    roots, store = read_car(shared_path("fixtures", group, name))
    dest = tmp_path / "out"
    stats = extract(store, roots[0], dest)
    assert stats.files >= 1
    assert import_paths([dest], params).cid == roots[0]


def test_dir_listing_fixture_utf8_path() -> None:
    """gateway-conformance dir_listing: ą/ę/file-źł.txt has the recipe's CID and content."""
    roots, store = read_car(shared_path("fixtures", "gateway-conformance", "dir_listing-fixtures.car"))
    got = resolve_path(store, f"{roots[0]}/ą/ę/file-źł.txt")
    assert str(got.cid) == "bafkreialihlqnf5uwo4byh4n3cmwlntwqzxxs2fg5vanqdi3d7tb2l5xkm"
    assert read_file(store, got.node.cid) == b"I am a txt file on path with utf8\n"


def test_missing_blocks_fixture(tmp_path: Path) -> None:
    roots, store = read_car(shared_path("fixtures", "go-car", "simple-unixfs-missing-blocks.car"))
    with pytest.raises(NotFoundError):
        extract(store, roots[0], tmp_path / "out", atomic=False)
    assert not any(".pyipld-tmp" in p for p in os.listdir(tmp_path / "out"))
    with pytest.raises(NotFoundError):
        extract(store, roots[0], tmp_path / "whole")
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no partial tree, no temporary name


def test_kubo_v1_hamt_tree_reads_back(tmp_path: Path) -> None:
    """kubo DirHAMTCID (unixfs-v1-2025), then every name resolves through the HAMT."""
    from pyipld.unixfs.params import UNIXFS_V1_2025
    from tests._dirgen import kubo_dir_names, make_kubo_dir
    names = kubo_dir_names("hamt-unixfs-v1-2025", 4766, 11, 22)
    d = make_kubo_dir(tmp_path / "h", "hamt-unixfs-v1-2025", 4766, 11, 22)
    store = MemoryBlockstore()
    root = import_directory(d, UNIXFS_V1_2025, store)
    assert str(root.cid) == "bafybeiegvuterwurhdtkikfhbxcldohmxp566vpjdofhzmnhv6o4freidu"
    for name in names[::97]:
        assert read_file(store, resolve_path(store, f"{root.cid}/{name}").node.cid) == b"x"
    listed = {e.name for e in iter_directory(store, load_node(store, root.cid))}
    assert listed == {n.encode() for n in names}


def test_go_car_unixfs_v2_through_car_blockstore(tmp_path: Path) -> None:
    """go-car sample-unixfs-v2.car (CARv2, written by go-car itself: its directory links carry
    Tsize 0, so kubo parameters cannot re-create it); read and extracted through pyipld.car."""
    car = pytest.importorskip("pyipld.car")
    with car.CarBlockstore(str(shared_path("fixtures", "go-car", "sample-unixfs-v2.car")), verify=True) as bs:
        root = bs.roots[0]
        assert str(root) == "bafybeiakgrehdxxgy5kca72znt6jllrj2sqkehtqeojfuxlbeuqg3vfkwq"
        got = resolve_path(bs, f"{root}/a/b.txt")
        assert str(got.cid) == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
        stats = extract(bs, root, tmp_path / "out")
    assert (stats.files, stats.directories) == (1, 2)
    assert (tmp_path / "out" / "a" / "b.txt").read_bytes() == b"hello world\n"


def test_on_missing_skips_absent_blocks_and_shards() -> None:
    """walk/iter_directory(on_missing=...) walk a partial DAG as far as it goes and name what is absent."""
    store = _wiki()
    wiki = resolve_path(store, f"{WIKI_ROOT}/wiki").node
    shards: list[bytes] = []
    names = [e.name for e in iter_directory(store, wiki, shards.append)]
    assert b"Cryptographic_hash_function" in names and shards
    assert all(CID.from_bytes(c).codec == 0x70 and not store.has(c) for c in shards)
    roots, partial = read_car(shared_path("fixtures", "go-car", "simple-unixfs-missing-blocks.car"))
    missing: list[tuple[bytes, ...]] = []
    paths = [p for p, _ in walk(partial, roots[0], lambda p, c: missing.append(p))]
    assert missing == [(b"b", b"4"), (b"b", b"5", b"E.txt"), (b"b", b"6")]
    assert (b"a", b"1", b"A.txt") in paths and (b"b", b"5") in paths
    with pytest.raises(NotFoundError):
        list(walk(partial, roots[0]))
    gone: list[tuple[bytes, ...]] = []
    absent = shards[0]
    assert list(walk(partial, absent, lambda p, c: gone.append(p))) == [] and gone == [()]
