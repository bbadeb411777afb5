"""Traefik labels to file configuration, as paerser and the Swarm provider read them."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.traefik import TraefikProcess
from traefik_gen.errors import LabelError
from traefik_gen.traefik.labels import labels_to_config
from traefik_gen.traefik.model import DynamicConfig, dump_config, parse_config

SOURCE = "application row 'a1' (app 'shop', field 'labelsSwarm')"
PORT = "traefik.http.services.api.loadbalancer.server.port"
SEED = {
    "traefik.enable": "true",
    "traefik.http.routers.api.rule": "Host(`api.example.com`)",
    "traefik.http.routers.api.entrypoints": "websecure",
    "traefik.http.routers.api.tls.certresolver": "letsencrypt",
    PORT: "8001",
}


def _namespace(section: str, name: str) -> str:
    return f"shop-{name}"


def _server_url(port: int, scheme: str) -> str:
    return f"{scheme}://shop-app:{port}"


def _translate(
    labels: dict[str, str],
    *,
    exposed_by_default: bool = True,
    foreign: set[tuple[str, str]] | None = None,
    namespace: Callable[[str, str], str] = _namespace,
) -> DynamicConfig | None:
    known = foreign or set()
    return labels_to_config(
        labels,
        exposed_by_default=exposed_by_default,
        namespace=namespace,
        server_url=_server_url,
        foreign_exists=lambda section, name: (section, name) in known,
        source=SOURCE,
    )


def _dumped(labels: dict[str, str], **options: Any) -> dict[str, Any]:
    config = _translate(labels, **options)
    assert config is not None
    return dump_config(config)


def _http(labels: dict[str, str], **options: Any) -> dict[str, Any]:
    http: dict[str, Any] = _dumped(labels, **options)["http"]
    return http


def _with_router(**extra: str) -> dict[str, str]:
    """The seed labels plus `traefik.http.routers.api.<key>` for each keyword."""
    labels = dict(SEED)
    labels.update({f"traefik.http.routers.api.{key}": value for key, value in extra.items()})
    return labels


def _error(labels: dict[str, str], **options: Any) -> str:
    with pytest.raises(LabelError) as caught:
        _translate(labels, **options)
    message = str(caught.value)
    assert message.startswith(f"{SOURCE}: ")
    return message


# ---------------------------------------------------------------------------------------
# The seed case, enabling, provider keys


def test_seed_labels_give_a_websecure_router_with_its_resolver_and_one_server() -> None:
    assert _dumped(SEED) == {
        "http": {
            "routers": {
                "shop-api": {
                    "entryPoints": ["websecure"],
                    "service": "shop-api",
                    "rule": "Host(`api.example.com`)",
                    "tls": {"certResolver": "letsencrypt"},
                }
            },
            "services": {
                "shop-api": {
                    "loadBalancer": {
                        "servers": [{"url": _server_url(8001, "http")}],
                        "passHostHeader": True,
                    }
                }
            },
        }
    }


def test_generated_configuration_passes_the_file_model() -> None:
    dumped = _dumped(SEED)
    assert dump_config(parse_config(dumped, source="labels.yml")) == dumped


@pytest.mark.parametrize(
    ("enable", "exposed_by_default"),
    [("false", True), ("0", True), (None, False)],
)
def test_label_set_that_is_not_enabled_gives_nothing(
    enable: str | None, exposed_by_default: bool
) -> None:
    labels = {k: v for k, v in SEED.items() if k != "traefik.enable"}
    if enable is not None:
        labels["traefik.enable"] = enable
    assert _translate(labels, exposed_by_default=exposed_by_default) is None


def test_exposed_by_default_enables_a_set_without_traefik_enable() -> None:
    labels = {k: v for k, v in SEED.items() if k != "traefik.enable"}
    assert "routers" in _http(labels, exposed_by_default=True)


def test_enabled_set_without_configuration_labels_gives_an_empty_config() -> None:
    assert _translate({"traefik.enable": "true", "com.example.x": "y"}) == DynamicConfig()


def test_bad_enable_value_is_an_error_naming_the_key() -> None:
    message = _error({**SEED, "traefik.enable": "yes"})
    assert "'traefik.enable'" in message
    assert "not a boolean" in message


def test_provider_only_keys_are_not_configuration() -> None:
    labels = {**SEED, "traefik.swarm.network": "dokploy-network", "traefik.swarm.lbswarm": "T"}
    assert _dumped(labels) == _dumped(SEED)
    labels = {**SEED, "traefik.docker.network": "dokploy-network"}
    assert _dumped(labels) == _dumped(SEED)


def test_unknown_provider_key_is_an_error() -> None:
    assert "'traefik.swarm.networks'" in _error({**SEED, "traefik.swarm.networks": "x"})
    assert "'traefik.enabled'" in _error({**SEED, "traefik.enabled": "true"})


def test_docker_and_swarm_provider_keys_together_are_an_error() -> None:
    labels = {**SEED, "traefik.swarm.network": "a", "traefik.docker.network": "b"}
    assert "traefik.docker.* and traefik.swarm.*" in _error(labels)


def test_other_labels_are_ignored() -> None:
    labels = {**SEED, "traefik.tls.options.x.minversion": "x", "com.docker.stack": "s"}
    assert _dumped(labels) == _dumped(SEED)


def test_root_must_be_lower_case_traefik() -> None:
    assert "'Traefik.http.routers.api.priority'" in _error(
        {**SEED, "Traefik.http.routers.api.priority": "1"}
    )


# ---------------------------------------------------------------------------------------
# Label syntax


def test_lists_are_comma_separated_and_trimmed() -> None:
    router = _http(_with_router(entrypoints=" web ,websecure"))["routers"]["shop-api"]
    assert router["entryPoints"] == ["web", "websecure"]


def test_an_empty_list_item_is_an_error() -> None:
    assert "'traefik.http.routers.api.entrypoints'" in _error(_with_router(entrypoints="web,"))


def test_struct_list_elements_follow_sorted_keys_so_index_10_precedes_2() -> None:
    labels = _with_router(
        **{
            "tls.domains[2].main": "two.example.com",
            "tls.domains[10].main": "ten.example.com",
            "tls.domains[10].sans": "a.ten.example.com, b.ten.example.com",
        }
    )
    domains = _http(labels)["routers"]["shop-api"]["tls"]["domains"]
    assert domains == [
        {"main": "ten.example.com", "sans": ["a.ten.example.com", "b.ten.example.com"]},
        {"main": "two.example.com"},
    ]


def test_struct_list_index_text_is_not_read() -> None:
    labels = _with_router(**{"tls.domains.0.main": "a.example.com"})
    assert _http(labels)["routers"]["shop-api"]["tls"]["domains"] == [{"main": "a.example.com"}]


@pytest.mark.parametrize(
    "key",
    [
        "traefik.http.routers.api.tls.[0].main",
        "traefik.http.routers.api..rule",
        "traefik.http.routers.api.tls.domains0].main",
    ],
)
def test_malformed_key_is_an_error_naming_it(key: str) -> None:
    assert repr(key) in _error({**SEED, key: "x"})


@pytest.mark.parametrize(("text", "expected"), [("F", False), ("0", False), ("TRUE", True)])
def test_booleans_take_go_spellings(text: str, expected: bool) -> None:
    labels = {**SEED, "traefik.http.services.api.loadbalancer.passhostheader": text}
    assert _http(labels)["services"]["shop-api"]["loadBalancer"]["passHostHeader"] is expected


def test_a_boolean_that_go_does_not_parse_is_an_error() -> None:
    key = "traefik.http.services.api.loadbalancer.passhostheader"
    assert f"{key!r} is not a boolean" in _error({**SEED, key: "yes"})


def test_integers_and_durations_convert_like_traefik() -> None:
    labels = _with_router(priority="42")
    labels["traefik.http.services.api.loadbalancer.healthcheck.interval"] = "10"
    labels["traefik.http.services.api.loadbalancer.healthcheck.timeout"] = "1m30s"
    http = _http(labels)
    assert http["routers"]["shop-api"]["priority"] == 42
    check = http["services"]["shop-api"]["loadBalancer"]["healthCheck"]
    assert check == {"interval": "10", "timeout": "1m30s"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("traefik.http.routers.api.priority", "4.2"),
        ("traefik.http.routers.api.priority", "0x2a"),
        ("traefik.http.services.api.loadbalancer.healthcheck.interval", "ten"),
    ],
)
def test_bad_numbers_and_durations_are_errors_naming_the_key(key: str, value: str) -> None:
    message = _error({**SEED, key: value})
    assert repr(key) in message
    assert value not in message


def test_siblings_differing_in_case_merge_under_the_first_spelling() -> None:
    labels = {
        "traefik.http.routers.Web.rule": "Host(`a.example.com`)",
        "traefik.http.routers.web.EntryPoints": "web",
        "traefik.HTTP.Services.web.LoadBalancer.Server.Port": "80",
    }
    http = _http(labels)
    assert http["routers"] == {
        "shop-Web": {"entryPoints": ["web"], "service": "shop-web", "rule": "Host(`a.example.com`)"}
    }


def test_the_same_leaf_in_two_spellings_is_an_error() -> None:
    labels = {**SEED, "traefik.http.routers.API.rule": "Host(`b.example.com`)"}
    assert "'traefik.http.routers.api.rule' is given twice" in _error(labels)


def test_map_levels_keep_header_and_plugin_names_as_written() -> None:
    labels = {
        **SEED,
        "traefik.http.middlewares.hdr.headers.customrequestheaders.X-Forwarded-Proto": "https",
        "traefik.http.middlewares.plug.plugin.Geo-Block.Countries[0]": "FR",
        "traefik.http.middlewares.plug.plugin.Geo-Block.Countries[1]": "DE",
        "traefik.http.middlewares.plug.plugin.Geo-Block.Cache.Size": "10",
    }
    middlewares = _http(labels)["middlewares"]
    assert middlewares["shop-hdr"] == {
        "headers": {"customRequestHeaders": {"X-Forwarded-Proto": "https"}}
    }
    assert middlewares["shop-plug"] == {
        "plugin": {"Geo-Block": {"Countries": ["FR", "DE"], "Cache": {"Size": "10"}}}
    }


def test_tls_true_enables_the_allow_empty_struct() -> None:
    labels = {k: v for k, v in SEED.items() if "certresolver" not in k}
    labels["traefik.http.routers.api.tls"] = "true"
    assert _http(labels)["routers"]["shop-api"]["tls"] == {}


def test_tls_false_leaves_tls_unset_even_with_sub_keys() -> None:
    assert "tls" not in _http(_with_router(tls="false"))["routers"]["shop-api"]


def test_sticky_cookie_given_bare_is_created_empty() -> None:
    labels = {**SEED, "traefik.http.services.api.loadbalancer.sticky.cookie": ""}
    balancer = _http(labels)["services"]["shop-api"]["loadBalancer"]
    assert balancer["sticky"] == {"cookie": {}}


def test_a_bare_struct_that_is_not_allow_empty_is_an_error() -> None:
    key = "traefik.http.middlewares.hdr.headers"
    assert f"{key!r} cannot be a standalone element" in _error({**SEED, key: "true"})


def test_unknown_key_is_an_error_naming_it_without_its_value() -> None:
    key = "traefik.http.middlewares.auth.basicauth.userz"
    message = _error({**SEED, key: "admin:$apr1$secret-hash"})
    assert f"{key!r} is not a known key" in message
    assert "secret-hash" not in message


def test_bad_basic_auth_value_never_appears_in_the_error() -> None:
    key = "traefik.http.middlewares.auth.basicauth.removeheader"
    message = _error({**SEED, key: "admin:$apr1$secret-hash"})
    assert repr(key) in message
    assert "secret-hash" not in message


def test_server_is_one_singular_struct_and_servers_is_not_a_label() -> None:
    labels = {
        **SEED,
        "traefik.http.services.api.loadbalancer.server.scheme": "https",
        "traefik.http.services.api.loadbalancer.server.weight": "3",
    }
    servers = _http(labels)["services"]["shop-api"]["loadBalancer"]["servers"]
    assert servers == [{"url": _server_url(8001, "https"), "weight": 3}]
    plural = "traefik.http.services.api.loadbalancer.servers.port"
    assert f"{plural!r}: 'servers' is not a known key" in _error({**SEED, plural: "80"})


def test_label_ignored_fields_are_checked_but_not_applied() -> None:
    ignored = {**SEED, "traefik.http.services.api.weighted.services[0].name": "other"}
    assert _dumped(ignored) == _dumped(SEED)
    typo = "traefik.http.services.api.weighted.servicez[0].name"
    assert f"{typo!r}: 'servicez' is not a known key" in _error({**SEED, typo: "x"})


def test_a_key_below_a_scalar_is_an_error() -> None:
    key = "traefik.http.routers.api.rule.extra"
    assert repr(key) in _error({**SEED, key: "x"})


# ---------------------------------------------------------------------------------------
# What the Swarm provider completes


def test_router_without_service_is_linked_to_the_only_service() -> None:
    assert _http(SEED)["routers"]["shop-api"]["service"] == "shop-api"


def test_router_without_service_among_several_services_is_an_error() -> None:
    labels = {**SEED, "traefik.http.services.other.loadbalancer.server.port": "9000"}
    message = _error(labels)
    assert "'traefik.http.routers.api.service' is required" in message


def test_routers_without_any_service_are_an_error() -> None:
    labels = {k: v for k, v in SEED.items() if k != PORT}
    assert "no label defines a http service" in _error(labels)


def test_router_without_rule_is_an_error() -> None:
    labels = {k: v for k, v in SEED.items() if not k.endswith(".rule")}
    assert "'traefik.http.routers.api.rule' is required" in _error(labels)


def test_service_needs_a_port() -> None:
    labels = {k: v for k, v in SEED.items() if k != PORT}
    labels["traefik.http.services.api.loadbalancer.passhostheader"] = "false"
    assert f"{PORT!r} is required: swarm cannot detect the port" in _error(labels)


@pytest.mark.parametrize("port", ["0", "65536", "http", "\uff18\uff10"])
def test_service_port_must_be_a_port_number(port: str) -> None:
    assert f"{PORT!r} must be a port number" in _error({**SEED, PORT: port})


def test_server_url_is_used_as_written_and_excludes_port_and_scheme() -> None:
    url_key = "traefik.http.services.api.loadbalancer.server.url"
    labels = {k: v for k, v in SEED.items() if k != PORT}
    labels[url_key] = "http://10.0.0.5:3000"
    balancer = _http(labels)["services"]["shop-api"]["loadBalancer"]
    assert balancer["servers"] == [{"url": "http://10.0.0.5:3000"}]
    assert f"{url_key!r} excludes" in _error({**SEED, url_key: "http://10.0.0.5:3000"})


def test_pass_host_header_set_by_label_is_kept() -> None:
    labels = {**SEED, "traefik.http.services.api.loadbalancer.passhostheader": "false"}
    assert _http(labels)["services"]["shop-api"]["loadBalancer"]["passHostHeader"] is False


def test_unknown_server_scheme_is_an_error() -> None:
    key = "traefik.http.services.api.loadbalancer.server.scheme"
    assert f"{key!r} must be http, https or h2c" in _error({**SEED, key: "ftp"})


def test_middlewares_without_a_service_are_an_error() -> None:
    labels = {"traefik.http.middlewares.hdr.headers.framedeny": "true"}
    assert "no label defines a http service" in _error(labels)


def test_service_only_label_set_gets_no_default_router() -> None:
    assert set(_http({PORT: "8001"})) == {"services"}


def test_tcp_router_gets_its_service_address_from_the_backend_url() -> None:
    labels = {
        "traefik.tcp.routers.db.rule": "HostSNI(`*`)",
        "traefik.tcp.routers.db.entrypoints": "postgres",
        "traefik.tcp.services.db.loadbalancer.server.port": "5432",
    }
    assert _dumped(labels) == {
        "tcp": {
            "routers": {
                "shop-db": {
                    "entryPoints": ["postgres"],
                    "service": "shop-db",
                    "rule": "HostSNI(`*`)",
                }
            },
            "services": {"shop-db": {"loadBalancer": {"servers": [{"address": "shop-app:5432"}]}}},
        }
    }


def test_tcp_router_without_rule_is_an_error() -> None:
    labels = {
        "traefik.tcp.routers.db.service": "db",
        "traefik.tcp.services.db.loadbalancer.server.port": "5432",
    }
    assert "'traefik.tcp.routers.db.rule' is required" in _error(labels)


def test_udp_router_needs_no_rule() -> None:
    labels = {
        "traefik.udp.routers.dns.entrypoints": "dns",
        "traefik.udp.services.dns.loadbalancer.server.port": "53",
    }
    assert _dumped(labels)["udp"] == {
        "routers": {"shop-dns": {"entryPoints": ["dns"], "service": "shop-dns"}},
        "services": {"shop-dns": {"loadBalancer": {"servers": [{"address": "shop-app:53"}]}}},
    }


def test_tls_store_default_is_an_error() -> None:
    key = "traefik.tls.stores.default.defaultgeneratedcert.resolver"
    assert "'traefik.tls.stores.default' defines the global tls store 'default'" in _error(
        {**SEED, key: "letsencrypt"}
    )


def test_bad_router_rule_is_an_error_naming_the_key() -> None:
    message = _error(_with_router(rule="Host(`a.example.com`"))
    assert "traefik.http.routers.api.rule" in message


def test_http_matcher_in_a_tcp_rule_is_an_error() -> None:
    labels = {
        "traefik.tcp.routers.db.rule": "Host(`db.example.com`)",
        "traefik.tcp.services.db.loadbalancer.server.port": "5432",
    }
    assert "traefik.tcp.routers.db.rule" in _error(labels)


# ---------------------------------------------------------------------------------------
# Names and references


def test_local_references_are_namespaced() -> None:
    labels = _with_router(middlewares="auth")
    labels["traefik.http.middlewares.auth.basicauth.users"] = "admin:$apr1$hash"
    http = _http(labels)
    assert http["routers"]["shop-api"]["middlewares"] == ["shop-auth"]
    assert set(http["middlewares"]) == {"shop-auth"}


def test_foreign_references_keep_their_bare_name() -> None:
    labels = _with_router(middlewares="redirect-to-https", **{"tls.options": "modern"})
    foreign = {("http.middlewares", "redirect-to-https"), ("tls.options", "modern")}
    router = _http(labels, foreign=foreign)["routers"]["shop-api"]
    assert router["middlewares"] == ["redirect-to-https"]
    assert router["tls"]["options"] == "modern"


def test_provider_qualified_references_are_kept_verbatim() -> None:
    labels = _with_router(middlewares="auth@docker, strip@file", service="api@internal")
    foreign = {("http.middlewares", "strip")}
    router = _http(labels, foreign=foreign)["routers"]["shop-api"]
    assert router["middlewares"] == ["auth@docker", "strip@file"]
    assert router["service"] == "api@internal"


def test_a_file_reference_must_exist_in_a_file_of_the_directory() -> None:
    message = _error(_with_router(middlewares="strip@file"))

    assert "references middleware 'strip@file' that exists nowhere" in message


def test_values_traefik_refuses_at_runtime_are_errors() -> None:
    assert "is not a plain name" in _error(_with_router(entrypoints="web`"))
    assert "label 'traefik.http.routers.api.rule'" in _error(_with_router(rule="Host(`a b`)"))
    regex = {
        **SEED,
        "traefik.http.middlewares.m.redirectregex.regex": "(?<=a)b",
        "traefik.http.middlewares.m.redirectregex.replacement": "x",
    }
    assert "is not a regular expression" in _error(regex)
    url = {k: v for k, v in SEED.items() if "server.port" not in k}
    url["traefik.http.services.api.loadbalancer.server.url"] = "http://a b"
    assert "the server url is not a valid url" in _error(url)
    assert "contains a control character" in _error({**SEED, "traefik.http.routers.a\0b.rule": "x"})


def test_reference_to_the_default_tls_options_is_kept() -> None:
    router = _http(_with_router(**{"tls.options": "default"}))["routers"]["shop-api"]
    assert router["tls"]["options"] == "default"


def test_reference_that_exists_nowhere_is_an_error() -> None:
    message = _error(_with_router(middlewares="auth, missing"))
    assert "router 'api' references middleware 'auth' that exists nowhere" in message
    assert "'traefik.http.routers.api.middlewares'" in message


def test_chain_reference_that_exists_nowhere_is_an_error() -> None:
    labels = {**SEED, "traefik.http.middlewares.c.chain.middlewares": "ghost"}
    assert "middleware 'c' references middleware 'ghost' that exists nowhere" in _error(labels)


def test_reference_case_must_match_the_definition() -> None:
    labels = _with_router(middlewares="Auth")
    labels["traefik.http.middlewares.auth.basicauth.users"] = "admin:$apr1$hash"
    assert "references middleware 'Auth' that exists nowhere" in _error(labels)


def test_two_names_with_one_final_name_are_an_error() -> None:
    labels = {
        **SEED,
        "traefik.http.middlewares.a-b.headers.framedeny": "true",
        "traefik.http.middlewares.a_b.headers.framedeny": "true",
    }
    message = _error(labels, namespace=lambda _section, name: name.replace("_", "-"))
    assert "middleware 'a-b' and middleware 'a_b' would both be named 'a-b'" in message


def test_defined_name_with_at_sign_is_an_error() -> None:
    labels = {**SEED, "traefik.http.middlewares.x@y.headers.framedeny": "true"}
    assert "'traefik.http.middlewares.x@y'" in _error(labels)


# ---------------------------------------------------------------------------------------
# Against the real binary


def test_label_configuration_loads_into_traefik_with_the_router_enabled(
    traefik: TraefikProcess, tmp_path: Path
) -> None:
    labels = {
        **SEED,
        "traefik.http.routers.api.entrypoints": "web",
        "traefik.http.routers.api.middlewares": "hdr",
        "traefik.http.routers.api.tls": "false",
        "traefik.http.middlewares.hdr.headers.customresponseheaders.X-From": "labels",
    }
    document = _dumped(labels)
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "labels.yml").write_text(json.dumps(document))
    os.replace(staging / "labels.yml", traefik.dynamic_dir / "labels.yml")

    router = traefik.wait_router("shop-api")
    assert router["middlewares"] == ["shop-hdr@file"]
    assert router["service"] == "shop-api"
