"""``pyipld add --car OUT``: its options and its sink, apart from the ``car`` verbs (whose module
imports the readers, the index and UnixFS extraction: start-up time ``add`` need not pay)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from typing import IO, Any, TextIO

from ..unixfs.params import ImportParams

__all__ = ["add_car_arguments", "car_sink_for", "text_stream"]


def text_stream(car_target: str | None) -> TextIO:
    """Where a command's text lines go when it writes a CAR to ``car_target``: stderr when the
    CAR itself goes to stdout (``-``), else stdout."""
    return sys.stderr if car_target == "-" else sys.stdout


def add_car_arguments(parser: argparse.ArgumentParser) -> None:
    """``--car OUT.car`` and ``--car-version 1|2`` for ``pyipld add`` (one-pass import into a CAR)."""
    g = parser.add_argument_group("CAR output")
    g.add_argument("--car", metavar="OUT.car", default=None,
                   help="also write every block into this CAR file (- for stdout), in one pass")
    g.add_argument("--car-version", type=int, choices=(1, 2), default=1,
                   help="CAR version for --car (default 1, like `ipfs dag export`; 2 adds an index)")


def car_sink_for(args: argparse.Namespace, params: ImportParams, *,
                 wrap: Callable[[IO[bytes]], IO[bytes]] | None = None,
                 resume_key: str | None = None) -> contextlib.AbstractContextManager[Any]:
    """The sink for ``add --car``: a context manager yielding a CAR writer, or ``None`` without ``--car``.

    Usage in ``add``: ``with car_sink_for(args, params) as car: … car.put …; car.set_roots(roots)``.
    ``wrap`` is passed to :func:`~pyipld.car.sink.open_car_sink` (e.g. a CommP side-tap).
    ``resume_key``: write a resumable CAR (:mod:`pyipld.car.resume`) whose leftover a re-run
    with the same key continues (not for ``--car -``).
    """
    if not getattr(args, "car", None):
        return contextlib.nullcontext(None)
    if resume_key is not None and args.car != "-":
        from ..car.resume import open_resumable_car_sink
        from ..car.sink import placeholder_root_for

        return open_resumable_car_sink(args.car, args.car_version, key=resume_key,
                                       placeholder_roots=[placeholder_root_for(params)], wrap=wrap)
    from ..car.sink import open_car_sink

    return open_car_sink(args.car, args.car_version, params=params, wrap=wrap)
