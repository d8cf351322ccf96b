"""Side inputs of the ``car`` verbs (``filter``'s CID list): read a line at a time, each line
capped, so an endless or binary input (``--cid-file /dev/zero``) is a one-line error at once
instead of memory growing until the machine runs out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Final

from ..errors import ConfigError

__all__ = ["MAX_LINE_BYTES", "iter_text_lines"]

MAX_LINE_BYTES: Final = 4096  # a CID in any base is a few hundred characters


def iter_text_lines(stream: IO[bytes], name: str, what: str, *,
                    max_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each line of ``stream`` (``\\n`` or ``\\r\\n`` removed), as
    go-car's ``bufio.Reader.ReadLine``; never more than ``max_bytes + 2`` bytes held.

    Raises:
        ConfigError: a line longer than ``max_bytes``, or not UTF-8 (``name``, the line number
            and ``what`` the input is, in the message).
    """
    number = 0
    while line := stream.readline(max_bytes + 2):
        number += 1
        text = line.removesuffix(b"\n").removesuffix(b"\r") if line.endswith(b"\n") else line
        if len(text) > max_bytes:
            raise ConfigError(f"{name}: line {number} of the {what} is longer than {max_bytes} bytes")
        try:
            yield number, text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{name}: line {number}: {what} is not UTF-8 text ({exc.reason} at byte "
                              f"{exc.start})") from None
