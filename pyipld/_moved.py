"""Old import paths of modules that moved keep working, with a ``DeprecationWarning``.

``pyipld.bitswap.{multistream,noise,yamux,identify,peer,multiaddr,driver}`` moved to
:mod:`pyipld.libp2p` and ``pyipld.car.{commp,pack}`` to :mod:`pyipld.filecoin`. A meta-path
finder resolves an old name to the *same* module object as the new one (no second copy, so
classes and ``isinstance`` agree), lazily: nothing is imported until the old name is.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Mapping, Sequence
from types import FrameType, ModuleType

__all__ = ["MOVED_MODULES", "register_moved_modules"]

MOVED_MODULES: dict[str, str] = {
    **{f"pyipld.bitswap.{m}": f"pyipld.libp2p.{m}"
       for m in ("multistream", "noise", "yamux", "identify", "peer", "multiaddr", "driver")},
    "pyipld.car.commp": "pyipld.filecoin.commp",
    "pyipld.car.pack": "pyipld.filecoin.pack",
}


def _caller_stacklevel() -> int:
    """``stacklevel`` that points the warning at the importing line.

    ``warnings`` skips importlib's bootstrap frames without counting them; ``importlib.import_module``
    and this file count, so they are stepped over here.
    """
    level = 2
    frame_or_none: FrameType | None = sys._getframe(2)
    while frame_or_none is not None:
        name = frame_or_none.f_code.co_filename
        if "importlib" in name and "_bootstrap" in name:
            frame_or_none = frame_or_none.f_back
        elif name in (importlib.__file__, __file__):
            frame_or_none, level = frame_or_none.f_back, level + 1
        else:
            break
    return level


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, moves: Mapping[str, str]) -> None:
        self.moves = dict(moves)
        self.real_specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.moves:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = self.moves[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there", DeprecationWarning,
                      stacklevel=_caller_stacklevel())
        module = importlib.import_module(new)
        self.real_specs.setdefault(new, module.__spec__)
        return module

    def exec_module(self, module: ModuleType) -> None:
        # importlib stamped the alias spec on the shared module object: give it its own back.
        assert module.__spec__ is not None
        module.__spec__ = self.real_specs[self.moves[module.__spec__.name]]


def register_moved_modules(moves: Mapping[str, str] = MOVED_MODULES) -> None:
    """Install the finder once (idempotent)."""
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder(moves))
