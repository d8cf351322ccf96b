"""The C kernels' builder: a kernel is rebuilt when a local header it includes changes (the cache
name covers the headers), and a missing header means no kernel (the caller's Python path)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pyipld import _native_build
from pyipld._native_build import load_native

pytestmark = pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")),
                                reason="no C compiler")


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYIPLD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PYIPLD_PUREPYTHON", raising=False)


def _value(source: Path) -> int | None:
    built = load_native(source)
    if built is None:
        return None
    fn = built[0].value
    fn.restype = int
    return int(fn())


def test_a_changed_header_rebuilds(tmp_path: Path) -> None:
    (tmp_path / "src" / "inc").mkdir(parents=True)
    source = tmp_path / "src" / "k.c"
    source.write_text('#include "inc/v.h"\nint value(void) { return V; }\n')
    header = tmp_path / "src" / "inc" / "v.h"
    header.write_text('#include "w.h"\n#define V (1 + W)\n')
    nested = tmp_path / "src" / "inc" / "w.h"
    nested.write_text("#define W 0\n")
    assert _value(source) == 1
    header.write_text('#include "w.h"\n#define V (2 + W)\n')
    assert _value(source) == 2
    nested.write_text("#define W 40\n")  # a header of a header counts too
    assert _value(source) == 42


def test_a_missing_header_means_no_kernel(tmp_path: Path) -> None:
    source = tmp_path / "k.c"
    source.write_text('#include "gone.h"\nint value(void) { return 1; }\n')
    assert _value(source) is None


def test_the_shipped_kernels_find_their_shared_header() -> None:
    root = Path(_native_build.__file__).parent
    for source in (root / "_sha256x2_native.c", root / "filecoin" / "_commp_native.c"):
        assert root / "_sha256_shani.h" in _native_build._local_headers(source)
        assert load_native(source) is not None


def test_load_library_binds_signatures_and_refuses_a_missing_symbol(tmp_path: Path) -> None:
    import ctypes

    from pyipld._native_build import load_library

    source = tmp_path / "k.c"
    source.write_text("long twice(long x) { return 2 * x; }\n")
    lib = load_library(source, {"twice": (ctypes.c_long, [ctypes.c_long])})
    assert lib is not None and lib.twice(1 << 40) == 1 << 41  # c_long both ways: no int truncation
    assert load_library(source, {"twice": (ctypes.c_long, [ctypes.c_long]), "absent": (ctypes.c_int, [])}) is None
