"""Issue 10 point 7: a huge CAR header parses in one linear pass; killed runs leave no stale temp files.

Both tests failed on the old code (dag_cbor + multiformats decoded every root, twice: 37-55 s for
100,000 roots; temporary names were random, so a kill -9 left each one behind for good).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pyipld._atomic import atomic_output
from pyipld.car import reader as car_reader
from pyipld.car import v1 as car_v1
from pyipld.car.reader import CarFile
from pyipld.car.v1 import encode_header
from pyipld.cid import RAW, CidBuilder
from pyipld.errors import CarError

ROOT = Path(__file__).resolve().parents[1]


def _no_dag_cbor(*_: object, **__: object) -> object:
    raise AssertionError("the header was decoded with dag_cbor (slow, per-root validation)")


def test_header_with_100k_roots_is_decoded_once_without_dag_cbor(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    roots = [CidBuilder(version=1).cid(RAW, i.to_bytes(4, "big")) for i in range(100_000)]
    path = tmp_path / "roots.car"
    path.write_bytes(encode_header(roots))  # written directly too (was dag_cbor.encode: ~60 s)
    monkeypatch.setattr(car_v1.dag_cbor, "decode", _no_dag_cbor)
    monkeypatch.setattr(car_reader.dag_cbor, "decode", _no_dag_cbor)
    with CarFile(path) as car:
        assert car.roots == tuple(roots)
        assert list(car.iter_heads()) == []


def test_large_non_canonical_header_is_refused_without_the_slow_decoder(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    good = encode_header([CidBuilder(version=1).cid(RAW, bytes([i % 256, i // 256])) for i in range(3000)])
    # the same roots with "version" first: valid CBOR, not canonical dag-cbor, > 64 KiB
    body = good[3:]  # 3-byte length varint
    assert body.startswith(b"\xa2\x65roots") and len(body) > 64 << 10
    swapped = b"\xa2\x67version\x01\x65roots" + body[len(b"\xa2\x65roots") : -len(b"\x67version\x01")]
    path = tmp_path / "odd.car"
    path.write_bytes(good[:3] + swapped)
    monkeypatch.setattr(car_v1.dag_cbor, "decode", _no_dag_cbor)
    monkeypatch.setattr(car_reader.dag_cbor, "decode", _no_dag_cbor)
    with pytest.raises(CarError, match="not canonical"):
        CarFile(path)


_KILLED_WRITER = """
import os, signal, sys
from pyipld._atomic import atomic_output
with atomic_output(sys.argv[1]) as f:
    f.write(b"partial" * 1000)
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_a_killed_runs_temp_file_is_removed_by_the_next_run(tmp_path: Path) -> None:
    target = tmp_path / "out.car"
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(target)], cwd=ROOT, check=False, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert len(_hidden(tmp_path)) == 1 and not target.exists()  # what kill -9 leaves
    with atomic_output(target) as f:
        f.write(b"complete")
    assert target.read_bytes() == b"complete"
    assert _hidden(tmp_path) == []


def test_killed_car_create_then_rerun_leaves_nothing(tmp_path: Path) -> None:
    """The same through the CLI: `car create` killed mid-write, then run again in the same place."""
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(1 << 20))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "o.car"
    subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(target)], cwd=ROOT, check=False, timeout=60)
    assert len(_hidden(out_dir)) == 1
    from pyipld import cli

    assert cli.main(["car", "create", "-f", str(target), str(src)]) == 0
    assert _hidden(out_dir) == [] and target.stat().st_size > 1 << 20


def test_two_live_writers_of_one_target_both_finish(tmp_path: Path) -> None:
    """A live writer keeps its lock: a second writer of the same target uses a random name."""
    target = tmp_path / "t"
    with atomic_output(target) as first:
        first.write(b"one")
        with atomic_output(target) as second:
            second.write(b"two")
            assert len(_hidden(tmp_path)) == 2
        assert target.read_bytes() == b"two"
    assert target.read_bytes() == b"one" and _hidden(tmp_path) == []


def test_a_symlink_at_the_temp_name_is_not_followed(tmp_path: Path) -> None:
    import hashlib

    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    digest = hashlib.sha256(b"t").hexdigest()[:8]
    (tmp_path / f".t.{digest}.pyipld-tmp").symlink_to(victim)
    with atomic_output(tmp_path / "t") as f:
        f.write(b"new")
    assert victim.read_bytes() == b"keep" and (tmp_path / "t").read_bytes() == b"new"
