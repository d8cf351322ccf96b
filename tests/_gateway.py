"""A small loopback trustless gateway for client tests and benchmarks: honest or hostile.

It answers ``GET /ipfs/{cid}[/path]?format=raw|car`` from a :class:`MemoryBlockstore`
(blocks chosen the way the spec says: path blocks, then the scope, DFS, no duplicates)
and can be told to misbehave in the ways a client must survive (``Gateway.mode``):

``flip`` one byte of a block · ``truncate`` the CAR (status 200) · ``swap`` a block for
another CID's · ``oversized`` a 3 MiB block first · ``content-type`` text/plain ·
``endless`` body (duplicates of the root forever) · ``stall`` after the first block ·
``redirect`` elsewhere · ``missing`` 404 · ``trickle`` honest bytes, one every 50 ms (each
gap well inside any read timeout), cut after 100 · ``unk`` honest, but breadth-first with
``order=unk; dups=y`` and every block twice (like Helia's defaults).

The standard library's ``http.server`` does the HTTP; each test server is on
127.0.0.1 with a free port and stops in ``close()``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import threading
from collections.abc import Iterator
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from pyipld._varint import encode_varint
from pyipld.blockstore import MemoryBlockstore
from pyipld.car.v1 import encode_header
from pyipld.cid import CID, RAW
from pyipld.errors import NotFoundError, PyipldError
from pyipld.http.traversal import CarScope, iter_scope_blocks, parse_entity_bytes

MODES = ("flip", "truncate", "swap", "oversized", "content-type", "endless", "stall", "redirect", "missing",
         "trickle")


def raw_cid(data: bytes) -> bytes:
    return bytes([1, RAW, 0x12, 0x20]) + hashlib.sha256(data).digest()


def section(cid: bytes, data: bytes) -> bytes:
    return encode_varint(len(cid) + len(data)) + cid + data


def scope_blocks(store: MemoryBlockstore, root: CID, path: list[str], scope: str,
                 entity: tuple[int, int | None] | None) -> list[bytes]:
    """The CIDs a correct gateway sends (the shared traversal: DFS, no duplicates)."""
    car_scope = CarScope(root, tuple(p.encode() for p in path), scope, entity)  # type: ignore[arg-type]
    return [cid for cid, _ in iter_scope_blocks(store, car_scope)]


class Gateway:
    """One loopback server; ``url`` is its base URL. ``requests`` logs request targets."""

    def __init__(self, store: MemoryBlockstore, mode: str | None = None, *, redirect_to: str = "http://127.0.0.1:9",
                 chunk: int = 1 << 16) -> None:
        self.store = store
        self.mode = mode
        self.redirect_to = redirect_to
        self.chunk = chunk
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.bytes_sent = 0
        self._stop = threading.Event()
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                gateway.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                try:
                    gateway.answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hangs up mid-answer is expected here

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- answers -------------------------------------------------------------------------
    def _send(self, h: http.server.BaseHTTPRequestHandler, status: int, ctype: str, body: Iterator[bytes],
              length: int | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        if length is None:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(length))
        h.end_headers()
        if self.mode == "trickle" and status == 200:
            body = self._trickled(body)
        for piece in body:
            if self._stop.is_set():
                return
            data = (f"{len(piece):x}\r\n".encode() + piece + b"\r\n") if length is None else piece
            if piece or length is not None:
                h.wfile.write(data)
                self.bytes_sent += len(piece)
        if length is None:
            h.wfile.write(b"0\r\n\r\n")

    def answer(self, h: http.server.BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.split("/") if p]
        if self.mode == "redirect":
            h.send_response(302)
            h.send_header("Location", self.redirect_to + h.path)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if len(parts) < 2 or parts[0] != "ipfs":
            self._send(h, 400, "text/plain", iter([b"bad path"]), 8)
            return
        try:
            root = CID.decode(parts[1])
        except PyipldError:
            self._send(h, 400, "text/plain", iter([b"bad cid"]), 7)
            return
        if self.mode == "missing" or not self.store.has(root.bytes):
            self._send(h, 404, "text/plain", iter([b"not found"]), 9)
            return
        fmt = query.get("format") or ("car" if "vnd.ipld.car" in h.headers.get("Accept", "") else "raw")
        if fmt == "raw":
            self._raw(h, root)
        else:
            self._car(h, root, parts[2:], query)

    def _raw(self, h: http.server.BaseHTTPRequestHandler, root: CID) -> None:
        data = self.store.get(root.bytes)
        ctype = "application/vnd.ipld.raw"
        if self.mode == "flip":
            data = bytes([data[0] ^ 1]) + data[1:]
        elif self.mode == "swap":
            data = data + b"x"
        elif self.mode == "oversized":
            data = b"\0" * (3 << 20)
        elif self.mode == "content-type":
            ctype = "text/plain"
        elif self.mode == "endless":
            self._send(h, 200, ctype, iter(lambda: b"\0" * self.chunk, None))
            return
        elif self.mode == "stall":
            self._send(h, 200, ctype, self._stalled([data[:1]]), len(data))
            return
        elif self.mode == "truncate":
            h.send_response(200)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])
            h.close_connection = True
            return
        self._send(h, 200, ctype, iter([data]), len(data))

    def _trickled(self, body: Iterator[bytes]) -> Iterator[bytes]:
        sent = 0
        for piece in body:
            for i in range(len(piece)):
                if self._stop.wait(0.05) or sent == 100:  # then cut: a client without a floor fails in 5 s
                    return
                sent += 1
                yield piece[i : i + 1]

    def _stalled(self, first: list[bytes]) -> Iterator[bytes]:
        yield from first
        self._stop.wait(30)

    def _car(self, h: http.server.BaseHTTPRequestHandler, root: CID, path: list[str], query: dict[str, str]) -> None:
        try:
            entity = parse_entity_bytes(query["entity-bytes"]) if "entity-bytes" in query else None
            cids = scope_blocks(self.store, root, path, query.get("dag-scope", "all"), entity)
        except NotFoundError as exc:
            self._send(h, 404, "text/plain", iter([str(exc).encode()]), len(str(exc).encode()))
            return
        except PyipldError as exc:
            self._send(h, 400, "text/plain", iter([str(exc).encode()]), len(str(exc).encode()))
            return
        blocks = [(c, self.store.get(c)) for c in cids if CID.from_bytes(c).hash_code != 0]
        ctype = "application/vnd.ipld.car; version=1; order=dfs; dups=n"
        mode = self.mode
        if mode == "flip":
            i = len(blocks) // 2
            c, d = blocks[i]
            blocks[i] = (c, d[:-1] + bytes([d[-1] ^ 0x40]))
        elif mode == "truncate":
            blocks = blocks[:-1]
        elif mode == "swap":
            i = len(blocks) - 1
            other = blocks[i][1] + b"!"
            blocks[i] = (raw_cid(other), other)
        elif mode == "oversized":
            big = b"\1" * (3 << 20)
            blocks.insert(0, (raw_cid(big), big))
        elif mode == "content-type":
            ctype = "application/octet-stream"
        elif mode == "unk":
            ctype = "application/vnd.ipld.car; version=1; order=unk; dups=y"
            blocks = blocks[::-1] + blocks[::-1]
        body = [encode_header([root])] + [section(c, d) for c, d in blocks]
        if mode == "endless":
            dup = body[1]

            def forever() -> Iterator[bytes]:
                yield body[0]
                while True:
                    yield dup * max(1, self.chunk // len(dup))

            self._send(h, 200, ctype, forever())
            return
        if mode == "stall":
            self._send(h, 200, ctype, self._stalled(body[:2]))
            return
        self._send(h, 200, ctype, self._coalesce(body))

    def _coalesce(self, pieces: list[bytes]) -> Iterator[bytes]:
        buf = bytearray()
        for p in pieces:
            buf += p
            if len(buf) >= self.chunk:
                yield bytes(buf)
                buf.clear()
        if buf:
            yield bytes(buf)


@contextlib.contextmanager
def serve(store: MemoryBlockstore, mode: str | None = None, **kw: Any) -> Iterator[Gateway]:
    gw = Gateway(store, mode, **kw)
    try:
        yield gw
    finally:
        gw.close()
