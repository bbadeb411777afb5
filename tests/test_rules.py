"""Rules: quoting (checked against Go's strconv.Unquote semantics), building, parsing.

`go_unquote` below is an independent Python rendering of Go's `strconv.Unquote`, written
from the Go specification's string-literal rules, so the quoting tests do not trust the
module's own parser. Two tests run the real Traefik (every `--traefik-versions` line): the
quoted values must route exactly, injected hosts must not, and parse_rule must accept and
reject what Traefik accepts and rejects.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.backends import BackendFactory
from tests.support.traefik import TraefikProcess
from traefik_gen.errors import RuleError
from traefik_gen.traefik.hosts import normalize_host
from traefik_gen.traefik.rules import (
    And,
    Matcher,
    Not,
    Or,
    RuleNode,
    default_priority,
    parse_rule,
    quote,
    route_rule,
    validate_path,
)

# --- Go's strconv.Unquote, independently ----------------------------------------------

_GO_SIMPLE = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34}


def go_unquote(literal: str) -> str:
    """What Go's strconv.Unquote returns for `literal`; ValueError where Go errs."""
    if len(literal) >= 2 and literal[0] == literal[-1] == "`":
        body = literal[1:-1]
        if "`" in body:
            raise ValueError("backquote inside a raw string")
        return body.replace("\r", "")
    if len(literal) < 2 or literal[0] != '"' or literal[-1] != '"':
        raise ValueError("not a string literal")
    return _go_interpreted(literal[1:-1]).decode("utf-8")


def _go_interpreted(body: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(body):
        char = body[i]
        if char in '"\n':
            raise ValueError(f"unescaped {char!r} inside a string")
        if char != "\\":
            out += char.encode("utf-8")
            i += 1
            continue
        consumed, value = _go_escape(body[i + 1 :])
        out += value
        i += 1 + consumed
    return bytes(out)


def _go_escape(rest: str) -> tuple[int, bytes]:
    letter = rest[:1]
    if letter in _GO_SIMPLE:
        return 1, bytes((_GO_SIMPLE[letter],))
    widths = {"x": 2, "u": 4, "U": 8}
    if letter in widths:
        digits = rest[1 : 1 + widths[letter]]
        if len(digits) != widths[letter] or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise ValueError("bad hex escape")
        value = int(digits, 16)
        if letter == "x":
            return 1 + len(digits), bytes((value,))
        if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            raise ValueError("escape is not a unicode scalar value")
        return 1 + len(digits), chr(value).encode("utf-8")
    if len(rest) >= 3 and all(c in "01234567" for c in rest[:3]):
        value = int(rest[:3], 8)
        if value > 255:
            raise ValueError("octal escape above 255")
        return 3, bytes((value,))
    raise ValueError(f"unknown escape \\{letter}")


def test_go_unquote_reference_rejects_what_go_rejects() -> None:
    for bad in ['"a\nb"', '"\\q"', '"\\ud800"', '"\\x4"', "'a'", '"a"b"', '"\\400"']:
        with pytest.raises(ValueError):
            go_unquote(bad)
    assert go_unquote('"\\101\\x41\\u0041\\U00000041\\t"') == "AAAA\t"
    assert go_unquote("`a\\b\r`") == "a\\b"


# --- quote ------------------------------------------------------------------------------


@given(st.text())
def test_quote_round_trips_through_go_unquote(value: str) -> None:
    assert go_unquote(quote(value)) == value


@given(st.text())
def test_quote_emits_printable_ascii_only(value: str) -> None:
    assert all(0x20 <= ord(char) < 0x7F for char in quote(value))


@given(st.text(min_size=1))
def test_quoted_value_parses_back_to_itself(value: str) -> None:
    parsed = parse_rule(f'Header("X-Test", {quote(value)})')
    assert list(parsed.matchers()) == [Matcher("Header", ("X-Test", value))]


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("plain", '"plain"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("a`b", '"a`b"'),
        ("line\nbreak", '"line\\nbreak"'),
        ("tab\there", '"tab\\there"'),
        ("\r\x00\x1b\x7f", '"\\x0d\\x00\\x1b\\x7f"'),
        ("café", '"caf\\u00e9"'),
        ("\u0085", '"\\u0085"'),
        ("😀", '"\\U0001f600"'),
        ("", '""'),
    ],
)
def test_quote_escapes_exactly_what_go_needs(value: str, literal: str) -> None:
    assert quote(value) == literal


def test_quote_never_writes_a_surrogate_pair() -> None:
    assert "\\ud83d" not in quote("😀").lower()


def test_quote_refuses_a_lone_surrogate_without_echoing_the_value() -> None:
    with pytest.raises(RuleError) as caught:
        quote("token-s3cr3t\udc80")
    assert "U+DC80" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


# --- validate_path ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/api", "/api/v1/", "/a b", "/café", "/a`b", "/%2F", "/;x"])
def test_valid_path_is_returned_unchanged(path: str) -> None:
    assert validate_path(path) == path


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "does not start with '/'"),
        ("api", "does not start with '/'"),
        (" /api", "does not start with '/'"),
        ("/a\x00b", "control character"),
        ("/a\nb", "control character"),
        ("/a\tb", "control character"),
        ("/a\x85", "control character"),
        ("/a\ud800", "lone surrogate"),
        ("/search?q=1", "'?', which no request path holds"),
        ("/page#top", "'#', which no request path holds"),
        ("/100%", "'%' that does not start a %XX escape"),
        ("/a%zz", "'%' that does not start a %XX escape"),
    ],
)
def test_invalid_path_is_rejected(path: str, reason: str) -> None:
    with pytest.raises(RuleError) as caught:
        validate_path(path, field="domain.path")
    assert str(caught.value).startswith(f"domain.path {path!r} ")
    assert reason in str(caught.value)


# --- route_rule -------------------------------------------------------------------------


def test_root_path_gives_a_host_only_rule() -> None:
    assert route_rule(normalize_host("app.example.com"), "/") == 'Host("app.example.com")'


def test_other_path_adds_a_path_prefix() -> None:
    rule = route_rule(normalize_host("app.example.com"), "/api")
    assert rule == 'Host("app.example.com") && PathPrefix("/api")'


def test_wildcard_route_uses_host_regexp() -> None:
    rule = route_rule(normalize_host("*.example.com"), "/api")
    assert rule.startswith('HostRegexp("^[^.]+\\\\.example\\\\.com') and rule.endswith(
        ' && PathPrefix("/api")'
    )


def test_route_rule_rejects_an_invalid_path() -> None:
    with pytest.raises(RuleError):
        route_rule(normalize_host("app.example.com"), "api")


PATH_INJECTIONS = [
    "/x`) || Host(`evil.test",
    '/x") || Host("evil.test',
    "/x`)||Host(`evil.test`)||Path(`/",
    '/x\\") || Host(\\"evil.test',
    "/x) || (Host(`evil.test`)",
]


@pytest.mark.parametrize("path", PATH_INJECTIONS)
def test_rule_syntax_in_a_path_stays_inside_the_value(path: str) -> None:
    parsed = parse_rule(route_rule(normalize_host("a.test"), path))
    assert parsed.hosts() == ["a.test"]
    assert parsed.paths() == [path]


@given(st.text().map(lambda tail: "/" + tail))
def test_any_valid_path_yields_one_host_and_that_path(path: str) -> None:
    try:
        validate_path(path)
    except RuleError:
        return
    parsed = parse_rule(route_rule(normalize_host("a.test"), path))
    assert parsed.hosts() == ["a.test"]
    assert parsed.paths() == ([] if path == "/" else [path])


# --- parse_rule: what it accepts --------------------------------------------------------

DOCUMENTED_HTTP = [
    "Host(`example.com`)",
    "Host(`example.com`) && Path(`/traefik`)",
    "Host(`example.com`) || (Host(`example.org`) && Path(`/traefik`))",
    "HostRegexp(`^.+\\.example\\.com$`)",
    "HostRegexp(`^[a-z]+\\.example\\.com$`)",
    "Method(`GET`)",
    "Header(`Content-Type`, `application/json`)",
    "HeaderRegexp(`Content-Type`, `^application/(json|yaml)$`)",
    "Path(`/products`)",
    "PathPrefix(`/products/`)",
    "PathRegexp(`\\.(jpeg|jpg|png)$`)",
    "Query(`mobile`, `true`)",
    "Query(`mobile`)",
    "QueryRegexp(`mobile`, `^(true|yes)$`)",
    "ClientIP(`10.76.105.11`)",
    "ClientIP(`::1`)",
    "ClientIP(`192.168.0.0/24`)",
    "ClientIP(`fe80::/10`)",
    "Host(`traefik.io`) || !PathPrefix(`/path`)",
    'Host("example.com") && PathPrefix("/api")',
]

DOCUMENTED_TCP = [
    "HostSNI(`example.com`)",
    "HostSNI(`*`)",
    "HostSNIRegexp(`^.+\\.example\\.com$`)",
    "ClientIP(`10.0.0.0/16`)",
    "ALPN(`h2`)",
    "HostSNI(`example.com`) && (ALPN(`h2`) || ALPN(`http/1.1`))",
    "!ClientIP(`10.0.0.0/8`) && HostSNI(`example.com`)",
]


@pytest.mark.parametrize("rule", DOCUMENTED_HTTP)
def test_documented_http_rule_is_accepted(rule: str) -> None:
    parse_rule(rule)


@pytest.mark.parametrize("rule", DOCUMENTED_TCP)
def test_documented_tcp_rule_is_accepted(rule: str) -> None:
    parse_rule(rule, protocol="tcp")


@pytest.mark.parametrize("spelling", ["PathPrefix", "pathprefix", "PATHPREFIX", "Pathprefix"])
def test_matcher_name_in_each_spelling_traefik_registers_is_accepted(spelling: str) -> None:
    (matcher,) = parse_rule(f"{spelling}(`/a`)").matchers()
    assert matcher.name == "PathPrefix"


@pytest.mark.parametrize(
    "rule",
    [
        "Host(`a.test`)\n",
        "\n  Host(`a.test`)  \n",
        "Host(`a.test`) &&\n  Path(`/`)",
        "Host(\n  `a.test`,\n)",
        "Host ( `a.test` )",
        "Host(`a.test`)&&Path(`/`)",
        "/* note */ Host(`a.test`) // trailing",
        "\ufeffHost(`a.test`)",
        "((Host(`a.test`)))",
    ],
)
def test_go_layout_freedom_is_accepted(rule: str) -> None:
    assert parse_rule(rule).hosts() == ["a.test"]


def test_go_escapes_decode_like_go() -> None:
    (matcher,) = parse_rule('Header("X", "\\101\\x42\\u0043\\U00000044\\t\\"\\\\")').matchers()
    assert matcher.args == ("X", 'ABCD\t"\\')


def test_raw_string_keeps_backslashes_and_drops_carriage_returns() -> None:
    (matcher,) = parse_rule("PathRegexp(`^/a\\.b\r$`)").matchers()
    assert matcher.args == ("^/a\\.b$",)


# --- parse_rule: structure, canonical form, claims --------------------------------------


def test_and_binds_tighter_than_or() -> None:
    parsed = parse_rule("Host(`a`) || Host(`b`) && Path(`/c`)")
    assert parsed == Or(
        (Matcher("Host", ("a",)), And((Matcher("Host", ("b",)), Matcher("Path", ("/c",)))))
    )


def test_not_binds_tighter_than_and() -> None:
    parsed = parse_rule("!Host(`a`) && Path(`/`)")
    assert parsed == And((Not(Matcher("Host", ("a",))), Matcher("Path", ("/",))))


def test_same_operator_chains_are_flattened() -> None:
    parsed = parse_rule("Host(`a`) && (Path(`/b`) && Method(`GET`))")
    assert isinstance(parsed, And) and len(parsed.operands) == 3


def test_canonical_uses_double_quotes_and_canonical_names() -> None:
    rule = 'pathprefix(`/a"b`) && HOST(`x.test`)'
    assert parse_rule(rule).canonical() == 'PathPrefix("/a\\"b") && Host("x.test")'


def test_canonical_parenthesises_mixed_operators() -> None:
    parsed = parse_rule("Host(`a`) && (Path(`/b`) || Path(`/c`)) || !(Host(`d`) && Path(`/e`))")
    assert parsed.canonical() == (
        '(Host("a") && (Path("/b") || Path("/c"))) || !(Host("d") && Path("/e"))'
    )


def test_column_is_recorded_on_each_matcher() -> None:
    columns = [m.column for m in parse_rule("Host(`a`) && Path(`/b`)").matchers()]
    assert columns == [1, 14]


def test_hosts_are_the_claimed_hosts_normalized_as_traefik_compares_them() -> None:
    parsed = parse_rule("Host(`A.Example.com.`) || (Host(`b.test`) && !Host(`c.test`))")
    assert parsed.hosts() == ["a.example.com", "b.test"]


def test_hosts_under_a_double_negation_are_claimed() -> None:
    assert parse_rule("!!Host(`a.test`)").hosts() == ["a.test"]


def test_negated_group_claims_nothing() -> None:
    assert parse_rule("!(Host(`a.test`) || Path(`/x`))").hosts() == []


def test_host_regexp_is_not_a_claimed_host() -> None:
    assert parse_rule("HostRegexp(`^a\\.test$`)").hosts() == []


def test_paths_are_the_claimed_path_and_prefix_values() -> None:
    parsed = parse_rule("Host(`a`) && (Path(`/x`) || PathPrefix(`/y/`)) && !Path(`/z`)")
    assert parsed.paths() == ["/x", "/y/"]


def test_tcp_hosts_are_the_host_sni_values() -> None:
    parsed = parse_rule("HostSNI(`A.test`) || HostSNI(`b.test`)", protocol="tcp")
    assert parsed.hosts() == ["a.test", "b.test"]


def test_default_priority_is_the_length_in_bytes() -> None:
    assert default_priority("Host(`bücher`)") == len("Host(`bücher`)") + 1


def _and(*operands: RuleNode) -> RuleNode:
    flat = [o for op in operands for o in (op.operands if isinstance(op, And) else (op,))]
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def _or(*operands: RuleNode) -> RuleNode:
    flat = [o for op in operands for o in (op.operands if isinstance(op, Or) else (op,))]
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


_values = st.text(min_size=1, max_size=12)
_leaves = st.one_of(
    st.from_regex(r"[a-z0-9.-]{1,12}", fullmatch=True).map(lambda h: Matcher("Host", (h,))),
    _values.map(lambda p: Matcher("PathPrefix", ("/" + p,))),
    st.tuples(st.from_regex(r"[A-Za-z-]{1,8}", fullmatch=True), _values).map(
        lambda pair: Matcher("Header", pair)
    ),
    _values.map(lambda m: Matcher("Method", (m,))),
)


def _combine(children: st.SearchStrategy[RuleNode]) -> st.SearchStrategy[RuleNode]:
    pairs = st.lists(children, min_size=2, max_size=3)
    return st.one_of(
        children.map(Not),
        pairs.map(lambda nodes: _and(*nodes)),
        pairs.map(lambda nodes: _or(*nodes)),
    )


@given(st.recursive(_leaves, _combine, max_leaves=8))
def test_canonical_form_parses_back_to_the_same_tree(tree: RuleNode) -> None:
    assert parse_rule(tree.canonical()) == tree


# --- parse_rule: what it rejects --------------------------------------------------------

REJECTED_HTTP = {
    "empty rule": ("", "rule is empty"),
    "blank rule": ("  \n\t", "rule is empty"),
    "comment only": ("/* nothing */", "rule is empty"),
    "v2 multi-value host": ("Host(`a.test`, `b.test`)", "takes 1 argument(s), got 2"),
    "single quotes": ("Host('a.test')", "single quotes"),
    "unknown matcher": ("Hots(`a.test`)", "unknown matcher 'Hots'"),
    "wrong inner case": ("hostRegexp(`a`)", "must be spelled one of HostRegexp"),
    "v2 matcher": ("Headers(`X`, `y`)", "traefik v2 matcher; v3 has Header"),
    "tcp matcher in http": ("HostSNI(`a.test`)", "matcher of tcp rules"),
    "bad regex": ("PathRegexp(`[a-z`)", "missing ]"),
    "lookahead": ("HostRegexp(`^(?!admin).*`)", "invalid perl operator"),
    "any-byte regex": ("PathRegexp(`\\C`)", "not supported by go"),
    "non-ascii host": ("Host(`bücher.test`)", "not ascii (use punycode)"),
    "non-ascii host regexp": ("HostRegexp(`bücher`)", "not ascii"),
    "path without slash": ("Path(`api`)", "does not start with '/'"),
    "prefix without slash": ("PathPrefix(`api`)", "does not start with '/'"),
    "empty argument": ("Host(``)", "argument 1 of Host is empty"),
    "empty header value": ('Header("X-A", "")', "argument 2 of Header is empty"),
    "no arguments": ("Host()", "takes 1 argument(s), got 0"),
    "header with one argument": ("Header(`X-A`)", "takes 2 argument(s), got 1"),
    "query with three arguments": ("Query(`a`, `b`, `c`)", "takes 1 or 2 argument(s)"),
    "client ip with zone": ("ClientIP(`fe80::1%eth0`)", "not an ip address or cidr"),
    "client ip netmask form": ("ClientIP(`10.0.0.0/255.0.0.0`)", "not an ip address or cidr"),
    "client ip prefix too long": ("ClientIP(`10.0.0.0/33`)", "not an ip address or cidr"),
    "client ip leading zero": ("ClientIP(`010.0.0.1`)", "not an ip address or cidr"),
    "client ip hostname": ("ClientIP(`localhost`)", "not an ip address or cidr"),
    "unterminated raw string": ("Host(`a.test)", "raw string literal not terminated"),
    "unterminated string": ('Host("a.test)', "string literal not terminated"),
    "newline in a string": ('Host("a\n")', "string literal not terminated"),
    "unknown escape": ('Host("a\\\'")', "unknown escape sequence"),
    "short hex escape": ('Host("\\x4")', "illegal character in escape sequence"),
    "surrogate escape": ('Host("\\ud800")', "invalid unicode code point"),
    "escapes that are not utf-8": ('Path("/\\xff")', "not valid utf-8"),
    "octal above 255": ('Host("\\400")', "above 255"),
    "newline before an operator": ("Host(`a`)\n&& Path(`/`)", "expected end of rule"),
    "newline before a closing parenthesis": ('Host("a"\n)', "missing ',' before newline"),
    "missing comma": ("Header(`a` `b`)", "missing ',' in argument list"),
    "comparison": ("Host(`a`) == Host(`b`)", "unexpected character '='"),
    "single ampersand": ("Host(`a`) & Path(`/`)", "the operator is '&&'"),
    "nested call argument": ("Host(Path(`/`))", "matcher arguments are string literals"),
    "parenthesised argument": ("Host((`a`))", "matcher arguments are string literals"),
    "number argument": ("Host(1)", "a number is not a matcher argument"),
    "bare identifier": ("Host", "expected '(' after Host"),
    "trailing operator": ("Host(`a`) &&", "expected a matcher"),
    "dangling not": ("!", "expected a matcher"),
    "unclosed parenthesis": ("(Host(`a`)", "expected ')'"),
    "extra parenthesis": ("Host(`a`))", "expected end of rule"),
    "comma between matchers": ("Host(`a`), Host(`b`)", "expected end of rule"),
    "selector": ("Host.x(`a`)", "unexpected character '.'"),
    "variadic": ('Host("a"...)', "'...' is not allowed"),
    "unterminated comment": ("Host(`a`) /* x", "comment not terminated"),
    "NUL byte": ("Host(`a\x00`)", "illegal character NUL"),
    "byte-order mark inside": ("Host(`a`)\ufeff", "illegal byte order mark"),
    "non-breaking space": ("Host(`a`)\u00a0&& Path(`/`)", "unexpected character"),
}

REJECTED_TCP = {
    "http matcher in tcp": ("Host(`a.test`)", "matcher of http rules"),
    "acme alpn": ("ALPN(`acme-tls/1`)", "reserved for acme challenges"),
    "sni with a space": ("HostSNI(`a b`)", "is not a host name"),
    "sni wildcard only in 3.7": ("HostSNI(`*.a.test`)", "use HostSNIRegexp"),
    "non-ascii sni": ("HostSNI(`bücher.test`)", "not ascii"),
    "sni regexp lookahead": ("HostSNIRegexp(`(?=a)`)", "invalid perl operator"),
    "two sni values": ("HostSNI(`a`, `b`)", "takes 1 argument(s), got 2"),
    "wrong sni spelling": ("HostSni(`a`)", "must be spelled one of HostSNI"),
}


@pytest.mark.parametrize(("rule", "reason"), REJECTED_HTTP.values(), ids=REJECTED_HTTP.keys())
def test_invalid_http_rule_is_rejected_with_its_reason(rule: str, reason: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(rule)
    assert reason in str(caught.value)


@pytest.mark.parametrize(("rule", "reason"), REJECTED_TCP.values(), ids=REJECTED_TCP.keys())
def test_invalid_tcp_rule_is_rejected_with_its_reason(rule: str, reason: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(rule, protocol="tcp")
    assert reason in str(caught.value)


def test_error_names_the_field_and_the_column() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule("Host(`a`) && Foo(`b`)", field="label traefik.http.routers.x.rule")
    assert str(caught.value).startswith("label traefik.http.routers.x.rule at column 14: ")


def test_error_in_a_multi_line_rule_names_the_line_too() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule("Host(`a`) &&\n  Path(`nope`)")
    assert "at line 2, column 8:" in str(caught.value)


def test_error_column_points_at_the_bad_argument() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule("Host(`a`) && Path(`nope`)")
    assert "at column 19:" in str(caught.value)


def test_header_regexp_value_is_not_echoed_in_errors() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule("HeaderRegexp(`X-Api-Key`, `s3cr3t-(`)")
    assert "s3cr3t" not in str(caught.value)


def test_regex_error_keeps_its_cause() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule("PathRegexp(`(`)")
    assert isinstance(caught.value.__cause__, RuleError)


# --- against the real Traefik -----------------------------------------------------------

NASTY_PATHS = [
    "/a`b",
    '/a"b',
    "/a\\b",
    "/a b",
    "/caf\u00e9",
    "/\U0001f600",
    "/it's",
    "/x`) || Host(`evil.test",
    '/x") || Host("evil.test',
    "/x`)||Host(`evil.test`)||Path(`/",
]

NASTY_HEADER_VALUES = [
    "a`b",
    'a"b',
    "a\\b",
    "tab\there",
    "caf\u00e9",
    "\U0001f600",
    "it's",
    "%41",
    "a,b",
    "${HOME}",
    "a) || Host(`evil.test`",
    'a") || Host("evil.test',
]

# Reserved characters go literally: Traefik routes on the path with those still encoded.
_PATH_SAFE = "/:@!$&'()*+,;="


def _write_dynamic(traefik: TraefikProcess, config: dict[str, Any]) -> None:
    """Write one file into the watched directory atomically, as the real writer does."""
    staging = traefik.dynamic_dir.parent / "rules.yml.tmp"
    staging.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    os.replace(staging, traefik.dynamic_dir / "rules.yml")


def _routers(rules: dict[str, str], service: str) -> dict[str, Any]:
    return {
        name: {"rule": rule, "service": service, "entryPoints": ["web"]}
        for name, rule in rules.items()
    }


def _as_sent(value: str) -> str:
    # http.client sends str headers as latin-1: this makes the bytes on the wire UTF-8.
    return value.encode("utf-8").decode("latin-1")


@pytest.mark.traefik
@pytest.mark.traefik_throttle("0s")
def test_quoted_values_route_exactly_and_inject_no_host(
    traefik: TraefikProcess, backends: BackendFactory
) -> None:
    backend = backends("quoted")
    paths = {f"path-{i}": p for i, p in enumerate(NASTY_PATHS)}
    headers = {f"header-{i}": v for i, v in enumerate(NASTY_HEADER_VALUES)}
    rules = {name: route_rule(normalize_host(f"{name}.quote.test"), p) for name, p in paths.items()}
    for name, value in headers.items():
        host = normalize_host(f"{name}.quote.test").matcher()
        rules[name] = f"{host} && Header({quote('X-Nasty')}, {quote(value)})"
    rules["wildcard"] = normalize_host("*.wild.quote.test").matcher()
    rules["idn"] = normalize_host("bücher.quote.test").matcher()
    service = {"loadBalancer": {"servers": [{"url": backend.url}]}}
    _write_dynamic(
        traefik, {"http": {"routers": _routers(rules, "svc"), "services": {"svc": service}}}
    )
    traefik.wait_router("idn")

    raw = traefik.api_json("/api/rawdata")["routers"]
    for name, rule in rules.items():
        assert raw[f"{name}@file"]["status"] == "enabled", raw[f"{name}@file"]
        assert raw[f"{name}@file"]["rule"] == rule

    for name, path in paths.items():
        sent = urllib.parse.quote(path, safe=_PATH_SAFE)
        assert traefik.get(f"{name}.quote.test", sent).status == 200, path
        assert traefik.get(f"{name}.quote.test", "/").status == 404, path
        assert traefik.get("evil.test", sent).status == 404, path
    for name, value in headers.items():
        nasty = {"X-Nasty": _as_sent(value)}
        assert traefik.get(f"{name}.quote.test", headers=nasty).status == 200, value
        assert traefik.get(f"{name}.quote.test").status == 404, value
        assert traefik.get("evil.test", headers=nasty).status == 404, value

    assert traefik.get("x.wild.quote.test").status == 200
    assert traefik.get("X-1.WILD.Quote.test").status == 200
    assert traefik.get("x.y.wild.quote.test").status == 404
    assert traefik.get("wild.quote.test").status == 404
    assert traefik.get("xn--bcher-kva.quote.test").status == 200


# Each rule's verdict was seen on Traefik 3.6.15 and 3.7.15; parse_rule must match it.
AGREEMENT_HTTP = [
    *DOCUMENTED_HTTP,
    "hostregexp(`a`)",
    "Hostregexp(`a`)",
    "hostRegexp(`a`)",
    "Host(`a`,)",
    "Host(`a`)\n&& Path(`/`)",
    "Host(`a`) /* c\n */ && Path(`/`)",
    "PathPrefix(`/x`) // c",
    "Host(`a`) == Host(`b`)",
    "Host('a')",
    "Host(`a`, `b`)",
    "Host(``)",
    "Host()",
    'Header("X-A", "")',
    'Query("a", "")',
    "Host(1)",
    "Host((`a`))",
    'Host("\\101\\x41\\u0041\\U00000041")',
    'Host("\\ud800")',
    'Host("\\400")',
    'Host("\\u00e9")',
    "Path(`nolead`)",
    "ClientIP(`fe80::1%eth0`)",
    "ClientIP(`1.2.3.4/024`)",
    "ClientIP(`01.2.3.4`)",
    "ClientIP(`1.2.3.4/255.0.0.0`)",
    "ClientIP(`::ffff:1.2.3.4`)",
    "PathRegexp(`\\C`)",
    "PathRegexp(`\\Q\\C\\E`)",
    "PathRegexp(`(?<n>a)`)",
    "PathRegexp(`(?P<\u00e1>a)`)",
    "PathRegexp(`(a{1000}){1000}`)",
    "PathRegexp(`(?=a)`)",
    "PathRegexp(`(a)\\1`)",
    "PathRegexp(`a{2}{3}`)",
    "HostRegexp(`bücher`)",
    "Host(`a`)\f",
    "\ufeffHost(`a`)",
]

AGREEMENT_TCP = [
    *DOCUMENTED_TCP,
    "hostsni(`a`)",
    "Hostsni(`a`)",
    "HostSni(`a`)",
    "Host(`a`)",
    "HostSNI(`a b`)",
    "HostSNI(`a_b.test`)",
    "HostSNI(``)",
    "ALPN(`acme-tls/1`)",
    "HostSNIRegexp(`(?=a)`)",
]


def _accepted(rule: str, protocol: Literal["http", "tcp"]) -> bool:
    try:
        parse_rule(rule, protocol=protocol)
    except RuleError:
        return False
    return True


@pytest.mark.traefik
@pytest.mark.traefik_throttle("0s")
def test_parse_rule_accepts_and_rejects_what_traefik_does(
    traefik: TraefikProcess, backends: BackendFactory
) -> None:
    backend = backends("agreement")
    http_rules = {f"h{i}": rule for i, rule in enumerate(AGREEMENT_HTTP)}
    tcp_rules = {f"t{i}": rule for i, rule in enumerate(AGREEMENT_TCP)}
    tcp_routers = {
        # Passthrough TLS, so that HostSNI other than `*` is allowed at all.
        name: {
            "rule": rule,
            "service": "tsvc",
            "entryPoints": ["web"],
            "tls": {"passthrough": True},
        }
        for name, rule in tcp_rules.items()
    }
    http_service = {"loadBalancer": {"servers": [{"url": backend.url}]}}
    tcp_service = {"loadBalancer": {"servers": [{"address": f"127.0.0.1:{backend.port}"}]}}
    config = {
        "http": {"routers": _routers(http_rules, "svc"), "services": {"svc": http_service}},
        "tcp": {"routers": tcp_routers, "services": {"tsvc": tcp_service}},
    }
    _write_dynamic(traefik, config)
    traefik.wait_router("h0")

    raw = traefik.api_json("/api/rawdata")
    seen = {name: raw["routers"][f"{name}@file"]["status"] for name in http_rules}
    seen |= {name: raw["tcpRouters"][f"{name}@file"]["status"] for name in tcp_rules}
    disagreements = [
        (rule, seen[name])
        for name, rule in http_rules.items()
        if (seen[name] == "enabled") != _accepted(rule, "http")
    ] + [
        (rule, seen[name])
        for name, rule in tcp_rules.items()
        if (seen[name] == "enabled") != _accepted(rule, "tcp")
    ]
    assert disagreements == []
