"""Which pyipld the suite tests, and that an installed pyipld carries every file of its source tree.

CI runs the suite twice (.ci/run): in the checkout against the editable install
(``PYIPLD_TEST_EXPECT=checkout``) and from a copy of the sdist's tests/ against the wheel built
from that sdist, installed into a fresh venv (``PYIPLD_TEST_EXPECT=installed`` plus
``PYIPLD_SOURCE_TREE`` = the sdist's ``pyipld/``). Without the variables these tests skip.
"""

from __future__ import annotations

import json
import os
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest

import pyipld
from tests._shared import ROOT

PACKAGE_DIR = Path(pyipld.__file__).resolve().parent
EXPECT = os.environ.get("PYIPLD_TEST_EXPECT", "")
# What the wheel must hold: modules and every package-data kind (pyproject's package-data globs).
SHIPPED_SUFFIXES = {".py", ".c", ".txt", ".typed"}


def _shipped_files(package_dir: Path) -> set[str]:
    return {
        p.relative_to(package_dir).as_posix()
        for p in package_dir.rglob("*")
        if p.is_file() and p.suffix in SHIPPED_SUFFIXES and "__pycache__" not in p.parts
    }


@pytest.mark.skipif(EXPECT not in ("checkout", "installed"), reason="PYIPLD_TEST_EXPECT is not set")
def test_imported_pyipld_is_the_expected_one() -> None:
    if EXPECT == "checkout":
        assert PACKAGE_DIR == ROOT / "pyipld", f"tests import {PACKAGE_DIR}, not the checkout's"
        return
    assert not PACKAGE_DIR.is_relative_to(ROOT), f"tests import {PACKAGE_DIR} from beside the tests"
    site_dirs = {Path(sysconfig.get_path(k)).resolve() for k in ("purelib", "platlib")}
    assert any(PACKAGE_DIR.is_relative_to(d) for d in site_dirs), (PACKAGE_DIR, site_dirs)
    direct_url = metadata.distribution("pyipld").read_text("direct_url.json")
    if direct_url:  # installed from a file: must be the wheel itself, not an editable checkout
        assert not json.loads(direct_url).get("dir_info", {}).get("editable", False)


@pytest.mark.skipif(EXPECT != "installed" or not os.environ.get("PYIPLD_SOURCE_TREE"),
                    reason="PYIPLD_TEST_EXPECT=installed and PYIPLD_SOURCE_TREE are not set")
def test_installed_package_has_every_source_file() -> None:
    source = Path(os.environ["PYIPLD_SOURCE_TREE"]).resolve()
    want = _shipped_files(source)
    assert "py.typed" in want and "__init__.py" in want and any(f.endswith(".c") for f in want)
    missing = want - _shipped_files(PACKAGE_DIR)
    assert not missing, f"not in the installed package: {sorted(missing)}"


def test_package_data_is_readable_through_importlib_resources() -> None:
    from importlib import resources

    assert resources.files("pyipld").joinpath("py.typed").is_file()
    assert len(resources.files("pyipld.chunker").joinpath("buzhash_table.txt").read_bytes().split()) == 256
    native = [p for p in _shipped_files(PACKAGE_DIR) if p.endswith("_commp_native.c")]
    assert len(native) == 1, native
