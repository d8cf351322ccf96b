"""Sans-I/O CARv1 body splitter for network streams: one copy per block.

:class:`~pyipld.car.v1.CarV1Decoder` appends every chunk to one buffer and copies each
section out of it (two copies per byte). A gateway response arrives as many
chunks of ~64 KiB while blocks are up to 2 MiB, so here the chunks are kept as they
came and a block is assembled with a single ``b"".join`` of memoryview slices.
Same wire rules (car.md §1): the header is decoded by :func:`pyipld.car.v1.decode_header`
(version 1 only), section lengths are checked against ``max_section_bytes`` before any
block is assembled, a zero length is an error, and every block is hash-checked with
:func:`pyipld.car.v1.verify_section`. ``tests/test_http_car_stream.py`` checks it gives
what ``CarV1Decoder`` gives for any chunking.

    splitter = CarSplitter(max_section_bytes=...)
    for chunk in body: sections.extend(splitter.feed(chunk))   # (cid, data) pairs
    splitter.close()   # raises if the body ended inside a section
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Final

from .._varint import decode_varint
from ..car.v1 import CarHeader, decode_header, verify_section
from ..cid import CID
from ..errors import CarError, DecodeError, LimitExceededError

__all__ = ["CarSplitter"]

_HEAD_ROOM: Final = 9 + 128  # a varint plus a CID fit in this many contiguous bytes


class CarSplitter:
    """Feed body chunks, get verified ``(cid, data)`` sections (header roots are read, never used)."""

    def __init__(self, *, max_section_bytes: int, max_header_bytes: int = 1 << 20, verify: bool = True) -> None:
        self.max_section_bytes = max_section_bytes
        self.max_header_bytes = max_header_bytes
        self.verify = verify
        self.header: CarHeader | None = None
        self._chunks: deque[memoryview] = deque()
        self._buffered = 0
        self._offset = 0  # stream offset of the first buffered byte
        self._pending: tuple[int, int] | None = None  # (length, varint size) of a section still arriving

    def _contiguous(self, n: int) -> memoryview:
        """At least ``min(n, buffered)`` bytes of the head as one view (merging small pieces)."""
        head = self._chunks[0]
        if len(head) >= n or len(self._chunks) == 1:
            return head
        parts: list[memoryview] = []
        got = 0
        while self._chunks and got < n:
            piece = self._chunks.popleft()
            parts.append(piece)
            got += len(piece)
        merged = memoryview(b"".join(parts))
        self._chunks.appendleft(merged)
        return merged

    def _take(self, n: int) -> bytes:
        """Remove ``n`` buffered bytes as one new ``bytes`` (the only copy)."""
        parts: list[memoryview] = []
        left = n
        while left:
            head = self._chunks[0]
            if len(head) <= left:
                parts.append(self._chunks.popleft())
                left -= len(head)
            else:
                parts.append(head[:left])
                self._chunks[0] = head[left:]
                left = 0
        self._buffered -= n
        self._offset += n
        return parts[0].tobytes() if len(parts) == 1 else b"".join(parts)

    def _skip(self, n: int) -> None:
        left = n
        while left:
            head = self._chunks[0]
            if len(head) <= left:
                self._chunks.popleft()
                left -= len(head)
            else:
                self._chunks[0] = head[left:]
                left = 0
        self._buffered -= n
        self._offset += n

    def feed(self, chunk: bytes | bytearray | memoryview) -> Iterator[tuple[bytes, bytes]]:
        """Take one chunk; yield every section it completes.

        Raises:
            CarError / LimitExceededError / IntegrityError: as :class:`CarV1Decoder` would.
        """
        if chunk:
            self._chunks.append(memoryview(chunk).cast("B") if not isinstance(chunk, bytes) else memoryview(chunk))
            self._buffered += len(chunk)
        while self._buffered:
            start = self._offset
            if self._pending is None:
                view = self._contiguous(_HEAD_ROOM)
                try:
                    length, vlen = decode_varint(view)
                except DecodeError as exc:
                    if len(view) < 9 and len(view) == self._buffered:
                        return  # the varint may continue in the next chunk
                    raise CarError(f"bad section length at offset {start}: {exc}", offset=start) from exc
                limit = self.max_header_bytes if self.header is None else self.max_section_bytes
                what = "header" if self.header is None else "section"
                if length == 0:
                    raise CarError(f"zero-length {what} at offset {start}", offset=start)
                if length > limit:
                    raise LimitExceededError(f"{what} length {length} > {limit} at offset {start}", offset=start)
                self._pending = (length, vlen)
            length, vlen = self._pending
            if self._buffered < vlen + length:
                return
            self._pending = None
            if self.header is None:
                self._skip(vlen)
                header = decode_header(self._take(length), offset=start)
                if header.version != 1:
                    raise CarError(f"CAR version {header.version}, expected 1", offset=start)
                self.header = header
                continue
            view = self._contiguous(vlen + _HEAD_ROOM)
            try:
                cid_obj, clen = CID.decode_prefix(view, vlen)
            except DecodeError as exc:
                raise CarError(f"invalid CID in section at offset {start}: {exc}", offset=start) from exc
            if clen > length:
                raise CarError(f"section length {length} shorter than its CID at offset {start}", offset=start)
            self._skip(vlen)
            cid = self._take(clen)
            data = self._take(length - clen)
            if self.verify and not cid_obj.verify(data):
                verify_section(cid, data, offset=start)  # raises IntegrityError naming both CIDs
            yield cid, data

    def close(self) -> None:
        """End of body. Raises :class:`CarError` if it stopped inside the header or a section."""
        if self._buffered:
            raise CarError(f"unexpected EOF: {self._buffered} bytes of an unfinished section at offset "
                           f"{self._offset}", offset=self._offset)
        if self.header is None:
            raise CarError("unexpected EOF before the CAR header", offset=0)
