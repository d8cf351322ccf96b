"""Which optional accelerators the hot paths may use.

The content-defined chunkers have up to three interchangeable implementations
that give identical answers:

* ``"python"`` — plain Python, the obviously-correct reference (always there);
* ``"numpy"`` — vectorized candidate search with numpy;
* ``"numba"`` — the sequential scan compiled by numba (fastest; optional).

:func:`backend` picks the best one installed. Environment switches (read once,
like msgpack's ``MSGPACK_PUREPYTHON``):

* ``PYIPLD_PUREPYTHON=1`` forces ``"python"``;
* ``PYIPLD_ACCEL=python|numpy|numba`` asks for one backend (an unavailable one
  falls back to the next best available).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from types import ModuleType
from typing import Final, Literal

__all__ = [
    "BACKENDS", "Backend", "available_backends", "backend", "numpy_module", "pure_python", "resolve_backend",
]

Backend = Literal["python", "numpy", "numba"]
BACKENDS: Final[tuple[Backend, ...]] = ("python", "numpy", "numba")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


@functools.cache
def _importable(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def pure_python() -> bool:
    """True when ``PYIPLD_PUREPYTHON`` asks for pure-Python paths only (every accelerator obeys it)."""
    return _env_flag("PYIPLD_PUREPYTHON")


def numpy_module() -> ModuleType | None:
    """The numpy module, or None when it is missing or PYIPLD_PUREPYTHON is set."""
    if pure_python():
        return None
    return _importable("numpy")


@functools.cache
def available_backends() -> tuple[Backend, ...]:
    """Backends usable in this process, slowest first (``"python"`` always)."""
    found: list[Backend] = ["python"]
    # Found, not imported: importing numpy costs ~0.1 s and numba ~0.5 s of every CLI start,
    # and the buzhash scan in C (chunker/_native.py) needs neither. They load on first use.
    if not pure_python() and _findable("numpy"):
        found.append("numpy")
        if _findable("numba"):
            found.append("numba")
    return tuple(found)


def _findable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def backend() -> Backend:
    """The backend the chunkers use by default (see the module docstring)."""
    have = available_backends()
    wanted = os.environ.get("PYIPLD_ACCEL", "").strip().lower()
    if wanted in have:
        return wanted
    if wanted in BACKENDS:  # asked for one that is missing: best one below it
        below = BACKENDS[: BACKENDS.index(wanted)]
        return [b for b in have if b in below][-1]
    return have[-1]


def resolve_backend(requested: str | None) -> Backend:
    """``requested`` if available (ValueError otherwise); ``None`` → :func:`backend`."""
    if requested is None:
        return backend()
    if requested not in available_backends():
        raise ValueError(f"backend {requested!r} is not available here (have: {', '.join(available_backends())})")
    return requested
