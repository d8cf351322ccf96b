"""``pyipld chunk``: boundaries printed for a file, any backend, bad chunker strings."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pyipld import cli
from pyipld._accel import available_backends
from pyipld.chunker import parse_chunker
from tests._deterministic import chacha_bytes


@pytest.mark.parametrize("accel", available_backends())
def test_prints_offsets_and_lengths(tmp_path: Path, capsys: pytest.CaptureFixture[str], accel: str) -> None:
    data = chacha_bytes("cli-chunk", 20_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert cli.main(["chunk", "-s", "rabin-16-64-256", "--accel", accel, "--sha256", str(path)]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    expected = list(parse_chunker("rabin-16-64-256").split([data]))
    assert len(lines) == len(expected) > 50
    offset = 0
    for (off, length, digest), chunk in zip(lines, expected, strict=True):
        assert (int(off), int(length), digest) == (offset, len(chunk), hashlib.sha256(chunk).hexdigest())
        offset += len(chunk)


def test_stats_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "z.bin"
    path.write_bytes(bytes(300_000))
    assert cli.main(["chunk", "-s", "buzhash", "--stats", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "buzhash: 3 chunks, 300000 bytes, min 37856 mean 100000 max 131072" in captured.err
    assert cli.main(["chunk", "-s", "rabin-12-512-1024", str(path)]) == 1
    assert "Error: rabin min must be greater than 16" in capsys.readouterr().err
