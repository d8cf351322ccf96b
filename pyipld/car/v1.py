"""CARv1: the header codec, a streaming reader (pull and push forms) and a streaming writer.

Layout (ipld specs/transport/car/carv1; shared/spec/car.md §1)::

    uvarint(len(H)) | H                  H = DAG-CBOR {"roots": [CID...], "version": 1}
    uvarint(len(C)+len(D)) | C | D       one section per block, until EOF

Reading never allocates from an untrusted length: every length prefix is checked
against ``max_header_bytes`` (32 MiB) / ``max_section_bytes`` (8 MiB) — go-car v2's
defaults — before anything is read, and blocks are hash-verified by default.

Writing streams: sections go out as ``put`` is called. When the roots are only
known at the end, a seekable output gets a placeholder header that is patched
on ``close`` (go-car ``ReplaceRootsInFile`` rule: same length, else the body is
shifted); a pipe is spooled to a ``SpooledTemporaryFile`` and copied out on close.
"""

from __future__ import annotations

import functools
import io
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final, Self

from .._io import read_exact
from .._varint import decode_varint, encode_varint
from ..block import Block
from ..cid import CID
from ..errors import (
    CarError,
    ConfigError,
    DecodeError,
    IntegrityError,
    LimitExceededError,
)
from ..multihash import IDENTITY, hash_by_code
from ._bgwrite import BackgroundWriter

__all__ = [
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_SECTION_BYTES",
    "PLACEHOLDER_ROOT",
    "CIDLike",
    "CarEnded",
    "CarHeader",
    "CarV1Decoder",
    "CarV1Reader",
    "CarV1Writer",
    "HeaderRead",
    "Section",
    "SectionHead",
    "WriterState",
    "decode_header",
    "encode_header",
    "iter_blocks",
    "read_header",
    "verify_section",
]

# go-car v2 defaults (v2/options.go): MaxAllowedHeaderSize 32 MiB, MaxAllowedSectionSize 8 MiB.
DEFAULT_MAX_HEADER_BYTES: Final = 32 << 20
DEFAULT_MAX_SECTION_BYTES: Final = 8 << 20
# A CIDv1 dag-pb sha2-256 of 32 zero bytes: the length of most roots pyipld writes,
# so patching the real root in place usually needs no shift (go-car `car create`).
PLACEHOLDER_ROOT: Final = CID(1, 0x70, b"\x12\x20" + bytes(32))
_MAX_VARINT_BYTES: Final = 9
_SPOOL_MAX_BYTES: Final = 64 << 20
_COPY_BYTES: Final = 1 << 20
_SKIP_BY_READING_BYTES: Final = 16 << 10  # below this, reading beats a seek (which drops the buffer)

CIDLike = CID | str | bytes


@dataclass(slots=True)
class WriterState:
    """Where a writer continues a partly written CAR (``pyipld add --car`` resumed).

    Attributes:
        seen: CIDs of the sections already written (the dedupe set).
        records: ``(cid, offset from the first section)`` of each (CARv2 index); may be empty.
        body: bytes of sections already written.
        blocks / data_bytes: counts of those sections and their block bytes.
    """

    seen: set[bytes]
    records: list[tuple[bytes, int]]
    body: int
    blocks: int
    data_bytes: int


@dataclass(frozen=True, slots=True)
class CarHeader:
    """A decoded CAR header. ``version`` 2 means the bytes were the CARv2 pragma."""

    version: int
    roots: tuple[CID, ...] = ()


@dataclass(frozen=True, slots=True)
class SectionHead:
    """Where a section is, without its data.

    Attributes:
        cid: binary CID.
        offset: offset of the section's length varint from the start of the CARv1 payload.
        length: the varint's value (CID bytes + block bytes).
        data_offset: offset of the block bytes from the start of the payload.
        data_length: number of block bytes.
    """

    cid: bytes
    offset: int
    length: int
    data_offset: int
    data_length: int


@dataclass(frozen=True, slots=True)
class Section:
    """One block read from a CAR, with its position (offsets as in :class:`SectionHead`)."""

    cid: bytes
    data: bytes
    offset: int
    length: int
    data_offset: int

    @property
    def cid_obj(self) -> CID:
        return CID.from_bytes(self.cid)

    @property
    def block(self) -> Block:
        return Block(self.cid, self.data)


@dataclass(frozen=True, slots=True)
class HeaderRead:
    """Event: the header was parsed (``header_length`` counts its varint too)."""

    header: CarHeader
    header_length: int


@dataclass(frozen=True, slots=True)
class CarEnded:
    """Event: the stream ended cleanly after ``length`` bytes."""

    length: int


# -- header ----------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    """Third-party messages can span lines; errors here are one line."""
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    if not lines or not lines[0]:
        return type(exc).__name__
    causes = [line.lstrip("\\ ").strip() for line in lines if line.startswith("\\")]  # dag_cbor nests causes
    return f"{lines[0]} {causes[-1]}" if causes else lines[0]


def _as_cid(value: CIDLike) -> CID:
    return CID.parse(value)


def _cbor_head_bytes(major: int, arg: int) -> bytes:
    """The shortest CBOR head for ``(major, arg)`` (dag-cbor requires the shortest)."""
    if arg < 24:
        return bytes([major << 5 | arg])
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if arg < 1 << (8 * width):
            return bytes([major << 5 | info]) + arg.to_bytes(width, "big")
    raise ValueError(f"CBOR argument {arg} too large")


# The fixed parts of a CARv1 header in canonical dag-cbor: a 2-entry map, "roots" before "version".
_HDR_MAP_ROOTS: Final = b"\xa2\x65roots"
_HDR_VERSION_1: Final = b"\x67version\x01"
_TAG_42: Final = b"\xd8\x2a"


def encode_header(roots: Sequence[CIDLike]) -> bytes:
    """The complete CARv1 header: ``uvarint(len) ‖ dag-cbor {roots, version: 1}``.

    Byte-identical to go-car and kubo (canonical key order: ``roots`` before ``version``).
    Written directly (linear in the number of roots): each root is tag 42 over a byte
    string of ``0x00 ‖ binary CID``.
    """
    parts = [_HDR_MAP_ROOTS, _cbor_head_bytes(4, len(roots))]
    for root in roots:
        raw = _as_cid(root).bytes
        parts += (_TAG_42, _cbor_head_bytes(2, len(raw) + 1), b"\x00", raw)
    parts.append(_HDR_VERSION_1)
    body = b"".join(parts)
    return encode_varint(len(body)) + body


def decode_header(body: bytes | bytearray | memoryview, *, offset: int = 0) -> CarHeader:
    """Decode a header body (without its length varint); strict like js-car.

    Raises:
        CarError: not a map of exactly ``roots`` and ``version``; a version other
            than 1 (or the CARv2 pragma's lone ``{"version": 2}``); roots not CIDs.
    """
    raw = bytes(body)
    if len(raw) <= _HEADER_CACHE_MAX_BYTES:
        return _decode_header_cached(raw, offset)  # the same header is decoded by each reader
    return _decode_header(raw, offset)


_HEADER_CACHE_MAX_BYTES: Final = 4096


@functools.lru_cache(maxsize=32)
def _decode_header_cached(body: bytes, offset: int) -> CarHeader:
    return _decode_header(body, offset)


_SLOW_HEADER_MAX_BYTES: Final = 64 << 10  # headers not in canonical form are checked by dag_cbor up to this size


def _read_head(body: bytes, i: int) -> tuple[int, int, int]:
    """``(major, argument, next offset)`` of a shortest-form CBOR head (ValueError otherwise)."""
    ib = body[i]
    major, info = ib >> 5, ib & 0x1F
    if info < 24:
        return major, info, i + 1
    if info > 27:
        raise ValueError("not a definite-length head")
    width = 1 << (info - 24)
    if i + 1 + width > len(body):
        raise ValueError("truncated")
    arg = int.from_bytes(body[i + 1 : i + 1 + width], "big")
    if arg < (24 if width == 1 else 1 << (4 * width)):
        raise ValueError("not the shortest head")
    return major, arg, i + 1 + width


def _decode_canonical_header(body: bytes) -> CarHeader:
    """The common case in one linear pass: exactly ``{"roots": [CID…], "version": 1}``, canonical.

    Raises:
        ValueError / IndexError / DecodeError: anything else (the caller decides what to report).
    """
    if not body.startswith(_HDR_MAP_ROOTS) or not body.endswith(_HDR_VERSION_1):
        raise ValueError("not the canonical two-key header")
    end = len(body) - len(_HDR_VERSION_1)
    major, count, i = _read_head(body, len(_HDR_MAP_ROOTS))
    if major != 4 or count > end - i:
        raise ValueError("roots is not a list")
    roots = []
    for _ in range(count):
        if body[i : i + 2] != _TAG_42:
            raise ValueError("a root is not a CID (tag 42)")
        major, length, i = _read_head(body, i + 2)
        if major != 2 or length < 2 or i + length > end or body[i] != 0:
            raise ValueError("a root is not a CID byte string")
        roots.append(CID.from_bytes(body[i + 1 : i + length]))
        i += length
    if i != end:
        raise ValueError("bytes between the roots and the version")
    return CarHeader(1, tuple(roots))


def _decode_header(body: bytes, offset: int) -> CarHeader:
    import dag_cbor
    import multiformats

    try:
        return _decode_canonical_header(body)
    except (ValueError, IndexError):  # DecodeError is a ValueError
        if len(body) > _SLOW_HEADER_MAX_BYTES:
            # dag_cbor + multiformats validate every CID slowly (~0.5 ms each): a large header
            # must be canonical, as every writer (go-car, kubo, js-car, pyipld) makes it
            raise CarError(f"invalid header data at offset {offset}: a {len(body)}-byte header that is not "
                           "canonical {roots, version: 1} dag-cbor", offset=offset) from None
    try:
        obj: Any = dag_cbor.decode(body)
    except Exception as exc:  # dag_cbor raises its own error types and a few built-ins
        raise CarError(f"invalid header data at offset {offset}: {_first_line(exc)}", offset=offset) from exc
    if not isinstance(obj, dict):
        raise CarError(f"invalid CAR header format at offset {offset}: not a map", offset=offset)
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CarError(f"invalid CAR header format at offset {offset}: version is not an integer", offset=offset)
    if version == 2 and set(obj) == {"version"}:
        return CarHeader(2)
    if version != 1:
        raise CarError(f"invalid car version: {version}", offset=offset)
    if set(obj) != {"roots", "version"}:
        raise CarError(
            f"invalid CAR header format at offset {offset}: keys {sorted(obj)} (want roots, version)",
            offset=offset,
        )
    roots = obj["roots"]
    if not isinstance(roots, list) or not all(isinstance(r, multiformats.CID) for r in roots):
        raise CarError(f"invalid CAR header format at offset {offset}: roots is not a list of CIDs", offset=offset)
    try:
        return CarHeader(1, tuple(CID.from_bytes(bytes(r)) for r in roots))
    except DecodeError as exc:
        raise CarError(f"invalid root CID in header at offset {offset}: {exc}", offset=offset) from exc


# -- pull reader -------------------------------------------------------------------------------


def _verify_or_raise(cid: bytes, code: int, digest: bytes, data: bytes | memoryview, offset: int) -> None:
    fn = hash_by_code(code)
    if fn is IDENTITY:
        ok = data == digest
        actual = b""
        if cid[0] == 1:
            _, codec_len = decode_varint(cid, 1)
            actual = cid[: 1 + codec_len] + b"\x00" + encode_varint(len(data)) + bytes(data)
    else:
        got = fn.digest(data)
        ok = got == digest
        actual = b""
        if not ok:
            actual = cid[: len(cid) - len(digest)] + got if len(got) == len(digest) else b""
    if not ok:
        expected = CID.from_bytes(cid)
        try:
            got_text = str(CID.from_bytes(actual)) if actual else "(a different digest)"
        except DecodeError:
            got_text = "(a different digest)"
        raise IntegrityError(
            f"mismatch in content integrity at offset {offset}: expected: {expected}, got: {got_text}"
        )


def verify_section(cid: bytes, data: bytes, *, offset: int = 0) -> None:
    """Raise :class:`IntegrityError` unless ``data`` hashes to ``cid`` (identity: equals the digest)."""
    parsed = CID.from_bytes(cid)
    _verify_or_raise(cid, parsed.hash_code, parsed.digest, data, offset)


class CarV1Reader:
    """Pull reader over a binary stream positioned at the start of a CARv1 payload.

    The header is read on construction; iterate for :class:`Section` objects, or use
    :meth:`iter_heads` to walk offsets without reading block data (it seeks when it can).

    Args:
        stream: readable binary file object (buffered is best; pipes are fine).
        verify: hash-check every block against its CID (default on).
        max_header_bytes / max_section_bytes: limits on length prefixes.
        zero_length_section_as_eof: a section length of 0 ends the stream (go-car
            ``ZeroLengthSectionAsEOF``); otherwise it is an error.
        limit: the payload's length when it is embedded (CARv2 data size); reading
            past it is an error. ``None``: until EOF.
        base_offset: file offset of the payload start, used in error positions.

    Raises:
        CarError / LimitExceededError: bad header (on construction) or section (while iterating).
        IntegrityError: a block that does not match its CID (with ``verify``).
    """

    def __init__(
        self,
        stream: IO[bytes],
        *,
        verify: bool = True,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_section_bytes: int = DEFAULT_MAX_SECTION_BYTES,
        zero_length_section_as_eof: bool = False,
        limit: int | None = None,
        base_offset: int = 0,
    ) -> None:
        self._init_state(stream, verify, max_section_bytes, zero_length_section_as_eof, limit, base_offset)
        n, _ = self._read_varint(what="header", allow_eof=False)
        if n == 0:
            raise CarError(f"invalid header data at offset {base_offset}: zero-length header", offset=base_offset)
        if n > max_header_bytes:
            raise LimitExceededError(
                f"invalid header data, length of read beyond allowable maximum: header length {n} > "
                f"max_header_bytes={max_header_bytes} at offset {base_offset}",
                offset=base_offset,
            )
        body = self._read(n, "header")
        self.header = decode_header(body, offset=self._base)
        if self.header.version != 1:
            raise CarError(
                f"invalid data payload header version; expected 1, got {self.header.version}", offset=self._base
            )
        self.header_length = self._pos

    def _init_state(self, stream: IO[bytes], verify: bool, max_section_bytes: int,
                    zero_length_section_as_eof: bool, limit: int | None, base_offset: int) -> None:
        self._f = stream
        self.verify = verify
        self.max_section_bytes = max_section_bytes
        self.zero_length_section_as_eof = zero_length_section_as_eof
        self._limit = limit
        self._base = base_offset
        self._pos = 0
        self._pos_bias = 0
        self._iterating = False

    @classmethod
    def at_section(
        cls,
        stream: IO[bytes],
        *,
        limit: int | None = None,
        base_offset: int = 0,
        offset: int = 0,
        verify: bool = True,
        max_section_bytes: int = DEFAULT_MAX_SECTION_BYTES,
    ) -> CarV1Reader:
        """A reader for a stream already positioned at a section (random access by index).

        ``offset`` is that position within the payload; ``limit`` the payload length.
        Use :meth:`read_head` / :meth:`read_section`.
        """
        self = cls.__new__(cls)
        self._init_state(stream, verify, max_section_bytes, False,
                         None if limit is None else limit - offset, base_offset + offset)
        self.header = CarHeader(1)
        self.header_length = 0
        self._pos_bias = offset
        return self

    @classmethod
    def resumed(
        cls,
        stream: IO[bytes],
        *,
        position: int,
        limit: int | None = None,
        base_offset: int = 0,
        max_section_bytes: int = DEFAULT_MAX_SECTION_BYTES,
        zero_length_section_as_eof: bool = False,
        verify: bool = False,
    ) -> CarV1Reader:
        """A reader in the state of one that has walked ``position`` bytes of the payload (the
        stream is there): the sections after it, with offsets, limits and errors as that reader's."""
        self = cls.__new__(cls)
        self._init_state(stream, verify, max_section_bytes, zero_length_section_as_eof, limit, base_offset)
        self.header = CarHeader(1)
        self.header_length = 0
        self._pos = position
        return self

    def read_head(self) -> SectionHead | None:
        """Parse the next section's length and CID, leaving the stream at its data (None at EOF)."""
        head = self._next_head()
        if head is None:
            return None
        cid, _code, _digest, start, n = head
        bias = self._pos_bias
        return SectionHead(cid, bias + start, n, bias + self._pos, n - len(cid))

    def read_section(self) -> Section | None:
        """Parse and (with ``verify``) check the next section; ``None`` at EOF."""
        head = self._next_head()
        if head is None:
            return None
        cid, code, digest, start, n = head
        data_start = self._pos
        data = self._read(n - len(cid), "section data")
        if self.verify:
            _verify_or_raise(cid, code, digest, data, self._base + start)
        bias = self._pos_bias
        return Section(cid, data, bias + start, n, bias + data_start)

    @property
    def roots(self) -> tuple[CID, ...]:
        return self.header.roots

    @property
    def position(self) -> int:
        """Bytes consumed so far, from the payload start."""
        return self._pos

    # reading primitives ------------------------------------------------------------
    def _eof_error(self, what: str, start: int) -> CarError:
        return CarError(f"unexpected EOF in {what} at offset {self._base + start}", offset=self._base + start)

    def _read(self, n: int, what: str) -> bytes:
        start = self._pos
        if self._limit is not None and start + n > self._limit:
            raise CarError(
                f"{what} at offset {self._base + start} runs past the end of the data payload "
                f"({start + n} > {self._limit})",
                offset=self._base + start,
            )
        data = read_exact(self._f, n)
        if len(data) != n:
            raise self._eof_error(what, start)
        self._pos += n
        return data

    def _read_varint(self, *, what: str, allow_eof: bool) -> tuple[int, bool]:
        """Returns ``(value, eof)``; ``eof`` only when the stream ended cleanly before it."""
        value = 0
        shift = 0
        start = self._pos
        for i in range(_MAX_VARINT_BYTES):
            if self._limit is not None and self._pos >= self._limit:
                if i == 0 and allow_eof:
                    return 0, True
                raise self._eof_error(f"{what} length", start)
            b = self._f.read(1)
            if not b:
                if i == 0 and allow_eof:
                    return 0, True
                raise self._eof_error(f"{what} length", start)
            self._pos += 1
            byte = b[0]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                if byte == 0 and i > 0:
                    raise CarError(f"varint not minimally encoded in {what} length at offset {self._base + start}",
                                   offset=self._base + start)
                return value, False
            shift += 7
        raise CarError(f"varint longer than {_MAX_VARINT_BYTES} bytes in {what} length at offset "
                       f"{self._base + start}", offset=self._base + start)

    def _read_cid(self, section_length: int, section_start: int) -> tuple[bytes, int, bytes]:
        """Read the CID at the start of a section: ``(cid, mh_code, digest)``."""
        budget = section_length
        buf = bytearray()
        where = self._base + section_start

        def take(k: int) -> bytes:
            nonlocal budget
            if k > budget:
                raise CarError(f"section length shorter than CID length at offset {where}", offset=where)
            budget -= k
            data = self._read(k, "section CID")
            buf.extend(data)
            return data

        def take_varint() -> int:
            value = 0
            shift = 0
            for i in range(_MAX_VARINT_BYTES):
                byte = take(1)[0]
                value |= (byte & 0x7F) << shift
                if byte < 0x80:
                    if byte == 0 and i > 0:
                        raise CarError(f"invalid cid: varint not minimally encoded at offset {where}", offset=where)
                    return value
                shift += 7
            raise CarError(f"invalid cid: varint too long at offset {where}", offset=where)

        first = take(1)[0]
        if first == 0x12 and budget >= 1:
            # CIDv0 is a bare sha2-256 multihash: 0x12 0x20 + 32 bytes.
            second = take(1)[0]
            if second == 0x20:
                digest = take(32)
                return bytes(buf), 0x12, digest
            raise CarError(f"invalid cid: expected 1 as the cid version number, got: 18 at offset {where}",
                           offset=where)
        if first != 1:
            version = first & 0x7F  # go-car names the (low bits of the) first varint byte
            raise CarError(f"invalid cid: expected 1 as the cid version number, got: {version} at offset {where}",
                           offset=where)
        take_varint()  # codec
        code = take_varint()
        dlen = take_varint()
        digest = take(dlen)
        return bytes(buf), code, digest

    def _next_head(self) -> tuple[bytes, int, bytes, int, int] | None:
        """Parse a section's length and CID: ``(cid, code, digest, section_start, data_length)``."""
        start = self._pos
        n, eof = self._read_varint(what="section", allow_eof=True)
        if eof:
            return None
        where = self._base + start
        if n == 0:
            if self.zero_length_section_as_eof:
                return None
            raise CarError(
                f"carv1 null padding not allowed by default; see zero_length_section_as_eof (offset {where})",
                offset=where,
            )
        if n > self.max_section_bytes:
            raise LimitExceededError(
                f"invalid section data, length of read beyond allowable maximum: section length {n} > "
                f"max_section_bytes={self.max_section_bytes} at offset {where}",
                offset=where,
            )
        if self._limit is not None and self._pos + n > self._limit:
            raise CarError(f"section at offset {where} runs past the end of the data payload", offset=where)
        cid, code, digest = self._read_cid(n, start)
        return cid, code, digest, start, n

    def __iter__(self) -> Iterator[Section]:
        if self._iterating:
            raise CarError("a CarV1Reader can be iterated only once")
        self._iterating = True
        while True:
            head = self._next_head()
            if head is None:
                return
            cid, code, digest, start, n = head
            data_start = self._pos
            data = self._read(n - len(cid), "section data")
            if self.verify:
                _verify_or_raise(cid, code, digest, data, self._base + start)
            yield Section(cid, data, start, n, data_start)

    def iter_heads(self) -> Iterator[SectionHead]:
        """Walk the sections without reading block data (seeks past it when possible).

        Blocks are not verified (there is no data to check).
        """
        if self._iterating:
            raise CarError("a CarV1Reader can be iterated only once")
        self._iterating = True
        end: int | None = None
        try:
            if self._f.seekable():
                here = self._f.tell()
                end = self._f.seek(0, io.SEEK_END)
                self._f.seek(here)
        except (AttributeError, ValueError, OSError):
            end = None
        while True:
            head = self._next_head()
            if head is None:
                return
            cid, _code, _digest, start, n = head
            data_start = self._pos
            dlen = n - len(cid)
            if end is not None and dlen > _SKIP_BY_READING_BYTES:
                # large block: seek over it (small ones are cheaper to read through the buffer)
                here = self._f.tell()
                if here + dlen > end:
                    raise self._eof_error("section data", data_start)
                self._f.seek(here + dlen)
                self._pos += dlen
            else:
                remaining = dlen
                while remaining:
                    chunk = self._read(min(remaining, _COPY_BYTES), "section data")
                    remaining -= len(chunk)
            bias = self._pos_bias
            yield SectionHead(cid, bias + start, n, bias + data_start, dlen)


def iter_blocks(stream: IO[bytes], **options: Any) -> Iterator[Block]:
    """Yield the blocks of a CARv1 stream (verified by default; options as :class:`CarV1Reader`)."""
    for section in CarV1Reader(stream, **options):
        yield Block(section.cid, section.data)


def read_header(stream: IO[bytes], *, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES) -> CarHeader:
    """Read just the header of a CARv1 stream."""
    return CarV1Reader(stream, max_header_bytes=max_header_bytes).header


# -- push decoder (sans-I/O) -------------------------------------------------------------------


class CarV1Decoder:
    """Sans-I/O CARv1 parser: feed bytes, pull events.

    ``receive_data(b"")`` marks EOF. ``next_event()`` returns :class:`HeaderRead`, then
    :class:`Section` objects, then :class:`CarEnded`; ``None`` when more bytes are
    needed. Limits are checked as soon as a length prefix is complete, so the
    buffer never grows past one limit plus one feed.
    """

    def __init__(
        self,
        *,
        verify: bool = True,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_section_bytes: int = DEFAULT_MAX_SECTION_BYTES,
        zero_length_section_as_eof: bool = False,
    ) -> None:
        self.verify = verify
        self.max_header_bytes = max_header_bytes
        self.max_section_bytes = max_section_bytes
        self.zero_length_section_as_eof = zero_length_section_as_eof
        self._buf = bytearray()
        self._consumed = 0  # stream offset of _buf[0]
        self._eof = False
        self._header: CarHeader | None = None
        self._done = False
        self._skip_rest = False

    @property
    def header(self) -> CarHeader | None:
        return self._header

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        if self._eof and data:
            raise CarError("data received after EOF")
        if not data:
            self._eof = True
        elif not self._skip_rest:
            self._buf += data

    def _varint(self) -> tuple[int, int] | None:
        value = 0
        shift = 0
        buf = self._buf
        for i in range(min(len(buf), _MAX_VARINT_BYTES)):
            byte = buf[i]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                if byte == 0 and i > 0:
                    raise CarError(f"varint not minimally encoded at offset {self._consumed}", offset=self._consumed)
                return value, i + 1
            shift += 7
        if len(buf) >= _MAX_VARINT_BYTES:
            raise CarError(f"varint longer than {_MAX_VARINT_BYTES} bytes at offset {self._consumed}",
                           offset=self._consumed)
        return None

    def _take(self, n: int) -> bytes:
        with memoryview(self._buf) as view:  # one copy, and released before the buffer shrinks
            data = bytes(view[:n])
        del self._buf[:n]
        self._consumed += n
        return data

    def next_event(self) -> HeaderRead | Section | CarEnded | None:
        if self._done:
            return None
        start = self._consumed
        if self._skip_rest:
            if self._eof:
                self._done = True
                return CarEnded(start)
            return None
        parsed = self._varint()
        if parsed is None:
            if self._eof:
                if not self._buf and self._header is not None:
                    self._done = True
                    return CarEnded(start)
                raise CarError(f"unexpected EOF at offset {start}", offset=start)
            return None
        n, vlen = parsed
        if self._header is None:
            if n == 0:
                raise CarError("invalid header data at offset 0: zero-length header", offset=0)
            if n > self.max_header_bytes:
                raise LimitExceededError(
                    f"invalid header data, length of read beyond allowable maximum: header length {n} > "
                    f"max_header_bytes={self.max_header_bytes}", offset=0)
        else:
            if n == 0:
                if self.zero_length_section_as_eof:
                    self._skip_rest = True
                    self._buf.clear()
                    return self.next_event()
                raise CarError(f"carv1 null padding not allowed by default; see zero_length_section_as_eof "
                               f"(offset {start})", offset=start)
            if n > self.max_section_bytes:
                raise LimitExceededError(
                    f"invalid section data, length of read beyond allowable maximum: section length {n} > "
                    f"max_section_bytes={self.max_section_bytes} at offset {start}", offset=start)
        if len(self._buf) < vlen + n:
            if self._eof:
                raise CarError(f"unexpected EOF in section at offset {start}", offset=start)
            return None
        self._take(vlen)
        body = self._take(n)
        if self._header is None:
            header = decode_header(body, offset=start)
            if header.version != 1:
                raise CarError(f"invalid data payload header version; expected 1, got {header.version}", offset=0)
            self._header = header
            return HeaderRead(header, vlen + n)
        try:
            cid_obj, clen = CID.decode_prefix(body)
        except DecodeError as exc:
            if "past the end" in str(exc) or "truncated" in str(exc):
                raise CarError(f"section length shorter than CID length at offset {start}", offset=start) from exc
            raise CarError(f"invalid cid at offset {start}: {exc}", offset=start) from exc
        cid = body[:clen]
        data = body[clen:]
        if self.verify:
            _verify_or_raise(cid, cid_obj.hash_code, cid_obj.digest, data, start)
        return Section(cid, data, start, n, start + vlen + clen)


# -- writer ------------------------------------------------------------------------------------


def _seekable(out: IO[bytes]) -> bool:
    try:
        return bool(out.seekable())
    except (AttributeError, ValueError, OSError):
        return False


def _plain_fd(out: IO[bytes]) -> int | None:
    """The descriptor of a plain (buffered) file object, which can be flushed and then written
    past with ``os.writev`` (its ``tell`` asks the descriptor); ``None`` for anything else."""
    if type(out) not in (io.BufferedWriter, io.BufferedRandom, io.FileIO):
        return None
    try:
        return out.fileno()
    except (OSError, ValueError):
        return None


class CarV1Writer:
    """A :class:`~pyipld.blockstore.BlockSink` that streams a CARv1.

    Args:
        out: writable binary stream; it is not closed.
        roots: the roots, when known up front (the header is written at once).
            ``None``: call :meth:`set_roots` before :meth:`close`.
        placeholder_roots: what to write in the header until the real roots are set
            (default one :data:`PLACEHOLDER_ROOT`). Equal length → patched in place.
        dedupe: write each CID once (kubo/go-car behaviour).
        record_offsets: keep ``(cid, offset)`` of each section (CARv2 index).
        background: make the ``write`` calls on a worker thread (bounded queue), so the
            caller — an import hashing leaves — never waits on the disk.
        resume: continue a CAR whose placeholder header and first ``resume.body`` section
            bytes are already in ``out`` (which must be seekable and positioned at the
            header); what follows them is cut off.

    Attributes:
        blocks_written, data_bytes_written: counts of sections and block bytes.
    """

    def __init__(
        self,
        out: IO[bytes],
        roots: Sequence[CIDLike] | None = None,
        *,
        placeholder_roots: Sequence[CIDLike] | None = None,
        dedupe: bool = True,
        record_offsets: bool = False,
        background: bool = False,
        resume: WriterState | None = None,
    ) -> None:
        self._out = out
        self._roots: list[CID] | None = [_as_cid(r) for r in roots] if roots is not None else None
        self._dedupe = dedupe
        self._seen: set[bytes] = set()
        self._records: list[tuple[bytes, int]] | None = [] if record_offsets else None
        self.blocks_written = 0
        self.data_bytes_written = 0
        self._closed = False
        self._spool: IO[bytes] | None = None
        self._start = 0
        self._body = 0  # bytes of sections written so far
        self._sink: IO[bytes] = out
        if resume is not None:
            if self._roots is not None or not _seekable(out):
                raise ConfigError("resuming a CAR needs a seekable output and the roots set at the end")
            self._start = out.tell()
            self._header = encode_header(placeholder_roots if placeholder_roots is not None else [PLACEHOLDER_ROOT])
            self._seen = resume.seen
            if self._records is not None:
                self._records = resume.records
            self._body = resume.body
            self.blocks_written = resume.blocks
            self.data_bytes_written = resume.data_bytes
            out.seek(self._start + len(self._header) + self._body)
            out.truncate()
        elif self._roots is not None:
            self._header = encode_header(self._roots)
            self._out.write(self._header)
        elif _seekable(out):
            self._start = out.tell()
            self._header = encode_header(placeholder_roots if placeholder_roots is not None else [PLACEHOLDER_ROOT])
            self._out.write(self._header)
            self._sink = out
        else:
            self._header = b""
            self._spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX_BYTES)  # noqa: SIM115 - closed in close()
            self._sink = self._spool
        self._bg: BackgroundWriter | None = None
        if background:
            fd = _plain_fd(self._sink)
            if fd is not None:
                self._sink.flush()  # the header: the writer thread writes at the descriptor's position
            self._bg = BackgroundWriter(self._sink, fd=fd)

    # BlockSink -------------------------------------------------------------------------
    def put(self, cid: bytes | CID, data: bytes) -> None:
        """Write one section (skipped when ``dedupe`` and the CID was written before)."""
        if self._closed:
            raise CarError("put() on a closed CAR writer")
        if isinstance(cid, CID):
            cid = cid.bytes
        if self._dedupe:
            if cid in self._seen:
                return
            self._seen.add(cid)
        prefix = encode_varint(len(cid) + len(data)) + cid
        if self._records is not None:
            self._records.append((cid, self._body))
        if self._bg is not None:
            self._bg.write(prefix, data)
        else:
            self._sink.write(prefix)
            self._sink.write(data)
        self._body += len(prefix) + len(data)
        self.blocks_written += 1
        self.data_bytes_written += len(data)

    def put_parts(self, cid: bytes, parts: Sequence[bytes | bytearray | memoryview]) -> None:
        """:meth:`put` of the block ``b"".join(parts)``, written piece by piece (never joined).

        The pieces may be views (of a mapped file); they must not change until written.
        """
        if self._closed:
            raise CarError("put() on a closed CAR writer")
        if self._dedupe:
            if cid in self._seen:
                return
            self._seen.add(cid)
        size = sum(len(part) for part in parts)
        prefix = encode_varint(len(cid) + size) + cid
        if self._records is not None:
            self._records.append((cid, self._body))
        if self._bg is not None:
            self._bg.write(prefix, *parts)
        else:
            write = self._sink.write
            write(prefix)
            for part in parts:
                write(part)
        self._body += len(prefix) + size
        self.blocks_written += 1
        self.data_bytes_written += size

    def when_written(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once every block put so far is written (at once without a writer thread):
        the buffers their pieces were views of may then be reused."""
        if self._bg is not None:
            self._bg.call_when_written(fn)
        else:
            fn()

    def put_many(self, blocks: Iterable[Block]) -> None:
        for block in blocks:
            self.put(block.cid, block.data)

    def has(self, cid: bytes) -> bool:
        """True when the CID was already written (only tracked with ``dedupe``)."""
        return cid in self._seen

    def set_roots(self, roots: Sequence[CIDLike]) -> None:
        """Set the header roots (before :meth:`close`)."""
        if self._closed:
            raise CarError("set_roots() on a closed CAR writer")
        self._roots = [_as_cid(r) for r in roots]

    @property
    def body_length(self) -> int:
        """Bytes of sections handed to the output so far (queued ones included)."""
        return self._body

    def flush(self) -> None:
        """Wait until every section handed over is written to the output, and flush it."""
        if self._bg is not None:
            self._bg.drain()
        flush = getattr(self._sink, "flush", None)
        if flush is not None:
            flush()

    @property
    def header_length(self) -> int:
        """Bytes of the header as it will finally be written."""
        if self._roots is None:
            return len(self._header)
        return len(encode_header(self._roots))

    @property
    def payload_length(self) -> int:
        """Total CARv1 bytes (header + sections) as finally written."""
        return self.header_length + self._body

    def index_records(self) -> list[tuple[bytes, int]]:
        """``(cid, offset from payload start)`` of every section (needs ``record_offsets``)."""
        if self._records is None:
            raise ConfigError("CarV1Writer was created without record_offsets=True")
        base = self.header_length
        return [(cid, base + off) for cid, off in self._records]

    def close(self) -> None:
        """Finish the CAR: write or patch the header. The output stream stays open."""
        if self._closed:
            return
        if self._roots is None:
            raise ConfigError("CAR roots were never set: call set_roots() before close()")
        if self._bg is not None:
            bg, self._bg = self._bg, None
            bg.close()  # everything queued is on the output before the header is patched
        final = encode_header(self._roots)
        if self._spool is not None:
            self._out.write(final)
            self._spool.seek(0)
            shutil.copyfileobj(self._spool, self._out, _COPY_BYTES)
            self._spool.close()
        elif final != self._header:
            end = self._out.tell()
            if len(final) == len(self._header):
                self._out.seek(self._start)
                self._out.write(final)
                self._out.seek(end)
            else:
                self._shift_body(final, end)
        self._header = final
        self._closed = True

    def _shift_body(self, final: bytes, end: int) -> None:
        """The real header has another length than the placeholder: rewrite the body after it."""
        body_start = self._start + len(self._header)
        try:
            readable = self._out.readable()
        except (AttributeError, ValueError, OSError):
            readable = False
        if not readable:
            raise CarError(
                f"the final header ({len(final)} bytes) is longer or shorter than the placeholder "
                f"({len(self._header)} bytes) and the output cannot be read back to move the body: open it "
                "read-write, or pass placeholder_roots shaped like the real root"
            )
        # on disk, not in memory: the body can be any size
        with tempfile.TemporaryFile() as spool:
            self._out.seek(body_start)
            remaining = end - body_start
            while remaining:
                chunk = self._out.read(min(remaining, _COPY_BYTES))
                if not chunk:
                    raise CarError("CAR output shrank while it was being written")
                spool.write(chunk)
                remaining -= len(chunk)
            self._out.seek(self._start)
            self._out.write(final)
            spool.seek(0)
            shutil.copyfileobj(spool, self._out, _COPY_BYTES)
            self._out.truncate()

    def __enter__(self) -> Self:
        return self

    def abort(self) -> None:
        """Give up: stop the writer thread and drop the spool (the output is left as it is)."""
        if self._bg is not None:
            bg, self._bg = self._bg, None
            bg.abort()
        if self._spool is not None:
            self._spool.close()
        self._closed = True

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.abort()

