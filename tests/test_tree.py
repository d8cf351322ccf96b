"""Importing file trees like ``ipfs add -r``: known answers, walk rules, output order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyipld.blockstore import MemoryBlockstore
from pyipld.cid import CID
from pyipld.dagpb import decode_pbnode
from pyipld.errors import ConfigError, UnixFSError
from pyipld.unixfs.data import DataType, Mtime, decode_unixfs_data
from pyipld.unixfs.hamt import hamt_order_key
from pyipld.unixfs.params import UNIXFS_V0_2015, ImportParams
from pyipld.unixfs.tree import AddedEntry, import_directory, import_paths
from tests._dirgen import make_kubo_dir

EMPTY_DIR_V0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"


def _mars_venus(root: Path) -> Path:
    root.mkdir()
    (root / "mars.txt").write_bytes(b"Hello Mars!\n")
    (root / "venus.txt").write_bytes(b"Hello Venus!\n")
    return root


@pytest.mark.parametrize(("params", "want"), [
    (ImportParams(), "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY"),
    (ImportParams(raw_leaves=True), "QmfWfQfKCY5Ukv9peBbxM5vqWM9BzmqUSXvdCgjT2wsiBT"),
    (ImportParams(cid_version=1), "bafybeih7e5dmkyk25up5vxug4q3hrg2fxbzf23dfrac2fns5h7z4aa7ioi"),
])
def test_mars_venus_tree(tmp_path: Path, params: ImportParams, want: str) -> None:
    """kubo t0040-add-and-cat.sh: `ipfs add -r` of a two-file directory."""
    assert str(import_directory(_mars_venus(tmp_path / "planets"), params).cid) == want


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "e").mkdir()
    assert str(import_directory(tmp_path / "e").cid) == EMPTY_DIR_V0


def test_symlink_vector(tmp_path: Path) -> None:
    """kubo t0044-add-symlink.sh: a symlink to files/foo/baz as the argument itself."""
    os.symlink("files/foo/baz", tmp_path / "bar")
    assert str(import_paths([tmp_path / "bar"]).cid) == "QmdocmZeF7qwPT9Z8SiVhMSyKA2KKoA2J7jToW6z6WBmxR"


def test_symlinks_are_stored_never_followed(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_bytes(b"not to be read")
    os.symlink(tmp_path / "outside", d / "link")  # a symlink to a directory
    os.symlink("nowhere", d / "dangling")
    store = MemoryBlockstore()
    events: list[AddedEntry] = []
    root = import_directory(d, sink=store, on_added=events.append)
    assert {e.path: e.kind for e in events} == {b"d/dangling": "symlink", b"d/link": "symlink", b"d": "directory"}
    links = decode_pbnode(store.get(root.cid.bytes)).links
    target = decode_unixfs_data(decode_pbnode(store.get(links[1].cid)).data or b"")
    assert target.type == DataType.SYMLINK and target.data == os.fsencode(tmp_path / "outside")


def test_symlink_metadata_mtime_only(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    os.symlink("x", d / "l")
    store = MemoryBlockstore()
    root = import_directory(d, ImportParams(mode=0o644, mtime=(1000, 5)), store)
    node = decode_pbnode(store.get(root.cid.bytes))
    link_data = decode_unixfs_data(decode_pbnode(store.get(node.links[0].cid)).data or b"")
    assert link_data.mode is None and link_data.mtime == Mtime(1000, 5)
    dir_data = decode_unixfs_data(node.data or b"")
    assert dir_data.mode == 0o644 and dir_data.mtime == Mtime(1000, 5)


def test_hidden_files(tmp_path: Path) -> None:
    d = _mars_venus(tmp_path / "d")
    (d / ".hidden").write_bytes(b"h")
    (d / ".hdir").mkdir()
    (d / ".hdir" / "x").write_bytes(b"x")
    assert str(import_directory(d).cid) == "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY"
    assert import_directory(d, ImportParams(hidden=True)).cid != import_directory(d).cid


def test_non_utf8_names_kubo_0_22(tmp_path: Path) -> None:
    """kubo 0.22 (kubo_oracle.py cid, whose library add includes dot-files) stores raw name bytes:
    t/{\\xff\\xfename='hi', sub/a='a', .hid='h', link -> sub/a}."""
    t = tmp_path / "t"
    (t / "sub").mkdir(parents=True)
    (t / "sub" / "a").write_bytes(b"a")
    (t / ".hid").write_bytes(b"h")
    with open(os.path.join(os.fsencode(t), b"\xff\xfename"), "wb") as f:
        f.write(b"hi")
    os.symlink("sub/a", t / "link")
    got = import_directory(t, ImportParams(hidden=True))
    assert str(got.cid) == "QmUdinCW6fiFvV5fFD1N4D1jiZi71yWZ6QBskKFUcedxSV"


def test_empty_dirs_flag(tmp_path: Path) -> None:
    d = _mars_venus(tmp_path / "d")
    (d / "empty").mkdir()
    (d / "only-hidden").mkdir()
    (d / "only-hidden" / ".x").write_bytes(b"x")
    (d / "holds-empty").mkdir()
    (d / "holds-empty" / "e").mkdir()
    kept = import_directory(d)
    dropped = import_directory(d, ImportParams(empty_dirs=False))
    store = MemoryBlockstore()
    import_directory(d, ImportParams(empty_dirs=False), store)
    names = [link.name for link in decode_pbnode(store.get(dropped.cid.bytes)).links]
    # kubo: a directory is empty after the hidden filter; one holding an (omitted) empty dir is kept.
    assert names == [b"holds-empty", b"mars.txt", b"venus.txt"]
    assert kept.cid != dropped.cid
    # The top level is always kept.
    (tmp_path / "top").mkdir()
    assert str(import_directory(tmp_path / "top", ImportParams(empty_dirs=False)).cid) == EMPTY_DIR_V0


def test_output_order_children_before_parents(tmp_path: Path) -> None:
    d = tmp_path / "root"
    for rel in ("b/z.txt", "b/a/y.txt", "a.txt", "c/d/e/f.txt"):
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rel.encode())
    events: list[AddedEntry] = []
    root = import_directory(d, on_added=events.append)
    assert [e.path.decode() for e in events] == [
        "root/a.txt", "root/b/a/y.txt", "root/b/z.txt", "root/c/d/e/f.txt",   # files as added (walk order)
        "root/b/a", "root/b", "root/c/d/e", "root/c/d", "root/c", "root",     # kubo outputDirs
    ]
    assert events[-1].cid == root.cid and events[-1].size == root.tsize


def test_sharded_directory_reports_children_in_hash_order(tmp_path: Path) -> None:
    d = tmp_path / "d"
    for i in range(6):
        (d / f"sub{i}").mkdir(parents=True)
        (d / f"sub{i}" / "f").write_bytes(b"%d" % i)
    events: list[AddedEntry] = []
    import_directory(d, ImportParams(max_directory_links=2), on_added=events.append)
    dirs = [e.path for e in events if e.kind == "directory"][:-1]
    assert dirs == [b"d/" + n for n in sorted((b"sub%d" % i for i in range(6)), key=hamt_order_key)]


def test_wrap_with_directory(tmp_path: Path) -> None:
    d = _mars_venus(tmp_path / "planets")
    events: list[AddedEntry] = []
    wrapped = import_paths([d / "mars.txt", d / "venus.txt"], wrap=True, on_added=events.append)
    assert str(wrapped.cid) == "QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY"  # same entries as the dir
    assert [e.path for e in events] == [b"mars.txt", b"venus.txt", b""]
    events.clear()
    outer = import_paths([d], wrap=True, on_added=events.append)
    assert [e.path for e in events][-2:] == [b"planets", b""]
    with pytest.raises(UnixFSError, match="directory already has entry by that name"):
        import_paths([d / "mars.txt", d / "mars.txt"], wrap=True)
    assert outer.cid != wrapped.cid


def test_directory_needs_recursive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="-r"):
        import_paths([_mars_venus(tmp_path / "d")], recursive=False)


def test_special_files_are_refused(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    os.mkfifo(d / "fifo")
    with pytest.raises(UnixFSError, match="unrecognized file type.*: prw"):
        import_directory(d)


def test_preserve_mode_and_mtime(tmp_path: Path) -> None:
    d = _mars_venus(tmp_path / "d")
    os.chmod(d / "mars.txt", 0o640)
    os.utime(d / "mars.txt", ns=(0, 1_600_000_000_123_456_789))
    os.chmod(d, 0o750)
    store = MemoryBlockstore()
    root = import_directory(d, ImportParams(preserve_mode=True, preserve_mtime=True), store)
    node = decode_pbnode(store.get(root.cid.bytes))
    assert decode_unixfs_data(node.data or b"").mode == 0o750
    mars = decode_unixfs_data(decode_pbnode(store.get(node.links[0].cid)).data or b"")
    assert mars.type == DataType.FILE and mars.mode == 0o640 and mars.mtime == Mtime(1_600_000_000, 123_456_789)


def test_kubo_v0_hamt_vector_from_files(tmp_path: Path) -> None:
    """kubo DirHAMTCID (unixfs-v0-2015) end to end through the file system walk."""
    d = make_kubo_dir(tmp_path / "hamt", "hamt-unixfs-v0-2015", 4033, 31, 31)
    events: list[AddedEntry] = []
    root = import_directory(d, UNIXFS_V0_2015, on_added=events.append)
    assert str(root.cid) == "QmeMiJzmhpJAUgynAcxTQYek5PPKgdv3qEvFsdV3XpVnvP"
    assert len(events) == 4034 and events[-1].cid == root.cid
    assert isinstance(CID.decode(str(root.cid)), CID)


def test_progress_counts_every_file_byte(tmp_path: Path) -> None:
    d = _mars_venus(tmp_path / "d")
    (d / "big.bin").write_bytes(bytes(300_000))
    seen: list[int] = []
    import_directory(d, ImportParams(chunker="size-65536"), progress=seen.append)
    assert sum(seen) == 12 + 13 + 300_000


# -- report="top": what `add -Q` prints, without reporting every entry ----------------------------

def _top_tree(root: Path) -> Path:
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "deep.txt").write_bytes(b"deep")
    (root / "a" / "f.txt").write_bytes(b"f" * 5000)
    (root / "one.txt").write_bytes(b"one")
    os.symlink("one.txt", root / "link")
    return root


@pytest.mark.parametrize("wrap", [False, True])
@pytest.mark.parametrize("shard", [False, True])
def test_report_top_is_the_top_level_subset_of_every_event(tmp_path: Path, wrap: bool, shard: bool) -> None:
    root = _top_tree(tmp_path / "t")
    params = ImportParams(hamt_threshold=1) if shard else ImportParams()  # every directory a HAMT
    inputs = [root / "a", root / "one.txt", root / "link", root]
    every: list[AddedEntry] = []
    top: list[AddedEntry] = []
    want = import_paths(inputs, params, wrap=wrap, on_added=every.append)
    got = import_paths(inputs, params, wrap=wrap, on_added=top.append, report="top")
    assert got == want
    assert top == [e for e in every if b"/" not in e.path]
    if wrap:  # the wrapper's directories come after its files, in link order, then the wrapper
        assert sorted(e.path for e in top) == [b"", b"a", b"link", b"one.txt", b"t"] and top[-1].path == b""
    else:
        assert [e.path for e in top] == [b"a", b"one.txt", b"link", b"t"]
    assert top[-1].cid == want.cid  # what -Q prints


def test_report_top_takes_cached_directories_without_visiting_their_entries(tmp_path: Path) -> None:
    from pyipld.unixfs.cache import DirRecord, ImportCache

    root = _top_tree(tmp_path / "t")
    with ImportCache(tmp_path / "c.db", racy_window_ns=1) as cache:
        want = import_paths([root], cache=cache)
    visited: list[int] = []
    real = DirRecord.entry

    def counted(self: DirRecord, i: int) -> object:
        visited.append(i)
        return real(self, i)

    DirRecord.entry = counted  # type: ignore[method-assign]
    try:
        top: list[AddedEntry] = []
        with ImportCache(tmp_path / "c.db", racy_window_ns=1) as cache:
            assert import_paths([root], cache=cache, on_added=top.append, report="top") == want
            assert cache.stats.dir_hits == 3
        assert [e.path for e in top] == [b"t"]
        assert len(visited) == 2  # the sub-directory links of t (a) and of a (b): no file entry
        with ImportCache(tmp_path / "c.db", racy_window_ns=1) as cache:
            import_paths([root], cache=cache, on_added=lambda e: None)
        assert len(visited) > 2 + 4  # reporting every entry reads every file's
        read: list[int] = []
        top.clear()
        with ImportCache(tmp_path / "c.db", racy_window_ns=1) as cache:  # -Q --progress: sizes, no events
            assert import_paths([root], cache=cache, on_added=top.append, progress=read.append, report="top") == want
        assert sum(read) == 4 + 5000 + 3 and [e.path for e in top] == [b"t"]
    finally:
        DirRecord.entry = real  # type: ignore[method-assign]


def test_report_top_knows_top_level_entries_by_where_they_come_from_not_by_a_slash(tmp_path: Path) -> None:
    """Regression: report="top" dropped a top-level entry whose name holds a "/" (a NamedStream:
    stdin or a URL named by the caller), so add -Q had nothing to print."""
    import io

    from pyipld.unixfs.tree import NamedStream

    stream = NamedStream(b"named/with/slashes", lambda: io.BytesIO(b"data"))
    every: list[AddedEntry] = []
    top: list[AddedEntry] = []
    want = import_paths([stream], on_added=every.append)
    assert import_paths([NamedStream(stream.name, stream.open)], on_added=top.append, report="top") == want
    assert top == every and [e.path for e in top] == [b"named/with/slashes"]
