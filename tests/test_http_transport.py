"""httpx connections read bodies up to 1 MiB per recv (pyipld.http._transport)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest

from pyipld.http import _transport
from pyipld.http._transport import READ_BYTES, widen_reads
from pyipld.http.client import GatewayClient

BODY = bytes(range(256)) * (24 << 10)  # 6 MiB


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = BODY if self.path == "/big" else b"tiny"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _asked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    asked: list[int] = []
    real = _transport._WideStream.read

    def counting(self: _transport._WideStream, max_bytes: int, timeout: float | None = None) -> bytes:
        asked.append(max(max_bytes, READ_BYTES))
        return real(self, max_bytes, timeout)

    monkeypatch.setattr(_transport._WideStream, "read", counting)
    return asked


def test_bodies_are_read_in_large_pieces_and_unchanged(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _asked(monkeypatch)
    with httpx.Client() as client:
        assert widen_reads(client) and widen_reads(client)  # idempotent
        with client.stream("GET", f"{server}/big") as response:
            assert b"".join(response.iter_bytes()) == BODY
        assert client.get(f"{server}/small").content == b"tiny"  # a small answer is what arrived
    assert asked and min(asked) == READ_BYTES


def test_gateway_client_uses_wide_reads(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _asked(monkeypatch)
    client = GatewayClient([server])
    try:
        with client._http.stream("GET", f"{server}/big") as response:
            assert len(b"".join(response.iter_bytes())) == len(BODY)
    finally:
        client.close()
    assert asked, "GatewayClient's connections did not go through the wide-read backend"


def test_a_client_without_an_httpcore_pool_is_left_alone() -> None:
    mock = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    assert widen_reads(mock) is False
    mock.close()
