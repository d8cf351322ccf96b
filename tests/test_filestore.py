"""The filestore (``add --nocopy``): kubo 0.22's CIDs, read-back equality, loud failure when a
referenced file changes, bounded storage, the CLI refusals and ``filestore ls/verify``."""

from __future__ import annotations

import os
import sqlite3
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipld.blockstore import DirectoryBlockstore, MemoryBlockstore
from pyipld.cid import CID, RAW
from pyipld.cli import main
from pyipld.errors import FilestoreError, IntegrityError, NotFoundError, PyipldError
from pyipld.filestore import INDEX_NAME, Filestore, Status, ds_key, open_blockstore
from pyipld.unixfs import ImportParams, import_file, open_file
from pyipld.unixfs.resolve import resolve_path
from pyipld.unixfs.tree import import_paths
from tests._deterministic import chacha_bytes
from tests._recipes import kubo022_param_kwargs, load_vectors, materialise_vector_input, vector_input_bytes

MAX_VECTOR_BYTES = 4 << 20


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _raw_leaf_vectors(name: str) -> list[Any]:
    """kubo 0.22 vectors whose parameters give raw leaves: what ``ipfs add --nocopy`` adds them with
    (nocopy only turns raw leaves on; the CIDs are those of ``--raw-leaves``)."""
    out = []
    for v in load_vectors(name)["vectors"]:
        if "error" in v or v.get("slow") or v["input"].get("type") == "directory":
            continue
        params = ImportParams(**kubo022_param_kwargs(v["params"]))
        size = len(vector_input_bytes(v))
        if params.resolve().raw_leaves and size <= MAX_VECTOR_BYTES:
            chunk = params.resolve().chunker.max_chunk_size
            many = size // chunk > 4096  # tens of thousands of tiny leaves: each read back opens the file
            out.append(pytest.param(v, id=v["name"], marks=[pytest.mark.slow] if many else []))
    return out


FILE_VECTORS = _raw_leaf_vectors("files") + _raw_leaf_vectors("import_params")


def _store_files(root: Path) -> list[Path]:
    return sorted(root.glob("*/*.data"))


@pytest.mark.parametrize("vector", FILE_VECTORS)
def test_nocopy_cid_equals_kubo(vector: dict[str, Any], tmp_path: Path) -> None:
    """Same root CID as kubo 0.22; every raw leaf is a reference, none is copied; reads back equal."""
    path = materialise_vector_input(vector, tmp_path)
    store = Filestore(tmp_path / "bs")
    result = import_file(path, ImportParams(**kubo022_param_kwargs(vector["params"])), store)
    assert str(result.cid) == vector["cid"]
    copied = [CID.decode("b" + p.stem) for p in _store_files(store.root)]
    assert all(c.codec != RAW or c.hash_code == 0 for c in copied)  # only dag-pb nodes (or inlined) copied
    with open_file(store, result.cid) as f:
        assert f.read() == path.read_bytes()


def test_nocopy_cli_vectors_and_kubo_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``add --nocopy`` prints what ``add --raw-leaves`` prints (kubo: nocopy -> raw leaves), for
    files and ``-r`` trees, and refuses ``--raw-leaves=false`` with kubo's message."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "big.bin").write_bytes(chacha_bytes("nocopy-cli", 1_000_003))
    (src / "sub" / "a.txt").write_bytes(b"hello\n")
    (src / "empty").write_bytes(b"")
    for extra in ([], ["--cid-version", "1"], ["-s", "buzhash"], ["--trickle", "-s", "size-1000"]):
        want = _run(capsys, "add", "-n", "--raw-leaves", "-r", *extra, str(src))
        got = _run(capsys, "add", "--nocopy", "--blockstore", str(tmp_path / "bs"), "-r", *extra, str(src))
        assert got[0] == want[0] == 0 and got[1] == want[1]
        root = got[1].split()[-2]
        store = open_blockstore(tmp_path / "bs")
        with open_file(store, resolve_path(store, f"{root}/big.bin").cid) as f:
            assert f.read() == (src / "big.bin").read_bytes()
    code, out, err = _run(capsys, "add", "--nocopy", "--raw-leaves=false", "--blockstore", str(tmp_path / "bs"),
                          str(src / "sub" / "a.txt"))
    assert (code, out) == (1, "") and err == "Error: nocopy option requires '--raw-leaves' to be enabled as well\n"


def test_nocopy_tree_vectors(tmp_path: Path) -> None:
    """kubo 0.22's raw-leaf directory vectors, added with references; every file reads back."""
    vectors = [v for v in load_vectors("dirs")["vectors"] if v["params"].get("raw_leaves") and not v.get("slow")]
    assert vectors
    for v in vectors:
        (tmp_path / v["name"].replace("/", "_")).mkdir()
        src = materialise_vector_input(v, tmp_path / v["name"].replace("/", "_"))
        store = Filestore(tmp_path / ("bs_" + v["name"].replace("/", "_")))
        result = import_paths([src], ImportParams(**kubo022_param_kwargs(v["params"], directory=True)), store)
        assert str(result.cid) == v["cid"], v["name"]
        for file in (p for p in src.rglob("*") if p.is_file() and not p.is_symlink()):
            rel = file.relative_to(src).as_posix()
            with open_file(store, resolve_path(store, f"{result.cid}/{rel}").cid) as f:
                assert f.read() == file.read_bytes()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=5000), size=st.integers(0, 60_000), seed=st.integers(0, 2**16),
       chunker=st.sampled_from(["size-1024", "size-4096", "rabin-256-1024-4096", "buzhash"]),
       layout=st.sampled_from(["balanced", "trickle"]), version=st.sampled_from([0, 1]),
       inline=st.booleans(), offset=st.integers(0, 70_000), length=st.integers(0, 9000))
def test_read_back_equals_file(tmp_path_factory: pytest.TempPathFactory, data: bytes, size: int, seed: int,
                               chunker: str, layout: str, version: int, inline: bool, offset: int,
                               length: int) -> None:
    """Property: the filestore gives the only-hash CID of ``--raw-leaves`` and reads back (whole and
    any range) the file's bytes."""
    tmp = tmp_path_factory.mktemp("prop")
    content = data + chacha_bytes(f"prop-{seed}", size)
    path = tmp / "f.bin"
    path.write_bytes(content)
    params = ImportParams(cid_version=version, raw_leaves=True, chunker=chunker, layout=layout,  # type: ignore[arg-type]
                          max_links=4, inline=inline)
    store = Filestore(tmp / "bs")
    got = import_file(path, params, store, jobs=2)
    assert got.cid == import_file(path, params).cid
    with open_file(store, got.cid) as f:
        assert f.read() == content
        f.seek(offset)
        assert f.read(length) == content[offset : offset + length]
    assert next(store.verify_all(), None) is None
    store.close()


@pytest.fixture
def added(tmp_path: Path) -> tuple[Filestore, Path, CID, bytes]:
    path = tmp_path / "data.bin"
    content = chacha_bytes("tamper", 3 * 262144 + 1000)
    path.write_bytes(content)
    store = Filestore(tmp_path / "bs")
    cid = import_file(path, ImportParams(raw_leaves=True), store).cid
    return store, path, cid, content


def _leaves(store: Filestore) -> list[Any]:
    return list(store.refs(file_order=True))


def test_changed_byte_is_a_typed_error(added: tuple[Filestore, Path, CID, bytes]) -> None:
    store, path, cid, content = added
    second = _leaves(store)[1]
    with open(path, "r+b") as f:
        f.seek(second.offset + 7)
        f.write(bytes([content[second.offset + 7] ^ 1]))
    with pytest.raises(FilestoreError) as info:
        store.get(second.cid.bytes)
    err = info.value
    assert isinstance(err, IntegrityError)
    assert err.status == Status.FILE_CHANGED and err.cid == str(second.cid) and err.path == str(path)
    assert str(second.cid) in str(err) and str(path) in str(err)
    assert err.reason == f"data in file did not match. {path} offset {second.offset}"
    store.get(_leaves(store)[0].cid.bytes)  # the other leaves still read
    with pytest.raises(FilestoreError), open_file(store, cid) as f:
        f.read()


def test_truncated_and_deleted_files(added: tuple[Filestore, Path, CID, bytes]) -> None:
    store, path, _, _ = added
    leaves = _leaves(store)
    os.truncate(path, leaves[2].offset + 10)
    with pytest.raises(FilestoreError, match="unexpected EOF") as info:
        store.get(leaves[2].cid.bytes)
    assert info.value.status == Status.FILE_CHANGED
    with pytest.raises(FilestoreError, match=r"\bEOF \(") as info:
        store.get(leaves[3].cid.bytes)
    store.get(leaves[0].cid.bytes)
    path.unlink()
    with pytest.raises(FilestoreError) as info:
        store.get(leaves[0].cid.bytes)
    assert info.value.status == Status.FILE_NOT_FOUND
    assert info.value.reason == f"open {path}: no such file or directory"
    assert str(leaves[0].cid) in str(info.value)
    assert store.has(leaves[0].cid.bytes)  # as boxo: has() does not read the file
    assert [e.status for e in store.verify_all() if isinstance(e, FilestoreError)] == [Status.FILE_NOT_FOUND] * 4


def test_cli_cat_and_get_fail_loudly(added: tuple[Filestore, Path, CID, bytes], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    store, path, cid, content = added
    with open(path, "r+b") as f:
        f.write(b"\0" * 4)
    code, out, err = _run(capsys, "cat", "--blockstore", str(store.root), "--length", "100", str(cid))
    assert code == 1 and out == ""
    assert err.startswith("Error: filestore block bafkrei") and f"did not match. {path} offset 0" in err
    assert err.count("\n") == 1
    code, out, err = _run(capsys, "get", "--blockstore", str(store.root), "-o", str(tmp_path / "out"), str(cid))
    assert code == 1 and "did not match" in err and not (tmp_path / "out").exists()
    # a range that needs only unchanged leaves still reads (printable bytes: capsys decodes stdout)
    readable = next(i for i in range(262144, len(content) - 5) if all(32 <= b < 127 for b in content[i : i + 5]))
    code, out, err = _run(capsys, "cat", "--blockstore", str(store.root), "--offset", str(readable), "--length", "5",
                          str(cid))
    assert (code, out, err) == (0, content[readable : readable + 5].decode(), "")


def test_gateway_and_bitswap_never_send_changed_bytes(added: tuple[Filestore, Path, CID, bytes]) -> None:
    from pyipld.bitswap.protocol import ServerSession
    from pyipld.http.gateway import GatewayRequest, plan_response

    store, path, _, content = added
    leaf = _leaves(store)[0]
    served = open_blockstore(store.root)
    req = GatewayRequest("GET", f"/ipfs/{leaf.cid}".encode(), b"format=raw")
    ok = plan_response(served, req)
    assert ok.status == 200 and ok.body == content[: leaf.size]
    with open(path, "r+b") as f:
        f.write(b"\xff" * 3)
    bad = plan_response(served, req)
    assert bad.status == 500 and b"did not match" in bad.body
    session = ServerSession(served)
    assert session._lookup(leaf.cid.bytes) is None and session.lookup_errors == 1


def test_fsspec_blockstore_source_reads_and_refuses(added: tuple[Filestore, Path, CID, bytes]) -> None:
    pytest.importorskip("fsspec")
    from pyipld.fs import IPFSFileSystem

    store, path, cid, content = added
    fs = IPFSFileSystem(use_env=False, skip_instance_cache=True, blockstore=str(store.root), memory_cache=0)
    assert fs.cat_file(str(cid), 5, 70_000) == content[5:70_000]
    os.truncate(path, 100)
    fs2 = IPFSFileSystem(use_env=False, skip_instance_cache=True, blockstore=str(store.root), memory_cache=0)
    with pytest.raises(IntegrityError):
        fs2.cat_file(str(cid), 262144, 262144 + 10)
    fs.close()
    fs2.close()


def test_big_file_adds_only_references(tmp_path: Path) -> None:
    """Bounded memory and storage: 48 MiB add only references (a few KiB of copies, a small index)."""
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        f.writelines(chacha_bytes(f"big-{i}", 1 << 20) for i in range(48))
    store = Filestore(tmp_path / "bs")
    tracemalloc.start()
    try:
        result = import_file(path, ImportParams(raw_leaves=True), store, jobs=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.cid == import_file(path, ImportParams(raw_leaves=True)).cid
    copied = sum(p.stat().st_size for p in _store_files(store.root))
    assert copied < 16 << 10  # the two levels of dag-pb nodes over 192 leaves
    assert len(_leaves(store)) == 192
    assert (store.root / INDEX_NAME).stat().st_size < 1 << 20
    assert peak < 24 << 20, peak  # read spans and hashing buffers, never the file


def test_refs_written_per_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 5000)
    store = Filestore(tmp_path / "bs")
    with pytest.raises(PyipldError, match="cover 4096 bytes, the file has 5000"), \
            store.file_refs(path, 5000) as sink:
        sink.put(CID(1, RAW, b"\x12\x20" + bytes(32)).bytes, b"y" * 4096)
    assert _leaves(store) == []
    with pytest.raises(RuntimeError), store.file_refs(path, 10) as sink:
        sink.put(CID(1, RAW, b"\x12\x20" + bytes(32)).bytes, b"y" * 10)
        raise RuntimeError("import failed")
    assert _leaves(store) == []


def test_many_leaves_are_batched_and_listed_in_pages(tmp_path: Path) -> None:
    """More leaves than one insert batch / one listing page (4,096): all recorded, listed once each,
    in multihash order and in file order."""
    path = tmp_path / "f.bin"
    content = chacha_bytes("pages", 4500 * 256 + 17)
    path.write_bytes(content)
    store = Filestore(tmp_path / "bs")
    cid = import_file(path, ImportParams(raw_leaves=True, chunker="size-256"), store).cid
    by_file = list(store.refs(file_order=True))
    assert [r.offset for r in by_file] == list(range(0, len(content), 256))
    by_key = list(store.refs())
    assert [ds_key(r.multihash) for r in by_key] == sorted(ds_key(r.multihash) for r in by_file)
    assert {r.multihash for r in by_key} == {r.multihash for r in by_file}
    with open_file(store, cid) as f:
        assert f.read() == content


def test_unusable_index_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bs").mkdir()
    (tmp_path / "bs" / INDEX_NAME).write_bytes(b"not a database, but long enough to be read as one" * 4)
    leaf = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
    for argv in (["cat", "--blockstore", str(tmp_path / "bs"), leaf],
                 ["filestore", "ls", "--blockstore", str(tmp_path / "bs")]):
        code, out, err = _run(capsys, *argv)
        assert (code, out) == (1, "") and err.startswith("Error: filestore index ") and err.count("\n") == 1


def test_index_of_another_format_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bs").mkdir()
    with sqlite3.connect(tmp_path / "bs" / INDEX_NAME) as db:
        db.execute("CREATE TABLE refs (mh BLOB PRIMARY KEY, path BLOB, offset INTEGER, size INTEGER)")
        db.execute("PRAGMA user_version = 7")
    code, out, err = _run(capsys, "filestore", "ls", "--blockstore", str(tmp_path / "bs"))
    assert (code, out) == (1, "") and "has format 7, this pyipld reads 1" in err and err.count("\n") == 1


def test_re_add_of_a_moved_file_points_at_it(tmp_path: Path) -> None:
    """A reference is replaced by the newest add (kubo keeps the first; a moved file stayed broken)."""
    a = tmp_path / "a.bin"
    a.write_bytes(chacha_bytes("moved", 300_000))
    store = Filestore(tmp_path / "bs")
    cid = import_file(a, ImportParams(raw_leaves=True), store).cid
    b = tmp_path / "b.bin"
    a.rename(b)
    with pytest.raises(FilestoreError):
        store.get(_leaves(store)[0].cid.bytes)
    assert import_file(b, ImportParams(raw_leaves=True), store).cid == cid
    with open_file(store, cid) as f:
        assert f.read() == b.read_bytes()


def test_stored_copy_wins_and_open_blockstore(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"copy me" * 100)
    plain = DirectoryBlockstore(tmp_path / "bs")
    cid = import_file(path, ImportParams(raw_leaves=True), plain).cid
    assert type(open_blockstore(tmp_path / "bs")) is DirectoryBlockstore
    store = Filestore(tmp_path / "bs")
    assert import_file(path, ImportParams(raw_leaves=True), store).cid == cid
    assert _leaves(store) == []  # already stored: no reference (boxo Put checks Has first)
    assert isinstance(open_blockstore(tmp_path / "bs"), Filestore)
    path.unlink()
    assert store.get(cid.bytes) == b"copy me" * 100
    with pytest.raises(NotFoundError):
        store.get(CID(1, RAW, b"\x12\x20" + bytes(32)).bytes)
    with pytest.raises(NotFoundError):
        Filestore(tmp_path / "none", create=False)


def test_each_block_is_hashed_once_and_corrupt_copies_are_caught(added: tuple[Filestore, Path, CID, bytes],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``get_verified`` over a filestore hashes every block exactly once (the store's own check) and
    still refuses a corrupt stored copy (the dag-pb root here)."""
    from pyipld import blockstore

    store, _, cid, content = added
    calls: list[int] = []
    original = CID.verify

    def counting(self: CID, data: bytes) -> bool:
        calls.append(len(data))
        return original(self, data)

    monkeypatch.setattr(CID, "verify", counting)
    with open_file(store, cid) as f:
        assert f.read() == content
    assert sorted(calls) == sorted([len(store.get(cid.bytes))] + [r.size for r in _leaves(store)])
    monkeypatch.setattr(CID, "verify", original)
    copy = store._path(cid.bytes)
    assert copy is not None
    copy.write_bytes(copy.read_bytes()[:-1] + b"\0")
    with pytest.raises(IntegrityError, match="is corrupt"):
        blockstore.get_verified(store, cid.bytes)


def test_index_is_sqlite_with_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("rel.txt").write_bytes(b"relative\n")
    assert _run(capsys, "add", "-q", "--nocopy", "--blockstore", "bs", "rel.txt")[0] == 0
    with sqlite3.connect(tmp_path / "bs" / INDEX_NAME) as db:
        rows = db.execute("SELECT key, path, offset, size FROM refs").fetchall()
    leaf = CID.decode("bafkreie2zhjpu337bqm62ib2wnsenrmk5wppaloduvpqffzce6xm7f44ia")  # raw "relative\n"
    assert rows == [(ds_key(leaf.multihash), os.fsencode(tmp_path / "rel.txt"), 0, 9)]


# -- CLI refusals ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["add", "--nocopy", "F"], "--nocopy needs --blockstore DIR (where the references are kept)"),
    (["add", "--nocopy", "--blockstore", "BS", "--car", "x.car", "F"], "--nocopy keeps references to the files"),
    (["add", "--nocopy", "--blockstore", "BS", "--dask", "local", "F"], "--nocopy cannot be combined with --dask"),
    (["add", "--nocopy", "--blockstore", "BS", "-"], "--nocopy cannot add stdin: missing file path or URL"),
    (["add", "--nocopy", "--blockstore", "BS", "F", "-"], "--nocopy cannot add stdin: missing file path or URL"),
    (["add", "-n", "--nocopy", "-"], "--nocopy cannot add stdin: missing file path or URL"),  # kubo: ErrMissingFsRef
    (["add", "--nocopy", "--blockstore", "BS", "http://127.0.0.1:9/d/x.bin"],  # the whole URL (was: its last segment)
     "--nocopy references local files only, not the URL http://127.0.0.1:9/d/x.bin (pyipld has no urlstore)\n"),
    (["add", "--nocopy", "--blockstore", "BS", "memory://bucket/x"], "--nocopy references local files only, not the URL"),
    (["add", "--nocopy", "--blockstore", "BS", "--mtime", "5", "F"], "--nocopy needs raw leaves, and raw-leaves"),
    (["add", "--nocopy", "--blockstore", "BS", "--profile", "unixfs-v0-2015", "F"],
     "nocopy option requires '--raw-leaves' to be enabled as well"),
    (["filestore", "ls", "--blockstore", "BS"], "filestore is not enabled in"),
    (["filestore", "verify"], "filestore needs --blockstore DIR"),
])
def test_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    (tmp_path / "F").write_bytes(b"file\n")
    if "memory://bucket/x" in argv:
        pytest.importorskip("fsspec")
        import fsspec

        fsspec.filesystem("memory").pipe("/bucket/x", b"remote")
    words = [str(tmp_path / w) if w in ("F", "BS", "x.car") else w for w in argv]
    code, out, err = _run(capsys, *words)
    assert code == 1 and out == "" and err.startswith(f"Error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "BS" / INDEX_NAME).exists()


def test_fscache_does_not_duplicate_referenced_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """kubo t0270: after ``add --raw-leaves --nocopy -r``, ``add --raw-leaves --fscache -r`` keeps the
    store small (no leaf copied), a plain ``add --raw-leaves -r`` duplicates the data."""
    src = tmp_path / "somedir"
    (src / "d").mkdir(parents=True)
    for i in range(3):
        (src / "d" / f"f{i}").write_bytes(chacha_bytes(f"t0270-{i}", 1_000_000))
    bs = str(tmp_path / "bs")

    def size() -> int:
        return sum(p.stat().st_size for p in Path(bs).rglob("*.data"))

    roots = set()
    for flags in (["--nocopy"], ["--fscache"]):
        code, out, _ = _run(capsys, "add", "-Q", "--raw-leaves", "-r", *flags, "--blockstore", bs, str(src))
        assert code == 0
        roots.add(out)
        assert size() < 100_000
    assert _run(capsys, "add", "-Q", "--raw-leaves", "-r", "--blockstore", bs, str(src))[1] in roots
    assert len(roots) == 1 and size() > 3_000_000
    assert sorted(_run(capsys, "filestore", "dups", "--blockstore", bs)[1].split()) == sorted(
        str(r.cid) for r in Filestore(bs, create=False).refs())


def test_refuses_named_pipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(tmp_path / "p")
    code, out, err = _run(capsys, "add", "--nocopy", "--blockstore", str(tmp_path / "bs"), str(tmp_path / "p"))
    assert code == 1 and out == "" and err.startswith("Error: --nocopy cannot reference the named pipe")


def test_only_hash_nocopy_needs_no_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "F").write_bytes(b"x" * 300_000)
    want = _run(capsys, "add", "-Q", "--raw-leaves", str(tmp_path / "F"))
    assert _run(capsys, "add", "-Q", "-n", "--nocopy", str(tmp_path / "F")) == want


# -- filestore ls / verify / dups ---------------------------------------------------------------------------------

def test_filestore_ls_verify_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(chacha_bytes("ls-a", 262144 + 7))
    (src / "b.txt").write_bytes(b"hello\n")
    bs = str(tmp_path / "bs")
    assert _run(capsys, "add", "-q", "-r", "--nocopy", "--blockstore", bs, str(src))[0] == 0
    store = Filestore(bs, create=False)
    refs = _leaves(store)
    assert [(r.shown_path, r.offset, r.size) for r in refs] == [
        (str(src / "a.bin"), 0, 262144), (str(src / "a.bin"), 262144, 7), (str(src / "b.txt"), 0, 6)]
    lines = [f"{r.cid!s:<50} {r.size:6d} {r.shown_path} {r.offset}" for r in refs]
    assert lines[2] == f"bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am      6 {src / 'b.txt'} 0"
    code, out, err = _run(capsys, "filestore", "ls", "--file-order", "--blockstore", bs)
    assert (code, out, err) == (0, "\n".join(lines) + "\n", "")
    code, out, err = _run(capsys, "filestore", "ls", "--blockstore", bs)
    assert out.splitlines() == sorted(lines, key=lambda ln: ds_key(CID.decode(ln.split()[0]).multihash))
    (src / "b.txt").write_bytes(b"HELLO\n")
    (src / "a.bin").unlink()
    code, out, err = _run(capsys, "filestore", "verify", "--file-order", "--blockstore", bs)
    assert (code, err) == (0, "")
    assert out.splitlines() == [f"no-file {lines[0]}", f"no-file {lines[1]}", f"changed {lines[2]}"]
    missing = "bafkreiawgscfjlwr52gquq6w4nbqjrslgk46i7gw75twvnzc3ievd6bg5e"
    code, out, err = _run(capsys, "filestore", "verify", "--blockstore", bs, missing, "nope")
    assert code == 0 and out.splitlines() == [f"missing {missing}", "ERROR   <corrupt key>"]
    assert err.startswith("nope: ")
    code, out, err = _run(capsys, "filestore", "ls", "--blockstore", bs, missing)
    assert (code, out) == (1, "")
    assert err == f"ipld: could not find {missing}\nError: errors while displaying some entries\n"
    assert _run(capsys, "filestore", "dups", "--blockstore", bs) == (0, "", "")


def test_other_sinks_keep_copies(tmp_path: Path) -> None:
    """Sinks without ``file_refs`` keep copies of a path's leaves: the hook is only the filestore's."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    store = MemoryBlockstore()
    result = import_file(path, ImportParams(raw_leaves=True), store)
    path.unlink()
    assert store.get(result.cid.bytes) == b"abc" * 1000


# -- kubo's sharness t0271-filestore-utils.sh (ipfs/kubo test/sharness, the dataset and expected lines) --------------

T0271_ROOT = "QmRueCuPMYYvdxWz1vWncF7wzCScEx4qasZXo5aVBb1R4V"
T0271_ROOT_BASE32 = "bafybeibva2uh4qpwjo2yr5g7m7nd5kfq64atydq77qdlrikh5uejwqdcbi"
T0271_FILE_ORDER = """\
bafkreicj3ezgtrh3euw2gyub6w3jydhnouqobxt7stbgtns3mv3iwv6bqq   1000 somedir/file1 0
bafkreibxwxisv4cld6x76ybqbvf2uwbkoswjqt4hut46af6rps2twme7ey  10000 somedir/file2 0
bafkreidntk6ciin24oez6yjz4b25fgwecncvi4ua4uhr2tdyenogpzpid4 262144 somedir/file3 0
bafkreidwie26yauqbhpd2nhhhmod55irq3z372mh6gw4ikl2ifo34c5jra 262144 somedir/file3 262144
bafkreib7piyesy3dr22sawmycdftrmpyt3z4tmhxrdig2zt5zdp7qwbuay 262144 somedir/file3 524288
bafkreigxp5k3k6b3i5sldu4r3im74nfxmoptuuubcvq6rg632nfznskglu 213568 somedir/file3 786432
"""
T0271_FILE1 = "bafkreicj3ezgtrh3euw2gyub6w3jydhnouqobxt7stbgtns3mv3iwv6bqq"
T0271_FILE3 = "QmfE4SDQazxTD7u8VTYs9AJqQL8rrJPUAorLeJXKSZrVf9"


def test_kubo_t0271_filestore_utils(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """kubo's t0271 run against pyipld: ``random 1000 1`` … (jbenet/go-random) added with ``add --raw-leaves
    --nocopy -r``; the root, ``filestore ls``/``verify`` lines (paths here are absolute: we strip the
    prefix), a moved file (no-file, then ok again), a changed first KiB (changed), and ``dups``."""
    from tests.test_commp_random import go_random_bytes

    monkeypatch.chdir(tmp_path)
    some = tmp_path / "somedir"
    some.mkdir()
    for n, (size, seed) in enumerate([(1000, 1), (10000, 2), (1000000, 3)], 1):
        (some / f"file{n}").write_bytes(go_random_bytes(size, seed))
    prefix = f"{tmp_path}/"

    def run(*argv: str) -> tuple[int, str, str]:
        code, out, err = _run(capsys, *argv)
        return code, out.replace(prefix, ""), err.replace(prefix, "")

    code, out, _ = run("add", "--raw-leaves", "--nocopy", "-r", "-q", "--blockstore", "bs", "somedir")
    assert code == 0 and out.splitlines()[-1] == T0271_ROOT
    code, out, _ = run("add", "--cid-base=base32", "--raw-leaves", "--nocopy", "-r", "-Q", "--blockstore", "bs",
                       "somedir")
    assert out == T0271_ROOT_BASE32 + "\n"
    listed = run("filestore", "ls", "--blockstore", "bs")[1].splitlines()
    assert sorted(listed) == sorted(T0271_FILE_ORDER.splitlines())  # sharness sorts it too
    keys = [ds_key(CID.decode(ln.split()[0]).multihash) for ln in listed]
    assert keys == sorted(keys) and keys[0].startswith("CIQ")  # kubo's datastore order: /filestore/CIQ…
    assert run("filestore", "ls", "--file-order", "--blockstore", "bs")[1] == T0271_FILE_ORDER
    assert "somedir/file1" in run("filestore", "ls", "--blockstore", "bs", T0271_FILE1)[1]
    verify_ok = "".join(f"ok      {line}\n" for line in T0271_FILE_ORDER.splitlines())
    assert run("filestore", "verify", "--file-order", "--blockstore", "bs")[1] == verify_ok
    assert sorted(run("filestore", "verify", "--blockstore", "bs")[1].splitlines()) == sorted(verify_ok.splitlines())
    assert "somedir/file1" in run("filestore", "verify", "--blockstore", "bs", T0271_FILE1)[1]
    (some / "file1").rename(some / "file1.bk")
    assert run("cat", "--blockstore", "bs", T0271_FILE1)[0] == 1
    assert any(ln.startswith("no-file") and "somedir/file1" in ln
               for ln in run("filestore", "verify", "--blockstore", "bs")[1].splitlines())
    (some / "file1.bk").rename(some / "file1")
    store = open_blockstore("bs")
    with open_file(store, CID.decode(T0271_FILE1)) as f:
        assert f.read() == (some / "file1").read_bytes()
    with open(some / "file3", "r+b") as f:  # dd if=/dev/zero of=somedir/file3 bs=1024 count=1
        f.write(bytes(1024))
    assert run("cat", "--blockstore", "bs", T0271_FILE3)[0] == 1
    assert any(ln.startswith("changed") and "somedir/file3" in ln
               for ln in run("filestore", "verify", "--blockstore", "bs")[1].splitlines())
    # test_filestore_dups: a copying add of file1 into the same store
    assert run("add", "-q", "--raw-leaves", "--blockstore", "bs", "somedir/file1")[1] == T0271_FILE1 + "\n"
    assert run("filestore", "dups", "--blockstore", "bs") == (0, T0271_FILE1 + "\n", "")


@pytest.mark.interop
def test_nocopy_tree_matches_live_kubo(tmp_path: Path) -> None:
    """The live kubo 0.22 oracle (``--raw-leaves``: what ``--nocopy`` adds with) over a tree of files of
    several size classes, for four parameter sets; pyipld adds the tree with references into a
    filestore, gets the same root and reads every file back."""
    import json

    from tests._kubo import _probe, kubo_backend, run_in_netns
    from tests._shared import SHARED

    kubo_backend()  # skips without kubo
    if SHARED is None:
        pytest.skip("needs the shared kubo oracle (PYIPLD_SHARED)")

    src = tmp_path / "t"
    (src / "d").mkdir(parents=True)
    for name, size in (("big.bin", 3_000_007), ("d/m.bin", 70_000), ("d/x.txt", 2), ("e", 0), ("one", 262_144)):
        (src / name).write_bytes(chacha_bytes(f"live-{name}", size))
    cases = [{"raw_leaves": True}, {"raw_leaves": True, "chunker": "buzhash"}, {"cid_version": 1, "trickle": True},
             {"raw_leaves": True, "chunker": "rabin-16384-65536-131072", "inline": True}]
    oracle = str(Path(SHARED or "") / "tools" / "kubo_oracle.py")
    lines = "".join(json.dumps({"input": str(src), "params": p}) + "\n" for p in cases)
    r = run_in_netns([_probe()[1], oracle, "batch", "-"], stdin=lines, timeout=300)
    answers = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    assert len(answers) == len(cases), r.stderr[-2000:]
    for i, (params, answer) in enumerate(zip(cases, answers, strict=True)):
        store = Filestore(tmp_path / f"bs{i}")
        result = import_paths([src], ImportParams(**kubo022_param_kwargs(params, directory=True)), store)
        assert str(result.cid) == answer["cid"], params
        for name in ("big.bin", "d/m.bin", "one"):
            with open_file(store, resolve_path(store, f"{result.cid}/{name}").cid) as f:
                assert f.read() == (src / name).read_bytes()


def test_a_referenced_block_is_read_without_trying_a_copy(added: tuple[Filestore, Path, CID, bytes],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A reference is looked up first: no failed open of a copy (and its exception) per block read."""
    store, _, _, content = added
    leaf = _leaves(store)[1]
    tried: list[bytes] = []
    real = DirectoryBlockstore.get

    def spy(self: DirectoryBlockstore, cid: bytes) -> bytes:
        tried.append(cid)
        return real(self, cid)

    monkeypatch.setattr(DirectoryBlockstore, "get", spy)
    want = content[leaf.offset : leaf.offset + leaf.size]
    assert store.get(leaf.cid.bytes) == want and store.get_verified(leaf.cid.bytes) == want
    assert tried == []


def test_a_copy_serves_when_the_referenced_file_changed(added: tuple[Filestore, Path, CID, bytes]) -> None:
    """A block both copied and referenced (copied by an earlier plain add) still reads after the file
    changed, as boxo reads the copy first; without a copy the change is the error."""
    store, path, _, content = added
    first, second = _leaves(store)[:2]
    block = content[first.offset : first.offset + first.size]
    DirectoryBlockstore.put(store, first.cid.bytes, block)  # the copy a plain add would have stored
    path.write_bytes(bytes(len(content)))  # every reference is now wrong
    assert store.get(first.cid.bytes) == block and store.get_verified(first.cid.bytes) == block
    with pytest.raises(FilestoreError):
        store.get(second.cid.bytes)
