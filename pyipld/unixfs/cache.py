"""Incremental re-import: an SQLite cache of file roots keyed by stat data ("racy git" safe).

A file whose stat data — path, device, inode, size, ``st_mtime_ns``, ``st_ctime_ns``
and mode (type and permission bits) — and import parameters match a recorded entry is
not read again: its recorded root (CID, Tsize, file bytes) is used. Rules
(shared/spec/parallel-import.md §7, after git's racy-git.adoc):

* **Racy entries are never trusted.** Every entry stores ``recorded_ns``, the wall
  clock read *before* the file was opened for hashing. An entry is trusted only when
  ``max(mtime, ctime) < recorded_ns − racy_window_ns``: a file changed after hashing
  gets a ctime (which no user can set back) at or after ``recorded_ns`` minus the
  file system clock's lag, so its stat cannot match; a file stamped within the window
  (same tick, coarse clocks, 1–2 s granularity file systems) is re-hashed. The stored
  ``recorded_ns`` never changes, so a racy entry can never become trusted (git's
  "smudging" is implicit); re-hashing records it again with a newer clock.
* **Only stable reads are recorded**: the stat before and after hashing must agree.
* Hits are used only when nothing needs the file's blocks (an only-hash import); with
  a block sink the cache is refreshed but not trusted.
* ``trust_ctime=False`` (git's ``core.trustctime``) drops ctime from the comparison
  and uses mtime alone in the racy test; ``use_dev=False`` drops ``st_dev`` (unstable
  on network file systems).

Whole directories: with the default comparison (``trust_ctime`` and ``use_dev``), a directory
finished in an only-hash import without mode/mtime parameters is also recorded as one row: a
*signature* of its listing — every entry's name and, for files and symlinks, the stat fields
above — its entries' roots, its own root, and its *slack*: the least
``recorded_ns − max(mtime, ctime)`` over its files and symlinks. A later walk lstats the
listing (in C when it can: :mod:`._cache_native`, the same bytes as :func:`pack_stats`); when the signature is byte-equal and the slack exceeds the racy window (the per-file
rule, for every entry at once), it takes the entries' roots without a lookup each, and the
directory's own root without re-encoding it when its sub-directories came out as recorded.
Any difference falls back to the per-file rules.

Limits: a clock moved backwards by more than the window, or a file server whose clock
lags the client's by more than the window, can defeat the racy rule (as for git).
Entries of deleted or renamed files stay until :meth:`ImportCache.prune` (which forgets every
entry not looked up or recorded through this object).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, NamedTuple, Protocol, Self

from ..errors import ConfigError
from . import _cache_native
from .nodes import FileLink
from .params import ImportParams

__all__ = ["DEFAULT_RACY_WINDOW_NS", "NO_SLACK", "CacheStats", "DirEntry", "DirRecord", "DirRow", "ImportCache",
           "StatLike", "dir_signature", "is_racy", "keys_from_cwd", "pack_stats", "params_key", "same_stat",
           "stat_key"]

DEFAULT_RACY_WINDOW_NS: Final = 2_000_000_000  # FAT's 2 s mtime granularity; covers coarse kernel clocks
_FORMAT: Final = 3
_COMMIT_EVERY: Final = 5000

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS params (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS files (
    pid INTEGER NOT NULL, path BLOB NOT NULL,
    dev INTEGER NOT NULL, ino INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, mode INTEGER NOT NULL,
    cid BLOB NOT NULL, tsize INTEGER NOT NULL, data_size INTEGER NOT NULL,
    recorded_ns INTEGER NOT NULL,
    PRIMARY KEY (pid, path)
) WITHOUT ROWID;
"""
_DIRS_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS dirs (
    pid INTEGER NOT NULL, path BLOB NOT NULL,
    signature BLOB NOT NULL, slack INTEGER NOT NULL,
    cid BLOB NOT NULL, tsize INTEGER NOT NULL, sharded INTEGER NOT NULL,
    entries BLOB NOT NULL,
    PRIMARY KEY (pid, path)
);
"""
"""Directory records: a rowid table, the packed entries last. A record's entries (~54 KB per 1,000)
span overflow pages; a WITHOUT ROWID table, or a column after them, makes every lookup walk those
pages (measured: 7.4 ms against 1.6 ms per 100 lookups). A re-import reads them only when it needs
an entry (:class:`DirRecord`)."""
NO_SLACK: Final = 1 << 62  # a directory without files or symlinks: nothing in it can be racy
_ENTRY: Final = struct.Struct("<BBQQ")  # kind, CID length, tsize, data size; then the CID
DirEntry = tuple[str, bytes, int, int]
"""A recorded directory entry ``(kind, cid, tsize, data size)``: kind ``f`` file, ``l`` symlink,
``d`` sub-directory (cid empty: an empty one left out)."""


class StatLike(Protocol):
    """The ``os.stat_result`` fields the cache compares."""

    @property
    def st_dev(self) -> int: ...
    @property
    def st_ino(self) -> int: ...
    @property
    def st_size(self) -> int: ...
    @property
    def st_mtime_ns(self) -> int: ...
    @property
    def st_ctime_ns(self) -> int: ...
    @property
    def st_mode(self) -> int: ...


_SIGNATURE_MAGIC: Final = b"\x00sig2"  # never a format-2 signature (marshal output) nor a sig1 (the whole listing)
_STAT: Final = struct.Struct("<IIIIQQqqq")
"""One listed entry's stat in a signature: mode, mtime and ctime nanoseconds, zero; inode, device;
size, mtime and ctime seconds (``_cache_native.c`` writes the same bytes)."""
_DIR_STAT: Final = _STAT.pack(stat.S_IFDIR, 0, 0, 0, 0, 0, 0, 0, 0)  # sub-directories: walked on their own


def pack_stats(stats: Sequence[StatLike]) -> tuple[bytes, bytes]:
    """The packed stat records of a listing and one kind byte per entry (``d`` directory, ``f``
    file, ``l`` symlink, ``o`` anything else); a directory's record is its type alone."""
    out: list[bytes] = []
    kinds = bytearray()
    for st in stats:
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            out.append(_DIR_STAT)
            kinds.append(0x64)
            continue
        msec, mns = divmod(st.st_mtime_ns, 1_000_000_000)
        csec, cns = divmod(st.st_ctime_ns, 1_000_000_000)
        out.append(_STAT.pack(mode, mns, cns, 0, st.st_ino, st.st_dev, st.st_size, msec, csec))
        kinds.append(0x66 if stat.S_ISREG(mode) else 0x6C if stat.S_ISLNK(mode) else 0x6F)
    return b"".join(out), bytes(kinds)


def dir_signature(names: Sequence[bytes], records: bytes) -> bytes:
    """The bytes a directory record is matched on: the SHA-256 of its entry names and their
    :func:`pack_stats` records (names hold no NUL, records are fixed-size: equal listings, equal
    digests). A digest, not the listing itself: a re-import reads 40 bytes per directory from
    the cache instead of ~70 KB per 1,000 entries."""
    listing = hashlib.sha256(struct.pack("<I", len(names)))
    listing.update(b"\0".join(names))
    listing.update(b"\0")
    listing.update(records)
    return _SIGNATURE_MAGIC + listing.digest()


class DirRow(NamedTuple):
    """A ``dirs`` row as stored, without its entries."""

    rowid: int
    signature: bytes
    slack: int
    cid: bytes
    tsize: int
    sharded: int


@dataclass(slots=True)
class DirRecord:
    """A recorded directory taken for a matching listing: its root, and its entries (packed, in
    listing order), read from the cache at the first :meth:`entry` — a quiet re-import of a
    directory without sub-directories never needs them."""

    cid: bytes
    tsize: int
    sharded: bool
    signature: bytes
    slack: int
    kinds: bytes
    """One byte per entry: ``d``, ``f`` or ``l``."""
    read_entries: Callable[[], bytes]
    """The packed entries as stored (:meth:`ImportCache.take_dir`)."""
    blob: bytes = b""
    offsets: list[int] | None = None

    def entry(self, i: int) -> DirEntry:
        """Entry ``i``.

        Raises:
            ConfigError: the stored entries do not decode, or their kinds are not the listing's
                (a damaged cache file).
        """
        offsets = self.offsets
        if offsets is None:
            self.blob = self.read_entries()
            kinds, offsets = _index_entries(self.blob, len(self.kinds))
            if kinds != self.kinds:
                raise ConfigError("damaged directory record in the import cache")
            self.offsets = offsets
        off = offsets[i]
        kind, n, tsize, data_size = _ENTRY.unpack_from(self.blob, off)
        start = off + _ENTRY.size
        return chr(kind), self.blob[start : start + n], tsize, data_size


def _index_entries(blob: bytes, n: int) -> tuple[bytes, list[int]]:
    """Each entry's kind and offset (:func:`_cache_native.index_entries`, or the same in Python).

    Raises:
        ConfigError: not exactly ``n`` well-formed entries (a damaged cache file).
    """
    try:
        found = _cache_native.index_entries(blob, n)
    except ValueError:
        raise ConfigError("damaged directory record in the import cache") from None
    if found is not None:
        return found
    kinds, offsets, pos, end, size = bytearray(), list[int](), 0, len(blob), _ENTRY.size
    while pos < end and len(offsets) < n:
        if pos + size > end or blob[pos] not in (0x64, 0x66, 0x6C) or pos + size + blob[pos + 1] > end:
            break
        kinds.append(blob[pos])
        offsets.append(pos)
        pos += size + blob[pos + 1]
    if pos != end or len(offsets) != n:  # an empty record must be empty too
        raise ConfigError("damaged directory record in the import cache")
    return bytes(kinds), offsets


def _pack_entries(entries: Sequence[DirEntry]) -> bytes:
    out = bytearray()
    for kind, cid, tsize, data_size in entries:
        out += _ENTRY.pack(ord(kind), len(cid), tsize, data_size)
        out += cid
    return bytes(out)


def params_key(params: ImportParams) -> str:
    """Every import parameter, canonically: any change gives another key (and a miss)."""
    return json.dumps(dataclasses.asdict(params), sort_keys=True, separators=(",", ":"))


@dataclass(slots=True)
class CacheStats:
    """Counters of one :class:`ImportCache`: trusted hits (files), misses, racy refusals, records,
    and directories taken whole from their records."""

    hits: int = 0
    misses: int = 0
    racy: int = 0
    recorded: int = 0
    dir_hits: int = 0


class ImportCache:
    """An SQLite import cache (see the module docstring for the rules).

    Args:
        path: the database file (created if missing).
        racy_window_ns: entries whose mtime/ctime lie within this of their record time
            are re-hashed (default 2 s).
        trust_ctime: compare ctime (default true).
        use_dev: compare ``st_dev`` (default true).
        clock: wall clock in ns (tests inject one).

    Raises:
        ConfigError: the file is not an import cache, or a negative window.
    """

    def __init__(self, path: str | os.PathLike[str], *, racy_window_ns: int = DEFAULT_RACY_WINDOW_NS,
                 trust_ctime: bool = True, use_dev: bool = True, clock: Callable[[], int] = time.time_ns) -> None:
        if racy_window_ns < 0:
            raise ConfigError(f"racy window must not be negative, got {racy_window_ns}")
        self.path = os.fspath(path)
        self.racy_window_ns = racy_window_ns
        self.trust_ctime = trust_ctime
        self.use_dev = use_dev
        self.clock = clock
        self.stats = CacheStats()
        self._pending = 0
        self._pids: dict[str, int] = {}
        self._seen: set[tuple[int, bytes]] = set()
        self._seen_dirs: dict[tuple[int, bytes], Sequence[bytes]] = {}  # taken whole: their listings
        self._recorded_dirs: set[tuple[int, bytes]] = set()
        self._rows: dict[int, dict[bytes, tuple[Any, ...]]] = {}  # entries per parameter set, read once
        import sqlite3  # here: start-up time of every command that can take --cache

        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('format', ?)", (str(_FORMAT),))
            elif row[0] == "2":  # same files table; directory records in the old layout are dropped
                self._db.execute("BEGIN")
                self._db.execute("DROP TABLE IF EXISTS dirs")
                self._db.execute("UPDATE meta SET value=? WHERE key='format'", (str(_FORMAT),))
                self._db.execute("COMMIT")
            elif row[0] != str(_FORMAT):
                raise ConfigError(f"{self.path}: import cache format {row[0]}, expected {_FORMAT}")
            self._db.executescript(_DIRS_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path}: not an import cache ({exc})") from exc
        self._db.execute("BEGIN")

    # -- the racy rule, pure ----------------------------------------------------------------
    def is_racy(self, st: StatLike, recorded_ns: int) -> bool:
        """Whether an entry with this stat, recorded at ``recorded_ns``, must be re-hashed."""
        return is_racy(st, recorded_ns, self.racy_window_ns, trust_ctime=self.trust_ctime)

    def _matches(self, row: tuple[int, ...], st: StatLike) -> bool:
        dev, ino, size, mtime_ns, ctime_ns, mode = row
        return (ino == st.st_ino and size == st.st_size and mtime_ns == st.st_mtime_ns and mode == st.st_mode
                and (not self.use_dev or dev == st.st_dev)
                and (not self.trust_ctime or ctime_ns == st.st_ctime_ns))

    # -- lookups and records ------------------------------------------------------------------
    def _pid(self, key: str) -> int:
        pid = self._pids.get(key)
        if pid is None:
            self._db.execute("INSERT OR IGNORE INTO params (key) VALUES (?)", (key,))
            pid = int(self._db.execute("SELECT id FROM params WHERE key=?", (key,)).fetchone()[0])
            self._pids[key] = pid
        return pid

    def lookup(self, key: str, path: bytes, st: StatLike) -> FileLink | None:
        """The recorded root of ``path`` if its entry matches ``st`` and is not racy."""
        found = self.lookup_entry(key, path, st)
        return None if found is None else found[0]

    def lookup_entry(self, key: str, path: bytes, st: StatLike) -> tuple[FileLink, int] | None:
        """:meth:`lookup`, with the entry's ``recorded_ns``."""
        pid, path = self._pid(key), _abs(path)
        self._seen.add((pid, path))
        rows = self._rows.get(pid)
        if rows is None:  # one query for all entries of these parameters: ~1 µs per lookup after it
            rows = self._rows[pid] = {
                bytes(r[0]): r[1:] for r in self._db.execute(
                    "SELECT path, dev, ino, size, mtime_ns, ctime_ns, mode, cid, tsize, data_size, recorded_ns"
                    " FROM files WHERE pid=?", (pid,))}
        row = rows.get(path)
        if row is None or not self._matches(row[:6], st):
            self.stats.misses += 1
            return None
        if self.is_racy(st, row[9]):
            self.stats.racy += 1
            return None
        self.stats.hits += 1
        return FileLink(bytes(row[6]), row[7], row[8]), row[9]

    def record(self, key: str, path: bytes, before: StatLike, after: StatLike, link: FileLink,
               recorded_ns: int) -> bool:
        """Store ``path``'s root if its stat did not change while it was hashed (returns whether stored).

        ``recorded_ns`` must be :attr:`clock` read before the file was opened.
        """
        pid, path = self._pid(key), _abs(path)
        self._seen.add((pid, path))
        rows = self._rows.get(pid)
        if rows is not None:
            rows.pop(path, None)
        if not same_stat(before, after):
            self._db.execute("DELETE FROM files WHERE pid=? AND path=?", (pid, path))
            return False
        row = (after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_mode,
               link.cid, link.tsize, link.data_size, recorded_ns)
        self._db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", (pid, path, *row))
        if rows is not None:
            rows[path] = row
        self.stats.recorded += 1
        self._tick()
        return True

    # -- whole directories ----------------------------------------------------------------------
    @property
    def dirs_usable(self) -> bool:
        """Directory records are matched on every stat field: only with the default comparison."""
        return self.trust_ctime and self.use_dev

    def dir_row(self, key: str, path: bytes) -> DirRow | None:
        """The stored record of directory ``path`` if it could be taken (None: none, records
        unusable, a racy one or one of an older signature format, which :meth:`take_dir` would
        refuse whatever the listing: the caller need not lstat it for that)."""
        if not self.dirs_usable:
            return None
        row = self._db.execute("SELECT rowid, signature, slack, cid, tsize, sharded FROM dirs"
                               " WHERE pid=? AND path=?", (self._pid(key), _abs(path))).fetchone()
        if row is None or row[2] <= self.racy_window_ns or not bytes(row[1]).startswith(_SIGNATURE_MAGIC):
            return None
        return DirRow(*row)

    def take_dir(self, key: str, path: bytes, row: DirRow, signature: bytes, names: Sequence[bytes],
                 kinds: bytes) -> DirRecord | None:
        """``row`` (from :meth:`dir_row`) if its listing (``names``, their stat data in
        ``signature``, their kinds) is the same and no entry is racy; its regular files count as
        hits (and its entries as seen, for :meth:`prune`). Its entries are read, and checked
        against ``kinds``, when one is first asked for (:meth:`DirRecord.entry`)."""
        if bytes(row.signature) != signature or row.slack <= self.racy_window_ns:
            return None
        self._seen_dirs[(self._pid(key), _abs(path))] = names
        self.stats.dir_hits += 1
        self.stats.hits += kinds.count(b"f")
        return DirRecord(bytes(row.cid), row.tsize, bool(row.sharded), signature, row.slack, kinds,
                         partial(self._dir_entries, row.rowid, signature))

    def _dir_entries(self, rowid: int, signature: bytes) -> bytes:
        """The packed entries of the record taken from row ``rowid`` (:attr:`DirRecord.read_entries`).

        Raises:
            ConfigError: the row is gone or holds another record (another process rewrote this
                cache file meanwhile).
        """
        row = self._db.execute("SELECT signature, entries FROM dirs WHERE rowid=?", (rowid,)).fetchone()
        if row is None or bytes(row[0]) != signature:
            raise ConfigError(f"{self.path}: a directory record changed during the import (another process"
                              " writing this cache?); run again")
        return bytes(row[1])

    def record_dir(self, key: str, path: bytes, entries: Sequence[DirEntry], cid: bytes, tsize: int,
                   sharded: bool, signature: bytes, slack: int) -> None:
        """Store a finished directory: its entries in listing order, its root, the signature of the
        listing they came from and its slack (see the module docstring)."""
        if not self.dirs_usable:
            return
        pid, path = self._pid(key), _abs(path)
        self._db.execute("INSERT OR REPLACE INTO dirs (pid, path, signature, slack, cid, tsize, sharded, entries)"
                         " VALUES (?,?,?,?,?,?,?,?)",
                         (pid, path, signature, min(slack, NO_SLACK), cid, tsize, int(sharded), _pack_entries(entries)))
        self._recorded_dirs.add((pid, path))
        self._tick()

    def forget_dir(self, key: str, path: bytes) -> None:
        """Drop the record of directory ``path`` (it could not be recorded whole this time)."""
        self._db.execute("DELETE FROM dirs WHERE pid=? AND path=?", (self._pid(key), _abs(path)))

    def prune(self, under: bytes | str | None = None) -> int:
        """Forget entries not looked up or recorded in this run (deleted/renamed files),
        optionally only below the directory ``under``; returns how many."""
        prefix = b"" if under is None else _abs(os.fsencode(under)).rstrip(b"/") + b"/"
        listings: dict[tuple[int, bytes], set[bytes]] = {}

        def seen(pid: int, path: bytes) -> bool:
            if (pid, path) in self._seen:
                return True
            head, name = os.path.split(path)
            names = self._seen_dirs.get((pid, head))
            if names is None:
                return False
            if (pid, head) not in listings:
                listings[(pid, head)] = set(names)
            return name in listings[(pid, head)]

        stale = [(pid, bytes(path)) for pid, path in self._db.execute("SELECT pid, path FROM files").fetchall()
                 if bytes(path).startswith(prefix) and not seen(pid, bytes(path))]
        self._db.executemany("DELETE FROM files WHERE pid=? AND path=?", stale)
        stale_dirs = [(pid, bytes(path)) for pid, path in self._db.execute("SELECT pid, path FROM dirs").fetchall()
                      if (pid, bytes(path)) not in self._seen_dirs and (pid, bytes(path)) not in self._recorded_dirs
                      and (bytes(path) + b"/").startswith(prefix)]
        self._db.executemany("DELETE FROM dirs WHERE pid=? AND path=?", stale_dirs)
        return len(stale)

    def _tick(self) -> None:
        self._pending += 1
        if self._pending >= _COMMIT_EVERY:
            self._db.execute("COMMIT")
            self._db.execute("BEGIN")
            self._pending = 0

    def close(self) -> None:
        """Commit and close (also on ``with`` exit)."""
        if self._db.in_transaction:
            self._db.execute("COMMIT")
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_racy(st: StatLike, recorded_ns: int, window_ns: int = DEFAULT_RACY_WINDOW_NS, *,
            trust_ctime: bool = True) -> bool:
    """The racy-git rule: a file stamped within ``window_ns`` of ``recorded_ns`` (the clock read
    before it was opened) could have changed without its stat showing it, so must be read again."""
    stamp = max(st.st_mtime_ns, st.st_ctime_ns) if trust_ctime else st.st_mtime_ns
    return stamp >= recorded_ns - window_ns


def stat_key(st: StatLike) -> tuple[int, int, int, int, int, int]:
    """The stat fields that identify a file's content: dev, inode, size, mtime, ctime, mode."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


def same_stat(a: StatLike, b: StatLike) -> bool:
    """Whether two stats of a file agree on every field of :func:`stat_key`."""
    return stat_key(a) == stat_key(b)


_IMPORT_CWD: ContextVar[bytes | None] = ContextVar("pyipld_import_cwd", default=None)


@contextmanager
def keys_from_cwd() -> Iterator[None]:
    """Within this block, relative paths are keyed against the working directory as it was when
    the block began: the one a walk of relative paths opens its files from. (``os.path.abspath``
    asks the kernel for it again for every file: ~2 µs each, two calls per file.)"""
    token = _IMPORT_CWD.set(os.getcwdb())
    try:
        yield
    finally:
        _IMPORT_CWD.reset(token)


def _abs(path: bytes) -> bytes:
    """The absolute, normal form of ``path``: a cache key."""
    if b"/." in path or b"//" in path or path.endswith(b"/") or not path or path.startswith(b"."):
        return os.path.abspath(path)  # needs normalising
    if path.startswith(b"/"):
        return path  # already absolute and normal (what a walk from an absolute root gives)
    cwd = _IMPORT_CWD.get()
    if cwd is None:
        return os.path.abspath(path)
    return (cwd if cwd != b"/" else b"") + b"/" + path
