"""CARv2: pragma, 40-byte header, wrapping a CARv1 with an index, extracting it back.

Layout (ipld specs/transport/car/carv2; shared/spec/car.md §2)::

    PRAGMA (11) | header (40) | [padding] | CARv1 payload | [padding] | index (to EOF)

Header fields are little-endian: characteristics (uint64 Hi, uint64 Lo), data
offset, data size, index offset (0 = no index). The only defined characteristic is
*fully indexed*: bit 7 of Hi (mask 0x80 on the first characteristics byte).

Writing follows go-car ``WrapV1``: data offset 51, no padding, the index right
after the payload — so wrapping ``sample-v1.car`` reproduces ``sample-wrapped-v2.car``.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Final, Self

from ..cid import CID
from ..errors import CarError, ConfigError
from .index import MULTIHASH_INDEX_SORTED, CarIndex, build_index, encode_index
from .v1 import PLACEHOLDER_ROOT, CarV1Reader, CarV1Writer, CIDLike, WriterState

__all__ = [
    "FULLY_INDEXED",
    "HEADER_SIZE",
    "PRAGMA",
    "PRAGMA_SIZE",
    "CarV2Header",
    "CarV2Writer",
    "decode_v2_header",
    "encode_v2_header",
    "extract_v1",
    "index_v1",
    "read_v2_prefix",
    "wrap_v1",
]

# A CARv1 header of length 10 that decodes to {"version": 2}; matched byte for byte.
PRAGMA: Final = bytes.fromhex("0aa16776657273696f6e02")
PRAGMA_SIZE: Final = 11
HEADER_SIZE: Final = 40
FULLY_INDEXED: Final = 1 << 7  # in characteristics Hi (go-car v2/car.go fullyIndexedCharPos = 7)
_HEADER = struct.Struct("<QQQQQ")
_INT64_MAX: Final = (1 << 63) - 1
_COPY_BYTES: Final = 1 << 20
_SPOOL_MAX_BYTES: Final = 64 << 20


@dataclass(frozen=True, slots=True)
class CarV2Header:
    """The 40 bytes after the pragma. Offsets are from the start of the file."""

    data_offset: int
    data_size: int
    index_offset: int = 0
    characteristics_hi: int = 0
    characteristics_lo: int = 0

    @property
    def fully_indexed(self) -> bool:
        return bool(self.characteristics_hi & FULLY_INDEXED)

    @property
    def characteristics(self) -> bytes:
        """The 16 characteristics bytes as stored (go-car prints them as 32 hex digits)."""
        return struct.pack("<QQ", self.characteristics_hi, self.characteristics_lo)

    @property
    def data_end(self) -> int:
        return self.data_offset + self.data_size


def encode_v2_header(header: CarV2Header) -> bytes:
    """The 40 header bytes (without the pragma)."""
    return _HEADER.pack(header.characteristics_hi, header.characteristics_lo,
                        header.data_offset, header.data_size, header.index_offset)


def decode_v2_header(data: bytes | bytearray | memoryview, *, file_size: int | None = None) -> CarV2Header:
    """Parse and sanity-check the 40 header bytes (go-car ``Header.ReadFrom`` plus bounds).

    Raises:
        CarError: truncated; data offset < 51; zero or negative data size; negative
            index offset; payload or index past ``file_size``; index inside the payload.
    """
    if len(data) < HEADER_SIZE:
        raise CarError(f"unexpected EOF in CARv2 header at offset {PRAGMA_SIZE}", offset=PRAGMA_SIZE)
    hi, lo, data_offset, data_size, index_offset = _HEADER.unpack_from(bytes(data[:HEADER_SIZE]))
    header = CarV2Header(data_offset, data_size, index_offset, hi, lo)
    if data_offset < PRAGMA_SIZE + HEADER_SIZE or data_offset > _INT64_MAX:
        raise CarError(f"invalid data payload offset: {data_offset}", offset=PRAGMA_SIZE + 16)
    if data_size == 0 or data_size > _INT64_MAX:
        raise CarError(f"invalid data payload size: {data_size}", offset=PRAGMA_SIZE + 24)
    if index_offset > _INT64_MAX:
        raise CarError(f"invalid index offset: {index_offset}", offset=PRAGMA_SIZE + 32)
    if file_size is not None and header.data_end > file_size:
        raise CarError(
            f"unexpected end of data: payload [{data_offset}, {header.data_end}) runs past the end of the "
            f"file ({file_size} bytes)", offset=PRAGMA_SIZE + 16)
    if index_offset:
        if index_offset < header.data_end:
            raise CarError(f"invalid index offset {index_offset}: inside the data payload (ends at "
                           f"{header.data_end})", offset=PRAGMA_SIZE + 32)
        if file_size is not None and index_offset > file_size:
            raise CarError(f"invalid index offset {index_offset}: past the end of the file ({file_size} bytes)",
                           offset=PRAGMA_SIZE + 32)
    return header


def _copy_range(src: IO[bytes], out: IO[bytes], start: int, length: int) -> None:
    src.seek(start)
    remaining = length
    while remaining:
        chunk = src.read(min(remaining, _COPY_BYTES))
        if not chunk:
            raise CarError(f"unexpected EOF: wanted {length} bytes at offset {start}", offset=start)
        out.write(chunk)
        remaining -= len(chunk)


def index_v1(
    src: IO[bytes],
    codec: int = MULTIHASH_INDEX_SORTED,
    *,
    include_identity: bool = False,
    limit: int | None = None,
    zero_length_section_as_eof: bool = False,
) -> tuple[CarIndex, int]:
    """Build the index of a CARv1 payload by one scan of section offsets (no data read when seekable).

    ``src`` must be positioned at the payload start. Returns ``(index, payload length scanned)``.
    """
    reader = CarV1Reader(src, verify=False, limit=limit, zero_length_section_as_eof=zero_length_section_as_eof)
    records = [(h.cid, h.offset) for h in reader.iter_heads()]
    return build_index(records, codec, include_identity=include_identity), reader.position


def wrap_v1(
    src: IO[bytes],
    out: IO[bytes],
    *,
    index_codec: int | None = MULTIHASH_INDEX_SORTED,
    include_identity: bool = False,
    fully_indexed: bool = False,
) -> CarV2Header:
    """Write ``src`` (a seekable CARv1 file) as a CARv2 with an index, like go-car ``WrapV1``.

    Args:
        index_codec: index format, or ``None`` for an index-less CARv2 (index offset 0).
        include_identity: index identity CIDs too (go-car's ``car index`` command does).
        fully_indexed: set the fully-indexed characteristic (only honest with identity CIDs in).
    """
    if fully_indexed and not include_identity:
        raise ConfigError("a fully-indexed CARv2 must index identity CIDs too")
    start = src.tell()
    if index_codec is not None:
        index, size = index_v1(src, index_codec, include_identity=include_identity)
        index_bytes: bytes | None = encode_index(index)
    else:
        src_end = src.seek(0, os.SEEK_END)
        src.seek(start)
        CarV1Reader(src, verify=False)  # check it is a CARv1 at all
        size = src_end - start
        index_bytes = None
    data_offset = PRAGMA_SIZE + HEADER_SIZE
    header = CarV2Header(
        data_offset, size, data_offset + size if index_bytes is not None else 0,
        FULLY_INDEXED if fully_indexed else 0, 0,
    )
    out.write(PRAGMA)
    out.write(encode_v2_header(header))
    _copy_range(src, out, start, size)
    if index_bytes is not None:
        out.write(index_bytes)
    return header


def read_v2_prefix(src: IO[bytes], file_size: int | None = None) -> CarV2Header:
    """Read the pragma and the 40-byte header from the start of ``src``, which must be a CARv2.

    Raises:
        CarError: another pragma, truncation, or a header that fails :func:`decode_v2_header`.
    """
    head = src.read(PRAGMA_SIZE + HEADER_SIZE)
    if head[:PRAGMA_SIZE] != PRAGMA:
        if len(head) < PRAGMA_SIZE and PRAGMA.startswith(head):
            raise CarError("unexpected EOF in CARv2 pragma", offset=len(head))
        raise CarError("not a CARv2: the pragma does not match", offset=0)
    return decode_v2_header(head[PRAGMA_SIZE:], file_size=file_size)


def extract_v1(src: IO[bytes], out: IO[bytes]) -> int:
    """Copy the CARv1 payload of a CARv2 file to ``out``; returns its length.

    Raises:
        CarError: ``src`` is not a CARv2 (go-car: ``source version must be 2``).
    """
    from .reader import sniff_version  # late: reader imports this module

    size = src.seek(0, os.SEEK_END)
    src.seek(0)
    version = sniff_version(src)
    if version != 2:
        raise CarError(f"source version must be 2; got: {version}")
    src.seek(0)
    header = read_v2_prefix(src, size)
    _copy_range(src, out, header.data_offset, header.data_size)
    return header.data_size


class CarV2Writer:
    """A :class:`~pyipld.blockstore.BlockSink` that writes a CARv2 in one pass.

    Sections are streamed into the payload; on :meth:`close` the index is appended
    and the header (and the v1 roots, if they came late) are patched. A
    non-seekable output is spooled and copied out on close. The bytes equal
    ``wrap_v1`` of the CARv1 :class:`~pyipld.car.v1.CarV1Writer` would write.

    Args:
        out: writable binary stream (not closed).
        roots: known roots, or ``None`` and :meth:`set_roots` later.
        index_codec: index format, or ``None`` for no index.
        include_identity / fully_indexed: as :func:`wrap_v1`.
        placeholder_roots / dedupe / background: as :class:`~pyipld.car.v1.CarV1Writer`.
        resume: continue a CARv2 already written up to ``resume.body`` section bytes (``out``
            positioned at its pragma); see :class:`~pyipld.car.v1.CarV1Writer`.
    """

    def __init__(
        self,
        out: IO[bytes],
        roots: Sequence[CIDLike] | None = None,
        *,
        index_codec: int | None = MULTIHASH_INDEX_SORTED,
        include_identity: bool = False,
        fully_indexed: bool = False,
        placeholder_roots: Sequence[CIDLike] | None = None,
        dedupe: bool = True,
        background: bool = False,
        resume: WriterState | None = None,
    ) -> None:
        if fully_indexed and not include_identity:
            raise ConfigError("a fully-indexed CARv2 must index identity CIDs too")
        self._final_out = out
        seekable = False
        try:
            seekable = out.seekable()
        except (AttributeError, ValueError, OSError):
            pass
        self._spool: IO[bytes] | None = None
        if seekable:
            self._out = out
        else:
            self._spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX_BYTES)  # noqa: SIM115 - closed in close()
            self._out = self._spool
        self._start = self._out.tell()
        self._index_codec = index_codec
        self._include_identity = include_identity
        self._fully_indexed = fully_indexed
        if resume is not None:
            if self._spool is not None:
                raise ConfigError("resuming a CAR needs a seekable output")
            self._out.seek(self._start + PRAGMA_SIZE + HEADER_SIZE)
        else:
            self._out.write(PRAGMA + bytes(HEADER_SIZE))
        self._v1 = CarV1Writer(
            self._out, roots, placeholder_roots=placeholder_roots or [PLACEHOLDER_ROOT], dedupe=dedupe,
            record_offsets=index_codec is not None, background=background, resume=resume,
        )
        self._closed = False
        self.header: CarV2Header | None = None

    def put(self, cid: bytes | CID, data: bytes) -> None:
        self._v1.put(cid, data)

    def put_parts(self, cid: bytes, parts: Sequence[bytes | bytearray | memoryview]) -> None:
        """:meth:`~pyipld.car.v1.CarV1Writer.put_parts`: one block given as pieces."""
        self._v1.put_parts(cid, parts)

    def when_written(self, fn: Callable[[], None]) -> None:
        """:meth:`~pyipld.car.v1.CarV1Writer.when_written`."""
        self._v1.when_written(fn)

    def has(self, cid: bytes) -> bool:
        return self._v1.has(cid)

    def set_roots(self, roots: Sequence[CIDLike]) -> None:
        self._v1.set_roots(roots)

    @property
    def body_length(self) -> int:
        """Bytes of sections handed to the output so far."""
        return self._v1.body_length

    def flush(self) -> None:
        """:meth:`~pyipld.car.v1.CarV1Writer.flush`."""
        self._v1.flush()

    @property
    def blocks_written(self) -> int:
        return self._v1.blocks_written

    @property
    def data_bytes_written(self) -> int:
        return self._v1.data_bytes_written

    def close(self) -> None:
        if self._closed:
            return
        self._v1.close()
        size = self._v1.payload_length
        data_offset = PRAGMA_SIZE + HEADER_SIZE
        index_offset = 0
        end = self._start + data_offset + size
        self._out.seek(end)
        if self._index_codec is not None:
            index = build_index(self._v1.index_records(), self._index_codec, include_identity=self._include_identity)
            self._out.write(encode_index(index))
            index_offset = data_offset + size
        self.header = CarV2Header(data_offset, size, index_offset, FULLY_INDEXED if self._fully_indexed else 0, 0)
        tail = self._out.tell()
        self._out.seek(self._start + PRAGMA_SIZE)
        self._out.write(encode_v2_header(self.header))
        self._out.seek(tail)
        if self._spool is not None:
            self._spool.seek(0)
            shutil.copyfileobj(self._spool, self._final_out, _COPY_BYTES)
            self._spool.close()
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def abort(self) -> None:
        """Give up: stop the writer thread, drop spools (the output is left as it is)."""
        self._v1.abort()
        if self._spool is not None:
            self._spool.close()
        self._closed = True

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.abort()
