"""pyipld._atomic.atomic_output: the one temp-name-then-rename writer."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from pyipld import cli
from pyipld._atomic import TempNamesOf, atomic_output, user_output
from pyipld.car.resume import JOURNAL_SUFFIX


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


def test_a_directory_target_fails_before_any_work(tmp_path: Path) -> None:
    """Regression: the body ran to the end and the rename failed, naming the temporary file."""
    ran = []
    with pytest.raises(IsADirectoryError) as info, atomic_output(tmp_path):
        ran.append(1)
    assert info.value.filename == str(tmp_path) and not ran


@pytest.mark.parametrize("argv", [["car", "create", "-f", "OUT", "IN"], ["add", "-r", "--car", "OUT", "IN"]])
def test_cli_output_that_is_a_directory(tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """An existing directory as the output CAR: one error line naming it, before anything is imported."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "f").write_bytes(b"x")
    out = tmp_path / "out"
    out.mkdir()
    paths = {"OUT": str(out), "IN": str(tmp_path / "in")}
    assert cli.main([paths.get(a, a) for a in argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == f"Error: Is a directory: {out}\n"
    assert sorted(os.listdir(tmp_path)) == ["in", "out"] and os.listdir(out) == []


def _read_fifo(path: Path, into: list[bytes]) -> threading.Thread:
    def read() -> None:
        with open(path, "rb") as f:
            into.append(f.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader


@pytest.mark.parametrize("via_symlink", [False, True])
def test_a_named_pipe_is_written_into_not_replaced(tmp_path: Path, via_symlink: bool) -> None:
    """Regression: ``add --car /dev/null`` renamed its temporary CAR over /dev/null, replacing the
    device with a regular file; a FIFO (or a symlink to one, like /dev/stdout) gets the bytes and
    stays what it was."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    target = fifo
    if via_symlink:
        target = tmp_path / "link"
        target.symlink_to(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    with user_output(target) as f:
        f.write(b"HEADER")
        f.write(b" body")
    reader.join(10)
    assert got == [b"HEADER body"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.path.islink(target) is via_symlink
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"pipe", target.name})


@pytest.mark.parametrize("version", ["1", "2"])
def test_cli_car_into_a_named_pipe(tmp_path: Path, version: str) -> None:
    """``add --car FIFO`` streams the same CAR a file gets (CARv1 and CARv2)."""
    src = tmp_path / "in.txt"
    src.write_bytes(b"hello\n" * 1000)
    assert cli.main(["add", "-Q", "--cid-version", "1", "--car-version", version, "--car", str(tmp_path / "want.car"),
                     str(src)]) == 0
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    assert cli.main(["add", "-Q", "--cid-version", "1", "--car-version", version, "--car", str(fifo), str(src)]) == 0
    reader.join(10)
    assert got == [(tmp_path / "want.car").read_bytes()]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_devnull_stays_a_device(tmp_path: Path) -> None:
    if os.path.exists(os.devnull) and not stat.S_ISCHR(os.stat(os.devnull).st_mode):
        pytest.skip("/dev/null is not a character device on this machine")
    with user_output(os.devnull) as f:
        f.write(b"x" * 100_000)
    assert stat.S_ISCHR(os.lstat(os.devnull).st_mode)


def test_get_a_file_into_a_named_pipe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``get CID -o FIFO`` (or /dev/null, /dev/stdout) writes the file into it instead of refusing
    an existing entry named ''."""
    src = tmp_path / "in.bin"
    src.write_bytes(b"data\n" * 5000)
    bs = str(tmp_path / "bs")
    assert cli.main(["add", "-Q", "--blockstore", bs, str(src)]) == 0
    cid = capsys.readouterr().out.strip()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    assert cli.main(["get", cid, "--blockstore", bs, "-o", str(fifo)]) == 0
    reader.join(10)
    assert got == [src.read_bytes()]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_atomic_output_replaces_a_link_to_a_pipe(tmp_path: Path) -> None:
    """Regression: names from a CAR (``car extract``) go through atomic_output, which must replace a
    symlink to a FIFO or device, never write through it (an extracted ``a -> /dev/sda`` then a file
    ``a``); writing into devices is only for outputs the user named (user_output)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "a"
    link.symlink_to(fifo)
    with atomic_output(link) as f:
        f.write(b"data")
    assert not link.is_symlink() and link.read_bytes() == b"data"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def _added_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str, str]:
    """A small tree added into a blockstore: (its path, the blockstore, its root CID)."""
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a").write_bytes(b"a")
    bs = str(tmp_path / "bs")
    assert cli.main(["add", "-r", "-Q", "--blockstore", bs, str(src)]) == 0
    return src, bs, capsys.readouterr().out.strip()


@pytest.mark.parametrize("kind", ["fifo", "file", "symlink"])
def test_get_a_directory_onto_a_non_directory_names_the_destination(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    """``get DIR -o /dev/null`` (or onto a FIFO, file or symlink) refuses with the destination's
    full path (it said "Not a directory: null", the last component) and leaves it as it was."""
    src, bs, cid = _added_tree(tmp_path, capsys)
    dest = tmp_path / "deeper" / "dest"
    dest.parent.mkdir()
    if kind == "fifo":
        os.mkfifo(dest)
    elif kind == "file":
        dest.write_bytes(b"keep")
    else:
        dest.symlink_to(src)
    before = os.lstat(dest)
    assert cli.main(["get", cid, "--blockstore", bs, "-o", str(dest)]) == 1
    err = capsys.readouterr().err
    assert err == f"Error: destination exists and is not a directory: {dest}\n"
    after = os.lstat(dest)
    assert (after.st_mode, after.st_ino, after.st_size) == (before.st_mode, before.st_ino, before.st_size)


def test_get_a_directory_to_dev_null_is_a_no_op_as_in_kubo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """boxo's tar Extractor returns at once for /dev/null (``ipfs get DIR -o /dev/null`` exits 0 and
    writes nothing); pyipld refused with "destination exists and is not a directory"."""
    if not stat.S_ISCHR(os.stat(os.devnull).st_mode):
        pytest.skip("/dev/null is not a character device on this machine")
    _, bs, cid = _added_tree(tmp_path, capsys)
    assert cli.main(["get", cid, "--blockstore", bs, "-o", os.devnull]) == 0
    assert "Error" not in capsys.readouterr().err
    assert stat.S_ISCHR(os.lstat(os.devnull).st_mode)


def test_a_new_output_is_never_truncated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the temp file of every output was truncated to 0 even when just created. On
    ext4 that makes close() write back every dirty page on the calling thread (auto_da_alloc):
    ~0.3 s per GiB added serially at the end of each `add --car`."""
    truncated: list[str] = []
    real = os.ftruncate

    def spy(fd: int, length: int) -> None:
        if length < os.fstat(fd).st_size:  # to its own size frees reserved blocks (_prealloc): no write-back
            truncated.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd, length)

    monkeypatch.setattr(os, "ftruncate", spy)
    src = tmp_path / "in.bin"
    src.write_bytes(b"x" * 300_000)
    with atomic_output(tmp_path / "plain") as f:
        f.write(b"a")
    assert cli.main(["add", "-Q", "--car", str(tmp_path / "o.car"), str(src)]) == 0
    assert (tmp_path / "plain").read_bytes() == b"a" and (tmp_path / "o.car").stat().st_size > 300_000
    assert [p for p in truncated if not p.endswith(JOURNAL_SUFFIX)] == []


def test_temp_names_of_an_output() -> None:
    """The names :func:`atomic_output` (and add's journal) use beside OUT, and nothing else."""
    own = TempNamesOf("/x/out.car", also=lambda name: name == b"ignored")
    for name in (b".out.car.1a2b3c4d.pyipld-tmp", b".out.car.1a2b3c4d.journal.pyipld-tmp", b".out.car.tmp-k2j3h4",
                 b"ignored"):
        assert own(name), name
    for name in (b"out.car", b".out.car", b".other.car.1a2b3c4d.pyipld-tmp", b".out.carx.pyipld-tmp", b"a"):
        assert not own(name), name
