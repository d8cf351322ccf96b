"""Whole-directory records of the import cache (pyipld/unixfs/tree/dircache.py): an unchanged
directory is taken from one row, and a cached run always equals a cold import."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipld.blockstore import MemoryBlockstore
from pyipld.errors import ConfigError
from pyipld.unixfs.cache import ImportCache
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.tree import AddedEntry, import_paths

WINDOW = 50_000_000  # 50 ms racy window (the default is 2 s)


def _events(path: Path, params: ImportParams | None = None, **kw: Any) -> tuple[str, list[tuple[bytes, str, int, str]]]:
    out: list[AddedEntry] = []
    root = import_paths([path], params, on_added=out.append, jobs=kw.pop("jobs", 1), **kw)
    return str(root.cid), [(e.path, str(e.cid), e.size, e.kind) for e in out]


def _settle() -> None:
    time.sleep(2 * WINDOW / 1e9)


def _tree(root: Path) -> Path:
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "empty").mkdir()
    for i in range(5):
        (root / "a" / f"f{i}").write_bytes(bytes([i]) * (100 + 300 * i))
        (root / "a" / "b" / f"g{i}").write_bytes(os.urandom(50 + i))
    (root / "top").write_bytes(b"top")
    os.symlink("f0", root / "a" / "link")
    return root


def _cached(root: Path, db: Path, params: ImportParams | None = None, **kw: Any
            ) -> tuple[tuple[str, list[tuple[bytes, str, int, str]]], ImportCache]:
    with ImportCache(db, racy_window_ns=WINDOW) as cache:
        return _events(root, params, cache=cache, **kw), cache


def test_unchanged_directories_are_taken_whole(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    _settle()
    cold = _events(root)
    first, cache = _cached(root, tmp_path / "c.db")
    assert first == cold and cache.stats.dir_hits == 0
    _settle()
    again, cache = _cached(root, tmp_path / "c.db")
    assert again == cold
    assert cache.stats.dir_hits == 4  # t, a, a/b, a/empty
    assert cache.stats.hits == 11 and cache.stats.misses == 0 and cache.stats.recorded == 0


def test_a_change_below_rebuilds_the_parents(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    _settle()
    _cached(root, tmp_path / "c.db")
    (root / "a" / "b" / "g2").write_bytes(b"changed")
    _settle()
    got, cache = _cached(root, tmp_path / "c.db")
    assert got == _events(root)
    assert cache.stats.dir_hits == 3  # t and a taken from their records, re-encoded; b re-done
    got, cache = _cached(root, tmp_path / "c.db")  # the rebuilt records are right too
    assert got == _events(root) and cache.stats.dir_hits == 4


@pytest.mark.parametrize("change", ["add", "delete", "rename", "touch", "mkdir", "rmdir", "symlink", "hide"])
def test_listing_changes(tmp_path: Path, change: str) -> None:
    root = _tree(tmp_path / "t")
    _settle()
    _cached(root, tmp_path / "c.db")
    a = root / "a"
    if change == "add":
        (a / "f9").write_bytes(b"new")
    elif change == "delete":
        (a / "f1").unlink()
    elif change == "rename":
        (a / "f1").rename(a / "f1x")
    elif change == "touch":
        os.utime(a / "f2", ns=(1, 1))
    elif change == "mkdir":
        (a / "new").mkdir()
    elif change == "rmdir":
        shutil.rmtree(a / "b")
    elif change == "symlink":
        (a / "link").unlink()
        os.symlink("f1", a / "link")
    else:
        (a / "f3").rename(a / ".f3")
    _settle()
    got, cache = _cached(root, tmp_path / "c.db")
    assert got == _events(root)
    assert cache.stats.dir_hits >= 1  # the directories that did not change
    assert _cached(root, tmp_path / "c.db")[0] == got


def test_racy_directories_are_not_taken(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    with ImportCache(tmp_path / "c.db", racy_window_ns=10**12) as cache:  # everything is racy
        _events(root, cache=cache)
    with ImportCache(tmp_path / "c.db", racy_window_ns=10**12) as cache:
        assert _events(root, cache=cache) == _events(root)
        assert cache.stats.dir_hits == 1  # only a/empty: nothing in it can be racy


def test_not_with_a_sink_or_metadata(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    _settle()
    _cached(root, tmp_path / "c.db")
    _settle()
    store = MemoryBlockstore()
    _, cache = _cached(root, tmp_path / "c.db", sink=store)
    assert cache.stats.dir_hits == 0 and len(store) > 10
    params = ImportParams(preserve_mtime=True)
    got, cache = _cached(root, tmp_path / "c.db", params)
    assert cache.stats.dir_hits == 0 and got == _events(root, params)


def test_damaged_record_is_a_config_error(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    _settle()
    _cached(root, tmp_path / "c.db")
    with sqlite3.connect(tmp_path / "c.db") as db:
        db.execute("UPDATE dirs SET entries = x'6602'")
    with pytest.raises(ConfigError, match="damaged"):
        _cached(root, tmp_path / "c.db")


def test_prune_keeps_the_files_of_directories_taken_whole(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    _settle()
    _cached(root, tmp_path / "c.db")
    (root / "a" / "f4").unlink()
    _settle()
    with ImportCache(tmp_path / "c.db", racy_window_ns=WINDOW) as cache:
        _events(root, cache=cache)
        assert cache.stats.dir_hits >= 2
        assert cache.prune() == 1  # only the deleted file
    got, cache = _cached(root, tmp_path / "c.db")
    assert got == _events(root) and cache.stats.misses == 0


def _mutate(root: Path, rnd: random.Random) -> None:
    dirs = [p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()] + [root]
    files = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    op = rnd.choice(["write", "add", "delete", "rename", "touch", "mkdir", "rmdir", "resize", "none"])
    if op in ("write", "resize", "touch", "delete", "rename") and files:
        f = rnd.choice(files)
        if op == "write":  # same size, same mtime: only ctime tells
            st = f.stat()
            f.write_bytes(os.urandom(st.st_size))
            os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
        elif op == "resize":
            f.write_bytes(os.urandom(rnd.randint(0, 3000)))
        elif op == "touch":
            os.utime(f, ns=(rnd.randint(1, 10**18), rnd.randint(1, 10**18)))
        elif op == "delete":
            f.unlink()
        else:
            f.rename(rnd.choice(dirs) / f"r{rnd.randint(0, 10**6)}")
    elif op == "add":
        (rnd.choice(dirs) / f"n{rnd.randint(0, 10**6)}").write_bytes(os.urandom(rnd.randint(0, 2000)))
    elif op == "mkdir":
        (rnd.choice(dirs) / f"m{rnd.randint(0, 10**6)}").mkdir(exist_ok=True)
    elif op == "rmdir":
        sub = [d for d in dirs if d != root]
        if sub:
            shutil.rmtree(rnd.choice(sub), ignore_errors=True)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 4), empty_dirs=st.booleans(),
       jobs=st.sampled_from([1, 2]))
def test_cached_runs_always_equal_cold_runs(seed: int, steps: int, empty_dirs: bool, jobs: int) -> None:
    rnd = random.Random(seed)
    params = ImportParams(empty_dirs=empty_dirs)
    with tempfile.TemporaryDirectory() as tmp:
        root = _tree(Path(tmp) / "t")
        db = Path(tmp) / "c.db"
        for _ in range(steps):
            _settle()
            got, _ = _cached(root, db, params, jobs=jobs)
            assert got == _events(root, params)
            for _ in range(rnd.randint(1, 3)):
                _mutate(root, rnd)
        got, _ = _cached(root, db, params, jobs=jobs)
        assert got == _events(root, params)


def test_sharded_directories_from_the_cache_equal_a_cold_import(tmp_path: Path) -> None:
    """Review gap: a HAMT-sharded directory taken whole from its record, and one rebuilt after a
    change below, give the cold import's CIDs (whose HAMT layout is kubo-checked in test_tree/interop)."""
    params = ImportParams(hamt_threshold=64)  # tiny: every directory here shards
    root = _tree(tmp_path / "t")
    for i in range(40):
        (root / "a" / f"h{i:02d}").write_bytes(b"h" * i)
    _settle()
    cold = _events(root, params)
    first, _ = _cached(root, tmp_path / "c.db", params)
    assert first == cold
    _settle()
    again, cache = _cached(root, tmp_path / "c.db", params)
    assert again == cold and cache.stats.dir_hits == 4
    (root / "a" / "h07").write_bytes(b"changed")
    _settle()
    got, cache = _cached(root, tmp_path / "c.db", params)
    assert got == _events(root, params) and got[0] != cold[0]


# -- entries read only when needed; the format-2 layout migrated -------------------------------------

def _quiet(root: Path, db: Path) -> tuple[str, list[bytes]]:
    """A cached import that reports nothing, and the directories whose entries it read."""
    read: list[bytes] = []
    with ImportCache(db, racy_window_ns=WINDOW) as cache:
        real = cache._dir_entries

        def counted(rowid: int, signature: bytes) -> bytes:
            read.append(cache._db.execute("SELECT path FROM dirs WHERE rowid=?", (rowid,)).fetchone()[0])
            return real(rowid, signature)

        cache._dir_entries = counted  # type: ignore[method-assign]
        cid = str(import_paths([root], cache=cache, jobs=1).cid)
        assert cache.stats.dir_hits == 4
    return cid, read


def test_a_quiet_reimport_reads_entries_only_of_directories_with_sub_directories(tmp_path: Path) -> None:
    """The entries (~54 KB per 1,000) are needed to compare sub-directory links, or to report
    files; a quiet re-import of a directory without sub-directories takes only its root."""
    root = _tree(tmp_path / "t")
    _settle()
    cold = _events(root)
    _cached(root, tmp_path / "c.db")
    _settle()
    cid, read = _quiet(root, tmp_path / "c.db")
    assert cid == cold[0]
    assert sorted(read) == sorted(os.fsencode(p) for p in (root, root / "a"))  # not a/b, a/empty
    got, cache = _cached(root, tmp_path / "c.db")  # reporting every file reads them all
    assert got == cold and cache.stats.dir_hits == 4


def test_damaged_entries_of_a_leaf_directory_are_found_when_read(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    _settle()
    cold = _events(root)
    _cached(root, tmp_path / "c.db")
    _settle()
    with sqlite3.connect(tmp_path / "c.db") as db:
        db.execute("UPDATE dirs SET entries = x'6602' WHERE path=?", (os.fsencode(root / "a" / "b"),))
    assert _quiet(root, tmp_path / "c.db")[0] == cold[0]  # not read: its root column is intact
    with pytest.raises(ConfigError, match="damaged"):
        _cached(root, tmp_path / "c.db")  # reporting its files reads them


def test_a_record_rewritten_meanwhile_is_a_config_error(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    _settle()
    _cached(root, tmp_path / "c.db")
    _settle()
    with ImportCache(tmp_path / "c.db", racy_window_ns=WINDOW) as cache:
        import_paths([root], cache=cache, jobs=1)
        (rowid, signature), = cache._db.execute("SELECT rowid, signature FROM dirs WHERE path=?",
                                                (os.fsencode(root / "a"),)).fetchall()
        assert cache._dir_entries(rowid, bytes(signature))
        cache._db.execute("UPDATE dirs SET signature = x'00' WHERE rowid=?", (rowid,))
        with pytest.raises(ConfigError, match="changed during the import"):
            cache._dir_entries(rowid, bytes(signature))


_FORMAT2_DIRS = """
CREATE TABLE dirs (
    pid INTEGER NOT NULL, path BLOB NOT NULL,
    signature BLOB NOT NULL, entries BLOB NOT NULL, slack INTEGER NOT NULL,
    cid BLOB NOT NULL, tsize INTEGER NOT NULL, sharded INTEGER NOT NULL,
    PRIMARY KEY (pid, path)
) WITHOUT ROWID;
"""


def test_a_format_2_cache_keeps_its_file_records_and_remakes_its_directory_records(tmp_path: Path) -> None:
    """Format 2 (before stop 21) had the dirs table WITHOUT ROWID, entries before the root: it is
    dropped on open, the file records stay hits, and the directories are recorded again."""
    root = _tree(tmp_path / "t")
    _settle()
    cold = _events(root)
    db_path = tmp_path / "c.db"
    _cached(root, db_path)
    with sqlite3.connect(db_path) as db:  # make it a format-2 file: the old dirs layout, format 2
        db.execute("DROP TABLE dirs")
        db.executescript(_FORMAT2_DIRS)
        db.execute("INSERT INTO dirs VALUES (1, x'2f', x'00', x'', 0, x'01', 0, 0)")
        db.execute("UPDATE meta SET value='2' WHERE key='format'")
    _settle()
    got, cache = _cached(root, db_path)
    assert got == cold and cache.stats.dir_hits == 0 and cache.stats.hits == 11  # every file (5 + 5 + top)
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='format'").fetchone() == ("3",)
        assert db.execute("SELECT count(*) FROM dirs WHERE path=x'2f'").fetchone() == (0,)
        columns = [r[1] for r in db.execute("PRAGMA table_info(dirs)")]
        assert columns[-1] == "entries"
    _settle()
    got, cache = _cached(root, db_path)
    assert got == cold and cache.stats.dir_hits == 4
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE meta SET value='7' WHERE key='format'")
    with pytest.raises(ConfigError, match="format 7"):
        ImportCache(db_path)
