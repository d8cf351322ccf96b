"""The package layout: libp2p transport in pyipld.libp2p, Filecoin pieces in pyipld.filecoin.

The old module paths (``pyipld.bitswap.noise``, ``pyipld.car.commp``, …) still import — the
same module objects, with a DeprecationWarning pointing at the importing line — and nothing in
the project itself uses them.
"""

from __future__ import annotations

import importlib
import re
import sys
import warnings
from pathlib import Path

import pytest

import pyipld
from pyipld._moved import MOVED_MODULES

PACKAGE_DIR = Path(pyipld.__file__).resolve().parent
TESTS_DIR = Path(__file__).resolve().parent


def _forget(old: str) -> None:
    sys.modules.pop(old, None)
    parent, _, leaf = old.rpartition(".")
    if hasattr(sys.modules[parent], leaf):
        delattr(sys.modules[parent], leaf)


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_old_path_is_the_new_module_with_a_warning(old: str) -> None:
    new = importlib.import_module(MOVED_MODULES[old])
    importlib.import_module(old.rpartition(".")[0])
    _forget(old)
    with pytest.warns(DeprecationWarning, match=re.escape(f"{old} moved to {new.__name__}")) as record:
        got = importlib.import_module(old)
    assert got is new
    assert new.__spec__ is not None and new.__spec__.name == new.__name__  # its own spec, not the alias's
    assert record[0].filename == __file__  # points at the importing line, not at importlib


def test_from_import_of_old_names_still_works() -> None:
    _forget("pyipld.bitswap.noise")
    _forget("pyipld.car.commp")
    with pytest.warns(DeprecationWarning):
        from pyipld.bitswap.noise import NoiseSession
    with pytest.warns(DeprecationWarning):
        from pyipld.car.commp import commp_bytes
    from pyipld.filecoin.commp import commp_bytes as new_commp_bytes
    from pyipld.libp2p.noise import NoiseSession as NewNoiseSession

    assert NoiseSession is NewNoiseSession and commp_bytes is new_commp_bytes


def test_unknown_names_are_still_import_errors() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("pyipld.bitswap.no_such_module")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("pyipld.car.no_such_module")


def test_moved_files_live_only_in_their_new_packages() -> None:
    for old, new in MOVED_MODULES.items():
        assert not (PACKAGE_DIR / Path(*old.split(".")[1:])).with_suffix(".py").exists(), old
        assert (PACKAGE_DIR / Path(*new.split(".")[1:])).with_suffix(".py").is_file(), new
    assert (PACKAGE_DIR / "filecoin" / "_commp_native.c").is_file()  # package data moved with it


def test_project_code_uses_only_the_new_paths() -> None:
    old = re.compile("|".join(re.escape(o) + r"\b" for o in MOVED_MODULES)
                     + r"|from \.(?:driver|multiaddr|peer|noise|yamux|identify|multistream) import")
    skip = {PACKAGE_DIR / "_moved.py", Path(__file__).resolve()}
    offenders = []
    for base in (PACKAGE_DIR, TESTS_DIR):
        for path in base.rglob("*.py"):
            if path.resolve() in skip or "fixtures" in path.parts:
                continue
            if path.parent.name == "libp2p" and "from ." in path.read_text():
                continue  # libp2p's own relative imports are the new location
            offenders += [f"{path}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1) if old.search(line)]
    assert not offenders, offenders


def test_importing_every_module_warns_nothing() -> None:
    import pkgutil

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for info in pkgutil.walk_packages(pyipld.__path__, "pyipld."):
            if not info.name.endswith(".__main__"):
                importlib.import_module(info.name)
