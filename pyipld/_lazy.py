"""Packages whose public names load on first use (PEP 562), so that importing one module of
``pyipld.car`` or ``pyipld.unixfs`` does not import all of them: the command line's start-up
is part of every command's time, and a verb needs a few modules of each package."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Collection, Mapping

__all__ = ["lazy_package"]


class _ShadowingPackage(types.ModuleType):
    """A package where a function has its submodule's name (``unixfs.walk`` is ``walk()``):
    importing the submodule does not rebind the name to the module (as an eager ``from .walk
    import walk`` in the package's ``__init__`` would have left it)."""

    def __setattr__(self, key: str, value: object) -> None:
        if (isinstance(value, types.ModuleType) and key in self.__dict__.get("_lazy_shadowed", ())
                and value.__name__ == f"{self.__name__}.{key}"):
            value = getattr(value, key)
        super().__setattr__(key, value)


def lazy_package(name: str, exports: Mapping[str, str], *, shadowed: Collection[str] = ()) -> None:
    """Give package ``name`` a ``__getattr__`` that imports ``exports[attr]`` (a submodule) on
    first use of ``attr``; ``shadowed``: exported names that are also submodules' names."""
    package = sys.modules[name]

    def __getattr__(attr: str) -> object:
        module = exports.get(attr)
        if module is None:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        value = getattr(importlib.import_module(f"{name}.{module}"), attr)
        setattr(package, attr, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*package.__dict__, *exports})

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    package.__dir__ = __dir__  # type: ignore[method-assign]
    if shadowed:
        package._lazy_shadowed = frozenset(shadowed)  # type: ignore[attr-defined]
        package.__class__ = _ShadowingPackage
