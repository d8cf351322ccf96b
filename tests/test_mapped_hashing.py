"""Only-hash imports hash leaves straight from a read-only mapping of each span (no read copy),
with the SIGBUS window closed: the guarded kernel is the only reader of mapped bytes, and a file
truncated meanwhile is FileChangedError. Same CIDs as the read path; a SIGBUS outside the guard
still ends the process as before (the handler chains to the previous one)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipld import _sha256x2
from pyipld.blockstore import MemoryBlockstore, NullSink
from pyipld.unixfs import ImportParams, _fileread, import_file

from ._deterministic import chacha_bytes

pytestmark = pytest.mark.skipif(not _sha256x2.mapped_hashing_available(),
                                reason="no SHA-NI kernel here (no compiler, no SHA-NI or PYIPLD_PUREPYTHON)")

ROOT = Path(__file__).resolve().parents[1]
_DATA = chacha_bytes("mapped", 6 << 20)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env=env, check=False)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(4 << 20, 6 << 20), chunk=st.sampled_from([16_384, 65_537, 262_144]),
       version=st.sampled_from([0, 1]), raw=st.sampled_from([None, True, False]))
def test_mapped_spans_give_the_read_paths_cids(tmp_path_factory: pytest.TempPathFactory,
                                               monkeypatch: pytest.MonkeyPatch, size: int, chunk: int,
                                               version: int, raw: bool | None) -> None:
    path = tmp_path_factory.mktemp("m") / "f.bin"
    path.write_bytes(_DATA[:size])
    params = ImportParams(cid_version=version, raw_leaves=raw, chunker=f"size-{chunk}")
    spans: list[int] = []
    real = _fileread._hash_mapped_span

    def spy(offset: int, **kw: Any) -> Any:
        spans.append(offset)
        return real(offset, **kw)

    monkeypatch.setattr(_fileread, "_hash_mapped_span", spy)
    mapped = import_file(path, params, NullSink(), jobs=2).cid
    read = import_file(path, params, MemoryBlockstore(), jobs=2).cid  # blocks kept: read into buffers
    assert mapped == read
    assert spans and spans[0] == 0  # the mapped path ran


def test_file_truncated_under_the_mapping_is_file_changed(tmp_path: Path) -> None:
    """The file shrinks after a span is mapped and before it is hashed: SIGBUS in the kernel,
    caught, FileChangedError with the sizes — the interpreter lives on (in a child, to be safe)."""
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(16 << 20))
    done = _run(f"""
        import faulthandler, os
        faulthandler.enable()
        from pyipld.blockstore import NullSink
        from pyipld.errors import FileChangedError
        from pyipld.unixfs import import_file
        from pyipld.unixfs.nodes import LeafMaker
        real = LeafMaker.leaves_mapped
        def shrink_first(self, chunks):
            if os.path.getsize({str(path)!r}) > 1 << 20:
                os.truncate({str(path)!r}, 1 << 20)
            return real(self, chunks)
        LeafMaker.leaves_mapped = shrink_first
        try:
            import_file({str(path)!r}, sink=NullSink(), jobs=2)
        except FileChangedError as exc:
            print("changed:", exc)
        print("alive")
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "changed:" in done.stdout and "alive" in done.stdout
    assert "Bus error" not in done.stderr


def test_a_sigbus_outside_the_guard_still_ends_the_process(tmp_path: Path) -> None:
    """The handler only catches faults inside the guarded kernel; any other SIGBUS goes on to the
    previous handler (faulthandler here) and ends the process, as without the guard."""
    path = tmp_path / "g.bin"
    path.write_bytes(os.urandom(4 << 20))
    done = _run(f"""
        import faulthandler, mmap, os
        faulthandler.enable()
        from pyipld._sha256x2 import mapped_hashing_available
        assert mapped_hashing_available()
        fd = os.open({str(path)!r}, os.O_RDONLY)
        view = memoryview(mmap.mmap(fd, 0, access=mmap.ACCESS_READ))
        os.truncate({str(path)!r}, 1 << 20)
        print("touching", flush=True)
        bytes(view[3 << 20 : (3 << 20) + 10])
        print("survived")
    """)
    assert done.returncode != 0 and "survived" not in done.stdout
    assert "Bus error" in done.stderr  # faulthandler's report: the previous handler ran


def test_guarded_kernel_equals_hashlib_and_reports_a_vanished_page(tmp_path: Path) -> None:
    done = _run(f"""
        import hashlib, mmap, os
        from pyipld._sha256x2 import MappingFault, sha256_batch_mapped
        p = {str(tmp_path / "h.bin")!r}
        open(p, "wb").write(os.urandom(4 << 20))
        fd = os.open(p, os.O_RDONLY)
        view = memoryview(mmap.mmap(fd, 0, access=mmap.ACCESS_READ))
        messages = [(b"head", view[i << 18 : (i + 1) << 18], b"") for i in range(16)] + [(b"", view[:5], b"t")]
        assert sha256_batch_mapped(messages) == [hashlib.sha256(b"".join(bytes(x) for x in m)).digest() for m in messages]
        os.truncate(p, 1 << 20)
        for _ in range(3):  # and again: the handler stays in place
            try:
                sha256_batch_mapped(messages)
            except MappingFault:
                print("fault")
        assert sha256_batch_mapped(messages[:4]) == [hashlib.sha256(b"".join(bytes(x) for x in m)).digest()
                                                     for m in messages[:4]]
        print("ok")
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["fault", "fault", "fault", "ok"]


def test_a_handler_installed_after_the_guard_turns_the_mapped_path_off(tmp_path: Path) -> None:
    """Regression: with faulthandler enabled after the guard (or any later SIGBUS handler), a fault
    the guard would catch reached faulthandler first, which printed "Fatal Python error: Bus error".
    Now the guarded kernel sees it is displaced, and only-hash imports read instead."""
    path = tmp_path / "d.bin"
    path.write_bytes(_DATA[: 4 << 20])
    done = _run(f"""
        import faulthandler, mmap, os
        from pyipld._sha256x2 import GuardDisplaced, mapped_hashing_available, sha256_batch_mapped
        from pyipld.blockstore import MemoryBlockstore, NullSink
        from pyipld.unixfs import import_file
        assert mapped_hashing_available()
        mapped = import_file({str(path)!r}, sink=NullSink(), jobs=2).cid
        faulthandler.enable()
        assert not mapped_hashing_available()
        view = memoryview(mmap.mmap(os.open({str(path)!r}, os.O_RDONLY), 0, access=mmap.ACCESS_READ))
        try:
            sha256_batch_mapped([(view[:1 << 20],)])
        except GuardDisplaced:
            print("displaced")
        assert import_file({str(path)!r}, sink=NullSink(), jobs=2).cid == mapped
        assert import_file({str(path)!r}, sink=MemoryBlockstore(), jobs=2).cid == mapped
        print("ok")
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["displaced", "ok"] and "Fatal" not in done.stderr


# kubo 0.22.0 via ../shared/tools/kubo_oracle.py (`cid FILE [flags]`, 2026-12-03) on the 8 MiB input
# of the `chunkers-big` vectors (tests/vectors/chunkers.json: chacha, seed "chunkers-big").
KUBO_8MIB = {
    (): "Qmb78N3LQnZbFqHU9aE3puzxL8CnsiqMygTWriAcLtPx3Y",
    ("--cid-version", "1"): "bafybeiap3pgmomhksh3uotpjofdjs47dshtcgas7szzqf2ykev42k7ibh4",
    ("--raw-leaves",): "QmPQZDYniXauZ77kuttj52zWNn9YP6yMLDVZ4wSjxGMfeN",
    ("--cid-version", "1", "--chunker", "size-65537"): "bafybeihlzxstbznbpzjn652il6m2gashzhpl6wjtqmujx44rs7q3fmfo6a",
}


@pytest.mark.parametrize("flags", sorted(KUBO_8MIB))
def test_add_n_from_mapped_spans_gives_kubos_cid(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   flags: tuple[str, ...]) -> None:
    """``add -Q -n FILE`` (mapped spans, pairs) and ``add -Q --blockstore`` (reads) of an 8 MiB file
    print kubo's CID for the same flags."""
    from pyipld.cli import main

    from ._recipes import recipe_bytes

    path = tmp_path / "input"
    path.write_bytes(recipe_bytes({"gen": "chacha", "seed": "chunkers-big", "size": 8 << 20}))
    for extra in (["-n"], ["--blockstore", str(tmp_path / "bs")]):
        assert main(["add", "-Q", *extra, *flags, str(path)]) == 0
        assert capsys.readouterr().out == KUBO_8MIB[flags] + "\n"
