"""``ipfs add --ignore`` / ``--ignore-rules-path``: gitignore-style rules exactly as kubo 0.22 applies them.

kubo (boxo ``files.Filter``) compiles the rules with ``github.com/crackcomm/go-gitignore`` and
matches each rule against the *base name* of every entry found while walking a directory
(top-level arguments are never filtered). This module turns each rule into the same regular
expression go-gitignore builds (``getPatternFromLine``) and applies ``MatchesPath``'s rule: the
last matching rule decides, a ``!`` rule only un-ignores what an earlier rule matched.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["IgnoreRules", "compile_rules", "rule_regex"]

_MAGIC = "#$~"


def rule_regex(line: str) -> tuple[str, bool] | None:
    """go-gitignore's ``getPatternFromLine``: (regular expression, negated), or None for a no-op line."""
    line = line.rstrip("\r")
    if line.startswith("#"):
        return None
    line = line.strip(" ")
    if not line:
        return None
    negate = line[0] == "!"
    if negate:
        line = line[1:]
    if re.match(r"^(#|!)", line):
        line = line[1:]
    if re.search(r"([^/+])/.*\*\.", line) and not line.startswith("/"):
        line = "/" + line
    line = line.replace(".", r"\.")
    if line.startswith("/**/"):
        line = line[1:]
    line = line.replace("/**/", "(/|/.+/)")
    line = line.replace("**/", "(|." + _MAGIC + "/)")
    line = line.replace("/**", "(|/." + _MAGIC + ")")
    line = line.replace("\\*", "\\" + _MAGIC)
    line = line.replace("*", "([^/]*)")
    line = line.replace("?", r"\?")
    line = line.replace(_MAGIC, "*")
    expr = line + ("(|.*)$" if line.endswith("/") else "(|/.*)$")
    expr = "^(|/)" + expr[1:] if expr.startswith("/") else "^(|.*/)" + expr
    return expr, negate


@dataclass(frozen=True)
class IgnoreRules:
    """Compiled rules; call with an entry's name (bytes or text)."""

    patterns: tuple[tuple[re.Pattern[str] | None, bool], ...]

    def __call__(self, name: bytes | str) -> bool:
        text = os.fsdecode(name) if isinstance(name, bytes) else name
        matched = False
        for pattern, negate in self.patterns:
            if pattern is None or not pattern.search(text):
                continue  # a rule Go's regexp rejects never matches here
            if not negate:
                matched = True
            elif matched:
                matched = False
        return matched

    def __bool__(self) -> bool:
        return bool(self.patterns)


def _compile(expr: str) -> re.Pattern[str] | None:
    # Go's $ is the end of the text (Python's also matches before a final newline)
    try:
        return re.compile(expr[:-1] + r"\Z" if expr.endswith("$") else expr)
    except re.error:
        return None


def compile_rules(rules: Iterable[str] = (), rules_file: str | None = None) -> IgnoreRules:
    """kubo's ``files.NewFilter``: the lines of ``rules_file`` (if given) then ``rules``.

    Raises ``OSError`` when ``rules_file`` cannot be read (kubo fails the same way).
    """
    lines: list[str] = []
    if rules_file:
        with open(rules_file, "rb") as f:
            lines = f.read().decode("utf-8", "surrogateescape").split("\n")
    lines.extend(rules)
    compiled = []
    for line in lines:
        rule = rule_regex(line)
        if rule is not None:
            compiled.append((_compile(rule[0]), rule[1]))
    return IgnoreRules(tuple(compiled))
