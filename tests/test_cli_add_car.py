"""``pyipld add … --car OUT.car [--car-version 1|2] [--commp]``: one-pass import into a CAR.

The CAR must carry the root ``add -n`` prints and exactly the blocks of that DAG (the
blocks ``ipfs dag export`` of the root would write: checked against the export of a
MemoryBlockstore import), a CARv2 a valid index, ``--commp`` the piece ``pyipld commp``
computes from the file, and a failed add must leave no OUT.car behind.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from pyipld import cli
from pyipld.blockstore import DirectoryBlockstore, MemoryBlockstore
from pyipld.car.export import iter_dag
from pyipld.car.reader import open_car
from pyipld.car.v2 import extract_v1
from pyipld.cid import CID
from pyipld.filecoin.commp import commp_bytes
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.tree import import_paths

from ._deterministic import chacha_bytes


class _Sink:
    def __init__(self, store: MemoryBlockstore) -> None:
        self.put = store.put


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("addcar") / "data"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "wide").mkdir()
    (root / "big.bin").write_bytes(chacha_bytes("addcar-big", 600_000))
    (root / "same.bin").write_bytes(chacha_bytes("addcar-big", 600_000))  # duplicate blocks: written once
    (root / "empty.txt").write_bytes(b"")
    (root / "sub" / "a.txt").write_bytes(b"hello\n")
    (root / "sub" / "deeper" / "b.bin").write_bytes(chacha_bytes("addcar-b", 70_000))
    for i in range(30):
        (root / "wide" / f"n{i:02}").write_bytes(b"%d" % i)
    os.symlink("sub/a.txt", root / "link")
    return root


def add(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli.main(["add", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def car_blocks(path: Path) -> list[tuple[bytes, bytes]]:
    with open_car(path) as car:
        return [(s.cid, bytes(s.data)) for s in car.iter_sections()]


def exported(paths: list[Path], params: ImportParams, roots: list[CID]) -> set[bytes]:
    """The blocks `ipfs dag export` of each root writes, from a MemoryBlockstore import."""
    store = MemoryBlockstore()
    for p in paths:
        import_paths([p], params, _Sink(store), recursive=True)  # type: ignore[arg-type]
    return {cid for root in roots for cid, _ in iter_dag(store, root)}


PARAMS = [
    ([], ImportParams()),
    (["--cid-version", "1"], ImportParams(cid_version=1)),
    (["--hamt-threshold", "1", "--max-hamt-fanout", "16", "-s", "size-4096"],
     ImportParams(hamt_threshold=1, hamt_fanout=16, chunker="size-4096")),
    (["--inline", "--raw-leaves", "-s", "size-100000"], ImportParams(inline=True, raw_leaves=True,
                                                                       chunker="size-100000")),
]


@pytest.mark.parametrize(("flags", "params"), PARAMS, ids=["default", "v1", "hamt", "inline"])
def test_directory_car_has_the_add_root_and_exactly_the_dag(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path, flags: list[str], params: ImportParams
) -> None:
    out = tmp_path / "out.car"
    rc, stdout, _ = add(capsys, "-r", str(tree), "--car", str(out), *flags)
    assert rc == 0
    lines = stdout.splitlines()
    rc, only_hash, _ = add(capsys, "-r", str(tree), "-n", "-Q", *flags)
    root = CID.decode(only_hash.strip())
    assert lines[-1] == f"added {root} data" and len(lines) > 40  # kubo's output is unchanged by --car
    with open_car(out) as car:
        assert list(car.roots) == [root]
    blocks = car_blocks(out)
    cids = [cid for cid, _ in blocks]
    assert len(cids) == len(set(cids))  # de-duplicated (big.bin and same.bin share every block)
    assert all(CID.from_bytes(cid).verify(data) for cid, data in blocks)
    expected = exported([tree], params, [root])
    identity = {c for c in expected if CID.from_bytes(c).hash_code == 0}
    assert set(cids) - identity == expected - identity  # nothing missing, nothing extra


def test_single_file_and_stdin(capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "f.car"
    rc, stdout, _ = add(capsys, str(tree / "big.bin"), "--car", str(out), "-Q")
    assert rc == 0
    root = CID.decode(stdout.strip())
    with open_car(out) as car:
        assert list(car.roots) == [root]
    assert {c for c, _ in car_blocks(out)} == exported([tree / "big.bin"], ImportParams(), [root])
    data = chacha_bytes("addcar-stdin", 300_000)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    out2 = tmp_path / "stdin.car"
    rc, stdout, _ = add(capsys, "--car", str(out2), "-w", "--stdin-name", "x.bin", "-Q")
    assert rc == 0
    with open_car(out2) as car:
        assert [str(r) for r in car.roots] == [stdout.strip()]  # the -w wrapper is the root


def test_several_paths_one_root_each_and_wrap(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                              tree: Path) -> None:
    out = tmp_path / "many.car"
    paths = [str(tree / "sub"), str(tree / "big.bin"), str(tree / "link")]
    rc, stdout, _ = add(capsys, "-r", *paths, "--car", str(out))
    assert rc == 0
    tops = [line.split()[1] for line in stdout.splitlines() if "/" not in line.split(maxsplit=2)[2]]
    assert len(tops) == 3
    with open_car(out) as car:
        assert [str(r) for r in car.roots] == tops
    out_w = tmp_path / "wrapped.car"
    rc, stdout, _ = add(capsys, "-r", "-w", *paths, "--car", str(out_w), "-Q")
    with open_car(out_w) as car:
        assert [str(r) for r in car.roots] == [stdout.strip()]


def test_carv2_has_a_valid_index_and_the_same_payload(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      tree: Path) -> None:
    v1, v2 = tmp_path / "v1.car", tmp_path / "v2.car"
    assert add(capsys, "-r", str(tree), "--car", str(v1), "-Q")[0] == 0
    assert add(capsys, "-r", str(tree), "--car", str(v2), "--car-version", "2", "-Q")[0] == 0
    with open_car(v2) as car:
        assert car.has_index
        index = car.read_index()
        assert index is not None
        car.verify_index(index)
        car.verify_blocks()
    inner = io.BytesIO()
    with open(v2, "rb") as f:
        extract_v1(f, inner)
    assert inner.getvalue() == v1.read_bytes()


@pytest.mark.parametrize("version", ["1", "2"])
def test_commp_equals_pyipld_commp_of_the_car(capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path,
                                              version: str) -> None:
    out = tmp_path / "p.car"
    rc, stdout, stderr = add(capsys, "-r", str(tree), "--car", str(out), "--car-version", version, "--commp", "-Q")
    assert rc == 0 and stdout.count("\n") == 1  # stdout keeps add's output only; the piece goes to stderr
    assert cli.main(["commp", str(out)]) == 0
    reference = capsys.readouterr().out
    deal_bytes = out.read_bytes()
    if version == "2":
        inner = io.BytesIO()
        with open(out, "rb") as f:
            extract_v1(f, inner)
        deal_bytes = inner.getvalue()
    else:
        assert stderr.strip() == reference.strip()  # byte-for-byte the `pyipld commp OUT.car` report
    info = commp_bytes(deal_bytes)
    assert f"CommPCid: {info.cid_v1}" in stderr.splitlines()
    assert f"PieceCIDv2: {info.cid_v2}" in stderr.splitlines()


def test_commp_of_a_car_whose_body_moved(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # a one-byte file with raw leaves has a 36-byte raw root, shorter than the placeholder: the
    # writer rewrites the header and moves the body, which the one-pass tap cannot follow
    src = tmp_path / "one"
    src.write_bytes(b"x")
    out = tmp_path / "one.car"
    rc, stdout, stderr = add(capsys, str(src), "--car", str(out), "--cid-version", "1", "--commp", "-Q")
    assert rc == 0 and stdout.strip().startswith("bafkrei")
    assert f"CommPCid: {commp_bytes(out.read_bytes()).cid_v1}" in stderr


def test_car_to_stdout(capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path, tree: Path) -> None:
    assert cli.main(["add", str(tree / "big.bin"), "--car", "-", "--commp"]) == 0
    captured = capsysbinary.readouterr()
    assert b"added " in captured.err and b"CommPCid: " in captured.err  # lines move to stderr
    path = tmp_path / "stdout.car"
    path.write_bytes(captured.out)
    assert cli.main(["add", str(tree / "big.bin"), "--car", str(tmp_path / "file.car"), "-Q"]) == 0
    capsysbinary.readouterr()
    assert path.read_bytes() == (tmp_path / "file.car").read_bytes()


def test_car_and_blockstore_together(capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path) -> None:
    out, blocks = tmp_path / "t.car", tmp_path / "blocks"
    assert add(capsys, "-r", str(tree), "--car", str(out), "--blockstore", str(blocks), "-Q")[0] == 0
    store = DirectoryBlockstore(blocks, create=False)
    for cid, data in car_blocks(out):
        if CID.from_bytes(cid).hash_code != 0:
            assert store.get(cid) == data


def test_failure_leaves_no_partial_car(capsys: pytest.CaptureFixture[str], tmp_path: Path, tree: Path) -> None:
    out = tmp_path / "fail.car"
    rc, _, stderr = add(capsys, "-r", str(tree), str(tmp_path / "missing"), "--car", str(out))
    assert rc == 1 and "Error: " in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # neither OUT.car nor a temporary file
    out.write_bytes(b"previous")
    rc, _, _ = add(capsys, str(tmp_path / "missing"), "--car", str(out), "--car-version", "2", "--commp")
    assert rc == 1 and out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fail.car"]


def test_commp_needs_a_car(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    rc, _, stderr = add(capsys, str(tree / "big.bin"), "--commp")
    assert rc == 1 and "--commp needs --car" in stderr
    rc, _, stderr = add(capsys, str(tree / "big.bin"), "--commp", "--car", "-", "--car-version", "2")
    assert rc == 1 and "--car-version 1" in stderr


def test_os_errors_show_a_text_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "no such" / "file"
    rc, _, stderr = add(capsys, str(missing))
    assert rc == 1
    # kubo (go-ipfs-cmds parseArgs): Go's *PathError text, then the command's short help
    assert stderr.startswith(f"Error: lstat {missing}: no such file or directory\n\nUSAGE\n")  # not b'...'


def test_closed_stdout_pipe_exits_quietly(tmp_path: Path) -> None:
    import subprocess

    src = tmp_path / "many"
    src.mkdir()
    for i in range(2000):
        (src / f"f{i:04}").write_bytes(b"%d" % i)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "pyipld", "add", "-r", "-n", str(src)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"added ")
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141  # the BrokenPipeError branch, not "Error: Broken pipe"
    assert err == b""


def test_local_get_car_is_dag_export_of_the_path(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                 tree: Path) -> None:
    from pyipld.car.export import export_dag
    from pyipld.unixfs.resolve import resolve_path

    blocks = tmp_path / "blocks"
    rc, stdout, _ = add(capsys, "-r", str(tree), "--blockstore", str(blocks), "-Q", "--hamt-threshold", "1")
    assert rc == 0
    root = stdout.strip()
    store = DirectoryBlockstore(blocks, create=False)
    out = tmp_path / "sub.car"
    assert cli.main(["get", f"{root}/sub", "--blockstore", str(blocks), "--car", str(out), "-q"]) == 0
    expected = io.BytesIO()
    export_dag(store, resolve_path(store, f"{root}/sub").cid, expected)
    assert out.read_bytes() == expected.getvalue()


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
def test_car_larger_than_the_file_size_limit_is_an_error_not_a_hang(tmp_path: Path) -> None:
    """Regression: a write error on the CAR writer's thread could leave the resumable sink's
    ``interrupted()`` draining sections nobody would write (about one run in four hung). The file
    size limit makes every write past 4 MiB fail (EFBIG) as a full disk would."""
    import resource
    import signal
    import subprocess

    src = tmp_path / "in.bin"
    src.write_bytes(chacha_bytes("efbig", 24 << 20))

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for run in range(6):
        out = tmp_path / f"o{run}.car"
        proc = subprocess.run([sys.executable, "-m", "pyipld", "add", "-Q", "--car", str(out), str(src)],
                              check=False, capture_output=True, env=env, preexec_fn=limit, timeout=60)
        assert proc.returncode == 1
        assert proc.stderr.decode().splitlines() == ["Error: [Errno 27] File too large"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin"]


@pytest.mark.parametrize("argv", [["add", "-r", "-H", "-Q", "--car", "OUT", "IN"], ["car", "create", "-H", "-f", "OUT", "IN"]])
def test_hidden_import_never_takes_in_its_own_temporary_car(tmp_path: Path, argv: list[str],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: with -H and OUT inside an input directory, the walk found OUT's temporary file
    (and add's journal) beside it and imported them, half-written, into the CAR itself."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a").write_bytes(b"a")
    (src / "sub" / ".b").write_bytes(b"b")
    out = src / "out.car"
    assert cli.main([str(out) if a == "OUT" else str(src) if a == "IN" else a for a in argv]) == 0
    capsys.readouterr()
    assert cli.main(["car", "ls", "--unixfs", str(out)]) == 0
    names = capsys.readouterr().out.split()
    assert all("pyipld-tmp" not in n for n in names) and any(n.endswith("sub/.b") for n in names)
