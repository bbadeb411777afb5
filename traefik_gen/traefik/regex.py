"""Regular expressions that Traefik compiles with Go's `regexp` package (RE2 syntax).

Traefik compiles the value of HostRegexp, PathRegexp, HeaderRegexp, QueryRegexp and
HostSNIRegexp, and the `regex` of a redirectRegex middleware (Dokploy's `redirect.regex`
column), only when it builds the router. A pattern Go rejects does not fail the file: it
disables that router at runtime, visible only in the API. So every such pattern is checked
here first, with google-re2 (the C++ RE2 that Go's engine follows) plus the few spots where
Go is stricter than C++ RE2.

Python's `re` is no substitute: it accepts look-around and backreferences, which RE2 has
not. google-re2 and Go agree on every other construct we tried against Traefik 3.6/3.7.
"""

from __future__ import annotations

import logging

import re2

from traefik_gen.errors import RuleError

__all__ = ["check_re2"]

logger = logging.getLogger(__name__)

# C++ RE2 logs each failed compile on stderr unless told not to.
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False

_GROUP_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")

# Limitation: Go 1.25+ also takes long, case-insensitive class names (\p{Letter}, \pn) that
# C++ RE2 and older Go builds reject; they are rejected here too.


def check_re2(pattern: str, *, field: str, redact: bool = False) -> None:
    """Raise RuleError unless Go's `regexp.Compile` (as in Traefik) accepts `pattern`.

    Args:
        pattern: the regular expression, as Traefik receives it (already unquoted).
        field: what the pattern is, for the message (`"regex"`, `"PathRegexp value"`).
        redact: leave the pattern out of the message (a header or query value may be a
            token).
    """
    reason = _re2_error(pattern) or _go_only_error(pattern)
    if reason is None:
        return
    shown = "" if redact else f" {pattern!r}"
    if redact:
        reason = reason.split(":", 1)[0]
    logger.debug("rejected %s: %s", field, reason)
    raise RuleError(f"{field}{shown} is not a regular expression traefik accepts: {reason}")


def _re2_error(pattern: str) -> str | None:
    try:
        re2.compile(pattern, _OPTIONS)
    except re2.error as err:
        return _error_text(err)
    return None


def _error_text(err: re2.error) -> str:
    detail = err.args[0] if err.args else ""
    if isinstance(detail, bytes):
        return detail.decode("utf-8", "replace")
    return str(detail)


def _go_only_error(pattern: str) -> str | None:
    """The constructs C++ RE2 accepts but Go's regexp/syntax rejects."""
    scanner = _Scanner(pattern)
    return scanner.run()


class _Scanner:
    """Walks a pattern RE2 already accepted, looking at escapes and group openings only."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.pos = 0

    def run(self) -> str | None:
        while self.pos < len(self.pattern):
            error = self._step()
            if error is not None:
                return error
        return None

    def _step(self) -> str | None:
        char = self.pattern[self.pos]
        if char == "\\":
            return self._escape()
        if char == "[":
            self._skip_class()
            return None
        if char == "(":
            return self._group()
        self.pos += 1
        return None

    def _escape(self) -> str | None:
        letter = self.pattern[self.pos + 1 : self.pos + 2]
        if letter == "C":
            return "\\C (any byte) is not supported by go"
        if letter == "Q":
            self._skip_quoted()
            return None
        self.pos += 2
        return None

    def _skip_quoted(self) -> None:
        end = self.pattern.find("\\E", self.pos + 2)
        self.pos = len(self.pattern) if end < 0 else end + 2

    def _skip_class(self) -> None:
        # A `]` right after `[` or `[^` is a literal; `[:alpha:]` may sit inside.
        self.pos += 1
        if self.pattern.startswith("^", self.pos):
            self.pos += 1
        if self.pattern.startswith("]", self.pos):
            self.pos += 1
        while self.pos < len(self.pattern) and self.pattern[self.pos] != "]":
            self._class_item()
        self.pos += 1

    def _class_item(self) -> None:
        if self.pattern.startswith("[:", self.pos):
            end = self.pattern.find(":]", self.pos + 2)
            if end >= 0:
                self.pos = end + 2
                return
        self.pos += 2 if self.pattern[self.pos] == "\\" else 1

    def _group(self) -> str | None:
        for opener in ("(?P<", "(?<"):
            if self.pattern.startswith(opener, self.pos):
                return self._group_name(self.pos + len(opener))
        self.pos += 1
        return None

    def _group_name(self, start: int) -> str | None:
        end = self.pattern.find(">", start)
        name = self.pattern[start:end]
        self.pos = end + 1
        if not set(name) <= _GROUP_NAME_CHARS:
            return f"go takes only ascii letters, digits and '_' in a group name: {name!r}"
        return None
