"""``pyipld add`` / ``pyipld ls`` output details that follow kubo v0.22.0's source.

The oracle gives CIDs only (it cannot run the ``ipfs`` CLI), so these cases follow
kubo's ``core/commands/cmdenv`` ``EscNonPrint`` (``strconv.Quote`` without the outer
quotes, only when the name holds a backslash or a rune ``strconv.IsPrint`` rejects;
an invalid UTF-8 byte ranges as U+FFFD, which is printable, so alone it does not
trigger escaping), ``core/commands/ls.go`` ``tabularOutput`` (with more than one
argument, a ``<arg>:`` heading per argument and a blank line between groups) and
go-ipfs-cmds' argument parser (a terminal stdin is not read: ``argument "path" is
required``).
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from pyipld._cli.add import escape_name
from pyipld.cli import main


@pytest.mark.parametrize(("raw", "shown"), [
    (b"a\nb", "a\\nb"),
    (b"a\tb", "a\\tb"),
    (b"a\x7fb", "a\\x7fb"),
    (b"a\x01b", "a\\x01b"),
    (b"back\\slash", "back\\\\slash"),
    (b'say "hi"\n', 'say "hi"\\n'),  # EscNonPrint un-escapes the quotes Quote added
    ("caf\u00e9 \u65e5\u672c".encode(), "caf\u00e9 \u65e5\u672c"),  # printable non-ASCII kept
    ("nb\u00a0sp".encode(), "nb\\u00a0sp"),  # U+00A0 is not IsPrint
    (b"x\xff\n", "x\\xff\\n"),  # escaping on: the bad byte is \xff
])
def test_escape_name_matches_esc_non_print(raw: bytes, shown: str) -> None:
    assert escape_name(raw) == shown


def test_invalid_utf8_alone_is_not_escaped() -> None:
    # Go's range yields U+FFFD for the bad byte; IsPrint(U+FFFD) is true, so kubo prints the bytes as they are.
    assert escape_name(b"x\xffy").encode("utf-8", "surrogateescape") == b"x\xffy"


def _names(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], name: bytes) -> bytes:
    d = tmp_path / "d"
    d.mkdir()
    (d / os.fsdecode(name)).write_bytes(b"hi")
    assert main(["add", "-r", str(d)]) == 0
    out, _ = capsysbinary.readouterr()
    return out.splitlines()[0]


@pytest.mark.parametrize(("name", "shown"), [
    (b"a\nb", b"d/a\\nb"), (b"a\tb", b"d/a\\tb"), (b"a\x7fb", b"d/a\\x7fb"),
    (b"x\xffy", b"d/x\xffy"), ("\u00e9t\u00e9".encode(), "d/\u00e9t\u00e9".encode()),
])
def test_add_prints_escaped_names(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes],
                                  name: bytes, shown: bytes) -> None:
    line = _names(tmp_path, capsysbinary, name)
    assert line.startswith(b"added ") and line.endswith(b" " + shown)


class _Tty(io.TextIOWrapper):
    def isatty(self) -> bool:
        return True


def test_add_without_path_on_a_terminal_errors(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", _Tty(io.BytesIO(b"never read")))
    assert main(["add"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith('Error: argument "path" is required\n\nUSAGE\n')  # kubo: a parse error


def test_dash_still_reads_a_terminal_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", _Tty(io.BytesIO(b"hello world")))
    assert main(["add", "-Q", "-"]) == 0
    out, err = capsys.readouterr()
    assert out == "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD\n"
    # go-ipfs-cmds maybeWrapStdin: kubo's hint (with our name) when a terminal stdin is read
    assert err == "pyipld: Reading from /dev/stdin; send Ctrl-d to stop.\n"


def _tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    d = tmp_path / "d"
    (d / "a").mkdir(parents=True)
    (d / "b").mkdir()
    (d / "a" / "x").write_bytes(b"xx")
    (d / "b" / "long-name").write_bytes(b"yyyy")
    (d / "b" / "sub").mkdir()
    (d / "b" / "sub" / "z").write_bytes(b"z")
    bs = str(tmp_path / "bs")
    assert main(["add", "-Q", "-r", "--blockstore", bs, str(d)]) == 0
    return bs, capsys.readouterr().out.strip()


def _ls(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(["ls", *argv]) == 0
    return capsys.readouterr().out.split("\n")


def test_ls_several_paths_prints_a_heading_per_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bs, root = _tree(tmp_path, capsys)
    a = _ls(capsys, "--blockstore", bs, f"{root}/a")
    b = _ls(capsys, "--blockstore", bs, f"/ipfs/{root}/b")
    both = _ls(capsys, "--blockstore", bs, f"{root}/a", f"/ipfs/{root}/b")
    # tabularOutput: "<arg as given>:" before each group, a blank line between groups (not after the last);
    # each group is its own tabwriter column block (heading lines hold no tab).
    assert both == [f"{root}/a:", *a[:-1], "", f"/ipfs/{root}/b:", *b[:-1], ""]
    assert len(a) == 2 and len(b) == 3


def test_ls_several_paths_with_headers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bs, root = _tree(tmp_path, capsys)
    a = _ls(capsys, "-v", "--blockstore", bs, f"{root}/a")
    both = _ls(capsys, "-v", "--blockstore", bs, f"{root}/a", f"{root}/a/")
    assert a[0].split() == ["Hash", "Size", "Name"]
    assert both == [f"{root}/a:", *a[:-1], "", f"{root}/a/:", *a[:-1], ""]


def test_ls_same_argument_twice_in_a_row_shares_one_heading(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    bs, root = _tree(tmp_path, capsys)
    a = _ls(capsys, "--blockstore", bs, f"{root}/a")
    # kubo prints a heading only when the object's Hash (the argument) differs from the last one
    assert _ls(capsys, "--blockstore", bs, f"{root}/a", f"{root}/a") == [f"{root}/a:", *a[:-1], *a[:-1], ""]


def test_ls_error_in_a_later_argument_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bs, root = _tree(tmp_path, capsys)
    assert main(["ls", "--blockstore", bs, f"{root}/a", f"{root}/missing"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("Error: ")


# kubo 0.22's CLI (go-ipfs-cmds v0.9/v0.10 cli/parse.go) turns each file argument into an entry named
# filepath.Base(filepath.Clean(arg)), skips an argument whose base name and directory repeat, fails on the
# same base name from two directories, and sorts the entries by name before `ipfs add` walks them; with -w
# they become the wrapper's entries. Wrapper CIDs below come from the kubo 0.22 oracle
# (kubo_oracle.py cid DIR on a directory holding the same entries: a directory's links are name-sorted,
# so this is the -w root).
WRAP_ZETA_ALPHA = "QmbXQjjZK44NkXFd1sPM3MUMzJwzriGRUYBtZu5GkG5pF9"  # zeta=b"bbb", alpha=b"aaa"
WRAP_ZETA_SUB_ALPHA = "QmVjNs6mRb5xcFsZgghNhjRK6mYREq3tPpEoBzj4XmnFns"  # + sub/c=b"c"
ZETA = "Qmd4fAUaWxHDDXXTNFck2xdug2znuyd2Ry8NKbAdkvHqiz"
ALPHA = "QmNqQKFq7xqQz76aGTihW8UJvRmat52i3rSKjDMmDpHmVi"


def _inputs(tmp_path: Path) -> Path:
    (tmp_path / "zeta").write_bytes(b"bbb")
    (tmp_path / "alpha").write_bytes(b"aaa")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c").write_bytes(b"c")
    return tmp_path


def _add_lines(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(["add", *argv]) == 0
    return capsys.readouterr().out.splitlines()


def test_add_sorts_arguments_by_base_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _inputs(tmp_path)
    assert _add_lines(capsys, str(d / "zeta"), str(d / "alpha")) == [f"added {ALPHA} alpha", f"added {ZETA} zeta"]
    assert _add_lines(capsys, "-Q", str(d / "zeta"), str(d / "alpha")) == [ZETA]  # the last one added


def test_wrap_several_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _inputs(tmp_path)
    assert _add_lines(capsys, "-w", str(d / "zeta"), str(d / "alpha")) == [
        f"added {ALPHA} alpha", f"added {ZETA} zeta", f"added {WRAP_ZETA_ALPHA} "]
    lines = _add_lines(capsys, "-w", "-r", str(d / "zeta"), str(d / "sub"), str(d / "alpha/"))
    assert lines[-1] == f"added {WRAP_ZETA_SUB_ALPHA} "
    # files as they are added, then (kubo's adder outputDirs at the end) every directory, children first
    assert [line.split(" ", 2)[2] for line in lines] == ["alpha", "sub/c", "zeta", "sub", ""]


def test_add_skips_a_repeated_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _inputs(tmp_path)
    assert _add_lines(capsys, "-w", str(d / "alpha"), str(d / "zeta"), str(d / "." / "alpha")) == [
        f"added {ALPHA} alpha", f"added {ZETA} zeta", f"added {WRAP_ZETA_ALPHA} "]


def test_add_rejects_one_name_from_two_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _inputs(tmp_path)
    (d / "sub" / "alpha").write_bytes(b"other")
    assert main(["add", str(d / "alpha"), str(d / "sub" / "alpha")]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"Error: file name alpha repeated under different import directories: "
                          f"{d / 'sub'} and {d}\n\nUSAGE\n")  # a parse error in kubo: the short help follows


def test_ls_prints_names_through_esc_non_print(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    d = tmp_path / "d"
    d.mkdir()
    for name in (b"a\nb", b"x\xffy"):
        (d / os.fsdecode(name)).write_bytes(b"hi")
    bs = str(tmp_path / "bs")
    assert main(["add", "-Q", "-r", "--blockstore", bs, str(d)]) == 0
    root = capsysbinary.readouterr()[0].strip().decode()
    assert main(["ls", "--blockstore", bs, root]) == 0
    lines = capsysbinary.readouterr()[0].splitlines()
    assert [line.rsplit(b" ", 1)[1] for line in lines] == [b"a\\nb", b"x\xffy"]  # ls.go: cmdenv.EscNonPrint(name)
