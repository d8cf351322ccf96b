"""The gateway's transport: concurrency, keep-alive, slow and hostile clients, the CLI.

Servers run on 127.0.0.1 (port 0), in-process through :func:`serve_in_thread` or as a
``pyipld gateway`` child process; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld import cli
from pyipld._cli.gateway import CarSet
from pyipld._varint import encode_varint
from pyipld.blockstore import MemoryBlockstore, TrustedSource, get_verified_view
from pyipld.car.blockstore import CarBlockstore
from pyipld.car.v1 import CarV1Reader, encode_header
from pyipld.cid import CID
from pyipld.errors import IntegrityError, PyipldError
from pyipld.http.gateway import _CHUNK_BYTES, GatewayRequest, plan_response
from pyipld.http.server import ServerConfig, _hypercorn_config, serve_in_thread
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.params import ImportParams

from ._deterministic import chacha_bytes

BIG = 8 << 20


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, MemoryBlockstore, CID, bytes]]:
    store = MemoryBlockstore()
    data = chacha_bytes("gateway-server-test", BIG)
    root = import_bytes(data, ImportParams(cid_version=1, chunker="size-65536"), store).cid
    with serve_in_thread(store) as url:
        yield url, store, root, data


def _conn(url: str, timeout: float = 20) -> http.client.HTTPConnection:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def _addr(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _get(url: str, path: str) -> tuple[int, bytes]:
    c = _conn(url)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_defaults_follow_the_peer_notes() -> None:
    """Keep-alive 120 s and backlog 4096 (shared/peers/http/README.md), loopback by default."""
    cfg = ServerConfig()
    hc = _hypercorn_config(cfg)
    assert cfg.listen.startswith("127.0.0.1:")
    assert hc.keep_alive_timeout >= 120 and hc.backlog >= 4096 and hc.keep_alive_max_requests >= 100_000


def test_large_car_streams_whole_and_verifies(served: tuple[str, MemoryBlockstore, CID, bytes]) -> None:
    url, _, root, data = served
    status, body = _get(url, f"/ipfs/{root}?format=car")
    assert status == 200
    sections = list(CarV1Reader(io.BytesIO(body)))
    leaves = [s.data for s in sections if CID.from_bytes(s.cid).codec == 0x55]
    assert b"".join(leaves) == data  # raw leaves in DFS order = the file


def test_plan_streams_in_bounded_pieces(served: tuple[str, MemoryBlockstore, CID, bytes]) -> None:
    """The CAR body is produced lazily in pieces of about 1 MiB, never as one buffer."""
    _, store, root, _ = served
    plan = plan_response(store, GatewayRequest("GET", f"/ipfs/{root}".encode(), b"format=car"))
    assert plan.status == 200 and plan.stream is not None and plan.body == b""
    sizes = [len(p) for p in plan.stream]
    assert sum(sizes) > BIG and max(sizes) < _CHUNK_BYTES + (70 << 10) and len(sizes) > 2


def test_slow_reader_does_not_stall_others(served: tuple[str, MemoryBlockstore, CID, bytes]) -> None:
    """A client that asks for 8 MiB and never reads: other requests are still answered at once."""
    url, _, root, _ = served
    slow = socket.create_connection(_addr(url), timeout=10)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        slow.sendall(f"GET /ipfs/{root}?format=car HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.5)  # the server fills the socket buffers and waits on this client
        t0 = time.monotonic()
        for _ in range(20):
            status, _ = _get(url, f"/ipfs/{root}?format=raw")
            assert status == 200
        assert time.monotonic() - t0 < 15
    finally:
        slow.close()


def test_many_concurrent_keep_alive_clients(served: tuple[str, MemoryBlockstore, CID, bytes]) -> None:
    """200 connections at once, each sending 5 requests on one kept-alive socket."""
    url, store, _, _ = served
    leaves = [c for c in store if CID.from_bytes(c).codec == 0x55][:50]
    errors: list[str] = []

    def client(i: int) -> None:
        c = _conn(url, timeout=60)
        try:
            for k in range(5):
                cid = leaves[(i + k) % len(leaves)]
                c.request("GET", f"/ipfs/{CID.from_bytes(cid)}?format=raw")
                r = c.getresponse()
                body = r.read()
                if r.status != 200 or not CID.from_bytes(cid).verify(body) or r.will_close:
                    errors.append(f"{i}/{k}: {r.status}")
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"{i}: {exc!r}")
        finally:
            c.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:5]


def test_idle_connection_outlives_the_library_default(served: tuple[str, MemoryBlockstore, CID, bytes]) -> None:
    """Hypercorn closes idle sockets after 5 s by default; ours stay (Helia reuses them)."""
    url, _, root, _ = served
    c = _conn(url)
    try:
        c.request("GET", "/ipfs/bafkqaaa?format=raw")
        assert c.getresponse().read() == b""
        sock = c.sock
        time.sleep(6)
        c.request("GET", f"/ipfs/{root}?format=raw")
        r = c.getresponse()
        assert r.status == 200 and r.read() and c.sock is sock  # same socket, not reconnected
    finally:
        c.close()


@pytest.mark.parametrize("garbage", [
    b"\x00\xff garbage\r\n\r\n",
    b"GET /ipfs/" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /ipfs/bafkqaaa?format=raw HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
    b"GET /ipfs/%ff%fe/%00?format=car&entity-bytes=%ff HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /ipfs/bafkqaaa?format=raw&format=car&%zz HTTP/1.1\r\nHost: x\r\nAccept: ;;;,,=\r\n\r\n",
])
def test_hostile_requests_leave_the_server_up(served: tuple[str, MemoryBlockstore, CID, bytes], garbage: bytes) -> None:
    url, _, root, _ = served
    s = socket.create_connection(_addr(url), timeout=10)
    try:
        s.sendall(garbage)
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    except OSError:
        reply = b""
    finally:
        s.close()
    if reply:
        status = int(reply.split(b" ", 2)[1])
        assert status < 500 or status == 501, reply[:200]
    assert _get(url, f"/ipfs/{root}?format=raw")[0] == 200


def test_client_vanishing_mid_car(served: tuple[str, MemoryBlockstore, CID, bytes]) -> None:
    url, _, root, _ = served
    for _ in range(5):
        s = socket.create_connection(_addr(url), timeout=10)
        s.sendall(f"GET /ipfs/{root}?format=car HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        s.recv(1000)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
        s.close()
    assert _get(url, f"/ipfs/{root}?format=raw")[0] == 200



def _raw_exchange(url: str, request: bytes, timeout: float = 10) -> bytes:
    """Send ``request`` as is and read until the server closes (no half-close from our side)."""
    s = socket.create_connection(_addr(url), timeout=timeout)
    try:
        s.sendall(request)
        reply = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (chunk := s.recv(65536)):
            reply += chunk
        return reply
    finally:
        s.close()


# Go's net/http (kubo's gateway), readRequest: a request line whose major version is not 1 gets
# "HTTP/1.1 505 HTTP Version Not Supported: unsupported protocol version" with this body, as
# text/plain with Connection: close, and the connection ends (HTTP/1.x, any minor, is served).
GO_505_BODY = b"505 HTTP Version Not Supported: unsupported protocol version"


@pytest.mark.parametrize("version", [b"HTTP/9.9", b"HTTP/2.5", b"HTTP/0.9", b"HTTP/0.0", b"HTTP/2.0", b"HTTP/3.0"])
@pytest.mark.parametrize("method", [b"GET", b"HEAD"])
def test_unsupported_http_version_is_505_like_go(served: tuple[str, MemoryBlockstore, CID, bytes],
                                                 version: bytes, method: bytes) -> None:
    url, _, root, _ = served
    # no Connection: close from the client, yet the server ends the connection after the 505
    reply = _raw_exchange(url, b"%s /ipfs/%s?format=raw %s\r\nHost: x\r\n\r\n" % (method, str(root).encode(), version))
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0].split(b" ")[:2] == [b"HTTP/1.1", b"505"], reply[:200]
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
    assert headers[b"content-type"] == b"text/plain; charset=utf-8"
    assert headers[b"connection"].lower() == b"close"
    assert body == (b"" if method == b"HEAD" else GO_505_BODY)
    assert _get(url, f"/ipfs/{root}?format=raw")[0] == 200


@pytest.mark.parametrize("version", [b"HTTP/1.0", b"HTTP/1.1", b"HTTP/1.2"])
def test_http_1x_is_served(served: tuple[str, MemoryBlockstore, CID, bytes], version: bytes) -> None:
    url, store, root, _ = served
    reply = _raw_exchange(url, b"GET /ipfs/%s?format=raw %s\r\nHost: x\r\nConnection: close\r\n\r\n"
                          % (str(root).encode(), version))
    assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(store.get(root.bytes)), reply[:200]



def test_h2c_is_still_served(served: tuple[str, MemoryBlockstore, CID, bytes]) -> None:
    """HTTP/2 (prior knowledge) reaches the app as version "2", which is not a request line's X.Y."""
    h2_connection = pytest.importorskip("h2.connection")
    h2_events = pytest.importorskip("h2.events")
    h2_config = pytest.importorskip("h2.config")
    url, store, root, _ = served
    conn = h2_connection.H2Connection(h2_config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "GET"), (":path", f"/ipfs/{root}?format=raw"), (":scheme", "http"),
                          (":authority", "x")], end_stream=True)
    s = socket.create_connection(_addr(url), timeout=10)
    status, body, ended = None, b"", False
    try:
        s.sendall(conn.data_to_send())
        deadline = time.monotonic() + 10
        while not ended and time.monotonic() < deadline and (data := s.recv(65536)):
            for event in conn.receive_data(data):
                if isinstance(event, h2_events.ResponseReceived):
                    status = dict(event.headers)[b":status"]
                elif isinstance(event, h2_events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2_events.StreamEnded):
                    ended = True
            s.sendall(conn.data_to_send())
    finally:
        s.close()
    assert status == b"200" and body == store.get(root.bytes)


@pytest.mark.parametrize("first", [b"HTTP/1.1\r\nHost: x\r\nConnection: close", b"HTTP/1.0\r\nHost: x", b"HTTP/9.9\r\nHost: x"])
def test_request_pipelined_after_the_last_one_leaves_the_server_up(served: tuple[str, MemoryBlockstore, CID, bytes],
                                                                   first: bytes) -> None:
    """A request sent behind one that ends the connection raced Hypercorn's EOF against its error
    answer (trio.BusyResourceError), which ended the whole server within a few tries."""
    url, _, root, _ = served
    cid = str(root).encode()
    pipelined = b"GET /ipfs/%s?format=raw %s\r\n\r\nGET /ipfs/%s?format=raw HTTP/1.1\r\nHost: x\r\n\r\n" % (cid, first, cid)
    deadline = time.monotonic() + 20
    for _ in range(40):
        if time.monotonic() > deadline:
            break
        with contextlib.suppress(OSError):  # the answer to a misbehaving client may be cut short
            _raw_exchange(url, pipelined, timeout=5)
    assert _get(url, f"/ipfs/{root}?format=raw")[0] == 200


def test_uncapped_server_is_guarded_too() -> None:
    """--max-connections 0 (no gate) still keeps one connection's failure to that connection."""
    store = MemoryBlockstore()
    cid = b"\x01\x55\x12\x20" + hashlib.sha256(b"x").digest()
    store.put(cid, b"x")
    path = b"/ipfs/%s?format=raw" % str(CID.from_bytes(cid)).encode()
    pipelined = b"GET %s HTTP/1.0\r\n\r\nGET %s HTTP/1.1\r\nHost: x\r\n\r\n" % (path, path)
    with serve_in_thread(store, ServerConfig(listen="127.0.0.1:0", max_connections=0)) as url:
        deadline = time.monotonic() + 20
        for _ in range(40):
            if time.monotonic() > deadline:
                break
            with contextlib.suppress(OSError):
                _raw_exchange(url, pipelined, timeout=5)
        assert _get(url, path.decode()) == (200, b"x")


# -- the CLI -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["gateway"], "exactly one of --blockstore"),
    (["gateway", "--blockstore", "x", "--car", "y.car"], "exactly one of --blockstore"),
    (["gateway", "--car", "/nonexistent/a.car"], "No such file"),
    (["gateway", "--car"], "exactly one of --blockstore"),
    (["gateway", "a.car"], "CAR files need --car"),
    (["gateway", "--blockstore", "/nonexistent/dir"], "not found"),
    (["gateway", "--blockstore", ".", "--listen", "localhost"], "invalid --listen"),
    (["gateway", "--blockstore", ".", "--listen", "[::1:0"], "invalid --listen"),
    (["gateway", "--blockstore", ".", "--listen", "::1]:0"], "invalid --listen"),
])
def test_cli_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and message in err and "Traceback" not in err


def test_cli_serves_cars(tmp_path: Path) -> None:
    """``pyipld gateway --car A.car B.car`` answers for blocks of both files."""
    from pyipld.car.v1 import CarV1Writer

    cids = []
    for name, payload in (("a", b"first car\n"), ("b", b"second car\n")):
        store = MemoryBlockstore()
        root = import_bytes(payload, ImportParams(cid_version=1), store).cid
        with open(tmp_path / f"{name}.car", "wb") as f:
            w = CarV1Writer(f, [root])
            for c in store:
                w.put(c, store.get(c))
            w.close()
        cids.append((root, payload))
    proc = subprocess.Popen([sys.executable, "-m", "pyipld", "gateway", "--car", str(tmp_path / "a.car"),
                             str(tmp_path / "b.car"), "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise AssertionError(f"gateway exited: {proc.wait()} {proc.stderr.read() if proc.stderr else ''}")
        assert line.startswith("gateway listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        for root, payload in cids:
            assert _get(url, f"/ipfs/{root}?format=raw") == (200, payload)
        assert _get(url, "/ipfs/bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba?format=raw")[0] == 404
    finally:
        proc.terminate()
        proc.communicate(timeout=20)  # waits, and closes the pipes


# -- the request rules never raise, whatever arrives ---------------------------------------------

_SEGMENTS = st.sampled_from([b"ipfs", b"ipns", b"bafkqaaa", b"bafkqaaa%2F", b"QmYdxQx5S72K2or7QaVvjfarGsyYf8powqrcs7uBXEkcJo",
                              b"bafyaabakaieac", b"bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba",
                              b"mAXASIP", b"%ff", b"..", b".", b"", b"a",
                              str(CID(1, 0x70, b"\x00\x03abc")).encode(),  # identity dag-pb holding garbage
                              str(CID(1, 0x71, b"\x00\x02\xa1\x61")).encode(),  # truncated dag-cbor
                              str(CID(1, 0x55, b"\x13\x02ab")).encode()])  # unsupported hash function
_QUERY = st.lists(st.tuples(st.sampled_from(["format", "dag-scope", "entity-bytes", "car-version", "car-dups",
                                             "car-order", "filename", "x"]),
                            st.sampled_from(["raw", "car", "all", "entity", "block", "0:*", "-5:-9", "1", "y", "n",
                                             "dfs", "", "\u00e9", "%zz"])), max_size=5)
_HEADERS = st.lists(st.tuples(st.sampled_from(["accept", "range", "if-none-match", "cache-control"]),
                              st.text(max_size=40)), max_size=4)


@pytest.mark.parametrize("cid", [CID(1, 0x70, b"\x00\x03abc"), CID(1, 0x71, b"\x00\x02\xa1\x61")])
def test_inline_data_that_does_not_decode_is_a_bad_request(cid: CID) -> None:
    """A path below an identity CID whose bytes are not valid dag-pb/dag-cbor: 400, not 500."""
    for query in (b"format=car", b"format=raw"):
        plan = plan_response(MemoryBlockstore(), GatewayRequest("GET", f"/ipfs/{cid}/x".encode(), query))
        assert plan.status == 400 and b"does not decode" in plan.body


@settings(max_examples=300, deadline=None)
@given(method=st.sampled_from(["GET", "HEAD", "POST"]), segments=st.lists(_SEGMENTS, max_size=5),
       query=_QUERY, headers=_HEADERS, raw_tail=st.binary(max_size=20))
def test_plan_never_raises(method: str, segments: list[bytes], query: list[tuple[str, str]],
                           headers: list[tuple[str, str]], raw_tail: bytes) -> None:
    from urllib.parse import urlencode

    store = MemoryBlockstore()
    path = b"/" + b"/".join(segments) + raw_tail
    plan = plan_response(store, GatewayRequest(method, path, urlencode(query).encode(), headers))
    assert 200 <= plan.status < 600 and plan.status != 500
    if plan.stream is not None:
        with contextlib.suppress(PyipldError):  # the stream may abort (the transport closes the connection)
            for _ in plan.stream:
                pass


@pytest.mark.parametrize(("accept", "query", "expected"), [
    ("text/html, application/vnd.ipld.raw", b"", "application/vnd.ipld.raw"),  # the first trustless entry
    ("application/vnd.ipld.car;q=0, application/vnd.ipld.raw", b"", "application/vnd.ipld.raw"),  # q=0: refused
    ("application/vnd.ipld.raw, application/vnd.ipld.car", b"", "application/vnd.ipld.raw"),
    ("application/vnd.ipld.car; version=1; dups=y", b"", "application/vnd.ipld.car; version=1; order=dfs; dups=y"),
    ("application/vnd.ipld.raw", b"format=car&car-dups=y", "application/vnd.ipld.car; version=1; order=dfs; dups=y"),
    ("APPLICATION/VND.IPLD.CAR", b"", "application/vnd.ipld.car; version=1; order=dfs; dups=n"),
])
def test_negotiation(accept: str, query: bytes, expected: str) -> None:
    store = MemoryBlockstore()
    root = import_bytes(b"negotiate me\n", ImportParams(cid_version=1), store).cid
    plan = plan_response(store, GatewayRequest("GET", f"/ipfs/{root}".encode(), query, [("accept", accept)]))
    headers = dict(plan.headers)
    assert plan.status == 200 and headers["content-type"] == expected
    if not query:  # the format came from Accept only: Content-Location names it in the URL
        fmt = "raw" if "raw" in expected else "car"
        assert headers["content-location"].startswith(f"/ipfs/{root}?format={fmt}")
    else:
        assert "content-location" not in headers


def test_cli_gateway_without_hypercorn_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Regression: the ConfigError raised inside trio's nursery came out as an ExceptionGroup traceback."""
    monkeypatch.setitem(sys.modules, "hypercorn", None)
    monkeypatch.setitem(sys.modules, "hypercorn.config", None)
    assert cli.main(["gateway", "--blockstore", str(tmp_path), "--listen", "127.0.0.1:0"]) == 1
    err = capsys.readouterr().err
    assert err == "Error: the gateway server needs Hypercorn: pip install 'pyipld[gateway]'\n"


def _car_of(store: MemoryBlockstore, root: CID, path: Path, corrupt: bytes | None = None) -> Path:
    with open(path, "wb") as fh:
        fh.write(encode_header([root]))
        for cid in store:
            data = store.get(cid)
            if cid == corrupt:
                data = data[:-1] + bytes([data[-1] ^ 1])
            fh.write(encode_varint(len(cid) + len(data)) + cid + data)
    return path


@pytest.mark.parametrize("query", [
    "format=car", "format=car&dag-scope=entity", "format=car&dag-scope=block", "format=car&car-dups=y",
    "format=car&entity-bytes=100000:3000000", "format=car&entity-bytes=-70000:*",
])
def test_car_from_a_mapped_car_is_the_same_bytes(served: tuple[str, MemoryBlockstore, CID, bytes],
                                                  tmp_path: Path, query: str) -> None:
    """Blocks read as views of a mapped CAR (one copy) give the bytes the in-memory store gives."""
    _, store, root, _ = served
    req = GatewayRequest("GET", f"/ipfs/{root}".encode(), query.encode())
    want = b"".join(plan_response(store, req).stream or ())
    with CarBlockstore(_car_of(store, root, tmp_path / "f.car"), verify=False) as car:
        assert car.get_view(root.bytes) is not None
        plan = plan_response(CarSet([car]), req)
        assert plan.stream is not None
        assert b"".join(plan.stream) == want


def test_corrupt_leaf_in_a_mapped_car_aborts_the_stream(served: tuple[str, MemoryBlockstore, CID, bytes],
                                                         tmp_path: Path) -> None:
    """The server still hash-checks blocks it reads as views (docs/gateway.md)."""
    _, store, root, _ = served
    leaf = next(c for c in store if CID.from_bytes(c).codec == 0x55)
    with CarBlockstore(_car_of(store, root, tmp_path / "bad.car", corrupt=leaf), verify=False) as car:
        plan = plan_response(car, GatewayRequest("GET", f"/ipfs/{root}".encode(), b"format=car"))
        assert plan.status == 200 and plan.stream is not None
        with pytest.raises(IntegrityError):
            for _ in plan.stream:
                pass


def test_trusted_source_serves_views_unhashed(served: tuple[str, MemoryBlockstore, CID, bytes],
                                              tmp_path: Path) -> None:
    """``--hash-on-read=false`` (TrustedSource): the same bytes, still as views of the mapped CAR; a
    corrupt leaf goes out as stored (kubo's HashOnRead=false) and the client's check is what catches it."""
    _, store, root, _ = served
    req = GatewayRequest("GET", f"/ipfs/{root}".encode(), b"format=car")
    want = b"".join(plan_response(store, req).stream or ())
    with CarBlockstore(_car_of(store, root, tmp_path / "f.car"), verify=False) as car:
        trusted = TrustedSource(CarSet([car]))
        leaf = next(c for c in store if CID.from_bytes(c).codec == 0x55)
        assert isinstance(get_verified_view(trusted, leaf), memoryview)
        assert b"".join(plan_response(trusted, req).stream or ()) == want
    leaf = next(c for c in store if CID.from_bytes(c).codec == 0x55)
    with CarBlockstore(_car_of(store, root, tmp_path / "bad.car", corrupt=leaf), verify=False) as car:
        plan = plan_response(TrustedSource(car), req)
        assert plan.status == 200 and plan.stream is not None
        body = b"".join(plan.stream)  # no IntegrityError on the server side
    with pytest.raises(IntegrityError, match=str(CID.from_bytes(leaf))):
        list(CarV1Reader(io.BytesIO(body)))


@pytest.mark.parametrize(("flag", "trusted"), [([], False), (["--hash-on-read=false"], True),
                                              (["--hash-on-read"], False), (["--hash-on-read=0"], True)])
def test_cli_hash_on_read_flag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flag: list[str],
                               trusted: bool) -> None:
    seen: list[object] = []

    async def fake_serve(source: object, config: object, *, task_status: object) -> None:
        seen.append(source)
        task_status.started([])  # type: ignore[attr-defined]

    from pyipld.http import server

    monkeypatch.setattr(server, "serve", fake_serve)
    assert cli.main(["gateway", "--blockstore", str(tmp_path), *flag]) == 0
    assert isinstance(seen[0], TrustedSource) is trusted
