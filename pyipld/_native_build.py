"""Build a bundled C file once with the system compiler and load it with ctypes.

The shared library goes into a per-user cache (``$PYIPLD_CACHE_DIR``, else
``$XDG_CACHE_HOME/pyipld`` or ``~/.cache/pyipld``), named by the sha256 of the source, of the
local headers it includes (``#include "…"``, e.g. ``_sha256_shani.h``) and of the platform,
compiled under a temporary name and renamed. Without a compiler, with
``PYIPLD_PUREPYTHON=1``, or when anything fails, :func:`load_native` returns None and the
caller uses its Python path. Used by the CommP, buzhash and two-lane SHA-256 kernels.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._accel import pure_python

__all__ = ["load_library", "load_native"]


def load_native(source_path: Path) -> tuple[ctypes.CDLL, Path] | None:
    """The library built from ``source_path`` and its path, or None when unavailable or disabled."""
    if pure_python() or not source_path.exists():
        return None
    source = source_path.read_bytes()
    try:
        headers = b"".join(path.read_bytes() for path in _local_headers(source_path))
    except OSError:
        return None
    tag = hashlib.sha256(source + headers + sys.platform.encode() + sysconfig.get_platform().encode()
                         ).hexdigest()[:16]
    try:
        target = _cache_dir() / f"{source_path.stem}-{tag}.so"
        if not target.exists() and not _build(source, target, source_path.parent):
            return None
        return ctypes.CDLL(str(target)), target
    except (OSError, RuntimeError):  # unwritable cache, no home directory, unloadable library
        return None


Signature = tuple[Any, Sequence[Any]]
"""A C function's ctypes ``(restype, argtypes)``."""


def load_library(source_path: Path, functions: Mapping[str, Signature]) -> ctypes.CDLL | None:
    """:func:`load_native`'s library with ``functions`` given their ctypes signatures; None when
    it is unavailable or lacks one of them."""
    built = load_native(source_path)
    if built is None:
        return None
    lib = built[0]
    try:
        for name, (restype, argtypes) in functions.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, list(argtypes)
    except AttributeError:  # a stale or foreign library without the symbol
        return None
    return lib


_LOCAL_INCLUDE = re.compile(rb'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def _local_headers(source_path: Path) -> list[Path]:
    """The ``#include "…"`` files of ``source_path``, and theirs, relative to the including file."""
    found: list[Path] = []
    todo = [source_path]
    while todo:
        current = todo.pop()
        for name in _LOCAL_INCLUDE.findall(current.read_bytes()):
            header = (current.parent / os.fsdecode(name)).resolve()
            if header not in found:
                found.append(header)
                todo.append(header)
    return found


def _cache_dir() -> Path:
    env = os.environ.get("PYIPLD_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pyipld"


def _build(source: bytes, target: Path, include_dir: Path) -> bool:
    """Compile ``source`` (its ``#include "…"`` resolved from ``include_dir``) into ``target``."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        return False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    except OSError:
        return False
    os.close(fd)
    try:
        src = tmp + ".c"
        with open(src, "wb") as f:
            f.write(source)
        try:
            done = subprocess.run([cc, "-O3", "-shared", "-fPIC", "-iquote", str(include_dir), "-o", tmp, src],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False)
        finally:
            os.unlink(src)
        if done.returncode != 0:
            return False
        os.replace(tmp, target)
        return True
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
