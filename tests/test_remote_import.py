"""Import from where the data lies: fsspec URLs (``s3://`` on a loopback moto server, ``memory://``)
give the CIDs and ``added`` lines of the same tree on disk, in one process and on Dask.

The S3 server is moto's, started by the test module in a thread of this process on 127.0.0.1
with a free port (skipped when moto or s3fs is missing); ``memory://`` tests need only fsspec.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyipld.cli import main
from pyipld.errors import ConfigError, FileChangedError, NotFoundError, SourceError, UnixFSError
from pyipld.unixfs import remote
from pyipld.unixfs.ignore import compile_rules
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.remote import import_urls
from pyipld.unixfs.tree import AddedEntry, import_paths

fsspec = pytest.importorskip("fsspec")

BIG = bytes(range(256)) * 3300 + b"tail"  # 844 804 bytes: several 256 KiB chunks and a partial one
TREE: dict[str, bytes] = {
    "data/a.txt": b"hello\n",
    "data/empty": b"",
    "data/nested/deeper/x.bin": b"x" * 10,
    "data/nested/y": b"why",
    "data/big.bin": BIG,
    "data/sp ace é.txt": "unicode ✓\n".encode(),
    "data/.hidden": b"secret",
    "data/.dot/inner": b"in a hidden directory",
    "data/skip.log": b"ignored by a rule",
}
EMPTY_DIRS = ["data/marker", "data/nested/empty-marker"]
PARAMS = {
    "kubo-defaults": ImportParams(),
    "cidv1-size1000": ImportParams(cid_version=1, chunker="size-1000"),
    "buzhash": ImportParams(chunker="buzhash"),
    "trickle": ImportParams(layout="trickle", chunker="size-4096", raw_leaves=True),
    "mode-mtime": ImportParams(mode=0o644, mtime=(1_700_000_000, 5)),
}


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("disk")
    for key, body in TREE.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    for key in EMPTY_DIRS:
        (root / key).mkdir(parents=True)
    return root


def events(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, list[tuple[bytes, str, int, str]]]:
    seen: list[tuple[bytes, str, int, str]] = []

    def on_added(e: AddedEntry) -> None:
        seen.append((e.path, str(e.cid), e.size, e.kind))

    result = fn(*args, on_added=on_added, **kwargs)
    return str(result.cid), seen


# -- memory:// (fsspec only) -------------------------------------------------------------------

@pytest.fixture
def memfs() -> Iterator[Any]:
    fs = fsspec.filesystem("memory")
    base = "/pyipld-test"
    for key, body in TREE.items():
        fs.pipe_file(f"{base}/{key}", body)
    for key in EMPTY_DIRS:
        fs.mkdir(f"{base}/{key}")
    yield fs
    fs.rm(base, recursive=True)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_memory_tree_equals_disk(memfs: Any, disk: Path, name: str) -> None:
    params = PARAMS[name]
    every = events(import_paths, [disk / "data"], params)
    assert events(import_urls, ["memory://pyipld-test/data"], params) == every
    top = (every[0], [e for e in every[1] if b"/" not in e[0]])  # report="top": what add -Q needs
    assert events(import_urls, ["memory://pyipld-test/data"], params, report="top") == top


@pytest.mark.parametrize("opts", [{"hidden": True}, {"empty_dirs": False}, {"hamt_threshold": 100}])
def test_memory_walk_rules_equal_disk(memfs: Any, disk: Path, opts: dict[str, Any]) -> None:
    params = ImportParams(**opts)
    rules = compile_rules(["*.log", "deeper"])
    got = events(import_urls, ["memory://pyipld-test/data"], params, exclude=rules)
    assert got == events(import_paths, [disk / "data"], params, exclude=rules)
    assert all(b"skip.log" not in p and b"deeper" not in p for p, *_ in got[1])


def test_memory_files_and_wrap_equal_disk(memfs: Any, disk: Path) -> None:
    urls = ["memory://pyipld-test/data/big.bin", "memory://pyipld-test/data/nested", "memory://pyipld-test/data/empty"]
    local = [disk / "data/big.bin", disk / "data/nested", disk / "data/empty"]
    assert events(import_urls, urls, wrap=True) == events(import_paths, local, wrap=True)
    assert events(import_urls, urls[:1], recursive=False) == events(import_paths, local[:1], recursive=False)
    with pytest.raises(ConfigError, match="is a directory"):
        import_urls(urls[1:2], recursive=False)


def test_memory_small_reads_check_every_range(memfs: Any, disk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many ranged reads per object (and the version check after them) give the same CIDs."""
    monkeypatch.setattr(remote, "READ_BYTES", 3000)
    reads: list[tuple[int, int]] = []
    real = remote.RemoteSource.read

    def counted(self: remote.RemoteSource, path: str, start: int, stop: int) -> bytes:
        reads.append((start, stop))
        return real(self, path, start, stop)

    monkeypatch.setattr(remote.RemoteSource, "read", counted)
    for name in ("kubo-defaults", "buzhash"):
        assert events(import_urls, ["memory://pyipld-test/data"], PARAMS[name]) == \
            events(import_paths, [disk / "data"], PARAMS[name])
    assert max(b - a for a, b in reads) <= 262144 + 1  # one chunk (+ the growth probe), never a whole object
    assert len(reads) > len(BIG) // 262144


@pytest.mark.parametrize("delta", [-1, 1, 7])
def test_object_changed_while_read_is_an_error(memfs: Any, monkeypatch: pytest.MonkeyPatch, delta: int) -> None:
    monkeypatch.setattr(remote, "READ_BYTES", 262144)
    real = remote.RemoteSource.read
    calls = []

    def swapping(self: remote.RemoteSource, path: str, start: int, stop: int) -> bytes:
        calls.append(path)
        if len(calls) == 1:  # rewritten after the listing, before the first read
            memfs.pipe_file(path, b"z" * (len(BIG) + delta))
        return real(self, path, start, stop)

    monkeypatch.setattr(remote.RemoteSource, "read", swapping)
    with pytest.raises(FileChangedError, match="big.bin"):
        import_urls(["memory://pyipld-test/data/big.bin"])


def test_memory_missing_and_unknown_protocols(memfs: Any) -> None:
    with pytest.raises(NotFoundError, match="memory://pyipld-test/nope: no such object or prefix"):
        import_urls(["memory://pyipld-test/nope"])
    with pytest.raises(ConfigError, match="unknown fsspec protocol 'nosuchproto'"):
        import_urls(["nosuchproto://bucket/key"])
    with pytest.raises(ConfigError, match="share their protocol"):
        import_urls(["memory://pyipld-test/data", "file:///tmp"])
    with pytest.raises(ConfigError, match="preserve"):
        import_urls(["memory://pyipld-test/data"], ImportParams(preserve_mtime=True))


def test_protocol_whose_package_is_missing_is_a_config_error(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    missing = [(proto, mod) for proto, mod in (("gcs", "gcsfs"), ("abfs", "adlfs"), ("oci", "ocifs"),
                                                 ("webdav", "webdav4")) if importlib.util.find_spec(mod) is None]
    if not missing:
        pytest.skip("every candidate protocol package is installed")
    proto = missing[0][0]
    with pytest.raises(ConfigError, match=f"{proto}:// needs a package that is not installed"):
        import_urls([f"{proto}://bucket/key"])
    assert main(["add", "-r", f"{proto}://bucket/key"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {proto}:// needs a package that is not installed") and err.count("\n") == 1


def test_cli_memory_url_equals_disk(memfs: Any, disk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["add", "-r", "memory://pyipld-test/data"]) == 0
    got = capsys.readouterr().out
    assert main(["add", "-r", str(disk / "data")]) == 0
    assert got == capsys.readouterr().out
    assert "added" in got and "data/nested/deeper/x.bin" in got


def test_cli_refusals(memfs: Any, disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["add", "memory://pyipld-test/data"], "Error: 'memory://pyipld-test/data' is a directory, use the '-r' flag"),
        (["add", "-r", "memory://pyipld-test/data", str(disk / "data/a.txt")], "Error: fsspec URLs cannot be mixed"),
        (["add", "-r", "--cache", str(tmp_path / "c.db"), "memory://pyipld-test/data"], "Error: --cache keys local"),
        (["add", "-r", "memory://pyipld-test/missing"], "Error: memory://pyipld-test/missing: no such object or prefix"),
        (["add", "-r", "--preserve-mode", "memory://pyipld-test/data"], "Error: --preserve-mode/--preserve-mtime"),
    ]
    for argv, want in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith(want), (argv, err)
        assert "Traceback" not in err


def test_cli_storage_options_must_be_a_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["add", "--storage-options", "[1]", "memory://x/y"]) == 1
    assert "expected a JSON object" in capsys.readouterr().err


def test_cli_start_up_stays_lazy(tmp_path: Path) -> None:
    """A local add imports neither fsspec nor s3fs (only a URL argument does)."""
    f = tmp_path / "f"
    f.write_bytes(b"x")
    code = ("import sys; from pyipld.cli import main; rc = main(['add', '-Q', sys.argv[1]]); "
            "bad = [m for m in ('fsspec', 's3fs', 'botocore') if m in sys.modules]; "
            "assert rc == 0 and not bad, bad")
    subprocess.run([sys.executable, "-c", code, str(f)], check=True, timeout=60, capture_output=True)


def test_file_url_equals_plain_path(disk: Path) -> None:
    """fsspec's own local file system (file://) reads the same tree the same way."""
    assert events(import_urls, [f"file://{disk}/data"], PARAMS["buzhash"]) == \
        events(import_paths, [disk / "data"], PARAMS["buzhash"])
    with pytest.raises(NotFoundError, match=f"^file://{disk}/nope: no such object or prefix"):
        import_urls([f"file://{disk}/nope"])


# -- s3:// on a loopback moto server ------------------------------------------------------------

@pytest.fixture(scope="module")
def s3(disk: Path) -> Iterator[dict[str, Any]]:
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
    client = boto3.client("s3", endpoint_url=endpoint, **creds)
    client.create_bucket(Bucket="bkt")
    for key, body in TREE.items():
        client.put_object(Bucket="bkt", Key=key, Body=body)
    for key in EMPTY_DIRS:
        client.put_object(Bucket="bkt", Key=key + "/", Body=b"")  # "directory" markers
    client.put_object(Bucket="bkt", Key="data/nested/", Body=b"")  # a marker beside real keys
    client.create_bucket(Bucket="odd")
    for key in ("both", "both/c", "dbl//z"):
        client.put_object(Bucket="odd", Key=key, Body=b"1")
    opts = {"key": "testing", "secret": "testing", "use_listings_cache": False,
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    try:
        yield {"endpoint": endpoint, "options": opts, "client": client}
    finally:
        server.stop()


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_s3_tree_equals_disk(s3: dict[str, Any], disk: Path, name: str) -> None:
    params = PARAMS[name]
    assert events(import_urls, ["s3://bkt/data"], params, storage_options=s3["options"]) == \
        events(import_paths, [disk / "data"], params)


def test_s3_bucket_root_and_rules(s3: dict[str, Any], disk: Path, tmp_path: Path) -> None:
    params = ImportParams(hidden=True, empty_dirs=False)
    rules = compile_rules(["*.log"])
    got = events(import_urls, ["s3://bkt"], params, storage_options=s3["options"], exclude=rules)
    shutil.copytree(disk, tmp_path / "bkt")  # the same tree under the bucket's name
    assert got == events(import_paths, [tmp_path / "bkt"], params, exclude=rules)
    assert got[1][-1][0] == b"bkt" and any(p == b"bkt/data/.hidden" for p, *_ in got[1])


def test_s3_many_ranged_reads(s3: dict[str, Any], disk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "READ_BYTES", 100_000)
    params = PARAMS["cidv1-size1000"]
    assert events(import_urls, ["s3://bkt/data/big.bin"], params, storage_options=s3["options"]) == \
        events(import_paths, [disk / "data/big.bin"], params)


def s3_cli(s3: dict[str, Any], *argv: str) -> list[str]:
    return ["add", "--storage-options", json.dumps(s3["options"]), *argv]


def test_cli_s3_equals_disk(s3: dict[str, Any], disk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(s3_cli(s3, "-r", "--cid-version=1", "s3://bkt/data")) == 0
    got = capsys.readouterr().out
    assert main(["add", "-r", "--cid-version=1", str(disk / "data")]) == 0
    want = capsys.readouterr().out
    assert got == want
    assert "added bafy" in got and " data/sp ace é.txt\n" in got and " data/marker\n" in got


def test_cli_s3_environment_configuration(s3: dict[str, Any], disk: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """No flags: fsspec's FSSPEC_S3_* variables and AWS_* credentials reach s3fs."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": s3["endpoint"], "use_listings_cache": False})
    assert main(["add", "-Q", "-r", "s3://bkt/data/nested"]) == 0
    got = capsys.readouterr().out
    assert main(["add", "-Q", "-r", str(disk / "data/nested")]) == 0
    assert got == capsys.readouterr().out


def test_cli_s3_errors_are_one_line(s3: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (("-r", "s3://bkt/nope"), "Error: s3://bkt/nope: no such object or prefix"),
        (("-r", "s3://no-such-bucket/x"), "Error: s3://no-such-bucket/x: no such object or prefix"),
        (("-r", "s3://odd"), "Error: s3://odd/both is both an object and a prefix"),
        (("-r", "s3://odd/dbl"), "Error: s3://odd/dbl/: an object key with an empty path segment"),
    ]
    for argv, want in cases:
        assert main(s3_cli(s3, *argv)) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith(want) and err.count("\n") == 1, (argv, err)
    with pytest.raises(UnixFSError, match="both an object and a prefix"):
        import_urls(["s3://odd/"], storage_options=s3["options"])
    with pytest.raises(NotFoundError):
        import_urls(["s3://bkt/nope"], storage_options=s3["options"])


def test_s3_bad_credentials(s3: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """With moto's IAM checks on, unknown keys are refused: a SourceError, one line on the CLI."""
    def reset_auth(count: str) -> None:
        req = urllib.request.Request(f"{s3['endpoint']}/moto-api/reset-auth", data=count.encode(), method="POST",
                                     headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(req, timeout=10) as response:
            assert response.status == 200

    reset_auth("0")
    try:
        with pytest.raises(SourceError, match="s3://bkt/data"):
            import_urls(["s3://bkt/data"], storage_options=s3["options"])
        assert main(s3_cli(s3, "-r", "s3://bkt/data")) == 1
        err = capsys.readouterr().err
        assert err.startswith("Error: s3://bkt/data: ") and err.count("\n") == 1, err
    finally:
        reset_auth("inf")


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    pytest.importorskip("distributed")
    from pyipld.distributed import dask_client as open_client

    with open_client("local", workers=2) as client:
        yield client


def test_dask_reads_objects_on_the_workers(s3: dict[str, Any], disk: Path, dask_client: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from pyipld.distributed import import_paths_dask

    readers: set[str] = set()
    real = remote.RemoteSource.read

    def traced(self: remote.RemoteSource, path: str, start: int, stop: int) -> bytes:
        readers.add(threading.current_thread().name)
        return real(self, path, start, stop)

    monkeypatch.setattr(remote.RemoteSource, "read", traced)
    # big.bin is split in every case: fixed-size spans (balanced, trickle) and candidate scans
    # then leaf spans (rabin with few links per node)
    cases = {name: PARAMS[name] for name in ("kubo-defaults", "buzhash", "trickle")}
    cases["rabin-scans"] = ImportParams(chunker="rabin-2048-4096-8192", max_links=4, cid_version=1)
    for name, params in cases.items():
        got = events(import_paths_dask, ["s3://bkt/data"], params, dask_client,
                     storage_options=s3["options"], task_bytes=200_000)
        assert got == events(import_paths, [disk / "data"], params), name
    assert readers and threading.main_thread().name not in readers, readers


def test_cli_dask_local_s3_equals_disk(s3: dict[str, Any], disk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(s3_cli(s3, "-r", "--dask", "local", "--chunker=size-65536", "s3://bkt/data")) == 0
    got = capsys.readouterr().out
    assert main(["add", "-r", "--chunker=size-65536", str(disk / "data")]) == 0
    assert got == capsys.readouterr().out


@pytest.mark.slow
def test_tasks_pickle_to_worker_processes(s3: dict[str, Any], disk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks (RemoteSource, key, size, version, byte ranges) pickle to other processes, which
    read the objects themselves: a spawn process pool as the executor, sizes that split files."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from pyipld.unixfs.parallel import ParallelImporter
    from pyipld.unixfs.remote import list_objects

    params = ImportParams(chunker="size-4096", max_links=4)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        source, objects = list_objects(["s3://bkt/data"], params, storage_options=s3["options"])
        runner = ParallelImporter(pool, params, task_bytes=50_000, source=source)
        roots = runner.run(objects)
    assert len(roots) == 7  # every non-hidden, non-empty-dir object

    def no_reads_here(*args: Any) -> bytes:
        raise AssertionError("the coordinator read an object")

    monkeypatch.setattr(remote.RemoteSource, "read", no_reads_here)
    got = events(import_urls, ["s3://bkt/data"], params, storage_options=s3["options"], file_roots=runner.file_roots)
    assert got == events(import_paths, [disk / "data"], params)


def test_memory_stays_bounded_for_a_large_object(tmp_path: Path) -> None:
    """A 48 MiB object read through fsspec (file://) never has more than a few reads in memory."""
    import tracemalloc

    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.writelines(bytes([i]) * (1 << 20) for i in range(48))
    params = ImportParams(cid_version=1)
    tracemalloc.start()
    try:
        got = import_urls([f"file://{big}"], params, jobs=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == import_paths([big], params)
    assert peak < 24 << 20, peak  # half the object: a whole-object read would be 48 MiB


def test_cli_car_from_url_is_byte_identical(memfs: Any, disk: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Blocks kept (--car, -w): the CAR written from a URL is the CAR written from the disk tree."""
    a, b = tmp_path / "url.car", tmp_path / "disk.car"
    assert main(["add", "-r", "-w", "--car", str(a), "memory://pyipld-test/data"]) == 0
    assert main(["add", "-r", "-w", "--car", str(b), str(disk / "data")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[: len(out) // 2] == out[len(out) // 2 :]
    assert a.read_bytes() == b.read_bytes()


def test_cli_car_from_url_keeps_no_resume_journal(memfs: Any, tmp_path: Path) -> None:
    """Regression (the merge of URL inputs and resumable --car): a URL has no stat data to
    journal, so its --car run is not resumable — it used to fail with an internal error."""
    car = tmp_path / "url.car"
    assert main(["add", "-Q", "-r", "--car", str(car), "memory://pyipld-test/data"]) == 0
    assert car.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["url.car"]


@pytest.mark.interop
def test_s3_tree_root_equals_real_kubo(s3: dict[str, Any], disk: Path) -> None:
    """kubo 0.22 itself (its only-hash add of the tree on disk, hidden files included) gives
    the root CID the import through s3:// gives."""
    from tests._kubo import kubo_default_cids

    kubo = kubo_default_cids([str(disk / "data")], timeout=300)
    params = ImportParams(hidden=True, hamt_threshold_inclusive=True)  # kubo 0.22's rules
    assert [str(import_urls(["s3://bkt/data"], params, storage_options=s3["options"]).cid)] == kubo


def test_worker_without_the_protocol_package_fails_loudly(memfs: Any) -> None:
    """A whole-object task that cannot even open the store raises (no silent coordinator reads);
    one whose object vanished returns None (the coordinator reports the error)."""
    from pyipld.unixfs.remote import RemoteSource, hash_objects

    with pytest.raises(ConfigError, match="unknown fsspec protocol"):
        hash_objects(RemoteSource("nosuchproto"), [(b"/x", 1, 0)], ImportParams())
    got = hash_objects(RemoteSource("memory"), [(b"/pyipld-test/gone", 3, 0), (b"/pyipld-test/data/a.txt", 6, 0)],
                       ImportParams())
    assert got[0] is None and got[1] is not None
    assert got[1].data_size == 6
