"""pyipld.cli.main's error contract: one "Error: …" line and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse

import pytest

from pyipld import cli
from pyipld._cli import chunk
from pyipld.errors import UnixFSError


@pytest.mark.parametrize(("exc", "line"), [
    (UnixFSError("bad node"), "Error: bad node\n"),
    (FileNotFoundError(2, "No such file or directory", b"n\xc3\xa9"), "Error: No such file or directory: n\u00e9\n"),
    (PermissionError(13, "Permission denied"), "Error: [Errno 13] Permission denied\n"),
])
def test_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                             exc: Exception, line: str) -> None:
    def fail(args: argparse.Namespace) -> int:
        raise exc

    monkeypatch.setattr(chunk, "run", fail)
    assert cli.main(["chunk", "x"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == line


def test_broken_pipe_is_quiet(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def fail(args: argparse.Namespace) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(chunk, "run", fail)
    monkeypatch.setattr(cli.os, "dup2", lambda fd, fd2: None)  # keep pytest's stdout
    assert cli.main(["chunk", "x"]) == 141  # 128 + SIGPIPE, as a shell reports for cat(1)
    assert capsys.readouterr().err == ""


def test_ctrl_c_while_the_verb_loads_is_a_quiet_exit(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: a Ctrl-C in the first ~0.1 s (the verb's modules loading, its arguments being
    parsed) printed a KeyboardInterrupt traceback instead of ``Error: interrupted``, exit 130."""
    def interrupted(verb: str | None = None) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    try:
        rc = cli.main(["add", "x"])
    except KeyboardInterrupt:  # caught here: escaping, it would stop the whole test session
        pytest.fail("KeyboardInterrupt escaped main()")
    assert rc == 130
    assert capsys.readouterr().err == "Error: interrupted\n"
