"""What ``add`` prints: kubo 0.22's ``added <cid> <name>`` lines (``-q``, ``-Q``, ``--silent``), or
with ``--enc=json`` its ``AddEvent`` objects; CIDs through kubo's CID encoder (``--cid-base``,
``--upgrade-cidv0-in-output``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

from ..cid import CID
from ..errors import ConfigError

__all__ = ["AddOutput", "CidEncoder", "escape_name", "go_json", "print_line"]


@dataclass(frozen=True)
class CidEncoder:
    """kubo's ``cmdenv.GetCidEncoder``: a base for CIDv1, and whether CIDv0 is upgraded first."""

    base: str | None = None
    upgrade: bool = False

    @classmethod
    def from_options(cls, base: str | None, upgrade: bool | None) -> CidEncoder:
        name = None
        if base is not None:
            name = _base_name(base)
        # a --cid-base upgrades CIDv0 unless --upgrade-cidv0-in-output says otherwise
        return cls(name, upgrade if upgrade is not None else name is not None)

    def encode(self, cid: CID) -> str:
        if cid.version == 0:
            if not self.upgrade:
                return str(cid)
            cid = cid.to_v1()
        if self.base is None:
            return str(cid)
        from multiformats import multibase  # here: its tables cost every `add` start-up time

        return str(multibase.encode(cid.bytes, self.base))


def _base_name(text: str) -> str:
    """go-multibase ``EncoderByName``: a name, or a one-character prefix."""
    if not text:
        raise ConfigError("empty multibase encoding")
    from multiformats import multibase

    try:
        found = multibase.get(code=text) if len(text) == 1 else multibase.get(text)
    except (KeyError, ValueError):
        raise ConfigError(f"unsupported multibase encoding: {text}") from None
    return str(found.name)


def go_json(obj: Mapping[str, object]) -> str:
    """Go ``encoding/json``: compact, ``<``, ``>``, ``&``, U+2028/2029 escaped, invalid UTF-8 as U+FFFD."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class AddOutput:
    """Prints each added entry and, at the end, ``-Q``'s final CID."""

    def __init__(self, out: TextIO, *, quiet: bool, quieter: bool, silent: bool, json_events: bool,
                 encoder: CidEncoder, clear_progress: bool) -> None:
        self.out = out
        self.quiet, self.quieter, self.silent = quiet, quieter, silent
        self.json = json_events
        self.encoder = encoder
        self.clear_progress = clear_progress
        self.last = ""
        self._last_cid: CID | None = None  # -Q/--silent: only the last CID is ever encoded

    @property
    def prints_only_last(self) -> bool:
        """``-Q``/``--silent`` without ``--enc=json``: no entry but the last is printed."""
        return (self.quieter or self.silent) and not self.json

    def added(self, cid: CID, name: bytes, tsize: int) -> None:
        if self.prints_only_last and name:
            self._last_cid = cid  # nothing printed for this entry: encode only if it stays the last
            return
        self._last_cid = None
        text = self.encoder.encode(cid)
        self.last = text
        shown = name if name else text.encode()  # kubo names an unnamed stdin by its CID
        if self.silent:
            return
        if self.json:
            event = {"Name": shown.decode("utf-8", "surrogateescape"), "Hash": text, "Size": str(tsize)}
            print_line(go_json(event), self.out)
            return
        if self.quieter:
            return
        if self.clear_progress:
            sys.stderr.write("\033[2K\r")
        print_line(text if self.quiet else f"added {text} {escape_name(shown)}", self.out)

    def wrapper(self, cid: CID, tsize: int) -> None:
        """The ``-w`` directory: kubo prints it with an empty name."""
        text = self.encoder.encode(cid)
        self.last = text
        self._last_cid = None
        if self.silent:
            return
        if self.json:
            print_line(go_json({"Name": "", "Hash": text, "Size": str(tsize)}), self.out)
        elif not self.quieter:
            print_line(text if self.quiet else f"added {text} ", self.out)

    def finish(self) -> None:
        if self._last_cid is not None:
            self.last = self.encoder.encode(self._last_cid)
            self._last_cid = None
        if self.quieter and not self.silent and not self.json:
            print(self.last, file=self.out, flush=True)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\"}


def _needs_escape(text: str) -> bool:
    """kubo's ``needEscape``: a backslash, or a rune ``strconv.IsPrint`` rejects. Go ranges an
    invalid UTF-8 byte as U+FFFD, which is printable, so such a byte alone escapes nothing."""
    if "\\" in text:
        return True
    if text.isprintable():  # every rune printable (the common case, one C call)
        return False
    return any(not ch.isprintable() and not 0xDC80 <= ord(ch) <= 0xDCFF for ch in text)


def print_line(line: str, out: TextIO) -> None:
    """Write one output line; names with undecodable bytes (surrogates) go out as those bytes."""
    try:
        print(line, flush=True, file=out)
    except UnicodeEncodeError:
        buffer = getattr(out, "buffer", None)
        if buffer is None:
            raise
        out.flush()
        buffer.write(line.encode("utf-8", "surrogateescape") + b"\n")
        buffer.flush()


def escape_name(raw: bytes) -> str:
    """kubo's ``cmdenv.EscNonPrint``: Go-quote names holding a backslash, a
    non-printable character or invalid UTF-8; print the rest unchanged."""
    text = raw.decode("utf-8", "surrogateescape")
    if not _needs_escape(text):
        return text  # may hold undecodable bytes as surrogates: write it with print_line
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)
