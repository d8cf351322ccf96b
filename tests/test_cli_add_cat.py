"""``pyipld add`` and ``pyipld cat`` through ``cli.main(argv)``."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from pyipld import cli
from tests._deterministic import chacha_bytes

HELLO_V0 = "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"
HELLO_V1 = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello world")
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("flags", "expected"), [
    ([], HELLO_V0),
    (["--cid-version", "1"], HELLO_V1),
    (["--cid-version=1", "--raw-leaves=false"], "bafybeihykld7uyxzogax6vgyvag42y7464eywpf55gxi5qpoisibh3c5wa"),
    (["--profile", "unixfs-v1-2025"], HELLO_V1),
    (["--raw-leaves", "--inline"], "bafkqac3imvwgy3zao5xxe3de"),  # kubo 0.22 (oracle)
    (["-s", "size-4"], "QmNQcyNit2uXxzKcjGn1oNaMuErPdZhRi61g9JDwG1sLhE"),  # kubo 0.22 (oracle)
])
def test_add_output(hello: Path, capsys: pytest.CaptureFixture[str], flags: list[str], expected: str) -> None:
    code, out, err = run(["add", *flags, str(hello)], capsys)
    # kubo prints the argument's base name; main printed the path as given (the dirs work switches to kubo's)
    assert (code, err) == (0, "") and out in (f"added {expected} {hello.name}\n", f"added {expected} {hello}\n")


def test_quiet_and_quieter(hello: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "empty"
    other.write_bytes(b"")
    # kubo's CLI sorts file arguments by base name ("empty" < "hello.txt"); -Q prints the last one added
    assert run(["add", "-q", str(hello), str(other)], capsys)[1] == \
        f"QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH\n{HELLO_V0}\n"
    assert run(["add", "-Q", str(hello), str(other)], capsys)[1] == f"{HELLO_V0}\n"


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"hello world")))
    assert run(["add"], capsys) == (0, f"added {HELLO_V0} {HELLO_V0}\n", "")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"hello world")))
    assert run(["add", "-Q", "-"], capsys)[1] == f"{HELLO_V0}\n"


def test_only_hash_stores_nothing(hello: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "blocks"
    assert run(["add", "-n", "--blockstore", str(store), str(hello)], capsys)[0] == 0
    assert not store.exists() or not any(store.rglob("*.data"))


def test_progress_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big"
    path.write_bytes(bytes(3 << 20))
    code, out, err = run(["add", "-p", "-Q", str(path)], capsys)
    assert code == 0 and out.startswith("Qm") and out.count("\n") == 1
    assert "3.0 MiB" in err


def test_add_then_cat(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    data = chacha_bytes("cli-cat", 700_000)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    store = str(tmp_path / "blocks")
    assert cli.main(["add", "-Q", "--blockstore", store, "-s", "size-65536", str(path)]) == 0
    cid = capsysbinary.readouterr().out.decode().strip()
    assert cli.main(["cat", cid, "--blockstore", store]) == 0
    assert capsysbinary.readouterr().out == data
    assert cli.main(["cat", cid, "--blockstore", store, "--offset", "100000", "--length", "70000"]) == 0
    assert capsysbinary.readouterr().out == data[100_000:170_000]
    assert cli.main(["cat", cid, "--blockstore", store, "-o", "699990"]) == 0
    assert capsysbinary.readouterr().out == data[699_990:]


def test_cat_missing_block(tmp_path: Path, hello: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "blocks"
    store.mkdir()
    code, out, err = run(["cat", HELLO_V0, "--blockstore", str(store)], capsys)
    assert (code, out) == (1, "")
    assert err == f"Error: block not found: {HELLO_V0}\n"


def test_cat_stops_resolving_once_length_is_covered(tmp_path: Path, hello: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """kubo 0.22 core/commands/cat.go L130-177: the loop resolving the paths breaks as soon as the
    files so far hold ``--length`` bytes past ``--offset``; later paths are never resolved."""
    store = str(tmp_path / "blocks")
    assert run(["add", "--blockstore", store, str(hello)], capsys)[0] == 0
    (tmp_path / "d").mkdir()
    dir_cid = run(["add", "-Q", "-r", "--blockstore", store, str(tmp_path / "d")], capsys)[1].strip()
    for later in (dir_cid, "QmNope", "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"):
        assert run(["cat", "--blockstore", store, "-l", "5", HELLO_V0, later], capsys) == (0, "hello", "")
        assert run(["cat", "--blockstore", store, "-o", "3", "-l", "8", HELLO_V0, later], capsys) == (0, "lo world", "")
        code, out, err = run(["cat", "--blockstore", store, "-o", "3", "-l", "9", HELLO_V0, later], capsys)
        assert (code, out) == (1, "") and err.startswith("Error: ") and err.count("\n") == 1


def test_cat_of_empty_stdin_prints_nothing(tmp_path: Path, hello: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """go-ipfs-cmds v0.9.0 ParseBodyArgs: empty stdin gives no paths; kubo's cat loop then has nothing to do."""
    store = str(tmp_path / "blocks")
    assert run(["add", "--blockstore", store, str(hello)], capsys)[0] == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert run(["cat", "--blockstore", store], capsys) == (0, "", "")


def test_cat_takes_kubos_progress_option(tmp_path: Path, hello: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """kubo 0.22 core/commands/cat.go L36: ``cmds.BoolOption("progress", "p", …).WithDefault(true)``."""
    store = str(tmp_path / "blocks")
    assert run(["add", "--blockstore", store, str(hello)], capsys)[0] == 0
    for flags in (["-p"], ["--progress"], ["-p=false"], ["--progress=true"]):
        assert run(["cat", "--blockstore", store, *flags, HELLO_V0], capsys) == (0, "hello world", "")


def test_cat_corrupt_block(tmp_path: Path, hello: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "blocks"
    run(["add", "--blockstore", str(store), str(hello)], capsys)
    [block_file] = store.rglob("*.data")
    block_file.write_bytes(b"tampered")
    code, _, err = run(["cat", HELLO_V0, "--blockstore", str(store)], capsys)
    assert code == 1 and err.startswith("Error: ") and HELLO_V0 in err and err.count("\n") == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["add", "/nonexistent/file"], "lstat /nonexistent/file: no such file or directory"),
    (["add", "-s", "size-0", "{hello}"], "chunker size must be greater than 0"),
    (["add", "-s", "banana", "{hello}"], "unrecognized chunker option"),
    (["add", "--cid-version", "2", "{hello}"], "unknown CID version: 2"),
    (["add", "--cid-version", "0", "--hash", "sha2-512", "{hello}"], "CIDv0 only supports sha2-256"),
    (["add", "--jobs", "0", "{hello}"], "--jobs must be at least 1"),
    (["cat", "nonsense", "--blockstore", "{tmp}"], "invalid CID"),
    (["cat", HELLO_V0], "needs --blockstore"),
    (["cat", HELLO_V0, "--blockstore", "{tmp}/absent"], "blockstore directory not found"),
])
def test_errors_are_one_line_without_traceback(argv: list[str], message: str, hello: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(hello=hello, tmp=tmp_path) for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 1 and out == ""
    first, _, rest = err.partition("\n")
    assert first.startswith("Error: ") and message in first
    # one line, or (a file argument kubo checks while parsing) one line, a blank line and kubo's short help
    assert rest == "" or (argv[0] == "add" and rest.startswith("\nUSAGE\n"))
    assert "Traceback" not in err


def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"x")
    path.chmod(0)
    try:
        if os_can_read(path):
            pytest.skip("running as root: permissions do not apply")
        code, _, err = run(["add", str(path)], capsys)
        assert code == 1 and "Permission denied" in err and err.count("\n") == 1
    finally:
        path.chmod(0o600)


def os_can_read(path: Path) -> bool:
    try:
        path.read_bytes()
    except PermissionError:
        return False
    return True


def test_directory_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["add", str(tmp_path)], capsys)
    assert code == 1 and err.startswith(f"Error: '{tmp_path}' is a directory, use the '-r' flag to specify directories\n")


def test_cat_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    import subprocess

    data = chacha_bytes("pipe", 3 << 20)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    store = str(tmp_path / "blocks")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cid = subprocess.run([sys.executable, "-m", "pyipld", "add", "-Q", "--blockstore", store, str(path)],
                         check=True, capture_output=True, text=True, env=env).stdout.strip()
    with subprocess.Popen([sys.executable, "-m", "pyipld", "cat", cid, "--blockstore", store],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(10) == data[:10]
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 141
    assert err == b""
