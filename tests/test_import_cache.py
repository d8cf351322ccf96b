"""Incremental re-import (pyipld/unixfs/cache.py): a cached run always equals a cold import.

Files are changed, added, deleted, renamed and touched between runs, including same-size
rewrites with the mtime set back to the same nanosecond (os.utime ns); the racy rule is
tested on its own with stat values no real file system lets a test produce.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld.blockstore import MemoryBlockstore
from pyipld.cli import main
from pyipld.errors import ConfigError
from pyipld.unixfs.cache import ImportCache, params_key
from pyipld.unixfs.nodes import FileLink
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.tree import AddedEntry, import_paths
from tests._recipes import kubo022_param_kwargs, load_vectors, materialise_vector_input

WINDOW = 50_000_000  # 50 ms racy window in these tests (the default is 2 s)
OLD = 1_600_000_000_123_456_789  # an mtime far in the past, with nanoseconds


@dataclass
class FakeStat:
    st_dev: int = 1
    st_ino: int = 2
    st_size: int = 3
    st_mtime_ns: int = OLD
    st_ctime_ns: int = OLD
    st_mode: int = 0o100644


def _events(path: Path, params: ImportParams | None = None, **kw: Any) -> list[tuple[bytes, str, int, str]]:
    out: list[AddedEntry] = []
    import_paths([path], params, on_added=out.append, jobs=1, **kw)
    return [(e.path, str(e.cid), e.size, e.kind) for e in out]


def _settle() -> None:
    """Let every ctime written so far fall outside the racy window."""
    time.sleep(2 * WINDOW / 1e9)


def _tree(root: Path) -> Path:
    (root / "d" / "sub").mkdir(parents=True)
    for i in range(6):
        (root / "d" / f"f{i}").write_bytes(bytes([i]) * (1000 + 97 * i))
    (root / "d" / "sub" / "big").write_bytes(os.urandom(300_000))
    (root / "d" / "sub" / "empty").write_bytes(b"")
    os.symlink("f0", root / "d" / "link")
    for p in (root / "d").rglob("*"):
        if not p.is_symlink():
            os.utime(p, ns=(OLD, OLD))
    return root / "d"


# -- the racy rule, with stat values chosen freely ----------------------------------------------

def test_racy_entry_never_trusted_even_when_stat_matches(tmp_path: Path) -> None:
    with ImportCache(tmp_path / "c.db", racy_window_ns=WINDOW) as cache:
        link = FileLink(b"\x01cid", 10, 3)
        st = FakeStat(st_mtime_ns=OLD, st_ctime_ns=OLD)
        # Hashed in the same tick as the file's last change: a later same-tick rewrite keeps this stat.
        assert cache.record("k", b"/x", st, st, link, recorded_ns=OLD + WINDOW // 2)
        assert cache.lookup("k", b"/x", st) is None
        assert cache.stats.racy == 1
        # Recorded well after the last change: trusted.
        assert cache.record("k", b"/y", st, st, link, recorded_ns=OLD + 2 * WINDOW)
        assert cache.lookup("k", b"/y", st) == link
        assert cache.stats.hits == 1


def test_racy_uses_ctime_unless_told_not_to(tmp_path: Path) -> None:
    st = FakeStat(st_mtime_ns=OLD, st_ctime_ns=OLD + 10 * WINDOW)  # mtime set back by utime, ctime recent
    with ImportCache(tmp_path / "a.db", racy_window_ns=WINDOW) as cache:
        assert cache.is_racy(st, OLD + 10 * WINDOW + 1)
    with ImportCache(tmp_path / "b.db", racy_window_ns=WINDOW, trust_ctime=False) as cache:
        assert not cache.is_racy(st, OLD + 10 * WINDOW + 1)
    # A future mtime is never trusted.
    with ImportCache(tmp_path / "c.db", racy_window_ns=WINDOW) as cache:
        assert cache.is_racy(FakeStat(st_mtime_ns=OLD * 2), OLD + 10 * WINDOW)


@pytest.mark.parametrize("field", ["st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns", "st_mode"])
def test_any_stat_change_is_a_miss(tmp_path: Path, field: str) -> None:
    with ImportCache(tmp_path / "c.db", racy_window_ns=WINDOW) as cache:
        st = FakeStat()
        cache.record("k", b"/x", st, st, FileLink(b"c", 1, 1), recorded_ns=OLD + 10 * WINDOW)
        changed = FakeStat(**{field: getattr(st, field) + 1})
        assert cache.lookup("k", b"/x", changed) is None
        assert cache.lookup("other-params", b"/x", st) is None
        assert cache.lookup("k", b"/x", st) is not None


def test_unstable_read_not_recorded(tmp_path: Path) -> None:
    with ImportCache(tmp_path / "c.db", racy_window_ns=WINDOW) as cache:
        before, after = FakeStat(), FakeStat(st_size=4)
        assert not cache.record("k", b"/x", before, after, FileLink(b"c", 1, 1), recorded_ns=OLD + 10 * WINDOW)
        assert cache.lookup("k", b"/x", before) is None and cache.lookup("k", b"/x", after) is None


def test_bad_cache_file_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError):
        ImportCache(bad)
    with pytest.raises(ConfigError):
        ImportCache(tmp_path / "x.db", racy_window_ns=-1)
    (tmp_path / "f").write_bytes(b"x")
    assert main(["add", "--cache", str(bad), str(tmp_path / "f")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error:") and "Traceback" not in err


# -- real trees: every cached run equals a cold import -------------------------------------------

def test_change_add_delete_rename_touch(tmp_path: Path) -> None:
    d = _tree(tmp_path)
    db = tmp_path / "cache.db"
    _settle()

    def check(expect_hits: int | None = None, expect_read: int | None = None) -> ImportCache:
        cold = _events(d)
        with ImportCache(db, racy_window_ns=WINDOW) as cache:
            assert _events(d, cache=cache) == cold
        if expect_hits is not None:
            assert cache.stats.hits == expect_hits, cache.stats
        if expect_read is not None:
            assert cache.stats.recorded == expect_read, cache.stats
        return cache

    check(expect_hits=0, expect_read=8)
    check(expect_hits=8, expect_read=0)  # nothing changed: nothing read

    # Same size, mtime set back to the very same nanosecond: only ctime betrays it.
    st = os.stat(d / "f1")
    (d / "f1").write_bytes(b"\xee" * st.st_size)
    os.utime(d / "f1", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(d / "f1").st_mtime_ns == st.st_mtime_ns
    check(expect_hits=7, expect_read=1)

    # No settle: f1 was recorded right after its rewrite, so its entry is racy and is
    # re-hashed (racy=1) although its stat matches; f2 changed within the same tick.
    (d / "f2").write_bytes(b"\x11" * os.stat(d / "f2").st_size)
    os.utime(d / "f2", ns=(OLD, OLD))
    cache = check(expect_hits=6, expect_read=2)
    assert cache.stats.racy == 1
    (d / "f2").write_bytes(b"\x12" * os.stat(d / "f2").st_size)
    os.utime(d / "f2", ns=(OLD, OLD))
    cache = check()
    assert cache.stats.recorded >= 1

    _settle()
    os.utime(d / "f3", ns=(OLD + 1, OLD + 1))  # touch: new mtime, same bytes
    (d / "new").write_bytes(b"added later")
    os.remove(d / "f4")
    os.rename(d / "f5", d / "sub" / "f5-renamed")
    (d / "sub" / "grown").write_bytes(b"g")
    cache = check()
    # f3 touched, new, grown, f5 renamed: misses; f1/f2 hits unless still racy from their rewrite.
    assert cache.stats.misses == 4 and cache.stats.hits + cache.stats.racy == 5, cache.stats

    # Entries recorded right after their change stay racy; after one settled re-hash they are trusted.
    _settle()
    cache = check()
    assert cache.stats.racy == 4 and cache.stats.recorded == 4, cache.stats
    cache = check()
    assert cache.stats.recorded == 0 and cache.stats.hits == 9, cache.stats


def test_all_racy_when_recorded_in_the_files_tick(tmp_path: Path) -> None:
    """A clock that reads the files' own ctime makes every entry racy: nothing is trusted."""
    d = _tree(tmp_path)
    newest = max(os.lstat(p).st_ctime_ns for p in d.rglob("*"))
    db = tmp_path / "c.db"
    with ImportCache(db, racy_window_ns=WINDOW, clock=lambda: newest) as cache:
        cold = _events(d, cache=cache)
    with ImportCache(db, racy_window_ns=WINDOW) as cache:
        assert _events(d, cache=cache) == cold
    assert cache.stats.hits == 0 and cache.stats.racy == 8


def test_params_and_sink_decide_trust(tmp_path: Path) -> None:
    d = _tree(tmp_path)
    _settle()
    db = tmp_path / "c.db"
    v1 = ImportParams(cid_version=1, chunker="size-1000")
    with ImportCache(db, racy_window_ns=WINDOW) as cache:
        _events(d, cache=cache)
    with ImportCache(db, racy_window_ns=WINDOW) as cache:
        assert _events(d, v1, cache=cache) == _events(d, v1)
    assert cache.stats.hits == 0
    assert params_key(v1) != params_key(ImportParams())
    # A block sink needs every block: cached roots are not used, blocks are all written.
    store, cold_store = MemoryBlockstore(), MemoryBlockstore()
    with ImportCache(db, racy_window_ns=WINDOW) as cache:
        got = import_paths([d], v1, store, cache=cache)
    assert cache.stats.hits == 0
    assert got == import_paths([d], v1, cold_store)
    assert set(store) == set(cold_store) and len(store) > 8


def test_prune_forgets_deleted_files(tmp_path: Path) -> None:
    d = _tree(tmp_path)
    db = tmp_path / "c.db"
    with ImportCache(db, racy_window_ns=WINDOW) as cache:
        _events(d, cache=cache)
    os.remove(d / "f0")
    with ImportCache(db, racy_window_ns=WINDOW) as cache:
        _events(d, cache=cache)
        assert cache.prune(d) == 1
        assert cache.prune() == 0


@pytest.mark.parametrize("name", ["nested/v0", "symlinks/v1", "hamt-threshold/1000/v1/estimate-1001"])
def test_kubo_dir_vectors_through_the_cache(tmp_path: Path, name: str) -> None:
    vectors = {v["name"]: v for v in load_vectors("dirs")["vectors"]}
    vector = vectors[name]
    params = ImportParams(**kubo022_param_kwargs(vector["params"], directory=True))
    (tmp_path / "in").mkdir()
    path = materialise_vector_input(vector, tmp_path / "in")
    _settle()
    for _ in range(2):
        with ImportCache(tmp_path / "c.db", racy_window_ns=WINDOW) as cache:
            got = import_paths([path], params, cache=cache, wrap=bool(vector.get("wrap")))
        assert str(got.cid) == vector["cid"]
    assert cache.stats.misses == 0 and cache.stats.racy == 0


def test_cli_cache_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _tree(tmp_path)
    assert main(["add", "-r", str(d)]) == 0
    cold = capsys.readouterr().out
    db = str(tmp_path / "cli.db")
    for _ in range(2):
        assert main(["add", "-r", "--cache", db, str(d)]) == 0
        assert capsys.readouterr().out == cold
    assert Path(db).stat().st_size > 0


@pytest.mark.parametrize("chunker", ["size-262144", "rabin-512-1024-2048", "buzhash"])
def test_each_file_is_looked_up_once(tmp_path: Path, chunker: str) -> None:
    """Regression (review): a file the scheduler had already looked up (file_roots, cache) and not
    batched (rabin/buzhash, >= 8 MiB, remote) was looked up again when its turn came, so the cache
    counted every such miss twice (6 for 3 files)."""
    src = tmp_path / "d"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}").write_bytes(os.urandom(3000 + i))
    with ImportCache(tmp_path / "c.db", racy_window_ns=WINDOW) as cache:
        import_paths([src], ImportParams(chunker=chunker), cache=cache)
        assert cache.stats.misses == 3


# -- keys: absolute paths, relative ones from the import's working directory ---------------------------

_SEGMENT = st.sampled_from(["a", "b", ".", "..", ".h", "x.y", "", "é"])


@given(st.lists(_SEGMENT, min_size=1, max_size=6), st.booleans())
def test_keys_are_os_path_abspath(segments: list[str], absolute: bool) -> None:
    """The fast key of a relative path (the import's cwd + the path) is abspath's answer for
    every shape, normal or not (``.``, ``..``, ``//``, a trailing slash, dot-names)."""
    from pyipld.unixfs.cache import _abs, keys_from_cwd

    path = os.fsencode(("/" if absolute else "") + "/".join(segments))
    with keys_from_cwd():
        assert _abs(path) == os.path.abspath(path)
    assert _abs(path) == os.path.abspath(path)  # outside an import too


def test_relative_paths_are_keyed_from_each_imports_working_directory(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for side in ("one", "two"):
        (tmp_path / side / "t").mkdir(parents=True)
        (tmp_path / side / "t" / "f").write_bytes(side.encode() * 100)
    time.sleep(0.05)
    with ImportCache(tmp_path / "c.db", racy_window_ns=10_000_000) as cache:
        monkeypatch.chdir(tmp_path / "one")
        one = import_paths(["t"], cache=cache)
        monkeypatch.chdir(tmp_path / "two")
        two = import_paths(["t"], cache=cache)  # same relative path, another file: not a hit
        assert cache.stats.hits == 0 and one.cid != two.cid
        assert two == import_paths(["t"])
        assert import_paths([tmp_path / "one" / "t"], cache=cache) == one  # the first one's key
        assert cache.stats.hits == 1
