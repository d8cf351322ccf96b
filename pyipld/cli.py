"""The ``pyipld`` command line: kubo's and go-car's verbs, no daemon.

Each sub-command lives in ``pyipld/_cli/<name>.py`` with a ``register(subparsers)``
function that adds its parser and sets ``func`` (``args -> int``). Errors from
pyipld print one line to stderr and exit 1, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from . import __version__
from .errors import PyipldError

__all__ = ["COMMAND_MODULES", "main", "os_error_text"]

# One module per verb (or verb family); order = order in --help.
COMMAND_MODULES: tuple[str, ...] = ("add", "cat", "ls", "get", "car", "commp", "chunk", "net", "gateway")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyipld", description="IPFS building blocks, no daemon.")
    parser.add_argument("--version", action="version", version=f"pyipld {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"pyipld._cli.{name}").register(sub)
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
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
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
