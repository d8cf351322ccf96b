"""``pyipld car`` where it follows go-car's CLI (go-car@d891b59 cmd/car): extract's symlinks and
names, ``ls -v`` / ``--unixfs-blocks`` formats, ``ls`` to a file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pyipld.cid import CID
from pyipld.cli import main
from tests._shared import shared_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["car", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_extract_recreates_symlinks_and_backslash_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "back\\slash").write_bytes(b"one name on POSIX\n")
    (src / "file").write_bytes(b"data\n")
    os.symlink("file", src / "rel")
    os.symlink("/etc/passwd", src / "abs")
    car = tmp_path / "t.car"
    assert run(capsys, "create", "--no-wrap", "-f", str(car), str(src))[0] == 0
    dest = tmp_path / "out"
    code, _, err = run(capsys, "extract", "-f", str(car), "-o", str(dest))
    assert code == 0 and re.search(r"(?m)^extracted 4 file\(s\)$", err)  # go-car counts symlinks
    assert (dest / "back\\slash").read_bytes() == b"one name on POSIX\n"
    assert os.readlink(dest / "rel") == "file" and os.readlink(dest / "abs") == "/etc/passwd"
    assert sorted(os.listdir(dest)) == ["abs", "back\\slash", "file", "rel"]  # no temporary names left


def test_extract_never_writes_through_a_symlink(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two roots: the first makes ``x`` a symlink to a directory outside DEST, the second has ``x/f``."""
    outside = tmp_path / "outside"
    outside.mkdir()
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    os.symlink(str(outside), a / "x")
    (b / "x").mkdir(parents=True)
    (b / "x" / "f").write_bytes(b"must not land outside\n")
    car = tmp_path / "two.car"
    assert main(["add", "-rQ", "--car", str(car), str(a), str(b)]) == 0
    capsys.readouterr()
    code, _, err = run(capsys, "extract", "-f", str(car), "-o", str(tmp_path / "dest"))
    assert code == 1 and err.startswith("Error: refusing to extract through")
    assert os.listdir(outside) == []


def test_a_symlink_replaces_a_file_not_its_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    os.symlink("elsewhere", src / "name")
    car = tmp_path / "s.car"
    assert run(capsys, "create", "--no-wrap", "-f", str(car), str(src))[0] == 0
    dest = tmp_path / "dest"
    dest.mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    os.symlink(str(victim), dest / "name")  # a pre-existing symlink at the target is replaced, not followed
    assert run(capsys, "extract", "-f", str(car), "-o", str(dest))[0] == 0
    assert os.readlink(dest / "name") == "elsewhere" and victim.read_bytes() == b"keep"


def test_ls_verbose_is_gocars_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ls", "-v", str(shared_path("fixtures", "go-car", "simple-unixfs.car")))
    assert code == 0
    # list.go: "<codec>: <cid>", then for dag-pb "\t<n> links. <m> bytes", up to three "\t\t<name>[<size>] <cid>",
    # "\t\t(<n> total)" past three, and "\tUnixfs <type>"
    block = re.compile(r"dag-pb: \S+\n\t\d+ links\. \d+ bytes\n(?:\t\t[^\n]*\[\d+(?:\.\d)? [kMGTPE]?B\] \S+\n){0,3}"
                       r"(?:\t\t\(\d+ total\)\n)?\tUnixfs (?:Directory|File|Raw|Symlink|HAMTShard|Metadata)\n"
                       r"|raw: \S+\n")
    assert re.fullmatch(f"(?:{block.pattern})+", out), out[:500]
    assert out.startswith("dag-pb: ") and "\tUnixfs Directory\n" in out


def test_ls_unixfs_blocks_and_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    car = str(shared_path("fixtures", "go-car", "simple-unixfs.car"))
    code, out, _ = run(capsys, "ls", "--unixfs-blocks", car)
    names = run(capsys, "ls", "--unixfs", car)[1].splitlines()
    rows = [line.split(" ", 1) for line in out.splitlines()]
    assert code == 0 and [name for _, name in rows] == names and all(CID.decode(c) for c, _ in rows)
    listing = tmp_path / "listing.txt"
    assert run(capsys, "ls", car, str(listing)) == (0, "", "")
    assert len(listing.read_text().splitlines()) == len(run(capsys, "ls", car)[1].splitlines())


def test_ls_output_file_is_kept_when_ls_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: OUT was opened with "w" before the CAR was read, so a bad CAR emptied it, and
    ``car ls X.car X.car`` destroyed the CAR itself. OUT is now written under a temporary name."""
    listing = tmp_path / "listing.txt"
    listing.write_text("precious\n")
    bad = tmp_path / "bad.car"
    bad.write_bytes(b"garbage")
    code, _, err = run(capsys, "ls", str(bad), str(listing))
    assert code == 1 and err.startswith("Error: ")
    assert listing.read_text() == "precious\n"
    same = tmp_path / "same.car"
    same.write_bytes(shared_path("fixtures", "go-car", "simple-unixfs.car").read_bytes())
    expected = run(capsys, "ls", str(same))[1]
    assert run(capsys, "ls", str(same), str(same)) == (0, "", "")
    assert same.read_text() == expected  # read whole, then replaced by its listing
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "ls", str(listing), "-")[0] == 1  # not a CAR: no file "-" either
    assert not (tmp_path / "-").exists()
    car = str(shared_path("fixtures", "go-car", "simple-unixfs.car"))
    assert run(capsys, "ls", car, "-") == (0, "", "")  # go-car's os.Create("-"): a file named "-"
    assert (tmp_path / "-").read_text() == run(capsys, "ls", car)[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["-", "bad.car", "listing.txt", "same.car"]
