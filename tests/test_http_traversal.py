"""Block selection for trustless-gateway CARs: the exact lists of gateway-conformance
(tests/trustless_gateway_car_test.go @ 22c76440, tabled in shared/spec/trustless-gateway.md §10.3),
plus negative cases and property tests against a plain reference walk."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipld.blockstore import MemoryBlockstore
from pyipld.cid import CID
from pyipld.errors import (
    DecodeError,
    GatewayRequestError,
    IntegrityError,
    NotFoundError,
    PathNotFoundError,
)
from pyipld.http import CarScope, iter_scope_blocks, parse_entity_bytes, resolve_scope
from pyipld.unixfs import import_bytes
from pyipld.unixfs.params import ImportParams

from ._gateway_fixtures import (
    A_SUBDIR,
    ASCII,
    B_SUBDIR,
    DOCUMENT,
    F0,
    F2,
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
    hamt_all_ok,
    load_store,
    names,
)


@pytest.fixture(scope="module")
def store() -> MemoryBlockstore:
    return load_store()


def run(store: MemoryBlockstore, path: str, scope: str = "all", entity_bytes: str | None = None,
        dups: bool = False) -> list[str]:
    root, *segments = path.split("/")
    car_scope = CarScope(CID.decode(root), tuple(s.encode() for s in segments), scope,  # type: ignore[arg-type]
                         parse_entity_bytes(entity_bytes) if entity_bytes else None, dups)
    return names([cid for cid, _ in iter_scope_blocks(store, car_scope)])


# (id, path, dag-scope, entity-bytes, expected ordered list); gwc trustless_gateway_car_test.go
CASES = [
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
    ("EB3", f"{B}/subdir/multiblock.txt", "entity", "0:*", [B, B_SUBDIR, M, *L]),
    ("EB5", M, "entity", "512:*", [M, L[2], L[3], L[4]]),
    ("EB6", M, "entity", "512:1023", [M, L[2], L[3]]),
    ("EB7", M, "entity", "512:-256", [M, L[2], L[3]]),
    ("EB8", M, "entity", "-5:*", [M, L[3], L[4]]),
    ("EB9", M, "entity", "-9999:*", [M, *L]),
    ("EB10", M, "entity", "-9999:-3", [M, L[0], L[1], L[2], L[3]]),
    ("EB11", M, "entity", "0:0", [M, L[0]]),
]


@pytest.mark.parametrize(("case", "path", "scope", "entity_bytes", "expected"), CASES, ids=[c[0] for c in CASES])
def test_conformance_block_lists(store: MemoryBlockstore, case: str, path: str, scope: str,
                                 entity_bytes: str | None, expected: list[str]) -> None:
    assert run(store, path, scope, entity_bytes) == expected


@pytest.mark.parametrize("entity_bytes", [None, "0:*"])
def test_hamt_entity_is_every_shard(store: MemoryBlockstore, entity_bytes: str | None) -> None:
    """E2 / EB4: the HAMT root and its 236 sub-shards in DFS pre-order, no entries (range ignored)."""
    assert hamt_all_ok(run(store, C, "entity", entity_bytes))


def test_range_skips_missing_block(store: MemoryBlockstore) -> None:
    """EB1 / EB2: a range that avoids the absent middle block f1 succeeds."""
    assert run(store, F, "entity", "0:1000") == [F, F0]
    assert run(store, F, "entity", "2200:*") == [F, F2]
    with pytest.raises(NotFoundError, match="QmSNLTo6"):
        run(store, F, "entity", "1000:2100")


def test_duplicates(store: MemoryBlockstore) -> None:
    """O1 / O2: dups=y sends ascii twice; dups=n once."""
    assert run(store, E, dups=True) == [E, ASCII, ASCII, HELLO, M, *L]
    assert run(store, E, dups=False) == [E, ASCII, HELLO, M, *L]


def test_identity_root_sends_nothing(store: MemoryBlockstore) -> None:
    """O4: an inlined (identity) CID is never sent as a block."""
    assert run(store, INLINED, dups=True) == []
    assert run(store, INLINED, "entity") == []


def test_missing_segment(store: MemoryBlockstore) -> None:
    """P4: the path blocks up to the parent are known; resolution raises PathNotFoundError."""
    with pytest.raises(PathNotFoundError, match="i-do-not-exist"):
        resolve_scope(store, CarScope(CID.decode(A), (b"subdir", b"i-do-not-exist")))
    with pytest.raises(PathNotFoundError):  # a segment below a file
        run(store, f"{A}/subdir/ascii.txt/x")
    with pytest.raises(PathNotFoundError):  # a dag-cbor key that is not there
        run(store, f"{DOCUMENT}/files/nope")
    with pytest.raises(PathNotFoundError):  # HAMT miss
        run(store, f"{C}/1001.txt")
    with pytest.raises(PathNotFoundError):  # inside a raw block
        run(store, f"{ASCII}/x")


def test_path_ending_inside_dag_cbor(store: MemoryBlockstore) -> None:
    """A path that stops inside a block: the block, then (all) only links below that value."""
    assert run(store, f"{DOCUMENT}/files", "block") == [DOCUMENT]
    assert run(store, f"{DOCUMENT}/files") == [DOCUMENT, HELLO, M, *L]


TRAVERSAL = {  # path_gateway_dag/dag-{json,cbor}-traversal.car: root {foo:{link:→b2, object:{…}}}, b2 {bar:→b3}
    "json": ("baguqeeram5ujjqrwheyaty3w5gdsmoz6vittchvhk723jjqxk7hakxkd47xq",
             "baguqeeraxpdqyfizawpb7zl5gnpg7jw3myuynb42ngzmeo7xn5kmm5pabt6q",
             "baguqeerabz2ohuxlrfgan3sxrgsfeyi5woxikwoiun5i5cesn2zgp3evmy4q"),
    "cbor": ("bafyreibs4utpgbn7uqegmd2goqz4bkyflre2ek2iwv743fhvylwi4zeeim",
             "bafyreig5alecq2l2akgajxywgnv22kuxh6xcagsnelepylqovt4t5jxt6u",
             "bafyreiaefvpp22slf5bzd4lqgzwbztqahwlldtqkpgmlhv7mh23pudle7y"),
}


@pytest.mark.parametrize("fmt", ["json", "cbor"])
def test_dag_traversal_fixtures(fmt: str) -> None:
    """Paths cross dag-json {"/": cid} and dag-cbor tag-42 links; keys inside one block cost one block."""
    from pyipld.car.v1 import CarV1Reader

    from ._shared import shared_path

    store = MemoryBlockstore()
    with shared_path("fixtures", "gateway-conformance", f"path_gateway_dag-dag-{fmt}-traversal.car").open("rb") as f:
        for section in CarV1Reader(f):
            store.put(section.cid, section.data)
    root, b2, b3 = TRAVERSAL[fmt]
    assert run(store, root) == [root, b2, b3]
    assert run(store, root, "entity") == [root]
    assert run(store, f"{root}/foo/link", "block") == [root, b2]
    assert run(store, f"{root}/foo/link/bar") == [root, b2, b3]
    assert run(store, f"{root}/foo/link/bar/hello", "block") == [root, b2, b3]
    assert run(store, f"{root}/foo/object") == [root]  # a value without links
    assert run(store, f"{root}/foo") == [root, b2, b3]
    with pytest.raises(PathNotFoundError):
        run(store, f"{root}/foo/link/bar/hello/x")
    with pytest.raises(PathNotFoundError):
        run(store, f"{root}/foo/object/banana/1")


def test_corrupt_block_is_integrity_error(store: MemoryBlockstore) -> None:
    bad = MemoryBlockstore()
    for cid in store:
        bad.put(cid, store.get(cid))
    leaf = CID.decode(L[2]).bytes
    bad.put(leaf, b"x" + store.get(leaf)[1:])
    with pytest.raises(IntegrityError):
        run(bad, M)
    assert run(bad, M, "entity", "0:511") == [M, L[0], L[1]]  # the corrupt leaf is never read


def test_missing_root(store: MemoryBlockstore) -> None:
    with pytest.raises(NotFoundError):
        run(MemoryBlockstore(), A)


@pytest.mark.parametrize("text", ["", "1", "a:b", "1:2:3", "5:2", "-2:-5", "0x1:2", "1:+", " 1:2", "9" * 30 + ":*"])
def test_bad_entity_bytes(text: str) -> None:
    with pytest.raises(GatewayRequestError):
        parse_entity_bytes(text)


def test_entity_bytes_grammar() -> None:
    assert parse_entity_bytes("0:*") == (0, None)
    assert parse_entity_bytes("-1024:*") == (-1024, None)
    assert parse_entity_bytes("499:-1000") == (499, -1000)


def test_range_past_end_is_request_error(store: MemoryBlockstore) -> None:
    with pytest.raises(GatewayRequestError, match="past the end"):
        run(store, M, "entity", "1026:*")
    assert run(store, M, "entity", "1025:*") == [M, L[4]]
    assert run(store, M, "entity", "1000:-1000") == [M]  # empty range: the root only
    assert run(store, HELLO, "entity", "0:3") == [HELLO]
    assert run(store, A, "entity", "5:9") == [A]  # range ignored on a directory


def test_bad_scope() -> None:
    with pytest.raises(GatewayRequestError):
        CarScope(CID.decode(A), dag_scope="everything")  # type: ignore[arg-type]


def test_undecodable_cbor_is_decode_error() -> None:
    store = MemoryBlockstore()
    cid = CID(1, 0x71, b"\x12\x20" + hashlib.sha256(b"\xff").digest())
    store.put(cid.bytes, b"\xff")
    with pytest.raises(DecodeError):
        list(iter_scope_blocks(store, CarScope(cid, (b"a",))))


# -- properties: the range walk sends exactly the blocks whose bytes meet the range ---------------------

def _leaf_spans(store: MemoryBlockstore, root: bytes) -> list[tuple[bytes, int, int]]:
    """(leaf cid, start, size) of every leaf, in order, by a plain recursive reading."""
    from pyipld.unixfs.reader import decode_file_node

    out: list[tuple[bytes, int, int]] = []

    def visit(cid: bytes, start: int) -> int:
        node = decode_file_node(cid, store.get(cid))
        if not node.links:
            out.append((cid, start, node.size))
            return node.size
        pos = start + len(node.data)
        for child in node.links:
            pos += visit(child, pos)
        return pos - start

    visit(root, 0)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(1, 6000), chunk=st.sampled_from([64, 100, 256]), width=st.sampled_from([3, 174]),
       frm=st.integers(-7000, 7000), to=st.one_of(st.none(), st.integers(-7000, 7000)), trickle=st.booleans())
def test_range_leaves_match_reference(size: int, chunk: int, width: int, frm: int, to: int | None,
                                      trickle: bool) -> None:
    data = hashlib.shake_256(str(size).encode()).digest(size)
    store = MemoryBlockstore()
    params = ImportParams(cid_version=1, raw_leaves=True, chunker=f"size-{chunk}", max_links=width,
                          layout="trickle" if trickle else "balanced")
    root_cid = import_bytes(data, params, store).cid
    try:
        eb = parse_entity_bytes(f"{frm}:{'*' if to is None else to}")
    except GatewayRequestError:
        return
    first = frm if frm >= 0 else max(size + frm, 0)
    last = min(size - 1 if to is None else (to if to >= 0 else size + to), size - 1)
    scope = CarScope(root_cid, entity_bytes=eb)
    if first >= size:
        with pytest.raises(GatewayRequestError):
            list(iter_scope_blocks(store, scope))
        return
    got = [cid for cid, _ in iter_scope_blocks(store, scope)]
    spans = _leaf_spans(store, root_cid.bytes)
    if spans[0][0] == root_cid.bytes:  # a one-block file: the root is the answer
        assert got == [root_cid.bytes]
        return
    leaves = [cid for cid, start, n in spans if start <= last and start + n > first]
    got_leaves = [c for c in got[1:] if CID.from_bytes(c).codec == 0x55]
    assert got[0] == root_cid.bytes
    assert got_leaves == (leaves if first <= last else [])
    assert len(set(got)) == len(got)  # dups=n; distinct leaves here (seeded bytes)
    # the bytes of those leaves cover the range
    if first <= last:
        joined = b"".join(store.get(c) for c in got_leaves)
        spans = [(s, n) for c, s, n in _leaf_spans(store, root_cid.bytes) if c in set(got_leaves)]
        offset = spans[0][0]
        assert joined[first - offset : last - offset + 1] == data[first : last + 1]



@settings(max_examples=40, deadline=None)
@given(pattern=st.lists(st.sampled_from([b"a" * 64, b"b" * 64, b"c" * 30]), min_size=1, max_size=40),
       frm=st.integers(0, 2600), length=st.integers(0, 2600), scope=st.sampled_from(["all", "entity", "range"]))
def test_dups_n_is_first_occurrences_of_dups_y(pattern: list[bytes], frm: int, length: int, scope: str) -> None:
    """Repeated chunks: dups=n is dups=y with later repeats dropped, for every scope and range."""
    data = b"".join(pattern)
    store = MemoryBlockstore()
    root = import_bytes(data, ImportParams(cid_version=1, raw_leaves=True, chunker="size-64", max_links=3), store).cid
    eb = (frm, frm + length) if scope == "range" else None
    if eb is not None and frm >= len(data):
        return
    dag_scope = "all" if scope == "all" else "entity"
    with_dups = [c for c, _ in iter_scope_blocks(store, CarScope(root, (), dag_scope, eb, dups=True))]
    without = [c for c, _ in iter_scope_blocks(store, CarScope(root, (), dag_scope, eb, dups=False))]
    assert without == list(dict.fromkeys(with_dups))
