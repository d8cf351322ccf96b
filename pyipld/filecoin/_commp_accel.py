"""Optional native accelerator for CommP: ``_commp_native.c`` built on first use, loaded with ctypes.

Pure Python pays ~0.5 µs of interpreter and OpenSSL set-up per 64-byte tree node,
which caps CommP at a few percent of ``hashlib.sha256`` throughput (measured in
``benchmarks/bench_commp.py``). The C file hashes nodes without those costs and uses
the x86 SHA extensions when the CPU has them.

No build step is needed at install time: when a C compiler (``$CC`` or ``cc``) is
present, the source is compiled once into a per-user cache
(``$PYIPLD_CACHE_DIR`` or ``$XDG_CACHE_HOME/pyipld`` or ``~/.cache/pyipld``), keyed
by the source's sha256, written to a temporary name and renamed. Without a compiler,
or with ``PYIPLD_PUREPYTHON=1``, :func:`load` returns None and the pure path is used.
ctypes releases the GIL around each call, so threads scale with cores.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from pathlib import Path

from .._native_build import load_native

__all__ = ["NativeCommP", "load"]

_SOURCE = Path(__file__).with_name("_commp_native.c")


class NativeCommP:
    """ctypes binding of ``_commp_native.c``."""

    def __init__(self, lib: ctypes.CDLL, path: Path) -> None:
        self.path = path
        self._lib = lib
        lib.pyipld_commp_uses_shani.argtypes = [ctypes.c_int]
        lib.pyipld_commp_uses_shani.restype = ctypes.c_int
        lib.pyipld_commp_hash_pairs.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p]
        lib.pyipld_commp_hash_pairs.restype = None
        lib.pyipld_commp_fr32.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p]
        lib.pyipld_commp_fr32.restype = None
        lib.pyipld_commp_subtree.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p]
        lib.pyipld_commp_subtree.restype = ctypes.c_int
        self.shani = bool(lib.pyipld_commp_uses_shani(0))

    def hash_pairs(self, level: bytes) -> bytes:
        """Nodes of the next level: one 32-byte node per 64 bytes of ``level``."""
        n = len(level) // 64
        out = ctypes.create_string_buffer(32 * n)
        self._lib.pyipld_commp_hash_pairs(level, n, out)
        return out.raw

    def fr32(self, data: bytes) -> bytes:
        """fr32 expansion of whole 127-byte quads."""
        n = len(data) // 127
        out = ctypes.create_string_buffer(128 * n)
        self._lib.pyipld_commp_fr32(data, n, out)
        return out.raw

    def subtree(self, data: bytes | memoryview, log2_quads: int) -> bytes:
        """Root of the tree over ``2**log2_quads`` quads (``127 << log2_quads`` bytes).

        ``data`` may be a memoryview (of immutable bytes): it is read in place.
        """
        if len(data) != 127 << log2_quads:
            raise ValueError("subtree input must be exactly 127 << log2_quads bytes")
        out = ctypes.create_string_buffer(32)
        keep: object = data
        if isinstance(data, bytes):
            address: object = data
        else:  # a read-only view: ctypes takes no address of it, numpy does (imported here: start-up time)
            try:
                import numpy as np
            except ImportError:  # pragma: no cover - numpy is optional
                keep = address = bytes(data)
            else:
                keep = np.frombuffer(data, dtype=np.uint8)
                address = keep.ctypes.data
        if self._lib.pyipld_commp_subtree(address, log2_quads, out) != 0:
            raise ValueError("log2_quads too large")
        del keep
        return out.raw


@lru_cache(maxsize=1)
def load() -> NativeCommP | None:
    """The accelerator, building it if needed; None when unavailable or disabled."""
    built = load_native(_SOURCE)
    if built is None:
        return None
    try:
        return NativeCommP(*built)
    except (OSError, RuntimeError):  # a library without the expected symbols
        return None
