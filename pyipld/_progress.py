"""A small progress bar on stderr: bytes done, rate, ETA. Throttled, TTY-aware."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "format_bytes"]


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


class Progress:
    """Call ``update(n)`` as bytes are processed and ``close()`` at the end.

    Redraws at most ``hz`` times a second; on a non-terminal stream it prints a
    plain line at most every ``interval_s`` seconds instead of a bar.
    """

    def __init__(self, total: int | None = None, *, label: str = "", stream: TextIO | None = None,
                 hz: float = 10.0, interval_s: float = 5.0) -> None:
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.done = 0
        self._start = time.monotonic()
        self._last = 0.0
        self._tty = self.stream.isatty()
        self._period = 1.0 / hz if self._tty else interval_s

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self._period:
            self._last = now
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self._start, 1e-9)
        rate = self.done / elapsed
        parts = [self.label] if self.label else []
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            eta_s = f"{eta:.0f}s" if eta != float("inf") else "?"
            parts.append(f"[{bar:<30}] {frac * 100:5.1f}% {format_bytes(self.done)} / {format_bytes(self.total)}"
                         f" {format_bytes(rate)}/s ETA {eta_s}")
        else:
            parts.append(f"{format_bytes(self.done)} {format_bytes(rate)}/s")
        return " ".join(parts)

    def _draw(self, now: float) -> None:
        if self._tty:
            self.stream.write("\r\x1b[K" + self.line(now))
        else:
            self.stream.write(self.line(now) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self._draw(time.monotonic())
        if self._tty:
            self.stream.write("\n")
        self.stream.flush()
