"""check_re2: the regexes Traefik (Go's regexp) compiles, and only those.

The verdicts on the Go-specific cases were taken from Traefik 3.6.15 and 3.7.15
(tests/test_rules.py checks a sample of them against the running binary).
"""

from __future__ import annotations

import pytest

from traefik_gen.errors import RuleError
from traefik_gen.traefik.regex import check_re2

ACCEPTED = [
    r"^[a-z]+\.example\.com$",
    r"\.(jpeg|jpg|png)$",
    r"^/api/v[0-9]+/",
    r"(?i)^/Admin",
    r"(?P<name>[^/]+)",
    r"(?<name>[^/]+)",
    r"\pL+",
    r"\p{Greek}",
    r"[[:alpha:]_]+",
    r"\Q.*+?\E",
    r"\Q\C\E",
    r"a{0,1000}",
    r"(?U)a+",
    r"\x{1F600}",
    r"\0",
    r"[]a]",
    r"^https?://(www\.)?example\.com/(.*)",
    "",
]

REJECTED = {
    "lookahead": r"foo(?=bar)",
    "negative lookahead": r"^(?!/admin)",
    "lookbehind": r"(?<=/)api",
    "backreference": r"(a)\1",
    "named backreference": r"(?P<x>a)(?P=x)",
    "possessive quantifier": r"a*+",
    "atomic group": r"(?>a)",
    "any byte (C++ RE2 only)": r"\C",
    "non-ascii group name (C++ RE2 only)": "(?P<\u00e1>x)",
    "unbalanced bracket": r"[a-z",
    "unbalanced parenthesis": r"(a",
    "repeat over 1000": r"a{1001}",
    "verbose flag": r"(?x)a b",
    "end of input \\Z": r"a\Z",
    "comment group": r"(?#note)a",
    "trailing backslash": "a\\",
    "unknown class": r"\p{Klingon}",
}


# The two redirect presets of Dokploy's UI, stored verbatim in `redirect.regex`.
DOKPLOY_PRESETS = [r"^https?://(?:www.)?(.+)", r"^https?://www.(.+)"]


@pytest.mark.parametrize("pattern", DOKPLOY_PRESETS)
def test_dokploy_redirect_presets_are_accepted(pattern: str) -> None:
    check_re2(pattern, field="redirect regex")


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_go_compatible_pattern_is_accepted(pattern: str) -> None:
    check_re2(pattern, field="regex")


@pytest.mark.parametrize("pattern", REJECTED.values(), ids=REJECTED.keys())
def test_pattern_go_cannot_compile_is_rejected(pattern: str) -> None:
    with pytest.raises(RuleError):
        check_re2(pattern, field="regex")


def test_message_names_the_field_and_the_pattern_and_the_reason() -> None:
    with pytest.raises(RuleError) as caught:
        check_re2("[a-z", field="redirect regex")
    message = str(caught.value)
    assert message.startswith("redirect regex '[a-z' ")
    assert "missing ]" in message


def test_redacted_message_leaves_the_pattern_out() -> None:
    with pytest.raises(RuleError) as caught:
        check_re2("token-s3cr3t(", field="HeaderRegexp value", redact=True)
    message = str(caught.value)
    assert "s3cr3t" not in message
    assert "HeaderRegexp value" in message


def test_go_only_rejection_is_redacted_too() -> None:
    with pytest.raises(RuleError) as caught:
        check_re2("(?P<s\u00e9cret>x)", field="QueryRegexp value", redact=True)
    assert "s\u00e9cret" not in str(caught.value)


def test_rejection_writes_nothing_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuleError):
        check_re2("(?=a)", field="regex")
    assert capfd.readouterr().err == ""


def test_escaped_backslash_before_c_is_a_literal_c() -> None:
    check_re2(r"\\C", field="regex")


def test_bracket_inside_a_class_does_not_hide_a_later_any_byte() -> None:
    with pytest.raises(RuleError):
        check_re2(r"[\]](\C)", field="regex")
