"""The ``pyipld`` command line: kubo's and go-car's verbs, no daemon.

Each sub-command lives in ``pyipld/_cli/<name>.py`` with a ``register(subparsers)``
function that adds its parser and sets ``func`` (``args -> int``). Errors from
pyipld print one line to stderr and exit 1, without a traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import __version__
from ._cli.argv import parse, short_help
from .errors import PyipldError, UsageError

__all__ = ["COMMAND_MODULES", "main", "os_error_text"]

# One module per verb (or verb family); order = order in --help.
COMMAND_MODULES: tuple[str, ...] = ("add", "cat", "ls", "get", "car", "commp", "chunk", "net", "gateway",
                                     "filestore")
# verb -> the module that registers it
_VERB_MODULES: dict[str, str] = {**{name: name for name in COMMAND_MODULES if name != "net"}, "serve": "net"}


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The parser of every verb, or of ``verb``'s alone (its module is the only one imported:
    start-up time is part of every command's time)."""
    parser = argparse.ArgumentParser(prog="pyipld", description="IPFS building blocks, no daemon.")
    parser.add_argument("--version", action="version", version=f"pyipld {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    module = _VERB_MODULES.get(verb) if verb is not None else None
    for name in COMMAND_MODULES if module is None else (module,):
        importlib.import_module(f"pyipld._cli.{name}").register(sub)
    return parser


def _verb_of(argv: Sequence[str]) -> str | None:
    """The verb argv names (its first word that is not an option), when it is a known one."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-") or word == "-":
            return word if word in _VERB_MODULES else None
    return None


def os_error_text(exc: OSError) -> str:
    """``strerror: path`` with the path shown as text (file names may arrive as bytes)."""
    if not exc.filename:
        return str(exc)
    name = exc.filename if isinstance(exc.filename, str) else os.fsdecode(exc.filename)
    text = f"{exc.strerror or exc}: {name}"
    if exc.filename2:
        other = exc.filename2 if isinstance(exc.filename2, str) else os.fsdecode(exc.filename2)
        text += f" -> {other}"
    return text


def argv_style(path: list[str]) -> str:
    """go-car's ``car`` verbs parse like Go's ``flag`` (urfave/cli); the rest like go-ipfs-cmds (kubo)."""
    return "goflag" if path[:1] == ["car"] else "cmds"


def _find_parser(parser: argparse.ArgumentParser, path: Sequence[str]) -> argparse.ArgumentParser:
    for name in path:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or name not in subs[0].choices:
            break
        parser = subs[0].choices[name]
    return parser


class _ClosedStdin:
    """``sys.stdin`` when the process started with descriptor 0 closed (``<&-``): Python leaves it
    None, and every ``-`` input ended in an AttributeError traceback. It is no terminal, and any
    other use is the closed descriptor's error (EBADF), as Go's reads of /dev/stdin give."""

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> NoReturn:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF), "/dev/stdin")


def _call(args: argparse.Namespace) -> int:
    """Run the verb; an error that a trio nursery wrapped alone is raised as itself, so it
    gets the one-line ``Error:`` below instead of an ExceptionGroup traceback."""
    try:
        return int(args.func(args))
    except BaseExceptionGroup as group:
        leaves = _leaf_errors(group)
        if len(leaves) == 1:
            raise leaves[0] from None
        raise


def _leaf_errors(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """The errors inside nested groups, less trio's Cancelled (the siblings a failure cancelled)."""
    leaves: list[BaseException] = []
    todo: list[BaseException] = [group]
    while todo:
        exc = todo.pop()
        if isinstance(exc, BaseExceptionGroup):
            todo.extend(exc.exceptions)
        elif not (type(exc).__name__ == "Cancelled" and type(exc).__module__.startswith("trio")):
            leaves.append(exc)
    return leaves


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # also while the verb's modules load or its arguments are parsed
        print("Error: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_verb_of(words))
    try:
        parsed = parse(parser, words, argv_style)
    except UsageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        if exc.command:  # kubo: a blank line and the command's short help after a parse error
            print("\n" + short_help(_find_parser(parser, exc.command)), file=sys.stderr, end="")
        return 1
    if parsed.version is not None:
        print(parsed.version)
        return 0
    if parsed.help:
        parsed.parser.print_help(sys.stdout)
        return 0
    args = parsed.namespace
    if sys.stdin is None:
        sys.stdin = _ClosedStdin()
    try:
        return _call(args)
    except UsageError as exc:  # a file argument kubo checks while parsing: same output as a parse error
        print(f"Error: {exc}", file=sys.stderr)
        command = exc.command or (args.command,)
        print("\n" + short_help(_find_parser(parser, command)), file=sys.stderr, end="")
        return 1
    except PyipldError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `pyipld add -r big/ | head`: the reader left; stop quietly like cat(1)
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no complaint at the final flush
        except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
            pass
        return 141  # 128 + SIGPIPE, what a shell reports for cat(1)
    except OSError as exc:
        print(f"Error: {os_error_text(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
