"""Trustless gateway client: request rules, verification, fallback, hostile gateways, CLI.

Conformance answers and mutations run over ``httpx.MockTransport`` (no sockets);
hostile behaviour that needs a real connection (stalls, endless bodies, redirects,
cut connections) runs against the loopback server in ``tests/_gateway.py``.
"""

from __future__ import annotations

import gc
import os
import random
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipld import cli
from pyipld.blockstore import MemoryBlockstore
from pyipld.car.v1 import encode_header
from pyipld.cid import CID
from pyipld.errors import (
    ConfigError,
    GatewayError,
    GatewayTimeoutError,
    IncompleteResponseError,
    IntegrityError,
    LimitExceededError,
    NotFoundError,
    PathNotFoundError,
    PyipldError,
)
from pyipld.http import GatewayBlockSource, GatewayClient
from pyipld.http._request import (
    car_request,
    gateways_from_environment,
    http_multiaddr_to_url,
    normalize_gateway_url,
    parse_car_content_type,
    raw_request,
)
from pyipld.http.fetch import fetch_car, fetch_dag, iter_file, iter_scope, open_file
from pyipld.http.traversal import parse_entity_bytes
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.params import ImportParams

from ._gateway import MODES, raw_cid, section, serve
from ._gateway_fixtures import (
    A_SUBDIR,
    ASCII,
    B_SUBDIR,
    DOCUMENT,
    F0,
    F2,
    HELLO,
    SHARD_1,
    SHARD_685,
    A,
    B,
    C,
    D,
    E,
    F,
    L,
    M,
    hamt_all_ok,
    load_store,
    names,
)

# -- pure request/response rules ------------------------------------------------------------------


def test_raw_request_sends_format_and_accept() -> None:
    req = raw_request(ASCII)
    assert req.path_query == f"/ipfs/{ASCII}?format=raw"
    assert dict(req.headers) == {"Accept": "application/vnd.ipld.raw"}


def test_car_request_asks_dfs_without_duplicates_both_ways() -> None:
    req = car_request(CID.decode(A), ("sub dir", "a/b"), dag_scope="entity", entity_bytes=(-5, None))
    assert req.path_query == (f"/ipfs/{A}/sub%20dir/a%2Fb?format=car&dag-scope=entity&entity-bytes=-5:*"
                              "&car-version=1&car-order=dfs&car-dups=n")
    assert dict(req.headers) == {"Accept": "application/vnd.ipld.car; version=1; order=dfs; dups=n"}


@pytest.mark.parametrize(("value", "order", "dups"), [
    ("application/vnd.ipld.car; version=1; order=dfs; dups=n", "dfs", False),
    ("application/vnd.ipld.car; version=1; order=unk; dups=y", "unk", True),
    ("application/vnd.ipld.car", "unk", None),  # missing order = unknown (spec §9.2)
    ("Application/VND.ipld.car;order=DFS", "dfs", None),
    ("application/vnd.ipld.car; version=1; order=weird", "unk", None),
])
def test_car_content_type(value: str, order: str, dups: bool | None) -> None:
    params = parse_car_content_type(value)
    assert (params.order, params.dups) == (order, dups)


@pytest.mark.parametrize("value", [None, "", "application/vnd.ipld.raw", "text/plain",
                                   "application/vnd.ipld.car; version=2"])
def test_car_content_type_refused(value: str | None) -> None:
    with pytest.raises(GatewayError):
        parse_car_content_type(value)


@pytest.mark.parametrize(("maddr", "url"), [  # shared/spec/routing-v1.md §4.1 (boxo ExtractHTTPAddress)
    ("/dns4/example.com/tcp/443/https", "https://example.com"),
    ("/ip4/1.2.3.4/tcp/8443/tls/http", "https://1.2.3.4:8443"),
    ("/ip4/127.0.0.1/tcp/8080/http", "http://127.0.0.1:8080"),
    ("/dns/example.com/https", "https://example.com"),
    ("/ip4/127.0.0.1/tcp/8080/http/p2p/12D3KooWQAwYDBu4nzLf4GJsw4yV7kswQg1gxzwYbkwrZcQUTrqy", "http://127.0.0.1:8080"),
    ("/ip6/::1/tcp/80/http", "http://[::1]"),
    ("/ip4/8.8.8.8/tcp/80/http", None),  # plain http only to loopback/private IPs
    ("/dns4/example.com/tcp/80/http", None),
    ("/ip4/127.0.0.1/tcp/4001", None),
    ("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWQAwYDBu4nzLf4GJsw4yV7kswQg1gxzwYbkwrZcQUTrqy", None),
])
def test_http_multiaddr(maddr: str, url: str | None) -> None:
    assert http_multiaddr_to_url(maddr) == url


def test_gateway_urls_normalized() -> None:
    assert normalize_gateway_url("http://127.0.0.1:8080/ipfs/") == "http://127.0.0.1:8080"
    assert normalize_gateway_url(" https://gw.example/prefix/ ") == "https://gw.example/prefix"
    for bad in ("ftp://x", "127.0.0.1:8080", "http://x/?a=1"):
        with pytest.raises(PyipldError):
            normalize_gateway_url(bad)


@pytest.mark.parametrize("bad", ["http://[::1", "http://127.0.0.1:abc", "http://127.0.0.1:99999", "http://:80"])
def test_malformed_gateway_urls_are_config_errors(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: these reached urllib's or httpx's own ValueError, a traceback on the CLI."""
    from pyipld import cli

    with pytest.raises(ConfigError):
        normalize_gateway_url(bad)
    for flag in ("--gateway", "--routing"):
        assert cli.main(["cat", flag, bad, "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("Error: ") and err.count("\n") == 1, err


def test_gateways_from_environment(tmp_path: Path) -> None:
    """IPIP-280: IPFS_GATEWAY first (whitespace-separated), else the first gateway file; never a default."""
    env = {"IPFS_GATEWAY": "http://127.0.0.1:1 http://127.0.0.1:2/ipfs", "HOME": str(tmp_path)}
    assert gateways_from_environment(env) == ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    assert gateways_from_environment({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "x")}) == [] or \
        Path("/etc/ipfs/gateway").exists()
    (tmp_path / ".ipfs").mkdir()
    (tmp_path / ".ipfs" / "gateway").write_text("http://127.0.0.1:8080\r\nhttp://127.0.0.1:8081\n")
    assert gateways_from_environment({"HOME": str(tmp_path)}) == ["http://127.0.0.1:8080", "http://127.0.0.1:8081"]
    ipfs_path = tmp_path / "repo"
    ipfs_path.mkdir()
    (ipfs_path / "gateway").write_text("http://127.0.0.1:9999\n")
    assert gateways_from_environment({"HOME": str(tmp_path), "IPFS_PATH": str(ipfs_path)}) == [
        "http://127.0.0.1:9999"]


# -- a canned gateway over MockTransport -----------------------------------------------------------


def car_bytes(blocks: list[tuple[bytes, bytes]], root: str = A) -> bytes:
    return encode_header([CID.decode(root)]) + b"".join(section(c, d) for c, d in blocks)


def canned(body: bytes | Callable[[httpx.Request], httpx.Response],
           ctype: str = "application/vnd.ipld.car; version=1; order=dfs; dups=n") -> GatewayClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if callable(body):
            return body(request)
        return httpx.Response(200, headers={"content-type": ctype}, content=iter([body]))

    return GatewayClient(["http://gw.test"], transport=httpx.MockTransport(handler), timeout=5)


@pytest.fixture(scope="module")
def fixtures() -> MemoryBlockstore:
    return load_store()


def blocks_of(store: MemoryBlockstore, cids: list[str]) -> list[tuple[bytes, bytes]]:
    return [(CID.decode(c).bytes, store.get(CID.decode(c).bytes)) for c in cids]


# (id, path, dag-scope, entity-bytes, the correct ordered answer); gateway-conformance
# trustless_gateway_car_test.go @ 22c7644 (shared/spec/trustless-gateway.md §10.3)
CONFORMANCE = [
    ("P1", f"{A}/subdir/ascii.txt", "all", None, [A, A_SUBDIR, ASCII]),
    ("P2", f"{C}/685.txt", "all", None, [C, SHARD_685, M, *L]),
    ("P3", f"{DOCUMENT}/files/single", "all", None, [DOCUMENT, HELLO]),
    ("B1", f"{A}/subdir", "block", None, [A, A_SUBDIR]),
    ("B2", f"{A}/subdir/ascii.txt", "block", None, [A, A_SUBDIR, ASCII]),
    ("B3", f"{C}/1.txt", "block", None, [C, SHARD_1, M]),
    ("E1", A, "entity", None, [A]),
    ("E3", f"{B}/subdir/ascii.txt", "entity", None, [B, B_SUBDIR, ASCII]),
    ("E4", f"{B}/subdir/multiblock.txt", "entity", None, [B, B_SUBDIR, M, *L]),
    ("E5", f"{D}/document", "entity", None, [D, DOCUMENT]),
    ("A1", f"{B}/subdir", "all", None, [B, B_SUBDIR, ASCII, HELLO, M, *L]),
    ("A2", f"{B}/subdir/multiblock.txt", "all", None, [B, B_SUBDIR, M, *L]),
    ("EB1", F, "entity", "0:1000", [F, F0]),  # f1 is absent from the fixture: not needed
    ("EB2", F, "entity", "2200:*", [F, F2]),
    ("EB3", f"{B}/subdir/multiblock.txt", "entity", "0:*", [B, B_SUBDIR, M, *L]),
    ("EB5", M, "entity", "512:*", [M, L[2], L[3], L[4]]),
    ("EB6", M, "entity", "512:1023", [M, L[2], L[3]]),
    ("EB7", M, "entity", "512:-256", [M, L[2], L[3]]),
    ("EB8", M, "entity", "-5:*", [M, L[3], L[4]]),
    ("EB9", M, "entity", "-9999:*", [M, *L]),
    ("EB10", M, "entity", "-9999:-3", [M, L[0], L[1], L[2], L[3]]),
    ("EB11", M, "entity", "0:0", [M, L[0]]),
    ("O2", E, "all", None, [E, ASCII, HELLO, M, *L]),
]

# How a correct gateway may shape the same answer: boxo's dfs/n; Helia's unk/y (here
# reversed and sent twice); no order at all plus a block nobody asked for.
VARIANTS = {
    "dfs-n": ("application/vnd.ipld.car; version=1; order=dfs; dups=n", lambda b, extra: b),
    "unk-y": ("application/vnd.ipld.car; version=1; order=unk; dups=y", lambda b, extra: b[::-1] + b),
    "bare-extra": ("application/vnd.ipld.car", lambda b, extra: [extra, *b[::-1]]),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize(("case", "path", "scope", "entity", "expected"), CONFORMANCE,
                         ids=[c[0] for c in CONFORMANCE])
def test_client_accepts_conformance_answers(fixtures: MemoryBlockstore, variant: str, case: str, path: str,
                                            scope: str, entity: str | None, expected: list[str]) -> None:
    ctype, shape = VARIANTS[variant]
    extra = (raw_cid(b"unrequested"), b"unrequested")
    body = car_bytes(shape(blocks_of(fixtures, expected), extra))
    got = list(iter_scope(canned(body, ctype), path, dag_scope=scope,  # type: ignore[arg-type]
                          entity_bytes=parse_entity_bytes(entity) if entity else None))
    assert names([c for c, _ in got]) == expected
    assert all(CID.from_bytes(c).verify(d) for c, d in got)


def test_client_accepts_hamt_entity(fixtures: MemoryBlockstore) -> None:
    """E2: the HAMT root and every sub-shard (237 blocks)."""
    from pyipld.http.traversal import CarScope, iter_scope_blocks

    correct = list(iter_scope_blocks(fixtures, CarScope(CID.decode(C), (), "entity")))
    got = list(iter_scope(canned(car_bytes(correct)), C, dag_scope="entity"))
    assert hamt_all_ok(names([c for c, _ in got]))


def test_missing_path_segment_is_typed(fixtures: MemoryBlockstore) -> None:
    """P4: a 200 with the blocks up to the parent of a missing name: PathNotFoundError, not short data."""
    body = car_bytes(blocks_of(fixtures, [A, A_SUBDIR]))
    with pytest.raises(PathNotFoundError):
        list(iter_scope(canned(body), f"{A}/subdir/i-do-not-exist"))


def test_identity_root_needs_no_blocks() -> None:
    """O4: an identity CID's CAR has zero blocks; its bytes come from the CID."""
    inlined = "bafkqaf3imvwgy3zaneqgc3janfxgy2lomvscay3jmqfa"
    client = canned(car_bytes([], inlined))
    assert list(iter_scope(client, inlined)) == []
    assert client.get_block(inlined) == b"hello i am inlined cid\n"


def test_cut_car_with_200_is_incomplete(fixtures: MemoryBlockstore) -> None:
    """Helia ends a CAR early when a deeper block is missing (peers/http README): the client must notice."""
    body = car_bytes(blocks_of(fixtures, [B, B_SUBDIR, M, L[0], L[1]]))
    with pytest.raises(IncompleteResponseError):
        list(iter_scope(canned(body), f"{B}/subdir/multiblock.txt", dag_scope="entity"))
    with pytest.raises(IncompleteResponseError):
        list(iter_scope(canned(body[:-3]), f"{B}/subdir/multiblock.txt", dag_scope="entity"))


# Any answer that differs from the correct one in any block is rejected.
MUTATIONS = ("flip", "drop", "replace", "truncate-block", "duplicate-cid-other-data")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from([c for c in CONFORMANCE if c[0] not in ("EB1", "EB2")]),
       mutation=st.sampled_from(MUTATIONS), index=st.integers(0, 1000), where=st.integers(0, 1 << 20),
       shuffle=st.booleans())
def test_any_wrong_block_is_rejected(fixtures: MemoryBlockstore, case: tuple, mutation: str, index: int,
                                     where: int, shuffle: bool) -> None:
    _, path, scope, entity, expected = case
    blocks = blocks_of(fixtures, expected)
    i = index % len(blocks)
    cid, data = blocks[i]
    if mutation == "flip":
        data = bytearray(data)
        data[where % len(data)] ^= 1 << (where % 8)
        blocks[i] = (cid, bytes(data))
    elif mutation == "drop":
        del blocks[i]
    elif mutation == "replace":  # a valid block, but for another CID
        other = data + b"\0"
        blocks[i] = (raw_cid(other), other)
    elif mutation == "truncate-block":
        blocks[i] = (cid, data[: where % len(data)])
    else:
        blocks[i] = (cid, data + b"\0")
    if shuffle:
        random.Random(where).shuffle(blocks)
    ctype = "application/vnd.ipld.car; version=1; order=unk" if shuffle else \
        "application/vnd.ipld.car; version=1; order=dfs; dups=n"
    with pytest.raises(PyipldError):
        list(iter_scope(canned(car_bytes(blocks), ctype), path, dag_scope=scope,
                        entity_bytes=parse_entity_bytes(entity) if entity else None))


# -- real loopback gateways: honest, hostile, several ----------------------------------------------

DATA = random.Random(7).randbytes(1_200_000)


@pytest.fixture(scope="module")
def file_store() -> tuple[MemoryBlockstore, CID]:
    store = MemoryBlockstore()
    result = import_bytes(DATA, ImportParams(cid_version=1, chunker="size-65536"), store)
    return store, result.cid


def test_raw_blocks_and_file(file_store: tuple[MemoryBlockstore, CID]) -> None:
    store, root = file_store
    with serve(store) as gw, GatewayBlockSource([gw.url], timeout=5) as source:
        assert source.get(root.bytes) == store.get(root.bytes)
        assert source.has(root.bytes)
        assert not source.has(raw_cid(b"nowhere"))
        client = source.client
        assert b"".join(iter_file(client, root)) == DATA
        assert b"".join(iter_file(client, str(root), offset=70_000, length=200_000)) == DATA[70_000:270_000]
        sink = MemoryBlockstore()
        result = fetch_dag(client, str(root), sink)
        assert result.cid == root and len(sink) == len(store)
        heads = [h for path, h in gw.requests]
        assert all("keep-alive" in h.get("connection", "keep-alive") for h in heads)


def test_unknown_order_with_duplicates_is_spooled(file_store: tuple[MemoryBlockstore, CID]) -> None:
    """order=unk answers (here reversed, every block twice) are parked, then used: same bytes, bounded RAM."""
    store, root = file_store
    with serve(store, "unk") as gw, GatewayClient([gw.url], timeout=5) as client:
        assert b"".join(iter_file(client, root)) == DATA


def test_random_access_file_fetches_only_the_range(file_store: tuple[MemoryBlockstore, CID]) -> None:
    store, root = file_store
    with serve(store) as gw, GatewayClient([gw.url], timeout=5) as client, \
            open_file(client, str(root), buffering=0) as f:
        before = client.stats.bytes_received
        f.seek(600_000)
        assert f.read(100_000) == DATA[600_000:700_000]
        got = client.stats.bytes_received - before
        assert got < 100_000 + 3 * 65_536 + 4096  # the 2-3 leaves covering it, not the file
        f.seek(-10, os.SEEK_END)
        assert f.read() == DATA[-10:]
        f.seek(0)
        assert f.read(5) == DATA[:5]


def hostile_cases() -> list[str]:
    return [m for m in MODES if m != "missing"]


@pytest.mark.parametrize("mode", hostile_cases())
def test_hostile_gateway_typed_error_and_fallback(file_store: tuple[MemoryBlockstore, CID], mode: str,
                                                  tmp_path: Path) -> None:
    """Each misbehaviour is a typed error, leaves nothing at the output name, and the next gateway is used."""
    store, root = file_store
    expected = {"flip": IntegrityError, "truncate": IncompleteResponseError, "swap": IncompleteResponseError,
                "oversized": LimitExceededError, "content-type": GatewayError, "endless": GatewayError,
                "stall": GatewayTimeoutError, "redirect": GatewayError,
                "trickle": GatewayTimeoutError}[mode]  # trickle: each gap < timeout, the rate < min_rate
    out = tmp_path / "out.car"
    with serve(store, mode) as bad, serve(store) as good:
        with GatewayClient([bad.url], timeout=0.5, max_waste_bytes=4 << 20) as client:
            with pytest.raises(expected):
                fetch_car(client, str(root), out)
            assert not out.exists() and not list(tmp_path.iterdir())
        with GatewayClient([bad.url, good.url], timeout=0.5, max_waste_bytes=4 << 20) as client:
            assert fetch_car(client, str(root), out).cid == root
            assert out.exists()
            assert client.stats.failures.get(bad.url) == 1
            assert client.ordered_gateways()[0] == good.url  # the bad one backs off


RAW_EXPECTED = {"flip": IntegrityError, "swap": IntegrityError, "oversized": LimitExceededError,
                "content-type": GatewayError, "endless": LimitExceededError, "stall": GatewayTimeoutError,
                "redirect": GatewayError, "truncate": GatewayError, "missing": NotFoundError,
                "trickle": GatewayTimeoutError}


@pytest.mark.parametrize("mode", sorted(RAW_EXPECTED))
def test_hostile_raw_blocks(file_store: tuple[MemoryBlockstore, CID], mode: str) -> None:
    store, root = file_store
    with serve(store, mode) as bad, serve(store) as good:
        with GatewayClient([bad.url], timeout=0.5) as client, pytest.raises(RAW_EXPECTED[mode]):
            client.get_block(root.bytes)
        with GatewayClient([bad.url, good.url], timeout=0.5) as client:
            assert client.get_block(root.bytes) == store.get(root.bytes)
        with GatewayClient([bad.url, good.url], timeout=0.5, race=True) as client:
            assert client.get_block(root.bytes) == store.get(root.bytes)


class _SlowConnect(httpcore.NetworkBackend):
    """Connecting to ``port`` takes ``delay`` seconds: a distant gateway, still connecting when the race is won."""

    def __init__(self, inner: httpcore.NetworkBackend, port: int, delay: float) -> None:
        self.inner, self.port, self.delay = inner, port, delay

    def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        if port == self.port:
            time.sleep(self.delay)
        return self.inner.connect_tcp(host, port, *args, **kwargs)

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return self.inner.connect_unix_socket(*args, **kwargs)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def _race_threads_alive(wait: float) -> list[str]:
    deadline = time.monotonic() + wait
    for t in threading.enumerate():
        if t.name.startswith("pyipld-gw"):
            t.join(max(0.0, deadline - time.monotonic()))
    return [t.name for t in threading.enumerate() if t.name.startswith("pyipld-gw") and t.is_alive()]


def test_close_after_a_race_leaves_no_socket_open(file_store: tuple[MemoryBlockstore, CID]) -> None:
    """The loser of a race was still connecting when the winner returned and close() closed httpx: it
    connected afterwards, outside the closed pool, and its socket was never closed (the ResourceWarning
    that the garbage collector found, now and then, during test_hostile_raw_blocks)."""
    store, root = file_store
    gc.collect()
    with serve(store) as far, serve(store) as near, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = GatewayClient([far.url, near.url], timeout=5, race=True)
        pool = client._http._transport._pool  # type: ignore[attr-defined]
        pool._network_backend = _SlowConnect(pool._network_backend, int(far.url.rsplit(":", 1)[1]), 0.3)
        assert client.get_block(root.bytes) == store.get(root.bytes)
        client.close()
        assert _race_threads_alive(wait=2.0) == []  # no request thread outlives close()
        time.sleep(0.5)  # (before the fix the loser connected during this)
        del client, pool
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_a_stalled_loser_is_ended_when_the_race_is_won(file_store: tuple[MemoryBlockstore, CID]) -> None:
    """A loser stalled mid-body is ended when the winner returns (its socket shut down), so close()
    need not wait out the timeout and no thread is left reading."""
    store, root = file_store
    with serve(store, "stall") as bad, serve(store) as good:
        client = GatewayClient([bad.url, good.url], timeout=20, race=True)
        try:
            assert client.get_block(root.bytes) == store.get(root.bytes)
        finally:
            start = time.monotonic()
            client.close()
            took = time.monotonic() - start
        assert _race_threads_alive(wait=2.0) == []
        assert took < 10, took  # not the 20 s timeout


def test_all_gateways_failing_lists_each(file_store: tuple[MemoryBlockstore, CID]) -> None:
    store, root = file_store
    with serve(store, "flip") as a, serve(store, "content-type") as b, \
            GatewayClient([a.url, b.url], timeout=0.5) as client, pytest.raises(GatewayError) as info:
        client.get_block(root.bytes)
    assert [g for g, _ in info.value.errors] == [a.url, b.url]


def test_resume_mid_stream_on_next_gateway(file_store: tuple[MemoryBlockstore, CID]) -> None:
    """A CAR that breaks after some verified blocks continues on the next gateway; bytes are not repeated."""
    store, root = file_store
    with serve(store, "truncate") as bad, serve(store) as good, \
            GatewayClient([bad.url, good.url], timeout=2) as client:
        assert b"".join(iter_file(client, root)) == DATA


# -- CLI -------------------------------------------------------------------------------------------


def test_cli_get_and_cat_through_gateways(file_store: tuple[MemoryBlockstore, CID], tmp_path: Path,
                                          capfdbinary: pytest.CaptureFixture[bytes],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store, root = file_store
    monkeypatch.chdir(tmp_path)
    with serve(store, "flip") as bad, serve(store) as good:
        assert cli.main(["get", str(root), "--gateway", bad.url, "-o", "bad.bin", "-q"]) == 1
        assert not (tmp_path / "bad.bin").exists()
        assert b"Error: " in capfdbinary.readouterr().err
        assert cli.main(["get", str(root), "--gateway", bad.url, "--gateway", good.url, "-o", "f.bin", "-q"]) == 0
        assert (tmp_path / "f.bin").read_bytes() == DATA
        capfdbinary.readouterr()
        assert cli.main(["cat", str(root), "--gateway", good.url, "-o", "1000", "-l", "50", "-q"]) == 0
        assert capfdbinary.readouterr().out == DATA[1000:1050]
        monkeypatch.setenv("IPFS_GATEWAY", good.url)
        assert cli.main(["cat", str(root), "-q"]) == 0
        assert capfdbinary.readouterr().out == DATA


def test_cli_fetch_draws_no_progress_off_a_terminal(file_store: tuple[MemoryBlockstore, CID],
                                                    capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    """Like kubo, a fetch draws progress only on a terminal: piped stderr stays clean without -q."""
    store, root = file_store
    with serve(store) as good:
        assert cli.main(["cat", str(root), "--gateway", good.url]) == 0
    captured = capfdbinary.readouterr()
    assert captured.out == DATA
    assert captured.err == b""


def test_cli_no_source_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capfd: pytest.CaptureFixture[str]) -> None:
    """Without --gateway, --routing, --peer, IPFS_GATEWAY or a gateway file, nothing is contacted."""
    monkeypatch.delenv("IPFS_GATEWAY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("IPFS_PATH", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    if Path("/etc/ipfs/gateway").exists():
        pytest.skip("this machine has /etc/ipfs/gateway")
    assert cli.main(["cat", ASCII]) == 1
    assert "--gateway URL" in capfd.readouterr().err




def test_client_against_our_server(fixtures: MemoryBlockstore, file_store: tuple[MemoryBlockstore, CID]) -> None:
    """The gateway server of this project (pyipld.http.server) and this client agree: paths, scopes, ranges."""
    pytest.importorskip("hypercorn")
    from pyipld.http.server import serve_in_thread

    store, root = file_store
    both = MemoryBlockstore()
    for source in (store, fixtures):
        for cid in source:
            both.put(cid, source.get(cid))
    with serve_in_thread(both) as url, GatewayClient([url], timeout=10) as client:
        for case, path, scope, entity, expected in CONFORMANCE:
            got = iter_scope(client, path, dag_scope=scope,  # type: ignore[arg-type]
                             entity_bytes=parse_entity_bytes(entity) if entity else None)
            assert names([c for c, _ in got]) == expected, case
        assert b"".join(iter_file(client, root, offset=123_456, length=300_000)) == DATA[123_456:423_456]
        with pytest.raises(NotFoundError):  # P4: our server answers 404 (Helia: 200 with the parent blocks)
            list(iter_scope(client, f"{A}/subdir/i-do-not-exist"))
        assert client.get_block(root.bytes) == store.get(root.bytes)


def test_parked_blocks_spill_to_disk_not_ram(file_store: tuple[MemoryBlockstore, CID]) -> None:
    """order=unk (blocks reversed, twice): RAM for early blocks stays under memory_bytes, the rest goes to disk;
    order=dfs parks nothing."""
    from pyipld.http._request import car_request
    from pyipld.http.car_fetch import CarStreamSource
    from pyipld.unixfs.reader import UnixFSReader

    store, root = file_store
    for mode, spills in (("unk", True), (None, False)):
        with serve(store, mode) as gw, GatewayClient([gw.url], timeout=5) as client, \
                CarStreamSource(client, car_request(root, dag_scope="entity"), memory_bytes=200_000) as source:
            assert b"".join(UnixFSReader(source, root, verify=False).iter_range()) == DATA
            assert source.parked.peak_ram_bytes <= 200_000
            assert (source.parked.spilled_bytes > 500_000) is spills
            assert spills or source.parked.peak_ram_bytes == 0


def test_cat_offset_past_the_end_is_empty(file_store: tuple[MemoryBlockstore, CID]) -> None:
    """A gateway answers 400 to entity-bytes past the end; like `ipfs cat`, the answer is no bytes."""
    store, root = file_store
    with serve(store) as gw, GatewayClient([gw.url], timeout=5) as client:
        assert b"".join(iter_file(client, root, offset=len(DATA) + 10)) == b""
        assert b"".join(iter_file(client, root, offset=len(DATA) - 3, length=100)) == DATA[-3:]
        assert gw.requests[0][0].count("entity-bytes") == 1


def test_block_source_defaults_to_the_users_gateway(file_store: tuple[MemoryBlockstore, CID], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    store, root = file_store
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("IPFS_PATH", raising=False)
    monkeypatch.delenv("IPFS_GATEWAY", raising=False)
    if not Path("/etc/ipfs/gateway").exists():
        with pytest.raises(PyipldError, match="no gateway configured"):
            GatewayBlockSource()
    with serve(store) as gw:
        monkeypatch.setenv("IPFS_GATEWAY", gw.url)
        with GatewayBlockSource() as source:
            assert source.get(root.bytes) == store.get(root.bytes)


def test_retry_after_and_back_off() -> None:
    """429 with Retry-After: that gateway waits that long (capped), others are tried first meanwhile."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        if request.url.host == "busy.test":
            return httpx.Response(429, headers={"retry-after": "30"})
        return httpx.Response(200, headers={"content-type": "application/vnd.ipld.raw"}, content=iter([b"hello"]))

    hello = CID(1, 0x55, bytes([0x12, 0x20]) + __import__("hashlib").sha256(b"hello").digest())
    with GatewayClient(["http://busy.test", "http://ok.test"], transport=httpx.MockTransport(handler),
                       backoff_s=0.01, max_backoff_s=20) as client:
        assert client.get_block(hello) == b"hello"
        assert client.ordered_gateways() == ["http://ok.test", "http://busy.test"]
        waits = {g: h.retry_at for g, h in client._health.items()}
        import time as _time

        assert 19 < waits["http://busy.test"] - _time.monotonic() <= 20  # Retry-After 30, capped at 20
        assert client.get_block(hello) == b"hello"
    assert calls == ["busy.test", "ok.test", "ok.test"]


def test_gzip_encoded_answers_are_decoded(fixtures: MemoryBlockstore) -> None:
    """httpx offers gzip; a gateway that uses it must still be understood (regression: raw bytes were parsed)."""
    import gzip

    body = gzip.compress(car_bytes(blocks_of(fixtures, [A, A_SUBDIR, ASCII])))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([body]), headers={
            "content-type": "application/vnd.ipld.car; version=1; order=dfs; dups=n", "content-encoding": "gzip"})

    client = GatewayClient(["http://gw.test"], transport=httpx.MockTransport(handler))
    assert names([c for c, _ in iter_scope(client, f"{A}/subdir/ascii.txt")]) == [A, A_SUBDIR, ASCII]


# -- a missing name, proven -------------------------------------------------------------------------


def _dir_store(drop_leaf: bool = False) -> tuple[MemoryBlockstore, CID, CID]:
    from pyipld.unixfs.directory import build_directory

    store = MemoryBlockstore()
    leaf = import_bytes(b"hello\n", None, MemoryBlockstore() if drop_leaf else store)
    d = CID.from_bytes(build_directory([(b"x", leaf.cid.bytes, leaf.tsize)], None, store).cid)
    return store, d, leaf.cid


@pytest.mark.parametrize("call", ["open_file", "fetch_car", "fetch_dag", "iter_file", "resolve"])
def test_a_missing_name_is_a_verified_path_not_found(call: str, tmp_path: Path) -> None:
    """Regression: a name a directory lacks came out as NotFoundError "(waiting for block ROOT) not
    found on any gateway", naming a block the gateway has. The gateway's 404 proves nothing, so the
    client walks the path from raw blocks, each verified, and says what kubo says."""
    from pyipld.http.fetch import resolve

    store, d, _ = _dir_store()
    calls = {"open_file": lambda c: open_file(c, f"{d}/nope"),
             "fetch_car": lambda c: fetch_car(c, f"{d}/nope", tmp_path / "o.car"),
             "fetch_dag": lambda c: fetch_dag(c, f"{d}/nope", MemoryBlockstore()),
             "iter_file": lambda c: b"".join(iter_file(c, f"{d}/nope")),
             "resolve": lambda c: resolve(c, f"{d}/nope")}
    with serve(store) as gw, GatewayClient([gw.url], timeout=5) as client, \
            pytest.raises(PathNotFoundError) as info:
        calls[call](client)
    assert str(info.value) == f'no link named "nope" under {d}'
    assert not (tmp_path / "o.car").exists()


def test_an_unprovable_absence_stays_not_found(tmp_path: Path) -> None:
    """The directory holds the name but no gateway has its block: not a PathNotFoundError."""
    store, d, _ = _dir_store(drop_leaf=True)
    with serve(store) as gw, GatewayClient([gw.url], timeout=5) as client, \
            pytest.raises(NotFoundError) as info:
        open_file(client, f"{d}/x")
    assert not isinstance(info.value, PathNotFoundError)


def test_cli_missing_name_over_a_gateway_prints_kubos_error(capsys: pytest.CaptureFixture[str]) -> None:
    store, d, _ = _dir_store()
    with serve(store) as gw:
        assert cli.main(["cat", f"{d}/nope", "--gateway", gw.url]) == 1
    assert capsys.readouterr().err == f'Error: no link named "nope" under {d}\n'


def _paced_body(monkeypatch: pytest.MonkeyPatch, gap_s: float, pieces: int) -> Any:
    """iter_body over a body that waits ``gap_s`` on the network before each 10-byte piece."""
    import time
    import types

    import pyipld.http.client as client_module

    def body(_response: Any, _url: str) -> Iterator[bytes]:
        for _ in range(pieces):
            time.sleep(gap_s)
            yield b"0123456789"

    monkeypatch.setattr(client_module, "response_body", body)
    return types.SimpleNamespace(request=types.SimpleNamespace(url="http://gw.test/ipfs/x"))


def test_a_trickling_body_falls_below_the_rate_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    response = _paced_body(monkeypatch, 0.05, 40)  # 200 bytes/s
    with GatewayClient(["http://gw.test"], timeout=0.3, min_rate=1000) as client, \
            pytest.raises(GatewayTimeoutError, match="below min_rate=1000 bytes/s"):
        for _ in client.iter_body(response):
            pass


def test_a_slow_consumer_is_not_a_slow_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the time spent waiting for the gateway counts, not the time the caller keeps the chunk."""
    import time

    response = _paced_body(monkeypatch, 0.0, 12)
    with GatewayClient(["http://gw.test"], timeout=0.3, min_rate=1000) as client:
        got = b""
        for chunk in client.iter_body(response):
            got += chunk
            time.sleep(0.05)  # the caller's work: 0.6 s in all, 200 bytes/s as the caller sees it
    assert len(got) == 120


def test_min_rate_must_not_be_negative() -> None:
    with pytest.raises(ConfigError, match="min_rate"):
        GatewayClient(["http://gw.test"], min_rate=-1)
    with pytest.raises(ConfigError, match="min_rate"):
        GatewayClient(["http://gw.test"], min_rate=float("nan"))
