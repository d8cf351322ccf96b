"""kubo's other ``add`` options and the ``cat``/``car`` details of issue 9, one behaviour per test."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld._cli.add_inputs import is_url, url_base
from pyipld._cli.add_output import CidEncoder, go_json
from pyipld._cli.car import humanize_bytes
from pyipld._cli.cat import plan_ranges
from pyipld.cid import CID
from pyipld.cli import main
from pyipld.errors import ConfigError
from pyipld.unixfs.ignore import compile_rules, rule_regex

HELLO = "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH"  # "Hello Worlds!\n" (kubo t0040)


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    path = tmp_path / "hello.txt"
    path.write_bytes(b"Hello Worlds!\n")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- ignore rules: go-gitignore's regular expressions (crackcomm/go-gitignore@7843d2b ignore.go) ---------------

@pytest.mark.parametrize(("rule", "expr"), [
    ("foo.txt", r"^(|.*/)foo\.txt(|/.*)$"),
    ("*.app", r"^(|.*/)([^/]*)\.app(|/.*)$"),
    ("bar/", r"^(|.*/)bar/(|.*)$"),
    ("**/baz", r"^(|.*/)(|.*/)baz(|/.*)$"),
    ("fizz/**", r"^(|.*/)fizz(|/.*)(|/.*)$"),
    ("/root", r"^(|/)root(|/.*)$"),
    ("a/*.b", r"^(|/)a/([^/]*)\.b(|/.*)$"),  # foo/*.blah gets a leading /
    ("\\#hash", r"^(|.*/)\#hash(|/.*)$"),  # the backslash stays: a regexp escape of #
    ("q?", r"^(|.*/)q\?(|/.*)$"),
])
def test_rule_regex_is_go_gitignores(rule: str, expr: str) -> None:
    assert rule_regex(rule) == (expr, False)


def test_comments_blanks_and_negation() -> None:
    assert rule_regex("# comment") is None and rule_regex("   ") is None and rule_regex("") is None
    assert rule_regex("!keep.txt") == (r"^(|.*/)keep\.txt(|/.*)$", True)
    rules = compile_rules(["*.txt", "!keep.txt"])
    assert rules(b"a.txt") and not rules(b"keep.txt") and not rules("b.bin")
    assert compile_rules(["!keep.txt", "*.txt"])(b"keep.txt")  # a later rule decides
    assert compile_rules(["a("])(b"a(") is False  # a rule Go's regexp rejects never matches
    assert compile_rules(["x"])(b"x\n") is False  # Go's $ is the end of the text
    assert compile_rules(["\\#hash"])(b"#hash")


def test_ignore_rules_path_missing_is_kubos_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "d"
    d.mkdir()
    code, out, err = run(capsys, "add", "-r", "--ignore-rules-path", "nope", str(d))
    assert code == 1 and out == "" and err.startswith("Error: open nope: no such file or directory\n")


# --- output: --enc=json, --silent, --cid-base ---------------------------------------------------------------

def test_enc_json_prints_kubos_add_events(hello: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "add", "--enc=json", "-w", str(hello))
    lines = out.splitlines()
    assert code == 0 and lines[0] == f'{{"Name":"hello.txt","Hash":"{HELLO}","Size":"22"}}'
    wrapper = json.loads(lines[1])
    assert list(wrapper) == ["Name", "Hash", "Size"] and wrapper["Name"] == ""
    assert run(capsys, "add", "--encoding", "json", "-Q", str(hello))[1] == lines[0] + "\n"  # -Q is text only
    assert run(capsys, "add", "--enc=xml", str(hello))[0] == 1


def test_go_json_escapes_like_encoding_json() -> None:
    assert go_json({"Name": "<a&b>\u2028"}) == '{"Name":"\\u003ca\\u0026b\\u003e\\u2028"}'
    assert go_json({"Name": b"x\xff".decode("utf-8", "surrogateescape")}) == '{"Name":"x\ufffd"}'


def test_silent_prints_nothing(hello: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "add", "--silent", "-Q", str(hello)) == (0, "", "")
    assert run(capsys, "add", "--silent", "--enc=json", str(hello)) == (0, "", "")


@pytest.mark.parametrize(("argv", "shown"), [
    (["--cid-base=base32"], "bafybeidpq7lcjx4w5c6yr4vuthzvlav54hgxsremwk73to5ferdc2rxhai"),
    (["--cid-base", "b"], "bafybeidpq7lcjx4w5c6yr4vuthzvlav54hgxsremwk73to5ferdc2rxhai"),
    (["--cid-base=base32", "--upgrade-cidv0-in-output=false"], HELLO),
    (["--upgrade-cids"], "bafybeidpq7lcjx4w5c6yr4vuthzvlav54hgxsremwk73to5ferdc2rxhai"),
    (["--cid-base=base36"], "k2jmtxu56kp71qjxcqrauvhsgqotayvxexvfz6a1erubbylut2fuz6rm"),
])
def test_cid_base(hello: Path, capsys: pytest.CaptureFixture[str], argv: list[str], shown: str) -> None:
    code, out, _ = run(capsys, "add", "-q", *argv, str(hello))
    assert code == 0 and out == shown + "\n"
    assert CID.decode(out.strip()).multihash == CID.decode(HELLO).multihash


def test_cid_encoder_errors() -> None:
    with pytest.raises(ConfigError, match="unsupported multibase encoding: nope"):
        CidEncoder.from_options("nope", None)
    with pytest.raises(ConfigError, match="empty multibase encoding"):
        CidEncoder.from_options("", None)


# --- inputs: refusals, stdin, URLs, --dereference-args --------------------------------------------------------

@pytest.mark.parametrize(("flag", "message"), [
    (["--to-files=/x"], "--to-files needs kubo's MFS"), (["--nocopy"], "--nocopy needs --blockstore DIR"),
])
def test_refused_options(hello: Path, capsys: pytest.CaptureFixture[str], flag: list[str], message: str) -> None:
    code, out, err = run(capsys, "add", *flag, str(hello))
    assert code == 1 and out == "" and err.startswith(f"Error: {message}")


def test_pin_is_accepted(hello: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("--pin", "--pin=false", "--pin=true"):
        assert run(capsys, "add", "-Q", flag, str(hello))[1] == HELLO + "\n"


class _Stdin(io.TextIOWrapper):
    def isatty(self) -> bool:
        return False


def test_unnamed_stdin_with_other_paths(hello: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", _Stdin(io.BytesIO(b"Hello Worlds!\n")))
    code, out, _ = run(capsys, "add", str(hello), "-")
    assert code == 0 and out == f"added {HELLO} {HELLO}\nadded {HELLO} hello.txt\n"  # "" sorts first
    monkeypatch.setattr(sys, "stdin", _Stdin(io.BytesIO(b"x")))
    code, _, err = run(capsys, "add", "-w", str(hello), "-")
    assert code == 1 and "--stdin-name" in err


def test_dereference_args(hello: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = hello.parent / "link"
    os.symlink("hello.txt", link)
    code, out, _ = run(capsys, "add", "--dereference-args", str(link))
    assert code == 0 and out == f"added {HELLO} hello.txt\n"  # kubo: EvalSymlinks, then the target's name
    code, out, _ = run(capsys, "add", str(link))
    assert code == 0 and out.endswith(" link\n") and HELLO not in out  # a symlink node otherwise
    code, _, err = run(capsys, "add", "--dereference-args", str(hello.parent / "dangling"))
    assert code == 1 and err.startswith(f"Error: lstat {hello.parent / 'dangling'}: no such file or directory")


def test_dereference_args_errors_are_go_evalsymlinks(hello: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a symlink loop was added as the symlink itself (``os.path.realpath`` is not
    strict), and a dangling link's error named the absolute path. Go's ``filepath.EvalSymlinks``
    (go-ipfs-cmds, kubo 0.22): ``EvalSymlinks: too many links``; ``lstat`` of the path as walked."""
    monkeypatch.chdir(hello.parent)
    os.symlink("loop2", "loop1")
    os.symlink("loop1", "loop2")
    os.symlink("nothere", "dangling-rel")
    os.mkdir("d")
    os.symlink("../hello.txt", "d/up")
    os.symlink("d", "dlink")
    for arg, message in [("loop1", "EvalSymlinks: too many links"),
                         ("dangling-rel", "lstat nothere: no such file or directory"),
                         ("hello.txt/x", "not a directory")]:
        code, out, err = run(capsys, "add", "--dereference-args", arg)
        assert (code, out) == (1, "") and err.startswith(f"Error: {message}\n"), (arg, err)
    for arg in ("d/up", "dlink/up", "dlink/../hello.txt", "./d/./up"):
        code, out, _ = run(capsys, "add", "--dereference-args", arg)
        assert (code, out) == (0, f"added {HELLO} hello.txt\n"), arg


def test_url_helpers() -> None:
    assert url_base(is_url("https://example.org/a/b.txt")) == "b.txt"  # type: ignore[arg-type]
    assert url_base(is_url("http://example.org")) == "example.org"  # type: ignore[arg-type]
    assert url_base(is_url("http://example.org/")) == "/"  # type: ignore[arg-type]
    assert is_url("ftp://example.org/x") is None and is_url("http:///x") is None and is_url("file.txt") is None


def test_url_error_status(capsys: pytest.CaptureFixture[str]) -> None:
    import http.server

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/missing.txt"
    try:
        code, out, err = run(capsys, "add", url)
    finally:
        thread.join(5)
        server.server_close()
    assert code == 1 and out == "" and err == f"Error: got non-2XX status code 404: {url}\n"


# --- --timeout ----------------------------------------------------------------------------------------------

def test_timeout_ends_a_blocked_add(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    start = time.monotonic()
    code, out, err = run(capsys, "add", "--timeout=200ms", str(fifo))
    assert time.monotonic() - start < 5
    assert code == 1 and out == "" and err == "Error: context deadline exceeded\n"


def test_bad_timeout(hello: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "add", "--timeout=soon", str(hello))
    assert code == 1 and err == 'Error: time: invalid duration "soon"\n'
    assert run(capsys, "add", "-Q", "--timeout=1m", str(hello))[1] == HELLO + "\n"


# --- progress by default on a terminal ----------------------------------------------------------------------

class _TtyErr(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("flags", "shown"), [([], True), (["-q"], False), (["-Q"], False), (["--silent"], False),
                                               (["--progress=false"], False)])
def test_progress_default_follows_kubo(hello: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str],
                                       shown: bool) -> None:
    err = _TtyErr()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert main(["add", *flags, str(hello)]) == 0
    assert ("adding" in err.getvalue()) is shown


def test_no_progress_when_stderr_is_not_a_terminal(hello: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "add", str(hello))[2] == ""


# --- cat: kubo's offset/length over several files -------------------------------------------------------------

@given(st.lists(st.binary(max_size=20), min_size=1, max_size=5), st.integers(0, 120),
       st.one_of(st.none(), st.integers(0, 120)))
def test_plan_ranges_is_slicing_the_concatenation(files: list[bytes], offset: int, length: int | None) -> None:
    out = b"".join(files[i][start:None if count is None else start + count]
                   for i, start, count in plan_ranges([len(f) for f in files], offset, length))
    whole = b"".join(files)
    assert out == (whole[offset:] if length is None else whole[offset:offset + length])


def test_cat_directory_and_length_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "x").write_bytes(b"x")
    bs = str(tmp_path / "bs")
    root = run(capsys, "add", "-rQ", "--blockstore", bs, str(d))[1].strip()
    assert run(capsys, "cat", "--blockstore", bs, root) == (1, "", "Error: this dag node is a directory\n")
    assert run(capsys, "cat", "--blockstore", bs, "--length", "0", root) == (0, "", "")  # kubo returns early


# --- car ls -v: go-humanize Bytes ------------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "text"), [(0, "0 B"), (1, "1 B"), (803, "803 B"), (999, "999 B"), (1024, "1.0 kB"),
                                         (9999, "10 kB"), (12345, "12 kB"), (1_000_000, "1.0 MB"),
                                         (82_854_982, "83 MB"), (1 << 60, "1.2 EB")])
def test_humanize_bytes_is_go_humanizes(n: int, text: str) -> None:
    assert humanize_bytes(n) == text


def test_timeout_keeps_an_outer_alarm(hello: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import signal

    previous = signal.signal(signal.SIGALRM, lambda *a: None)
    old = signal.setitimer(signal.ITIMER_REAL, 100.0)
    try:
        assert run(capsys, "add", "-Q", "--timeout=30s", str(hello))[0] == 0
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 90 < remaining <= 100
    finally:
        signal.setitimer(signal.ITIMER_REAL, *old)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize(("flags", "report"), [([], "all"), (["-q"], "all"), (["-Q"], "top"), (["--silent"], "top"),
                                               (["-Q", "--enc=json"], "all")])
def test_quieter_outputs_ask_only_for_top_level_entries(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch, flags: list[str],
                                                        report: str) -> None:
    """-Q/--silent print at most the last entry, a top-level one: the import is asked to report
    only those (a cached re-import of 100,000 files: 0.6 s -> 0.27 s), with the same output."""
    import pyipld._cli._scale as scale

    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "x").write_bytes(b"x")
    (tmp_path / "f").write_bytes(b"f")
    asked: list[str] = []
    real = scale.import_paths

    def spy(*args: object, **kwargs: object) -> object:
        asked.append(str(kwargs.get("report")))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scale, "import_paths", spy)
    code, out, _ = run(capsys, "add", "-r", "-n", *flags, str(tmp_path / "d"), str(tmp_path / "f"))
    assert code == 0 and asked == [report]
    if flags == ["-Q"]:  # the same CID as the last line of the full output (f's root)
        every = run(capsys, "add", "-r", "-n", str(tmp_path / "d"), str(tmp_path / "f"))[1].splitlines()
        assert len(every) == 4 and every[-1].endswith(" f")
        assert out == every[-1].split()[1] + "\n"
