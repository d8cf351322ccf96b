"""ipfs:// mistakes surface where they are made: a write with no sink at ``open``, a misspelled or
invalid storage option at construction (not as a late FileNotFoundError or PermissionError)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

fsspec = pytest.importorskip("fsspec")

from pyipld.fs import IPFSFileSystem


def _fs(**kw: object) -> IPFSFileSystem:
    return IPFSFileSystem(use_env=False, skip_instance_cache=True, **kw)


@pytest.mark.parametrize("mode", ["wb", "xb"])
def test_open_for_writing_without_a_sink_is_refused_at_open(mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    fs = _fs()
    with pytest.raises(PermissionError, match="read-only: pass storage option sink="):
        fs.open("out/y.txt", mode)  # before: opened, write() took the bytes, close() refused them
    with pytest.raises(PermissionError, match="read-only"):
        fs.pipe_file("out/y.txt", b"x")  # the same refusal
    with pytest.raises(PermissionError, match="read-only"):
        fsspec.open("ipfs://out/y.txt", "w", use_env=False).open()
    gc.collect()
    assert "Exception ignored" not in capsys.readouterr().err  # no half-made file left to fail in __del__
    assert not fs.exists("out/y.txt")


def test_open_for_writing_with_a_sink_still_works(tmp_path: Path) -> None:
    fs = _fs(sink=str(tmp_path / "blocks"))
    with fs.open("out/y.txt", "wb") as f:
        f.write(b"x")
    assert fs.cat_file("out/y.txt") == b"x"
    with pytest.raises(FileExistsError):
        fs.open("out/y.txt", "xb")
