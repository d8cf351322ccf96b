"""SHA-256 of many messages, two at a time: ``_sha256x2_native.c`` (SHA-NI, two interleaved lanes)
built on first use and loaded with ctypes, else :mod:`hashlib`.

Hashing leaves is most of the CPU of an import and of a verified read; two leaves hashed together
take about 0.6 of the time of one after the other on a SHA-NI CPU (see the C file). ctypes releases
the GIL around the call. A message may be given as pieces (a dag-pb leaf's header, file bytes and
trailer), hashed as their concatenation without joining them. The inputs may be read-only buffers
(views of a mapped CAR): their address is taken with ``PyObject_GetBuffer``, held only for the
call. Without a compiler, off x86-64, without SHA-NI or with ``PYIPLD_PUREPYTHON=1``, the functions
here are ``hashlib.sha256`` calls.
"""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from ._native_build import load_library

__all__ = ["GuardDisplaced", "MappingFault", "mapped_hashing_available", "native_available", "sha256_batch", "sha256_batch_mapped",
           "sha256_pair"]

_SOURCE = Path(__file__).with_name("_sha256x2_native.c")


class _PyBuffer(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_void_p), ("obj", ctypes.c_void_p), ("len", ctypes.c_ssize_t),
                ("itemsize", ctypes.c_ssize_t), ("readonly", ctypes.c_int), ("ndim", ctypes.c_int),
                ("format", ctypes.c_char_p), ("shape", ctypes.c_void_p), ("strides", ctypes.c_void_p),
                ("suboffsets", ctypes.c_void_p), ("internal", ctypes.c_void_p)]


_PYBUF_SIMPLE = 0  # a contiguous run of bytes, read-only allowed


_MAX_PARTS = 4  # MAX_PARTS in the C file
_Kernel = Callable[..., list[bytes]]


class MappingFault(Exception):
    """A page of a mapped input vanished while it was hashed (the file was truncated): SIGBUS,
    caught by the guarded kernel. Callers turn it into their own error (FileChangedError)."""


class GuardDisplaced(OSError):
    """The SIGBUS guard is no longer the process's handler (another was installed after it):
    mapped bytes cannot be hashed safely; an OSError, so callers read the file instead."""


@lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL | None:
    """The kernel's library, loaded once; None without it or without SHA-NI."""
    batch = (ctypes.c_int, [ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int,
                            ctypes.c_void_p])
    lib = load_library(_SOURCE, {
        "pyipld_sha256x2_available": (ctypes.c_int, []),
        "pyipld_sha256_batch": batch,
        "pyipld_sha256_batch_guarded": batch,
        "pyipld_sigbus_guard_install": (ctypes.c_int, []),
        "pyipld_sigbus_guard_active": (ctypes.c_int, []),
    })
    return lib if lib is not None and lib.pyipld_sha256x2_available() else None


@lru_cache(maxsize=1)
def _kernel() -> _Kernel | None:
    """``kernel(messages, parts)``: the digests of ``messages`` (``parts`` pieces each) from the C
    batch entry point, or None where it cannot run (then hashlib does everything)."""
    try:  # CPython's buffer protocol, for the address of a read-only view; own function objects
        get_buffer = ctypes.pythonapi["PyObject_GetBuffer"]
        release_buffer = ctypes.pythonapi["PyBuffer_Release"]
    except (AttributeError, KeyError):  # pragma: no cover - not CPython
        return None
    get_buffer.argtypes = [ctypes.py_object, ctypes.c_void_p, ctypes.c_int]
    get_buffer.restype = ctypes.c_int
    release_buffer.argtypes = [ctypes.c_void_p]
    release_buffer.restype = None
    lib = _lib()
    if lib is None:
        return None
    plain, guarded = lib.pyipld_sha256_batch, lib.pyipld_sha256_batch_guarded
    stride = ctypes.sizeof(_PyBuffer)
    len_offset = _PyBuffer.len.offset

    def kernel(messages: Sequence[Sequence[Any]], parts: int, mapped: bool = False) -> list[bytes]:
        count = len(messages)
        views = (_PyBuffer * (count * parts))()  # one Py_buffer per piece, read by the C code as they are
        out = ctypes.create_string_buffer(32 * count)
        base = ctypes.addressof(views)
        taken = 0
        try:
            for message in messages:
                for piece in message:  # raises for a non-contiguous buffer
                    get_buffer(piece, base + taken * stride, _PYBUF_SIMPLE)
                    taken += 1
            rc = (guarded if mapped else plain)(count, views, stride, len_offset, parts, out)
            if rc == -2:
                raise MappingFault("a mapped page vanished while it was hashed")
            if rc == -3:
                raise GuardDisplaced("another SIGBUS handler was installed after pyipld's guard")
            if rc != 0:  # pragma: no cover - checked by the callers
                if mapped:
                    raise RuntimeError(f"the guarded kernel cannot run ({rc})")
                return [_hashlib_pieces(m) for m in messages]
        finally:
            for k in range(taken):
                release_buffer(base + k * stride)
        raw = out.raw
        return [raw[i : i + 32] for i in range(0, 32 * count, 32)]

    return kernel


def _hashlib_pieces(pieces: Sequence[Any]) -> bytes:
    if len(pieces) == 1:
        return hashlib.sha256(pieces[0]).digest()
    h = hashlib.sha256()
    for piece in pieces:
        h.update(piece)
    return h.digest()


BATCH_MIN_BYTES = 8192
"""Messages shorter than this are hashed with hashlib: a kernel call costs a few µs of ctypes
set-up, and only the shorter message's blocks run in both lanes (1 KiB: 4.2 µs against 1.9 µs)."""


def sha256_batch(messages: Sequence[Sequence[Any]]) -> list[bytes]:
    """``[sha256(b"".join(pieces)).digest() for pieces in messages]``, two messages at a time.

    Every message has the same number of pieces (1 to 4). With the kernel the pieces are hashed
    where they lie; messages under :data:`BATCH_MIN_BYTES` (e.g. a file's short last leaf) go to
    hashlib, as does everything when fewer than two are left.
    """
    fn = _kernel() if len(messages) >= 2 else None
    parts = len(messages[0]) if messages else 0
    if fn is None or not 1 <= parts <= _MAX_PARTS or any(len(m) != parts for m in messages):
        return [_hashlib_pieces(m) for m in messages]
    long = [i for i, m in enumerate(messages) if sum(memoryview(p).nbytes for p in m) >= BATCH_MIN_BYTES]
    if len(long) == len(messages):
        return fn(messages, parts)
    out = [b""] * len(messages)
    if len(long) >= 2:
        for i, digest in zip(long, fn([messages[i] for i in long], parts), strict=True):
            out[i] = digest
    return [digest or _hashlib_pieces(message) for digest, message in zip(out, messages, strict=True)]


def sha256_pair(a: Any, b: Any) -> tuple[bytes, bytes]:
    """``(sha256(a).digest(), sha256(b).digest())`` of two bytes-like objects."""
    first, second = sha256_batch([(a,), (b,)])
    return first, second


@lru_cache(maxsize=1)
def _guard_installed() -> bool:
    lib = _lib()
    if lib is None or _kernel() is None:
        return False
    return bool(lib.pyipld_sigbus_guard_install() == 0)


def mapped_hashing_available() -> bool:
    """Whether :func:`sha256_batch_mapped` can hash views of a mapped file safely: the kernel is
    built and its SIGBUS handler is installed (once per process, chaining to the previous one)
    and still the one in place."""
    lib = _lib()
    return _guard_installed() and lib is not None and bool(lib.pyipld_sigbus_guard_active())


def sha256_batch_mapped(messages: Sequence[Sequence[Any]]) -> list[bytes]:
    """:func:`sha256_batch` of pieces that may be views of a mapped file: every message goes to the
    guarded kernel (hashlib would die of the SIGBUS a truncated file gives), whatever its size.

    Raises:
        MappingFault: a page vanished (the file was truncated meanwhile).
        GuardDisplaced: another SIGBUS handler was installed after the guard (read instead).
        RuntimeError: the kernel or its guard is unavailable.
    """
    if not _guard_installed():
        raise RuntimeError("mapped hashing needs the SHA-NI kernel and its SIGBUS guard")
    if not messages:
        return []
    fn = _kernel()
    assert fn is not None  # _guard_installed() needs it
    parts = len(messages[0])
    if not 1 <= parts <= _MAX_PARTS or any(len(m) != parts for m in messages):
        raise ValueError("every message needs the same number of pieces, 1 to 4")
    return fn(messages, parts, True)


def native_available() -> bool:
    """The two-lane kernel is in use (built, loaded, and the CPU has SHA-NI)."""
    return _kernel() is not None
