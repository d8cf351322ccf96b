"""Undo a response's ``Content-Encoding`` without letting a small body become a big buffer.

httpx decodes gzip/deflate one received chunk at a time with no output limit, so a 1 MiB
read of a gzip bomb becomes about 1 GiB in memory at once (deflate reaches ~1000:1). Here
the raw chunks go through :func:`zlib.decompressobj` with ``max_length``, so every decoded
piece is at most ``max_piece`` bytes and the caller's own limits (block size, wasted bytes)
act before more is inflated. Only ``identity``, ``gzip`` and ``deflate`` are understood
(what :data:`ACCEPT_ENCODING` offers); anything else is a :class:`~pyipld.errors.GatewayError`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Final

from ..errors import GatewayError

if TYPE_CHECKING:
    import httpx

__all__ = ["ACCEPT_ENCODING", "MAX_PIECE", "decode_body", "response_body"]

ACCEPT_ENCODING: Final = "gzip, deflate"
MAX_PIECE: Final = 1 << 20


def _decompressor(encoding: str, first: bytes) -> zlib._Decompress:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    # "deflate" is meant to be zlib-wrapped (RFC 9110 §8.4.1.2); some servers send raw deflate.
    wrapped = len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0
    return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)


def _inflate(decoder: zlib._Decompress, data: bytes, max_piece: int) -> Iterator[bytes]:
    """Everything ``data`` inflates to, ``max_piece`` bytes at a time (the rest of the input waits)."""
    while True:
        piece = decoder.decompress(data, max_piece)
        if piece:
            yield piece
        data = decoder.unconsumed_tail
        if not data and len(piece) < max_piece:
            return


def decode_body(chunks: Iterable[bytes], content_encoding: str | None, url: str, *,
                max_piece: int = MAX_PIECE) -> Iterator[bytes]:
    """The decoded body of ``chunks`` (raw, as received), in pieces of at most ``max_piece`` bytes.

    Raises:
        GatewayError: an encoding other than identity/gzip/deflate, a body that does not decode,
            or one cut short (its compressed stream does not reach its end).
    """
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        yield from chunks
        return
    if len(codings) > 1 or codings[0] not in ("gzip", "x-gzip", "deflate"):
        raise GatewayError(f"{url}: unsupported Content-Encoding {content_encoding!r} (asked for {ACCEPT_ENCODING})",
                           url=url)
    decoder: zlib._Decompress | None = None
    head = b""  # the first bytes, until there are two to tell zlib-wrapped from raw deflate
    try:
        for chunk in chunks:
            if decoder is None:
                head += chunk
                if len(head) < 2:
                    continue
                decoder = _decompressor(codings[0], head)
                chunk, head = head, b""
            if chunk:
                yield from _inflate(decoder, chunk, max_piece)
        if decoder is None and head:
            decoder = _decompressor(codings[0], head)
            yield from _inflate(decoder, head, max_piece)
    except zlib.error as exc:
        raise GatewayError(f"{url}: the {codings[0]} body does not decode: {exc}", url=url) from None
    if decoder is not None and not decoder.eof:  # an empty body is empty; a started stream must end
        raise GatewayError(f"{url}: the {codings[0]} body is cut short (the stream does not end)", url=url)


def response_body(response: httpx.Response, url: str) -> Iterator[bytes]:
    """:func:`decode_body` of a streamed httpx response's raw bytes.

    A response whose body an in-memory transport (``httpx.MockTransport`` with ``content=bytes``)
    already read, and httpx decoded, is passed on as it is.
    """
    if response.is_stream_consumed:
        return iter((response.content,))
    return decode_body(response.iter_raw(), response.headers.get("content-encoding"), url)
