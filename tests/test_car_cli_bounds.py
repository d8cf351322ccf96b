"""``pyipld car …`` on hostile input: a DAG with 2**41 paths from a few blocks, directories nested
deep, endless side inputs (``filter --cid-file``, ``detach-index list``). Each must stop with a
one-line ``Error: …`` quickly, in bounded memory (old code: ran on for ever, or read the side
input whole)."""

from __future__ import annotations

import hashlib
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from pyipld import cli
from pyipld.blockstore import MemoryBlockstore
from pyipld.car.v1 import CarV1Writer
from pyipld.cid import CID, DAG_PB
from pyipld.dagpb import PBLink, encode_pbnode
from pyipld.unixfs.directory import build_directory
from pyipld.unixfs.importer import import_bytes

ROOT = Path(__file__).resolve().parents[1]


def _one_error_line(err: str) -> None:
    assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in err, err[-600:]


def _car(path: Path, mem: MemoryBlockstore, root: bytes) -> str:
    with open(path, "wb") as f:
        w = CarV1Writer(f, [CID.from_bytes(root)])
        for cid in mem:
            w.put(cid, mem.get(cid))
        w.close()
    return str(path)


def _doubling(path: Path, levels: int) -> str:
    """Each level a directory linking the next twice (``a`` and ``b``): 2**levels files, levels + 1 blocks."""
    mem = MemoryBlockstore()
    child = import_bytes(b"x", None, mem).cid.bytes
    for _ in range(levels):
        child = build_directory([(b"a", child, 10), (b"b", child, 10)], None, mem).cid
    return _car(path, mem, child)


def _chain(path: Path, depth: int) -> str:
    """``d/d/…/f``: ``depth`` nested directories, a file at the bottom."""
    mem = MemoryBlockstore()
    child, name = import_bytes(b"deep", None, mem).cid.bytes, b"f"
    for _ in range(depth):
        child, name = build_directory([(name, child, 10)], None, mem).cid, b"d"
    return _car(path, mem, child)


def _limited(argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``python -c SCRIPT`` with 1 GiB of address space, so an unbounded walk dies instead of swapping."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))

    try:
        return subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=False,
                              preexec_fn=limit, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{argv[-3:]} still running after {timeout} s")


# -- car ls --unixfs ----------------------------------------------------------------------------


def test_ls_unixfs_stops_a_shared_subtree_bomb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Old code: no --max-entries; it listed 2**41 paths for ever while its set of directory paths grew."""
    car = _doubling(tmp_path / "bomb.car", 41)
    assert cli.main(["car", "ls", "--unixfs", "--max-entries", "100", car]) == 1
    out, err = capsys.readouterr()
    _one_error_line(err)
    assert "max_entries=100 " in err and "--max-entries N, 0 for none" in err
    lines = out.splitlines()  # go-car's order up to the limit: depth first, link order
    assert len(lines) == 100 and lines[:3] == ["a", "a/a", "a/a/a"] and lines[40] == "a/" * 40 + "a"
    assert lines[41] == "a/" * 40 + "b" and lines[42] == "a/" * 39 + "b"
    # --unixfs-blocks and OUT alike; OUT is left untouched by the failure
    dest = tmp_path / "listing"
    assert cli.main(["car", "ls", "--unixfs-blocks", "--max-entries", "5", car, str(dest)]) == 1
    _one_error_line(capsys.readouterr().err)
    assert not dest.exists()


def test_ls_unixfs_entry_limit_is_on_by_default(tmp_path: Path) -> None:
    """The default limit applies without the flag (here lowered to 3000 so the test is quick; old
    code ignored it and ran until the timeout)."""
    car = _doubling(tmp_path / "bomb.car", 41)
    script = ("import sys; import pyipld._cli.car as c; c.DEFAULT_MAX_ENTRIES = 3000; from pyipld import cli; "
              "sys.exit(cli.main(sys.argv[1:]))")
    proc = _limited(["-c", script, "car", "ls", "--unixfs", car], timeout=30)
    assert proc.returncode == 1, proc.stderr[-600:]
    _one_error_line(proc.stderr)
    assert "max_entries=3000 " in proc.stderr and len(proc.stdout.splitlines()) == 3000
    from pyipld.unixfs.extract import DEFAULT_MAX_DEPTH, DEFAULT_MAX_ENTRIES

    args = cli.build_parser().parse_args(["car", "ls", "--unixfs", "x"])
    assert (args.max_entries, args.max_depth) == (DEFAULT_MAX_ENTRIES, DEFAULT_MAX_DEPTH)


def test_ls_unixfs_memory_does_not_grow_with_entries(tmp_path: Path) -> None:
    """Old code kept every directory path listed (and every missing entry until the end): 16,382
    entries took ~2.1 MB more than 126 (traced). Now the walk holds one directory per level,
    whatever it lists: ~30 kB more here (CPython's free lists, bounded)."""
    import tracemalloc

    peaks = []
    for levels in (6, 13):
        car = _doubling(tmp_path / f"d{levels}.car", levels)
        argv = ["car", "ls", "--unixfs", car, str(tmp_path / f"out{levels}")]
        if not peaks:
            assert cli.main(argv) == 0  # imports and caches warmed up before measuring
        tracemalloc.start()
        try:
            assert cli.main(argv) == 0
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert len((tmp_path / f"out{levels}").read_text().splitlines()) == 2 ** (levels + 1) - 2
    assert peaks[1] < peaks[0] + 300_000, peaks


def test_ls_unixfs_limits_exactly_and_zero_is_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    car = _doubling(tmp_path / "d.car", 4)  # 30 entries
    assert cli.main(["car", "ls", "--unixfs", car]) == 0
    full = capsys.readouterr().out.splitlines()
    assert len(full) == 30 and len(set(full)) == 30
    for limit in ("30", "0"):
        assert cli.main(["car", "ls", "--unixfs", "--max-entries", limit, car]) == 0
        assert capsys.readouterr().out.splitlines() == full
    assert cli.main(["car", "ls", "--unixfs", "--max-entries", "29", car]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == full[:29]
    _one_error_line(err)


def test_ls_unixfs_has_a_depth_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Old code: 4096 levels, each holding a directory node and its path (memory grew with depth)."""
    car = _chain(tmp_path / "deep.car", 300)
    assert cli.main(["car", "ls", "--unixfs", car]) == 1
    out, err = capsys.readouterr()
    _one_error_line(err)
    assert "max_depth=256" in err and len(out.splitlines()) == 256
    assert cli.main(["car", "ls", "--unixfs", "--max-depth", "300", car]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 300 and lines[-1] == "d/" * 299 + "f"


# -- car filter: the CID list ----------------------------------------------------------------------


def _zero_run(argv: list[str], stdin: str | None = None, memory: int = 1 << 30) -> subprocess.CompletedProcess[str]:
    """The CLI with 1 GiB of address space and 20 s: reading /dev/zero whole dies or times out."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, resource.getrlimit(resource.RLIMIT_AS)[1]))

    with open(stdin or "/dev/null", "rb") as f:
        try:
            return subprocess.run([sys.executable, "-m", "pyipld", *argv], capture_output=True, text=True,
                                  check=False, preexec_fn=limit, cwd=ROOT, timeout=20, stdin=f)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{argv[:2]} still running after 20 s")


@pytest.mark.parametrize("from_stdin", [False, True])
def test_filter_cid_list_of_nuls_is_a_quick_error(tmp_path: Path, from_stdin: bool) -> None:
    """Old code: read the whole list first — /dev/zero grew until memory ran out."""
    car = _chain(tmp_path / "c.car", 1)
    out = tmp_path / "out.car"
    argv = ["car", "filter", car, str(out)] + ([] if from_stdin else ["--cid-file", "/dev/zero"])
    proc = _zero_run(argv, stdin="/dev/zero" if from_stdin else None)
    assert proc.returncode == 1, proc.stderr[-600:]
    _one_error_line(proc.stderr)
    name = "stdin" if from_stdin else "/dev/zero"
    assert proc.stderr == f"Error: {name}: line 1 of the CID list is longer than 4096 bytes\n"
    assert proc.stdout == "" and not out.exists()


def test_filter_cid_list_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """go-car's format still reads (CRLF, blank lines, spaces, a duplicate warned about); a long
    line or one that is not UTF-8 is an error naming the file and the line."""
    mem = MemoryBlockstore()
    a, b = (import_bytes(x, None, mem).cid for x in (b"a", b"b"))
    root = build_directory([(b"a", a.bytes, 1), (b"b", b.bytes, 1)], None, mem).cid
    car = _car(tmp_path / "in.car", mem, root)
    cids = tmp_path / "cids.txt"
    cids.write_bytes(f"  {a}\r\n\n{b}\t\n{a}".encode())
    assert cli.main(["car", "filter", "--cid-file", str(cids), car, str(tmp_path / "o.car")]) == 0
    out, err = capsys.readouterr()
    assert out == "filtering to 2 cids\n" and err.splitlines() == [f"duplicate cid: {a}",
                                                                   "warning: no roots defined after filtering"]
    assert cli.main(["car", "ls", str(tmp_path / "o.car")]) == 0
    assert capsys.readouterr().out.split() == [str(a), str(b)]
    for body, message in ((f"{a}\n{'b' * 4097}\n".encode(), f"{cids}: line 2 of the CID list is longer than 4096"),
                          (f"{a}\n\n{a}\xff\n".encode("latin-1"), f"{cids}: line 3: CID list is not UTF-8")):
        cids.write_bytes(body)
        assert cli.main(["car", "filter", "--cid-file", str(cids), car, str(tmp_path / "x.car")]) == 1
        out, err = capsys.readouterr()
        _one_error_line(err)
        assert message in err and out == "" and not (tmp_path / "x.car").exists()
    cids.write_bytes(f"{a}\n".encode() + b"b" * 4096)  # exactly the limit, no newline at the end: read
    assert cli.main(["car", "filter", "--cid-file", str(cids), car, str(tmp_path / "x.car")]) == 1
    assert "line" not in capsys.readouterr().err  # the CID parser's own error


# -- car detach-index list ----------------------------------------------------------------------------


def test_detach_index_list_of_dev_zero_is_a_quick_error(tmp_path: Path) -> None:
    """Old code: read the whole input before decoding it — /dev/zero grew until memory ran out."""
    proc = _zero_run(["car", "detach-index", "list", "/dev/zero"])
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", "Error: unknown index codec: 0x0\n")


def _listing(raw: bytes) -> str:
    """go-car's ``detach-index list`` lines, from the whole-index decoder: ``multihash-hex offset``."""
    from pyipld.car.index import decode_index
    from pyipld.multihash import encode_multihash

    return "".join(f"{(r.digest if r.code is None else encode_multihash(r.code, r.digest)).hex()} {r.offset}\n"
                   for r in decode_index(raw))


def test_detach_index_list_streams_files_and_pipes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file (checked whole first: a truncated one prints nothing) and a pipe (a chunk at a time)
    list the same lines; buckets out of go-car's order are still listed in its order."""
    from tests._shared import shared_path

    for name, count in (("sample-multihash-index-sorted.carindex", 1043), ("sample-index.carindex", 1049)):
        idx = shared_path("fixtures", "go-car", name)
        data = idx.read_bytes()
        assert cli.main(["car", "detach-index", "list", str(idx)]) == 0
        listed = capsys.readouterr().out
        assert listed == _listing(data) and len(listed.splitlines()) == count
        # through a pipe (not a regular file): the same lines
        proc = subprocess.run([sys.executable, "-m", "pyipld", "car", "detach-index", "list", "/dev/stdin"],
                              input=data, capture_output=True, check=False, cwd=ROOT, timeout=60)
        assert (proc.returncode, proc.stdout.decode()) == (0, listed), proc.stderr
    # truncated file: one error line, nothing listed (go-car reads the index whole first)
    cut = tmp_path / "cut.idx"
    cut.write_bytes(data[:-5])
    assert cli.main(["car", "detach-index", "list", str(cut)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("Error: unexpected EOF in index") and err.count("\n") == 1
    # two multihash codes, written in descending order: go-car's Unmarshal takes any order, ForEach sorts
    from pyipld.car.index import build_index, encode_index
    from pyipld.multihash import get_hash

    def one_code(name: str) -> bytes:  # a MultihashIndexSorted of one code, less its codec and count
        fn = get_hash(name)
        cids = [(b"\x01\x55" + fn.multihash(bytes([i])), 100 * i) for i in range(3)]
        return encode_index(build_index(cids))[2 + 4:]

    head = b"\x81\x08" + (2).to_bytes(4, "little")
    ordered, reversed_ = head + one_code("sha2-256") + one_code("blake2b-256"), \
        head + one_code("blake2b-256") + one_code("sha2-256")
    for name, raw in (("ordered.idx", ordered), ("reversed.idx", reversed_)):
        (tmp_path / name).write_bytes(raw)
        assert cli.main(["car", "detach-index", "list", str(tmp_path / name)]) == 0
        assert capsys.readouterr().out == _listing(ordered)
    assert len(_listing(ordered).splitlines()) == 6


# -- a CARv2 whose index runs on: inspect and detach-index stream it ----------------------------------


def test_inspect_and_detach_index_do_not_read_the_index_whole(tmp_path: Path) -> None:
    """Old code: `inspect` read the whole index (to EOF) to print its codec, `detach-index` read it
    whole before writing it; a CARv2 with 512 MiB of (sparse) index died in 384 MiB of memory."""
    from tests._shared import shared_path

    car = tmp_path / "long-index.car"
    good = shared_path("fixtures", "go-car", "sample-wrapped-v2.car").read_bytes()
    car.write_bytes(good)
    with open(car, "r+b") as f:
        f.truncate(1 << 29)  # holes: no disk used
    proc = _zero_run(["car", "inspect", str(car)], memory=384 << 20)
    assert proc.returncode == 0, proc.stderr[-600:]
    assert "Index type: car-multihash-index-sorted\n" in proc.stdout
    proc = _zero_run(["car", "detach-index", str(car), "/dev/null"], memory=384 << 20)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr[-600:]
    car.write_bytes(good)  # and the copy is the index, byte for byte
    assert cli.main(["car", "detach-index", str(car), str(tmp_path / "i.idx")]) == 0
    want = shared_path("fixtures", "go-car", "sample-multihash-index-sorted.carindex").read_bytes()
    assert (tmp_path / "i.idx").read_bytes() == want


def test_ls_unixfs_names_are_joined_as_go_cars_path_join(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: names were joined with ``posixpath.join`` of every component, so an entry named
    ``/x`` under ``sub`` printed as ``/x`` (go-car: ``sub/x``) and ``..`` stayed unresolved. go-car
    prints ``path.Join(parent's printed name, entry name)`` (cmd/car/list.go printUnixFSNode); the
    expected lines follow Go's documented path.Join / path.Clean rules."""
    mem = MemoryBlockstore()
    leaf = import_bytes(b"x", None, mem).cid.bytes

    def directory(*links: tuple[bytes, bytes]) -> bytes:  # any names (build_directory refuses these)
        block = encode_pbnode([PBLink(cid, name, 10) for name, cid in links], b"\x08\x01")
        cid = bytes([1, DAG_PB, 0x12, 32]) + hashlib.sha256(block).digest()  # CIDv1 dag-pb sha2-256
        mem.put(cid, block)
        return cid

    up = directory((b"z", leaf))
    sub = directory((b"/x", leaf), (b"..", leaf), (b"y//", leaf))
    root = directory((b"..", up), (b"/etc", leaf), (b"a/../b", leaf), (b"sub", sub))
    car = _car(tmp_path / "names.car", mem, root)
    assert cli.main(["car", "ls", "--unixfs", car]) == 0
    assert capsys.readouterr().out.splitlines() == ["..", "../z", "/etc", "b", "sub", "sub/x", ".", "sub/y"]


@pytest.mark.parametrize("argv", [["extract", "-o", "DIR", "--max-entries", "-1"], ["extract", "-o", "DIR", "--max-depth", "-1"],
                                  ["ls", "--unixfs", "--max-entries", "-1"]])
def test_negative_limits_are_refused(tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: -1 was taken and failed later as "more than max_entries=-1 entries" (after
    extract had made DIR)."""
    car = _doubling(tmp_path / "small.car", 2)
    dest = tmp_path / "dest"
    assert cli.main(["car", *[str(dest) if a == "DIR" else a for a in argv], car]) == 1
    err = capsys.readouterr().err
    _one_error_line(err)
    assert "must be 0 or more, got -1" in err and not dest.exists()
