"""Go's ``strconv.Atoi`` and boxo's chunker error texts, so bad chunker strings fail as in kubo.

Python's ``int()`` is looser than Go (``"1_000"``, ``" 5"``, non-ASCII digits), so
chunker numbers are parsed with Go's rules: an optional sign, then ASCII decimal
digits, within int64.
"""

from __future__ import annotations

import re
from typing import Final

from ..errors import ConfigError
from . import CHUNK_SIZE_LIMIT

__all__ = ["ERR_SIZE", "ERR_SIZE_MAX", "go_atoi", "go_quote"]

ERR_SIZE: Final = "chunker size must be greater than 0"  # boxo parse.go ErrSize
ERR_SIZE_MAX: Final = (  # boxo parse.go ErrSizeMax (kubo >= 0.40 limit)
    f"chunker parameters may not exceed the maximum chunk size of {CHUNK_SIZE_LIMIT}"
)
_DECIMAL = re.compile(r"[+-]?[0-9]+\Z")
_INT64_MAX: Final = (1 << 63) - 1


def go_quote(text: str) -> str:
    """A close approximation of Go's ``strconv.Quote``."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif "\udc80" <= ch <= "\udcff":  # an undecodable byte (surrogateescape): Go prints it as \xNN
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, f"\\x{ord(ch):02x}"))
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def go_atoi(text: str) -> int:
    """``strconv.Atoi(text)`` on 64-bit Go.

    Raises:
        ConfigError: Go's message, e.g. ``strconv.Atoi: parsing "x": invalid syntax``.
    """
    if not _DECIMAL.match(text):
        raise ConfigError(f"strconv.Atoi: parsing {go_quote(text)}: invalid syntax")
    value = int(text, 10)
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        raise ConfigError(f"strconv.Atoi: parsing {go_quote(text)}: value out of range")
    return value
