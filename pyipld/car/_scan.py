"""Walk the section heads of a CAR payload in a regular file with a few ``pread`` calls.

:meth:`CarV1Reader.iter_heads` reads each head a byte at a time through a buffered
file (tens of microseconds a section); here a head is parsed out of a 4 KiB window read
with ``pread``, and the CID's multihash code and digest come with it, so a verifier need
not parse the CID again. The fast path takes only well-formed sections: anything else
(a zero length, a limit passed, a truncated file, a malformed CID) hands the rest of the
walk to :class:`CarV1Reader`, which raises exactly the error it always raised; the two
walks agree (``tests/test_car_scan.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO, Final

from .v1 import CarV1Reader, SectionHead

__all__ = ["scan_heads"]

WINDOW_BYTES: Final = 4096
_V0_PREFIX: Final = b"\x12\x20"


def _uvarint(buf: bytes, i: int, end: int) -> tuple[int, int]:
    """A minimal unsigned varint of at most 9 bytes at ``buf[i:end]``: ``(value, next)``, or ``(-1, i)``."""
    b = buf[i] if i < end else 0x80
    if b < 0x80:
        return b, i + 1
    value = 0
    shift = 0
    for k in range(i, min(end, i + 9)):
        b = buf[k]
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return (-1, i) if b == 0 else (value, k + 1)
        shift += 7
    return -1, i


def _parse(win: bytes, i: int, pos: int, end: int, max_section_bytes: int) -> tuple[SectionHead, int, bytes] | None:
    """The well-formed section whose length varint is at ``win[i]`` (payload offset ``pos``), else ``None``."""
    w = len(win)
    n, j = _uvarint(win, i, w)
    if n <= 0 or n > max_section_bytes or pos + (j - i) + n > end:
        return None
    limit = min(w, j + n)
    if win[j : j + 2] == _V0_PREFIX and j + 34 <= limit:
        cid = win[j : j + 34]
        code = 0x12
        digest = cid[2:]
    elif j < limit and win[j] == 1:
        codec, k = _uvarint(win, j + 1, limit)
        code, k = _uvarint(win, k, limit) if codec >= 0 else (-1, k)
        dlen, k = _uvarint(win, k, limit) if code >= 0 else (-1, k)
        if dlen < 0 or k + dlen > limit:
            return None
        cid = win[j : k + dlen]
        digest = win[k : k + dlen]
    else:
        return None
    data_at = pos + (j - i) + len(cid)
    return SectionHead(cid, pos, n, data_at, n - len(cid)), code, digest


def scan_heads(fd: int, stream: IO[bytes], *, payload_offset: int, end: int, start: int, limited: bool,
               max_section_bytes: int, zero_length_section_as_eof: bool
               ) -> Iterator[tuple[SectionHead, int, bytes]]:
    """``(head, multihash code, digest)`` of every section from payload offset ``start``.

    Args:
        fd / stream: the same open file (``fd`` for ``pread``; ``stream`` for the fallback).
        payload_offset: where the payload starts in the file.
        end: the payload's length (a CARv2's data size, or the file size of a CARv1).
        start: the payload offset of the first section (the header's length).
        limited: the payload is embedded (CARv2): reading past ``end`` is "past the end of the
            data payload" rather than an EOF.
        max_section_bytes / zero_length_section_as_eof: as :class:`CarV1Reader`.

    Raises:
        CarError / LimitExceededError: as :meth:`CarV1Reader.iter_heads` would, at the same section.
    """
    pos = start
    win = b""
    win_at = 0  # payload offset of win[0]
    pread = os.pread
    while pos < end:
        i = pos - win_at
        if i + 64 > len(win):
            win = pread(fd, min(WINDOW_BYTES, end - pos), payload_offset + pos)
            win_at, i = pos, 0
        found = _parse(win, i, pos, end, max_section_bytes)
        if found is None and i:  # perhaps cut by the window's end: once more from this head
            win = pread(fd, min(WINDOW_BYTES, end - pos), payload_offset + pos)
            win_at = pos
            found = _parse(win, 0, pos, end, max_section_bytes)
        if found is None:
            break
        yield found
        pos = found[0].data_offset + found[0].data_length
    if pos >= end:
        return
    # the reference reader from here on: an error (or an unusual section) exactly as it reports it
    stream.seek(payload_offset + pos)
    reader = CarV1Reader.resumed(stream, position=pos, limit=end if limited else None, base_offset=payload_offset,
                                 max_section_bytes=max_section_bytes,
                                 zero_length_section_as_eof=zero_length_section_as_eof)
    from ..cid import CID

    for head in reader.iter_heads():
        parsed = CID.from_bytes(head.cid)
        yield head, parsed.hash_code, parsed.digest
