"""pyipld._atomic.atomic_output: the one temp-name-then-rename writer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyipld._atomic import atomic_output


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_modes_and_replace(tmp_path: Path) -> None:
    public, private = tmp_path / "pub", tmp_path / "priv"
    with atomic_output(public) as f:
        f.write(b"a")
    with atomic_output(private, fsync=True, private=True) as f:
        f.write(b"b")
    assert public.read_bytes() == b"a" and (public.stat().st_mode & 0o777) == 0o666 & ~_umask()
    assert private.read_bytes() == b"b" and (private.stat().st_mode & 0o777) == 0o600
    victim = tmp_path / "victim"
    victim.write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(victim)
    with atomic_output(link) as f:
        f.write(b"new")
    assert victim.read_text() == "keep" and not link.is_symlink() and link.read_bytes() == b"new"


def test_failure_leaves_the_target_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / ("n" * 250)  # a long name: the temp name must still fit NAME_MAX
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(target) as f:
        f.write(b"partial")
        assert len(os.listdir(tmp_path)) == 2
        raise RuntimeError
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == [target.name]


def test_missing_directory_names_the_target(tmp_path: Path) -> None:
    target = tmp_path / "no" / "out.car"
    with pytest.raises(FileNotFoundError) as info, atomic_output(target):
        pass
    assert info.value.filename == str(target)
