"""CARv2 indexes: IndexSorted (0x0400) and MultihashIndexSorted (0x0401), as go-car writes them.

Encoding (go-car v2/index; shared/spec/car.md §2.3), all integers little-endian::

    uvarint(codec)
    IndexSorted body:  int32 n_buckets, then per bucket in ascending width:
                       uint32 width (= digest length + 8), int64 byte length of entries,
                       entries sorted by digest: digest ‖ uint64 offset
    MultihashIndexSorted body: int32 n_codes, then per multihash code ascending:
                       uint64 code, IndexSorted body

Offsets point at a section's length varint, relative to the CARv1 payload start.
Only digests are indexed, so a lookup can match a block under another codec or
CID version: readers must compare the CID found at the offset (:mod:`.blockstore` does).

Lookups bisect a list of every 64th digest of a bucket, then the encoded bucket between two of
them (about 1/40 of the index in memory); nothing is expanded into a dict, and
the index is never trusted for data (an entry only says where to look).
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Final

from .._varint import decode_varint, encode_varint
from ..cid import CID
from ..errors import CarIndexError, ConfigError, DecodeError

__all__ = [
    "INDEX_CODEC_NAMES",
    "INDEX_SORTED",
    "MULTIHASH_INDEX_SORTED",
    "CarIndex",
    "IndexRecord",
    "build_index",
    "decode_index",
    "decode_legacy_index_sorted",
    "encode_index",
    "index_codec_by_name",
    "iter_index_records",
    "scan_index",
]

INDEX_SORTED: Final = 0x0400
MULTIHASH_INDEX_SORTED: Final = 0x0401
INDEX_CODEC_NAMES: Final = {INDEX_SORTED: "car-index-sorted", MULTIHASH_INDEX_SORTED: "car-multihash-index-sorted"}
_MAX_WIDTH: Final = 32 << 20  # go-car rejects wider buckets (indexsorted.go)
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_U64 = struct.Struct("<Q")
_FENCE: Final = 64  # a bucket keeps every 64th digest in a list: a lookup bisects it in C, then 64 entries


def index_codec_by_name(name: str) -> int:
    """``car-index-sorted`` / ``car-multihash-index-sorted`` (go-car CLI names) to the code."""
    for code, known in INDEX_CODEC_NAMES.items():
        if known == name:
            return code
    raise ConfigError(f"unknown index codec {name!r}; known: {', '.join(INDEX_CODEC_NAMES.values())}")


@dataclass(frozen=True, slots=True)
class IndexRecord:
    """One index entry: multihash code (``None`` in an IndexSorted), digest, payload offset."""

    code: int | None
    digest: bytes
    offset: int


class _Bucket(Sequence[bytes]):
    """Entries of one width, encoded: a sequence of digests for :mod:`bisect`."""

    __slots__ = ("_fences", "dlen", "raw", "width")

    def __init__(self, width: int, raw: bytes) -> None:
        self.width = width
        self.raw = raw
        self.dlen = width - 8
        self._fences: list[bytes] | None = None  # every _FENCE-th digest, built on the first find

    def __len__(self) -> int:
        return len(self.raw) // self.width

    def __getitem__(self, i: int) -> bytes:  # type: ignore[override]
        start = i * self.width
        return self.raw[start : start + self.dlen]

    def offset_at(self, i: int) -> int:
        start = i * self.width + self.dlen
        return int(_U64.unpack_from(self.raw, start)[0])

    def find(self, digest: bytes) -> list[int]:
        fences = self._fences
        if fences is None:
            fences = self._fences = [self[i] for i in range(0, len(self), _FENCE)]
        # fences[j - 1] < digest <= fences[j]: the first entry >= digest is in ((j-1)·F, j·F]
        j = bisect.bisect_left(fences, digest)
        count = len(self.raw) // self.width
        i = bisect.bisect_left(self, digest, max(0, (j - 1) * _FENCE), min(count, j * _FENCE))
        raw, width, dlen = self.raw, self.width, self.dlen
        out: list[int] = []
        while i < count and raw[i * width : i * width + dlen] == digest:
            out.append(int(_U64.unpack_from(raw, i * width + dlen)[0]))
            i += 1
        return out

    def is_sorted(self) -> bool:
        prev = b""
        for i in range(len(self)):
            d = self[i]
            if d < prev:
                return False
            prev = d
        return True


@dataclass(slots=True)
class CarIndex:
    """A decoded (or built) index.

    Attributes:
        codec: :data:`INDEX_SORTED` or :data:`MULTIHASH_INDEX_SORTED`.
        buckets: multihash code (``None`` for IndexSorted) → width → encoded bucket.
    """

    codec: int
    buckets: dict[int | None, dict[int, _Bucket]] = field(default_factory=dict)

    def find(self, cid: CID | bytes) -> list[int]:
        """Payload offsets of sections whose digest (and code, for 0x0401) match ``cid``."""
        parsed = CID.from_bytes(cid) if isinstance(cid, bytes) else cid
        return self.find_digest(parsed.hash_code, parsed.digest)

    def find_digest(self, hash_code: int, digest: bytes) -> list[int]:
        """:meth:`find` by a multihash's code and digest (no CID to parse)."""
        code: int | None = hash_code if self.codec == MULTIHASH_INDEX_SORTED else None
        widths = self.buckets.get(code)
        if not widths:
            return []
        bucket = widths.get(len(digest) + 8)
        return bucket.find(digest) if bucket is not None else []

    def __iter__(self) -> Iterator[IndexRecord]:
        for code in sorted(self.buckets, key=lambda c: -1 if c is None else c):
            for width in sorted(self.buckets[code]):
                bucket = self.buckets[code][width]
                for i in range(len(bucket)):
                    yield IndexRecord(code, bucket[i], bucket.offset_at(i))

    def __len__(self) -> int:
        return sum(len(b) for widths in self.buckets.values() for b in widths.values())

    def check_sorted(self) -> None:
        """Raise :class:`CarIndexError` if some bucket is not sorted by digest."""
        for code, widths in self.buckets.items():
            for width, bucket in widths.items():
                if not bucket.is_sorted():
                    raise CarIndexError(f"index bucket (code {code}, width {width}) is not sorted")

    def encode(self) -> bytes:
        return encode_index(self)


def build_index(
    records: Iterable[tuple[bytes, int]],
    codec: int = MULTIHASH_INDEX_SORTED,
    *,
    include_identity: bool = False,
) -> CarIndex:
    """Index ``(binary cid, payload offset)`` pairs the way go-car does.

    Args:
        codec: :data:`MULTIHASH_INDEX_SORTED` (go-car's default) or :data:`INDEX_SORTED`.
        include_identity: also index identity-hash CIDs. go-car's ``WrapV1`` and
            ``car index create`` leave them out; the ``car index`` command and old
            tools put them in (sample-index.carindex, kubo's ``*_v2.car``).
    """
    if codec not in INDEX_CODEC_NAMES:
        raise ConfigError(f"unknown index codec 0x{codec:x}")
    groups: dict[int | None, dict[int, list[tuple[bytes, int]]]] = {}
    for cid, offset in records:
        parsed = CID.from_bytes(cid)
        code = parsed.hash_code
        if code == 0 and not include_identity:
            continue
        digest = parsed.digest
        key: int | None = code if codec == MULTIHASH_INDEX_SORTED else None
        groups.setdefault(key, {}).setdefault(len(digest) + 8, []).append((digest, offset))
    index = CarIndex(codec)
    for key, widths in groups.items():
        index.buckets[key] = {}
        for width, entries in widths.items():
            entries.sort()
            raw = b"".join(d + _U64.pack(o) for d, o in entries)
            index.buckets[key][width] = _Bucket(width, raw)
    return index


def _encode_sorted_body(widths: dict[int, _Bucket]) -> bytes:
    parts = [_I32.pack(len(widths))]
    for width in sorted(widths):
        bucket = widths[width]
        parts.append(_U32.pack(width) + _I64.pack(len(bucket.raw)))
        parts.append(bucket.raw)
    return b"".join(parts)


def encode_index(index: CarIndex) -> bytes:
    """The index bytes go-car writes (codec varint included)."""
    if index.codec == INDEX_SORTED:
        return encode_varint(INDEX_SORTED) + _encode_sorted_body(index.buckets.get(None, {}))
    parts = [encode_varint(MULTIHASH_INDEX_SORTED), _I32.pack(len(index.buckets))]
    for code in sorted(c for c in index.buckets if c is not None):
        parts.append(_U64.pack(code))
        parts.append(_encode_sorted_body(index.buckets[code]))
    return b"".join(parts)


class _Fields:
    """Little-endian integer fields over a cursor's ``take``."""

    def take(self, n: int, what: str) -> bytes:
        raise NotImplementedError

    def i32(self, what: str) -> int:
        return int(_I32.unpack(self.take(4, what))[0])

    def u32(self, what: str) -> int:
        return int(_U32.unpack(self.take(4, what))[0])

    def i64(self, what: str) -> int:
        return int(_I64.unpack(self.take(8, what))[0])

    def u64(self, what: str) -> int:
        return int(_U64.unpack(self.take(8, what))[0])


class _Cursor(_Fields):
    def __init__(self, data: bytes, base: int) -> None:
        self.data = data
        self.pos = 0
        self.base = base

    def take(self, n: int, what: str) -> bytes:
        if n > len(self.data) - self.pos:
            raise CarIndexError(f"unexpected EOF in index {what} at offset {self.base + self.pos}",
                                offset=self.base + self.pos)
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def _decode_sorted_body(cur: _Cursor, kind: str) -> dict[int, _Bucket]:
    count = cur.i32("bucket count")
    if count < 0:
        raise CarIndexError(f"index too big; {kind} count is overflowing int32", offset=cur.base + cur.pos - 4)
    widths: dict[int, _Bucket] = {}
    for _ in range(count):
        width = cur.u32("width")
        if width < 8:
            raise CarIndexError("malformed index; width must be at least 8", offset=cur.base + cur.pos - 4)
        if width > _MAX_WIDTH:
            raise CarIndexError(f"index width {width} is larger than the maximum {_MAX_WIDTH}",
                                offset=cur.base + cur.pos - 4)
        length = cur.i64("byte length")
        if length < 0 or length % width:
            raise CarIndexError(f"malformed index; byte length {length} is not a multiple of width {width}",
                                offset=cur.base + cur.pos - 8)
        raw = cur.take(length, "entries")
        if width in widths:
            raise CarIndexError(f"malformed index; width {width} appears twice", offset=cur.base + cur.pos)
        widths[width] = _Bucket(width, raw)
    return widths


def decode_index(data: bytes | bytearray | memoryview, *, base_offset: int = 0, strict: bool = False) -> CarIndex:
    """Parse index bytes (codec varint first).

    Args:
        base_offset: file offset of ``data`` (for error positions).
        strict: also fail on unsorted buckets and trailing bytes.

    Raises:
        CarIndexError: unknown codec, negative counts, widths < 8, truncation.
    """
    raw = bytes(data)
    try:
        codec, n = decode_varint(raw)
    except DecodeError as exc:
        raise CarIndexError(f"invalid index codec varint at offset {base_offset}: {exc}",
                            offset=base_offset) from exc
    cur = _Cursor(raw, base_offset)
    cur.pos = n
    index = CarIndex(codec)
    if codec == INDEX_SORTED:
        index.buckets[None] = _decode_sorted_body(cur, "multiWidthIndex")
    elif codec == MULTIHASH_INDEX_SORTED:
        count = cur.i32("multihash bucket count")
        if count < 0:
            raise CarIndexError("index too big; MultihashIndexSorted count is overflowing int32",
                                offset=base_offset + n)
        for _ in range(count):
            code = cur.u64("multihash code")
            if code in index.buckets:
                raise CarIndexError(f"malformed index; multihash code 0x{code:x} appears twice",
                                    offset=base_offset + cur.pos)
            index.buckets[code] = _decode_sorted_body(cur, "multiWidthIndex")
    else:
        raise CarIndexError(f"unknown index codec: 0x{codec:x}", offset=base_offset)
    if strict:
        if cur.pos != len(raw):
            raise CarIndexError(f"{len(raw) - cur.pos} trailing bytes after the index", offset=base_offset + cur.pos)
        index.check_sorted()
    return index


def decode_legacy_index_sorted(data: bytes | bytearray | memoryview, *, base_offset: int = 0) -> CarIndex:
    """An IndexSorted body with no codec varint (pre-codec CARv2 such as ipld-specs carv2-basic.car)."""
    cur = _Cursor(bytes(data), base_offset)
    index = CarIndex(INDEX_SORTED)
    index.buckets[None] = _decode_sorted_body(cur, "multiWidthIndex")
    if cur.pos != len(cur.data):
        raise CarIndexError("trailing bytes after the legacy index", offset=base_offset + cur.pos)
    return index


_CHUNK: Final = 1 << 20  # entries read at a time by iter_index_records


class _StreamCursor(_Fields):
    """:class:`_Cursor`'s reads over a stream: nothing is held but the field being read."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        out = b""
        while len(out) < n:
            more = self.stream.read(n - len(out))
            if not more:
                raise CarIndexError(f"unexpected EOF in index {what} at offset {self.pos + len(out)}",
                                    offset=self.pos + len(out))
            out += more
        self.pos += n
        return out

    def codec(self) -> int:
        head = b""
        while not head or (head[-1] & 0x80 and len(head) < 10):
            head += self.take(1, "codec varint")
        try:
            return decode_varint(head)[0]
        except DecodeError as exc:
            raise CarIndexError(f"invalid index codec varint at offset 0: {exc}", offset=0) from exc


def _stream_buckets(cur: _StreamCursor) -> Iterator[tuple[int | None, int, int]]:
    """``(code, width, byte length)`` of each bucket, in file order, with :func:`decode_index`'s
    checks; the caller reads or skips the entries (``length`` bytes) before asking for the next."""
    codec = cur.codec()
    if codec == INDEX_SORTED:
        codes: Iterator[int | None] = iter([None])
    elif codec == MULTIHASH_INDEX_SORTED:
        count = cur.i32("multihash bucket count")
        if count < 0:
            raise CarIndexError("index too big; MultihashIndexSorted count is overflowing int32", offset=cur.pos - 4)
        codes = (cur.u64("multihash code") for _ in range(count))
    else:
        raise CarIndexError(f"unknown index codec: 0x{codec:x}", offset=0)
    for code in codes:
        count = cur.i32("bucket count")
        if count < 0:
            raise CarIndexError("index too big; multiWidthIndex count is overflowing int32", offset=cur.pos - 4)
        for _ in range(count):
            width = cur.u32("width")
            if width < 8:
                raise CarIndexError("malformed index; width must be at least 8", offset=cur.pos - 4)
            if width > _MAX_WIDTH:
                raise CarIndexError(f"index width {width} is larger than the maximum {_MAX_WIDTH}", offset=cur.pos - 4)
            length = cur.i64("byte length")
            if length < 0 or length % width:
                raise CarIndexError(f"malformed index; byte length {length} is not a multiple of width {width}",
                                    offset=cur.pos - 8)
            yield code, width, length


def scan_index(stream: IO[bytes], size: int) -> bool:
    """Check the structure of the ``size``-byte index file ``stream`` (from its current position),
    seeking over the entries; whether its buckets come in ascending (code, width) order, as go-car
    writes them (then :func:`iter_index_records` can list it).

    Raises:
        CarIndexError: as :func:`decode_index` (unknown codec, bad counts or widths, truncation).
    """
    cur = _StreamCursor(stream)
    last: tuple[int, int] = (-2, 0)
    ordered = True
    for code, width, length in _stream_buckets(cur):
        if cur.pos + length > size:
            raise CarIndexError(f"unexpected EOF in index entries at offset {size}", offset=size)
        stream.seek(length, 1)
        cur.pos += length
        key = (-1 if code is None else code, width)
        ordered = ordered and key > last
        last = key
    return ordered


def iter_index_records(stream: IO[bytes]) -> Iterator[IndexRecord]:
    """The records of an encoded index (codec varint first), read from ``stream`` a bounded chunk
    at a time — a detached index of any size, or an endless input, in constant memory — in
    :class:`CarIndex`'s order. The buckets must come in ascending (code, width) order, as go-car
    writes them (an index in another order: :func:`decode_index`).

    Raises:
        CarIndexError: as :func:`decode_index`, and a bucket out of order.
    """
    cur = _StreamCursor(stream)
    last: tuple[int, int] = (-2, 0)
    for code, width, length in _stream_buckets(cur):
        key = (-1 if code is None else code, width)
        if key <= last:
            raise CarIndexError(f"index buckets not in ascending order at offset {cur.pos}", offset=cur.pos)
        last = key
        dlen, step = width - 8, max(1, _CHUNK // width) * width
        while length:
            raw = cur.take(min(step, length), "entries")
            length -= len(raw)
            for i in range(0, len(raw), width):
                yield IndexRecord(code, raw[i : i + dlen], int(_U64.unpack_from(raw, i + dlen)[0]))
