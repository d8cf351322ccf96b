"""The argv parsing engine: go-ipfs-cmds' rules (kubo 0.22) or Go ``flag``'s (go-car's ``car``),
driven by the ``argparse`` declarations in ``pyipld/_cli/<verb>.py``.

The verbs keep declaring their flags with ``p.add_argument(...)``; :func:`parse` reads those
declared actions and parses argv itself, so the rules are kubo's, not argparse's:

- ``cmds`` (go-ipfs-cmds v0.9.0 ``cli/parse.go``, ``option.go``): a boolean never takes the next
  word, ``--flag=VALUE`` takes ``strconv.ParseBool`` values after lower-casing and an empty value is
  true; short booleans bundle (``-rQ``); ``-sVALUE`` / ``-s VALUE`` / ``--name VALUE`` / ``--name=VALUE``
  for the rest (the next word is taken even when it starts with ``-``); options and arguments
  interleave; no abbreviations; an option given twice is ``multiple values for option "name"``
  (``append`` options are kubo's repeatable Strings options); integers as ``strconv.ParseInt(s, 0, 64)``.
- ``goflag`` (urfave/cli v2 over Go's ``flag``, go-car ``cmd/car``): ``-name`` and ``--name`` are the
  same, no bundling, booleans take ``=VALUE`` (``strconv.ParseBool``, case as given), a repeated flag
  keeps the last value. Unlike urfave/cli v2 (which stops at the first argument), options may
  follow arguments here: every go-car command line still parses the same way.

Errors raise :class:`~pyipld.errors.UsageError` carrying kubo's (or Go flag's) text; the caller
prints ``Error: …`` and exits 1.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError

__all__ = ["go_bool", "go_duration", "go_int", "go_int32", "go_uint32", "parse", "parse_bool", "short_help",
           "stdin_arguments"]

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def go_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool``; raises ``ValueError`` with Go's message."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def parse_bool(text: str) -> bool:
    """A ``--flag=VALUE`` value as go-ipfs-cmds reads it: lower-cased, then Go's ``strconv.ParseBool``."""
    return go_bool(text.lower())


_INT_RE = re.compile(r"[+-]?(0[xX](_?[0-9a-fA-F])+|0[bB](_?[01])+|0[oO](_?[0-7])+|0(_?[0-7])*|[1-9](_?[0-9])*)")


def go_int(text: str, bits: int = 64) -> int:
    """Go's ``strconv.ParseInt(text, 0, bits)``: ``0x``/``0o``/``0b``/leading-``0`` octal, ``_`` between digits."""
    if not _INT_RE.fullmatch(text):
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    sign = -1 if text[0] == "-" else 1
    body = text.lstrip("+-").replace("_", "")
    if len(body) > 1 and body[0] == "0" and body[1] not in "xXbBoO":
        value = int(body, 8)
    else:
        value = int(body, 0)
    value *= sign
    if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
        raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def go_int32(text: str) -> int:
    """go-ipfs-cmds' ``IntOption``: ``strconv.ParseInt(text, 0, 32)``."""
    return go_int(text, 32)


def go_uint32(text: str) -> int:
    """go-ipfs-cmds' ``UintOption``: ``strconv.ParseUint(text, 0, 32)`` (no sign allowed)."""
    if text[:1] in ("+", "-"):
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    try:
        value = go_int(text, 34)
    except ValueError as exc:
        raise ValueError(str(exc).replace("ParseInt", "ParseUint")) from None
    if value >= 1 << 32:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return value


_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DUR_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def go_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` (``300ms``, ``1h30m``, ``-1.5h``) in seconds."""
    body = text.lstrip("+-")
    sign = -1.0 if text.startswith("-") else 1.0
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    while pos < len(body):
        m = _DUR_PART.match(body, pos)
        if m is None or m.group(1) in ("", "."):
            if m is None and body[pos:].replace(".", "").isdigit():
                raise ValueError(f'time: missing unit in duration "{text}"')
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not body or total * 1e9 >= 2**63:  # Go: more than an int64 of nanoseconds is invalid
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * total


# ---------------------------------------------------------------------------------------------
# what a declared action is, in go-ipfs-cmds' terms


def _is_bool(action: argparse.Action) -> bool:
    if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
        return True  # kubo's -h/--help are Bool options: `pyipld add -h` takes no word
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._CountAction,
                           argparse.BooleanOptionalAction)):
        return True
    if isinstance(action, argparse._StoreConstAction) and not isinstance(action, argparse._AppendConstAction):
        return True
    # the tri-state form `--raw-leaves[=BOOL]` (nargs="?", const=True): a boolean with an unset default
    return isinstance(action, argparse._StoreAction) and action.nargs == "?" and action.const is True


def _canonical(action: argparse.Action) -> str:
    """kubo's option name for messages: the first long name, else the short one, without dashes."""
    longs = [s for s in action.option_strings if s.startswith("--")]
    return (longs[0] if longs else action.option_strings[0]).lstrip("-")


def _convert(action: argparse.Action, text: str, style: str, given: str) -> Any:
    kind = action.type
    try:
        if kind is None or kind is str:
            value: Any = text
        elif kind is int:
            value = go_int(text)
        elif kind is float:
            value = float(text)
        elif callable(kind):
            value = kind(text)
        else:  # pragma: no cover - argparse registry names ("int") are not used here
            value = text
    except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
        if style == "goflag":
            raise UsageError(f'invalid value "{text}" for flag -{given}: parse error') from None
        message = str(exc)
        if kind in (int, go_int, go_int32, go_uint32, go_duration) or message.startswith(("strconv.", "time:")):
            raise UsageError(message) from None
        raise UsageError(f'invalid value "{text}" for option "{_canonical(action)}": {message}') from None
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(str(c) for c in action.choices)
        raise UsageError(f'invalid value "{text}" for option "{_canonical(action)}" (choose from {choices})')
    return value


def _bool_value(text: str | None, style: str, given: str) -> bool:
    if text is None:
        return True
    if style == "cmds":
        if text == "":
            return True
        try:
            return parse_bool(text)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    try:
        return go_bool(text)
    except ValueError:
        raise UsageError(f'invalid boolean value "{text}" for -{given}: parse error') from None


# ---------------------------------------------------------------------------------------------


@dataclass
class _State:
    style: str
    parsers: list[argparse.ArgumentParser]
    path: list[str]
    names: dict[str, argparse.Action] = field(default_factory=dict)
    seen: dict[argparse.Action, str] = field(default_factory=dict)
    values: dict[argparse.Action, Any] = field(default_factory=dict)
    positionals: list[str] = field(default_factory=list)
    help: bool = False
    deferred: list[str] = field(default_factory=list)  # kubo's global options given before the verb

    def enter(self, parser: argparse.ArgumentParser) -> None:
        self.parsers.append(parser)
        for action in parser._actions:
            for s in action.option_strings:
                self.names[s.lstrip("-")] = action  # kubo: every name works after - or --

    def set(self, action: argparse.Action, value: Any, given: str) -> None:
        if isinstance(action, (argparse._AppendAction, argparse._CountAction)):
            self.values.setdefault(action, []).append(value)
        elif action in self.seen and self.style == "cmds":
            raise UsageError(f'multiple values for option "{_canonical(action)}"')
        else:
            self.values[action] = value
        self.seen[action] = given


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _option(st: _State, token: str, rest: list[str]) -> None:
    """One option word (``--name[=v]``, ``-abc``, ``-s=v``, ``-sVALUE``); may consume ``rest[0]``."""
    goflag = st.style == "goflag"
    dashes = 2 if token.startswith("--") else 1
    body = token[dashes:]
    if goflag and (body.startswith(("-", "=")) or not body):
        raise UsageError(f"bad flag syntax: {token}")
    name, eq, value = body.partition("=")
    if dashes == 2 or eq or goflag:
        action = st.names.get(name)
        if action is None:
            raise UsageError(f"flag provided but not defined: -{name}" if goflag else f'unknown option "{name}"')
        _take(st, action, name, value if eq else None, rest)
        return
    # go-ipfs-cmds short options: booleans bundle; a non-boolean takes the rest of the word or the next word
    for j, flag in enumerate(body):
        action = st.names.get(flag)
        if action is None:
            raise UsageError(f'unknown option "{body}"')
        if _is_bool(action):
            _take(st, action, flag, None, rest)
            continue
        if j < len(body) - 1:
            _take(st, action, flag, body[j + 1:], rest)
        elif rest:
            _take(st, action, flag, rest.pop(0), rest)
        else:
            raise UsageError(f'missing argument for option "{body}"')
        return


# kubo 0.22's global options (core/commands/root.go: cmdenv.OptionCidBase, OptionUpgradeCidV0InOutput,
# cmds.OptionEncodingType, OptionTimeout): accepted before the verb, then parsed as the verb declares them
# (a verb that has no use for one reports it as unknown). name -> takes a value
_GLOBAL_OPTIONS = {"timeout": True, "enc": True, "encoding": True, "cid-base": True,
                   "upgrade-cidv0-in-output": False}


def _global_option(st: _State, token: str, rest: list[str]) -> bool:
    """Before the verb: keep a global option's words to parse once the verb is known."""
    name, eq, _ = token.lstrip("-").partition("=")
    if name in st.names or name not in _GLOBAL_OPTIONS:
        return False
    st.deferred.append(token)
    if _GLOBAL_OPTIONS[name] and not eq:
        if not rest:
            raise UsageError(f'missing argument for option "{name}"')
        st.deferred.append(rest.pop(0))
    return True


def _take(st: _State, action: argparse.Action, given: str, value: str | None, rest: list[str]) -> None:
    if isinstance(action, argparse._HelpAction):
        if _bool_value(value, st.style, given):
            st.help = True  # shown for the command the whole line names (kubo: `ipfs -h add` is add's help)
        return
    if isinstance(action, argparse._VersionAction):
        raise _Version(str(action.version))
    if _is_bool(action):
        flag = _bool_value(value, st.style, given)
        if isinstance(action, argparse.BooleanOptionalAction):
            flag = flag != given.startswith("no-")
            st.set(action, flag, given)
        elif isinstance(action, argparse._StoreFalseAction):
            st.set(action, not flag, given)
        elif isinstance(action, argparse._CountAction):
            st.set(action, 1 if flag else 0, given)
        elif isinstance(action, argparse._StoreConstAction):
            st.set(action, action.const if flag else action.default, given)
        else:  # store_true and the tri-state --x[=BOOL]
            st.set(action, flag, given)
        return
    if value is None:
        if not rest:
            raise UsageError(f"flag needs an argument: -{given}" if st.style == "goflag"
                             else f'missing argument for option "{given}"')
        value = rest.pop(0)
    st.set(action, _convert(action, value, st.style, given), given)


class _Version(Exception):
    pass


def _arity(action: argparse.Action) -> tuple[int, int | None]:
    nargs = action.nargs
    if nargs is None:
        return 1, 1
    if nargs == "?":
        return 0, 1
    if nargs == "*":
        return 0, None
    if nargs in ("+",):
        return 1, None
    if nargs in (argparse.REMAINDER,):
        return 0, None
    assert isinstance(nargs, int)
    return nargs, nargs


def _arg_name(action: argparse.Action) -> str:
    meta = action.metavar
    return str(meta if isinstance(meta, str) else action.dest)


def _assign(parser: argparse.ArgumentParser, words: list[str], ns: argparse.Namespace, style: str) -> None:
    """Hand the positional words to the declared positionals (kubo parseArgs: required ones first)."""
    actions = [a for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]
    bounds = [_arity(a) for a in actions]
    need = sum(lo for lo, _ in bounds)
    if len(words) < need:
        got = len(words)
        for action, (lo, _) in zip(actions, bounds, strict=True):
            if got < lo:
                raise UsageError(f'argument "{_arg_name(action)}" is required')
            got -= lo
    spare = len(words) - need
    pos = 0
    for action, (lo, hi) in zip(actions, bounds, strict=True):
        extra = spare if hi is None else min(spare, hi - lo)
        spare -= extra
        taken = words[pos:pos + lo + extra]
        pos += lo + extra
        values = [_convert(action, w, style, _arg_name(action)) for w in taken]
        if action.nargs in (None,) or action.nargs == "?":
            if values:
                setattr(ns, action.dest, values[0])
        elif values or action.nargs not in ("*", "?"):
            setattr(ns, action.dest, values)
        elif getattr(ns, action.dest, None) is None:
            setattr(ns, action.dest, [])
    if spare:
        allowed = sum(hi or 0 for _, hi in bounds)
        raise UsageError(f"expected {allowed} argument(s), got {len(words)}")


def _defaults(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> None:
    """argparse's defaults: within a parser the first action of a dest wins (``--progress`` /
    ``--no-progress``), then ``set_defaults``; a sub-command's override its parents'."""
    local: dict[str, Any] = {}
    for action in parser._actions:
        if action.dest is not argparse.SUPPRESS and action.default is not argparse.SUPPRESS:
            default = action.default
            if isinstance(default, list):
                default = list(default)
            local.setdefault(action.dest, default)
    local.update(parser._defaults)
    for key, value in local.items():
        setattr(ns, key, value)


@dataclass
class Parsed:
    """What :func:`parse` found: the namespace, or a request for help/version output."""

    namespace: argparse.Namespace
    parser: argparse.ArgumentParser
    help: bool = False
    version: str | None = None


def parse(root: argparse.ArgumentParser, argv: Sequence[str],
          style_for: Callable[[list[str]], str] = lambda path: "cmds") -> Parsed:
    """Parse ``argv`` against ``root`` and its sub-commands.

    ``style_for(command_path)`` picks ``"cmds"`` or ``"goflag"`` once the command is known (the
    style of the words before it is ``cmds``). Raises :class:`UsageError` (its ``command`` set to
    the command path reached) on bad input.
    """
    st = _State(style="cmds", parsers=[], path=[])
    st.enter(root)
    parser = root
    rest = list(argv)
    try:
        while rest:
            token = rest.pop(0)
            if token == "--":
                st.positionals.extend(rest)
                break
            if token.startswith("-") and token != "-":
                if not st.path and _global_option(st, token, rest):
                    continue
                _option(st, token, rest)
                continue
            sub = _subparsers(parser)
            if sub is not None and not st.positionals:
                if token not in sub.choices:
                    raise UsageError(f'unknown command "{token}"')
                parser = sub.choices[token]
                st.path.append(token)
                st.enter(parser)
                st.style = style_for(st.path)
                if len(st.path) == 1 and st.deferred:
                    rest[:0] = st.deferred  # now that the verb is known: its own declarations parse them
                    st.deferred = []
                continue
            st.positionals.append(token)
        ns = argparse.Namespace()
        parsers = st.parsers
        for p in parsers:
            _defaults(p, ns)
        for i in range(len(parsers) - 1):
            sub = _subparsers(parsers[i])
            if sub is not None and sub.dest is not argparse.SUPPRESS:
                setattr(ns, sub.dest, st.path[i])
        if st.help or _subparsers(parser) is not None:
            return Parsed(ns, parser, help=True)  # a command group alone: its help, like kubo
        for action, value in st.values.items():
            if isinstance(action, argparse._CountAction):
                value = sum(value) + (action.default or 0)
            elif isinstance(action, argparse._AppendAction):
                value = (list(action.default) if action.default else []) + value
            setattr(ns, action.dest, value)
        _check_required(parser, st)
        _assign(parser, st.positionals, ns, st.style)
    except _Version as v:
        return Parsed(argparse.Namespace(), parser, version=str(v))
    except UsageError as exc:
        if st.help:  # help was asked for before the bad word: show it (argparse's order)
            return Parsed(argparse.Namespace(), parser, help=True)
        exc.command = tuple(st.path)
        raise
    return Parsed(ns, parser)


def _check_required(parser: argparse.ArgumentParser, st: _State) -> None:
    for group in parser._mutually_exclusive_groups:
        given = [a for a in group._group_actions if a in st.values]
        if len(given) > 1:
            names = " and ".join(f'"{_canonical(a)}"' for a in given)
            raise UsageError(f"options {names} cannot be used together")
        if group.required and not given:
            names = ", ".join(f"--{_canonical(a)}" for a in group._group_actions)
            raise UsageError(f"one of the options {names} is required")
    for action in parser._actions:
        if action.option_strings and action.required and action not in st.values:
            raise UsageError(f'option "{_canonical(action)}" is required')


def short_help(parser: argparse.ArgumentParser) -> str:
    """kubo's short help after a parse error: USAGE, the synopsis, and where to find more."""
    usage = parser.format_usage().strip()
    usage = usage.removeprefix("usage: ")
    lines = ["USAGE", "  " + usage]
    if parser.description:
        lines += ["", "  " + parser.description.splitlines()[0]]
    lines += ["", "  For more information about this command, use:", f"  '{parser.prog} --help'", ""]
    return "\n".join(lines)


def stdin_arguments(name: str) -> list[str]:
    """go-ipfs-cmds ``ParseBodyArgs`` for a string argument that accepts stdin (``echo CID | ipfs cat``):
    every line of stdin (``\n`` or ``\r\n`` removed) is one argument. A terminal stdin is not read:
    the argument is then missing, with kubo's message."""
    stream = sys.stdin
    try:
        terminal = stream.isatty()
    except (AttributeError, OSError, ValueError):
        terminal = False
    if stream is None or terminal:
        raise UsageError(f'argument "{name}" is required')
    lines = stream.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]
