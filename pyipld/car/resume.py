"""A resumable CAR output: ``pyipld add -r DIR --car OUT`` continues where a killed run stopped.

The CAR is written at the fixed temporary name of :func:`~pyipld._atomic.resumable_output`
(``.OUT.<hash>.pyipld-tmp``, locked while in use); beside it, an append-only *journal*
(``.OUT.<hash>.journal.pyipld-tmp``) gets one line per completed file::

    {"format": "pyipld-add-journal/1", "key": <sha256 of the run's parameters>}\\t<crc32>
    [path, dev, ino, size, mtime_ns, ctime_ns, mode, started_ns, cid, tsize, data_size,
     start, end, blocks]\\t<crc32>

``start``/``end`` are the temporary file's offsets before and after the file's sections,
``blocks`` how many sections it wrote (its duplicates are not written). A line is made
once the file's blocks are handed to the writer and appended in batches (64 KiB or 0.2 s;
all of them when the run fails or is interrupted): a kill loses at most the last 0.2 s of
lines, and the CAR bytes they describe may still be on their way, which the next run
detects (see below). A torn or corrupted line (CRC) ends the journal.

A re-run with the same key (parameters, inputs, CAR version and placeholder header) and
the same CAR header bytes **replays** the walk against what is on disk instead of writing:

* a regular file whose journal line is next, with the same path, the same stat data
  (dev, inode, size, mtime, ctime, mode), not racy (``pyipld.unixfs.cache.is_racy``: its
  stamps are older than the clock read before it was first hashed, minus the window) and
  whose sections start exactly where replay stands, is *skipped*: its ``blocks`` sections
  are scanned (heads only) and must end exactly at ``end``, its root must be among them or
  written before, and its Tsize must agree with the root block; its CID goes to its directory;
* every other block the walk puts (directories, symlinks, the blocks of a file that changed
  or is not in the journal) must either have been written before (dedupe) or be the very next
  section on disk, with the same bytes.

At the first difference the run goes *live*: the journal is cut after the last line
replayed, the CAR after the last section replayed, and a writer continues from that state
(:class:`~pyipld.car.v1.WriterState`: the dedupe set, the CARv2 index records). Every
byte before that point is what an uninterrupted run would have written there, so the
final CAR — and the ``added`` lines — equal an uninterrupted run's. Anything that does not
check out (another key, another header, a damaged journal) starts the CAR over: a journal
can make a re-run slower, never its CAR different.

Limits: a run killed while the CAR was being finished (header patched, CARv2 index written)
starts over; the bytes below a journal line are trusted as written (true after a killed
process; after a power loss only as far as the file system kept them — the sections are
parsed again, their data is not re-hashed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import stat
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final

from .._atomic import OutputHandle, resumable_output, start_over
from .._varint import decode_varint
from ..cid import CID, DAG_PB, RAW
from ..dagpb import decode_pbnode
from ..errors import ConfigError, PyipldError, VarintError
from ..unixfs.cache import DEFAULT_RACY_WINDOW_NS, is_racy, same_stat, stat_key
from ..unixfs.nodes import FileLink
from .index import MULTIHASH_INDEX_SORTED
from .v1 import PLACEHOLDER_ROOT, CarV1Writer, CIDLike, WriterState, encode_header
from .v2 import HEADER_SIZE, PRAGMA, CarV2Writer

__all__ = ["JOURNAL_FORMAT", "JOURNAL_SUFFIX", "RACY_WINDOW_NS", "ResumableCar", "ResumeStats", "journal_path", "open_resumable_car_sink",
           "section_head"]

JOURNAL_FORMAT: Final = "pyipld-add-journal/1"
JOURNAL_SUFFIX: Final = ".journal.pyipld-tmp"
RACY_WINDOW_NS = DEFAULT_RACY_WINDOW_NS
"""Journal lines of files stamped within this of their first read are not trusted (re-read instead)."""
_TEST_HOOK: Final = "PYIPLD_TEST_ABORT_AFTER_PUTS"  # "N" (SIGKILL) or "N:int" (KeyboardInterrupt); tests only
_HEAD_READ: Final = 256  # a section's length varint and CID (digests up to ~230 bytes) in one read
_JOURNAL_BATCH_BYTES: Final = 64 << 10
_JOURNAL_BATCH_SECONDS: Final = 0.2
_JOURNAL_FLAGS: Final = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def journal_path(temp: str) -> str:
    """The journal beside a fixed temporary name (``…pyipld-tmp`` → ``…journal.pyipld-tmp``)."""
    return temp.removesuffix(".pyipld-tmp") + JOURNAL_SUFFIX


def _line(obj: Any) -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return b"%s\t%08x\n" % (body, zlib.crc32(body))


def _file_line(path: bytes, stat6: tuple[int, int, int, int, int, int], started_ns: int, link: FileLink, start: int, end: int,
               blocks: int) -> bytes:
    """``_line`` of a file's list, formatted directly (the same bytes ``json.dumps`` gives)."""
    body = b'["%s",%d,%d,%d,%d,%d,%d,%d,"%s",%d,%d,%d,%d,%d]' % (
        path.hex().encode(), *stat6, started_ns, link.cid.hex().encode(), link.tsize, link.data_size,
        start, end, blocks)
    return b"%s\t%08x\n" % (body, zlib.crc32(body))


def _parse(line: bytes) -> Any | None:
    """A journal line's JSON, or None when torn or damaged."""
    if not line.endswith(b"\n"):
        return None
    body, sep, crc = line[:-1].rpartition(b"\t")
    if not sep or crc != b"%08x" % zlib.crc32(body):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Entry:
    path: bytes
    stat: tuple[int, ...]
    started_ns: int
    link: FileLink
    start: int
    end: int
    blocks: int

    @classmethod
    def from_json(cls, doc: Any) -> _Entry | None:
        if not isinstance(doc, list) or len(doc) != 14 or not isinstance(doc[0], str) or not isinstance(doc[8], str):
            return None
        if not all(type(v) is int for v in doc[1:8] + doc[9:]):
            return None
        try:
            path, cid = bytes.fromhex(doc[0]), bytes.fromhex(doc[8])
        except ValueError:
            return None
        return cls(path, tuple(doc[1:7]), doc[7], FileLink(cid, doc[9], doc[10]), doc[11], doc[12], doc[13])


@dataclass(slots=True)
class ResumeStats:
    """What a :class:`ResumableCar` reused: files skipped, their bytes, sections replayed."""

    resumed: bool = False
    files_skipped: int = 0
    bytes_skipped: int = 0
    sections_replayed: int = 0
    started_over: str | None = None  # why a leftover could not be continued


class _NotReplayable(Exception):
    """Internal: the leftover does not continue this run."""


class ResumableCar:
    """A CAR sink over a fixed temporary file with a journal (see the module docstring).

    It is a :class:`~pyipld.blockstore.BlockSink`, a ``CarSink`` (``set_roots``) and a
    :class:`~pyipld.unixfs.tree.FileJournal` (pass it as ``journal=`` to ``import_paths``).
    Made by :func:`open_resumable_car_sink`.
    """

    def __init__(self, handle: OutputHandle, *, key: str, version: int, placeholder_roots: Sequence[CIDLike],
                 index_codec: int | None, include_identity: bool, background: bool,
                 wrap: Callable[[IO[bytes]], IO[bytes]] | None, racy_window_ns: int) -> None:
        self._handle = handle
        self._f = handle.file
        self._version = version
        self._placeholder = list(placeholder_roots)
        self._index_codec = index_codec
        self._include_identity = include_identity
        self._background = background
        self._window = racy_window_ns
        self._key = hashlib.sha256(key.encode()).hexdigest()
        self._prefix = (PRAGMA + bytes(HEADER_SIZE) if version == 2 else b"") + encode_header(self._placeholder)
        self._body_start = len(self._prefix)
        self.stats = ResumeStats()
        self.skip_files = True
        """False: journaled files are read again and compared with the CAR (another sink needs their blocks)."""
        self._writer: CarV1Writer | CarV2Writer | None = None
        self._jpath = self.journal_path = journal_path(handle.temp) if handle.fixed else ""
        # A random temporary name (another live run holds the fixed one): a plain CAR, no journal.
        self._jfd = os.open(self._jpath, _JOURNAL_FLAGS, 0o600) if handle.fixed else -1
        self._lines = 0  # file lines in the journal (kept, written or buffered)
        self._pending: list[bytes] = []  # lines not yet written (see _flush_journal)
        self._pending_bytes = 0
        self._flush_due = 0.0
        self._puts = 0
        self._abort_at, self._abort_how = _test_hook()
        # replay state
        self._size = 0  # of the leftover
        self._jreader: IO[bytes] | None = None
        self._entry: _Entry | None = None
        self._kept_end = 0  # journal bytes known good (header + replayed lines)
        self._next_end = 0  # journal offset after self._entry's line
        self._pos = 0
        self._seen: set[bytes] = set()
        self._records: list[tuple[bytes, int]] = []  # CARv2 index records (only when indexed)
        self._indexed = version == 2 and index_codec is not None
        self._blocks = 0
        self._data_bytes = 0
        self._file_start = (0, 0)  # (offset, blocks) when the current file was looked up
        try:
            if self._jfd < 0:
                raise _NotReplayable("")
            self._open_replay()
        except _NotReplayable as why:
            if self._jfd >= 0 and (os.fstat(self._f.fileno()).st_size or os.fstat(self._jfd).st_size):
                self.stats.started_over = str(why)
            self._start_fresh(wrap)

    # -- opening -------------------------------------------------------------------------------------
    def _open_replay(self) -> None:
        if not stat.S_ISREG(os.fstat(self._jfd).st_mode):
            raise _NotReplayable("the journal is not a regular file")
        self._jreader = os.fdopen(os.dup(self._jfd), "rb")
        header = _parse(self._jreader.readline())
        if not isinstance(header, dict) or header.get("format") != JOURNAL_FORMAT:
            raise _NotReplayable("no usable journal")
        if header.get("key") != self._key:
            raise _NotReplayable("the parameters or inputs changed")
        if os.pread(self._f.fileno(), len(self._prefix), 0) != self._prefix:
            raise _NotReplayable("the partial CAR's header does not match")
        self._kept_end = self._jreader.tell()
        self._size = os.fstat(self._f.fileno()).st_size
        self._pos = self._body_start
        self._advance()
        self.stats.resumed = True

    def _start_fresh(self, wrap: Callable[[IO[bytes]], IO[bytes]] | None) -> None:
        self._close_readers()
        self._f.seek(0)
        start_over(self._f.fileno())
        if self._jfd >= 0:
            os.ftruncate(self._jfd, 0)
            head = _line({"format": JOURNAL_FORMAT, "key": self._key})
            os.pwrite(self._jfd, head, 0)
            os.lseek(self._jfd, len(head), os.SEEK_SET)
        out = wrap(self._f) if wrap is not None else self._f
        self._writer = self._make(out, None)
        out.flush()  # the header on disk now: a run killed early leaves a leftover worth continuing

    def _make(self, out: IO[bytes], resume: WriterState | None) -> CarV1Writer | CarV2Writer:
        if self._version == 1:
            return CarV1Writer(out, None, placeholder_roots=self._placeholder, background=self._background,
                               resume=resume)
        return CarV2Writer(out, None, placeholder_roots=self._placeholder, index_codec=self._index_codec,
                           include_identity=self._include_identity, background=self._background, resume=resume)

    def _advance(self) -> None:
        """Read the next journal line into ``self._entry`` (None at the end or at damage)."""
        assert self._jreader is not None
        self._entry = None
        line = self._jreader.readline()
        entry = _Entry.from_json(_parse(line)) if line else None
        if entry is not None:
            self._entry = entry
            self._next_end = self._jreader.tell()

    def _close_readers(self) -> None:
        if self._jreader is not None:
            self._jreader.close()
        self._jreader = None

    def _go_live(self) -> None:
        """Stop replaying: cut the journal and the CAR where replay stands, write from there."""
        if self._writer is not None:
            return
        self._close_readers()
        os.ftruncate(self._jfd, self._kept_end)
        os.lseek(self._jfd, self._kept_end, os.SEEK_SET)
        state = WriterState(self._seen, self._records, self._pos - self._body_start, self._blocks, self._data_bytes)
        self._f.seek(0)
        self._writer = self._make(self._f, state)
        self._entry = None

    @property
    def live(self) -> bool:
        """True once blocks are being written (always, for a fresh CAR)."""
        return self._writer is not None

    # -- scanning the leftover ------------------------------------------------------------------------
    def _head(self, pos: int) -> tuple[bytes, int, int] | None:
        return section_head(self._f.fileno(), pos, self._size)

    def _read(self, offset: int, length: int) -> bytes:
        return os.pread(self._f.fileno(), length, offset)

    def _accept(self, cid: bytes, pos: int, end: int, data_length: int) -> None:
        self._seen.add(cid)
        if self._indexed:
            self._records.append((cid, pos - self._body_start))
        self._blocks += 1
        self._data_bytes += data_length
        self._pos = end

    def _replay_put(self, cid: bytes, data: bytes | bytearray | memoryview) -> bool:
        """True when the block is already in the leftover exactly where an uninterrupted run put it."""
        if cid in self._seen:
            return True
        head = self._head(self._pos)
        if head is None or head[0] != cid or head[2] != len(data) or self._read(head[1], head[2]) != data:
            return False
        self._accept(cid, self._pos, head[1] + head[2], head[2])
        self.stats.sections_replayed += 1
        return True

    def _skip_file(self, entry: _Entry) -> bool:
        """Take the sections of a journaled file as they are on disk (all or nothing)."""
        pos = entry.start
        taken: list[tuple[bytes, int, int, int]] = []
        for _ in range(entry.blocks):
            head = self._head(pos)
            if head is None:
                return False
            taken.append((head[0], pos, head[1] + head[2], head[2]))
            pos = head[1] + head[2]
        if pos != entry.end:
            return False
        root = entry.link.cid
        new = {t[0] for t in taken}
        if CID.from_bytes(root).hash_code != 0 and root not in new and root not in self._seen:
            return False
        if taken and taken[-1][0] == root and not self._tsize_ok(root, taken[-1], entry.link.tsize):
            return False
        for cid, at, end, n in taken:
            self._accept(cid, at, end, n)
        return True

    def _tsize_ok(self, root: bytes, section: tuple[bytes, int, int, int], tsize: int) -> bool:
        _, _, end, n = section
        data = self._read(end - n, n)
        codec = CID.from_bytes(root).codec
        if codec == RAW:
            return tsize == len(data)
        if codec != DAG_PB:
            return False
        try:
            return tsize == len(data) + sum(link.tsize or 0 for link in decode_pbnode(data).links)
        except PyipldError:
            return False

    # -- FileJournal ------------------------------------------------------------------------------------
    def lookup(self, path: bytes, st: os.stat_result) -> FileLink | None:
        """The root of ``path`` if the leftover holds it unchanged right here (then its reading is skipped)."""
        entry = self._entry
        if (self.skip_files and self._writer is None and entry is not None and entry.path == path and entry.start == self._pos
                and entry.stat == stat_key(st) and not is_racy(st, entry.started_ns, self._window)
                and self._skip_file(entry)):
            self._kept_end = self._next_end
            self._lines += 1
            self.stats.files_skipped += 1
            self.stats.bytes_skipped += entry.link.data_size
            self._advance()
            return entry.link
        self._file_start = (self.position, self.blocks_written)
        return None

    def record(self, path: bytes, before: os.stat_result, after: os.stat_result, link: FileLink,
               started_ns: int) -> None:
        """Journal a file whose blocks are all handed to the writer (a stable read only)."""
        if self._writer is None:
            entry = self._entry
            if (entry is not None and entry.path == path and entry.start == self._file_start[0]
                    and entry.end == self._pos and entry.link == link):
                self._kept_end = self._next_end  # re-read, same blocks, same place: keep its line
                self._lines += 1
                self._advance()
                return
            self._go_live()
        if self._jfd < 0 or not same_stat(before, after):
            return
        start, blocks = self._file_start
        self._pending.append(_file_line(path, stat_key(after), started_ns, link, start, self.position,
                                        self.blocks_written - blocks))
        self._pending_bytes += len(self._pending[-1])
        self._lines += 1
        if self._pending_bytes >= _JOURNAL_BATCH_BYTES or time.monotonic() >= self._flush_due:
            self._flush_journal()

    def _flush_journal(self) -> None:
        """Append the buffered lines (batched: one write per 64 KiB or per 0.2 s, not per file)."""
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
            while data:
                data = data[os.write(self._jfd, data):]
        self._flush_due = time.monotonic() + _JOURNAL_BATCH_SECONDS

    # -- BlockSink / CarSink ---------------------------------------------------------------------------
    def put(self, cid: bytes | CID, data: bytes) -> None:
        if isinstance(cid, CID):
            cid = cid.bytes
        if self._writer is None:
            if self._replay_put(cid, data):
                return
            self._go_live()
        assert self._writer is not None
        self._writer.put(cid, data)
        self._tick()

    def put_parts(self, cid: bytes, parts: Sequence[bytes | bytearray | memoryview]) -> None:
        if self._writer is None:
            if self._replay_put(cid, b"".join(parts)):
                return
            self._go_live()
        assert self._writer is not None
        self._writer.put_parts(cid, parts)
        self._tick()

    def when_written(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once every block put so far is written (or compared, while replaying):
        the import then reads into the buffers their pieces were views of again."""
        if self._writer is None:
            fn()  # a replayed put compares (or copies) its bytes before it returns
        else:
            self._writer.when_written(fn)

    def _tick(self) -> None:
        if self._abort_at:
            self._puts += 1
            if self._puts >= self._abort_at:
                if self._abort_how == "int":
                    raise KeyboardInterrupt
                os.kill(os.getpid(), signal.SIGKILL)

    def set_roots(self, roots: Sequence[CIDLike]) -> None:
        self._go_live()
        assert self._writer is not None
        self._writer.set_roots(roots)

    @property
    def position(self) -> int:
        """Offset in the temporary file after the last section (handed over or replayed)."""
        if self._writer is None:
            return self._pos
        return self._body_start + self._writer.body_length

    @property
    def blocks_written(self) -> int:
        return self._blocks if self._writer is None else self._writer.blocks_written

    @property
    def data_bytes_written(self) -> int:
        return self._data_bytes if self._writer is None else self._writer.data_bytes_written

    # -- ending ----------------------------------------------------------------------------------------
    def close(self) -> None:
        """Finish the CAR (header, index) and drop the journal; the caller renames the file."""
        self._go_live()
        assert self._writer is not None
        self._writer.close()
        if self._jfd >= 0:
            os.close(self._jfd)
            self._jfd = -1
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._jpath)

    def interrupted(self) -> bool:
        """The run failed: flush what was handed over, keep the journal; True if worth resuming."""
        self._close_readers()
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.flush()
            self._writer.abort()
        keep = self._lines > 0 and self._jfd >= 0
        if self._jfd >= 0:
            with contextlib.suppress(OSError):
                self._flush_journal()
            os.close(self._jfd)
            self._jfd = -1
        if not keep and self._jpath:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._jpath)
        return keep


def section_head(fd: int, pos: int, size: int) -> tuple[bytes, int, int] | None:
    """``(cid, data offset, data length)`` of the CAR section at file offset ``pos``; None at the
    end of the file or where the bytes are not a section that fits in ``size``.

    Parsed from one small ``pread`` (the length varint and the CID's varints), not through a
    reader object: replay does this once per block of every skipped file.
    """
    buf = os.pread(fd, _HEAD_READ, pos)
    try:
        n, k = decode_varint(buf)
        if buf[k] == 0x12 and buf[k + 1] == 0x20:  # CIDv0: a bare sha2-256 multihash
            cid_end = k + 34
        else:
            version, m = decode_varint(buf, k)
            i = k + m
            for _ in range(2):  # codec, multihash code
                i += decode_varint(buf, i)[1]
            digest, m = decode_varint(buf, i)
            cid_end = i + m + digest
            if version != 1:
                return None
    except (VarintError, IndexError):
        return None
    data_length = n - (cid_end - k)
    if cid_end > len(buf) or data_length < 0 or pos + cid_end + data_length > size:
        return None
    return bytes(buf[k:cid_end]), pos + cid_end, data_length


def _test_hook() -> tuple[int, str]:
    value = os.environ.get(_TEST_HOOK, "")
    if not value:
        return 0, ""
    count, _, how = value.partition(":")
    try:
        return max(int(count), 1), how
    except ValueError:
        raise ConfigError(f"{_TEST_HOOK} must be N or N:int, got {value!r}") from None


@contextlib.contextmanager
def open_resumable_car_sink(
    path: str | os.PathLike[str],
    version: int = 1,
    *,
    key: str,
    placeholder_roots: Sequence[CIDLike] | None = None,
    index_codec: int | None = MULTIHASH_INDEX_SORTED,
    include_identity: bool = False,
    background: bool = True,
    wrap: Callable[[IO[bytes]], IO[bytes]] | None = None,
    racy_window_ns: int | None = None,
) -> Iterator[ResumableCar]:
    """:func:`~pyipld.car.sink.open_car_sink` that a killed or failed run's re-run continues.

    Args:
        key: everything that decides the CAR's bytes besides the input files (import
            parameters, input paths, options); a leftover of another key is started over.
        placeholder_roots: header roots until ``set_roots`` (shaped like the real root).
        wrap: as ``open_car_sink``; applied only when the CAR is started from the beginning
            (a tap would miss the bytes already written), so check ``sink.stats.resumed``.
        racy_window_ns: see :func:`pyipld.unixfs.cache.is_racy` (default :data:`RACY_WINDOW_NS`).

    On success the CAR is renamed to ``path`` and the journal removed. On failure both
    stay (when the journal holds at least one file) for the next run; otherwise both go.
    While another live run writes the same ``path`` (it holds the fixed name), this one
    writes a plain CAR at a random temporary name, without a journal.
    """
    if version not in (1, 2):
        raise ConfigError(f"unsupported CAR version {version}; use 1 or 2")
    with resumable_output(path) as handle:
        car = ResumableCar(handle, key=key, version=version,
                           placeholder_roots=placeholder_roots or [PLACEHOLDER_ROOT], index_codec=index_codec,
                           include_identity=include_identity, background=background, wrap=wrap,
                           racy_window_ns=RACY_WINDOW_NS if racy_window_ns is None else racy_window_ns)
        try:
            yield car
            car.close()
        except BaseException:
            handle.keep_on_failure = car.interrupted()
            raise
