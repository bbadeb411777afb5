"""normalize_host: the policy in traefik_gen/traefik/hosts.py, one behaviour per test."""

from __future__ import annotations

import idna
import pytest
import re2
from hypothesis import given
from hypothesis import strategies as st

from traefik_gen.errors import RuleError
from traefik_gen.traefik.hosts import Host, normalize_host
from traefik_gen.traefik.rules import parse_rule


def rejected(raw: str) -> str:
    """The message normalize_host raises for `raw` (fails the test if it accepts it)."""
    with pytest.raises(RuleError) as caught:
        normalize_host(raw)
    return str(caught.value)


# --- what comes out ---------------------------------------------------------------------


def test_the_characters_taken_without_the_uts46_table_map_to_themselves() -> None:
    # normalize_host skips idna's table for hosts made only of these.
    plain = "abcdefghijklmnopqrstuvwxyz0123456789._*-"
    assert [c for c in plain if idna.uts46_remap(c, std3_rules=False) != c] == []


def test_plain_name_is_kept() -> None:
    assert normalize_host("app.example.com") == Host("app.example.com", wildcard=False)


def test_upper_case_is_lowered() -> None:
    assert normalize_host("App.EXAMPLE.Com").name == "app.example.com"


def test_surrounding_whitespace_is_trimmed_like_dokploy() -> None:
    assert normalize_host(" \tapp.example.com \n").name == "app.example.com"


def test_one_trailing_dot_is_dropped() -> None:
    assert normalize_host("app.example.com.").name == "app.example.com"


def test_idn_becomes_punycode() -> None:
    assert normalize_host("bücher.example").name == "xn--bcher-kva.example"


def test_upper_case_idn_maps_to_the_same_punycode() -> None:
    assert normalize_host("BÜCHER.example").name == "xn--bcher-kva.example"


def test_sharp_s_is_kept_non_transitionally() -> None:
    # Transitional processing would turn it into "ss" and route strasse.de instead.
    assert normalize_host("straße.de").name == "xn--strae-oqa.de"


def test_full_width_letters_and_ideographic_stop_are_mapped() -> None:
    full_width = "".join(chr(ord(char) + 0xFEE0) for char in "EXAMPLE")
    assert normalize_host(full_width + "\u3002com").name == "example.com"


def test_valid_punycode_is_kept() -> None:
    assert normalize_host("XN--BCHER-KVA.example").name == "xn--bcher-kva.example"


def test_double_hyphen_in_an_ascii_label_is_allowed() -> None:
    assert normalize_host("my--app.example.com").name == "my--app.example.com"


def test_dotted_decimal_ipv4_is_allowed() -> None:
    assert normalize_host("192.0.2.10").name == "192.0.2.10"


def test_label_of_63_octets_is_allowed() -> None:
    label = "a" * 63
    assert normalize_host(f"{label}.com").name == f"{label}.com"


def test_name_of_253_octets_is_allowed() -> None:
    name = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(name) == 253
    assert normalize_host(name).name == name


def test_normalizing_twice_changes_nothing() -> None:
    once = normalize_host(" Bücher.Example. ")
    assert normalize_host(once.name) == once


@given(
    st.lists(
        st.from_regex(r"[a-z0-9](?:[a-z0-9_-]{0,20}[a-z0-9])?", fullmatch=True),
        min_size=1,
        max_size=4,
    )
)
def test_any_ldh_name_with_a_letter_tld_is_accepted_unchanged(labels: list[str]) -> None:
    name = ".".join([*labels, "example"])
    assert normalize_host(name).name == name


# --- underscore -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["_acme-challenge.example.com", "my_app.example.com", "app_.example.com", "_.x.com"]
)
def test_underscore_is_allowed_in_ascii_labels_anywhere(name: str) -> None:
    assert normalize_host(name).name == name


def test_underscore_in_an_idn_label_is_rejected() -> None:
    assert "'_' is allowed only in all-ascii labels" in rejected("bü_cher.example")


def test_underscore_in_an_ascii_label_next_to_an_idn_label_is_fine() -> None:
    assert normalize_host("my_app.bücher.example").name == "my_app.xn--bcher-kva.example"


# --- wildcards --------------------------------------------------------------------------


def test_leading_star_label_is_a_wildcard() -> None:
    host = normalize_host("*.Example.com")
    assert host == Host("*.example.com", wildcard=True)
    assert host.suffix == "example.com"


def test_wildcard_over_an_idn_is_encoded() -> None:
    assert normalize_host("*.bücher.example").name == "*.xn--bcher-kva.example"


@pytest.mark.parametrize("raw", ["*", "*.", " * "])
def test_star_alone_is_rejected(raw: str) -> None:
    assert "no name after '*.'" in rejected(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "a.*.example.com",
        "*a.example.com",
        "a*.example.com",
        "*.*.example.com",
        "**.example.com",
        "example.*",
    ],
)
def test_star_anywhere_but_the_whole_first_label_is_rejected(raw: str) -> None:
    assert "'*' is allowed only as the whole first label" in rejected(raw)


def test_wildcard_over_an_ipv4_address_is_rejected() -> None:
    assert "wildcard over an ipv4 address" in rejected("*.192.0.2.10")


# --- rejections -------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["", "   ", "\t\n"])
def test_empty_host_is_rejected(raw: str) -> None:
    assert "is empty" in rejected(raw)


@pytest.mark.parametrize("raw", ["app example.com", "app\u00a0example.com", "app\u3000b.com"])
def test_whitespace_inside_is_rejected(raw: str) -> None:
    assert "contains whitespace" in rejected(raw)


@pytest.mark.parametrize(
    "raw", ["app\x00.example.com", "app.example.com\x00", "a\x1b[31m.com", "a\x85b.com"]
)
def test_control_characters_are_rejected_and_shown_escaped(raw: str) -> None:
    message = rejected(raw)
    assert "contains a control character" in message
    assert repr(raw) in message
    assert all(char.isprintable() for char in message)


@pytest.mark.parametrize("raw", ["a..example.com", ".example.com", "example.com.."])
def test_empty_label_is_rejected(raw: str) -> None:
    assert "empty label" in rejected(raw)


def test_label_over_63_octets_is_rejected() -> None:
    assert "longer than 63 octets" in rejected("a" * 64 + ".com")


def test_idn_label_over_63_octets_once_encoded_is_rejected() -> None:
    # 30 distinct CJK characters: 30 UTF-8 code points, far more than 63 octets in punycode.
    label = "".join(chr(0x4E00 + 37 * i) for i in range(30))
    assert "label too long" in rejected(label + ".example").lower()


def test_name_over_253_octets_is_rejected() -> None:
    assert "longer than 253 octets" in rejected(".".join(["a" * 63] * 3 + ["b" * 62]))


@pytest.mark.parametrize(
    "raw",
    ["xn--zz.example", "xn--.example", "xn--abc-.example", "xn---bbk.example", "xn--ls8h.example"],
)
def test_punycode_that_does_not_decode_to_a_valid_label_is_rejected(raw: str) -> None:
    assert "invalid punycode" in rejected(raw)


@pytest.mark.parametrize("raw", ["-app.example.com", "app-.example.com"])
def test_label_starting_or_ending_with_hyphen_is_rejected(raw: str) -> None:
    assert "starts or ends with '-'" in rejected(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "app.example.com:8080",
        "https://app.example.com",
        "app.example.com/path",
        "user@app.example.com",
        "[::1]",
    ],
)
def test_port_scheme_path_or_userinfo_is_rejected(raw: str) -> None:
    rejected(raw)


@pytest.mark.parametrize("raw", ["1.2.3", "01.2.3.4", "example.123", "0x7f.0.0.1", "1.2.3.256"])
def test_name_ending_in_a_number_must_be_a_dotted_decimal_ipv4(raw: str) -> None:
    assert "dotted-decimal ipv4" in rejected(raw)


def test_lone_surrogate_is_rejected() -> None:
    assert "lone surrogate" in rejected("app\udc80.example.com")


def test_disallowed_unicode_is_rejected() -> None:
    assert "no host name may hold" in rejected("app\u202e.example.com")


# --- injection --------------------------------------------------------------------------

INJECTIONS = [
    "a.test`) || Host(`evil.test",
    "a.test`)||Host(`evil.test",
    'a.test") || Host("evil.test',
    'a.test")||Host("evil.test',
    "a.test\n|| Host(`evil.test`)",
    "a.test\\",
    "a.test'",
    'a.test{{ env "HOME" }}',
]


@pytest.mark.parametrize("raw", INJECTIONS)
def test_rule_syntax_in_a_host_is_rejected(raw: str) -> None:
    rejected(raw)


# --- messages ---------------------------------------------------------------------------


def test_message_starts_with_the_field_and_the_value() -> None:
    with pytest.raises(RuleError) as caught:
        normalize_host("a..b", field="domain.host")
    assert str(caught.value).startswith("domain.host 'a..b' ")


def test_invalid_character_is_named() -> None:
    assert "'/' is not a letter" in rejected("a/b.example.com")


def test_idna_failure_keeps_its_cause() -> None:
    with pytest.raises(RuleError) as caught:
        normalize_host("xn--zz.example")
    assert caught.value.__cause__ is not None


# --- matchers ---------------------------------------------------------------------------


def test_plain_host_matcher_is_a_quoted_host() -> None:
    assert normalize_host("App.Example.com").matcher() == 'Host("app.example.com")'


def test_wildcard_matcher_is_an_escaped_anchored_host_regexp() -> None:
    matcher = normalize_host("*.my-app.example.com").matcher()
    assert matcher == 'HostRegexp("^[^.]+\\\\.my-app\\\\.example\\\\.com\\\\.?$")'


def test_wildcard_matcher_parses_back_to_its_regexp() -> None:
    host = normalize_host("*.example.com")
    (matcher,) = parse_rule(host.matcher()).matchers()
    assert matcher.args == (host.regexp(),)


@pytest.mark.parametrize(
    ("request_host", "matches"),
    [
        ("x.example.com", True),
        ("x-1_y.example.com", True),
        ("x.example.com.", True),
        ("x.y.example.com", False),
        ("example.com", False),
        (".example.com", False),
        ("xexample.com", False),
        ("x.example.comm", False),
        ("x.example.com.evil.test", False),
    ],
)
def test_wildcard_regexp_matches_exactly_one_label(request_host: str, matches: bool) -> None:
    pattern = normalize_host("*.example.com").regexp()
    assert (re2.search(pattern, request_host) is not None) is matches


def test_plain_host_regexp_matches_only_that_name() -> None:
    pattern = normalize_host("app.example.com").regexp()
    assert re2.search(pattern, "app.example.com.") is not None
    assert re2.search(pattern, "appxexample.com") is None
    assert re2.search(pattern, "x.app.example.com") is None
