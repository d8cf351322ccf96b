"""The buzhash scan in C (chunker/_native.py, issue 14) gives the plain reference's cuts, and
so does the numba kernel it stands in for; bytes, writable views and read-only views alike."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld.chunker import _native
from pyipld.chunker.buzhash import BUZ_MIN, _decide_py
from tests._deterministic import chacha_bytes

native = _native.buzhash_decide()
pytestmark = pytest.mark.skipif(native is None, reason="no C compiler to build the buzhash scan")


@settings(max_examples=20, deadline=None)
@given(size=st.integers(0, 3_000_000), eof=st.booleans(), low_entropy=st.booleans(), kind=st.sampled_from(["bytes", "rw", "ro"]))
def test_native_equals_reference(size: int, eof: bool, low_entropy: bool, kind: str) -> None:
    data = chacha_bytes(f"native-{size}", size)
    if low_entropy:  # long runs: cuts at MIN and MAX, not only at hash hits
        data = bytes(b & 0x01 for b in data[: size // 2]) + data[size // 2 :]
    buf: object = {"bytes": data, "rw": memoryview(bytearray(data)), "ro": memoryview(data)}[kind]
    assert native is not None
    assert native(buf, eof) == _decide_py(data, eof)  # type: ignore[arg-type]


def test_numba_kernel_still_equals_reference() -> None:
    pytest.importorskip("numba")
    from pyipld.chunker._numba_kernels import buzhash_decide

    data = chacha_bytes("numba", 2_000_000) + bytes(BUZ_MIN * 3)
    assert buzhash_decide(data, True) == _decide_py(data, True)
