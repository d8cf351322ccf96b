"""Checks of the integer arguments the public API takes (offsets, lengths, ranges)."""

from __future__ import annotations

import operator

from .errors import ConfigError

__all__ = ["index_arg"]


def index_arg(value: object, name: str, *, none: bool = False) -> int | None:
    """``value`` as an ``int`` (any integer type, numpy's too, via ``__index__``); with ``none``,
    None is passed through.

    Raises:
        ConfigError: a float, str or other non-integer (not a TypeError from deep inside).
    """
    if value is None and none:
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        allowed = "an int or None" if none else "an int"
        raise ConfigError(f"{name} must be {allowed}, not a {type(value).__name__}: {value!r}") from None
