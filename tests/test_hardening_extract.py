"""Issue 10 regressions for extraction: descriptors, limits, HAMT bombs (each failed on the old code)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from pyipld.blockstore import DirectoryBlockstore, MemoryBlockstore
from pyipld.cid import DAG_PB, CidBuilder
from pyipld.dagpb import PBLink, encode_pbnode
from pyipld.unixfs.data import DataType, UnixFSData, encode_unixfs_data
from pyipld.unixfs.directory import build_directory
from pyipld.unixfs.extract import extract
from pyipld.unixfs.importer import import_bytes

B = CidBuilder()
ROOT = Path(__file__).resolve().parents[1]


def _put(store: MemoryBlockstore | DirectoryBlockstore, block: bytes) -> bytes:
    cid = B.cid_bytes(DAG_PB, block)
    store.put(cid, block)
    return cid


def _wide_tree(store: MemoryBlockstore | DirectoryBlockstore, n: int) -> bytes:
    """A directory of ``n`` empty sub-directories (one block linked ``n`` times)."""
    empty = _put(store, encode_pbnode([], encode_unixfs_data(UnixFSData(DataType.DIRECTORY))))
    return build_directory([(b"d%05d" % i, empty, 4) for i in range(n)], None, store).cid


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd to count descriptors")
def test_extract_closes_each_directory(tmp_path: Path) -> None:
    """Old code: one descriptor leaked per extracted directory (write_tree never closed it)."""
    store = MemoryBlockstore()
    root = _wide_tree(store, 150)
    before = _open_fds()
    stats = extract(store, _cid_text(root), tmp_path / "out")
    assert stats.directories == 151
    assert _open_fds() == before
    assert len(os.listdir(tmp_path / "out")) == 150


def _cid_text(cid: bytes) -> str:
    from pyipld.cid import CID

    return str(CID.from_bytes(cid))


def test_get_more_directories_than_the_descriptor_limit(tmp_path: Path) -> None:
    """`pyipld get` of 200 directories under RLIMIT_NOFILE=64 (the old code died at ~55 with EMFILE)."""
    store = DirectoryBlockstore(tmp_path / "blocks")
    root = _cid_text(_wide_tree(store, 200))

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "pyipld", "get", root, "-o", str(out), "--blockstore",
                           str(tmp_path / "blocks")], capture_output=True, text=True, preexec_fn=lower, check=False,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(os.listdir(out)) == 200


# -- HAMT bombs and default limits (issue 10 point 4) -------------------------------------------------


def _shard_block(links: list[PBLink]) -> bytes:
    bitfield = 0
    for link in links:
        bitfield |= 1 << int((link.name or b"")[:2], 16)
    data = UnixFSData(DataType.HAMT_SHARD, data=bitfield.to_bytes(32, "big").lstrip(b"\0") or None,
                      hash_type=0x22, fanout=256)
    return encode_pbnode(links, encode_unixfs_data(data))


def hamt_bomb(store: MemoryBlockstore | DirectoryBlockstore) -> bytes:
    """9 blocks (one file, 8 shard levels) whose 256 slots per level all link the same child:
    2**64 entries if a walker believes it. ~96 KB."""
    file_cid = import_bytes(b"boom", None, store).cid.bytes
    child = _put(store, _shard_block([PBLink(file_cid, b"%02X" % s + b"f%d" % s, 4) for s in range(256)]))
    for _ in range(7):
        child = _put(store, _shard_block([PBLink(child, b"%02X" % s, 1 << 20) for s in range(256)]))
    return child


def _bomb_car(tmp_path: Path) -> tuple[str, Path, Path]:
    from pyipld.car.v1 import CarV1Writer
    from pyipld.cid import CID

    store = DirectoryBlockstore(tmp_path / "blocks")
    mem = MemoryBlockstore()
    root = hamt_bomb(mem)
    car = tmp_path / "bomb.car"
    with open(car, "wb") as f:
        w = CarV1Writer(f, [CID.from_bytes(root)])
        for cid in mem:
            w.put(cid, mem.get(cid))
            store.put(cid, mem.get(cid))
        w.close()
    assert car.stat().st_size < 100_000
    return str(CID.from_bytes(root)), car, tmp_path / "blocks"


def _limited(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the CLI with 1 GiB of address space, so the old code's unbounded walks die instead of swapping."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))

    try:
        return subprocess.run([sys.executable, "-m", "pyipld", *argv], capture_output=True, text=True, check=False,
                              preexec_fn=limit, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{argv[:2]} still running after {timeout} s")


def test_hamt_bomb_is_a_typed_error_everywhere(tmp_path: Path) -> None:
    """Old code: `ls` and `car extract` grew to the OOM killer, `car ls --unixfs` printed forever."""
    root, car, blocks = _bomb_car(tmp_path)
    runs = {
        "ls": ["ls", root, "--blockstore", str(blocks)],
        "get": ["get", root, "-o", str(tmp_path / "g"), "--blockstore", str(blocks), "-q"],
        "car ls": ["car", "ls", "--unixfs", str(car)],
        "car extract": ["car", "extract", "-f", str(car), "-o", str(tmp_path / "x")],
    }
    for what, argv in runs.items():
        proc = _limited(argv, timeout=30)
        assert proc.returncode == 1, (what, proc.stderr[-500:])
        assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1, (what, proc.stderr[-500:])
        assert "HAMT" in proc.stderr, (what, proc.stderr)
        assert len(proc.stdout.splitlines()) <= 256, what  # at most one leaf shard's entries


def _chain(store: MemoryBlockstore | DirectoryBlockstore, depth: int) -> bytes:
    """``d/d/d/…/f``: ``depth`` nested directories, a file at the bottom."""
    child = import_bytes(b"deep", None, store).cid.bytes
    name = b"f"
    for _ in range(depth):
        child = build_directory([(name, child, 10)], None, store).cid
        name = b"d"
    return child


def _car_of(tmp_path: Path, mem: MemoryBlockstore, root: bytes, name: str = "t.car") -> Path:
    from pyipld.car.v1 import CarV1Writer
    from pyipld.cid import CID

    car = tmp_path / name
    with open(car, "wb") as f:
        w = CarV1Writer(f, [CID.from_bytes(root)])
        for cid in mem:
            w.put(cid, mem.get(cid))
        w.close()
    return car


def test_car_extract_has_a_default_depth_limit(tmp_path: Path) -> None:
    """Old code: `car extract` had no depth limit (a 10,000-deep chain ran 135 s)."""
    from pyipld import cli

    mem = MemoryBlockstore()
    car = _car_of(tmp_path, mem, _chain(mem, 300))
    assert cli.main(["car", "extract", "-f", str(car), "-o", str(tmp_path / "a")]) == 1
    assert cli.main(["car", "extract", "-f", str(car), "-o", str(tmp_path / "b"), "--max-depth", "400"]) == 0
    assert (tmp_path / "b" / ("d/" * 299 + "f")).read_bytes() == b"deep"


def _doubling(store: MemoryBlockstore, levels: int) -> bytes:
    """Each level a directory with two names for the next: 2**levels files from ``levels + 1`` blocks."""
    child = import_bytes(b"x", None, store).cid.bytes
    for _ in range(levels):
        child = build_directory([(b"a", child, 10), (b"b", child, 10)], None, store).cid
    return child


def test_entry_limits_stop_a_shared_subtree_bomb(tmp_path: Path) -> None:
    """A DAG linking one sub-tree twice per level: the entry limit stops it (default for `get` and
    `car extract`; old code: no default limit and `car extract` had no flag)."""
    from pyipld import cli
    from pyipld.errors import UnixFSError

    mem = MemoryBlockstore()
    root = _doubling(mem, 12)  # 8190 entries from 13 blocks
    car = _car_of(tmp_path, mem, root)
    assert cli.main(["car", "extract", "-f", str(car), "-o", str(tmp_path / "a"), "--max-entries", "100"]) == 1
    assert sum(len(f) for _, _, f in os.walk(tmp_path / "a")) <= 100
    with pytest.raises(UnixFSError, match="max_entries=100"):
        extract(mem, _cid_text(root), tmp_path / "b", max_entries=100)
    # the defaults are finite for the API and both commands (writing a million files here would take minutes)
    import inspect

    from pyipld.unixfs.extract import DEFAULT_MAX_DEPTH, DEFAULT_MAX_ENTRIES

    assert inspect.signature(extract).parameters["max_entries"].default == DEFAULT_MAX_ENTRIES
    parser = cli.build_parser()
    for argv in (["get", "x"], ["car", "extract", "-f", "x"]):
        args = parser.parse_args(argv)
        assert (args.max_entries, args.max_depth) == (DEFAULT_MAX_ENTRIES, DEFAULT_MAX_DEPTH)
    assert 0 < DEFAULT_MAX_ENTRIES <= 10_000_000 and 0 < DEFAULT_MAX_DEPTH <= 4096


def test_car_extract_refuses_duplicate_names_and_respects_umask(tmp_path: Path) -> None:
    """Old code: the last of two equal names silently won (both counted), every file was 0600."""
    from pyipld import cli

    mem = MemoryBlockstore()
    one = import_bytes(b"one", None, mem).cid.bytes
    two = import_bytes(b"two", None, mem).cid.bytes
    dup = _put(mem, encode_pbnode([PBLink(one, b"same", 3), PBLink(two, b"same", 3)],
                                  encode_unixfs_data(UnixFSData(DataType.DIRECTORY))))
    car = _car_of(tmp_path, mem, dup)
    assert cli.main(["car", "extract", "-f", str(car), "-o", str(tmp_path / "a")]) == 1
    good = build_directory([(b"f", one, 11)], None, mem).cid
    car = _car_of(tmp_path, mem, good, "good.car")
    old = os.umask(0o027)
    try:
        assert cli.main(["car", "extract", "-f", str(car), "-o", str(tmp_path / "b")]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "b" / "f").stat().st_mode & 0o777 == 0o640
