"""The directory fast path of the import cache (pyipld/unixfs/_cache_native.c and its Python
twins in cache.py): the C helpers give the Python paths' bytes, and a re-import through the fast
path always equals a cold import — after every kind of change and when the tree changes under
the walk."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld.errors import ConfigError
from pyipld.unixfs import _cache_native, cache
from pyipld.unixfs.cache import CacheStats, ImportCache, dir_signature, pack_stats
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.tree import AddedEntry, import_paths
from pyipld.unixfs.tree.readahead import ReadAhead
from pyipld.unixfs.tree.source import LocalSource

WINDOW = 50_000_000  # 50 ms racy window (the default is 2 s)
native = pytest.mark.skipif(not _cache_native.available(), reason="no C compiler (or PYIPLD_PUREPYTHON)")

Run = tuple[str, list[tuple[bytes, str, int, str]], int]


JOBS = 1  # the cached walks' threads: 2 reads directories ahead (pyipld/unixfs/tree/readahead.py)


@pytest.fixture(params=[1, 2], ids=["walk", "readahead"])
def walk_jobs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The cached walks below run on the walk's thread alone and with sub-directories read ahead;
    with 2, the read-ahead must have read some directories (counted)."""
    monkeypatch.setattr(sys.modules[__name__], "JOBS", request.param)  # read by _run and _cached
    reads: list[bytes] = []
    real = ReadAhead._read

    def counted(self: ReadAhead, path: bytes) -> Any:
        reads.append(path)
        return real(self, path)

    monkeypatch.setattr(ReadAhead, "_read", counted)
    yield request.param
    if request.param > 1:
        assert reads, "no directory was read ahead"


def _run(root: Path, params: ImportParams | None = None, **kw: Any) -> Run:
    out: list[AddedEntry] = []
    read: list[int] = []
    jobs = JOBS if "cache" in kw else 1
    got = import_paths([root], params, on_added=out.append, progress=read.append, jobs=jobs, **kw)
    return str(got.cid), [(e.path, str(e.cid), e.size, e.kind) for e in out], sum(read)


def _cached(root: Path, db: Path, params: ImportParams | None = None) -> tuple[Run, CacheStats]:
    with ImportCache(db, racy_window_ns=WINDOW) as c:
        got = _run(root, params, cache=c)
        stats = dataclasses.replace(c.stats)
        bare = import_paths([root], params, jobs=JOBS, cache=c)  # nothing reported: no per-entry events
        assert str(bare.cid) == got[0]
        return got, stats


def _settle() -> None:
    time.sleep(2 * WINDOW / 1e9)


def _tree(root: Path) -> Path:
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "empty").mkdir()
    for i in range(6):
        (root / "a" / f"f{i}").write_bytes(bytes([65 + i]) * (10 + 7 * i))
        (root / "a" / "b" / f"g{i}").write_bytes(os.urandom(40 + i))
        (root / f"t{i}").write_bytes(b"top %d" % i)
    os.symlink("f0", root / "a" / "link")
    return root


@pytest.fixture(params=["native", "python"])
def path_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test below runs with the C helpers and with the Python paths alone."""
    if request.param == "native":
        if not _cache_native.available():
            pytest.skip("no C compiler (or PYIPLD_PUREPYTHON)")
    else:
        monkeypatch.setattr(_cache_native, "stat_listing", lambda parent, names: None)
        monkeypatch.setattr(_cache_native, "list_names", lambda path, hidden: None)  # os.scandir
        monkeypatch.setattr(_cache_native, "read_listing", lambda path, hidden: None)
        monkeypatch.setattr(_cache_native, "index_entries", lambda blob, n: None)
    return str(request.param)


# -- the C helpers give the Python paths' bytes -----------------------------------------------------

@native
def test_stat_listing_equals_pack_stats(tmp_path: Path) -> None:
    d = _tree(tmp_path / "t") / "a"
    os.mkfifo(d / "fifo")
    os.utime(d / "f1", ns=(0, -1_500_000_001))  # before 1970: seconds and nanoseconds split by floor
    os.utime(d / "f2", ns=(0, 2**62))  # far future
    os.chmod(d / "f3", 0o600)
    names = sorted(os.listdir(os.fsencode(d)))
    got = _cache_native.stat_listing(os.fsencode(d), names)
    assert got is not None
    want = pack_stats([os.lstat(os.path.join(os.fsencode(d), n)) for n in names])
    assert got == want
    assert got[1] == b"".join(b"d" if n in (b"b", b"empty") else b"l" if n == b"link" else b"o" if n == b"fifo"
                              else b"f" for n in names)


@native
def test_stat_listing_failure_is_none(tmp_path: Path) -> None:
    d = _tree(tmp_path / "t")
    assert _cache_native.stat_listing(os.fsencode(d), [b"t0", b"gone"]) is None
    assert _cache_native.stat_listing(os.fsencode(d / "nothing"), [b"t0"]) is None


@native
@pytest.mark.parametrize("hidden", [False, True])
def test_list_names_equals_scandir(tmp_path: Path, hidden: bool) -> None:
    d = os.fsencode(tmp_path)
    names = [b".h", b"..x", b"a", b"\xff\xfe", b"sub", b"link"] + [b"n%05d" % i + b"x" * 60 for i in range(1500)]
    for name in names:  # ~100 KiB of names: more than the first buffer
        if name == b"sub":
            os.mkdir(os.path.join(d, name))
        elif name == b"link":
            os.symlink(b"nowhere", os.path.join(d, name))
        else:
            open(os.path.join(d, name), "wb").close()
    with os.scandir(d) as it:
        want = [e.name for e in it if hidden or not e.name.startswith(b".")]
    assert _cache_native.list_names(d, hidden) == want
    assert _cache_native.list_names(os.path.join(d, b"a"), hidden) is None  # not a directory
    assert _cache_native.list_names(os.path.join(d, b"gone"), hidden) is None


def _index(blob: bytes, n: int) -> tuple[bytes, list[int]] | str:
    try:
        return cache._index_entries(blob, n)
    except ConfigError:
        return "damaged"


@native
@settings(max_examples=300, deadline=None)
@given(entries=st.lists(st.tuples(st.sampled_from("dfl"), st.binary(max_size=40), st.integers(0, 2**64 - 1),
                                  st.integers(0, 2**64 - 1)), max_size=6),
       cut=st.integers(-3, 3), noise=st.binary(max_size=3), extra=st.integers(-1, 1))
def test_index_entries_equals_python(entries: list[tuple[str, bytes, int, int]], cut: int, noise: bytes,
                                     extra: int) -> None:
    blob = cache._pack_entries(entries)
    blob = (blob[:cut] if cut < 0 else blob + noise[:cut]) if cut else blob
    n = max(0, len(entries) + extra)
    got = _index(blob, n)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_cache_native, "index_entries", lambda blob, n: None)
        assert _index(blob, n) == got
    if not cut and not extra:
        assert got != "damaged"
    if blob != cache._pack_entries(entries) or n != len(entries):  # an empty record with bytes included
        assert got == "damaged"


def test_signature_tells_listings_apart() -> None:
    rec = pack_stats([os.lstat(__file__)])[0]
    assert dir_signature([b"ab"], rec) != dir_signature([b"a"], rec)
    assert dir_signature([b"a", b"b"], rec + rec) != dir_signature([b"a\0b"], rec + rec)
    assert dir_signature([], b"") != dir_signature([b""], b"")



@native
@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("many", [6, 5000])  # 5,000 names: more than the first record buffers
def test_read_listing_equals_sorted_listing_and_its_stats(tmp_path: Path, hidden: bool, many: int) -> None:
    """One call: the names sorted as Python sorts bytes (non-UTF-8, a prefix before its
    extensions), and their records as stat_listing packs them."""
    d = os.fsencode(tmp_path)
    names = [b".h", b"..x", b"a", b"ab", b"a\x01", b"\xff\xfe", b"\x7f", b"sub", b"link", b"fifo"]
    names += [b"n%05d" % i + b"x" * (60 if many > 10 else 0) for i in range(many)]
    for name in names:
        path = os.path.join(d, name)
        if name == b"sub":
            os.mkdir(path)
        elif name == b"link":
            os.symlink(b"nowhere", path)
        elif name == b"fifo":
            os.mkfifo(path)
        else:
            with open(path, "wb") as f:
                f.write(name)
    for _ in range(2):  # the second call reuses this thread's (grown) buffers
        want_names = sorted(_cache_native.list_names(d, hidden) or [])
        assert len(want_names) == len(names) - (0 if hidden else 2)
        assert _cache_native.read_listing(d, hidden) == (want_names, _cache_native.stat_listing(d, want_names))
    empty = os.path.join(d, b"sub")
    assert _cache_native.read_listing(empty, hidden) == ([], (b"", b""))
    assert _cache_native.read_listing(os.path.join(d, b"a"), hidden) is None  # not a directory
    assert _cache_native.read_listing(os.path.join(d, b"gone"), hidden) is None


# -- a fast-path re-import equals a cold import ----------------------------------------------------

def _change(root: Path, change: str) -> None:
    a = root / "a"
    if change == "content":  # same size, mtime set back: only ctime tells
        st_ = (a / "f2").stat()
        (a / "f2").write_bytes(b"Z" * st_.st_size)
        os.utime(a / "f2", ns=(st_.st_atime_ns, st_.st_mtime_ns))
    elif change == "rename":
        (a / "f1").rename(a / "f1x")
    elif change == "rename-dir":  # no stat of a sub-directory is in its parent's signature: its name is
        (a / "empty").rename(a / "empty2")
    elif change == "swap":  # two names exchanged: same stats, other names
        (a / "f1").rename(a / "tmp")
        (a / "f3").rename(a / "f1")
        (a / "tmp").rename(a / "f3")
    elif change == "hidden":
        (a / ".h").write_bytes(b"hidden")
    elif change == "chmod":
        os.chmod(a / "f4", 0o600)
    elif change == "symlink":
        (a / "link").unlink()
        os.symlink("f1", a / "link")
    elif change == "file-to-dir":
        (a / "f5").unlink()
        (a / "f5").mkdir()
        (a / "f5" / "x").write_bytes(b"x")
    elif change == "empty-dir-fills":
        (a / "empty" / "new").write_bytes(b"new")
    else:
        assert change == "none"


@pytest.mark.parametrize("change", ["none", "content", "rename", "rename-dir", "swap", "hidden", "chmod", "symlink",
                                    "file-to-dir", "empty-dir-fills"])
@pytest.mark.parametrize("hidden", [False, True])
def test_fast_path_equals_cold_after_a_change(tmp_path: Path, path_kind: str, change: str, hidden: bool,
                                              walk_jobs: int) -> None:
    params = ImportParams(hidden=hidden)
    root = _tree(tmp_path / "t")
    _settle()
    _cached(root, tmp_path / "c.db", params)
    _settle()
    again, stats = _cached(root, tmp_path / "c.db", params)
    assert again == _run(root, params) and stats.dir_hits == 4
    _change(root, change)
    _settle()
    got, stats = _cached(root, tmp_path / "c.db", params)
    assert got == _run(root, params)
    assert stats.dir_hits >= 1
    assert _cached(root, tmp_path / "c.db", params)[0] == got  # the records written now are right too


def test_change_within_the_racy_window_is_rehashed(tmp_path: Path, path_kind: str, walk_jobs: int) -> None:
    root = _tree(tmp_path / "t")
    _settle()
    _cached(root, tmp_path / "c.db")
    f = root / "a" / "b" / "g1"
    st_ = f.stat()
    f.write_bytes(os.urandom(st_.st_size))  # same size and mtime, no settle: within the window
    os.utime(f, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    got, stats = _cached(root, tmp_path / "c.db")
    assert got == _run(root) and stats.dir_hits == 3  # t and a (re-encoded), a/empty; not a/b
    got, stats = _cached(root, tmp_path / "c.db")  # g1 was recorded in its own tick: still racy
    assert got == _run(root) and stats.racy == 1 and stats.dir_hits == 3
    _settle()
    _cached(root, tmp_path / "c.db")  # recorded once more, now out of the window
    got, stats = _cached(root, tmp_path / "c.db")
    assert got == _run(root) and stats.racy == 0 and stats.dir_hits == 4


# -- the tree changing under the walk: the cold import's error ----------------------------------------

def _error(fn: Any) -> tuple[type, int | None, Any]:
    with pytest.raises(OSError) as info:
        fn()
    return type(info.value), info.value.errno, info.value.filename


@pytest.mark.parametrize("what", ["directory", "file"])
def test_vanishing_mid_walk_is_the_cold_error(tmp_path: Path, path_kind: str, what: str,
                                              monkeypatch: pytest.MonkeyPatch, walk_jobs: int) -> None:
    root = _tree(tmp_path / "t")
    _settle()
    _cached(root, tmp_path / "c.db")
    _settle()
    keep = tmp_path / "keep"
    shutil.copytree(root, keep, symlinks=True)
    listed, read_listing = LocalSource.list_dir, LocalSource.read_listing
    removed: list[bool] = []
    target = os.fsencode(root / "a" / "b")

    def before_listing(fs_path: bytes) -> None:
        if what == "directory" and fs_path == target and not removed:
            removed.append(True)
            shutil.rmtree(target)  # gone between its parent's listing and its own (read ahead or not)

    def after_listing(fs_path: bytes) -> bool:
        if what == "file" and fs_path == target and os.path.exists(os.path.join(target, b"g3")):
            os.unlink(os.path.join(target, b"g3"))  # gone between the listing and the lstat
            return True
        return False

    def list_dir(self: LocalSource, fs_path: bytes) -> list[bytes]:
        before_listing(fs_path)
        names = listed(self, fs_path)
        after_listing(fs_path)
        return names

    def listing_and_stats(self: LocalSource, fs_path: bytes) -> Any:  # the read-ahead's one call
        before_listing(fs_path)
        names, stats = read_listing(self, fs_path)
        if after_listing(fs_path):
            stats = self.stat_listing(fs_path, names)  # None, as the C call answers a failed lstat
        return names, stats

    def restore() -> None:
        removed.clear()  # the cold import below meets the same removal
        shutil.rmtree(root)
        shutil.copytree(keep, root, symlinks=True)

    monkeypatch.setattr(LocalSource, "list_dir", list_dir)
    monkeypatch.setattr(LocalSource, "read_listing", listing_and_stats)
    with ImportCache(tmp_path / "c.db", racy_window_ns=WINDOW) as c:
        cached = _error(lambda: import_paths([root], jobs=walk_jobs, cache=c))
        assert c.stats.dir_hits >= 1  # the fast path was taken up to there
    restore()
    assert _error(lambda: import_paths([root], jobs=1)) == cached
    assert cached[0] is FileNotFoundError


def test_record_kinds_not_the_listings_is_damage(tmp_path: Path, path_kind: str) -> None:
    root = _tree(tmp_path / "t")
    _settle()
    _cached(root, tmp_path / "c.db")
    with sqlite3.connect(tmp_path / "c.db") as db:
        path = os.fsencode(root / "a")
        (entries,) = db.execute("SELECT entries FROM dirs WHERE path=?", (path,)).fetchone()
        assert entries[:1] == b"d"  # a/b
        db.execute("UPDATE dirs SET entries=? WHERE path=?", (b"f" + bytes(entries[1:]), path))
    with pytest.raises(ConfigError, match="damaged"):
        _cached(root, tmp_path / "c.db")


def test_a_record_that_could_not_be_taken_is_not_lstat_ed_for_it(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A racy record (or one of an older signature format) is refused whatever the listing: the
    walk no longer lstats the directory in C for it before lstat'ing it entry by entry."""
    root = _tree(tmp_path / "t")
    _settle()
    _cached(root, tmp_path / "c.db")
    _settle()
    calls: list[bytes] = []
    real = LocalSource.stat_listing

    def counted(self: LocalSource, parent: bytes, names: list[bytes]) -> Any:
        calls.append(parent)
        return real(self, parent, names)

    monkeypatch.setattr(LocalSource, "stat_listing", counted)
    with ImportCache(tmp_path / "c.db", racy_window_ns=10**18) as c:  # every record with files is racy now
        assert str(import_paths([root], jobs=1, cache=c).cid) == _run(root)[0] and c.stats.dir_hits == 1
    assert calls == [os.fsencode(root / "a" / "empty")]  # no file in it: never racy
    calls.clear()
    with ImportCache(tmp_path / "c.db", racy_window_ns=WINDOW) as c:
        assert str(import_paths([root], jobs=1, cache=c).cid) == _run(root)[0] and c.stats.dir_hits == 4
    assert len(calls) == 4
    db = sqlite3.connect(tmp_path / "c.db")
    db.execute("UPDATE dirs SET signature = X'00736967315A'")  # a sig1-era record
    db.commit()
    db.close()
    calls.clear()
    with ImportCache(tmp_path / "c.db", racy_window_ns=WINDOW) as c:
        assert str(import_paths([root], jobs=1, cache=c).cid) == _run(root)[0] and c.stats.dir_hits == 0
    assert calls == []
