"""The vendored fixtures travel with the tests, each with its provenance; no machine paths."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests._shared import FIXTURES, ROOT, fixture_path, shared_path

FOLDERS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def test_every_conformance_folder_is_vendored() -> None:
    assert {"codec-fixtures", "commp", "gateway-conformance", "go-car", "ipld-specs", "js-unixfs", "kubo"} <= set(
        FOLDERS
    )
    assert fixture_path("libp2p-vectors.json").stat().st_size > 1000


@pytest.mark.parametrize("folder", FOLDERS)
def test_folder_names_source_commit_and_licence(folder: str) -> None:
    text = (FIXTURES / folder / "SOURCE.md").read_text()
    assert re.search(r"github\.com/[\w.-]+/[\w.-]+", text), "no repository"
    assert re.search(r"\b[0-9a-f]{40}\b", text), "no commit"
    assert re.search(r"(Apache-2\.0|MIT|CC0-1\.0)", text) and "icence" in text, "no licence"


@pytest.mark.parametrize("folder", FOLDERS)
def test_listed_files_exist(folder: str) -> None:
    """Every plain file name in the first column of a SOURCE table exists (no stale rows)."""
    text = (FIXTURES / folder / "SOURCE.md").read_text()
    names = re.findall(r"^\| ([^|{*,]+?\.[\w.]+) \|", text, re.MULTILINE)
    for name in names:
        if name != "file":
            assert (FIXTURES / folder / name).is_file(), name


def test_shared_path_fixtures_is_the_vendored_copy() -> None:
    # Older tests spell it shared_path("fixtures", …): it must not depend on ../shared.
    got = shared_path("fixtures", "gateway-conformance", "dir_listing-fixtures.car")
    assert got == FIXTURES / "gateway-conformance" / "dir_listing-fixtures.car"
    assert got.read_bytes()[:1] == b"\x3a"  # CARv1 header length varint (58)


def test_missing_fixture_is_an_error_not_a_skip() -> None:
    with pytest.raises(FileNotFoundError, match="vendored fixture missing"):
        fixture_path("go-car", "no-such.car")
    with pytest.raises(FileNotFoundError):
        shared_path("fixtures", "no-such-folder", "x")


def _tracked_text_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (e.g. tests run from a copy against the installed wheel)")
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p and not p.startswith("tests/fixtures/")]


def test_no_absolute_machine_paths_in_tracked_files() -> None:
    # Assembled so that this file does not match itself.
    pattern = re.compile(r"(?<![\w.~])/(?:" + "work|home|Users|root" + r")/")
    offenders = []
    for rel in _tracked_text_files():
        try:
            text = (ROOT / rel).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        offenders += [f"{rel}:{n}" for n, line in enumerate(text.splitlines(), 1) if pattern.search(line)]
    assert not offenders, offenders
