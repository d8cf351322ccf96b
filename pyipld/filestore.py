"""A filestore (kubo's ``ipfs add --nocopy``): raw leaves kept as references into the files they
came from, every other block copied as usual.

A :class:`Filestore` is a :class:`~pyipld.blockstore.DirectoryBlockstore` directory plus an index,
``filestore.sqlite``, of ``multihash → (absolute path, offset, size)``, keyed by boxo's datastore
key (:func:`ds_key`; boxo ``filestore``: the ``FileManager`` beside the main blockstore). ``get`` looks in the directory first and then in the
index; a referenced block is read from its file and **hashed on every read**: a missing, shrunk or
rewritten file is a :class:`~pyipld.errors.FilestoreError` naming the CID and the path (boxo's
``CorruptReferenceError`` texts), never wrong bytes. ``has`` does not read the file (as boxo).

The importer hands a regular file's blocks to :meth:`Filestore.file_refs` in file order; each raw
leaf advances the offset by its size, so references need no help from the chunker. A file's
references are written in short SQLite transactions once its leaves are known to cover it
(a failed import of a file of up to 4,096 leaves leaves none).
:func:`open_blockstore` opens a ``--blockstore DIR`` as a filestore when it has an index.
"""

from __future__ import annotations

import enum
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from .blockstore import DirectoryBlockstore, check_block
from .chunker import BytesLike
from .cid import CID, RAW, b32decode, b32encode
from .errors import FilestoreError, IntegrityError, NotFoundError, PyipldError

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "INDEX_NAME",
    "FileRef",
    "Filestore",
    "ListResult",
    "Status",
    "ds_key",
    "open_blockstore",
]

INDEX_NAME: Final = "filestore.sqlite"
_BATCH: Final = 4096  # references buffered before an INSERT (memory stays bounded for any file)
_RAW_V1: Final = b"\x01\x55"
_FORMAT: Final = 1  # PRAGMA user_version of the index: table refs(key = ds_key(multihash), path, offset, size)


class Status(enum.IntEnum):
    """boxo ``filestore.Status``: what ``filestore verify`` prints for a reference."""

    OK = 0
    FILE_ERROR = 10
    FILE_NOT_FOUND = 11
    FILE_CHANGED = 12
    OTHER_ERROR = 20
    KEY_NOT_FOUND = 30

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS: Final = {Status.OK: "ok", Status.FILE_ERROR: "error", Status.FILE_NOT_FOUND: "no-file",
                  Status.FILE_CHANGED: "changed", Status.OTHER_ERROR: "ERROR", Status.KEY_NOT_FOUND: "missing"}


@dataclass(frozen=True, slots=True)
class FileRef:
    """Where a raw block's bytes are: ``size`` bytes at ``offset`` of the file ``path``."""

    multihash: bytes
    path: bytes
    offset: int
    size: int

    @property
    def cid(self) -> CID:
        """The block's CID as kubo lists it: CIDv1, raw codec."""
        return CID(1, RAW, self.multihash)

    @property
    def shown_path(self) -> str:
        return os.fsdecode(self.path)


@dataclass(frozen=True, slots=True)
class ListResult:
    """boxo ``filestore.ListRes``: one line of ``filestore ls`` / ``filestore verify``."""

    status: Status
    cid: CID | None
    ref: FileRef | None = None
    error: str = ""

    def format_long(self, encode: object = None) -> str:
        """boxo ``ListRes.FormatLong``: ``<cid> <size> <path> <offset>`` (``%-50s %6d %s %d``)."""
        if self.cid is None:
            return "<corrupt key>"
        if self.ref is None:
            return str(self.cid)
        text = encode(self.cid) if callable(encode) else str(self.cid)
        return f"{text:<50} {self.ref.size:6d} {self.ref.shown_path} {self.ref.offset}"


def ds_key(multihash: bytes) -> str:
    """boxo ``dshelp.MultihashToDsKey`` (without the ``/``): unpadded upper-case base32 of the
    multihash. The index's key, so listings come in the order kubo's datastore gives them."""
    return b32encode(multihash).upper()


_multihash_of = b32decode  # a ds_key back to its multihash


def _read_ref(ref: FileRef) -> bytes:
    """The referenced bytes, hash-checked (boxo ``readFileDataObj``)."""
    cid = ref.cid
    path = ref.shown_path

    def fail(status: Status, reason: str) -> FilestoreError:
        return FilestoreError(f"filestore block {cid}: {reason}", cid=str(cid), path=path, offset=ref.offset,
                              status=status, reason=reason)

    try:
        fd = os.open(ref.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as exc:
        raise fail(Status.FILE_NOT_FOUND, f"open {path}: {_strerror(exc)}") from None
    except OSError as exc:
        raise fail(Status.FILE_ERROR, f"open {path}: {_strerror(exc)}") from None
    try:
        data = b""
        while len(data) < ref.size:  # one pread (one copy) unless the kernel returns less
            try:
                more = os.pread(fd, ref.size - len(data), ref.offset + len(data))
            except OSError as exc:
                raise fail(Status.FILE_ERROR, f"read {path}: {_strerror(exc)}") from None
            if not more:  # io.ReadFull: EOF before any byte, ErrUnexpectedEOF after some
                eof = "unexpected EOF" if data else "EOF"
                raise fail(Status.FILE_CHANGED, f"{eof} ({path} is shorter than when it was added: "
                                                f"{ref.size} bytes wanted at offset {ref.offset})")
            data += more
    finally:
        os.close(fd)
    if not cid.verify(data):
        raise fail(Status.FILE_CHANGED, f"data in file did not match. {path} offset {ref.offset}")
    return data


def _strerror(exc: OSError) -> str:
    """Go's error text: lower-case ``no such file or directory``."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


class Filestore(DirectoryBlockstore):
    """A directory blockstore whose raw leaves may be references into files (``add --nocopy``).

    Blocks put with :meth:`put` are copied as in :class:`DirectoryBlockstore`; blocks put through
    :meth:`file_refs` are recorded as references when they are raw leaves. Paths are stored
    absolute (kubo stores them relative to a root above its repo and refuses files outside it).
    Safe to read from several threads and processes; writers take turns per transaction (SQLite).
    """

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        super().__init__(root, create=create)
        self.index_path = self.root / INDEX_NAME
        if not create and not self.index_path.exists():
            raise NotFoundError(f"no filestore index in {self.root} (add with --nocopy creates it)")
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    # -- the index ----------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            import sqlite3  # here: only stores with an index pay for it

            conn: sqlite3.Connection | None = None
            try:
                conn = sqlite3.connect(self.index_path, timeout=60, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL: each commit is atomic and ordered; only a power loss may drop the last
                # ones (never corrupt the index). FULL would fsync once per added file.
                conn.execute("PRAGMA synchronous=NORMAL")
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'refs'").fetchone()[0]
                if tables and version != _FORMAT:
                    raise PyipldError(f"filestore index {self.index_path} has format {version}, this pyipld "
                                      f"reads {_FORMAT}: add the files again with --nocopy into a new DIR")
                conn.execute("CREATE TABLE IF NOT EXISTS refs (key TEXT PRIMARY KEY, path BLOB NOT NULL, "
                             "offset INTEGER NOT NULL, size INTEGER NOT NULL) WITHOUT ROWID")
                conn.execute("CREATE INDEX IF NOT EXISTS refs_by_file ON refs (path, offset)")
                conn.execute(f"PRAGMA user_version = {_FORMAT}")
            except (sqlite3.Error, PyipldError) as exc:
                if conn is not None:
                    conn.close()
                if isinstance(exc, PyipldError):
                    raise
                raise PyipldError(f"filestore index {self.index_path} is unusable: {exc}") from None
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def close(self) -> None:
        """Close the index (it is reopened on the next use)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def ref(self, cid: bytes | CID) -> FileRef | None:
        """The reference for ``cid``'s multihash (any codec, as boxo keys by multihash), or None."""
        import sqlite3

        mh = (cid if isinstance(cid, CID) else CID.from_bytes(cid)).multihash
        with self._lock, _sql_errors(self.index_path, sqlite3.Error):
            row = self._db().execute("SELECT path, offset, size FROM refs WHERE key = ?", (ds_key(mh),)).fetchone()
        return None if row is None else FileRef(mh, bytes(row[0]), row[1], row[2])

    def refs(self, *, file_order: bool = False) -> Iterator[FileRef]:
        """Every reference, in kubo's datastore order (:func:`ds_key`) or (``file_order``) by path, offset
        and key, as boxo's ``ListAll``; read in pages."""
        import sqlite3

        order = "path, offset, key" if file_order else "key"
        last: tuple[object, ...] | None = None
        while True:
            with self._lock, _sql_errors(self.index_path, sqlite3.Error):
                if last is None:
                    rows = self._db().execute(f"SELECT key, path, offset, size FROM refs ORDER BY {order} LIMIT ?",
                                              (_BATCH,)).fetchall()
                elif file_order:
                    rows = self._db().execute(
                        "SELECT key, path, offset, size FROM refs WHERE (path, offset, key) > (?, ?, ?) "
                        f"ORDER BY {order} LIMIT ?", (*last, _BATCH)).fetchall()
                else:
                    rows = self._db().execute(f"SELECT key, path, offset, size FROM refs WHERE key > ? "
                                              f"ORDER BY {order} LIMIT ?", (*last, _BATCH)).fetchall()
            for key, path, offset, size in rows:
                yield FileRef(_multihash_of(key), bytes(path), offset, size)
            if len(rows) < _BATCH:
                return
            key, path, offset, _ = rows[-1]
            last = (path, offset, key) if file_order else (key,)

    # -- the blockstore -----------------------------------------------------------------
    def _is_ref_key(self, cid: bytes) -> bool:
        return cid.startswith(_RAW_V1)

    def put(self, cid: bytes, data: bytes) -> None:
        """Copy the block, unless a reference already stands for it (boxo ``Filestore.Put``)."""
        if self._is_ref_key(cid) and self.ref(cid) is not None:
            return
        super().put(cid, data)

    def get(self, cid: bytes) -> bytes:
        """The block: the stored copy, or the referenced bytes (hash-checked; FilestoreError if
        the file is gone or changed)."""
        return self._get(cid, verify=False)

    def get_verified(self, cid: bytes) -> bytes:
        """:meth:`get`, hash-checked: a copy is hashed here, a reference already is (so
        :func:`~pyipld.blockstore.get_verified` hashes each block once)."""
        return self._get(cid, verify=True)

    def _get(self, cid: bytes, *, verify: bool) -> bytes:
        """A key that may be a reference looks the reference up first (one SQLite row), so a
        referenced block costs no failed open of a copy; a copy serves when the referenced file
        changed (boxo reads the copy first: the bytes are the same, a reference is hash-checked)."""
        ref = self.ref(cid) if self._is_ref_key(cid) else None
        if ref is not None:
            try:
                return _read_ref(ref)
            except FilestoreError as unreadable:  # the file changed: a copy of the block may still be here
                try:
                    data = super().get(cid)
                except NotFoundError:
                    raise unreadable from None
        else:
            data = super().get(cid)
        return check_block(CID.from_bytes(cid), data) if verify else data

    def has(self, cid: bytes) -> bool:
        """Stored or referenced (a reference's file is not read, as in boxo)."""
        return super().has(cid) or (self._is_ref_key(cid) and self.ref(cid) is not None)

    def verify_all(self) -> Iterator[IntegrityError]:
        """Every stored copy that does not match its name, then every reference that cannot be read."""
        yield from super().verify_all()
        for ref in self.refs():
            try:
                _read_ref(ref)
            except FilestoreError as exc:
                yield exc

    # -- listing (kubo's ``filestore ls`` / ``verify``) -------------------------------------
    def check(self, cid: CID, *, verify: bool = True) -> ListResult:
        """boxo ``filestore.Verify`` (or ``List``) for one CID."""
        ref = self.ref(cid)
        key = CID(1, RAW, cid.multihash)
        if ref is None:
            return ListResult(Status.KEY_NOT_FOUND, key, error=f"ipld: could not find {key}")
        return self._result(ref, verify)

    def list(self, *, verify: bool = False, file_order: bool = False) -> Iterator[ListResult]:
        """boxo ``ListAll`` / ``VerifyAll``."""
        for ref in self.refs(file_order=file_order):
            yield self._result(ref, verify)

    def duplicates(self) -> Iterator[CID]:
        """References whose block is also stored as a copy (kubo ``filestore dups``)."""
        for ref in self.refs():
            if DirectoryBlockstore.has(self, ref.cid.bytes):
                yield ref.cid

    @staticmethod
    def _result(ref: FileRef, verify: bool) -> ListResult:
        if verify:
            try:
                _read_ref(ref)
            except FilestoreError as exc:
                return ListResult(Status(exc.status), ref.cid, ref, exc.reason)
        return ListResult(Status.OK, ref.cid, ref)

    # -- writing references -------------------------------------------------------------
    @contextmanager
    def file_refs(self, path: str | bytes | os.PathLike[str], size: int) -> Iterator[_FileRefs]:
        """A sink for the blocks of the regular file ``path`` (``size`` bytes), given in file order:
        raw leaves become references, everything else is copied. The references are written when
        the block exits without an error, and only if the leaves covered exactly ``size`` bytes;
        a file of more than 4,096 leaves is written in batches of that many (each its own short
        transaction, so no lock is held while the file is read): a failed import of such a file
        may leave references to its first blocks, each still hash-checked when read."""
        sink = _FileRefs(self, os.fsencode(os.path.abspath(os.fsdecode(path))), size)
        yield sink
        sink.finish()

    def _insert(self, rows: Sequence[tuple[str, bytes, int, int]]) -> None:
        """One transaction: insert (or replace: the newest add wins) ``rows``."""
        import sqlite3

        with self._lock, _sql_errors(self.index_path, sqlite3.Error):
            conn = self._db()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR REPLACE INTO refs (key, path, offset, size) VALUES (?, ?, ?, ?)", rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


class _FileRefs:
    """The per-file sink of :meth:`Filestore.file_refs` (offsets from the order of the raw leaves)."""

    def __init__(self, store: Filestore, path: bytes, size: int) -> None:
        self.store, self.path, self.size = store, path, size
        self.offset = 0
        self._rows: list[tuple[str, bytes, int, int]] = []

    def put(self, cid: bytes, data: bytes) -> None:
        self._block(cid, len(data), lambda: data)

    def put_parts(self, cid: bytes, parts: Sequence[BytesLike]) -> None:
        self._block(cid, sum(len(p) for p in parts), lambda: b"".join(parts))

    def when_written(self, callback: object) -> None:
        """Leaf buffers are never kept: the importer may read into them again at once."""
        if callable(callback):
            callback()

    def _block(self, cid: bytes, size: int, data: object) -> None:
        if not cid.startswith(_RAW_V1):  # a dag-pb node (or a non-raw leaf): copied
            self.store.put(cid, data())  # type: ignore[operator]
            return
        offset = self.offset
        self.offset += size
        parsed = CID.from_bytes(cid)
        if parsed.hash_code == 0:  # inlined: the CID holds the bytes
            return
        if DirectoryBlockstore.has(self.store, cid):  # a stored copy wins (boxo Put checks Has first)
            return
        self._rows.append((ds_key(parsed.multihash), self.path, offset, size))
        if len(self._rows) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self.store._insert(self._rows)
            self._rows = []

    def finish(self) -> None:
        if self.offset != self.size:
            raise PyipldError(f"filestore: the raw leaves of {os.fsdecode(self.path)} cover {self.offset} bytes, "
                              f"the file has {self.size}: its references were not written")
        self.flush()


@contextmanager
def _sql_errors(index: Path, kind: type[Exception]) -> Iterator[None]:
    """SQLite's errors as a one-line :class:`PyipldError` naming the index."""
    try:
        yield
    except kind as exc:
        raise PyipldError(f"filestore index {index}: {exc}") from None


def open_blockstore(root: str | os.PathLike[str], *, create: bool = False) -> DirectoryBlockstore:
    """A ``--blockstore DIR`` for reading: a :class:`Filestore` when ``DIR`` has a filestore index
    (``add --nocopy`` wrote to it), else a plain :class:`DirectoryBlockstore`."""
    if (Path(root) / INDEX_NAME).is_file():
        return Filestore(root, create=create)
    return DirectoryBlockstore(root, create=create)
