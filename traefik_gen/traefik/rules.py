"""Traefik v3 router rules: quoting values into them, building them, parsing them.

A rule is a Go expression (Traefik hands it to `go/parser` through vulcand/predicate):
matcher calls whose arguments are Go string literals, joined by `&&`, `||`, `!` and
parentheses with Go precedence. Values are never interpolated into backticks: a backtick in
a host once injected `|| Host(...)` into a live rule. `quote` emits every value as a Go
interpreted string instead, which nothing inside the value can close.

`parse_rule` reads the rules other people wrote (Docker labels, routes files) and checks
what Traefik would only report at runtime by disabling the router: matcher names and
argument counts, ASCII hosts, paths starting with `/`, RE2 regexes, ClientIP addresses.
`RuleNode.canonical` re-emits a parsed rule with `quote`.

Two layers are not this module's business: the file provider runs every file through Go
`text/template` first (the renderer escapes `{{`), and YAML/TOML quoting (the serializer).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from traefik_gen.errors import RuleError
from traefik_gen.traefik.regex import check_re2

if TYPE_CHECKING:
    from traefik_gen.traefik.hosts import Host

__all__ = [
    "And",
    "Matcher",
    "Not",
    "Or",
    "RuleNode",
    "default_priority",
    "parse_rule",
    "quote",
    "route_rule",
    "validate_path",
]

logger = logging.getLogger(__name__)

RuleProtocol = Literal["http", "tcp"]


# --- Quoting and building -------------------------------------------------------------


def _ascii_escape(code: int) -> str:
    special = {0x09: "\\t", 0x0A: "\\n", 0x22: '\\"', 0x5C: "\\\\"}
    if code in special:
        return special[code]
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    return chr(code)


_ASCII_ESCAPES = tuple(_ascii_escape(code) for code in range(0x80))
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Printable ASCII but for the two characters a Go string escapes: quoted as it is.
_UNESCAPED = re.compile(r"[ !#-\[\]-~]*")


def quote(value: str) -> str:
    """`value` as a Go interpreted string literal that `strconv.Unquote` maps back to it.

    The output is printable ASCII: `\\` and `"` are escaped, newline and tab become `\\n`
    and `\\t`, other control characters `\\xNN`, and anything beyond ASCII `\\uXXXX` or
    `\\UXXXXXXXX` (never a surrogate pair, which Go rejects).

    Raises:
        RuleError: `value` holds a lone surrogate, which no Go string can hold.
    """
    if _UNESCAPED.fullmatch(value):
        return '"' + value + '"'
    return '"' + "".join(_escape(char) for char in value) + '"'


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x80:
        return _ASCII_ESCAPES[code]
    if 0xD800 <= code <= 0xDFFF:
        # The value itself may be a header token, so only the code point is named.
        raise RuleError(f"a rule value holds a lone surrogate U+{code:04X}, not a character")
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def validate_path(path: str, *, field: str = "path") -> str:
    """Return `path` if it can be a Path/PathPrefix value that some request can match.

    It must start with `/` and hold no control character. Traefik matches a request path
    with its reserved characters still percent-encoded, so `?` and `#` (which end a path)
    and a `%` that does not start a `%XX` escape would make a route that never matches.

    Raises:
        RuleError: it cannot; the message names `field` and the path.
    """
    if not path.startswith("/"):
        raise RuleError(f"{field} {path!r} does not start with '/'")
    for char in path:
        code = ord(char)
        if code < 0x20 or 0x7F <= code < 0xA0:
            raise RuleError(f"{field} {path!r} contains a control character")
        if 0xD800 <= code <= 0xDFFF:
            raise RuleError(f"{field} {path!r} contains a lone surrogate")
        if char in "?#":
            raise RuleError(f"{field} {path!r} contains {char!r}, which no request path holds")
    if _LONE_PERCENT.search(path):
        raise RuleError(f"{field} {path!r} has a '%' that does not start a %XX escape")
    # Limitation: a %XX of an unreserved character (%41) never matches either, since
    # Traefik decodes those in the request; it is not checked.
    return path


def route_rule(host: Host, path: str) -> str:
    """The rule of one Dokploy-style domain: its host, and a PathPrefix unless path is `/`.

    Like Dokploy's own rule, the prefix is a plain string prefix (`/api` also matches
    `/apix`), so routes keep the behaviour users saw before.

    Raises:
        RuleError: the path is not valid (see `validate_path`).
    """
    rule = host.matcher()
    if path == "/":
        return rule
    return f"{rule} && PathPrefix({quote(validate_path(path))})"


def default_priority(rule: str) -> int:
    """The priority Traefik gives a router without one: the rule's length in bytes.

    `canonical()` changes that length, so whoever re-emits a rule and wants the old order
    sets this number explicitly.
    """
    return len(rule.encode("utf-8"))


# --- The parsed tree --------------------------------------------------------------------


class RuleNode:
    """A parsed rule: a Matcher, or a Not, And or Or of other nodes."""

    def canonical(self) -> str:
        """The rule re-emitted: canonical matcher names, values through `quote`."""
        raise NotImplementedError

    def matchers(self) -> Iterator[Matcher]:
        """Every matcher call in the rule, left to right, negated or not."""
        raise NotImplementedError

    def claims(self, *, negated: bool = False) -> Iterator[Matcher]:
        """The matchers not under an odd number of `!`: what the rule asks to receive."""
        raise NotImplementedError

    def hosts(self) -> list[str]:
        """Host and HostSNI values the rule claims, lower-case and without a final dot."""
        return [_host_key(m.args[0]) for m in self.claims() if m.name in ("Host", "HostSNI")]

    def paths(self) -> list[str]:
        """Path and PathPrefix values the rule claims."""
        return [m.args[0] for m in self.claims() if m.name in ("Path", "PathPrefix")]


@dataclass(frozen=True)
class Matcher(RuleNode):
    """One matcher call: `name` in its canonical spelling, `args` unquoted."""

    name: str
    args: tuple[str, ...]
    column: int = field(default=0, compare=False)

    def canonical(self) -> str:
        return f"{self.name}({', '.join(quote(arg) for arg in self.args)})"

    def matchers(self) -> Iterator[Matcher]:
        yield self

    def claims(self, *, negated: bool = False) -> Iterator[Matcher]:
        if not negated:
            yield self


@dataclass(frozen=True)
class Not(RuleNode):
    """`!operand`."""

    operand: RuleNode

    def canonical(self) -> str:
        return "!" + _wrapped(self.operand, (And, Or))

    def matchers(self) -> Iterator[Matcher]:
        return self.operand.matchers()

    def claims(self, *, negated: bool = False) -> Iterator[Matcher]:
        return self.operand.claims(negated=not negated)


@dataclass(frozen=True)
class _Junction(RuleNode):
    """Operands joined by one operator, flattened: no operand is of the same kind."""

    operands: tuple[RuleNode, ...]

    def matchers(self) -> Iterator[Matcher]:
        for operand in self.operands:
            yield from operand.matchers()

    def claims(self, *, negated: bool = False) -> Iterator[Matcher]:
        for operand in self.operands:
            yield from operand.claims(negated=negated)


@dataclass(frozen=True)
class And(_Junction):
    """`a && b && ...`."""

    def canonical(self) -> str:
        return " && ".join(_wrapped(operand, (Or,)) for operand in self.operands)


@dataclass(frozen=True)
class Or(_Junction):
    """`a || b || ...`."""

    def canonical(self) -> str:
        # And binds tighter, but explicit parentheses read better and cost little.
        return " || ".join(_wrapped(operand, (And,)) for operand in self.operands)


def _wrapped(node: RuleNode, kinds: tuple[type[RuleNode], ...]) -> str:
    text = node.canonical()
    return f"({text})" if isinstance(node, kinds) else text


def _host_key(value: str) -> str:
    # Traefik compares hosts case-insensitively and ignores one trailing dot.
    lowered = value.lower()
    return lowered[:-1] if lowered.endswith(".") and lowered != "." else lowered


def _joined(kind: type[And] | type[Or], operands: list[RuleNode]) -> RuleNode:
    if len(operands) == 1:
        return operands[0]
    flat: list[RuleNode] = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, kind) else (operand,))
    return kind(tuple(flat))


# --- Matchers and their argument checks -------------------------------------------------


class _ArgumentError(Exception):
    """An argument Traefik would refuse: which one, and why."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


_Check = Callable[[tuple[str, ...]], None]


@dataclass(frozen=True)
class _Spec:
    name: str
    arities: tuple[int, ...]
    check: _Check | None = None


def _ascii(name: str, index: int = 0) -> _Check:
    def check(args: tuple[str, ...]) -> None:
        if not args[index].isascii():
            raise _ArgumentError(index, f"{name} value {args[index]!r} is not ascii (use punycode)")

    return check


def _starts_with_slash(name: str) -> _Check:
    def check(args: tuple[str, ...]) -> None:
        if not args[0].startswith("/"):
            raise _ArgumentError(0, f"{name} value {args[0]!r} does not start with '/'")

    return check


def _regex(name: str, index: int, *, redact: bool = False) -> _Check:
    def check(args: tuple[str, ...]) -> None:
        if index >= len(args):
            return
        try:
            check_re2(args[index], field=f"{name} value", redact=redact)
        except RuleError as err:
            raise _ArgumentError(index, str(err)) from err

    return check


def _all(*checks: _Check) -> _Check:
    def check(args: tuple[str, ...]) -> None:
        for each in checks:
            each(args)

    return check


def _client_ip(args: tuple[str, ...]) -> None:
    # Go's net.ParseIP/ParseCIDR: no zone, no netmask form, decimal prefix length.
    value = args[0]
    address, slash, prefix = value.partition("/")
    try:
        if not value.isascii() or "%" in address or (slash and not prefix.isdigit()):
            raise ValueError(value)
        parsed = ipaddress.ip_address(address)
        if slash and int(prefix) > parsed.max_prefixlen:
            raise ValueError(value)
    except ValueError as err:
        raise _ArgumentError(0, f"ClientIP value {value!r} is not an ip address or cidr") from err


_SNI_CHARS = re.compile(r"[A-Za-z0-9_.:-]+")


def _host_sni(args: tuple[str, ...]) -> None:
    value = args[0]
    if value == "*":
        return
    if "*" in value:
        # Traefik 3.6 refuses `*.example.com` here; only 3.7 reads it as a wildcard.
        raise _ArgumentError(0, f"HostSNI value {value!r}: use HostSNIRegexp for a wildcard")
    if not value.isascii():
        raise _ArgumentError(0, f"HostSNI value {value!r} is not ascii (use punycode)")
    if not _SNI_CHARS.fullmatch(value):
        raise _ArgumentError(0, f"HostSNI value {value!r} is not a host name")


def _alpn(args: tuple[str, ...]) -> None:
    # The ACME TLS-ALPN challenge protocol is reserved for Traefik itself.
    if args[0] == "acme-tls/1":
        raise _ArgumentError(0, "ALPN value 'acme-tls/1' is reserved for acme challenges")


_HTTP_SPECS = (
    _Spec("ClientIP", (1,), _client_ip),
    _Spec("Method", (1,)),
    _Spec("Host", (1,), _ascii("Host")),
    _Spec("HostRegexp", (1,), _all(_ascii("HostRegexp"), _regex("HostRegexp", 0))),
    _Spec("Path", (1,), _starts_with_slash("Path")),
    _Spec("PathRegexp", (1,), _regex("PathRegexp", 0)),
    _Spec("PathPrefix", (1,), _starts_with_slash("PathPrefix")),
    _Spec("Header", (2,)),
    _Spec("HeaderRegexp", (2,), _regex("HeaderRegexp", 1, redact=True)),
    _Spec("Query", (1, 2)),
    _Spec("QueryRegexp", (1, 2), _regex("QueryRegexp", 1, redact=True)),
)

_TCP_SPECS = (
    _Spec("ALPN", (1,), _alpn),
    _Spec("ClientIP", (1,), _client_ip),
    _Spec("HostSNI", (1,), _host_sni),
    _Spec("HostSNIRegexp", (1,), _all(_ascii("HostSNIRegexp"), _regex("HostSNIRegexp", 0))),
)

# Traefik's names in v2 that v3 renamed or dropped, for a helpful message.
_V2_NAMES = {"headers": "Header", "headersregexp": "HeaderRegexp", "hostheader": "Host"}


def _spellings(name: str) -> tuple[str, ...]:
    # Traefik registers each matcher as written, lower, UPPER and Title case, no others.
    return (name, name.lower(), name.upper(), name.lower().capitalize())


def _by_spelling(specs: tuple[_Spec, ...]) -> dict[str, _Spec]:
    return {spelling: spec for spec in specs for spelling in _spellings(spec.name)}


_SPECS: dict[str, dict[str, _Spec]] = {
    "http": _by_spelling(_HTTP_SPECS),
    "tcp": _by_spelling(_TCP_SPECS),
}


# --- Tokens -----------------------------------------------------------------------------

_IDENT = "identifier"
_STRING = "string"
_LPAREN = "'('"
_RPAREN = "')'"
_COMMA = "','"
_AND = "'&&'"
_OR = "'||'"
_NOT = "'!'"
_NEWLINE = "newline"
_EOF = "end of rule"

_PUNCTUATION = {"(": _LPAREN, ")": _RPAREN, ",": _COMMA, "!": _NOT}
_OPERATORS = {"&&": _AND, "||": _OR}
# Go inserts a semicolon at a newline after these, which ends the expression.
_ENDS_LINE = frozenset({_IDENT, _STRING, _RPAREN})
_IDENTIFIER = re.compile(r"[^\W\d]\w*")
_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


class _Where:
    """Turns an offset into `column N`, or `line L, column N` in a multi-line rule."""

    def __init__(self, text: str, rule_field: str) -> None:
        self.text = text
        self.field = rule_field

    def error(self, pos: int, problem: str) -> RuleError:
        where = f"column {self.column(pos)}"
        if "\n" in self.text:
            line = self.text.count("\n", 0, pos) + 1
            where = f"line {line}, {where}"
        return RuleError(f"{self.field} at {where}: {problem}")

    def column(self, pos: int) -> int:
        return pos - (self.text.rfind("\n", 0, pos) + 1) + 1


class _Lexer:
    """Go's scanner, for the few tokens a rule may hold."""

    def __init__(self, text: str, where: _Where) -> None:
        self.text = text
        self.where = where
        # Go skips a byte-order mark at the very start of its input.
        self.pos = 1 if text.startswith("\ufeff") else 0

    def tokens(self) -> list[_Token]:
        tokens: list[_Token] = []
        while True:
            newline = self._skip_blanks()
            if newline is not None and tokens and tokens[-1].kind in _ENDS_LINE:
                tokens.append(_Token(_NEWLINE, "\n", newline))
            if self.pos >= len(self.text):
                tokens.append(_Token(_EOF, "", self.pos))
                return tokens
            tokens.append(self._token())

    def _skip_blanks(self) -> int | None:
        """Skip whitespace and comments; return where the first newline was, if any."""
        newline: int | None = None
        while self.pos < len(self.text):
            crossed = self._skip_one_blank()
            if crossed is None:
                break
            if crossed >= 0 and newline is None:
                newline = crossed
        return newline

    def _skip_one_blank(self) -> int | None:
        """Skip one blank; return its newline's offset (-1 without one), None if no blank."""
        start, char = self.pos, self.text[self.pos]
        if char in " \t\r\n":
            self.pos += 1
            return start if char == "\n" else -1
        if self.text.startswith("//", start):
            # A line comment ends at its newline, which the next step reads.
            end = self.text.find("\n", start)
            self.pos = len(self.text) if end < 0 else end
            return -1
        if self.text.startswith("/*", start):
            return self._skip_block_comment(start)
        return None

    def _skip_block_comment(self, start: int) -> int:
        end = self.text.find("*/", start + 2)
        if end < 0:
            raise self.where.error(start, "comment not terminated")
        self.pos = end + 2
        # Go counts a block comment holding a newline as a newline.
        return self.text.find("\n", start, end)

    def _token(self) -> _Token:
        start, char = self.pos, self.text[self.pos]
        two = self.text[start : start + 2]
        if two in _OPERATORS:
            self.pos += 2
            return _Token(_OPERATORS[two], two, start)
        if char in _PUNCTUATION:
            self.pos += 1
            return _Token(_PUNCTUATION[char], char, start)
        if char == '"':
            return _Token(_STRING, self._interpreted(), start)
        if char == "`":
            return _Token(_STRING, self._raw(), start)
        match = _IDENTIFIER.match(self.text, start)
        if match:
            self.pos = match.end()
            return _Token(_IDENT, match.group(), start)
        raise self.where.error(start, _unexpected(char, self.text[start : start + 3]))

    def _raw(self) -> str:
        start = self.pos
        end = self.text.find("`", start + 1)
        if end < 0:
            raise self.where.error(start, "raw string literal not terminated")
        self.pos = end + 1
        # Go drops carriage returns from raw strings.
        return self.text[start + 1 : end].replace("\r", "")

    def _interpreted(self) -> str:
        start = self.pos
        self.pos += 1
        value = bytearray()
        while True:
            if self.pos >= len(self.text) or self.text[self.pos] == "\n":
                raise self.where.error(start, "string literal not terminated")
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return _utf8(bytes(value), start, self.where)
            if char == "\\":
                value += self._escape()
            else:
                value += char.encode("utf-8", "surrogatepass")
                self.pos += 1

    def _escape(self) -> bytes:
        start = self.pos
        letter = self.text[start + 1 : start + 2]
        if letter in _SIMPLE_ESCAPES:
            self.pos += 2
            return bytes((_SIMPLE_ESCAPES[letter],))
        if letter in _HEX_ESCAPES:
            return self._numeric_escape(start, 2, _HEX_ESCAPES[letter], 16)
        if letter and letter in "01234567":
            return self._numeric_escape(start, 1, 3, 8)
        raise self.where.error(start, "unknown escape sequence")

    def _numeric_escape(self, start: int, skip: int, digits: int, base: int) -> bytes:
        body = self.text[start + skip : start + skip + digits]
        allowed = "01234567" if base == 8 else "0123456789abcdefABCDEF"
        if len(body) < digits or any(char not in allowed for char in body):
            raise self.where.error(start, "illegal character in escape sequence")
        self.pos = start + skip + digits
        value = int(body, base)
        letter = self.text[start + 1]
        if letter in "uU":
            if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                raise self.where.error(start, "escape sequence is invalid unicode code point")
            return chr(value).encode("utf-8")
        if value > 0xFF:
            raise self.where.error(start, "octal escape value above 255")
        return bytes((value,))


def _utf8(value: bytes, start: int, where: _Where) -> str:
    # Limitation: \x and octal escapes that spell invalid UTF-8 are refused; Go would keep
    # the raw bytes, which no Python str (or YAML document) can carry faithfully.
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as err:
        raise where.error(start, "string is not valid utf-8 after its escapes") from err


def _unexpected(char: str, ahead: str) -> str:
    if char == "'":
        return "single quotes are not string quotes in go; use backticks or double quotes"
    if ahead == "...":
        return "'...' is not allowed in a rule"
    if char in "&|":
        return f"unexpected {char!r}; the operator is {char * 2!r}"
    if char.isdigit():
        return "a number is not a matcher argument; quote it"
    return f"unexpected character {char!r}"


# --- Parser -----------------------------------------------------------------------------


class _Parser:
    """Recursive descent over Go precedence: `||` < `&&` < unary `!`."""

    def __init__(self, tokens: list[_Token], where: _Where, specs: dict[str, _Spec]) -> None:
        self.tokens = tokens
        self.index = 0
        self.where = where
        self.specs = specs

    def parse(self) -> RuleNode:
        if self._peek().kind == _EOF:
            raise RuleError(f"{self.where.field} is empty")
        node = self._or()
        if self._peek().kind == _NEWLINE:
            self._next()
        token = self._peek()
        if token.kind != _EOF:
            raise self.where.error(token.pos, f"expected end of rule, found {_shown(token)}")
        return node

    def _peek(self) -> _Token:
        return self.tokens[self.index]

    def _next(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _or(self) -> RuleNode:
        operands = [self._and()]
        while self._peek().kind == _OR:
            self._next()
            operands.append(self._and())
        return _joined(Or, operands)

    def _and(self) -> RuleNode:
        operands = [self._unary()]
        while self._peek().kind == _AND:
            self._next()
            operands.append(self._unary())
        return _joined(And, operands)

    def _unary(self) -> RuleNode:
        if self._peek().kind == _NOT:
            self._next()
            return Not(self._unary())
        return self._primary()

    def _primary(self) -> RuleNode:
        token = self._next()
        if token.kind == _LPAREN:
            node = self._or()
            self._expect(_RPAREN)
            return node
        if token.kind == _IDENT:
            return self._call(token)
        raise self.where.error(token.pos, f"expected a matcher, '!' or '(', found {_shown(token)}")

    def _expect(self, kind: str) -> _Token:
        token = self._next()
        if token.kind != kind:
            raise self.where.error(token.pos, f"expected {kind}, found {_shown(token)}")
        return token

    def _call(self, name: _Token) -> Matcher:
        spec = self._spec(name)
        token = self._next()
        if token.kind != _LPAREN:
            problem = f"expected '(' after {name.text}, found {_shown(token)}"
            raise self.where.error(token.pos, problem)
        args = self._arguments()
        return self._matcher(spec, name, args)

    def _arguments(self) -> list[_Token]:
        args: list[_Token] = []
        while self._peek().kind != _RPAREN:
            token = self._next()
            if token.kind != _STRING:
                problem = f"matcher arguments are string literals, found {_shown(token)}"
                raise self.where.error(token.pos, problem)
            args.append(token)
            self._separator()
        self._next()
        return args

    def _separator(self) -> None:
        token = self._peek()
        if token.kind == _COMMA:
            self._next()
        elif token.kind == _NEWLINE:
            raise self.where.error(token.pos, "missing ',' before newline in argument list")
        elif token.kind != _RPAREN:
            problem = f"missing ',' in argument list, found {_shown(token)}"
            raise self.where.error(token.pos, problem)

    def _spec(self, name: _Token) -> _Spec:
        spec = self.specs.get(name.text)
        if spec is None:
            raise self.where.error(name.pos, _unknown_matcher(name.text, self.specs))
        return spec

    def _matcher(self, spec: _Spec, name: _Token, args: list[_Token]) -> Matcher:
        if len(args) not in spec.arities:
            raise self.where.error(name.pos, _arity_problem(spec, len(args)))
        values = tuple(arg.text for arg in args)
        for position, value in enumerate(values, start=1):
            if not value:
                problem = f"argument {position} of {spec.name} is empty"
                raise self.where.error(args[position - 1].pos, problem)
        if spec.check is not None:
            try:
                spec.check(values)
            except _ArgumentError as err:
                raise self.where.error(args[err.index].pos, err.reason) from err.__cause__
        return Matcher(spec.name, values, column=self.where.column(name.pos))


def _shown(token: _Token) -> str:
    if token.kind == _IDENT:
        return f"{token.text!r}"
    return token.kind


def _unknown_matcher(name: str, specs: dict[str, _Spec]) -> str:
    known = {spec.name.lower(): spec.name for spec in specs.values()}
    lowered = name.lower()
    if lowered in known:
        spellings = ", ".join(_spellings(known[lowered]))
        return f"matcher {name!r} must be spelled one of {spellings}"
    if lowered in _V2_NAMES:
        return f"{name!r} is a traefik v2 matcher; v3 has {_V2_NAMES[lowered]}"
    for protocol, other in _SPECS.items():
        if other is not specs and name in other:
            return f"{name!r} is a matcher of {protocol} rules, not of this one"
    return f"unknown matcher {name!r}"


def _arity_problem(spec: _Spec, count: int) -> str:
    wanted = " or ".join(str(arity) for arity in spec.arities)
    problem = f"{spec.name} takes {wanted} argument(s), got {count}"
    if count > 1 and spec.arities == (1,):
        problem += f"; traefik v3 takes one value per matcher: join {spec.name}() calls with ||"
    return problem


def parse_rule(text: str, *, protocol: RuleProtocol = "http", field: str = "rule") -> RuleNode:
    """Parse and check a Traefik v3 rule (HTTP, or TCP with `protocol="tcp"`).

    Accepts what Traefik accepts, with these deliberate refusals: `...` after arguments,
    `\\x`/octal escapes that do not form UTF-8, HostSNI wildcards other than `*` (3.7-only),
    non-ASCII HostSNI values (use punycode), and regex class names only Go 1.25+ knows.

    Raises:
        RuleError: naming `field`, the column (and line), and what is wrong.
    """
    where = _Where(text, field)
    _check_source(text, where)
    tokens = _Lexer(text, where).tokens()
    node = _Parser(tokens, where, _SPECS[protocol]).parse()
    # The rule itself may hold a header token, so only its size is logged.
    logger.debug("parsed %s: %d matcher(s)", field, sum(1 for _ in node.matchers()))
    return node


def _check_source(text: str, where: _Where) -> None:
    # Go's scanner refuses these anywhere, inside string literals and comments too.
    for pos, char in enumerate(text):
        if char == "\x00":
            raise where.error(pos, "illegal character NUL")
        if char == "\ufeff" and pos > 0:
            raise where.error(pos, "illegal byte order mark")
        if "\ud800" <= char <= "\udfff":
            raise where.error(pos, "a lone surrogate is not a character")
