"""Who gets ``ipfs://`` when another package (ipfsspec) registers it too, and how to choose pyipld."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("fsspec")


def _rival(tmp_path: Path) -> Path:
    """A distribution like ipfsspec: an ``fsspec.specs`` entry point ``ipfs`` to its own class."""
    site = tmp_path / "site"
    (site / "rivalfs").mkdir(parents=True)
    (site / "rivalfs" / "__init__.py").write_text(textwrap.dedent("""
        from fsspec import AbstractFileSystem
        class RivalFS(AbstractFileSystem):
            protocol = "ipfs"
    """))
    info = site / "rivalfs-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rivalfs\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[fsspec.specs]\nipfs = rivalfs.RivalFS\n")
    return site


_PROBE = """
import sys, fsspec
print(fsspec.get_filesystem_class("ipfs").__name__)
if sys.argv[1] == "register":
    import pyipld.fs
    pyipld.fs.register()
    print(fsspec.get_filesystem_class("ipfs").__name__)
"""


def _run(site: Path | None, mode: str) -> list[str]:
    code = (f"import sys; sys.path.insert(0, {str(site)!r})\n" if site else "") + _PROBE
    out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.split()


def test_entry_point_alone_gives_pyipld() -> None:
    assert _run(None, "plain") == ["IPFSFileSystem"]


def test_first_listed_distribution_wins_and_register_overrides(tmp_path: Path) -> None:
    site = _rival(tmp_path)
    # fsspec keeps the first `ipfs` entry point importlib lists: here the rival's directory comes
    # first on sys.path, so it wins; with both in one site-packages the order is the directory's.
    assert _run(site, "plain") == ["RivalFS"]
    assert _run(site, "register") == ["RivalFS", "IPFSFileSystem"]
