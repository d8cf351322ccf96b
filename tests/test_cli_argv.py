"""The argv engine (pyipld/_cli/argv.py) on its own: go-ipfs-cmds v0.9.0 ``cli/parse.go`` /
``option.go`` rules and Go ``flag`` rules, on a small declared parser."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld._cli.argv import go_duration, go_int, parse, parse_bool
from pyipld.errors import UsageError


def _root() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="t")
    root.add_argument("--version", action="version", version="t 1")
    sub = root.add_subparsers(dest="command", required=True)
    p = sub.add_parser("add")
    p.add_argument("paths", nargs="*")
    p.add_argument("-r", "--recursive", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-Q", "--quieter", action="store_true")
    p.add_argument("-s", "--chunker")
    p.add_argument("--cid-version", type=int)
    p.add_argument("--raw-leaves", nargs="?", const=True, default=None, type=parse_bool)
    p.add_argument("--ignore", action="append", default=[])
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--pick", choices=("a", "b"))
    q = sub.add_parser("cat")
    q.add_argument("cid")
    q.add_argument("out", nargs="?")
    c = sub.add_parser("car")
    cs = c.add_subparsers(dest="car_command", required=True)
    x = cs.add_parser("create")
    x.add_argument("-f", "--file", required=True)
    x.add_argument("--no-wrap", action="store_true")
    x.add_argument("--version", type=int, default=2)
    x.add_argument("paths", nargs="+")
    return root


def _style(path: list[str]) -> str:
    return "goflag" if path[:1] == ["car"] else "cmds"


def ns(*argv: str) -> argparse.Namespace:
    return parse(_root(), argv, _style).namespace


def err(*argv: str) -> str:
    with pytest.raises(UsageError) as info:
        parse(_root(), argv, _style)
    return str(info.value)


def test_a_boolean_never_takes_the_next_word() -> None:
    a = ns("add", "--raw-leaves", "file.bin")
    assert a.raw_leaves is True and a.paths == ["file.bin"]
    a = ns("add", "-r", "dir", "--quiet", "x")
    assert a.recursive and a.quiet and a.paths == ["dir", "x"]


@pytest.mark.parametrize(("text", "value"), [
    ("", True), ("1", True), ("t", True), ("T", True), ("TRUE", True), ("true", True), ("True", True), ("tRuE", True),
    ("0", False), ("f", False), ("F", False), ("FALSE", False), ("false", False), ("False", False),
])
def test_boolean_values_as_go_parsebool_after_lowercasing(text: str, value: bool) -> None:
    assert ns("add", f"--raw-leaves={text}").raw_leaves is value
    assert ns("add", f"--quiet={text}").quiet is value
    assert ns("add", f"-q={text}").quiet is value


@pytest.mark.parametrize("text", ["yes", "no", "on", "off", "2", "truee"])
def test_other_boolean_values_are_errors(text: str) -> None:
    assert err("add", f"--recursive={text}") == f'strconv.ParseBool: parsing "{text}": invalid syntax'


def test_store_false_with_a_value() -> None:
    assert ns("add").progress is True
    assert ns("add", "--no-progress").progress is False
    assert ns("add", "--no-progress=false").progress is True


def test_interleaving_and_double_dash() -> None:
    a = ns("add", "a.txt", "--cid-version", "1", "b.txt", "--", "--quiet", "-")
    assert a.paths == ["a.txt", "b.txt", "--quiet", "-"] and a.cid_version == 1 and not a.quiet


def test_short_bundles_and_values() -> None:
    a = ns("add", "-rqQ", "-ssize-64", "x")
    assert a.recursive and a.quiet and a.quieter and a.chunker == "size-64"
    assert ns("add", "-rs", "size-1", "x").chunker == "size-1"
    assert ns("add", "-s=size-9").chunker == "size-9"
    assert err("add", "-rz") == 'unknown option "rz"'
    assert err("add", "-quiet") == 'unknown option "quiet"'  # -q then -u: kubo names the whole word
    assert err("add", "-s") == 'missing argument for option "s"'


def test_the_next_word_is_a_value_even_with_a_dash() -> None:
    assert ns("add", "--chunker", "-x").chunker == "-x"
    assert ns("add", "--cid-version", "-1").cid_version == -1


def test_no_abbreviations() -> None:
    assert err("add", "--cid", "1") == 'unknown option "cid"'
    assert err("add", "--trick") == 'unknown option "trick"'


def test_long_form_of_a_short_name_works_as_in_kubo() -> None:
    assert ns("add", "--q").quiet is True


def test_multiple_values() -> None:
    assert err("add", "-q", "--quiet") == 'multiple values for option "quiet"'
    assert err("add", "--cid-version=1", "--cid-version", "0") == 'multiple values for option "cid-version"'
    assert ns("add", "--ignore", "a", "--ignore=b").ignore == ["a", "b"]  # Strings options repeat


@pytest.mark.parametrize(("text", "value"), [("0x1", 1), ("1", 1), ("010", 8), ("0o10", 8), ("0b11", 3), ("1_000", 1000),
                                             ("-0x10", -16), ("+5", 5)])
def test_integers_as_go(text: str, value: int) -> None:
    assert ns("add", f"--cid-version={text}").cid_version == value


@pytest.mark.parametrize("text", ["", "1.0", "abc", "08", "1__0", "_1", "0x", "1e3"])
def test_bad_integers(text: str) -> None:
    assert err("add", f"--cid-version={text}") == f'strconv.ParseInt: parsing "{text}": invalid syntax'


def test_integer_range() -> None:
    assert go_int(str(2**63 - 1)) == 2**63 - 1
    with pytest.raises(ValueError, match="value out of range"):
        go_int(str(2**63))


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_go_int_round_trips(value: int) -> None:
    assert go_int(str(value)) == value
    assert go_int(("-" if value < 0 else "") + hex(abs(value))) == value


def test_choices_and_arguments() -> None:
    assert 'choose from a, b' in err("add", "--pick", "c")
    assert err("cat") == 'argument "cid" is required'
    assert err("cat", "a", "b", "c") == "expected 2 argument(s), got 3"
    a = ns("cat", "a")
    assert a.cid == "a" and a.out is None
    assert err("bogus") == 'unknown command "bogus"'


def test_errors_carry_the_command_path() -> None:
    with pytest.raises(UsageError) as info:
        parse(_root(), ["car", "create", "-x"], _style)
    assert info.value.command == ("car", "create")


def test_help_and_version() -> None:
    assert parse(_root(), ["add", "--help"], _style).help
    assert parse(_root(), ["add", "-h", "--bogus"], _style).help  # help before the bad flag is seen
    assert parse(_root(), ["car"], _style).help  # a command group alone prints its help, like kubo
    assert parse(_root(), ["--version"], _style).version == "t 1"


def test_goflag_style_for_car() -> None:
    a = ns("car", "create", "-file=out.car", "--no-wrap", "a", "b")
    assert a.file == "out.car" and a.no_wrap and a.paths == ["a", "b"] and a.version == 2
    assert ns("car", "create", "--file", "o", "-version", "0x1", "a").version == 1
    assert ns("car", "create", "-f", "o", "-f", "p", "a").file == "p"  # Go flag: the last value wins
    assert ns("car", "create", "-f", "o", "--no-wrap=false", "a").no_wrap is False
    assert err("car", "create", "-f", "o", "--no-wrap=yes", "a") == 'invalid boolean value "yes" for -no-wrap: parse error'
    assert err("car", "create", "-f", "o", "--no-wrap=", "a") == 'invalid boolean value "" for -no-wrap: parse error'
    assert err("car", "create", "-x", "a") == "flag provided but not defined: -x"
    assert err("car", "create", "-f", "o", "-version", "z", "a") == 'invalid value "z" for flag -version: parse error'
    assert err("car", "create", "a", "-f") == "flag needs an argument: -f"
    assert err("car", "create", "---f", "a") == "bad flag syntax: ---f"
    assert err("car", "create", "a") == 'option "file" is required'


@pytest.mark.parametrize(("text", "seconds"), [("300ms", 0.3), ("1h30m", 5400.0), ("-1.5h", -5400.0), ("0", 0.0),
                                               ("2us", 2e-6), ("1.5s", 1.5), ("2562047h", 2562047 * 3600.0)])
def test_go_duration(text: str, seconds: float) -> None:
    assert go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "s", "1x", "1.5", "h1"])
def test_bad_go_duration(text: str) -> None:
    with pytest.raises(ValueError, match="^time: "):
        go_duration(text)


@pytest.mark.parametrize("text", ["2562048h", "-2562048h", "99999999999h", "9223372037s"])
def test_durations_beyond_an_int64_of_nanoseconds_are_invalid(text: str) -> None:
    """Regression: ``--timeout=2562048h`` reached ``signal.setitimer``/``socket.settimeout`` and
    ended in an OverflowError traceback; Go's ParseDuration refuses more than 2^63-1 ns."""
    from pyipld._cli.timeout import seconds_or_duration

    with pytest.raises(ValueError, match=f'^time: invalid duration "{text}"$'):
        go_duration(text)
    with pytest.raises(ValueError, match=f'^time: invalid duration "{text}"$'):
        seconds_or_duration(text)
    with pytest.raises(ValueError, match='^time: invalid duration "1e300"$'):
        seconds_or_duration("1e300")


def test_shared_dest_defaults_follow_argparse() -> None:
    """``--progress`` (default None) and ``--no-progress`` share a dest: the first default wins."""
    root = argparse.ArgumentParser(prog="t")
    sub = root.add_subparsers(dest="command")
    p = sub.add_parser("v")
    p.add_argument("--progress", dest="progress", action="store_true", default=None)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    assert parse(root, ["v"]).namespace.progress is None
    assert parse(root, ["v", "--no-progress"]).namespace.progress is False
    assert parse(root, ["v", "--progress"]).namespace.progress is True


def test_stdin_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    from pyipld._cli.argv import stdin_arguments

    class Pipe(io.StringIO):
        def isatty(self) -> bool:
            return False

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Pipe("a\r\nb\n\nc"))
    assert stdin_arguments("ipfs-path") == ["a", "b", "", "c"]  # arguments.go Scan: every line, \r\n trimmed
    monkeypatch.setattr(sys, "stdin", Tty("never read"))
    with pytest.raises(UsageError, match='argument "ipfs-path" is required'):
        stdin_arguments("ipfs-path")
