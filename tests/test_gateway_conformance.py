"""The trustless parts of ipfs/gateway-conformance, run against ``pyipld gateway`` over HTTP.

Ported from gateway-conformance @ 22c76440f8b5929bd14ff08bf79cb2f83669b629:
``tests/trustless_gateway_car_test.go`` (pathing, dag-scope, entity-bytes, order/dups,
format precedence; every CAR case twice — ``?format=car`` and ``Accept:
application/vnd.ipld.car`` — with the standard CAR headers of ``tooling/helpers/car.go``)
and ``tests/trustless_gateway_raw_test.go`` (raw blocks, headers, ranges). Expected block
lists: shared/spec/trustless-gateway.md §10.3-§10.4. The server runs in-process on
127.0.0.1 (port 0); requests use the standard library's HTTP client.
"""

from __future__ import annotations

import http.client
import io
import re
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from pyipld._cli.gateway import CarSet
from pyipld.car.blockstore import CarBlockstore
from pyipld.car.v1 import CarV1Reader
from pyipld.cid import CID
from pyipld.http.server import serve_in_thread

from ._gateway_fixtures import (
    A_SUBDIR,
    ASCII,
    B_SUBDIR,
    DOCUMENT,
    F0,
    F2,
    G_ASCII,
    G_DIR,
    HELLO,
    INLINED,
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
    all_fixture_cars,
    hamt_all_ok,
)

CAR = "application/vnd.ipld.car"
RAW = "application/vnd.ipld.raw"


class Client:
    """One kept-alive connection; reconnects after a response that closed it."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def get(self, path: str, headers: dict[str, str] | None = None,
            method: str = "GET") -> tuple[int, http.client.HTTPMessage, bytes]:
        try:
            self.conn.request(method, path, headers=headers or {})
            resp = self.conn.getresponse()
            body = resp.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            raise
        return resp.status, resp.headers, body


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """The server over the fixture CARs as ``pyipld gateway --car …`` opens them (CIDv0/v1 by multihash)."""
    with ExitStack() as stack:
        stores = [stack.enter_context(CarBlockstore(path, verify=False)) for path in all_fixture_cars()]
        with serve_in_thread(CarSet(stores)) as url:
            c = Client(url)
            yield c
            c.conn.close()


def car_blocks(body: bytes) -> list[str]:
    return [str(CID.from_bytes(s.cid)) for s in CarV1Reader(io.BytesIO(body))]


def check_car_headers(headers: http.client.HTTPMessage) -> None:
    """tooling/helpers/car.go carResponseHeaders."""
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Accept-Ranges"] == "none"
    assert CAR in headers["Content-Type"]
    assert re.search(r'attachment; filename=".*\.car"', headers["Content-Disposition"])
    assert headers["Etag"]


def both_forms(path: str, query: str) -> list[tuple[str, dict[str, str]]]:
    """checkBothFormatURLParameterAndAcceptHeaderCAR: ?format=car, and Accept without format."""
    q = f"&{query}" if query else ""
    plain = f"{path}?{query}" if query else path
    return [(f"{path}?format=car{q}", {}), (plain, {"Accept": CAR})]


# (id, path, query, expected ordered blocks); trustless_gateway_car_test.go
CAR_CASES = [
    ("P1 pathing through UnixFS directory", f"/ipfs/{A}/subdir/ascii.txt", "", [A, A_SUBDIR, ASCII]),
    ("P2 pathing through HAMT", f"/ipfs/{C}/685.txt", "", [C, SHARD_685, M, *L]),
    ("P3 pathing through DAG-CBOR", f"/ipfs/{DOCUMENT}/files/single", "", [DOCUMENT, HELLO]),
    ("B1 dag-scope=block directory", f"/ipfs/{A}/subdir", "dag-scope=block", [A, A_SUBDIR]),
    ("B2 dag-scope=block file", f"/ipfs/{A}/subdir/ascii.txt", "dag-scope=block", [A, A_SUBDIR, ASCII]),
    ("B3 dag-scope=block through HAMT", f"/ipfs/{C}/1.txt", "dag-scope=block", [C, SHARD_1, M]),
    ("E1 dag-scope=entity directory", f"/ipfs/{A}", "dag-scope=entity", [A]),
    ("E3 dag-scope=entity file", f"/ipfs/{B}/subdir/ascii.txt", "dag-scope=entity", [B, B_SUBDIR, ASCII]),
    ("E4 dag-scope=entity chunked file", f"/ipfs/{B}/subdir/multiblock.txt", "dag-scope=entity",
     [B, B_SUBDIR, M, *L]),
    ("E5 dag-scope=entity DAG-CBOR", f"/ipfs/{D}/document", "dag-scope=entity", [D, DOCUMENT]),
    ("A1 dag-scope=all directory", f"/ipfs/{B}/subdir", "dag-scope=all", [B, B_SUBDIR, ASCII, HELLO, M, *L]),
    ("A2 dag-scope=all chunked file", f"/ipfs/{B}/subdir/multiblock.txt", "dag-scope=all", [B, B_SUBDIR, M, *L]),
    ("EB3 entity-bytes full file", f"/ipfs/{B}/subdir/multiblock.txt", "dag-scope=entity&entity-bytes=0:*",
     [B, B_SUBDIR, M, *L]),
    ("EB5 middle to end", f"/ipfs/{M}", "dag-scope=entity&entity-bytes=512:*", [M, L[2], L[3], L[4]]),
    ("EB6 middle", f"/ipfs/{M}", "dag-scope=entity&entity-bytes=512:1023", [M, L[2], L[3]]),
    ("EB7 middle, negative end", f"/ipfs/{M}", "dag-scope=entity&entity-bytes=512:-256", [M, L[2], L[3]]),
    ("EB8 suffix", f"/ipfs/{M}", "dag-scope=entity&entity-bytes=-5:*", [M, L[3], L[4]]),
    ("EB9 negative beyond the start", f"/ipfs/{M}", "dag-scope=entity&entity-bytes=-9999:*", [M, *L]),
    ("EB10 negative both", f"/ipfs/{M}", "dag-scope=entity&entity-bytes=-9999:-3", [M, *L[:4]]),
    ("EB11 first byte", f"/ipfs/{M}", "dag-scope=entity&entity-bytes=0:0", [M, L[0]]),
]


@pytest.mark.parametrize(("name", "path", "query", "expected"), CAR_CASES, ids=[c[0].split()[0] for c in CAR_CASES])
def test_car_cases(client: Client, name: str, path: str, query: str, expected: list[str]) -> None:
    for url, headers in both_forms(path, query):
        status, resp_headers, body = client.get(url, headers)
        assert status == 200, (url, body)
        check_car_headers(resp_headers)
        assert "order=dfs" in resp_headers["Content-Type"] and "version=1" in resp_headers["Content-Type"]
        assert car_blocks(body) == expected, url


@pytest.mark.parametrize("query", ["dag-scope=entity", "dag-scope=entity&entity-bytes=0:*"])
def test_hamt_entity(client: Client, query: str) -> None:
    """E2 / EB4: the HAMT root and every sub-shard, in order; entity-bytes ignored on a directory."""
    for url, headers in both_forms(f"/ipfs/{C}", query):
        status, resp_headers, body = client.get(url, headers)
        assert status == 200
        check_car_headers(resp_headers)
        assert hamt_all_ok(car_blocks(body))


def test_entity_bytes_avoid_missing_block(client: Client) -> None:
    """EB1 / EB2: ranges that avoid the absent f1 succeed, with exactly the needed blocks (set)."""
    fv1 = str(CID.decode(F).to_v1())  # MustGetCidWithCodec(0x70): the request names the CIDv1
    for root in (F, fv1):
        for query, leaf in (("0:1000", F0), ("2200:*", F2)):
            for url, headers in both_forms(f"/ipfs/{root}", f"dag-scope=entity&entity-bytes={query}"):
                status, resp_headers, body = client.get(url, headers)
                assert status == 200
                check_car_headers(resp_headers)
                got = {CID.decode(c).multihash for c in car_blocks(body)}
                assert got == {CID.decode(F).multihash, CID.decode(leaf).multihash}


def test_missing_child_block_cuts_the_stream(client: Client) -> None:
    """A block missing below the terminal: 200, then the body ends without the final chunk."""
    with pytest.raises(http.client.IncompleteRead) as info:
        client.get(f"/ipfs/{F}?format=car")
    partial = info.value.partial
    assert car_blocks(partial) == [F, F0]  # the sections before the missing f1, whole
    status, _, _ = client.get(f"/ipfs/{A}?format=car&dag-scope=block")  # the server goes on
    assert status == 200


def test_missing_path_segment(client: Client) -> None:
    """P4: 404 is one of the accepted answers."""
    for url, headers in both_forms(f"/ipfs/{A}/subdir/i-do-not-exist", ""):
        status, _, _ = client.get(url, headers)
        assert status == 404


DUP_LIST = [E, ASCII, ASCII, HELLO, M, *L]


def test_order_and_dups(client: Client) -> None:
    """O1, O2, O3, O5, O6, O7 (trustless-car-gateway-optional)."""
    accept = f"{CAR}; version=1; order=dfs; dups=y"
    status, h, body = client.get(f"/ipfs/{E}", {"Accept": accept})  # O1
    assert status == 200 and "order=dfs" in h["Content-Type"] and "dups=y" in h["Content-Type"]
    assert car_blocks(body) == DUP_LIST
    status, h, body = client.get(f"/ipfs/{E}", {"Accept": f"{CAR}; version=1; order=dfs; dups=n"})  # O2
    assert status == 200 and "dups=n" in h["Content-Type"]
    assert car_blocks(body) == list(dict.fromkeys(DUP_LIST))
    status, h, body = client.get(f"/ipfs/{E}", {"Accept": f"{CAR}; version=1; order=unk"})  # O3
    assert status == 200 and "order=" in h["Content-Type"] and set(car_blocks(body)) == set(DUP_LIST)
    status, h, body = client.get(f"/ipfs/{E}?format=car", {"Accept": accept})  # O5
    assert "dups=y" in h["Content-Type"] and car_blocks(body) == DUP_LIST
    status, h, _ = client.get(f"/ipfs/{E}?format=car&car-order=dfs", {"Accept": f"{CAR}; order=unk"})  # O6
    assert status == 200 and "order=dfs" in h["Content-Type"]
    status, h, body = client.get(f"/ipfs/{E}?format=car&car-dups=y", {"Accept": f"{CAR}; dups=n"})  # O7
    assert status == 200 and "dups=y" in h["Content-Type"] and car_blocks(body) == DUP_LIST


def test_identity_cid(client: Client) -> None:
    """O4: an inlined CID gives a CAR with no blocks."""
    status, h, body = client.get(f"/ipfs/{INLINED}", {"Accept": f"{CAR}; dups=y"})
    assert status == 200 and "dups=y" in h["Content-Type"]
    assert car_blocks(body) == []


def test_format_precedence(client: Client) -> None:
    """F1 / F2 (IPIP-523: format wins over Accept)."""
    status, h, body = client.get(f"/ipfs/{G_DIR}?format=car", {"Accept": RAW})
    assert status == 200 and CAR in h["Content-Type"] and car_blocks(body)[0] == G_DIR
    status, h, body = client.get(f"/ipfs/{G_DIR}?format=raw", {"Accept": CAR})
    assert status == 200 and h["Content-Type"] == RAW
    assert CID.decode(G_DIR).verify(body)


# -- trustless_gateway_raw_test.go ---------------------------------------------------------------

def test_raw_block(client: Client) -> None:
    """R1-R5."""
    for url, headers in ((f"/ipfs/{G_DIR}?format=raw", {}), (f"/ipfs/{G_DIR}", {"Accept": RAW})):
        status, _, body = client.get(url, headers)
        assert status == 200 and len(body) == 57 and CID.decode(G_DIR).verify(body)
    status, h, body = client.get(f"/ipfs/{G_ASCII}", {"Accept": RAW})
    assert status == 200 and h["Content-Type"] == RAW and h["Content-Length"] == "31" == str(len(body))
    assert "attachment;" in h["Content-Disposition"] and h["X-Content-Type-Options"] == "nosniff"
    assert CID.decode(G_ASCII).verify(body)
    assert h["Etag"] and h["X-Ipfs-Path"] == f"/ipfs/{G_ASCII}" and G_ASCII in h["X-Ipfs-Roots"]
    directives = dict((d.split("=") + [""])[:2] for d in h["Cache-Control"].replace(" ", "").split(","))
    assert "public" in directives and "immutable" in directives and int(directives["max-age"]) >= 29030400
    status, h, _ = client.get(f"/ipfs/{G_ASCII}?filename=foobar.bin", {"Accept": RAW})
    assert "attachment;" in h["Content-Disposition"] and 'filename="foobar.bin' in h["Content-Disposition"]
    assert h["Content-Location"]  # the format came from Accept only


@pytest.mark.parametrize(("range_header", "expected"), [("bytes=0-9", (0, 9)), ("bytes=5-", (5, 30)),
                                                         ("bytes=-4", (27, 30)), ("bytes=20-100", (20, 30))])
def test_raw_single_range(client: Client, range_header: str, expected: tuple[int, int]) -> None:
    """R6: one range → 206 with Content-Range and the slice."""
    _, _, whole = client.get(f"/ipfs/{G_ASCII}", {"Accept": RAW})
    status, h, body = client.get(f"/ipfs/{G_ASCII}", {"Accept": RAW, "Range": range_header})
    start, end = expected
    assert status == 206 and h["Content-Range"] == f"bytes {start}-{end}/31" and body == whole[start : end + 1]


def test_raw_ranges_edge_cases(client: Client) -> None:
    """R7: several ranges → 200 with the whole block; unsatisfiable → 416."""
    status, _, body = client.get(f"/ipfs/{G_ASCII}", {"Accept": RAW, "Range": "bytes=0-1, 5-6"})
    assert status == 200 and len(body) == 31
    status, h, _ = client.get(f"/ipfs/{G_ASCII}", {"Accept": RAW, "Range": "bytes=31-"})
    assert status == 416 and h["Content-Range"] == "bytes */31"


# -- status codes and the rest of the request rules ------------------------------------------------

@pytest.mark.parametrize(("url", "headers", "status"), [
    ("/ipfs/not-a-cid?format=raw", {}, 400),
    ("/ipfs/?format=raw", {}, 400),
    (f"/ipfs/{A}", {}, 400),  # strict trustless: neither format nor Accept
    (f"/ipfs/{A}", {"Accept": "text/html"}, 406),
    (f"/ipfs/{A}?format=dag-json", {}, 406),
    (f"/ipfs/{A}?format=pdf", {}, 400),
    (f"/ipfs/{A}?format=car&car-version=2", {}, 400),
    (f"/ipfs/{A}?format=car&dag-scope=some", {}, 400),
    (f"/ipfs/{A}?format=car&car-dups=maybe", {}, 400),
    (f"/ipfs/{A}?format=car&car-order=bfs", {}, 400),
    (f"/ipfs/{M}?format=car&entity-bytes=5:2", {}, 400),
    (f"/ipfs/{M}?format=car&entity-bytes=1026:*", {}, 400),  # starts past the end
    (f"/ipfs/{M}?format=car&entity-bytes=x", {}, 400),
    ("/ipfs/bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba?format=raw", {}, 404),
    ("/ipfs/bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba?format=car", {}, 404),
    ("/ipfs/bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba?format=raw",
     {"Cache-Control": "only-if-cached"}, 412),
    (f"/ipfs/{ASCII}?format=raw", {"Cache-Control": "only-if-cached"}, 200),
    (f"/ipfs/{A}/subdir/ascii.txt/deeper?format=car", {}, 404),
    ("/ipns/example.com?format=car", {}, 501),
    ("/", {}, 404),
])
def test_status_codes(client: Client, url: str, headers: dict[str, str], status: int) -> None:
    got, h, _ = client.get(url, headers)
    assert got == status, url
    assert h["X-Content-Type-Options"] == "nosniff"


def test_probe(client: Client) -> None:
    """bafkqaaa: raw → 200 empty; car → a CAR rooted at bafkqaaa without blocks; HEAD too."""
    for method in ("GET", "HEAD"):
        status, h, body = client.get("/ipfs/bafkqaaa?format=raw", method=method)
        assert status == 200 and body == b"" and h["Content-Length"] == "0"
    status, h, body = client.get("/ipfs/bafkqaaa?format=car")
    assert status == 200
    reader = CarV1Reader(io.BytesIO(body))
    assert [str(r) for r in reader.roots] == ["bafkqaaa"] and list(reader) == []


def test_head_and_etags(client: Client) -> None:
    status, h, body = client.get(f"/ipfs/{M}?format=car", method="HEAD")
    assert status == 200 and body == b"" and CAR in h["Content-Type"]
    tags = set()
    for query in ("", "&dag-scope=entity", "&dag-scope=block", "&entity-bytes=0:10", "&car-dups=y"):
        _, h, _ = client.get(f"/ipfs/{M}?format=car{query}", method="HEAD")
        tags.add(h["Etag"])
    assert len(tags) == 5  # the ETag changes with scope, range and dups
    _, h, _ = client.get(f"/ipfs/{M}?format=car&dag-scope=entity")
    status, _, body = client.get(f"/ipfs/{M}?format=car&dag-scope=entity", {"If-None-Match": h["Etag"]})
    assert status == 304 and body == b""
    _, h, _ = client.get(f"/ipfs/{ASCII}?format=raw")
    assert h["Etag"] == f'"{ASCII}.raw"'
    status, _, _ = client.get(f"/ipfs/{ASCII}?format=raw", {"If-None-Match": f'W/"x", {h["Etag"]}'})
    assert status == 304


def test_raw_with_path_gives_the_terminal_block(client: Client) -> None:
    status, h, body = client.get(f"/ipfs/{A}/subdir/ascii.txt?format=raw")
    assert status == 200 and CID.decode(ASCII).verify(body)
    assert h["X-Ipfs-Roots"] == f"{A},{A_SUBDIR},{ASCII}"


def test_car_header_root_is_terminal(client: Client) -> None:
    _, h, body = client.get(f"/ipfs/{A}/subdir/ascii.txt?format=car")
    assert [str(r) for r in CarV1Reader(io.BytesIO(body)).roots] == [ASCII]
    assert h["Content-Disposition"] == f'attachment; filename="{A}_ascii.txt.car"'


def test_method_not_allowed(client: Client) -> None:
    status, h, _ = client.get(f"/ipfs/{ASCII}?format=raw", method="POST")
    assert status == 405 and "GET" in h["Allow"]


def test_only_if_cached() -> None:
    """gwc tests/path_gateway_unixfs_test.go (only-if-cached) on gateway-cache-fixtures.car: a cached
    path → 200 (HEAD and GET), an absent CID → 412 even without Accept."""
    from ._shared import shared_path

    with CarBlockstore(shared_path("fixtures", "gateway-conformance", "gateway-cache-fixtures.car")) as store:
        root = store.roots[0]
        with serve_in_thread(store) as url:
            c = Client(url)
            for method in ("HEAD", "GET"):
                status, _, body = c.get(f"/ipfs/{root}/root2/root3/root4/?format=raw",
                                        {"Cache-Control": "only-if-cached"}, method=method)
                assert status == 200
                status, _, _ = c.get("/ipfs/QmYzfKSE55XCjD1MW128RfciAf2DViABhEiXfgVFMabSjN",
                                     {"Cache-Control": "only-if-cached"}, method=method)
                assert status == 412
            _, _, body = c.get(f"/ipfs/{root}/root2/root3/root4/?format=raw")
            assert body == bytes.fromhex(  # the root4 directory block, as gwc's test spells it
                "12340a24015512205891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
                "120a696e6465782e68746d6c18060a020801")
            c.conn.close()
