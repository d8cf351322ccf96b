"""Leaves hashed two at a time: the batch kernel (messages given as pieces) equals hashlib at every
padding edge and piece split, and :meth:`LeafMaker.leaves`/``leaves_parts`` equal the leaf-by-leaf
encoders for every builder, leaf kind and keep setting; imports that batch give kubo's CIDs."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld import _sha256x2
from pyipld._sha256x2 import _hashlib_pieces, sha256_batch
from pyipld.blockstore import MemoryBlockstore, NullSink
from pyipld.cid import CidBuilder
from pyipld.unixfs.data import DataType
from pyipld.unixfs.nodes import ChunkGroups, LeafMaker, grouped_leaf_links, leaf_links

from ._deterministic import chacha_bytes

EDGES = [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 121, 127, 128, 129, 191, 192, 1000, 8192, 262144 + 9]


def _kernel() -> Any:
    kernel = _sha256x2._kernel()
    if kernel is None:
        pytest.skip("the two-lane kernel is not available here (no SHA-NI, no compiler, or PYIPLD_PUREPYTHON)")
    return kernel


def _want(messages: list[tuple[Any, ...]]) -> list[bytes]:
    return [hashlib.sha256(b"".join(bytes(p) for p in m)).digest() for m in messages]


@pytest.mark.parametrize("n", EDGES)
def test_kernel_one_piece_at_padding_edges(n: int) -> None:
    kernel = _kernel()
    messages = [(chacha_bytes(f"m{n}-{m}", m),) for m in EDGES] + [(chacha_bytes(f"x{n}", n),)]
    assert kernel(messages, 1) == _want(messages)


@pytest.mark.parametrize("split", [0, 1, 55, 56, 63, 64, 65, 100, 128])
def test_kernel_pieces_straddling_blocks(split: int) -> None:
    """A dag-pb leaf's header, chunk and trailer: every block boundary falls inside or between pieces."""
    kernel = _kernel()
    messages = []
    for n in EDGES:
        data = chacha_bytes(f"p{split}-{n}", n + split + 5)
        messages.append((data[:split], memoryview(data)[split:split + n], bytearray(data[split + n:])))
    assert kernel(messages, 3) == _want(messages)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.binary(max_size=300), min_size=4, max_size=4), min_size=1, max_size=7),
       st.integers(1, 4))
def test_kernel_equals_hashlib(pieces: list[list[bytes]], parts: int) -> None:
    kernel = _kernel()
    messages = [tuple(m[:parts]) for m in pieces]
    assert kernel(messages, parts) == _want(messages)


def test_kernel_read_only_and_odd_counts() -> None:
    kernel = _kernel()
    data = chacha_bytes("ro", 300_000)
    view = memoryview(data)  # read-only, as a mapped file's
    for count in range(1, 6):
        messages = [(b"head", view[i * 1000 : i * 1000 + 70_000], b"") for i in range(count)]
        assert kernel(messages, 3) == _want(messages)


@given(st.lists(st.tuples(st.binary(max_size=9000), st.binary(max_size=20)), max_size=5))
def test_sha256_batch_public(messages: list[tuple[bytes, bytes]]) -> None:
    """The public function: hashlib below the threshold or without the kernel, the kernel above."""
    assert sha256_batch(messages) == _want(messages)
    assert sha256_batch([(a,) for a, _ in messages]) == [_hashlib_pieces((a,)) for a, _ in messages]


def test_sha256_batch_mixed_piece_counts_falls_back() -> None:
    messages: list[tuple[bytes, ...]] = [(b"a" * 9000,), (b"b" * 9000, b"c")]
    assert sha256_batch(messages) == _want(messages)


_builders = st.sampled_from([
    CidBuilder.create(0),
    CidBuilder.create(1),
    CidBuilder.create(1, "blake2b-256"),
    CidBuilder.create(1, "sha2-256", inline_limit=32),
    CidBuilder.create(0, "sha2-256", inline_limit=20_000),
])


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.sampled_from([1, 100, 8191, 8192, 8193, 20_000, 65_536, 262_144]), max_size=6),
       builder=_builders, raw=st.booleans(), leaf_type=st.sampled_from([DataType.FILE, DataType.RAW]),
       keep=st.booleans(), as_view=st.booleans())
def test_leaves_equal_leaf_by_leaf(sizes: list[int], builder: CidBuilder, raw: bool, leaf_type: DataType,
                                   keep: bool, as_view: bool) -> None:
    maker = LeafMaker(builder, raw=raw, leaf_type=leaf_type)
    data = chacha_bytes("leaves", sum(sizes))
    source: Any = memoryview(bytearray(data)) if as_view else data
    chunks, at = [], 0
    for n in sizes:
        chunks.append(source[at : at + n])
        at += n
    want = [maker.leaf(c, keep) for c in chunks]
    got = maker.leaves(chunks, keep)
    assert [(cid, None if b is None else bytes(b), n) for cid, b, n in got] == \
        [(cid, None if b is None else bytes(b), n) for cid, b, n in want]
    for private in (False, True):
        want_parts = [maker.leaf_parts(c, private=private) for c in chunks]
        got_parts = maker.leaves_parts(chunks, private=private)
        assert [(cid, b"".join(bytes(p) for p in parts), n) for cid, parts, n in got_parts] == \
            [(cid, b"".join(bytes(p) for p in parts), n) for cid, parts, n in want_parts]


def test_leaves_parts_copies_views_unless_private() -> None:
    """A view of a buffer someone else may write (a mapped file) is copied before hashing, as leaf_parts does."""
    maker = LeafMaker(CidBuilder.create(1), raw=True)
    buf = bytearray(chacha_bytes("copy", 40_000))
    chunks = [memoryview(buf)[:20_000], memoryview(buf)[20_000:]]
    shared = maker.leaves_parts(chunks)
    private = maker.leaves_parts(chunks, private=True)
    buf[0] ^= 1
    assert bytes(shared[0][1][0])[0] != buf[0]  # its own copy
    assert bytes(private[0][1][0])[0] == buf[0]  # the caller's buffer


@pytest.mark.parametrize("raw", [False, True])
@pytest.mark.parametrize("kept", [False, True])
def test_grouped_leaf_links_equal_leaf_links(raw: bool, kept: bool) -> None:
    maker = LeafMaker(CidBuilder.create(1 if raw else 0), raw=raw)
    data = chacha_bytes("groups", 5 * 65_536 + 17)
    chunks = [data[i : i + 65_536] for i in range(0, len(data), 65_536)]
    groups = [chunks[:2], chunks[2:5], chunks[5:]]
    sink_a, sink_b = (MemoryBlockstore(), MemoryBlockstore()) if kept else (NullSink(), NullSink())
    want = list(leaf_links(chunks, maker, sink_a))
    assert list(grouped_leaf_links(groups, maker, sink_b)) == want
    assert [bytes(c) for c in ChunkGroups(groups)] == chunks
    if isinstance(sink_a, MemoryBlockstore) and isinstance(sink_b, MemoryBlockstore):
        assert {c: sink_a.get(c) for c in sink_a} == {c: sink_b.get(c) for c in sink_b}
        assert len(sink_b) == 6


def test_short_messages_do_not_send_the_batch_to_hashlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file's short last leaf is hashed by hashlib alone; the long ones still go to the kernel
    (one short message sent the whole batch to hashlib)."""
    kernel = _kernel()
    seen: list[int] = []

    def counting(messages: Any, parts: int) -> list[bytes]:
        seen.append(len(messages))
        return kernel(messages, parts)

    monkeypatch.setattr("pyipld._sha256x2._kernel", lambda: counting)
    messages = [(chacha_bytes(f"s{i}", 20_000),) for i in range(5)] + [(b"tail",)]
    assert sha256_batch(messages) == _want(messages)
    assert seen == [5]
    seen.clear()
    one_long = [(chacha_bytes("one", 20_000),), (b"short",)]
    assert sha256_batch(one_long) == _want(one_long) and seen == []
