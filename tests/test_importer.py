"""File import: kubo's known answers, and properties that must hold for any input."""

from __future__ import annotations

import io
import itertools
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld.blockstore import MemoryBlockstore, NullSink
from pyipld.chunker import parse_chunker
from pyipld.cid import CID
from pyipld.errors import ConfigError, FileChangedError
from pyipld.unixfs import importer
from pyipld.unixfs.importer import import_bytes, import_file
from pyipld.unixfs.params import UNIXFS_V0_2015, UNIXFS_V1_2025, ImportParams
from pyipld.unixfs.reader import UnixFSReader, read_file
from tests._deterministic import chacha_bytes, chacha_stream
from tests._shared import shared_path

HELLO = b"hello world"


@pytest.fixture
def small_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send even tiny inputs and chunks through the thread pool, in small batches."""
    monkeypatch.setattr(importer, "MIN_THREADED_CHUNK", 1)
    monkeypatch.setattr(importer, "MIN_THREADED_BYTES", 0)
    monkeypatch.setattr(importer, "TASK_BYTES", 16)

# shared/spec/unixfs-importer.md §9 (kubo test/cli/add_test.go, t0040, t0046, t0047).
SPEC_TABLE = [
    (HELLO, {}, "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"),
    (HELLO, {"cid_version": 1}, "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"),
    (HELLO, {"cid_version": 1, "raw_leaves": False}, "bafybeihykld7uyxzogax6vgyvag42y7464eywpf55gxi5qpoisibh3c5wa"),
    (b"Hello Worlds!\n", {}, "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH"),
    (b"Hello Worlds!\n", {"layout": "trickle"}, "QmUkUQgxXeggyaD5Ckv8ZqfW8wHBX6cYyeiyqvVZYzq5Bi"),
    (b"", {}, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"),
    (b"", {"raw_leaves": True}, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
    (b"", {"cid_version": 1, "layout": "trickle"}, "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y"),
    (b"", {"mode": 0o764}, "QmchD3BN8TQ3RW6jPLxSaNkqvfuj7syKhzTRmL4EpyY1Nz"),
    (b"jkD98jkD975hkD8\n", {"inline": True, "raw_leaves": True}, "bafkqaedknncdsodknncdsnzvnbvuioak"),
]


@pytest.mark.parametrize(("data", "params", "expected"), SPEC_TABLE)
def test_spec_table(data: bytes, params: dict[str, object], expected: str) -> None:
    result = import_bytes(data, ImportParams(**params))  # type: ignore[arg-type]
    assert str(result.cid) == expected
    assert result.size == len(data)


def test_size4_tsize_and_root_bytes() -> None:
    """§1.4 worked bytes: 10 bytes, size-4 chunks: three links, Tsizes 12/12/10, root Tsize 172."""
    store = MemoryBlockstore()
    result = import_bytes(b"abcdefghij", ImportParams(chunker="size-4"), store)
    assert result.tsize == 172
    root = store.get(result.cid.bytes)
    assert root.endswith(bytes.fromhex("0a0a080218 0a 2004 2004 2002".replace(" ", "")))
    assert len(store) == 4


def _profile_vectors() -> list[dict[str, object]]:
    try:
        path = shared_path("fixtures", "kubo", "cid-profile-vectors.json")
    except pytest.skip.Exception:
        return []
    return [v for v in json.loads(path.read_text())["vectors"] if "dir_seed" not in json.dumps(v["input"])]


_VECTOR_PARAMS = {
    "hello-v0": UNIXFS_V0_2015,
    "hello-v1-raw": UNIXFS_V1_2025,
    "hello-v1-no-raw-leaves": ImportParams(cid_version=1, raw_leaves=False),
    "hello-v1-sha512": ImportParams(cid_version=1, raw_leaves=True, hash="sha2-512"),
}


def _vector_cases() -> list[object]:
    cases: list[object] = []
    for vec in _profile_vectors():  # the two 45 MB inputs take ~0.1 s each: no `slow` mark needed
        cases.append(pytest.param(vec, id=str(vec["name"])))
    if not cases:
        cases.append(pytest.param(None, marks=pytest.mark.skip(reason="shared kubo fixtures absent")))
    return cases


@pytest.mark.parametrize("vec", _vector_cases())
def test_kubo_profile_vectors(vec: dict[str, object]) -> None:
    name = str(vec["name"])
    if name in _VECTOR_PARAMS:
        params = _VECTOR_PARAMS[name]
    else:
        params = UNIXFS_V0_2015 if str(vec["params"]).startswith("unixfs-v0") else UNIXFS_V1_2025
    inp = vec["input"]
    if isinstance(inp, str):
        result = import_bytes(inp.encode(), params)
    else:
        assert isinstance(inp, dict)
        result = import_file(chacha_stream(str(inp["seed"]), int(inp["size"])), params, jobs=2)
        assert result.size == int(inp["size"])
    assert str(result.cid) == vec["cid"]


# -- sizes around the boundaries, cross-checked between code paths --------------------------------

@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 4 * 7, 4 * 7 + 1, 4 * 49, 4 * 49 + 1, 4 * 343 + 3])
@pytest.mark.parametrize("params", [
    ImportParams(chunker="size-4", max_links=7),
    ImportParams(chunker="size-4", max_links=7, cid_version=1),
    ImportParams(chunker="size-4", max_links=7, raw_leaves=True),
    ImportParams(chunker="size-4", max_links=7, layout="trickle"),
    ImportParams(chunker="size-4", max_links=7, mode=0o644, mtime=(1, 5)),
], ids=["v0", "v1raw", "v0raw", "trickle", "meta"])
@pytest.mark.usefixtures("small_threads")
def test_paths_agree_and_read_back(size: int, params: ImportParams) -> None:
    data = chacha_bytes(f"edge-{size}", size)
    store = MemoryBlockstore()
    ref = import_bytes(data, params, store)
    assert read_file(store, ref.cid) == data
    assert ref.size == size
    for jobs in (1, 2, 3):
        assert import_file(io.BytesIO(data), params, jobs=jobs).cid == ref.cid
    assert import_file([data[i : i + 3] for i in range(0, size, 3)], params, jobs=2).cid == ref.cid


def test_tsize_is_sum_of_block_lengths() -> None:
    store = MemoryBlockstore()
    result = import_bytes(chacha_bytes("tsize", 5000), ImportParams(chunker="size-100", max_links=5), store)
    assert result.tsize == sum(len(store.get(c)) for c in store)


@pytest.mark.usefixtures("small_threads")
def test_sink_receives_every_block_once_per_cid_and_null_sink_same_cid() -> None:
    data = chacha_bytes("sink", 3000)
    params = ImportParams(chunker="size-256", max_links=3)
    store = MemoryBlockstore()
    kept = import_file(data, params, store, jobs=2)
    assert import_file(data, params, NullSink(), jobs=2).cid == kept.cid
    for cid in store:
        assert CID.from_bytes(cid).verify(store.get(cid))


def test_path_source(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    data = chacha_bytes("path", 5 << 20)  # > MIN_THREADED_BYTES and MMAP_MIN_BYTES: threads and mmap
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    for params in (UNIXFS_V0_2015, UNIXFS_V1_2025, ImportParams(chunker="size-1000")):
        expected = import_bytes(data, params).cid
        for jobs in (1, 2):
            assert import_file(path, params, jobs=jobs).cid == expected
            assert import_file(str(path), params, jobs=jobs).cid == expected


def test_directory_path_is_refused(tmp_path: object) -> None:
    with pytest.raises(IsADirectoryError):
        import_file(tmp_path)  # type: ignore[arg-type]


def test_progress_counts_every_byte() -> None:
    seen: list[int] = []
    import_file(io.BytesIO(bytes(1000)), ImportParams(chunker="size-64"), progress=seen.append, jobs=1)
    assert sum(seen) == 1000


def test_bad_params_raise_config_error() -> None:
    with pytest.raises(ConfigError):
        import_bytes(b"x", ImportParams(cid_version=2))
    with pytest.raises(ConfigError):
        import_bytes(b"x", ImportParams(chunker="size-0"))


# -- properties ------------------------------------------------------------------------------------

_params = st.builds(
    ImportParams,
    cid_version=st.sampled_from([0, 1]),
    raw_leaves=st.sampled_from([None, True, False]),
    chunker=st.sampled_from(["size-1", "size-3", "size-7", "size-64"]),
    layout=st.sampled_from(["balanced", "trickle"]),
    max_links=st.integers(2, 6),
)


@given(data=st.binary(max_size=800), params=_params)
@settings(max_examples=60)
def test_import_then_read_is_identity(data: bytes, params: ImportParams) -> None:
    store = MemoryBlockstore()
    result = import_bytes(data, params, store)
    assert read_file(store, result.cid) == data
    assert UnixFSReader(store, result.cid).size == len(data)


@given(data=st.binary(min_size=1, max_size=600), params=_params, seed=st.integers(0, 2**32))
@settings(max_examples=60)
def test_random_ranges_equal_the_slice(data: bytes, params: ImportParams, seed: int) -> None:
    store = MemoryBlockstore()
    result = import_bytes(data, params, store)
    reader = UnixFSReader(store, result.cid)
    rng = random.Random(seed)
    for _ in range(10):
        offset = rng.randrange(0, len(data) + 3)
        length = rng.choice([None, 0, 1, rng.randrange(0, len(data) + 3)])
        stop = None if length is None else offset + length
        assert reader.read(offset, length) == data[offset:stop]


@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 2000), max_size=8),
       size=st.integers(1, 300))
def test_chunks_do_not_depend_on_read_splits(data: bytes, cuts: list[int], size: int) -> None:
    chunker = parse_chunker(f"size-{size}")
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    reads = [data[a:b] for a, b in itertools.pairwise(bounds)]
    assert list(chunker.split(reads)) == list(chunker.split([data]))
    chunks = list(chunker.split(reads))
    assert b"".join(chunks) == data
    assert all(len(c) == size for c in chunks[:-1]) and all(chunks)


@given(data=st.binary(max_size=3000), params=_params, jobs=st.integers(2, 4), task=st.integers(1, 300))
@settings(max_examples=40)
def test_threads_give_the_same_cid(data: bytes, params: ImportParams, jobs: int, task: int) -> None:
    expected = import_file(data, params, jobs=1).cid
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(importer, "MIN_THREADED_CHUNK", 1)
        mp.setattr(importer, "MIN_THREADED_BYTES", 0)
        mp.setattr(importer, "TASK_BYTES", task)
        assert import_file(data, params, jobs=jobs).cid == expected
        assert import_file(io.BytesIO(data), params, jobs=jobs).cid == expected


def test_threaded_path_is_really_used(small_threads: None, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = importer.hash_batch

    def spy(*args: object) -> object:
        calls.append(1)
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(importer, "hash_batch", spy)
    import_file(b"x" * 100, ImportParams(chunker="size-10"), jobs=2)
    assert len(calls) >= 5


def test_odd_chunk_sizes_through_the_mmap_windows(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    monkeypatch.setattr(importer, "MMAP_WINDOW_BYTES", 1 << 16)
    monkeypatch.setenv("PYIPLD_MMAP", "1")
    data = chacha_bytes("windows", (1 << 20) + 12345)
    path = tmp_path / "w.bin"
    path.write_bytes(data)
    for chunker in ("size-1000", "size-4096", "size-65537", "size-262144"):
        params = ImportParams(chunker=chunker, raw_leaves=True)
        assert import_file(path, params, jobs=1).cid == import_bytes(data, params).cid
    monkeypatch.setenv("PYIPLD_MMAP", "0")
    assert import_file(path, ImportParams(), jobs=1).cid == import_bytes(data, ImportParams()).cid


def test_file_truncated_during_import_is_an_error(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    monkeypatch.setattr(importer, "MMAP_WINDOW_BYTES", 1 << 20)
    monkeypatch.setattr(importer, "FILE_READ_BYTES", 1 << 20)
    for mapped in ("1", "0"):
        monkeypatch.setenv("PYIPLD_MMAP", mapped)
        path = tmp_path / "shrinks.bin"
        path.write_bytes(bytes(4 << 20))
        chunks = importer.iter_chunks(path, parse_chunker("size-262144"))
        next(chunks)
        with open(path, "r+b") as f:
            f.truncate(1 << 20)
        with pytest.raises(FileChangedError, match=f"file changed during import: {path}: 4194304 bytes"):
            for _ in chunks:
                pass


@pytest.mark.parametrize("chunker", ["rabin", "buzhash", "rabin-1024-4096-16384", "rabin-30"])
def test_content_defined_file_is_mapped_and_agrees(tmp_path: object, monkeypatch: pytest.MonkeyPatch,
                                                   chunker: str) -> None:
    from pathlib import Path

    from pyipld.chunker import buzhash as buzhash_module
    from pyipld.chunker import rabin as rabin_module

    assert isinstance(tmp_path, Path)
    monkeypatch.setattr(rabin_module, "MAPPED_BLOCKS", 1)
    monkeypatch.setattr(buzhash_module, "MAPPED_BLOCKS", 1)
    monkeypatch.setenv("PYIPLD_MMAP", "1")  # mapping is opt-in (SIGBUS on truncation)
    size = (2 << 20) - 300 if chunker == "rabin-30" else (9 << 20) + 4321
    data = chacha_bytes("cdc-file", size // 2) + bytes(size - size // 2)
    path = tmp_path / "cdc.bin"
    path.write_bytes(data)
    mapped: list[int] = []
    for cls in (rabin_module.Rabin, buzhash_module.Buzhash):
        original = cls.split_mapped

        def spy(self, fd, length, _original=original):  # type: ignore[no-untyped-def]
            mapped.append(length)
            return _original(self, fd, length)

        monkeypatch.setattr(cls, "split_mapped", spy)
    for params in (ImportParams(chunker=chunker), ImportParams(chunker=chunker, cid_version=1, raw_leaves=True)):
        expected = import_bytes(data, params)
        store = MemoryBlockstore()
        for jobs in (1, 2):
            assert import_file(path, params, jobs=jobs) == expected
        assert import_file(path, params, store, jobs=1) == expected
        assert read_file(store, expected.cid) == data  # blocks stored from views are whole, not aliases
        with open(path, "rb") as f:
            assert import_file(f, params, jobs=1) == expected
    assert mapped and set(mapped) == {size}
    monkeypatch.setenv("PYIPLD_MMAP", "0")
    before = len(mapped)
    assert import_file(path, ImportParams(chunker=chunker), jobs=1) == import_bytes(data, ImportParams(chunker=chunker))
    assert len(mapped) == before
