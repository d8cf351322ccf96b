"""Safe extraction: round trips (hypothesis) and hostile DAGs that must not escape DEST."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld.blockstore import MemoryBlockstore
from pyipld.cid import DAG_PB, CidBuilder
from pyipld.dagpb import PBLink, encode_pbnode
from pyipld.errors import IntegrityError, NotFoundError, UnixFSError, UnsafePathError
from pyipld.unixfs.data import DataType, Mtime, UnixFSData, encode_unixfs_data
from pyipld.unixfs.directory import DirEntry, build_directory
from pyipld.unixfs.extract import extract
from pyipld.unixfs.hamt import build_hamt
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.nodes import Metadata
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.tree import encode_symlink, import_directory

B = CidBuilder()


def _put(store: MemoryBlockstore, block: bytes) -> bytes:
    cid = B.cid_bytes(DAG_PB, block)
    store.put(cid, block)
    return cid


def _file(store: MemoryBlockstore, data: bytes) -> tuple[bytes, int]:
    res = import_bytes(data, None, store)
    return res.cid.bytes, res.tsize


def _dir(store: MemoryBlockstore, links: list[tuple[bytes, bytes]]) -> bytes:
    """A basic directory with links exactly as given (no checks, no sorting)."""
    block = encode_pbnode([PBLink(cid, name, 1) for name, cid in links],
                          encode_unixfs_data(UnixFSData(DataType.DIRECTORY)))
    return _put(store, block)


def _tree_listing(root: Path) -> dict[bytes, tuple]:
    out: dict[bytes, tuple] = {}
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, base)
            st_ = os.lstat(full)
            if stat.S_ISLNK(st_.st_mode):
                out[rel] = ("link", os.readlink(full))
            elif stat.S_ISDIR(st_.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st_.st_mode))
            else:
                with open(full, "rb") as f:
                    out[rel] = ("file", f.read(), stat.S_IMODE(st_.st_mode))
    return out


# -- round trips ---------------------------------------------------------------------------

_names = st.binary(min_size=1, max_size=8).filter(lambda n: b"/" not in n and b"\0" not in n
                                                  and n not in (b".", b".."))
_leaf = st.one_of(
    st.tuples(st.just("file"), st.binary(max_size=3000), st.sampled_from([0o644, 0o600, 0o755, 0o640])),
    st.tuples(st.just("link"), st.binary(min_size=1, max_size=20).filter(lambda t: b"\0" not in t)),
)
_tree = st.recursive(_leaf, lambda kids: st.dictionaries(_names, kids, max_size=5), max_leaves=25)


def _materialise(path: bytes, node: object) -> None:
    if isinstance(node, dict):
        os.mkdir(path, 0o755)
        for name, child in node.items():
            _materialise(os.path.join(path, name), child)
    elif node[0] == "file":  # type: ignore[index]
        with open(path, "wb") as f:
            f.write(node[1])  # type: ignore[index]
        os.chmod(path, node[2])  # type: ignore[index]
    else:
        os.symlink(node[1], path)  # type: ignore[index]


@settings(max_examples=40)
@given(tree=st.dictionaries(_names, _tree, max_size=6), threshold=st.sampled_from([0, 1, 262144]),
       chunker=st.sampled_from(["size-262144", "size-100"]), cid_version=st.sampled_from([0, 1]))
def test_import_then_extract_is_identity(tree: dict, threshold: int, chunker: str, cid_version: int) -> None:
    params = ImportParams(hidden=True, hamt_threshold=threshold, chunker=chunker, cid_version=cid_version,
                          preserve_mode=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(os.fsencode(tmp), b"src")
        _materialise(src, tree)
        store = MemoryBlockstore()
        root = import_directory(src, params, store)
        out = os.path.join(tmp, "out")
        extract(store, root.cid, out)
        assert _tree_listing(Path(os.fsdecode(src))) == _tree_listing(Path(out))
        # and the extracted tree re-imports to the same root
        assert import_directory(out, params).cid == root.cid


def test_mtime_restored(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    f = import_bytes(b"data", ImportParams(mtime=(1_500_000_000, 42), mode=0o600), store)
    link = build_directory([(b"f", f.cid.bytes, f.tsize)], ImportParams(), store,
                           meta=Metadata(0o700, Mtime(1_400_000_000, 0)))
    extract(store, link.cid, tmp_path / "d")
    st_f = os.stat(tmp_path / "d" / "f")
    assert st_f.st_mtime_ns == 1_500_000_000_000_000_042 and stat.S_IMODE(st_f.st_mode) == 0o600
    st_d = os.stat(tmp_path / "d")
    assert st_d.st_mtime_ns == 1_400_000_000 * 10**9 and stat.S_IMODE(st_d.st_mode) == 0o700


def test_setuid_bits_are_dropped(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    f = import_bytes(b"x", ImportParams(mode=0o4755), store)
    extract(store, f.cid, tmp_path / "f")
    assert stat.S_IMODE(os.stat(tmp_path / "f").st_mode) == 0o755


def test_single_file_and_symlink_roots(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    f = import_bytes(b"hello world", None, store)
    extract(store, f.cid, tmp_path / "f")
    assert (tmp_path / "f").read_bytes() == b"hello world"
    link = _put(store, encode_symlink(b"/etc/passwd"))
    extract(store, link, tmp_path / "l")
    assert os.readlink(tmp_path / "l") == "/etc/passwd"
    with pytest.raises(FileExistsError):
        extract(store, f.cid, tmp_path / "f")


def test_existing_destination(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    d = _dir(store, [(b"a", _file(store, b"a")[0])])
    (tmp_path / "empty").mkdir()
    extract(store, d, tmp_path / "empty")  # an existing empty directory is filled
    assert (tmp_path / "empty" / "a").read_bytes() == b"a"
    with pytest.raises(FileExistsError):
        extract(store, d, tmp_path / "empty")


# -- hostile DAGs ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [b"..", b".", b"", b"../escape", b"/abs", b"a/b", b"nul\0", b"/"])
def test_traversal_names_are_refused(tmp_path: Path, bad: bytes) -> None:
    store = MemoryBlockstore()
    fcid, _ = _file(store, b"evil")
    root = _dir(store, [(b"aaa-ok", fcid), (bad, fcid)])
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    with pytest.raises(UnsafePathError):
        extract(store, root, sandbox / "dest", atomic=False)
    assert [p.name for p in sandbox.iterdir()] == ["dest"]
    assert [p.name for p in (sandbox / "dest").iterdir()] == ["aaa-ok"]
    assert not list(tmp_path.glob("escape*")) and not (tmp_path / "sandbox" / "escape").exists()


def test_gateway_outside_root_fixture_is_refused(tmp_path: Path) -> None:
    from tests._car import read_car
    from tests._shared import shared_path
    roots, store = read_car(shared_path("fixtures", "gateway-conformance", "path_gateway_tar-outside-root.car"))
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    with pytest.raises(UnsafePathError):
        extract(store, roots[0], sandbox / "dest", atomic=False)
    assert [p.name for p in sandbox.iterdir()] == ["dest"]
    assert not (tmp_path / "foo").exists()


def test_duplicate_names(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    a, _ = _file(store, b"first")
    b, _ = _file(store, b"second")
    root = _dir(store, [(b"x", a), (b"x", b)])
    with pytest.raises(UnixFSError, match="duplicate"):
        extract(store, root, tmp_path / "d", atomic=False)
    assert (tmp_path / "d" / "x").read_bytes() == b"first"  # the first was written; nothing replaced it


def test_symlink_then_same_name_directory_cannot_redirect(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    outside = tmp_path / "outside"
    outside.mkdir()
    link = _put(store, encode_symlink(os.fsencode(outside)))
    inner = _dir(store, [(b"pwned", _file(store, b"pwned")[0])])
    root = _dir(store, [(b"s", link), (b"s", inner)])
    with pytest.raises(UnixFSError, match="duplicate"):
        extract(store, root, tmp_path / "d", atomic=False)
    assert list(outside.iterdir()) == []
    assert os.path.islink(tmp_path / "d" / "s")


def test_hamt_duplicates_across_slots(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    fcid, _ = _file(store, b"x")
    block = encode_pbnode([PBLink(fcid, b"00name", 1), PBLink(fcid, b"01name", 1)], encode_unixfs_data(
        UnixFSData(DataType.HAMT_SHARD, data=b"\x03", hash_type=0x22, fanout=256)))
    with pytest.raises(UnixFSError, match="duplicate|slot its name hashes"):
        extract(store, _put(store, block), tmp_path / "d")


def test_wrong_link_types(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    empty_dir = build_directory([], ImportParams(), store).cid
    # a file node whose child is a directory
    file_node = encode_pbnode([PBLink(empty_dir, b"", 4)], encode_unixfs_data(
        UnixFSData(DataType.FILE, filesize=5, blocksizes=(5,))))
    root = _dir(store, [(b"f", _put(store, file_node))])
    with pytest.raises(UnixFSError):
        extract(store, root, tmp_path / "a", atomic=False)
    assert not any(p.name == "f" for p in (tmp_path / "a").iterdir())  # never appeared under its name
    assert list((tmp_path / "a").iterdir()) == []  # temp file removed
    # a HAMT child slot that points at a file
    fcid, _ = _file(store, b"x")
    shard = encode_pbnode([PBLink(fcid, b"00", 1)], encode_unixfs_data(
        UnixFSData(DataType.HAMT_SHARD, data=b"\x01", hash_type=0x22, fanout=256)))
    with pytest.raises(UnixFSError):
        extract(store, _put(store, shard), tmp_path / "b", atomic=False)
    # a directory entry that is dag-cbor
    cbor = CidBuilder(1).cid_bytes(0x71, b"\xa0")
    store.put(cbor, b"\xa0")
    with pytest.raises(UnixFSError, match="not a UnixFS"):
        extract(store, _dir(store, [(b"c", cbor)]), tmp_path / "c")


def test_corrupt_and_missing_blocks(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    fcid, _ = _file(store, b"right")
    root = _dir(store, [(b"f", fcid)])
    store.put(fcid, encode_pbnode((), encode_unixfs_data(UnixFSData(DataType.FILE, data=b"wrong", filesize=5))))
    with pytest.raises(IntegrityError):
        extract(store, root, tmp_path / "a", atomic=False)
    assert list((tmp_path / "a").iterdir()) == []
    missing = _dir(MemoryBlockstore(), [(b"f", fcid)])
    store.put(missing, encode_pbnode([PBLink(fcid, b"f", 1)], encode_unixfs_data(UnixFSData(DataType.DIRECTORY))))
    with pytest.raises(NotFoundError):
        extract(MemoryBlockstore(), root, tmp_path / "b", atomic=False)


def test_depth_limit(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    cid = build_directory([], ImportParams(), store).cid
    for i in range(10):
        cid = build_directory([(b"d", cid, 4)], ImportParams(), store).cid
    with pytest.raises(UnixFSError, match="max_depth"):
        extract(store, cid, tmp_path / "deep", max_depth=5)
    extract(store, cid, tmp_path / "ok", max_depth=20)
    assert (tmp_path / "ok" / "/".join(["d"] * 10)).is_dir()


def test_existing_symlink_on_disk_is_not_followed(tmp_path: Path) -> None:
    """DEST given as a symlink to a directory: refused rather than written through."""
    store = MemoryBlockstore()
    root = _dir(store, [(b"a", _file(store, b"a")[0])])
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "alias")
    with pytest.raises(OSError):
        extract(store, root, tmp_path / "alias")
    assert list((tmp_path / "real").iterdir()) == []


def test_hamt_round_trip_by_name(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    entries = []
    for i in range(600):
        cid, tsize = _file(store, b"%d" % i)
        entries.append(DirEntry(b"file-%03d" % i, cid, tsize))
    root, _ = build_hamt(entries, B, store)
    extract(store, root, tmp_path / "h")
    assert sorted(os.listdir(tmp_path / "h")) == [f"file-{i:03d}" for i in range(600)]
    assert (tmp_path / "h" / "file-599").read_bytes() == b"599"


def test_max_entries_stops_a_dag_bomb(tmp_path: Path) -> None:
    """Each level links the previous one twice: 2**12 files from 13 small blocks."""
    store = MemoryBlockstore()
    cid, tsize = _file(store, b"x")
    for _ in range(12):
        link = build_directory([(b"a", cid, tsize), (b"b", cid, tsize)], ImportParams(), store)
        cid, tsize = link.cid, link.tsize
    with pytest.raises(UnixFSError, match="max_entries"):
        extract(store, cid, tmp_path / "bomb", max_entries=100)
    written = sum(len(files) + len(dirs) for _, dirs, files in os.walk(tmp_path / "bomb"))
    assert written <= 100


def test_cycles_are_refused_even_from_a_lying_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A verified DAG cannot contain a cycle; a store that skips verification could. Simulate
    one: every CID returns a directory whose only entry links back to the root CID."""
    import importlib

    from pyipld.unixfs.walk import walk

    walk_mod = importlib.import_module("pyipld.unixfs.walk")  # the package re-exports a function `walk`

    root = B.cid_bytes(DAG_PB, b"anything")
    loop = encode_pbnode([PBLink(root, b"again", 10)], encode_unixfs_data(UnixFSData(DataType.DIRECTORY)))
    monkeypatch.setattr(walk_mod, "get_verified", lambda source, cid: loop)
    with pytest.raises(UnixFSError, match="cycle"):
        list(walk(MemoryBlockstore(), root))
    with pytest.raises(UnixFSError, match="cycle"):
        extract(MemoryBlockstore(), root, tmp_path / "loop", atomic=False)
    assert [p.name for p in (tmp_path / "loop").iterdir()] == []


@pytest.mark.parametrize("name", [b"", b".", b"..", b"a/b", b"/", b"a\0b"])
def test_build_and_extract_refuse_the_same_names(name: bytes) -> None:
    from pyipld.unixfs.directory import check_entry_name, is_plain_entry_name
    from pyipld.unixfs.extract import check_entry_name_safe

    assert not is_plain_entry_name(name)
    with pytest.raises(UnixFSError):
        check_entry_name(name)
    with pytest.raises(UnsafePathError):
        check_entry_name_safe(name)
    assert is_plain_entry_name(name.replace(b"/", b"_").replace(b"\0", b"_") + b"x")


def test_a_failed_tree_leaves_nothing_at_dest_and_can_be_run_again(tmp_path: Path) -> None:
    """Regression: a tree that failed halfway (here --max-entries; a missing block or an unsafe
    name alike) stayed behind at DEST, and running the command again was refused as DEST was
    not empty. The tree is written under a temporary name and renamed when complete."""
    store = MemoryBlockstore()
    fcid, _ = _file(store, b"data")
    root = _dir(store, [(b"a", fcid), (b"b", fcid), (b"c", fcid)])
    dest = tmp_path / "dest"
    with pytest.raises(UnixFSError, match="max_entries"):
        extract(store, root, dest, max_entries=2)
    assert list(tmp_path.iterdir()) == []  # neither DEST nor the temporary tree
    stats = extract(store, root, dest)
    assert (stats.files, sorted(p.name for p in dest.iterdir())) == (3, ["a", "b", "c"])
    (tmp_path / "empty").mkdir()  # an empty directory may be replaced, as it could be filled before
    extract(store, root, tmp_path / "empty")
    assert sorted(p.name for p in (tmp_path / "empty").iterdir()) == ["a", "b", "c"]
    with pytest.raises(FileExistsError, match="not an empty directory"):
        extract(store, root, dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest", "empty"]
