"""kubo's global ``--timeout`` for one command run: a Go duration, then ``context deadline exceeded``."""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from ..errors import ConfigError, PyipldError
from .argv import go_duration

__all__ = ["DeadlineExceeded", "deadline", "go_duration_option", "seconds_or_duration"]


class DeadlineExceeded(PyipldError, TimeoutError):
    """The ``--timeout`` passed (kubo: ``context deadline exceeded``)."""


def go_duration_option(text: str | None) -> float | None:
    """The ``--timeout`` value in seconds (None: no limit); kubo's ``time.ParseDuration`` errors."""
    if text is None:
        return None
    try:
        return go_duration(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def seconds_or_duration(text: str) -> float:
    """A fetch ``--timeout``: a Go duration as kubo takes it (``30s``, ``1m30s``), or bare seconds
    (pyipld's older form, ``30``); Go's ``time.ParseDuration`` message otherwise."""
    try:
        return float(go_duration(text))
    except ValueError:
        try:
            seconds = float(text)
        except ValueError:
            raise ValueError(f'time: invalid duration "{text}"') from None
        if not math.isfinite(seconds) or abs(seconds) * 1e9 >= 2**63:  # as Go's range for durations
            raise ValueError(f'time: invalid duration "{text}"') from None
        return seconds


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`DeadlineExceeded` in the main thread when ``seconds`` pass (a blocking read too).

    A zero or negative duration expires at once, as a Go context does.
    """
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    if seconds <= 0:
        raise DeadlineExceeded("context deadline exceeded")

    def expire(signum: int, frame: FrameType | None) -> None:
        raise DeadlineExceeded("context deadline exceeded")

    previous = signal.signal(signal.SIGALRM, expire)
    started = time.monotonic()
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer > 0:  # someone else's alarm (e.g. a test runner's) keeps its remaining time
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 1e-3))
