"""The ``pyipld`` command line: kubo's and go-car's verbs, no daemon.

Each sub-command lives in ``pyipld/_cli/<name>.py`` with a ``register(subparsers)``
function that adds its parser and sets ``func`` (``args -> int``). Errors from
pyipld print one line to stderr and exit 1, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

from . import __version__
from .errors import PyipldError

__all__ = ["COMMAND_MODULES", "main"]

# One module per verb (or verb family); order = order in --help.
COMMAND_MODULES: tuple[str, ...] = ("add", "cat", "ls", "get", "car", "commp", "chunk", "net")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyipld", description="IPFS building blocks, no daemon.")
    parser.add_argument("--version", action="version", version=f"pyipld {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"pyipld._cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except PyipldError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `pyipld cat … | head`: the reader left; say nothing
        # (before OSError, its base class; stdout goes to devnull so the exit flush cannot fail again)
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        name = os.fsdecode(exc.filename) if isinstance(exc.filename, bytes) else exc.filename
        print(f"Error: {exc.strerror or exc}: {name}" if name else f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
