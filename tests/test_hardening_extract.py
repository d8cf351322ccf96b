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
                           str(tmp_path / "blocks")], capture_output=True, text=True, preexec_fn=lower,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(os.listdir(out)) == 200
