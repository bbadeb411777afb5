"""Specification of traefik_gen.render: header, serialization, template escape, masking."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import bcrypt
import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st

from traefik_gen.errors import ConfigError
from traefik_gen.render import (
    HEADER,
    HEADER_LINE,
    Format,
    escape_template,
    mask_secrets,
    parse_rendered,
    render,
    unescape_template,
)

FORMATS: tuple[Format, ...] = ("yaml", "toml")
ESCAPED_OPEN = '{{ "{{" }}'


def _hash(password: bytes = b"secret") -> str:
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=4)).decode()


def _nested() -> dict[str, Any]:
    return {
        "http": {
            "routers": {
                "app-router-1": {
                    "rule": 'Host("a.test") && PathPrefix("/a\\"b\\\\c")',
                    "entryPoints": ["web", "websecure"],
                    "service": "app-service-1",
                    "priority": 10,
                    "tls": {"certResolver": "letsencrypt"},
                },
            },
            "middlewares": {
                "redirect-app-1": {
                    "redirectRegex": {
                        "regex": "^https?://(www\\.)?a\\.test/(.*)$",
                        "replacement": "https://a.test/${2}",
                        "permanent": True,
                    },
                },
                "hdr": {"headers": {"customRequestHeaders": {"X-Q": 'it\'s "quoted" \\ ok'}}},
            },
            "services": {
                "app-service-1": {
                    "loadBalancer": {
                        "servers": [{"url": "http://app:8080"}],
                        "passHostHeader": True,
                    },
                },
            },
        },
    }


def _header_middleware(value: str) -> dict[str, Any]:
    return {"http": {"middlewares": {"h": {"headers": {"customRequestHeaders": {"X": value}}}}}}


def _body_lines(content: bytes) -> list[str]:
    return [line for line in content.decode().splitlines() if not line.startswith("#")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_file_starts_with_the_ownership_line(fmt: Format) -> None:
    content = render(_nested(), fmt)

    assert content.decode().splitlines()[0] == HEADER_LINE
    assert content.decode().startswith(HEADER)


def test_source_kind_is_named_in_the_header() -> None:
    content = render({"http": {}}, "yaml", source="dokploy")

    lines = content.decode().splitlines()
    assert lines[0] == HEADER_LINE
    assert any(line.startswith("#") and "dokploy" in line for line in lines[1:4])


@pytest.mark.parametrize("source", ["a\nhttp: {}", "{{ env }}"])
def test_source_kind_that_would_break_the_header_is_refused(source: str) -> None:
    with pytest.raises(ConfigError):
        render({"http": {}}, "yaml", source=source)


@pytest.mark.parametrize("fmt", FORMATS)
def test_nested_data_with_backslashes_and_quotes_round_trips(fmt: Format) -> None:
    data = _nested()

    assert parse_rendered(render(data, fmt), fmt) == data


@pytest.mark.parametrize("fmt", FORMATS)
def test_equal_data_gives_equal_bytes(fmt: Format) -> None:
    assert render(_nested(), fmt) == render(_nested(), fmt)


def test_yaml_keeps_the_given_key_order() -> None:
    data = {"http": {"services": {"z": {}}, "routers": {"b": {"rule": "x"}, "a": {"rule": "y"}}}}

    body = _body_lines(render(data, "yaml"))

    keys = [line.strip().rstrip(":") for line in body if line.strip().endswith(":")]
    assert keys == ["http", "services", "routers", "b", "a"]


def test_long_rule_stays_on_one_line() -> None:
    rule = " || ".join(f'Host("host-{index}.example.test")' for index in range(40))

    body = _body_lines(render({"http": {"routers": {"r": {"rule": rule}}}}, "yaml"))

    assert len(body) == 4
    assert parse_rendered(render({"rule": rule}, "yaml"), "yaml") == {"rule": rule}


def test_yaml_is_ascii_with_non_ascii_values_escaped() -> None:
    data = _header_middleware("café")

    content = render(data, "yaml")

    assert content.isascii()
    assert parse_rendered(content, "yaml") == data


@pytest.mark.parametrize("value", ["0o17", "1e3", "1E5", "-.5", "+.inf", "0x1F", "12", "yes"])
def test_yaml_quotes_strings_a_yaml_1_2_reader_takes_for_numbers(value: str) -> None:
    # Traefik 3.7.15 read a plain 0o17 as "15", 1e3 as "1000" and -.5 as "-0.500000".
    content = render({"http": {"x": value}}, "yaml")

    node = yaml.compose(content.decode())
    assert isinstance(node, yaml.MappingNode)
    (_, http), *_ = node.value
    (_, scalar), *_ = http.value
    assert scalar.value == value
    assert scalar.style in ("'", '"')


def test_shared_objects_render_without_yaml_anchors() -> None:
    servers = [{"url": "http://app:80"}]
    data = {"http": {"services": {"a": {"loadBalancer": {"servers": servers}}, "b": {}}}}
    data["http"]["services"]["b"] = {"loadBalancer": {"servers": servers}}

    text = render(data, "yaml").decode()

    assert "&id" not in text
    assert "*id" not in text
    assert parse_rendered(text.encode(), "yaml") == data


def test_str_enum_values_render_as_their_plain_strings() -> None:
    class Scheme(StrEnum):
        HTTPS = "https"

    data = {"http": {"middlewares": {"r": {"redirectScheme": {"scheme": Scheme.HTTPS}}}}}

    for fmt in FORMATS:
        assert parse_rendered(render(data, fmt), fmt) == {
            "http": {"middlewares": {"r": {"redirectScheme": {"scheme": "https"}}}}
        }


def test_subclasses_of_builtins_give_the_bytes_of_the_builtins() -> None:
    class Name(str):
        pass

    class Count(int):
        pass

    class Section(dict):  # type: ignore[type-arg]
        pass

    plain = {"http": {"services": {"s": {"weighted": {"services": [{"name": "a", "weight": 2}]}}}}}
    sub = {
        "http": Section(
            services={
                "s": {"weighted": {"services": [{Name("name"): Name("a"), "weight": Count(2)}]}}
            }
        )
    }

    for fmt in FORMATS:
        assert render(sub, fmt) == render(plain, fmt)


def test_a_lone_surrogate_in_a_key_is_refused_naming_it() -> None:
    for fmt in FORMATS:
        with pytest.raises(ConfigError, match=r"field 'http\.k\\udc80' holds a lone surrogate"):
            render({"http": {"k\udc80": "v"}}, fmt)


def test_a_lone_surrogate_is_refused_naming_the_field() -> None:
    for fmt in FORMATS:
        with pytest.raises(
            ConfigError, match=r"field 'http\.routers\.r\.rule' holds a lone surrogate"
        ):
            render({"http": {"routers": {"r": {"rule": "Host(`a\udc80`)"}}}}, fmt)


def test_tuples_render_as_lists() -> None:
    data = {"http": {"routers": {"r": {"entryPoints": ("web", "websecure")}}}}

    for fmt in FORMATS:
        parsed = parse_rendered(render(data, fmt), fmt)
        assert parsed["http"]["routers"]["r"]["entryPoints"] == ["web", "websecure"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_data_renders_the_header_only(fmt: Format) -> None:
    content = render({}, fmt)

    assert content.decode() == HEADER
    assert parse_rendered(content, fmt) == {}


def test_toml_refuses_null_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"http\.routers\.r\.tls"):
        render({"http": {"routers": {"r": {"tls": None}}}}, "toml")


@pytest.mark.parametrize("fmt", FORMATS)
def test_unrenderable_value_is_refused_naming_the_field_not_the_value(fmt: Format) -> None:
    with pytest.raises(ConfigError, match=r"http\.users\[1\]") as caught:
        render({"http": {"users": ["a", {"s3cr3t-value"}]}}, fmt)

    assert "s3cr3t-value" not in str(caught.value)


def test_non_string_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="http"):
        render({"http": {1: "x"}}, "yaml")


@pytest.mark.parametrize("fmt", FORMATS)
def test_template_open_never_reaches_the_file_unescaped(fmt: Format) -> None:
    data = {"http": {"routers": {"r": {"rule": 'Path("/{{x")', "note": "{{{ a }}"}}}}

    text = render(data, fmt).decode()

    assert "{{" not in text.replace(ESCAPED_OPEN, "")
    assert parse_rendered(text.encode(), fmt) == data


@pytest.mark.parametrize("fmt", FORMATS)
def test_env_template_round_trips_without_being_an_action(fmt: Format) -> None:
    data = _header_middleware('{{ env "HOME" }}')

    content = render(data, fmt)

    assert b'{{ env "HOME"' not in content
    assert b'{{ "{{" }} env' in content
    assert parse_rendered(content, fmt) == data


@given(st.text(alphabet='{} "a\\', max_size=40))
def test_template_escape_is_undone_exactly(text: str) -> None:
    escaped = escape_template(text)

    assert unescape_template(escaped) == text
    assert "{{" not in escaped.replace(ESCAPED_OPEN, "")


@given(st.text(max_size=30))
def test_any_string_value_round_trips_in_both_formats(value: str) -> None:
    data = _header_middleware(value)

    for fmt in FORMATS:
        try:
            content = render(data, fmt)
        except ConfigError:
            assert any(0xD800 <= ord(char) <= 0xDFFF for char in value)
            continue
        assert parse_rendered(content, fmt) == data


def test_parse_error_names_the_position_and_never_the_line() -> None:
    secret = _hash()
    content = (HEADER + f"http:\n  users: ['admin:{secret}\n").encode()

    with pytest.raises(ConfigError, match="line") as caught:
        parse_rendered(content, "yaml")

    assert secret not in str(caught.value)


@pytest.mark.parametrize(("content", "fmt"), [(b"- a\n- b\n", "yaml"), (b"a = [\n", "toml")])
def test_content_that_is_not_a_mapping_document_is_refused(content: bytes, fmt: Format) -> None:
    with pytest.raises(ConfigError):
        parse_rendered(content, fmt)


def test_non_utf8_content_is_refused() -> None:
    with pytest.raises(ConfigError, match="utf-8"):
        parse_rendered(b"http: \xff\n", "yaml")


def test_bcrypt_hashes_are_masked_anywhere() -> None:
    secret = _hash()

    masked = mask_secrets(f"hash {secret} end")

    assert secret not in masked
    assert masked == "hash <bcrypt hash> end"


@pytest.mark.parametrize("fmt", FORMATS)
def test_basic_auth_entries_keep_the_user_and_lose_the_hash(fmt: Format) -> None:
    first, second = _hash(b"one"), _hash(b"two")
    users = [f"alice:{first}", f"bob:{second}"]
    data = {"http": {"middlewares": {"auth-app": {"basicAuth": {"users": users}}}}}

    masked = mask_secrets(render(data, fmt).decode())

    assert first not in masked
    assert second not in masked
    assert "alice:<bcrypt hash>" in masked
    assert "bob:<bcrypt hash>" in masked


@pytest.mark.parametrize(
    "secret",
    ["$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="],
)
def test_other_htpasswd_hashes_are_masked(secret: str) -> None:
    masked = mask_secrets(f"      - carol:{secret}\n")

    assert secret not in masked
    assert masked == "      - carol:<password hash>\n"


@pytest.mark.parametrize(
    "text",
    [
        "replacement: https://a.test/${2}\n",
        "url: http://app:8080\n",
        'rule: Host("a.test") && Path("/$1")\n',
    ],
)
def test_text_without_hashes_is_left_as_it_is(text: str) -> None:
    assert mask_secrets(text) == text


_SCALARS = st.one_of(st.text(max_size=12), st.integers(-(2**40), 2**40), st.booleans(), st.none())
_KEYS = st.one_of(st.text(max_size=8), st.sampled_from(["on", "yes", "1", "a-b", "x@file"]))
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.dictionaries(_KEYS, inner, max_size=4),
        st.lists(st.one_of(_SCALARS, st.dictionaries(_KEYS, inner, min_size=1, max_size=3))),
    ),
    max_leaves=20,
)


@given(st.dictionaries(_KEYS, _DOCUMENTS, max_size=4))
def test_every_document_of_the_generated_shapes_reads_back_as_written(data: dict[str, Any]) -> None:
    try:
        content = render(data, "yaml")
    except ConfigError:
        assume(False)
        return

    assert content.isascii()
    assert parse_rendered(content, "yaml") == data
