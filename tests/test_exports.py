"""Every public module declares ``__all__``, and every name in it exists (trio's test_exports)."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import pyipld


def _public_modules() -> list[str]:
    names = ["pyipld"]
    for info in pkgutil.walk_packages(pyipld.__path__, "pyipld."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _public_modules())
def test_module_declares_all(name: str) -> None:
    module = importlib.import_module(name)
    public = [k for k, v in vars(module).items() if not k.startswith("_") and not isinstance(v, types.ModuleType)
              and getattr(v, "__module__", name) == name]
    if not hasattr(module, "__all__"):
        assert not public, f"{name} has public names {public[:5]} but no __all__"
        return
    exported = module.__all__
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"


def test_reader_and_importer_api() -> None:
    from pyipld.unixfs import importer, reader

    for fn in ("import_file", "import_bytes", "build_file", "metadata_for"):
        assert fn in importer.__all__
    for fn in ("UnixFSReader", "UnixFSFile", "iter_file", "read_file", "open_file", "file_size"):
        assert fn in reader.__all__


def _modules_with_all() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(pyipld.__path__, "pyipld."):
        if info.name.endswith(".__main__"):  # importing it runs the CLI
            continue
        if hasattr(importlib.import_module(info.name), "__all__"):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules_with_all())
def test_private_and_public_all_names_exist(name: str) -> None:
    """Every ``__all__`` (private modules' too, e.g. ``pyipld._pb``) is non-empty, unique and real."""
    module = importlib.import_module(name)
    assert module.__all__, name
    assert [n for n in module.__all__ if not hasattr(module, n)] == []
    assert len(set(module.__all__)) == len(module.__all__)
