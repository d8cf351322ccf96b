"""Read a CARv1 or CARv2 front to back from a stream that cannot seek (a pipe, stdin).

:class:`~pyipld.car.reader.CarFile` needs a seekable file (a CARv2's index lies at the end,
and the reader seeks to the payload). Listing blocks or reading the roots needs neither:
:func:`open_car_stream` reads a CARv2's pragma and header, discards the bytes up to its data
payload and returns a :class:`CarV1Reader` confined to that payload, so the bytes after it
(padding, index, anything) are never read — as go-car's ``NewBlockReader`` does.
"""

from __future__ import annotations

from typing import IO, Any

from .._io import read_exact
from ..errors import CarError
from .v1 import CarV1Reader
from .v2 import HEADER_SIZE, PRAGMA, PRAGMA_SIZE, decode_v2_header

__all__ = ["open_car_stream"]

_DISCARD_BYTES = 1 << 20  # padding before a CARv2 payload is read and dropped this much at a time


class _Prefixed:
    """``head`` (bytes already taken from ``stream``) followed by the rest of ``stream``."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._stream = stream

    def read(self, n: int = -1) -> bytes:
        if self._head:
            take = len(self._head) if n < 0 else min(n, len(self._head))
            data = bytes(self._head[:take])
            self._head = self._head[take:]
            return data
        return self._stream.read(n)


def open_car_stream(stream: IO[bytes], *, head: bytes = b"", verify: bool = True, **options: Any) -> CarV1Reader:
    """A reader over the payload of the CAR in ``stream``, read strictly in order.

    Args:
        stream: the CAR after ``head``; read with ``read(n)`` only.
        head: bytes the caller has already read from the start of the CAR (e.g. to sniff it).
        verify, options: as :class:`CarV1Reader` (``max_header_bytes``, ``max_section_bytes``,
            ``zero_length_section_as_eof``).

    Raises:
        CarError: a CARv2 header that does not decode, or a stream that ends before the payload;
            the payload's own errors as :class:`CarV1Reader`.
    """
    first = head[:PRAGMA_SIZE] + read_exact(stream, max(0, PRAGMA_SIZE - len(head)))
    rest = head[PRAGMA_SIZE:]
    if first != PRAGMA:
        return CarV1Reader(_Prefixed(first + rest, stream), verify=verify, **options)  # type: ignore[arg-type]
    fixed = rest[:HEADER_SIZE] + read_exact(stream, max(0, HEADER_SIZE - len(rest)))
    if len(fixed) < HEADER_SIZE:
        raise CarError(f"unexpected EOF in CARv2 header at offset {PRAGMA_SIZE}", offset=PRAGMA_SIZE)
    v2 = decode_v2_header(fixed)
    pending = _Prefixed(rest[HEADER_SIZE:], stream)
    at = PRAGMA_SIZE + HEADER_SIZE
    while at < v2.data_offset:  # padding: bounded reads, whatever the offset says
        skipped = len(pending.read(min(_DISCARD_BYTES, v2.data_offset - at)))
        if not skipped:
            raise CarError(f"unexpected EOF at offset {at}, before the data payload at {v2.data_offset}", offset=at)
        at += skipped
    return CarV1Reader(pending, verify=verify, limit=v2.data_size,  # type: ignore[arg-type]
                       base_offset=v2.data_offset, **options)
