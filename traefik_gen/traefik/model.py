"""Traefik v3 dynamic configuration, as the file provider reads it, as pydantic models.

The key set is Traefik's own: the Go structs of `pkg/config/dynamic`, `pkg/tls` and
`pkg/types` in 3.6 and 3.7, read from the type metadata of the released 3.6.15 and 3.7.15
binaries (the test suite loads every key into both). Fields only 3.7 knows carry a
`SINCE_3_7` mark: a 3.6 file provider refuses them, and one refused key freezes every file.

Traefik's decoder (paerser) is looser and stricter than YAML in ways a generator must copy:

- keys match Go field names case-insensitively at every level, while names (routers,
  headers, plugins) keep their case; unknown top-level keys are ignored, unknown keys below
  `http`/`tcp`/`udp`/`tls` freeze the provider;
- scalars are loosely typed (`priority: "100"`, `passHostHeader: "false"`, a bare integer
  duration is seconds), and a string given for a list is split on commas;
- a struct or map given with no content is "a standalone element" and is refused, except
  the allow-empty structs (`tls: {}` enables TLS on a router), and a null value is skipped.

`parse_config` applies those rules before validation; `dump_config` writes a canonical
dict that needs none of them. `references` and `rename` know every place one object names
another.
"""

from __future__ import annotations

import copy
import logging
import re
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from traefik_gen.errors import ConfigError

__all__ = [
    "ALLOW_EMPTY",
    "LABEL_IGNORED",
    "SECTIONS",
    "SINCE_3_7",
    "DynamicConfig",
    "FieldSpec",
    "Leaf",
    "Reference",
    "Shape",
    "Since",
    "SliceAsStruct",
    "TraefikModel",
    "check_duration",
    "defined_names",
    "describe",
    "dotted",
    "dump_config",
    "dumped_names",
    "field_specs",
    "go_bool",
    "go_int",
    "parse_config",
    "references",
    "rename",
]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------
# Scalars, converted the way paerser converts them


class Leaf(Enum):
    """The Go type of a scalar field, which decides how a text value converts."""

    STR = "string"
    INT = "integer"
    BOOL = "boolean"
    DURATION = "duration"


_GO_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}
_GO_INT = re.compile(r"[+-]?[0-9]+")
_GO_DURATION = re.compile(
    r"[+-]?(?:0|(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+)"
)
_INT64 = range(-(2**63), 2**63)


def go_bool(text: str) -> bool:
    """Go's `strconv.ParseBool`: raises ValueError (without the value) on anything else."""
    try:
        return _GO_BOOLS[text]
    except KeyError:
        raise ValueError("not a boolean (1, t, true, 0, f, false)") from None


def go_int(text: str) -> int:
    """Go's base-10 `strconv.ParseInt` for a 64-bit integer."""
    if not _GO_INT.fullmatch(text) or int(text) not in _INT64:
        raise ValueError("not a base-10 64-bit integer")
    return int(text)


def check_duration(text: str) -> str:
    """Traefik's duration: a bare integer (seconds) or a Go duration such as `1m30s`."""
    if not (_GO_INT.fullmatch(text) or _GO_DURATION.fullmatch(text)):
        raise ValueError("not a duration (seconds, or a Go duration such as 1m30s)")
    return text


def _to_str(value: Any) -> Any:
    # paerser reads YAML scalars as text, so `port: 443` is the string "443".
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _to_int(value: Any) -> Any:
    if isinstance(value, str):
        return go_int(value)
    if isinstance(value, bool) or (isinstance(value, int) and value not in _INT64):
        raise ValueError("not a 64-bit integer")
    return value


def _to_bool(value: Any) -> Any:
    if isinstance(value, str):
        return go_bool(value)
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    return value


def _to_duration(value: Any) -> Any:
    if isinstance(value, str):
        return check_duration(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("not a duration (seconds, or a Go duration such as 1m30s)")
    return value


GoStr = Annotated[str, BeforeValidator(_to_str), Leaf.STR]
GoInt = Annotated[int, BeforeValidator(_to_int), Leaf.INT]
GoBool = Annotated[bool, BeforeValidator(_to_bool), Leaf.BOOL]
# Kept as written: an int is seconds, a string is a Go duration (or seconds as text).
Duration = Annotated[str | int, BeforeValidator(_to_duration), Leaf.DURATION]


# ---------------------------------------------------------------------------------------
# Field traits: what Traefik's struct tags say beyond the key


class _Trait(Enum):
    ALLOW_EMPTY = "allowEmpty"
    LABEL_IGNORED = "label:-"


# The struct may be given empty (`tls: {}`, label `...tls=true`): that alone enables it.
ALLOW_EMPTY = _Trait.ALLOW_EMPTY
# Tagged `label:"-"`: labels may not set it (values ignored, sub-keys still checked).
LABEL_IGNORED = _Trait.LABEL_IGNORED


@dataclass(frozen=True)
class Since:
    """The first Traefik minor release that knows the field (older ones refuse it)."""

    version: str


SINCE_3_7 = Since("3.7")


@dataclass(frozen=True)
class SliceAsStruct:
    """A list that labels write as one struct under a singular word (`server`)."""

    label: str


# Limitation: the models are the 3.7 superset; only `Since` marks tell 3.6 apart, unchecked here.
class TraefikModel(BaseModel):
    """Base of every model: Traefik's keys as aliases, unknown keys refused, all optional.

    `file_ignored` lists keys (lower case) that Traefik's file decoder matches and then
    ignores (`file:"-"`): they are accepted and dropped. `label_only` lists keys that only
    labels may set (a server's `port`, `scheme`), consumed by the label translator.
    """

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        # A validation error may be about a basic-auth user or a secret header.
        hide_input_in_errors=True,
    )

    file_ignored: ClassVar[frozenset[str]] = frozenset()
    label_only: ClassVar[frozenset[str]] = frozenset()


# ---------------------------------------------------------------------------------------
# The models, in Traefik's field order


class Domain(TraefikModel):
    """Traefik's `types.Domain`."""

    main: GoStr | None = None
    sans: list[GoStr] | None = None


class RouterTLS(TraefikModel):
    """Traefik's `dynamic.RouterTLSConfig`."""

    options: GoStr | None = None
    cert_resolver: GoStr | None = None
    domains: list[Domain] | None = None
    file_ignored: ClassVar[frozenset[str]] = frozenset({"conflictingoptions", "resolvedoptions"})


class RouterObservability(TraefikModel):
    """Traefik's `dynamic.RouterObservabilityConfig`."""

    access_logs: GoBool | None = None
    metrics: GoBool | None = None
    tracing: GoBool | None = None
    trace_verbosity: GoStr | None = None
    file_ignored: ClassVar[frozenset[str]] = frozenset({"metadata"})


class Router(TraefikModel):
    """Traefik's `dynamic.Router`."""

    entry_points: list[GoStr] | None = None
    middlewares: list[GoStr] | None = None
    service: GoStr | None = None
    rule: GoStr | None = None
    parent_refs: Annotated[list[GoStr] | None, LABEL_IGNORED] = None
    rule_syntax: GoStr | None = None
    priority: GoInt | None = None
    tls: Annotated[RouterTLS | None, ALLOW_EMPTY] = None
    observability: RouterObservability | None = None
    file_ignored: ClassVar[frozenset[str]] = frozenset(
        {"defaultrule", "deniedencodedpathcharacters"}
    )


class Cookie(TraefikModel):
    """Traefik's `dynamic.Cookie`."""

    name: GoStr | None = None
    secure: GoBool | None = None
    http_only: GoBool | None = None
    same_site: GoStr | None = None
    max_age: GoInt | None = None
    path: GoStr | None = None
    domain: GoStr | None = None
    file_ignored: ClassVar[frozenset[str]] = frozenset({"expires", "preserveleadingdot"})


class Sticky(TraefikModel):
    """Traefik's `dynamic.Sticky`."""

    cookie: Annotated[Cookie | None, ALLOW_EMPTY] = None


class Server(TraefikModel):
    """Traefik's `dynamic.Server`."""

    url: GoStr | None = None
    weight: GoInt | None = None
    preserve_path: GoBool | None = None
    file_ignored: ClassVar[frozenset[str]] = frozenset({"fenced", "port", "scheme"})
    label_only: ClassVar[frozenset[str]] = frozenset({"port", "scheme"})


class ServerHealthCheck(TraefikModel):
    """Traefik's `dynamic.ServerHealthCheck`."""

    scheme: GoStr | None = None
    mode: GoStr | None = None
    path: GoStr | None = None
    method: GoStr | None = None
    status: GoInt | None = None
    port: GoInt | None = None
    interval: Duration | None = None
    unhealthy_interval: Duration | None = None
    timeout: Duration | None = None
    hostname: GoStr | None = None
    follow_redirects: GoBool | None = None
    headers: dict[str, GoStr] | None = None


class PassiveHealthCheck(TraefikModel):
    """Traefik's `dynamic.PassiveServerHealthCheck`."""

    failure_window: Duration | None = None
    max_failed_attempts: GoInt | None = None


class ResponseForwarding(TraefikModel):
    """Traefik's `dynamic.ResponseForwarding`."""

    flush_interval: Duration | None = None


class LoadBalancer(TraefikModel):
    """Traefik's `dynamic.ServersLoadBalancer`."""

    sticky: Annotated[Sticky | None, ALLOW_EMPTY] = None
    servers: Annotated[list[Server] | None, SliceAsStruct("server")] = None
    strategy: GoStr | None = None
    health_check: ServerHealthCheck | None = None
    passive_health_check: PassiveHealthCheck | None = None
    pass_host_header: GoBool | None = None
    response_forwarding: ResponseForwarding | None = None
    servers_transport: GoStr | None = None
    file_ignored: ClassVar[frozenset[str]] = frozenset({"nginxupstreamhashby"})


class HRWService(TraefikModel):
    """Traefik's `dynamic.HRWService`."""

    name: GoStr | None = None
    weight: GoInt | None = None


class ServiceHealthCheck(TraefikModel):
    """Traefik's `dynamic.HealthCheck`: empty, its presence turns health propagation on."""


class HighestRandomWeight(TraefikModel):
    """Traefik's `dynamic.HighestRandomWeight`."""

    services: list[HRWService] | None = None
    health_check: Annotated[ServiceHealthCheck | None, ALLOW_EMPTY] = None


class WeightedService(TraefikModel):
    """Traefik's `dynamic.WRRService`."""

    name: GoStr | None = None
    weight: GoInt | None = None
    file_ignored: ClassVar[frozenset[str]] = frozenset({"grpcstatus", "headers", "status"})


class Weighted(TraefikModel):
    """Traefik's `dynamic.WeightedRoundRobin`."""

    services: list[WeightedService] | None = None
    sticky: Sticky | None = None
    health_check: Annotated[ServiceHealthCheck | None, ALLOW_EMPTY] = None


class MirrorService(TraefikModel):
    """Traefik's `dynamic.MirrorService`."""

    name: GoStr | None = None
    percent: GoInt | None = None


class Mirroring(TraefikModel):
    """Traefik's `dynamic.Mirroring`."""

    service: GoStr | None = None
    mirror_body: GoBool | None = None
    max_body_size: GoInt | None = None
    mirrors: list[MirrorService] | None = None
    health_check: Annotated[ServiceHealthCheck | None, ALLOW_EMPTY] = None


class FailoverErrors(TraefikModel):
    """Traefik's `dynamic.FailoverError`."""

    max_request_body_bytes: GoInt | None = None
    status: list[GoStr] | None = None


class Failover(TraefikModel):
    """Traefik's `dynamic.Failover`."""

    service: GoStr | None = None
    fallback: GoStr | None = None
    health_check: Annotated[ServiceHealthCheck | None, ALLOW_EMPTY] = None
    errors: Annotated[FailoverErrors | None, SINCE_3_7] = None


class Service(TraefikModel):
    """Traefik's `dynamic.Service`."""

    middlewares: Annotated[list[GoStr] | None, SINCE_3_7] = None
    load_balancer: LoadBalancer | None = None
    highest_random_weight: Annotated[HighestRandomWeight | None, LABEL_IGNORED] = None
    weighted: Annotated[Weighted | None, LABEL_IGNORED] = None
    mirroring: Annotated[Mirroring | None, LABEL_IGNORED] = None
    failover: Annotated[Failover | None, LABEL_IGNORED] = None
    file_ignored: ClassVar[frozenset[str]] = frozenset({"observability"})


class AddPrefix(TraefikModel):
    """Traefik's `dynamic.AddPrefix`."""

    prefix: GoStr | None = None


class StripPrefix(TraefikModel):
    """Traefik's `dynamic.StripPrefix`."""

    prefixes: list[GoStr] | None = None
    force_slash: GoBool | None = None


class StripPrefixRegex(TraefikModel):
    """Traefik's `dynamic.StripPrefixRegex`."""

    regex: list[GoStr] | None = None


class ReplacePath(TraefikModel):
    """Traefik's `dynamic.ReplacePath`."""

    path: GoStr | None = None


class ReplacePathRegex(TraefikModel):
    """Traefik's `dynamic.ReplacePathRegex`."""

    regex: GoStr | None = None
    replacement: GoStr | None = None


class Chain(TraefikModel):
    """Traefik's `dynamic.Chain`."""

    middlewares: list[GoStr] | None = None


class IPStrategy(TraefikModel):
    """Traefik's `dynamic.IPStrategy`."""

    depth: GoInt | None = None
    excluded_ips: list[GoStr] | None = Field(default=None, alias="excludedIPs")
    ipv6_subnet: GoInt | None = None


class IPWhiteList(TraefikModel):
    """Traefik's `dynamic.IPWhiteList`."""

    source_range: list[GoStr] | None = None
    ip_strategy: Annotated[IPStrategy | None, ALLOW_EMPTY] = None


class IPAllowList(TraefikModel):
    """Traefik's `dynamic.IPAllowList`."""

    source_range: list[GoStr] | None = None
    ip_strategy: Annotated[IPStrategy | None, ALLOW_EMPTY] = None
    reject_status_code: GoInt | None = None


class Headers(TraefikModel):
    """Traefik's `dynamic.Headers`."""

    custom_request_headers: dict[str, GoStr] | None = None
    custom_response_headers: dict[str, GoStr] | None = None
    access_control_allow_credentials: GoBool | None = None
    access_control_allow_headers: list[GoStr] | None = None
    access_control_allow_methods: list[GoStr] | None = None
    access_control_allow_origin_list: list[GoStr] | None = None
    access_control_allow_origin_list_regex: list[GoStr] | None = None
    access_control_expose_headers: list[GoStr] | None = None
    access_control_max_age: GoInt | None = None
    add_vary_header: GoBool | None = None
    allowed_hosts: list[GoStr] | None = None
    hosts_proxy_headers: list[GoStr] | None = None
    ssl_proxy_headers: dict[str, GoStr] | None = None
    sts_seconds: GoInt | None = None
    sts_include_subdomains: GoBool | None = None
    sts_preload: GoBool | None = None
    force_sts_header: GoBool | None = Field(default=None, alias="forceSTSHeader")
    frame_deny: GoBool | None = None
    custom_frame_options_value: GoStr | None = None
    content_type_nosniff: GoBool | None = None
    browser_xss_filter: GoBool | None = None
    custom_browser_xss_value: GoStr | None = Field(default=None, alias="customBrowserXSSValue")
    content_security_policy: GoStr | None = None
    content_security_policy_report_only: GoStr | None = None
    public_key: GoStr | None = None
    referrer_policy: GoStr | None = None
    permissions_policy: GoStr | None = None
    is_development: GoBool | None = None
    feature_policy: GoStr | None = None
    ssl_redirect: GoBool | None = None
    ssl_temporary_redirect: GoBool | None = None
    ssl_host: GoStr | None = None
    ssl_force_host: GoBool | None = None


class EncodedCharacters(TraefikModel):
    """Traefik's `dynamic.EncodedCharacters`."""

    allow_encoded_slash: GoBool | None = None
    allow_encoded_back_slash: GoBool | None = None
    allow_encoded_null_character: GoBool | None = None
    allow_encoded_semicolon: GoBool | None = None
    allow_encoded_percent: GoBool | None = None
    allow_encoded_question_mark: GoBool | None = None
    allow_encoded_hash: GoBool | None = None


class ErrorPage(TraefikModel):
    """Traefik's `dynamic.ErrorPage`."""

    status: list[GoStr] | None = None
    status_rewrites: dict[str, GoInt] | None = None
    service: GoStr | None = None
    query: GoStr | None = None
    error_request_headers: list[GoStr] | None = None
    file_ignored: ClassVar[frozenset[str]] = frozenset({"nginxheaders"})


class SourceCriterion(TraefikModel):
    """Traefik's `dynamic.SourceCriterion`."""

    ip_strategy: IPStrategy | None = None
    request_header_name: GoStr | None = None
    request_host: GoBool | None = None


class RedisTLS(TraefikModel):
    """Traefik's `types.ClientTLS`."""

    ca: GoStr | None = None
    cert: GoStr | None = None
    key: GoStr | None = None
    insecure_skip_verify: GoBool | None = None


class Redis(TraefikModel):
    """Traefik's `dynamic.Redis`."""

    endpoints: list[GoStr] | None = None
    tls: RedisTLS | None = None
    username: GoStr | None = None
    password: GoStr | None = None
    db: GoInt | None = None
    pool_size: GoInt | None = None
    min_idle_conns: GoInt | None = None
    max_active_conns: GoInt | None = None
    read_timeout: Duration | None = None
    write_timeout: Duration | None = None
    dial_timeout: Duration | None = None


class RateLimit(TraefikModel):
    """Traefik's `dynamic.RateLimit`."""

    average: GoInt | None = None
    period: Duration | None = None
    burst: GoInt | None = None
    source_criterion: SourceCriterion | None = None
    redis: Redis | None = None


class RedirectRegex(TraefikModel):
    """Traefik's `dynamic.RedirectRegex`."""

    regex: GoStr | None = None
    replacement: GoStr | None = None
    permanent: GoBool | None = None
    file_ignored: ClassVar[frozenset[str]] = frozenset({"statuscode"})


class RedirectScheme(TraefikModel):
    """Traefik's `dynamic.RedirectScheme`."""

    scheme: GoStr | None = None
    port: GoStr | None = None
    permanent: GoBool | None = None
    file_ignored: ClassVar[frozenset[str]] = frozenset({"forcepermanentredirect"})


class BasicAuth(TraefikModel):
    """Traefik's `dynamic.BasicAuth`."""

    users: list[GoStr] | None = None
    users_file: GoStr | None = None
    realm: GoStr | None = None
    remove_header: GoBool | None = None
    header_field: GoStr | None = None


class DigestAuth(TraefikModel):
    """Traefik's `dynamic.DigestAuth`."""

    users: list[GoStr] | None = None
    users_file: GoStr | None = None
    remove_header: GoBool | None = None
    realm: GoStr | None = None
    header_field: GoStr | None = None


class ForwardAuthTLS(TraefikModel):
    """Traefik's `dynamic.ClientTLS`."""

    ca: GoStr | None = None
    cert: GoStr | None = None
    key: GoStr | None = None
    insecure_skip_verify: GoBool | None = None
    ca_optional: GoBool | None = None


class ForwardAuth(TraefikModel):
    """Traefik's `dynamic.ForwardAuth`."""

    address: GoStr | None = None
    tls: ForwardAuthTLS | None = None
    trust_forward_header: GoBool | None = None
    auth_response_headers: list[GoStr] | None = None
    auth_response_headers_regex: GoStr | None = None
    auth_request_headers: list[GoStr] | None = None
    max_response_body_size: GoInt | None = None
    add_auth_cookies_to_response: list[GoStr] | None = None
    header_field: GoStr | None = None
    forward_body: GoBool | None = None
    max_body_size: GoInt | None = None
    preserve_location_header: GoBool | None = None
    preserve_request_method: GoBool | None = None
    auth_signin_url: Annotated[GoStr | None, SINCE_3_7] = Field(default=None, alias="authSigninURL")


class InFlightReq(TraefikModel):
    """Traefik's `dynamic.InFlightReq`."""

    amount: GoInt | None = None
    source_criterion: SourceCriterion | None = None


class Buffering(TraefikModel):
    """Traefik's `dynamic.Buffering`."""

    max_request_body_bytes: GoInt | None = None
    mem_request_body_bytes: GoInt | None = None
    max_response_body_bytes: GoInt | None = None
    mem_response_body_bytes: GoInt | None = None
    retry_expression: GoStr | None = None
    file_ignored: ClassVar[frozenset[str]] = frozenset(
        {"disablerequestbuffer", "disableresponsebuffer"}
    )


class CircuitBreaker(TraefikModel):
    """Traefik's `dynamic.CircuitBreaker`."""

    expression: GoStr | None = None
    check_period: Duration | None = None
    fallback_duration: Duration | None = None
    recovery_duration: Duration | None = None
    response_code: GoInt | None = None


class Compress(TraefikModel):
    """Traefik's `dynamic.Compress`."""

    excluded_content_types: list[GoStr] | None = None
    included_content_types: list[GoStr] | None = None
    min_response_body_bytes: GoInt | None = None
    encodings: list[GoStr] | None = None
    default_encoding: GoStr | None = None


class TLSClientCertificateSubjectDNInfo(TraefikModel):
    """Traefik's `dynamic.TLSClientCertificateSubjectDNInfo`."""

    country: GoBool | None = None
    province: GoBool | None = None
    locality: GoBool | None = None
    organization: GoBool | None = None
    organizational_unit: GoBool | None = None
    common_name: GoBool | None = None
    serial_number: GoBool | None = None
    domain_component: GoBool | None = None


class TLSClientCertificateIssuerDNInfo(TraefikModel):
    """Traefik's `dynamic.TLSClientCertificateIssuerDNInfo`."""

    country: GoBool | None = None
    province: GoBool | None = None
    locality: GoBool | None = None
    organization: GoBool | None = None
    common_name: GoBool | None = None
    serial_number: GoBool | None = None
    domain_component: GoBool | None = None


class TLSClientCertificateInfo(TraefikModel):
    """Traefik's `dynamic.TLSClientCertificateInfo`."""

    not_after: GoBool | None = None
    not_before: GoBool | None = None
    sans: GoBool | None = None
    serial_number: GoBool | None = None
    subject: TLSClientCertificateSubjectDNInfo | None = None
    issuer: TLSClientCertificateIssuerDNInfo | None = None


class PassTLSClientCert(TraefikModel):
    """Traefik's `dynamic.PassTLSClientCert`."""

    pem: GoBool | None = None
    info: TLSClientCertificateInfo | None = None


class Retry(TraefikModel):
    """Traefik's `dynamic.Retry`."""

    attempts: GoInt | None = None
    timeout: Annotated[Duration | None, SINCE_3_7] = None
    initial_interval: Duration | None = None
    max_request_body_bytes: Annotated[GoInt | None, SINCE_3_7] = None
    status: Annotated[list[GoStr] | None, SINCE_3_7] = None
    disable_retry_on_network_error: Annotated[GoBool | None, SINCE_3_7] = None
    retry_non_idempotent_method: Annotated[GoBool | None, SINCE_3_7] = None


class ContentType(TraefikModel):
    """Traefik's `dynamic.ContentType`."""

    auto_detect: GoBool | None = None


class GrpcWeb(TraefikModel):
    """Traefik's `dynamic.GrpcWeb`."""

    allow_origins: list[GoStr] | None = None


class Middleware(TraefikModel):
    """Traefik's `dynamic.Middleware`."""

    add_prefix: AddPrefix | None = None
    strip_prefix: StripPrefix | None = None
    strip_prefix_regex: StripPrefixRegex | None = None
    replace_path: ReplacePath | None = None
    replace_path_regex: ReplacePathRegex | None = None
    chain: Chain | None = None
    ip_white_list: IPWhiteList | None = None
    ip_allow_list: IPAllowList | None = None
    headers: Headers | None = None
    encoded_characters: Annotated[EncodedCharacters | None, SINCE_3_7] = None
    errors: ErrorPage | None = None
    rate_limit: RateLimit | None = None
    redirect_regex: RedirectRegex | None = None
    redirect_scheme: RedirectScheme | None = None
    basic_auth: BasicAuth | None = None
    digest_auth: DigestAuth | None = None
    forward_auth: ForwardAuth | None = None
    in_flight_req: InFlightReq | None = None
    buffering: Buffering | None = None
    circuit_breaker: CircuitBreaker | None = None
    compress: Annotated[Compress | None, ALLOW_EMPTY] = None
    pass_tls_client_cert: PassTLSClientCert | None = Field(default=None, alias="passTLSClientCert")
    retry: Retry | None = None
    content_type: Annotated[ContentType | None, ALLOW_EMPTY] = None
    grpc_web: GrpcWeb | None = None
    plugin: dict[str, dict[str, Any]] | None = None
    file_ignored: ClassVar[frozenset[str]] = frozenset(
        {
            "approot",
            "authtlspasscertificatetoupstream",
            "requestheadermodifier",
            "requestredirect",
            "responseheadermodifier",
            "rewritetarget",
            "snippet",
            "upstreamvhost",
            "urlrewrite",
        }
    )


class RouterModel(TraefikModel):
    """Traefik's `dynamic.Model`."""

    middlewares: list[GoStr] | None = None
    tls: Annotated[RouterTLS | None, ALLOW_EMPTY] = None
    observability: RouterObservability | None = None
    file_ignored: ClassVar[frozenset[str]] = frozenset(
        {"defaultrulesyntax", "deniedencodedpathcharacters"}
    )


class Certificate(TraefikModel):
    """Traefik's `tls.Certificate`."""

    cert_file: GoStr | None = None
    key_file: GoStr | None = None


class ForwardingTimeouts(TraefikModel):
    """Traefik's `dynamic.ForwardingTimeouts`."""

    dial_timeout: Duration | None = None
    response_header_timeout: Duration | None = None
    idle_conn_timeout: Duration | None = None
    read_idle_timeout: Duration | None = None
    ping_timeout: Duration | None = None
    read_timeout: Annotated[Duration | None, SINCE_3_7] = None
    write_timeout: Annotated[Duration | None, SINCE_3_7] = None


class Spiffe(TraefikModel):
    """Traefik's `dynamic.Spiffe`."""

    ids: list[GoStr] | None = None
    trust_domain: GoStr | None = None


class ServersTransport(TraefikModel):
    """Traefik's `dynamic.ServersTransport`."""

    server_name: GoStr | None = None
    insecure_skip_verify: GoBool | None = None
    root_cas: list[GoStr] | None = Field(default=None, alias="rootCAs")
    certificates: list[Certificate] | None = None
    cipher_suites: Annotated[list[GoStr] | None, SINCE_3_7] = None
    min_version: Annotated[GoStr | None, SINCE_3_7] = None
    max_version: Annotated[GoStr | None, SINCE_3_7] = None
    max_idle_conns_per_host: GoInt | None = None
    forwarding_timeouts: ForwardingTimeouts | None = None
    disable_http2: GoBool | None = Field(default=None, alias="disableHTTP2")
    peer_cert_uri: GoStr | None = Field(default=None, alias="peerCertURI")
    spiffe: Annotated[Spiffe | None, ALLOW_EMPTY] = None


class HTTPConfig(TraefikModel):
    """Traefik's `dynamic.HTTPConfiguration`."""

    routers: dict[str, Router] | None = None
    services: dict[str, Service] | None = None
    middlewares: dict[str, Middleware] | None = None
    models: dict[str, RouterModel] | None = None
    servers_transports: Annotated[dict[str, ServersTransport] | None, LABEL_IGNORED] = None


class TCPRouterTLS(TraefikModel):
    """Traefik's `dynamic.RouterTCPTLSConfig`."""

    passthrough: GoBool | None = None
    options: GoStr | None = None
    cert_resolver: GoStr | None = None
    domains: list[Domain] | None = None


class TCPRouter(TraefikModel):
    """Traefik's `dynamic.TCPRouter`."""

    entry_points: list[GoStr] | None = None
    middlewares: list[GoStr] | None = None
    service: GoStr | None = None
    rule: GoStr | None = None
    rule_syntax: GoStr | None = None
    priority: GoInt | None = None
    tls: Annotated[TCPRouterTLS | None, ALLOW_EMPTY] = None


class TCPServer(TraefikModel):
    """Traefik's `dynamic.TCPServer`."""

    address: Annotated[GoStr | None, LABEL_IGNORED] = None
    tls: GoBool | None = None
    # Only the label provider reads `port` (it builds `address`); a file's is never used.
    file_ignored: ClassVar[frozenset[str]] = frozenset({"port"})
    label_only: ClassVar[frozenset[str]] = frozenset({"port"})


class ProxyProtocol(TraefikModel):
    """Traefik's `dynamic.ProxyProtocol`."""

    version: GoInt | None = None


class TCPServerHealthCheck(TraefikModel):
    """Traefik's `dynamic.TCPServerHealthCheck`."""

    port: GoInt | None = None
    send: GoStr | None = None
    expect: GoStr | None = None
    interval: Duration | None = None
    unhealthy_interval: Duration | None = None
    timeout: Duration | None = None


class TCPLoadBalancer(TraefikModel):
    """Traefik's `dynamic.TCPServersLoadBalancer`."""

    servers: Annotated[list[TCPServer] | None, SliceAsStruct("server")] = None
    servers_transport: GoStr | None = None
    proxy_protocol: Annotated[ProxyProtocol | None, ALLOW_EMPTY] = None
    termination_delay: GoInt | None = None
    health_check: Annotated[TCPServerHealthCheck | None, ALLOW_EMPTY] = None


class TCPWeightedService(TraefikModel):
    """Traefik's `dynamic.TCPWRRService`."""

    name: GoStr | None = None
    weight: GoInt | None = None


class TCPWeighted(TraefikModel):
    """Traefik's `dynamic.TCPWeightedRoundRobin`."""

    services: list[TCPWeightedService] | None = None
    health_check: Annotated[ServiceHealthCheck | None, ALLOW_EMPTY] = None


class TCPService(TraefikModel):
    """Traefik's `dynamic.TCPService`."""

    load_balancer: TCPLoadBalancer | None = None
    weighted: Annotated[TCPWeighted | None, LABEL_IGNORED] = None


class TCPInFlightConn(TraefikModel):
    """Traefik's `dynamic.TCPInFlightConn`."""

    amount: GoInt | None = None


class TCPIPWhiteList(TraefikModel):
    """Traefik's `dynamic.TCPIPWhiteList`."""

    source_range: list[GoStr] | None = None


class TCPIPAllowList(TraefikModel):
    """Traefik's `dynamic.TCPIPAllowList`."""

    source_range: list[GoStr] | None = None


class TCPMiddleware(TraefikModel):
    """Traefik's `dynamic.TCPMiddleware`."""

    in_flight_conn: TCPInFlightConn | None = None
    ip_white_list: TCPIPWhiteList | None = None
    ip_allow_list: TCPIPAllowList | None = None


class TCPServersTransportTLS(TraefikModel):
    """Traefik's `dynamic.TLSClientConfig`."""

    server_name: GoStr | None = None
    insecure_skip_verify: GoBool | None = None
    root_cas: list[GoStr] | None = Field(default=None, alias="rootCAs")
    certificates: list[Certificate] | None = None
    peer_cert_uri: GoStr | None = Field(default=None, alias="peerCertURI")
    spiffe: Annotated[Spiffe | None, ALLOW_EMPTY] = None


class TCPServersTransport(TraefikModel):
    """Traefik's `dynamic.TCPServersTransport`."""

    dial_keep_alive: Duration | None = None
    dial_timeout: Duration | None = None
    proxy_protocol: Annotated[ProxyProtocol | None, ALLOW_EMPTY] = None
    termination_delay: Duration | None = None
    tls: Annotated[TCPServersTransportTLS | None, ALLOW_EMPTY] = None


class TCPConfig(TraefikModel):
    """Traefik's `dynamic.TCPConfiguration`."""

    routers: dict[str, TCPRouter] | None = None
    services: dict[str, TCPService] | None = None
    middlewares: dict[str, TCPMiddleware] | None = None
    servers_transports: Annotated[dict[str, TCPServersTransport] | None, LABEL_IGNORED] = None
    file_ignored: ClassVar[frozenset[str]] = frozenset({"models"})


class UDPRouter(TraefikModel):
    """Traefik's `dynamic.UDPRouter`."""

    entry_points: list[GoStr] | None = None
    service: GoStr | None = None


class UDPServer(TraefikModel):
    """Traefik's `dynamic.UDPServer`."""

    address: Annotated[GoStr | None, LABEL_IGNORED] = None
    file_ignored: ClassVar[frozenset[str]] = frozenset({"port"})
    label_only: ClassVar[frozenset[str]] = frozenset({"port"})


class UDPLoadBalancer(TraefikModel):
    """Traefik's `dynamic.UDPServersLoadBalancer`."""

    servers: Annotated[list[UDPServer] | None, SliceAsStruct("server")] = None


class UDPWeightedService(TraefikModel):
    """Traefik's `dynamic.UDPWRRService`."""

    name: GoStr | None = None
    weight: GoInt | None = None


class UDPWeighted(TraefikModel):
    """Traefik's `dynamic.UDPWeightedRoundRobin`."""

    services: list[UDPWeightedService] | None = None


class UDPService(TraefikModel):
    """Traefik's `dynamic.UDPService`."""

    load_balancer: UDPLoadBalancer | None = None
    weighted: Annotated[UDPWeighted | None, LABEL_IGNORED] = None


class UDPConfig(TraefikModel):
    """Traefik's `dynamic.UDPConfiguration`."""

    routers: dict[str, UDPRouter] | None = None
    services: dict[str, UDPService] | None = None


class StoreCertificate(TraefikModel):
    """Traefik's `tls.CertAndStores`."""

    cert_file: GoStr | None = None
    key_file: GoStr | None = None
    stores: list[GoStr] | None = None


class ClientAuth(TraefikModel):
    """Traefik's `tls.ClientAuth`."""

    ca_files: list[GoStr] | None = None
    client_auth_type: GoStr | None = None


class TLSOptions(TraefikModel):
    """Traefik's `tls.Options`."""

    min_version: GoStr | None = None
    max_version: GoStr | None = None
    cipher_suites: list[GoStr] | None = None
    curve_preferences: list[GoStr] | None = None
    client_auth: ClientAuth | None = None
    sni_strict: GoBool | None = None
    alpn_protocols: list[GoStr] | None = None
    disable_session_tickets: GoBool | None = None
    prefer_server_cipher_suites: GoBool | None = None


class GeneratedCert(TraefikModel):
    """Traefik's `tls.GeneratedCert`."""

    resolver: GoStr | None = None
    domain: Domain | None = None


class TLSStore(TraefikModel):
    """Traefik's `tls.Store`."""

    default_certificate: Annotated[Certificate | None, LABEL_IGNORED] = None
    default_generated_cert: GeneratedCert | None = None


class TLSConfig(TraefikModel):
    """Traefik's `dynamic.TLSConfiguration`."""

    certificates: Annotated[list[StoreCertificate] | None, LABEL_IGNORED] = None
    options: Annotated[dict[str, TLSOptions] | None, LABEL_IGNORED] = None
    stores: dict[str, TLSStore] | None = None


class DynamicConfig(TraefikModel):
    """Traefik's `dynamic.Configuration`."""

    http: HTTPConfig | None = None
    tcp: TCPConfig | None = None
    udp: UDPConfig | None = None
    tls: TLSConfig | None = None


# ---------------------------------------------------------------------------------------
# Introspection: one table per model, shared by parsing, dumping and the label translator


class Shape(Enum):
    """How a field holds its value."""

    LEAF = "scalar"
    LEAF_LIST = "list of scalars"
    LEAF_MAP = "map of scalars"
    OBJECT = "object"
    OBJECT_LIST = "list of objects"
    OBJECT_MAP = "map of named objects"
    RAW_MAP = "map of raw values"


@dataclass(frozen=True)
class FieldSpec:
    """One field of a model: its attribute, its Traefik key, its shape and traits."""

    attr: str
    key: str
    shape: Shape
    leaf: Leaf | None = None
    model: type[TraefikModel] | None = None
    allow_empty: bool = False
    label_ignored: bool = False
    slice_label: str | None = None
    since: str | None = None


@cache
def field_specs(model: type[TraefikModel]) -> Mapping[str, FieldSpec]:
    """The fields of `model` in Traefik's order, keyed by their lower-case Traefik key."""
    specs: dict[str, FieldSpec] = {}
    for attr, info in model.model_fields.items():
        key = info.alias or attr
        shape, leaf, inner = _shape(info.annotation)
        slice_labels = [m.label for m in info.metadata if isinstance(m, SliceAsStruct)]
        since = [m.version for m in info.metadata if isinstance(m, Since)]
        specs[key.lower()] = FieldSpec(
            attr=attr,
            key=key,
            shape=shape,
            leaf=leaf,
            model=inner,
            allow_empty=ALLOW_EMPTY in info.metadata,
            label_ignored=LABEL_IGNORED in info.metadata,
            slice_label=slice_labels[0] if slice_labels else None,
            since=since[0] if since else None,
        )
    return types.MappingProxyType(specs)


def _shape(annotation: Any) -> tuple[Shape, Leaf | None, type[TraefikModel] | None]:
    kind = _without_none(annotation)
    origin = get_origin(kind)
    if origin is list:
        (item,) = get_args(kind)
        if _is_model(item):
            return Shape.OBJECT_LIST, None, item
        return Shape.LEAF_LIST, _leaf(item), None
    if origin is dict:
        _, value = get_args(kind)
        if _is_model(value):
            return Shape.OBJECT_MAP, None, value
        if get_origin(value) is dict:
            return Shape.RAW_MAP, None, None
        return Shape.LEAF_MAP, _leaf(value), None
    if _is_model(kind):
        return Shape.OBJECT, None, kind
    return Shape.LEAF, _leaf(kind), None


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, TraefikModel)


def _leaf(kind: Any) -> Leaf:
    found = [item for item in getattr(kind, "__metadata__", ()) if isinstance(item, Leaf)]
    if not found:
        raise TypeError(f"model field type {kind!r} is not a Traefik scalar")
    return found[0]


# ---------------------------------------------------------------------------------------
# parse_config: Traefik's decoding rules, then validation


_STANDALONE = "cannot be a standalone element (an empty object or map is refused)"


class _Dropped:
    """A value Traefik's decoder discards (an allow-empty struct given `false`)."""


_DROPPED = _Dropped()


class _BadKeyError(Exception):
    def __init__(self, path: tuple[str | int, ...], reason: str) -> None:
        super().__init__(reason)
        self.where = dotted(path)
        self.reason = reason


def dotted(path: tuple[str | int, ...]) -> str:
    """`("http", "routers", "r", "middlewares", 0)` as `http.routers.r.middlewares[0]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _is_mapping(value: Any) -> bool:
    # The exact type first: an ABC check costs more than the rest of a key's parse.
    return type(value) is dict or isinstance(value, Mapping)


def parse_config(data: Mapping[str, Any], *, source: str) -> DynamicConfig:
    """Validate one file's content (a YAML/TOML document as a mapping) as Traefik would.

    Raises:
        ConfigError: naming `source` and the dotted path of the bad key, never its value.
    """
    try:
        return DynamicConfig.model_validate(_top(data))
    except _BadKeyError as exc:
        where = f"key {exc.where!r}" if exc.where else "the configuration"
        raise ConfigError(f"{source}: {where} {exc.reason}") from exc
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc)}") from exc


def _top(data: Any) -> dict[str, Any]:
    if not _is_mapping(data):
        raise _BadKeyError((), "must be a mapping")
    out: dict[str, Any] = {}
    specs = field_specs(DynamicConfig)
    for key, value in data.items():
        spec = specs.get(str(key).lower())
        # Traefik decodes only http, tcp, udp and tls; other top-level keys are ignored.
        if spec is None:
            continue
        if spec.key in out:
            raise _BadKeyError((spec.key,), "is given twice (keys differ only in case)")
        if value is not None:
            out[spec.key] = _value(spec, value, (spec.key,))
    return {key: value for key, value in out.items() if value is not _DROPPED}


def _object(model: type[TraefikModel], raw: Any, path: tuple[str | int, ...]) -> dict[str, Any]:
    if not _is_mapping(raw):
        raise _BadKeyError(path, "must be a mapping")
    specs = field_specs(model)
    out: dict[str, Any] = {}
    seen: set[str] = set()
    for key, value in raw.items():
        name = str(key)
        spec = specs.get(name.lower())
        if spec is None:
            if name.lower() in model.file_ignored:
                # Limitation: Traefik still checks the sub-keys of these; they are dropped unread.
                continue
            raise _BadKeyError((*path, name), "is not a known key")
        if spec.key in seen:
            # Limitation: stricter than Traefik, which keeps one of the two at random.
            raise _BadKeyError((*path, spec.key), "is given twice (keys differ only in case)")
        seen.add(spec.key)
        # A null value is skipped by Traefik's decoder, as if the key were absent.
        if value is None:
            continue
        if spec.shape is Shape.LEAF and type(value) in _PLAIN_SCALARS:
            # Most keys: a scalar taken as it is (checked by the model's validators).
            out[spec.key] = value
            continue
        converted = _value(spec, value, (*path, spec.key))
        if converted is not _DROPPED:
            out[spec.key] = converted
    return out


_PLAIN_SCALARS = frozenset({str, int, bool, float})


def _value(spec: FieldSpec, value: Any, path: tuple[str | int, ...]) -> Any:
    if spec.shape is Shape.LEAF:
        return _scalar(value, path)
    if spec.shape is Shape.OBJECT:
        return _struct(spec, value, path)
    if spec.shape in (Shape.OBJECT_MAP, Shape.LEAF_MAP, Shape.RAW_MAP):
        return _map(spec, value, path)
    if spec.shape is Shape.OBJECT_LIST:
        return _object_list(spec, value, path)
    if spec.shape is Shape.LEAF_LIST:
        return _leaf_list(value, path)
    return _scalar(value, path)


def _struct(spec: FieldSpec, value: Any, path: tuple[str | int, ...]) -> Any:
    assert spec.model is not None
    if _is_mapping(value):
        if not spec.allow_empty and all(item is None for item in value.values()):
            raise _BadKeyError(path, _STANDALONE)
        return _object(spec.model, value, path)
    if not spec.allow_empty:
        raise _BadKeyError(path, _STANDALONE)
    # An allow-empty struct given `true` or "" is created empty; any other scalar drops it.
    if value is True or (isinstance(value, str) and value.lower() in ("", "true")):
        return {}
    return _DROPPED


def _map(spec: FieldSpec, value: Any, path: tuple[str | int, ...]) -> dict[str, Any]:
    if not _is_mapping(value):
        raise _BadKeyError(path, "must be a mapping")
    entries = {str(name): entry for name, entry in value.items() if entry is not None}
    if not entries:
        raise _BadKeyError(path, _STANDALONE)
    return {name: _entry(spec, entry, (*path, name)) for name, entry in entries.items()}


def _entry(spec: FieldSpec, value: Any, path: tuple[str | int, ...]) -> Any:
    if spec.shape is Shape.LEAF_MAP:
        return _scalar(value, path)
    if not _is_mapping(value):
        raise _BadKeyError(path, "must be a mapping")
    if spec.shape is Shape.RAW_MAP:
        # Plugin configurations are the plugin's business: kept as written.
        return _raw(value)
    assert spec.model is not None
    return _object(spec.model, value, path)


def _raw(value: Any) -> Any:
    if _is_mapping(value):
        return {str(key): _raw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_raw(item) for item in value]
    return value


def _object_list(spec: FieldSpec, value: Any, path: tuple[str | int, ...]) -> list[Any]:
    assert spec.model is not None
    if not isinstance(value, list):
        raise _BadKeyError(path, "must be a list")
    return [_object(spec.model, item, (*path, index)) for index, item in enumerate(value)]


def _leaf_list(value: Any, path: tuple[str | int, ...]) -> Any:
    if not isinstance(value, list):
        text = str(_to_str(_scalar(value, path)))
        # Traefik splits a string given for a list on commas (list items are never split).
        return [part.strip() for part in text.split(",")] if text else _DROPPED
    for index, item in enumerate(value):
        _scalar(item, (*path, index))
    return list(value)


def _scalar(value: Any, path: tuple[str | int, ...]) -> Any:
    if value is None or type(value) is list or _is_mapping(value):
        raise _BadKeyError(path, "must be a single value")
    return value


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = dotted(tuple(first["loc"]))
    reason = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"key {where!r}: {reason[:1].lower()}{reason[1:]}{more}"


# ---------------------------------------------------------------------------------------
# dump_config: the canonical dict a serializer writes


def dump_config(config: DynamicConfig) -> dict[str, Any]:
    """Traefik's keys, no nulls, sections in a fixed order, names sorted, no empty maps.

    Traefik refuses an empty map or struct (`routers: {}`) as "a standalone element", so
    they are dropped wherever they occur, and a parent left empty goes with them; an
    allow-empty struct stays (`tls: {}` is what enables TLS), as does a named entry.
    """
    return _dump_object(config)


def _dump_object(obj: TraefikModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    given = obj.__pydantic_fields_set__
    # Every field defaults to None, so only the fields given can hold a value; a model
    # has dozens of fields (one per middleware kind) and a file sets a few.
    for spec in field_specs(type(obj)).values():
        if spec.attr not in given:
            continue
        value = getattr(obj, spec.attr)
        if value is None:
            continue
        dumped = _dump_value(spec, value)
        if dumped in ({}, []) and not (spec.shape is Shape.OBJECT and spec.allow_empty):
            continue
        out[spec.key] = dumped
    return out


def _dump_value(spec: FieldSpec, value: Any) -> Any:
    if spec.shape is Shape.OBJECT:
        return _dump_object(value)
    if spec.shape is Shape.OBJECT_LIST:
        return [_dump_object(item) for item in value]
    if spec.shape is Shape.OBJECT_MAP:
        return {name: _dump_object(value[name]) for name in sorted(value)}
    if spec.shape in (Shape.LEAF_MAP, Shape.RAW_MAP):
        return {name: copy.deepcopy(value[name]) for name in sorted(value)}
    if spec.shape is Shape.LEAF_LIST:
        return list(value)
    return value


# ---------------------------------------------------------------------------------------
# Names and references


SECTIONS: tuple[str, ...] = (
    "http.routers",
    "http.services",
    "http.middlewares",
    "http.models",
    "http.serversTransports",
    "tcp.routers",
    "tcp.services",
    "tcp.middlewares",
    "tcp.serversTransports",
    "udp.routers",
    "udp.services",
    "tls.options",
    "tls.stores",
)
_SECTION_PARTS = tuple((section, *section.split(".")) for section in SECTIONS)

_NOUNS = {
    "http.routers": "router",
    "http.services": "service",
    "http.middlewares": "middleware",
    "http.models": "model",
    "http.serversTransports": "servers transport",
    "tcp.routers": "tcp router",
    "tcp.services": "tcp service",
    "tcp.middlewares": "tcp middleware",
    "tcp.serversTransports": "tcp servers transport",
    "udp.routers": "udp router",
    "udp.services": "udp service",
    "tls.options": "tls options",
    "tls.stores": "tls store",
    "tls.certificates": "tls certificate",
}

# Where an object names another: a path of Traefik keys (`[]` walks a list), and the
# section the name is looked up in.
_REFERENCE_PATHS: dict[str, tuple[tuple[str, str], ...]] = {
    "http.routers": (
        ("service", "http.services"),
        ("middlewares[]", "http.middlewares"),
        ("tls.options", "tls.options"),
        ("parentRefs[]", "http.routers"),
    ),
    "http.services": (
        ("middlewares[]", "http.middlewares"),
        ("loadBalancer.serversTransport", "http.serversTransports"),
        ("highestRandomWeight.services[].name", "http.services"),
        ("weighted.services[].name", "http.services"),
        ("mirroring.service", "http.services"),
        ("mirroring.mirrors[].name", "http.services"),
        ("failover.service", "http.services"),
        ("failover.fallback", "http.services"),
    ),
    "http.middlewares": (
        ("chain.middlewares[]", "http.middlewares"),
        ("errors.service", "http.services"),
    ),
    "http.models": (
        ("middlewares[]", "http.middlewares"),
        ("tls.options", "tls.options"),
    ),
    "tcp.routers": (
        ("service", "tcp.services"),
        ("middlewares[]", "tcp.middlewares"),
        ("tls.options", "tls.options"),
    ),
    "tcp.services": (
        ("loadBalancer.serversTransport", "tcp.serversTransports"),
        ("weighted.services[].name", "tcp.services"),
    ),
    "udp.routers": (("service", "udp.services"),),
    "udp.services": (("weighted.services[].name", "udp.services"),),
}


def describe(section: str, name: str) -> str:
    """`("http.routers", "api")` as `router 'api'`, for messages."""
    return f"{_NOUNS.get(section, section)} {name!r}"


@dataclass(frozen=True)
class Reference:
    """One place where an object names another.

    `section` and `name` are what is looked up (`name` as written, `name@provider`
    included); `owner_section`, `owner_name` and `field` say where it is written.
    """

    section: str
    name: str
    owner_section: str
    owner_name: str
    field: str

    @property
    def referrer(self) -> str:
        return f"{describe(self.owner_section, self.owner_name)} ({self.field})"

    @property
    def qualified(self) -> bool:
        """True for `name@provider`, which Traefik resolves verbatim."""
        return "@" in self.name


def defined_names(config: DynamicConfig) -> dict[str, set[str]]:
    """The names each section defines, for every section in `SECTIONS`."""
    return {section: set(_section(config, section)) for section in SECTIONS}


def dumped_names(dumped: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """`defined_names` of what `dump_config` returned, as (section, name) in file order.

    Read from the dict rather than the models: the keys are canonical there already.
    """
    for section, protocol, key in _SECTION_PARTS:
        yield from ((section, name) for name in dumped.get(protocol, {}).get(key, {}))


def references(config: DynamicConfig) -> list[Reference]:
    """Every reference from one object to another, in section and name order."""
    return [reference for reference, _ in _reference_slots(config)]


def rename(config: DynamicConfig, mapping: Callable[[str, str], str]) -> DynamicConfig:
    """A copy with every definition and every bare reference renamed by `mapping`.

    `mapping(section, name)` is applied to each defined name and to each reference
    without `@` (a `name@provider` reference is left untouched), including references to
    names this configuration does not define: the mapping decides what to keep.

    Raises:
        ConfigError: if two names of one section map to the same name.
    """
    renamed = config.model_copy(deep=True)
    for section in SECTIONS:
        _rename_section(renamed, section, mapping)
    for reference, slot in _reference_slots(renamed):
        if not reference.qualified:
            slot.set(mapping(reference.section, reference.name))
    return renamed


def _rename_section(
    config: DynamicConfig, section: str, mapping: Callable[[str, str], str]
) -> None:
    entries = _section(config, section)
    if not entries:
        return
    result: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name in sorted(entries):
        final = mapping(section, name)
        if final in result:
            raise ConfigError(
                f"{describe(section, origin[final])} and {describe(section, name)} "
                f"would both be named {final!r}"
            )
        result[final] = entries[name]
        origin[final] = name
    holder, attr = _section_holder(config, section)
    setattr(holder, attr, result)


def _section(config: DynamicConfig, section: str) -> dict[str, Any]:
    found = _section_holder(config, section)
    if found is None:
        return {}
    holder, attr = found
    entries: dict[str, Any] | None = getattr(holder, attr)
    return entries or {}


def _section_holder(config: DynamicConfig, section: str) -> Any:
    protocol, key = section.split(".")
    holder: TraefikModel | None = getattr(config, protocol)
    if holder is None:
        return None
    return holder, field_specs(type(holder))[key.lower()].attr


@dataclass(frozen=True)
class _Slot:
    """Where a referenced name is stored: a model attribute or a list index."""

    holder: Any
    index: str | int

    def get(self) -> Any:
        if isinstance(self.index, int):
            return self.holder[self.index]
        return getattr(self.holder, self.index)

    def set(self, value: str) -> None:
        if isinstance(self.index, int):
            self.holder[self.index] = value
        else:
            setattr(self.holder, self.index, value)


def _reference_slots(config: DynamicConfig) -> Iterator[tuple[Reference, _Slot]]:
    for owner_section, paths in _REFERENCE_PATHS.items():
        entries = _section(config, owner_section)
        for owner_name in sorted(entries):
            for path, target in paths:
                steps = tuple(path.replace("[]", ".[]").split("."))
                for field, slot in _walk(entries[owner_name], steps, ""):
                    reference = Reference(target, slot.get(), owner_section, owner_name, field)
                    yield reference, slot
    yield from _certificate_store_slots(config)


def _walk(obj: Any, steps: tuple[str, ...], field: str) -> Iterator[tuple[str, _Slot]]:
    step, rest = steps[0], steps[1:]
    if step == "[]":
        for index, item in enumerate(obj):
            here = f"{field}[{index}]"
            if rest:
                yield from _walk(item, rest, here)
            elif isinstance(item, str):
                yield here, _Slot(obj, index)
        return
    model: type[TraefikModel] = type(obj)
    spec = field_specs(model)[step.lower()]
    value = getattr(obj, spec.attr)
    here = f"{field}.{spec.key}" if field else spec.key
    if value is None:
        return
    if rest:
        yield from _walk(value, rest, here)
    elif isinstance(value, str):
        yield here, _Slot(obj, spec.attr)


def _certificate_store_slots(config: DynamicConfig) -> Iterator[tuple[Reference, _Slot]]:
    certificates = config.tls.certificates if config.tls is not None else None
    for number, certificate in enumerate(certificates or []):
        for index, store in enumerate(certificate.stores or []):
            reference = Reference(
                "tls.stores", store, "tls.certificates", str(number), f"stores[{index}]"
            )
            yield reference, _Slot(certificate.stores, index)
