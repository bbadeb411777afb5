"""The Traefik dynamic-configuration model: decoding like Traefik, dumping, names, renames."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.traefik import TraefikProcess
from traefik_gen.errors import ConfigError
from traefik_gen.traefik.model import (
    SECTIONS,
    DynamicConfig,
    Headers,
    HTTPConfig,
    Leaf,
    Middleware,
    Reference,
    Router,
    RouterTLS,
    Shape,
    TraefikModel,
    defined_names,
    dump_config,
    field_specs,
    parse_config,
    references,
    rename,
)

# One value of each scalar kind, valid for Traefik's decoder (not necessarily at runtime).
_SAMPLE_LEAF: dict[Leaf | None, Any] = {
    Leaf.STR: "x",
    Leaf.INT: 1,
    Leaf.BOOL: True,
    Leaf.DURATION: "1s",
}


def _every_key(model: type[TraefikModel], *, version: str) -> dict[str, Any]:
    """A document setting every field the model knows for `version`, recursively."""
    out: dict[str, Any] = {}
    for spec in field_specs(model).values():
        if spec.since is not None and version < spec.since:
            continue
        leaf = _SAMPLE_LEAF.get(spec.leaf)
        if spec.shape is Shape.LEAF:
            out[spec.key] = leaf
        elif spec.shape is Shape.LEAF_LIST:
            out[spec.key] = [leaf]
        elif spec.shape is Shape.LEAF_MAP:
            out[spec.key] = {"Name": leaf}
        elif spec.shape is Shape.RAW_MAP:
            out[spec.key] = {"plugin-name": {"Setting": "value"}}
        else:
            assert spec.model is not None
            inner = _every_key(spec.model, version=version)
            if spec.shape is Shape.OBJECT:
                out[spec.key] = inner
            elif spec.shape is Shape.OBJECT_LIST:
                out[spec.key] = [inner]
            else:
                out[spec.key] = {"Entry": inner}
    return out


def _parse(data: dict[str, Any]) -> DynamicConfig:
    return parse_config(data, source="dyn/test.yml")


def _error(data: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="dyn/test.yml")
    return str(caught.value)


# ---------------------------------------------------------------------------------------
# parse_config


def test_keys_match_in_any_case_while_names_keep_theirs() -> None:
    config = _parse(
        {
            "HTTP": {
                "Routers": {
                    "My-Router": {"RULE": "Host(`a.test`)", "EntryPoints": ["web"]},
                },
                "middlewares": {"hdr": {"HEADERS": {"customRequestHeaders": {"X-Mixed": "v"}}}},
            }
        }
    )
    dumped = dump_config(config)
    assert dumped["http"]["routers"] == {
        "My-Router": {"entryPoints": ["web"], "rule": "Host(`a.test`)"}
    }
    assert dumped["http"]["middlewares"]["hdr"]["headers"]["customRequestHeaders"] == {
        "X-Mixed": "v"
    }


def test_unknown_top_level_keys_are_ignored() -> None:
    config = _parse({"x-generator": {"by": "me"}, "http": {"routers": {"r": {"rule": "x"}}}})
    assert dump_config(config) == {"http": {"routers": {"r": {"rule": "x"}}}}


def test_unknown_nested_key_is_refused_with_its_dotted_path() -> None:
    message = _error({"http": {"routers": {"r": {"rule": "x", "bogusField": 1}}}})
    assert message.startswith("dyn/test.yml: ")
    assert "'http.routers.r.bogusField'" in message


def test_bad_value_is_refused_naming_the_key_and_never_the_value() -> None:
    message = _error(
        {"http": {"middlewares": {"auth": {"basicAuth": {"removeHeader": "hunter2-secret"}}}}}
    )
    assert "'http.middlewares.auth.basicAuth.removeHeader'" in message
    assert "hunter2-secret" not in message
    cause = _caused_by({"http": {"routers": {"r": {"priority": "hunter2-secret"}}}})
    assert "hunter2-secret" not in str(cause)


def _caused_by(data: Any) -> BaseException | None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="dyn/test.yml")
    return caught.value.__cause__


def test_scalars_are_converted_as_traefik_converts_them() -> None:
    config = _parse(
        {
            "http": {
                "routers": {"r": {"priority": "100"}},
                "services": {
                    "s": {
                        "loadBalancer": {
                            "passHostHeader": "f",
                            "healthCheck": {"interval": 10, "timeout": "1m30s", "port": "8080"},
                        }
                    }
                },
                "middlewares": {"to-https": {"redirectScheme": {"port": 443, "permanent": 1}}},
            }
        }
    )
    assert config.http is not None and config.http.routers is not None
    assert config.http.routers["r"].priority == 100
    balancer = dump_config(config)["http"]["services"]["s"]["loadBalancer"]
    assert balancer["passHostHeader"] is False
    assert balancer["healthCheck"] == {"port": 8080, "interval": 10, "timeout": "1m30s"}
    redirect = dump_config(config)["http"]["middlewares"]["to-https"]["redirectScheme"]
    assert redirect == {"port": "443", "permanent": True}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("priority", "1.5"),
        ("priority", True),
        ("priority", "0x10"),
        ("priority", 2**63),
    ],
)
def test_integers_follow_go_parse_int(key: str, value: Any) -> None:
    message = _error({"http": {"routers": {"r": {key: value}}}})
    assert f"'http.routers.r.{key}'" in message


@pytest.mark.parametrize("value", ["10x", "1.5", "s", 1.5, True])
def test_durations_are_seconds_or_go_durations(value: Any) -> None:
    data = {"http": {"services": {"s": {"loadBalancer": {"healthCheck": {"interval": value}}}}}}
    assert "'http.services.s.loadBalancer.healthCheck.interval'" in _error(data)


def test_booleans_take_go_spellings_only() -> None:
    data = {"http": {"services": {"s": {"loadBalancer": {"passHostHeader": "yes"}}}}}
    assert "'http.services.s.loadBalancer.passHostHeader'" in _error(data)


def test_a_string_given_for_a_list_is_split_on_commas_but_list_items_are_not() -> None:
    config = _parse({"http": {"routers": {"r": {"entryPoints": "web, websecure"}}}})
    assert dump_config(config)["http"]["routers"]["r"]["entryPoints"] == ["web", "websecure"]
    config = _parse({"http": {"routers": {"r": {"middlewares": ["a,b", "c"]}}}})
    assert dump_config(config)["http"]["routers"]["r"]["middlewares"] == ["a,b", "c"]


def test_null_values_are_skipped_as_if_absent() -> None:
    config = _parse({"http": {"routers": {"r": {"rule": "x", "tls": None}}}, "tcp": None})
    assert dump_config(config) == {"http": {"routers": {"r": {"rule": "x"}}}}


@pytest.mark.parametrize(("given", "enabled"), [(True, True), ("", True), ("TRUE", True)])
def test_allow_empty_router_tls_is_enabled_by_true_or_empty(given: Any, enabled: bool) -> None:
    config = _parse({"http": {"routers": {"r": {"rule": "x", "tls": given}}}})
    assert dump_config(config)["http"]["routers"]["r"]["tls"] == {}


@pytest.mark.parametrize("given", [False, "false", "no"])
def test_allow_empty_router_tls_given_another_scalar_is_dropped(given: Any) -> None:
    config = _parse({"http": {"routers": {"r": {"rule": "x", "tls": given}}}})
    assert "tls" not in dump_config(config)["http"]["routers"]["r"]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"http": {}}, "'http'"),
        ({"http": {"routers": {}}}, "'http.routers'"),
        ({"http": {"middlewares": {"m": {"headers": {}}}}}, "'http.middlewares.m.headers'"),
        ({"http": {"middlewares": {"m": {"headers": True}}}}, "'http.middlewares.m.headers'"),
        (
            {"http": {"middlewares": {"m": {"headers": {"customRequestHeaders": {}}}}}},
            "'http.middlewares.m.headers.customRequestHeaders'",
        ),
    ],
)
def test_empty_maps_and_structs_are_refused_as_standalone(data: Any, where: str) -> None:
    message = _error(data)
    assert where in message
    assert "standalone" in message


def test_an_empty_named_entry_is_accepted() -> None:
    config = _parse({"http": {"middlewares": {"m": {}}}})
    assert defined_names(config)["http.middlewares"] == {"m"}


def test_keys_that_differ_only_in_case_are_refused() -> None:
    message = _error({"http": {"routers": {"r": {"rule": "a", "Rule": "b"}}}})
    assert "'http.routers.r.rule'" in message


def test_keys_traefik_reads_and_ignores_in_files_are_dropped() -> None:
    config = _parse(
        {"http": {"services": {"s": {"loadBalancer": {"servers": [{"url": "u", "port": 80}]}}}}}
    )
    assert dump_config(config)["http"]["services"]["s"]["loadBalancer"]["servers"] == [{"url": "u"}]


def test_plugin_settings_are_kept_as_written() -> None:
    settings = {"CamelCase": {"nested": [1, "two", {"Deep": None}]}, "empty": {}}
    config = _parse({"http": {"middlewares": {"p": {"plugin": {"myPlugin": settings}}}}})
    assert dump_config(config)["http"]["middlewares"]["p"]["plugin"] == {"myPlugin": settings}


def test_non_mapping_configuration_is_refused() -> None:
    assert _error([1, 2]) == "dyn/test.yml: the configuration must be a mapping"


# ---------------------------------------------------------------------------------------
# dump_config


def _models(model: type[TraefikModel]) -> set[type[TraefikModel]]:
    found = {model}
    for spec in field_specs(model).values():
        if spec.model is not None:
            found |= _models(spec.model)
    return found


def test_every_field_of_every_model_defaults_to_none() -> None:
    # dump_config reads only the fields a document gave, which holds only while this does.
    defaults = {
        f"{model.__name__}.{attr}": info.get_default()
        for model in _models(DynamicConfig)
        for attr, info in model.model_fields.items()
    }
    assert len(defaults) > 200
    assert {name: value for name, value in defaults.items() if value is not None} == {}


def test_dump_drops_empty_maps_and_sections_but_keeps_allow_empty_structs() -> None:
    config = DynamicConfig(
        http=HTTPConfig(
            routers={"r": Router(rule="x", tls=RouterTLS(), middlewares=[])},
            services={},
            middlewares={"m": Middleware(headers=Headers(custom_request_headers={}))},
        ),
    )
    assert dump_config(config) == {
        "http": {"routers": {"r": {"rule": "x", "tls": {}}}, "middlewares": {"m": {}}}
    }
    assert dump_config(DynamicConfig(http=HTTPConfig(routers={}))) == {}


def test_dump_orders_sections_and_sorts_names() -> None:
    config = _parse(
        {
            "tls": {"options": {"b": {"sniStrict": True}, "a": {"minVersion": "VersionTLS12"}}},
            "udp": {"routers": {"u": {"service": "s"}}},
            "http": {"routers": {"z": {"rule": "x"}, "B": {"rule": "x"}, "a": {"rule": "x"}}},
            "tcp": {"routers": {"t": {"rule": "HostSNI(`*`)"}}},
        }
    )
    dumped = dump_config(config)
    assert list(dumped) == ["http", "tcp", "udp", "tls"]
    assert list(dumped["http"]["routers"]) == ["B", "a", "z"]
    assert list(dumped["tls"]["options"]) == ["a", "b"]


def test_dump_uses_traefik_spelling_of_irregular_keys() -> None:
    config = _parse(
        {
            "http": {
                "middlewares": {
                    "h": {"headers": {"forcestsheader": True, "CUSTOMBROWSERXSSVALUE": "v"}},
                    "c": {"passtlsclientcert": {"pem": True}},
                },
                "serversTransports": {"t": {"rootcas": ["ca.pem"], "disablehttp2": True}},
            }
        }
    )
    dumped = dump_config(config)["http"]
    assert dumped["middlewares"]["h"]["headers"] == {
        "forceSTSHeader": True,
        "customBrowserXSSValue": "v",
    }
    assert dumped["middlewares"]["c"] == {"passTLSClientCert": {"pem": True}}
    assert dumped["serversTransports"]["t"] == {"rootCAs": ["ca.pem"], "disableHTTP2": True}


@pytest.mark.parametrize("version", ["3.6", "3.7"])
def test_dump_of_a_parsed_document_parses_again_to_the_same_dump(version: str) -> None:
    document = _every_key(DynamicConfig, version=version)
    dumped = dump_config(_parse(document))
    assert dumped == document
    assert dump_config(_parse(json.loads(json.dumps(dumped)))) == dumped


def test_fields_only_traefik_37_knows_are_marked() -> None:
    assert field_specs(Middleware)["encodedcharacters"].since == "3.7"
    assert field_specs(Router)["rule"].since is None
    document_36 = json.dumps(_every_key(DynamicConfig, version="3.6"))
    assert "encodedCharacters" not in document_36
    assert "passiveHealthCheck" in document_36


# ---------------------------------------------------------------------------------------
# Names and references


def _referencing() -> DynamicConfig:
    return _parse(
        {
            "http": {
                "routers": {
                    "r": {
                        "service": "svc",
                        "middlewares": ["chain", "auth@docker"],
                        "tls": {"options": "modern"},
                        "parentRefs": ["parent"],
                    }
                },
                "services": {
                    "svc": {"loadBalancer": {"serversTransport": "st"}, "middlewares": ["m"]},
                    "w": {"weighted": {"services": [{"name": "svc"}, {"name": "other"}]}},
                    "mir": {"mirroring": {"service": "svc", "mirrors": [{"name": "w"}]}},
                    "fo": {"failover": {"service": "svc", "fallback": "w"}},
                    "hrw": {"highestRandomWeight": {"services": [{"name": "fo"}]}},
                },
                "middlewares": {
                    "chain": {"chain": {"middlewares": ["m"]}},
                    "err": {"errors": {"service": "svc", "status": ["500"]}},
                },
                "serversTransports": {"st": {"serverName": "x"}},
            },
            "tcp": {
                "routers": {"t": {"service": "ts", "middlewares": ["tm"], "tls": {"options": "o"}}},
                "services": {
                    "ts": {"loadBalancer": {"serversTransport": "tst"}},
                    "tw": {"weighted": {"services": [{"name": "ts"}]}},
                },
            },
            "udp": {
                "routers": {"u": {"service": "us"}},
                "services": {"uw": {"weighted": {"services": [{"name": "us"}]}}},
            },
            "tls": {"certificates": [{"certFile": "c", "keyFile": "k", "stores": ["default"]}]},
        }
    )


def test_defined_names_lists_every_section() -> None:
    names = defined_names(_referencing())
    assert list(names) == list(SECTIONS)
    assert names["http.services"] == {"svc", "w", "mir", "fo", "hrw"}
    assert names["tcp.routers"] == {"t"}
    assert names["tls.options"] == set()


def test_references_cover_every_place_one_object_names_another() -> None:
    found = {
        (r.owner_section, r.owner_name, r.field, r.section, r.name)
        for r in references(_referencing())
    }
    assert found == {
        ("http.routers", "r", "service", "http.services", "svc"),
        ("http.routers", "r", "middlewares[0]", "http.middlewares", "chain"),
        ("http.routers", "r", "middlewares[1]", "http.middlewares", "auth@docker"),
        ("http.routers", "r", "tls.options", "tls.options", "modern"),
        ("http.routers", "r", "parentRefs[0]", "http.routers", "parent"),
        ("http.services", "svc", "middlewares[0]", "http.middlewares", "m"),
        ("http.services", "svc", "loadBalancer.serversTransport", "http.serversTransports", "st"),
        ("http.services", "w", "weighted.services[0].name", "http.services", "svc"),
        ("http.services", "w", "weighted.services[1].name", "http.services", "other"),
        ("http.services", "mir", "mirroring.service", "http.services", "svc"),
        ("http.services", "mir", "mirroring.mirrors[0].name", "http.services", "w"),
        ("http.services", "fo", "failover.service", "http.services", "svc"),
        ("http.services", "fo", "failover.fallback", "http.services", "w"),
        ("http.services", "hrw", "highestRandomWeight.services[0].name", "http.services", "fo"),
        ("http.middlewares", "chain", "chain.middlewares[0]", "http.middlewares", "m"),
        ("http.middlewares", "err", "errors.service", "http.services", "svc"),
        ("tcp.routers", "t", "service", "tcp.services", "ts"),
        ("tcp.routers", "t", "middlewares[0]", "tcp.middlewares", "tm"),
        ("tcp.routers", "t", "tls.options", "tls.options", "o"),
        ("tcp.services", "ts", "loadBalancer.serversTransport", "tcp.serversTransports", "tst"),
        ("tcp.services", "tw", "weighted.services[0].name", "tcp.services", "ts"),
        ("udp.routers", "u", "service", "udp.services", "us"),
        ("udp.services", "uw", "weighted.services[0].name", "udp.services", "us"),
        ("tls.certificates", "0", "stores[0]", "tls.stores", "default"),
    }


def test_reference_describes_its_referrer() -> None:
    reference = Reference("http.middlewares", "m", "http.routers", "api", "middlewares[0]")
    assert reference.referrer == "router 'api' (middlewares[0])"
    assert not reference.qualified
    assert Reference("http.services", "s@docker", "http.routers", "a", "service").qualified


def test_rename_renames_definitions_and_bare_references_only() -> None:
    renamed = rename(_referencing(), lambda section, name: f"{section.split('.')[0]}-{name}")
    names = defined_names(renamed)
    assert names["http.routers"] == {"http-r"}
    assert names["udp.services"] == {"udp-uw"}
    refs = {(r.owner_name, r.field): r.name for r in references(renamed)}
    assert refs[("http-r", "service")] == "http-svc"
    assert refs[("http-r", "middlewares[1]")] == "auth@docker"
    assert refs[("http-w", "weighted.services[1].name")] == "http-other"
    assert refs[("http-chain", "chain.middlewares[0]")] == "http-m"
    assert refs[("tcp-ts", "loadBalancer.serversTransport")] == "tcp-tst"
    assert refs[("0", "stores[0]")] == "tls-default"


def test_rename_leaves_the_original_untouched() -> None:
    original = _referencing()
    before = dump_config(original)
    rename(original, lambda _section, name: f"new-{name}")
    assert dump_config(original) == before


def test_rename_refuses_two_names_that_become_one() -> None:
    config = _parse({"http": {"routers": {"A": {"rule": "x"}, "a": {"rule": "y"}}}})
    with pytest.raises(ConfigError, match="router 'A' and router 'a' would both be named 'a'"):
        rename(config, lambda _section, name: name.lower())


# ---------------------------------------------------------------------------------------
# Against the real binary


def _install(traefik: TraefikProcess, staging: Path, name: str, document: dict[str, Any]) -> None:
    # Written beside the watched directory and renamed in: Traefik never reads a half file.
    staging.mkdir(exist_ok=True)
    temporary = staging / f"{name}.tmp"
    temporary.write_text(json.dumps(document))
    os.replace(temporary, traefik.dynamic_dir / name)


def test_every_key_of_the_model_is_accepted_by_traefik(
    traefik: TraefikProcess, tmp_path: Path
) -> None:
    minor = ".".join(traefik.version.split(".")[:2])
    document = _every_key(DynamicConfig, version=minor)
    document["http"]["middlewares"]["marker-every-key"] = {"headers": {"frameDeny": True}}
    offset = traefik.log_offset()

    _install(traefik, tmp_path / "staging", "every-key.yml", dump_config(_parse(document)))

    # The provider is all or nothing: the marker loads only if no key was refused.
    marker = traefik.wait_for(lambda: traefik.middleware("marker-every-key"))
    assert marker is not None, traefik.log_text()[offset:][-2000:]
    assert "field not found" not in traefik.log_text()[offset:]
