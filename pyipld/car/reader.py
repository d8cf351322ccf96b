"""Open any CAR file (v1 or v2) and read its header, sections and index.

:class:`CarFile` is the version-agnostic front: it validates the CARv2 header,
confines reading to the payload (data offset … data offset + size), and parses the
index only when asked. The index is never trusted for data; :meth:`CarFile.verify_index`
checks it against a scan of the payload.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, Final, Self

from .._sha256x2 import sha256_batch
from ..cid import CID
from ..errors import CarError, CarIndexError, DecodeError, LimitExceededError
from ._scan import scan_heads
from .index import CarIndex, decode_index, decode_legacy_index_sorted
from .v1 import (
    _SLOW_HEADER_MAX_BYTES,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_SECTION_BYTES,
    CarHeader,
    CarV1Reader,
    Section,
    SectionHead,
    _first_line,
    _verify_or_raise,
    decode_header,
)
from .v2 import PRAGMA, PRAGMA_SIZE, CarV2Header, read_v2_prefix

__all__ = ["CarFile", "open_car", "sniff_version"]

_MAX_VARINT_BYTES = 9


def sniff_version(stream: IO[bytes], *, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES) -> int:
    """The ``version`` in the first header (go-car ``ReadVersion``); the stream is consumed.

    Raises:
        CarError / LimitExceededError: no readable header.
    """
    value = 0
    shift = 0
    for i in range(_MAX_VARINT_BYTES):
        b = stream.read(1)
        if not b:
            raise CarError("unexpected EOF in header length at offset 0", offset=0)
        value |= (b[0] & 0x7F) << shift
        if b[0] < 0x80:
            break
        shift += 7
    else:
        raise CarError("header length varint too long at offset 0", offset=0)
    del i
    if value > max_header_bytes:
        raise LimitExceededError(
            f"invalid header data, length of read beyond allowable maximum: header length {value} > "
            f"max_header_bytes={max_header_bytes}", offset=0)
    body = stream.read(value)
    if len(body) != value:
        raise CarError("unexpected EOF in header at offset 0", offset=0)
    import dag_cbor  # here, not at import: start-up time of the CLI

    try:
        return decode_header(body).version  # linear, and cached for small headers (the reader decodes it again)
    except CarError:
        if len(body) > _SLOW_HEADER_MAX_BYTES:
            raise
    try:  # the version of a header that is not a CARv1/v2 one, for the caller's message (go-car's)
        obj: Any = dag_cbor.decode(body)
    except Exception as exc:
        raise CarError(f"invalid header data at offset 0: {_first_line(exc)}", offset=0) from exc
    if isinstance(obj, dict) and isinstance(obj.get("version"), int) and not isinstance(obj["version"], bool):
        return int(obj["version"])
    decode_header(body)  # raises the precise error
    raise CarError("invalid CAR header format", offset=0)  # pragma: no cover


def _open_seekable(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open a CAR path for random access. A named pipe is refused at once: open() waited for a
    writer forever (``gateway --car FIFO`` hung), and the first seek failed anyway."""
    try:
        fifo = stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        fifo = False  # open() reports it
    if fifo:
        raise CarError(f"{os.fspath(path)} is a named pipe: reading this CAR needs a seekable file")
    return open(path, "rb")  # closed by CarFile.close()


class CarFile:
    """A CAR file opened for reading (random access needs a seekable file).

    Args:
        source: a path, or a seekable binary file object (not closed by us).
        max_header_bytes / max_section_bytes / zero_length_section_as_eof: reader options.

    Attributes:
        version: 1 or 2.
        header: the CARv1 header (roots) of the payload.
        v2_header: the CARv2 header, ``None`` for a CARv1.
        payload_offset / payload_length: where the CARv1 payload lies in the file.

    Raises:
        CarError: unreadable header, unknown version, inconsistent CARv2 header.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_section_bytes: int = DEFAULT_MAX_SECTION_BYTES,
        zero_length_section_as_eof: bool = False,
    ) -> None:
        if isinstance(source, (str, os.PathLike)):
            self._f: IO[bytes] = _open_seekable(source)
            self._owned = True
            self.name = os.fspath(source)
        else:
            self._f = source
            self._owned = False
            self.name = str(getattr(source, "name", "<stream>"))
        self.max_header_bytes = max_header_bytes
        self.max_section_bytes = max_section_bytes
        self.zero_length_section_as_eof = zero_length_section_as_eof
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        f = self._f
        self.file_size = f.seek(0, os.SEEK_END)
        f.seek(0)
        first = f.read(PRAGMA_SIZE)
        f.seek(0)
        self.v2_header: CarV2Header | None = None
        if first == PRAGMA:
            self.version = 2
            self.v2_header = read_v2_prefix(f, self.file_size)
            self.payload_offset = self.v2_header.data_offset
            self.payload_length: int = self.v2_header.data_size
        else:
            version = sniff_version(f, max_header_bytes=self.max_header_bytes)
            if version == 2:
                # a {version: 2} header that is not the exact pragma bytes, or a truncated one
                if len(first) < PRAGMA_SIZE:
                    raise CarError("unexpected EOF in CARv2 pragma", offset=len(first))
                raise CarError("invalid CARv2 pragma", offset=0)
            if version != 1:
                raise CarError(f"invalid car version: {version}", offset=0)
            self.version = 1
            self.payload_offset = 0
            self.payload_length = self.file_size
        f.seek(self.payload_offset)
        reader = self._reader(verify=False)
        self.header: CarHeader = reader.header
        self.header_length = reader.header_length

    # -- basics ---------------------------------------------------------------------
    @property
    def roots(self) -> tuple[CID, ...]:
        return self.header.roots

    @property
    def has_index(self) -> bool:
        return self.v2_header is not None and self.v2_header.index_offset != 0

    def _reader(self, *, verify: bool) -> CarV1Reader:
        self._f.seek(self.payload_offset)
        return CarV1Reader(
            self._f, verify=verify, max_header_bytes=self.max_header_bytes,
            max_section_bytes=self.max_section_bytes, zero_length_section_as_eof=self.zero_length_section_as_eof,
            limit=self.payload_length if self.version == 2 else None, base_offset=self.payload_offset,
        )

    def payload_reader(self, *, verify: bool = True) -> CarV1Reader:
        """A reader of the payload from its header on (hash-verified by default); it moves
        this file's position."""
        return self._reader(verify=verify)

    def iter_sections(self, *, verify: bool = True) -> Iterator[Section]:
        """Every section in payload order (hash-verified by default)."""
        return iter(self._reader(verify=verify))

    def iter_heads(self) -> Iterator[SectionHead]:
        """Every section's CID and offsets, without reading block data."""
        return (head for head, _code, _digest in self._scan_heads())

    def _regular_fd(self) -> int | None:
        try:
            fd = self._f.fileno()
            return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return None

    def _payload_end(self, fd: int) -> int:
        """The payload's length: a CARv2's data size, or a CARv1's file size now (the stream
        reader reads a CARv1 to EOF, wherever that is when it gets there)."""
        return self.payload_length if self.version == 2 else os.fstat(fd).st_size

    def _scan_heads(self) -> Iterator[tuple[SectionHead, int, bytes]]:
        """``(head, multihash code, digest)`` of every section: ``pread`` windows on a regular
        file (:mod:`pyipld.car._scan`), else the stream reader (the reference)."""
        fd = self._regular_fd()
        if fd is None:
            return ((head, *_code_digest(head.cid)) for head in self._reader(verify=False).iter_heads())
        return scan_heads(fd, self._f, payload_offset=self.payload_offset, end=self._payload_end(fd),
                          start=self.header_length, limited=self.version == 2,
                          max_section_bytes=self.max_section_bytes,
                          zero_length_section_as_eof=self.zero_length_section_as_eof)

    def verify_blocks(self, progress: Callable[[int], None] | None = None, *, jobs: int | None = None,
                      seen: Callable[[SectionHead], None] | None = None) -> int:
        """Hash-check every block; returns the number of sections.

        On a regular file this thread walks the heads (:meth:`iter_heads`, a few ``pread``
        calls) and hands spans of ~2 MiB of block data to ``jobs`` threads (default: all
        cores), each of which ``pread``s its span into its own buffer and hashes it at once;
        the first bad block in file order is reported. Never mapped: a CAR truncated meanwhile is a
        :class:`CarError`, not SIGBUS, and memory stays a few spans. Otherwise it streams
        like :meth:`iter_sections`. ``progress`` gets each section's length once its block
        checked out; ``seen`` gets every head as the walk reaches it (e.g. to look for roots
        without a second walk).

        Raises:
            IntegrityError: the first block that does not match its CID.
            CarError / LimitExceededError: a malformed (or shrinking) section.
        """
        fd = self._regular_fd()
        if fd is None:
            n = 0
            for section in self.iter_sections(verify=True):
                n += 1
                if seen is not None:
                    seen(SectionHead(section.cid, section.offset, section.length, section.data_offset,
                                     len(section.data)))
                if progress is not None:
                    progress(section.length)
            return n
        return _verify_parallel(self, fd, progress, jobs or _default_jobs(), seen)

    # -- random access ---------------------------------------------------------------------
    def read_section_at(self, offset: int, *, verify: bool = True, data: bool = True) -> Section | SectionHead:
        """The section whose length varint is at payload ``offset`` (with its data unless ``data=False``).

        Raises:
            CarIndexError: ``offset`` is not inside the sections.
            CarError / IntegrityError: the bytes there are not a valid (matching) section.
        """
        if offset < self.header_length or offset >= self.payload_length:
            raise CarIndexError(f"offset {offset} is outside the sections of the payload", offset=offset)
        self._f.seek(self.payload_offset + offset)
        reader = CarV1Reader.at_section(
            self._f, limit=self.payload_length, base_offset=self.payload_offset, offset=offset,
            verify=verify, max_section_bytes=self.max_section_bytes)
        found = reader.read_section() if data else reader.read_head()
        if found is None:
            raise CarIndexError(f"no section at payload offset {offset}", offset=offset)
        return found

    def read_data(self, data_offset: int, length: int) -> bytes:
        """Raw bytes of the payload (bounded by the payload)."""
        if data_offset < 0 or length < 0 or data_offset + length > self.payload_length:
            raise CarError(f"read [{data_offset}, {data_offset + length}) outside the payload", offset=data_offset)
        self._f.seek(self.payload_offset + data_offset)
        data = self._f.read(length)
        if len(data) != length:
            raise CarError(f"unexpected EOF reading block data at payload offset {data_offset}",
                           offset=self.payload_offset + data_offset)
        return data

    # -- index ----------------------------------------------------------------------
    def index_bytes(self) -> bytes | None:
        """The raw index section of a CARv2 (to EOF), or ``None``."""
        if self.v2_header is None or not self.v2_header.index_offset:
            return None
        self._f.seek(self.v2_header.index_offset)
        return self._f.read(self.file_size - self.v2_header.index_offset)

    def iter_index_bytes(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The raw index section of a CARv2 (to EOF) a chunk at a time; nothing when there is none."""
        if self.v2_header is None or not self.v2_header.index_offset:
            return
        at = self.v2_header.index_offset
        while at < self.file_size:
            self._f.seek(at)
            chunk = self._f.read(min(chunk_size, self.file_size - at))
            if not chunk:
                raise CarError(f"unexpected EOF in the index at offset {at}", offset=at)
            at += len(chunk)
            yield chunk

    def read_index(self, *, allow_legacy: bool = True, strict: bool = False) -> CarIndex | None:
        """Parse the CARv2 index (``None`` when there is none).

        Args:
            allow_legacy: accept an IndexSorted body without codec varint (spec §2.5).
            strict: reject unsorted buckets and trailing bytes.

        Raises:
            CarIndexError: the index cannot be parsed.
        """
        raw = self.index_bytes()
        if raw is None:
            return None
        assert self.v2_header is not None
        base = self.v2_header.index_offset
        try:
            return decode_index(raw, base_offset=base, strict=strict)
        except CarIndexError:
            if allow_legacy:
                try:
                    return decode_legacy_index_sorted(raw, base_offset=base)
                except DecodeError:
                    pass
            raise

    def verify_index(self, index: CarIndex) -> None:
        """Check ``index`` against the payload: every entry points at a section with that
        digest, and every non-identity section is in the index.

        Raises:
            CarIndexError: an entry points at the wrong place or a block is missing from it.
        """
        index.check_sorted()
        offsets: dict[int, bytes] = {}
        for head in self.iter_heads():
            offsets[head.offset] = head.cid
        listed: set[int] = set()
        for rec in index:
            cid = offsets.get(rec.offset)
            if cid is None:
                raise CarIndexError(f"index entry {rec.digest.hex()} points at payload offset {rec.offset}, "
                                    "where no section starts", offset=rec.offset)
            parsed = CID.from_bytes(cid)
            if parsed.digest != rec.digest or (rec.code is not None and rec.code != parsed.hash_code):
                raise CarIndexError(f"index entry {rec.digest.hex()} points at payload offset {rec.offset}, "
                                    f"which holds {parsed}", offset=rec.offset)
            listed.add(rec.offset)
        for off, cid in offsets.items():
            parsed = CID.from_bytes(cid)
            if parsed.hash_code == 0 and off not in listed:
                continue
            if off not in listed:
                raise CarIndexError(f"block {parsed} at payload offset {off} is not in the index", offset=off)

    # -- lifecycle ------------------------------------------------------------------
    def close(self) -> None:
        if self._owned:
            self._f.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_car(source: str | os.PathLike[str] | IO[bytes], **options: Any) -> CarFile:
    """Open a CAR file (v1 or v2); options as :class:`CarFile`."""
    return CarFile(source, **options)


VERIFY_SPAN_BYTES: Final = 2 << 20  # section data read and hashed per task (stays in a core's cache)


def _default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _code_digest(cid: bytes) -> tuple[int, bytes]:
    parsed = CID.from_bytes(cid)
    return parsed.hash_code, parsed.digest


# (start, end) of the block in the span, multihash code, digest, CID, section offset in the file
_Item = tuple[int, int, int, bytes, bytes, int]


def _verify_span(fd: int, at: int, length: int, items: list[_Item], local: threading.local) -> None:
    """Read ``length`` bytes at file offset ``at`` into this thread's buffer and check each block:
    the copy lands in this core's cache just before it is hashed (sha2-256 two blocks at a time,
    :func:`~pyipld._sha256x2.sha256_batch`, with the GIL released; other functions via the registry)."""
    buf: bytearray | None = getattr(local, "buf", None)
    if buf is None or len(buf) < length:
        buf = local.buf = bytearray(max(length, VERIFY_SPAN_BYTES))
    view = memoryview(buf)[:length]
    got = 0
    while got < length:
        n = os.preadv(fd, [view[got:]], at + got)
        if n == 0:
            raise CarError(f"unexpected EOF in section data at offset {at + got} (the file shrank)",
                           offset=at + got)
        got += n
    if all(item[2] == 0x12 for item in items):  # the usual CAR: sha2-256 only, hashed two blocks at a time
        digests = sha256_batch([(view[start:end],) for start, end, *_ in items])
    else:
        digests = [hashlib.sha256(view[start:end]).digest() if code == 0x12 else b"" for start, end, code, *_ in items]
    for (start, end, code, digest, cid, offset), actual in zip(items, digests, strict=True):
        if code != 0x12 or actual != digest:
            _verify_or_raise(cid, code, digest, view[start:end], offset)


def _verify_parallel(car: CarFile, fd: int, progress: Callable[[int], None] | None, jobs: int,
                     seen: Callable[[SectionHead], None] | None = None) -> int:
    """Walk the heads on this thread (:mod:`pyipld.car._scan`) and hand spans of their blocks to
    the pool, where each task reads its span and hashes it. A malformed section further on is
    raised after the spans before it (a bad block there is reported first, as in file order)."""
    base = car.payload_offset
    local = threading.local()
    window: deque[tuple[Future[None], list[int]]] = deque()
    count = 0

    def drain() -> None:
        nonlocal count
        future, lengths = window.popleft()
        future.result()  # the first failure in file order
        count += len(lengths)
        if progress is not None:
            for length in lengths:
                progress(length)

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pyipld-verify") as pool:
        items: list[_Item] = []
        lengths: list[int] = []
        lo = 0

        def submit() -> None:
            nonlocal items, lengths
            window.append((pool.submit(_verify_span, fd, base + lo, items[-1][1], items, local), lengths))
            items, lengths = [], []

        try:
            try:
                for head, code, digest in car._scan_heads():
                    if seen is not None:
                        seen(head)
                    if not items:
                        lo = head.data_offset
                    start = head.data_offset - lo
                    items.append((start, start + head.data_length, code, digest, head.cid, base + head.offset))
                    lengths.append(head.length)
                    if start + head.data_length >= VERIFY_SPAN_BYTES:
                        submit()
                        if len(window) >= 2 * jobs:
                            drain()
            except (CarError, LimitExceededError, DecodeError):
                if items:
                    submit()
                while window:
                    drain()
                raise
            if items:
                submit()
            while window:
                drain()
        finally:
            for future, _ in window:
                future.cancel()
    return count
