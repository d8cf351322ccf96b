"""Issue 10 point 3: a file that changes size while it is imported is a typed error on every path.

Old code: the API (mmap) died of SIGBUS or raised a bare OSError, `pyipld add` (read path)
imported the prefix it got and exited 0 with a wrong CID, and CAR temp files stayed behind.
Each test here failed on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyipld import cli
from pyipld.errors import FileChangedError
from pyipld.unixfs import _fileread, importer
from pyipld.unixfs.importer import import_bytes, import_file
from pyipld.unixfs.params import ImportParams
from tests._deterministic import chacha_bytes

ROOT = Path(__file__).resolve().parents[1]
SIZE = 6 << 20


def _change_after_first_read(monkeypatch: pytest.MonkeyPatch, path: Path, change: Callable[[Path], None]) -> None:
    """Make the importer's reads change ``path`` right after the first one (deterministic)."""
    real = importer.read_exact
    calls = {"n": 0}

    def hooked(f: IO[bytes], n: int) -> bytes:
        data = real(f, n)
        calls["n"] += 1
        if calls["n"] == 1:
            change(path)
        return data

    monkeypatch.setattr(importer, "read_exact", hooked)
    real_pread = _fileread.pread_exact  # size-N chunks of a regular file: private preads (issue 14)
    lock = threading.Lock()

    def hooked_pread(fd: int, view: memoryview, offset: int, size: int, name: str) -> None:
        real_pread(fd, view, offset, size, name)
        with lock:  # worker threads read too
            calls["n"] += 1
            first = calls["n"] == 1
        if first:
            change(path)

    monkeypatch.setattr(_fileread, "pread_exact", hooked_pread)
    real_mapped = _fileread._hash_mapped_span  # only-hash spans hashed from a mapping (no pread)

    def hooked_mapped(offset: int, **kw: Any) -> Any:
        out = real_mapped(offset, **kw)
        with lock:
            calls["n"] += 1
            first = calls["n"] == 1
        if first:
            change(path)
        return out

    monkeypatch.setattr(_fileread, "_hash_mapped_span", hooked_mapped)


def _shrink(path: Path) -> None:
    os.truncate(path, 1 << 20)


def _grow(path: Path) -> None:
    with open(path, "ab") as f:
        f.write(b"more")


@pytest.fixture()
def big(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(chacha_bytes("changes", SIZE))
    return path


@pytest.mark.parametrize("chunker", ["size-262144", "size-1048576", "buzhash", "rabin"])
@pytest.mark.parametrize("change", [_shrink, _grow], ids=["shrinks", "grows"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_api_import_file(big: Path, monkeypatch: pytest.MonkeyPatch, chunker: str,
                         change: Callable[[Path], None], jobs: int) -> None:
    _change_after_first_read(monkeypatch, big, change)
    after = (1 << 20) if change is _shrink else SIZE + 4
    with pytest.raises(FileChangedError, match=f"file changed during import: {big}: {SIZE} bytes when opened, "
                                               f"{after} bytes now") as info:
        import_file(big, ImportParams(chunker=chunker), jobs=jobs)
    assert (info.value.path, info.value.size_at_open, info.value.size_now) == (str(big), SIZE, after)


def _no_temp_files(directory: Path) -> None:
    assert [p.name for p in directory.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("argv", [
    ["add", "{f}"],
    ["add", "-r", "{d}"],
    ["add", "{f}", "--car", "{out}"],
    ["car", "create", "-f", "{out}", "{f}"],
    ["car", "create", "-f", "{out}", "{d}"],
], ids=["add", "add-r", "add-car", "car-create", "car-create-dir"])
@pytest.mark.parametrize("change", [_shrink, _grow], ids=["shrinks", "grows"])
def test_cli_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                   argv: list[str], change: Callable[[Path], None]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    f = src / "big.bin"
    f.write_bytes(chacha_bytes("cli-changes", SIZE))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "o.car"
    _change_after_first_read(monkeypatch, f, change)
    args = [a.format(f=f, d=src, out=out) for a in argv]
    assert cli.main(args) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"Error: file changed during import: {f}: {SIZE} bytes when opened")
    assert "added" not in captured.out and "Qm" not in captured.out
    assert not out.exists()  # nothing under the output name
    _no_temp_files(out_dir)


def test_unchanged_read_path_agrees(tmp_path: Path) -> None:
    """The read path (now the default) gives the same CIDs as an in-memory import."""
    data = chacha_bytes("agree", (3 << 20) + 777)
    path = tmp_path / "a.bin"
    path.write_bytes(data)
    for chunker in ("size-262144", "size-1000", "size-65537", "buzhash", "rabin"):
        params = ImportParams(chunker=chunker)
        assert import_file(path, params, jobs=2).cid == import_bytes(data, params).cid


@settings(max_examples=15, deadline=None)
@given(size=st.integers(0, 3 << 20), read_kib=st.integers(1, 2048),
       chunker=st.sampled_from(["size-262144", "size-4096", "size-100000", "buzhash", "rabin-1024-4096-16384"]))
def test_read_sizes_do_not_change_cids(size: int, read_kib: int, chunker: str) -> None:
    """Any read size, for both read paths (fixed: views of each read; CDC: the window driver)."""
    import tempfile

    data = chacha_bytes("reads", size)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f"
        path.write_bytes(data)
        saved = importer.FILE_READ_BYTES
        importer.FILE_READ_BYTES = read_kib << 10
        try:
            got = import_file(path, ImportParams(chunker=chunker), jobs=1).cid
        finally:
            importer.FILE_READ_BYTES = saved
    assert got == import_bytes(data, ImportParams(chunker=chunker)).cid


def _read_offset(pid: int, path: Path) -> int:
    """The file offset process ``pid`` has reached in ``path`` (0 if not open yet)."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                    with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                        return int(info.readline().split()[1])
            except OSError:
                continue
    except OSError:
        pass
    return 0


def _bytes_read(pid: int) -> int:
    """Bytes process ``pid`` has read through read/pread so far (``rchar``; 0 if unknown)."""
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@pytest.mark.skipif(not os.path.isdir("/proc/self/fdinfo"), reason="needs /proc to see the reader's offset")
def test_real_truncation_by_another_process(tmp_path: Path) -> None:
    """`car create` of a 1 GiB (sparse) file truncated by this process once the importer is reading it:
    a one-line error, exit 1, no CAR and no temp file (old code: SIGBUS, or EIO with a temp CAR left)."""
    src = tmp_path / "huge.bin"
    with open(src, "wb") as f:
        f.truncate(1 << 30)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "o.car"
    proc = subprocess.Popen([sys.executable, "-m", "pyipld", "car", "create", "-f", str(out), str(src)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    # The importer reads with pread (no file offset moves): watch the bytes the process has read
    # instead, past what starting the interpreter reads (~3 MiB of modules).
    while (_read_offset(proc.pid, src) == 0 and _bytes_read(proc.pid) < (32 << 20) and proc.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.002)
    os.truncate(src, 1 << 20)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr[-400:]
    assert stderr.startswith(f"Error: file changed during import: {src}: {1 << 30} bytes when opened, "
                             f"{1 << 20} bytes now"), stderr[-400:]
    assert stderr.count("\n") == 1 and stdout == ""
    assert list(out_dir.iterdir()) == []
