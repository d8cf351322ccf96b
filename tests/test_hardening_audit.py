"""Issue 10 audit: hostile inputs on code paths that landed after the first hardening pass.

Each test failed on the code before its fix (noted per test).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld import cli
from pyipld.cid import CID, RAW, CidBuilder
from pyipld.errors import GatewayError, LimitExceededError, ManifestError
from pyipld.filecoin.pack import pack
from pyipld.filecoin.pack_parallel import pack_parallel
from pyipld.http import _decode, routing
from pyipld.http._decode import ACCEPT_ENCODING, MAX_PIECE, decode_body
from pyipld.http._request import MAX_BLOCK_BYTES, raw_request
from pyipld.http.client import GatewayClient
from pyipld.http.routing import RoutingClient


def _one_error_line(err: str) -> None:
    assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in err, err[-600:]


# -- car pack: the manifest a previous run left in OUTDIR is input too ---------------------------


@pytest.fixture
def packed(tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}").write_bytes(bytes([i]) * 3000)
    out = tmp_path / "out"
    pack([str(src)], out, target_size=1 << 20)
    return src, out, json.loads((out / "manifest.json").read_bytes())


def _resume_mutations(doc: dict[str, Any]) -> dict[str, object]:
    partial = {**doc, "complete": False}
    return {
        "not json": b"garbage",
        "not utf-8": b"\xff\xfe{}",
        "deep": b"[" * 100_000 + b"]" * 100_000,
        "a list": [1, 2],
        "no cars": {k: v for k, v in doc.items() if k != "cars"},
        "cars not a list": {**doc, "cars": {"name": "x"}},
        "car not a dict": {**doc, "cars": ["pack-00000.car"]},
        "car name traversal": {**doc, "cars": [{**doc["cars"][0], "name": "../../etc/passwd"}]},
        "car size a string": {**doc, "cars": [{**doc["cars"][0], "car_size": "1"}]},
        "file not a dict": {**doc, "files": [None]},
        "resume missing": {**partial, "resume": None},
        "resume not ints": {**partial, "resume": {"file": "0", "item": 0}},
        "resume past the inputs": {**partial, "resume": {"file": 99, "item": 0}},
        "resume negative": {**partial, "resume": {"file": 0, "item": -1}},
        "resume item past the file": {**partial, "resume": {"file": 0, "item": 99}},
    }


def test_car_pack_on_a_malformed_manifest_is_one_error_line(packed: tuple[Path, Path, dict[str, Any]],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # Before: JSONDecodeError, TypeError, KeyError, UnicodeDecodeError, RecursionError tracebacks,
    # and a resume item past the end of a file was silently skipped.
    src, out, doc = packed
    manifest = out / "manifest.json"
    good = manifest.read_bytes()
    for what, bad in _resume_mutations(doc).items():
        manifest.write_bytes(bad if isinstance(bad, bytes) else json.dumps(bad).encode())
        rc = cli.main(["car", "pack", "--target-size", "1MiB", "-q", "-o", str(out), str(src)])
        err = capsys.readouterr().err
        assert rc == 1, (what, err)
        _one_error_line(err)
        assert "manifest.json" in err, (what, err)
    manifest.write_bytes(good)
    assert cli.main(["car", "pack", "--target-size", "1MiB", "-q", "-o", str(out), str(src)]) == 0


def test_distributed_pack_checks_the_manifest_too(packed: tuple[Path, Path, dict[str, Any]]) -> None:
    src, out, doc = packed
    manifest = out / "manifest.json"
    with ThreadPoolExecutor(2) as pool:
        for what, bad in _resume_mutations(doc).items():
            manifest.write_bytes(bad if isinstance(bad, bytes) else json.dumps(bad).encode())
            with pytest.raises(ManifestError):
                pack_parallel([str(src)], out, pool, target_size=1 << 20)
                pytest.fail(what)


# -- gateway and routing clients: a compressed answer is inflated a bounded piece at a time -------

_BOMB_BYTES = 64 << 20


def _gzip_bomb(n: int = _BOMB_BYTES, wbits: int = 31) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(1 << 20)
    return b"".join(comp.compress(zeros) for _ in range(n >> 20)) + comp.flush()


def test_gateway_client_inflates_a_gzip_bomb_in_bounded_pieces() -> None:
    # Before: httpx inflated each received chunk at once (here one 64 MiB piece from 64 KB).
    bomb = _gzip_bomb()
    assert len(bomb) < 100_000
    cid = CidBuilder(version=1).cid_bytes(RAW, b"x")

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept-encoding"] == ACCEPT_ENCODING  # never br/zstd we could not bound
        return httpx.Response(200, content=iter([bomb]), headers={
            "content-type": "application/vnd.ipld.raw", "content-encoding": "gzip"})

    with GatewayClient(["http://gw.test"], transport=httpx.MockTransport(handler)) as client:
        largest = total = 0
        with client.open("http://gw.test", raw_request(cid)) as response:
            for piece in client.iter_body(response):
                largest, total = max(largest, len(piece)), total + len(piece)
                if total > 4 * MAX_PIECE:
                    break
        assert largest <= MAX_PIECE
        before = client.stats.bytes_received
        with pytest.raises(LimitExceededError):
            client.fetch_raw("http://gw.test", cid)
        assert client.stats.bytes_received - before <= MAX_BLOCK_BYTES + MAX_PIECE


def test_routing_client_inflates_a_gzip_bomb_in_bounded_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _gzip_bomb()
    seen: list[int] = []
    real = _decode.response_body

    def counting(*args: Any, **kwargs: Any) -> Any:
        for piece in real(*args, **kwargs):
            seen.append(len(piece))
            yield piece

    monkeypatch.setattr(routing, "response_body", counting)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([bomb]), headers={
            "content-type": "application/x-ndjson", "content-encoding": "gzip"})

    with RoutingClient(["http://router.test"], transport=httpx.MockTransport(handler), timeout=2) as client:
        assert client.find_providers(CidBuilder(version=1).cid_bytes(RAW, b"x")) == []
    assert seen and max(seen) <= MAX_PIECE and sum(seen) <= 2 * MAX_PIECE


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=20_000), encoding=st.sampled_from(["gzip", "deflate", "raw-deflate", "identity"]),
       cuts=st.lists(st.integers(0, 30_000), max_size=8), max_piece=st.integers(1, 5000))
def test_decode_body_matches_zlib_for_any_chunking(data: bytes, encoding: str, cuts: list[int],
                                                   max_piece: int) -> None:
    wbits = {"gzip": 31, "deflate": 15, "raw-deflate": -15, "identity": 0}[encoding]
    if wbits:
        comp = zlib.compressobj(6, zlib.DEFLATED, wbits)
        body = comp.compress(data) + comp.flush()
    else:
        body = data
    bounds = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
    chunks = [body[a:b] for a, b in itertools.pairwise(bounds)]
    header = {"raw-deflate": "deflate", "identity": None}.get(encoding, encoding)
    pieces = list(decode_body(iter(chunks), header, "http://x", max_piece=max_piece))
    assert b"".join(pieces) == data
    if wbits:
        assert all(len(p) <= max_piece for p in pieces)


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, gzip", "compress"])
def test_unasked_encodings_are_refused(encoding: str) -> None:
    with pytest.raises(GatewayError, match="unsupported Content-Encoding"):
        list(decode_body(iter([b"abc"]), encoding, "http://x"))


def test_a_corrupt_gzip_body_is_a_gateway_error() -> None:
    with pytest.raises(GatewayError, match="does not decode"):
        list(decode_body(iter([b"\x1f\x8b\x08\x00garbage-garbage"]), "gzip", "http://x"))


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
@pytest.mark.parametrize("keep", [1, 10, -8, -1])
def test_a_cut_compressed_body_is_a_gateway_error(encoding: str, keep: int) -> None:
    """A body that stops before its compressed stream ends (a dropped connection, a gateway that
    truncates) is an error, not a shorter document (it used to decode to a prefix, silently)."""
    wbits = {"gzip": 31, "deflate": 15, "raw-deflate": -15}[encoding]
    comp = zlib.compressobj(6, zlib.DEFLATED, wbits)
    body = comp.compress(b'{"Providers": []}' * 500) + comp.flush()
    cut = body[:keep]  # the first bytes, or all but the last
    header = "deflate" if encoding == "raw-deflate" else encoding
    with pytest.raises(GatewayError, match="cut short|does not decode"):
        list(decode_body(iter([cut]), header, "http://x"))
    assert b"".join(decode_body(iter([body[:5], body[5:]]), header, "http://x")) == b'{"Providers": []}' * 500
    assert list(decode_body(iter([]), header, "http://x")) == []  # no body at all (e.g. a 204) stays empty


# -- fsspec ipfs:// over a local CAR that another process truncates ------------------------------

_TRUNCATE_WHILE_OPEN = """
import os, sys
from pyipld.blockstore import MemoryBlockstore
from pyipld.car.export import export_dag
from pyipld.fs.sources import MappedCarSource
from pyipld.unixfs.importer import import_bytes
store = MemoryBlockstore()
root = import_bytes(bytes(range(256)) * 12_288, None, store).cid
path = sys.argv[1]
with open(path, "wb") as f:
    export_dag(store, root, f)
source = MappedCarSource(path)
assert all(source.get(c) == store.get(c) for c in store)
os.truncate(path, 100_000)
try:
    for c in store:
        source.get(c)
except Exception as exc:
    print(type(exc).__name__, exc)
source.close()
"""


def test_a_local_car_truncated_while_open_is_a_typed_error(tmp_path: Path) -> None:
    # Before: the CAR was mapped, and the next read after the truncation died of SIGBUS (rc -7).
    env = {k: v for k, v in os.environ.items() if k != "PYIPLD_MMAP"}
    proc = subprocess.run([sys.executable, "-c", _TRUNCATE_WHILE_OPEN, str(tmp_path / "a.car")], capture_output=True,
                          text=True, timeout=60, check=False, env=env, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.startswith("CarError ") and "changed while it was read" in proc.stdout, proc.stdout


def test_mapped_reads_are_still_available_on_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyipld.blockstore import MemoryBlockstore
    from pyipld.car.export import export_dag
    from pyipld.fs.sources import MappedCarSource
    from pyipld.unixfs.importer import import_bytes

    store = MemoryBlockstore()
    root = import_bytes(bytes(range(256)) * 4096, None, store).cid
    with open(tmp_path / "a.car", "wb") as f:
        export_dag(store, root, f)
    for mapped in ("1", "0"):
        monkeypatch.setenv("PYIPLD_MMAP", mapped)
        source = MappedCarSource(tmp_path / "a.car")
        assert (source._mm is not None) == (mapped == "1")
        assert all(source.get(c) == store.get(c) and bytes(source.get_view(c)) == store.get(c) for c in store)
        source.close()


# -- pyipld gateway: idle connections cannot use up the descriptors -------------------------------


def _raw_get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        try:
            return s.recv(64)
        except OSError:
            return b""


def test_gateway_caps_connections_and_replaces_idle_ones() -> None:
    from pyipld.blockstore import MemoryBlockstore
    from pyipld.http.server import ServerConfig, serve_in_thread
    from pyipld.unixfs.importer import import_bytes

    store = MemoryBlockstore()
    root = import_bytes(b"hello", None, store).cid
    config = ServerConfig(listen="127.0.0.1:0", max_connections=4, idle_grace=0.5)
    with serve_in_thread(store, config) as url:
        port = int(url.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        try:
            for s in idle:
                s.sendall(b"GET /ipfs/")  # a request line never finished
            time.sleep(0.2)
            assert not _raw_get(port, f"/ipfs/{root}?format=raw").startswith(b"HTTP/1.1 200")  # full, none idle yet
            time.sleep(0.6)
            assert _raw_get(port, f"/ipfs/{root}?format=raw").startswith(b"HTTP/1.1 200")  # replaced the idlest
        finally:
            for s in idle:
                s.close()
        time.sleep(0.2)
        assert _raw_get(port, f"/ipfs/{root}?format=raw").startswith(b"HTTP/1.1 200")


@pytest.mark.skipif(sys.platform != "linux", reason="ulimit -n in a child shell")
def test_gateway_outlives_more_idle_connections_than_descriptors(tmp_path: Path) -> None:
    # Before: with RLIMIT_NOFILE 128, 150 half-sent requests held every descriptor for the keep-alive
    # time (120 s): an honest client timed out, and trio logged an EMFILE traceback per accept.
    from pyipld.blockstore import MemoryBlockstore
    from pyipld.car.export import export_dag
    from pyipld.unixfs.importer import import_bytes

    store = MemoryBlockstore()
    root = import_bytes(b"hello", None, store).cid
    car = tmp_path / "a.car"
    with open(car, "wb") as f:
        export_dag(store, root, f)

    argv = [sys.executable, "-m", "pyipld", "gateway", "--car", str(car), "--listen", "127.0.0.1:0",
            "--max-connections", "64", "--idle-grace", "1"]
    proc = subprocess.Popen(["sh", "-c", 'ulimit -n 128 && exec "$@"', "sh", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    idle: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = int(line.strip().rsplit(":", 1)[1].split("/")[0])
        for _ in range(150):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            with contextlib.suppress(OSError):
                s.sendall(b"GET /ipfs/")
            idle.append(s)
        time.sleep(1.5)
        assert _raw_get(port, f"/ipfs/{root}?format=raw").startswith(b"HTTP/1.1 200")
        assert proc.poll() is None
    finally:
        for s in idle:
            s.close()
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "Too many open files" not in err and "Traceback" not in err, err[-2000:]


# -- gateway requests with numbers past int()'s digit limit ---------------------------------------


def test_gateway_numbers_past_the_int_digit_limit_are_answered() -> None:
    # Before: ValueError ("Exceeds the limit (4300 digits)") out of plan_response, a 500 and a traceback.
    import dag_cbor

    from pyipld.blockstore import MemoryBlockstore
    from pyipld.cid import DAG_CBOR
    from pyipld.http.gateway import GatewayRequest, plan_response
    from pyipld.unixfs.importer import import_bytes

    store = MemoryBlockstore()
    root = import_bytes(b"hello" * 100, None, store).cid
    listed = dag_cbor.encode({"a": [1, 2, 3]})
    node = CidBuilder(version=1).cid_bytes(DAG_CBOR, listed)
    store.put(node, listed)
    node_text = str(CID.from_bytes(node))
    big = "9" * 5000
    expect = {f"bytes={big}-": 416, f"bytes=0-{big}": 206, f"bytes=-{big}": 206, "bytes=\u0661-\u0662": 200}
    for value, status in expect.items():
        plan = plan_response(store, GatewayRequest("GET", f"/ipfs/{root}".encode(), b"format=raw", [("range", value)]))
        assert plan.status == status, (value[:20], plan.status)
        if status == 206:
            assert plan.body == store.get(root.bytes)
    for fmt in (b"format=raw", b"format=car"):
        plan = plan_response(store, GatewayRequest("GET", f"/ipfs/{node_text}/a/{big}".encode(), fmt))
        assert plan.status == 404, plan.body[:200]


# -- pyipld add URL: a body that breaks off is an error, not a shorter file -----------------------

_ANSWERS = {
    "/whole": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "/short": b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10,
    "/chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n",
}


def test_add_url_whose_body_breaks_off_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    # Before: the 10 bytes of a 100,000-byte Content-Length were added with exit 0 (kubo: unexpected EOF),
    # and a broken chunked body was an http.client.IncompleteRead traceback.
    import threading

    from pyipld.unixfs.importer import import_bytes

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        for _ in range(len(_ANSWERS)):
            conn, _ = server.accept()
            with conn:
                path = conn.recv(65536).split(b" ")[1].decode()
                conn.sendall(_ANSWERS[path])

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        assert cli.main(["add", "-Q", f"http://127.0.0.1:{port}/whole"]) == 0
        assert capsys.readouterr().out.strip() == str(import_bytes(b"hello").cid)
        for path in ("/short", "/chunk"):
            assert cli.main(["add", f"http://127.0.0.1:{port}{path}"]) == 1
            captured = capsys.readouterr()
            _one_error_line(captured.err)
            assert "unexpected EOF" in captured.err and "added" not in captured.out
    finally:
        thread.join(timeout=10)
        server.close()


def test_gateway_replaces_a_connection_that_stopped_reading_its_answer() -> None:
    from pyipld.blockstore import MemoryBlockstore
    from pyipld.http.server import ServerConfig, serve_in_thread
    from pyipld.unixfs.importer import import_bytes

    store = MemoryBlockstore()
    big = import_bytes(os.urandom(24 << 20), None, store).cid
    small = import_bytes(b"hello", None, store).cid
    config = ServerConfig(listen="127.0.0.1:0", max_connections=2, idle_grace=0.5)
    with serve_in_thread(store, config) as url:
        port = int(url.rsplit(":", 1)[1])
        stuck = []
        try:
            for _ in range(2):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", port))
                s.sendall(f"GET /ipfs/{big}?format=car HTTP/1.1\r\nHost: x\r\n\r\n".encode())  # never read
                stuck.append(s)
            time.sleep(1.5)  # both answers are blocked on a full socket well past the grace
            assert _raw_get(port, f"/ipfs/{small}?format=raw").startswith(b"HTTP/1.1 200")
        finally:
            for s in stuck:
                s.close()


@pytest.mark.parametrize("argv", [["--max-connections", "-1"], ["--idle-grace", "-1"], ["--idle-grace", "nan"],
                                  ["--keep-alive", "nan"], ["--keep-alive", "-1"], ["--keep-alive", "0"],
                                  ["--keep-alive", "inf"], ["--backlog", "3000000000"], ["--backlog", "-1"]])
def test_gateway_limit_flags_are_checked(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Regression (--keep-alive): NaN or -1 started a server that died with its first client
    (Hypercorn's idle timer raised), 0 one that closed every connection unanswered."""
    assert cli.main(["gateway", "--blockstore", "nowhere", *argv]) == 1
    _one_error_line(capsys.readouterr().err)


def test_gateway_backlog_past_a_c_int_is_an_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: --backlog 3000000000 reached listen() and ended in an OverflowError traceback."""
    argv = ["gateway", "--blockstore", str(tmp_path), "--listen", "127.0.0.1:0", "--backlog", "3000000000"]
    assert cli.main(argv) == 1
    _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("fields", [{"keep_alive_seconds": float("nan")}, {"keep_alive_seconds": -1.0},
                                    {"keep_alive_seconds": 0.0}, {"idle_grace": float("nan")},
                                    {"max_connections": -1}, {"backlog": 2**31}, {"backlog": -1}])
def test_server_config_refuses_values_the_server_cannot_run_with(fields: dict[str, float]) -> None:
    from pyipld.errors import ConfigError
    from pyipld.http.server import ServerConfig

    with pytest.raises(ConfigError):
        ServerConfig(**fields)  # type: ignore[arg-type]
