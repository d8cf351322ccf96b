"""Trustless gateway server rules: an HTTP request in, a response plan out (sans-I/O).

Implements the server side of the IPFS trustless gateway spec (ipfs/specs
``src/http-gateways/trustless-gateway.md``; notes with sources in
shared/spec/trustless-gateway.md): ``GET``/``HEAD /ipfs/{cid}[/path]`` answered as a
raw block (``application/vnd.ipld.raw``) or a CARv1 (``application/vnd.ipld.car``).

Theory of operation
-------------------
:func:`plan_response` reads blocks from a :class:`~pyipld.blockstore.BlockSource`
(hash-checking each) and returns a :class:`ResponsePlan`: status, headers, and a
body that is either bytes or a lazy iterator of CAR chunks. It does no network
I/O; :mod:`pyipld.http.server` sends the plan with an HTTP library.

1. **Format**: the ``format`` query parameter wins over ``Accept`` (IPIP-523). Without
   it the first ``Accept`` entry naming ``application/vnd.ipld.raw`` or
   ``application/vnd.ipld.car`` decides; CAR parameters (``version``, ``order``,
   ``dups``) come from that entry only when its type is the chosen one, and the
   ``car-version``/``car-order``/``car-dups`` query parameters override them (boxo
   handler_car.go). No ``Accept`` and no ``format``: 400 (strict trustless mode);
   a format this gateway does not serve (``dag-json``, ``tar``, …): 406.
2. **CAR**: always ``version=1; order=dfs``; ``dups=n`` unless ``dups=y`` was asked.
   ``order=unk`` is accepted (a DFS answer satisfies it) but answered as ``dfs``.
   The header root is the terminal element's CID (boxo). Blocks are the
   :func:`~pyipld.http.traversal.iter_scope_blocks` sequence; the path is resolved
   before the status is chosen, the terminal DAG is streamed afterwards, so a block
   missing below the terminal ends the stream early (the spec's "streaming and missing
   child blocks": a client must check completeness).
3. **Status**: 400 bad CID / parameters / range past the end; 404 missing root, path
   block or path segment; 406 unserved format or CAR version; 412 ``Cache-Control:
   only-if-cached`` and the block is absent; 304 ``If-None-Match`` hit; 206/416 for a
   ``Range`` on a raw block (one range; several → the whole block, 200); 500 a stored
   block that does not match its CID. ``bafkqaaa`` (empty identity) answers the probe.
4. **Headers**: ``Content-Type`` with the CAR parameters used, ``ETag`` (raw:
   ``"<cid>.raw"``; CAR: ``"<cid>.car.<digest of path, scope, range, dups>"``),
   ``Cache-Control: public, max-age=29030400, immutable``, ``X-Content-Type-Options:
   nosniff``, ``Content-Disposition: attachment``, ``X-Ipfs-Path``, ``X-Ipfs-Roots``,
   ``Accept-Ranges``, ``Vary: Accept``, and ``Content-Location`` when the format came
   from ``Accept`` only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl, quote, unquote_to_bytes, urlencode

from .._varint import encode_varint
from ..blockstore import BlockSource, get_verified
from ..car.v1 import encode_header
from ..cid import CID, b32encode
from ..errors import (
    CIDError,
    DecodeError,
    GatewayRequestError,
    IntegrityError,
    NotFoundError,
    PathNotFoundError,
)
from .traversal import BlockData, CarScope, ResolvedScope, iter_terminal_views, parse_entity_bytes, resolve_scope

__all__ = [
    "CACHE_CONTROL",
    "CAR_TYPE",
    "RAW_TYPE",
    "GatewayRequest",
    "ResponsePlan",
    "plan_response",
]

RAW_TYPE: Final = "application/vnd.ipld.raw"
CAR_TYPE: Final = "application/vnd.ipld.car"
CACHE_CONTROL: Final = "public, max-age=29030400, immutable"  # boxo handler.go immutableCacheControl
_OTHER_FORMATS: Final = {  # formats of the path gateway that a trustless gateway does not serve: 406
    "dag-json": "application/vnd.ipld.dag-json", "dag-cbor": "application/vnd.ipld.dag-cbor",
    "json": "application/json", "cbor": "application/cbor", "tar": "application/x-tar",
    "ipns-record": "application/vnd.ipfs.ipns-record",
}
_CHUNK_BYTES: Final = 1 << 20  # CAR body pieces handed to the transport (fewer, larger sends)


@dataclass(frozen=True, slots=True)
class GatewayRequest:
    """What the transport received.

    Attributes:
        method: ``GET``, ``HEAD``, …
        path: the raw (still percent-encoded) request path.
        query: the raw query string (without ``?``).
        headers: ``(lower-case name, value)`` pairs in arrival order.
    """

    method: str
    path: bytes
    query: bytes = b""
    headers: Sequence[tuple[str, str]] = ()

    def header(self, name: str) -> str | None:
        """The values of header ``name`` joined by ``, `` (None when absent)."""
        values = [v for k, v in self.headers if k == name]
        return ", ".join(values) if values else None


@dataclass(slots=True)
class ResponsePlan:
    """A response to send: ``body`` for small answers, ``stream`` (lazy, reads blocks) for CARs.

    ``stream`` may raise (a block missing or corrupt below the terminal element) after
    the status was sent: the transport must then abort the response, so the client
    sees a truncated body, never a clean end.
    """

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: Iterator[bytes] | None = None


def _error(status: int, message: str, extra: Sequence[tuple[str, str]] = ()) -> ResponsePlan:
    body = (message.rstrip("\n") + "\n").encode("utf-8", "replace")
    headers = [("content-type", "text/plain; charset=utf-8"), ("x-content-type-options", "nosniff"),
               ("content-length", str(len(body))), *extra]
    return ResponsePlan(status, headers, body)


@dataclass(frozen=True, slots=True)
class _MediaRange:
    type: str
    params: dict[str, str]


def _parse_accept(value: str | None) -> list[_MediaRange]:
    out: list[_MediaRange] = []
    for item in (value or "").split(","):
        parts = [p.strip() for p in item.split(";")]
        if not parts[0]:
            continue
        params: dict[str, str] = {}
        for p in parts[1:]:
            key, sep, val = p.partition("=")
            if sep:
                params[key.strip().lower()] = val.strip().strip('"')
        out.append(_MediaRange(parts[0].lower(), params))
    return out


@dataclass(frozen=True, slots=True)
class _Negotiated:
    format: str  # "raw" | "car"
    car_params: dict[str, str]
    from_accept: bool


def _negotiate(req: GatewayRequest, query: dict[str, str]) -> _Negotiated | ResponsePlan:
    accept = _parse_accept(req.header("accept"))
    fmt = query.get("format")
    if fmt is not None:
        if fmt not in ("raw", "car"):
            if fmt in _OTHER_FORMATS:
                return _error(406, f"format={fmt} is not served by this trustless gateway (only raw and car)")
            return _error(400, f"invalid format {fmt!r}: expected raw or car")
        wanted = RAW_TYPE if fmt == "raw" else CAR_TYPE
        params = next((m.params for m in accept if m.type == wanted), {})
        return _Negotiated(fmt, dict(params), False)
    for media in accept:
        if media.params.get("q") in ("0", "0.0", "0.00", "0.000"):
            continue
        if media.type == RAW_TYPE:
            return _Negotiated("raw", {}, True)
        if media.type == CAR_TYPE:
            return _Negotiated("car", dict(media.params), True)
    if not accept:
        return _error(400, "trustless gateway: ask for ?format=raw|car or Accept: application/vnd.ipld.raw|car")
    return _error(406, "only trustless requests are served: Accept application/vnd.ipld.raw or "
                       "application/vnd.ipld.car")


def _etag_matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    bare = etag.removeprefix("W/")
    for item in header.split(","):
        item = item.strip()
        if item == "*" or item.removeprefix("W/") == bare:
            return True
    return False


def _cid_text(cid: bytes) -> str:
    return str(CID.from_bytes(cid))


def _roots_header(cids: Sequence[bytes]) -> str:
    return ",".join(_cid_text(c) for c in cids)


def _disposition(filename: str) -> str:
    safe = filename.replace("\\", "_").replace('"', "_")
    if safe.isascii() and safe.isprintable():
        return f'attachment; filename="{safe}"'
    ascii_name = "".join(c if c.isascii() and c.isprintable() else "_" for c in safe)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def _split_path(raw_path: bytes) -> tuple[str, tuple[bytes, ...]] | ResponsePlan:
    if not raw_path.startswith(b"/ipfs/"):
        if raw_path.startswith(b"/ipns/"):
            return _error(501, "IPNS is not served by this gateway (only /ipfs/{cid})")
        return _error(404, "not found: this trustless gateway serves /ipfs/{cid}[/path]")
    segments = [unquote_to_bytes(s) for s in raw_path[len(b"/ipfs/"):].split(b"/")]
    root = segments[0].decode("utf-8", "replace")
    rest = tuple(s for s in segments[1:] if s)
    if not root:
        return _error(400, "missing CID: expected /ipfs/{cid}")
    for s in rest:
        if s in (b".", b".."):
            return _error(400, f"invalid path segment {s.decode()!r}")
    return root, rest


def plan_response(source: BlockSource, req: GatewayRequest, *, chunk_bytes: int = _CHUNK_BYTES) -> ResponsePlan:
    """Decide the answer to ``req`` (see the module docstring); never raises for bad input.

    Blocks on the path (and the raw block) are read here; a CAR's terminal DAG is read
    lazily by the returned ``stream``.

    Raises:
        Nothing for anything a client sends. Errors of ``source`` other than
        NotFoundError/IntegrityError/DecodeError propagate (the transport answers 500).
    """
    if req.method not in ("GET", "HEAD"):
        return _error(405, f"method {req.method} not allowed", [("allow", "GET, HEAD")])
    split = _split_path(req.path)
    if isinstance(split, ResponsePlan):
        return split
    root_text, segments = split
    try:
        query: dict[str, str] = {}
        for key, value in parse_qsl(req.query.decode("latin-1"), keep_blank_values=True):
            query.setdefault(key, value)
    except ValueError as exc:
        return _error(400, f"invalid query string: {exc}")
    try:
        root = CID.decode(root_text)
    except (CIDError, ValueError) as exc:
        return _error(400, f"invalid CID {root_text!r}: {exc}")
    only_if_cached = "only-if-cached" in (req.header("cache-control") or "").lower()
    if only_if_cached and root.hash_code != 0 and not source.has(root.bytes):
        # before format negotiation: a cache probe needs no Accept (gwc path_gateway_unixfs_test.go)
        return _error(412, f"not cached here: {root}")
    negotiated = _negotiate(req, query)
    if isinstance(negotiated, ResponsePlan):
        return negotiated
    shown_path = "/ipfs/" + root_text + "".join("/" + s.decode("utf-8", "replace") for s in segments)
    try:
        if negotiated.format == "raw":
            return _plan_raw(source, req, root, segments, query, negotiated, shown_path)
        return _plan_car(source, req, root, segments, query, negotiated, shown_path, chunk_bytes)
    except GatewayRequestError as exc:
        return _error(400, str(exc))
    except NotFoundError as exc:
        if only_if_cached:
            return _error(412, f"not cached here: {exc}")
        return _error(404, str(exc) if isinstance(exc, PathNotFoundError) else f"not found: {exc}")
    except IntegrityError as exc:
        return _error(500, f"stored data is corrupt: {exc}")
    except DecodeError as exc:
        if root.hash_code == 0:  # the client sent the bytes inline in the CID
            return _error(400, f"the data inlined in {root} does not decode: {exc}")
        return _error(500, f"cannot decode a stored block: {exc}")


def _common_headers(etag: str, shown_path: str, roots: Sequence[bytes]) -> list[tuple[str, str]]:
    return [("etag", etag), ("cache-control", CACHE_CONTROL), ("x-content-type-options", "nosniff"),
            ("x-ipfs-path", quote(shown_path, safe="/:@!$&'()*+,;=")), ("x-ipfs-roots", _roots_header(roots)),
            ("vary", "Accept")]


def _content_location(req: GatewayRequest, query: dict[str, str], extra: dict[str, str]) -> tuple[str, str]:
    merged = {**query, **extra}
    return "content-location", req.path.decode("latin-1") + "?" + urlencode(merged)


def _plan_raw(source: BlockSource, req: GatewayRequest, root: CID, segments: tuple[bytes, ...],
              query: dict[str, str], negotiated: _Negotiated, shown_path: str) -> ResponsePlan:
    if segments:
        resolved = resolve_scope(source, CarScope(root, segments, "block"))
        if resolved.inner:
            raise PathNotFoundError(f"{shown_path} ends inside block {resolved.terminal_cid}, not at a block")
        cid, block, roots = resolved.terminal, resolved.terminal_block, resolved.path_cids
    else:
        cid, roots = root.bytes, (root.bytes,)
        block = get_verified(source, cid)
    text = _cid_text(cid)
    etag = f'"{text}.raw"'
    headers = _common_headers(etag, shown_path, roots)
    headers += [("content-type", RAW_TYPE), ("accept-ranges", "bytes"),
                ("content-disposition", _disposition(query.get("filename") or f"{text}.bin"))]
    if negotiated.from_accept:
        headers.append(_content_location(req, query, {"format": "raw"}))
    if _etag_matches(req.header("if-none-match"), etag):
        return ResponsePlan(304, [h for h in headers if h[0] != "content-type"])
    size = len(block)
    try:
        byte_range = _parse_range(req.header("range"), size)
    except _UnsatisfiableRange:
        return _error(416, f"range not satisfiable for a {size}-byte block", [("content-range", f"bytes */{size}")])
    if byte_range is not None:
        start, end = byte_range
        headers += [("content-range", f"bytes {start}-{end}/{size}"), ("content-length", str(end - start + 1))]
        return ResponsePlan(206, headers, block[start : end + 1] if req.method == "GET" else b"")
    headers.append(("content-length", str(size)))
    return ResponsePlan(200, headers, block if req.method == "GET" else b"")


class _UnsatisfiableRange(Exception):
    pass


def _parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """One ``bytes=`` range as (start, end) inclusive; None to send the whole block.

    Raises:
        _UnsatisfiableRange: the range lies outside the block (416).
    """
    if value is None:
        return None
    unit, sep, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or not sep or "," in spec:
        return None  # other units, or several ranges: 200 with everything (RFC 9110 allows it)
    first, dash, last = spec.strip().partition("-")
    if not dash or not (_is_digits(first) or first == "") or not (_is_digits(last) or last == ""):
        return None
    if first == "":
        if last == "" or _number(last) == 0:
            raise _UnsatisfiableRange
        n = min(_number(last), size)
        if not size:
            raise _UnsatisfiableRange
        return size - n, size - 1
    start = _number(first)
    end = size - 1 if last == "" else min(_number(last), size - 1)
    if start >= size or (last != "" and _number(last) < start):
        raise _UnsatisfiableRange
    return start, end


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()  # RFC 9110 DIGIT is ASCII ("١".isdigit() is True too)


def _number(digits: str) -> int:
    """A Range number; past any block size (and int()'s 4300-digit limit) it is just "very large"."""
    return int(digits) if len(digits) <= 18 else 10**18


def _plan_car(source: BlockSource, req: GatewayRequest, root: CID, segments: tuple[bytes, ...],
              query: dict[str, str], negotiated: _Negotiated, shown_path: str, chunk_bytes: int) -> ResponsePlan:
    params = dict(negotiated.car_params)
    for qname, pname in (("car-version", "version"), ("car-order", "order"), ("car-dups", "dups")):
        if query.get(qname):
            params[pname] = query[qname]
    version = params.get("version", "1")
    if version != "1":
        return _error(400, f"unsupported CAR version {version!r}: only version=1")
    order = params.get("order", "dfs")
    if order not in ("dfs", "unk"):
        return _error(400, f"invalid CAR order {order!r}: expected dfs or unk")
    dups_text = params.get("dups", "n")
    if dups_text not in ("y", "n"):
        return _error(400, f"invalid CAR dups {dups_text!r}: expected y or n")
    scope_text = query.get("dag-scope", "all")
    if scope_text not in ("block", "entity", "all"):
        return _error(400, f"invalid dag-scope {scope_text!r}: expected block, entity or all")
    entity_text = query.get("entity-bytes")
    entity_bytes = parse_entity_bytes(entity_text) if entity_text is not None else None
    scope = CarScope(root, segments, scope_text, entity_bytes, dups_text == "y")  # type: ignore[arg-type]
    resolved = resolve_scope(source, scope)
    terminal = _cid_text(resolved.terminal)
    key = "\0".join([shown_path, scope.effective_scope, entity_text or "", dups_text, "dfs"])
    digest = b32encode(hashlib.sha256(key.encode("utf-8", "replace")).digest()[:10])
    etag = f'"{terminal}.car.{digest}"'
    content_type = f"{CAR_TYPE}; version=1; order=dfs; dups={dups_text}"
    filename = query.get("filename") or (f"{root}_{segments[-1].decode('utf-8', 'replace')}.car" if segments
                                         else f"{root}.car")
    headers = _common_headers(etag, shown_path, resolved.path_cids)
    headers += [("content-type", content_type), ("accept-ranges", "none"),
                ("content-disposition", _disposition(filename))]
    if negotiated.from_accept:
        headers.append(_content_location(req, query, {"format": "car", "car-order": "dfs", "car-dups": dups_text}))
    if _etag_matches(req.header("if-none-match"), etag):
        return ResponsePlan(304, [h for h in headers if h[0] != "content-type"])
    if req.method == "HEAD":
        return ResponsePlan(200, headers)
    return ResponsePlan(200, headers, stream=_car_stream(source, resolved, chunk_bytes))


def _car_stream(source: BlockSource, resolved: ResolvedScope, chunk_bytes: int) -> Iterator[bytes]:
    """The CARv1 bytes: header (root = terminal CID), then sections, in pieces of about ``chunk_bytes``.

    Raw blocks come as views of the source when it can (a mapped CAR), so the one
    ``join`` per piece is the only copy of the data in this process before the
    HTTP library's.
    """
    parts: list[BlockData] = [encode_header([resolved.terminal_cid])]
    held = len(parts[0])

    def sections() -> Iterator[tuple[bytes, BlockData]]:
        yield from resolved.path_blocks
        yield from iter_terminal_views(source, resolved)

    try:
        for cid, block in sections():
            parts += (encode_varint(len(cid) + len(block)), cid, block)
            held += len(cid) + len(block) + 10
            if held >= chunk_bytes:
                yield b"".join(parts)
                parts, held = [], 0
    except Exception:
        if parts:  # hand over the whole sections read so far, then fail
            yield b"".join(parts)
        raise
    if parts:
        yield b"".join(parts)
