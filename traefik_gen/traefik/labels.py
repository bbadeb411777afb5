"""Traefik labels (Dokploy's `application."labelsSwarm"`) as file-provider configuration.

The labels are read the way Traefik's label parser (paerser) and its Swarm provider read
them, so that a label set means here what it would mean on a Swarm service:

- only keys starting (in any case) with `traefik.http`, `traefik.tcp`, `traefik.udp` or
  `traefik.tls.stores.default` are configuration; `traefik.enable`, `traefik.docker.*` and
  `traefik.swarm.*` are the provider's own; every other key is ignored;
- keys are sorted and split on `.`, `domains[0]` giving `domains` and `[0]`; siblings that
  differ only in case are one node, named by the first spelling; field names match Go
  field names in any case, map levels (router, header, plugin names) are taken literally;
- scalars convert like Go (`ParseBool`, base-10 integers, durations with bare seconds),
  lists are one comma-separated value, struct lists are indexed and ordered by the sorted
  keys (`[10]` before `[2]`), a load balancer's servers are one singular `server` struct;
- a struct or map given as a bare key is refused, except the allow-empty ones (`tls=true`),
  and fields Traefik tags `label:"-"` are checked but not applied.

The Swarm provider then completes what it can and nothing more: it cannot detect ports
and this tool cannot render Traefik's default rule, so every service needs
`loadbalancer.server.port` (or `server.url`) and every router a rule.

Field matching is driven by the model in `traefik_gen.traefik.model`, never by a second
list of keys. No error message carries a label value: labels can hold basic-auth users.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from traefik_gen.errors import LabelError, RuleError
from traefik_gen.traefik.hosts import normalize_host, usable_url
from traefik_gen.traefik.model import (
    DynamicConfig,
    FieldSpec,
    Leaf,
    Reference,
    Shape,
    TraefikModel,
    check_duration,
    defined_names,
    describe,
    field_specs,
    go_bool,
    go_int,
    references,
    rename,
)
from traefik_gen.traefik.regex import check_re2
from traefik_gen.traefik.rules import parse_rule

__all__ = ["labels_to_config"]

logger = logging.getLogger(__name__)

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")

_ROOT = "traefik"
_DYNAMIC = ("traefik.http", "traefik.tcp", "traefik.udp", "traefik.tls.stores.default")
_PROVIDER = ("traefik.enable", "traefik.docker.", "traefik.swarm.")
# What the Swarm provider decodes from `traefik.docker.*` (deprecated) and `traefik.swarm.*`.
_PROVIDER_FIELDS: dict[str, dict[str, Leaf]] = {
    "docker": {"network": Leaf.STR, "lbswarm": Leaf.BOOL, "allownonrunning": Leaf.BOOL},
    "swarm": {"network": Leaf.STR, "lbswarm": Leaf.BOOL},
}
_HTTP_PARTS = ("routers", "services", "middlewares")
_SCHEMES = ("http", "https", "h2c")
_STANDALONE = "cannot be a standalone element: give it sub-keys"

Path = tuple[str | int, ...]


def labels_to_config(
    labels: Mapping[str, str],
    *,
    exposed_by_default: bool,
    namespace: Callable[[str, str], str],
    server_url: Callable[[int, str], str],
    foreign_exists: Callable[[str, str], bool],
    source: str,
) -> DynamicConfig | None:
    """The file configuration a label set stands for, or None if it is not enabled.

    Args:
        labels: the label map (`traefik.*` keys; others are ignored).
        exposed_by_default: Traefik's `exposedByDefault`, used without `traefik.enable`.
        namespace: `(section, name) -> final name` of each object the labels define.
        server_url: `(port, scheme) -> URL` of the backend; TCP and UDP servers use its
            `host:port`.
        foreign_exists: whether another file of the directory defines `(section, name)`;
            a bare reference to such an object is kept as written.
        source: where the labels come from, for messages.

    Raises:
        LabelError: naming `source` and the label key (never its value).
    """
    reader = _Reader(source)
    for key in labels:
        # Every other control character already fails the tokenizer; NUL would be slugged.
        if not key.isprintable():
            raise LabelError(f"{source}: label {key!r} contains a control character")
    if not reader.enabled(labels, exposed_by_default):
        logger.debug("%s: labels not enabled", source)
        return None
    root = reader.tree(labels)
    if root is None:
        return DynamicConfig()
    raw = reader.struct_fields(root, DynamicConfig, ())
    _complete(raw, reader, server_url)
    config = reader.validated(raw)
    _check_tls_defaults(config, reader)
    _check_rules(config, reader)
    _check_references(config, reader, foreign_exists)
    _check_values(config, reader, foreign_exists)
    result = _namespaced(config, reader, namespace)
    count = sum(len(names) for names in defined_names(result).values())
    logger.debug("%s: labels define %d object(s)", source, count)
    return result


# ---------------------------------------------------------------------------------------
# The label tree


@dataclass
class _Node:
    """One key segment: `key` is the label key up to it and `label` the first whole label
    key through it, as first spelled."""

    name: str
    key: str
    label: str
    value: str | None = None
    children: list[_Node] = field(default_factory=list)

    def child(self, name: str, key: str, label: str) -> _Node:
        # paerser merges siblings with strings.EqualFold: the first spelling names them.
        for node in self.children:
            if node.name.lower() == name.lower():
                return node
        node = _Node(name, key, label)
        self.children.append(node)
        return node


class _Dropped:
    """A value Traefik does not apply (a disabled allow-empty struct, a `label:"-"` field)."""


_DROPPED = _Dropped()


def _matches(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key[: len(prefix)].lower() == prefix for prefix in prefixes)


@cache
def _label_fields(model: type[TraefikModel]) -> dict[str, FieldSpec]:
    """The label words of a model: its keys, `server` for servers, label-only keys."""
    words = {(spec.slice_label or spec.key).lower(): spec for spec in field_specs(model).values()}
    for key in model.label_only:
        words[key] = FieldSpec(attr=key, key=key, shape=Shape.LEAF, leaf=Leaf.STR)
    return words


class _Reader:
    """One translation: the source, and where each produced value came from."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.keys: dict[Path, str] = {}

    def error(self, key: str, reason: str) -> LabelError:
        return LabelError(f"{self.source}: label {key!r} {reason}")

    def node_error(self, node: _Node, reason: str) -> LabelError:
        if node.key == node.label:
            return self.error(node.key, reason)
        return LabelError(f"{self.source}: label {node.label!r}: {node.name!r} {reason}")

    def key_for(self, path: Path) -> str:
        """The label key that produced `path`, or of its nearest ancestor."""
        for end in range(len(path), 0, -1):
            found = self.keys.get(path[:end])
            if found is not None:
                return found
        return _ROOT

    # -- provider labels --------------------------------------------------------------

    def enabled(self, labels: Mapping[str, str], exposed_by_default: bool) -> bool:
        enable = exposed_by_default
        groups: set[str] = set()
        for key in sorted(k for k in labels if _matches(k, _PROVIDER)):
            segments = self.segments(key, labels[key])
            group = segments[1].lower()
            if group == "enable" and len(segments) == 2:
                enable = self.convert(labels[key], Leaf.BOOL, key) is True
                continue
            allowed = _PROVIDER_FIELDS.get(group, {})
            if len(segments) != 3 or segments[2].lower() not in allowed:
                raise self.error(key, "is not a known key")
            self.convert(labels[key], allowed[segments[2].lower()], key)
            groups.add(group)
        if {"docker", "swarm"} <= groups:
            raise LabelError(
                f"{self.source}: labels traefik.docker.* and traefik.swarm.* are both given"
            )
        return enable

    def segments(self, key: str, value: object) -> list[str]:
        if not isinstance(value, str):
            raise self.error(key, "has a value that is not a string")
        segments = key.split(".")
        # The filters ignore case, the root check does not: `Traefik.http...` is refused.
        if segments[0] != _ROOT:
            raise self.error(key, "must start with 'traefik' in lower case")
        if any(not segment for segment in segments):
            raise self.error(key, "has an empty segment")
        return segments

    # -- building the tree ------------------------------------------------------------

    def tree(self, labels: Mapping[str, str]) -> _Node | None:
        keys = sorted(key for key in labels if _matches(key, _DYNAMIC))
        if not keys:
            return None
        root = _Node(_ROOT, _ROOT, _ROOT)
        for key in keys:
            node = root
            spelled = _ROOT
            for part in self.parts(key, labels[key])[1:]:
                spelled += part if part.startswith("[") else f".{part}"
                node = node.child(part, spelled, key)
            if node.value is not None:
                # Limitation: stricter than Traefik, which keeps the last of the two.
                raise self.error(key, "is given twice (keys differ only in case)")
            node.value = labels[key]
        return root

    def parts(self, key: str, value: object) -> list[str]:
        parts: list[str] = []
        for segment in self.segments(key, value):
            if segment.startswith("["):
                raise self.error(key, "has a segment starting with '['")
            if segment.endswith("]"):
                left = segment.find("[")
                if left < 0:
                    raise self.error(key, "has a ']' without '['")
                parts += [segment[:left], segment[left:]]
            else:
                parts.append(segment)
        return parts

    # -- the tree as configuration ----------------------------------------------------

    def struct_fields(self, node: _Node, model: type[TraefikModel], path: Path) -> dict[str, Any]:
        words = _label_fields(model)
        out: dict[str, Any] = {}
        for child in node.children:
            spec = words.get(child.name.lower())
            # Limitation: keys Traefik ignores and the file model lacks (server.fenced) are refused.
            if spec is None:
                raise self.node_error(child, "is not a known key")
            here = (*path, spec.key)
            self.keys.setdefault(here, child.key)
            value = self.field(child, spec, here)
            if value is not _DROPPED and not spec.label_ignored:
                out[spec.key] = value
        return out

    def field(self, node: _Node, spec: FieldSpec, path: Path) -> Any:
        if spec.shape is Shape.LEAF:
            self.no_children(node)
            return self.convert(node.value or "", spec.leaf, node.key)
        if spec.shape is Shape.LEAF_LIST:
            self.no_children(node)
            return self.scalar_list(node, spec.leaf)
        if spec.shape is Shape.OBJECT:
            return self.struct(node, spec, path)
        if spec.shape is Shape.OBJECT_LIST:
            return self.struct_list(node, spec, path)
        return self.map(node, spec, path)

    def struct(self, node: _Node, spec: FieldSpec, path: Path) -> Any:
        assert spec.model is not None
        if not node.children:
            if spec.allow_empty:
                return {} if _enables(node.value) else _DROPPED
            if spec.label_ignored:
                return _DROPPED
            raise self.error(node.key, _STANDALONE)
        value = self.struct_fields(node, spec.model, path)
        # `tls=false` beside `tls.certresolver=...` still leaves the whole struct unset.
        if spec.allow_empty and not _enables(node.value):
            return _DROPPED
        return value

    def struct_list(self, node: _Node, spec: FieldSpec, path: Path) -> Any:
        assert spec.model is not None
        if spec.slice_label is not None:
            # `loadbalancer.server.*` is the one server of the list.
            if not node.children:
                raise self.error(node.key, "needs sub-keys (it is one server)")
            return [self.struct_fields(node, spec.model, (*path, 0))]
        if not node.children:
            return _DROPPED
        # Elements come in sorted-key order and their index text is not read.
        return [
            self.struct_fields(element, spec.model, (*path, index))
            for index, element in enumerate(node.children)
        ]

    def map(self, node: _Node, spec: FieldSpec, path: Path) -> Any:
        if not node.children:
            if spec.label_ignored:
                return _DROPPED
            raise self.error(node.key, _STANDALONE)
        out: dict[str, Any] = {}
        for entry in node.children:
            here = (*path, entry.name)
            self.keys.setdefault(here, entry.key)
            out[entry.name] = self.entry(entry, spec, here)
        return out

    def entry(self, node: _Node, spec: FieldSpec, path: Path) -> Any:
        if spec.shape is Shape.LEAF_MAP:
            self.no_children(node)
            return self.convert(node.value or "", spec.leaf, node.key)
        if spec.shape is Shape.RAW_MAP:
            return self.plugin(node)
        assert spec.model is not None
        return self.struct_fields(node, spec.model, path)

    def plugin(self, node: _Node) -> dict[str, Any]:
        if not node.children:
            return {}
        value = self.raw(node)
        if not isinstance(value, dict):
            raise self.node_error(node, "needs named sub-keys, not list items")
        return value

    def raw(self, node: _Node) -> Any:
        # Plugin settings stay text; only `[N]` segments make lists.
        if not node.children:
            return node.value or ""
        indexed = [child.name.startswith("[") for child in node.children]
        if all(indexed):
            return [self.raw(child) for child in node.children]
        if any(indexed):
            raise self.node_error(node, "mixes list items and named sub-keys")
        return {child.name: self.raw(child) for child in node.children}

    def no_children(self, node: _Node) -> None:
        if node.children:
            raise self.node_error(node.children[0], "is below a key that takes a value")

    def scalar_list(self, node: _Node, leaf: Leaf | None) -> Any:
        if not node.value:
            return _DROPPED
        items = [item.strip() for item in node.value.split(",")]
        # Limitation: Traefik keeps an empty item (an entrypoint named ""); it is refused.
        if not all(items):
            raise self.error(node.key, "has an empty item in its comma-separated list")
        return [self.convert(item, leaf, node.key) for item in items]

    def convert(self, text: str, leaf: Leaf | None, key: str) -> str | int | bool:
        try:
            if leaf is Leaf.INT:
                return go_int(text)
            if leaf is Leaf.BOOL:
                return go_bool(text)
            if leaf is Leaf.DURATION:
                return check_duration(text)
        except ValueError as exc:
            raise self.error(key, f"is {exc}") from exc
        return text

    def validated(self, raw: dict[str, Any]) -> DynamicConfig:
        try:
            return DynamicConfig.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            reason = str(first["msg"]).removeprefix("Value error, ").lower()
            raise self.error(self.key_for(tuple(first["loc"])), f"is invalid: {reason}") from exc


def _enables(value: str | None) -> bool:
    # An allow-empty struct is created by a bare key, an empty value or `true` (any case).
    return not value or value.lower() == "true"


# ---------------------------------------------------------------------------------------
# What the Swarm provider adds


def _complete(raw: dict[str, Any], reader: _Reader, server_url: Callable[[int, str], str]) -> None:
    for protocol in ("tcp", "udp"):
        section = raw.get(protocol, {})
        if section.get("routers") or section.get("services"):
            _complete_protocol(protocol, section, reader, server_url)
    http = raw.get("http", {})
    # Limitation: no default service or router: Traefik's default rule needs the Swarm name.
    if any(http.get(part) for part in _HTTP_PARTS):
        _complete_protocol("http", http, reader, server_url)


def _complete_protocol(
    protocol: str,
    section: dict[str, Any],
    reader: _Reader,
    server_url: Callable[[int, str], str],
) -> None:
    services: dict[str, Any] = section.get("services", {})
    if not services:
        raise LabelError(
            f"{reader.source}: no label defines a {protocol} service "
            f"(traefik.{protocol}.services.<name>.loadbalancer.server.port): "
            "swarm cannot build one by itself"
        )
    for name, service in services.items():
        _complete_service(protocol, name, service, reader, server_url)
    for name, router in section.get("routers", {}).items():
        _complete_router(protocol, name, router, services, reader)


def _complete_service(
    protocol: str,
    name: str,
    service: dict[str, Any],
    reader: _Reader,
    server_url: Callable[[int, str], str],
) -> None:
    prefix = reader.keys[(protocol, "services", name)]
    balancer = service.get("loadBalancer")
    if balancer is None:
        raise reader.error(
            f"{prefix}.loadbalancer.server.port",
            "is required: a service from labels is a load balancer",
        )
    server: dict[str, Any] = (balancer.get("servers") or [{}])[0]
    port = server.pop("port", "")
    scheme = server.pop("scheme", "")
    if server.get("url"):
        if port or scheme:
            raise reader.error(
                f"{prefix}.loadbalancer.server.url", "excludes server.port and server.scheme"
            )
    elif protocol == "http":
        server["url"] = server_url(_port(port, prefix, reader), _scheme(scheme, prefix, reader))
    else:
        url = server_url(_port(port, prefix, reader), protocol)
        server["address"] = _address(url, prefix, reader)
    balancer["servers"] = [server]
    if protocol == "http":
        balancer.setdefault("passHostHeader", True)


def _port(text: str, prefix: str, reader: _Reader) -> int:
    key = f"{prefix}.loadbalancer.server.port"
    if not text:
        raise reader.error(key, "is required: swarm cannot detect the port")
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise reader.error(key, "must be a port number (1-65535)")
    return int(text)


def _scheme(text: str, prefix: str, reader: _Reader) -> str:
    scheme = (text or "http").lower()
    if scheme not in _SCHEMES:
        raise reader.error(f"{prefix}.loadbalancer.server.scheme", "must be http, https or h2c")
    return scheme


def _address(url: str, prefix: str, reader: _Reader) -> str:
    # Limitation: a TCP or UDP address is the host:port of `server_url`, which builds URLs.
    address = urlsplit(url).netloc
    if not address:
        raise reader.error(
            f"{prefix}.loadbalancer.server.port", "gives a backend URL without host:port"
        )
    return address


def _complete_router(
    protocol: str,
    name: str,
    router: dict[str, Any],
    services: dict[str, Any],
    reader: _Reader,
) -> None:
    prefix = reader.keys[(protocol, "routers", name)]
    if protocol != "udp" and not router.get("rule"):
        raise reader.error(f"{prefix}.rule", "is required: no default rule is made from labels")
    if router.get("service"):
        return
    if len(services) > 1:
        raise reader.error(
            f"{prefix}.service", f"is required: the labels define {len(services)} services"
        )
    router["service"] = next(iter(services))


# ---------------------------------------------------------------------------------------
# Checks on the finished configuration, then the final names


def _check_tls_defaults(config: DynamicConfig, reader: _Reader) -> None:
    # Defined by two providers, `default` is deleted and every router using it disabled.
    names = defined_names(config)
    for section in ("tls.stores", "tls.options"):
        if "default" in names[section]:
            key = reader.key_for(("tls", section.split(".")[1], "default"))
            raise reader.error(key, f"defines the global {describe(section, 'default')}")


def _check_rules(config: DynamicConfig, reader: _Reader) -> None:
    for protocol in ("http", "tcp"):
        section = getattr(config, protocol)
        routers = section.routers if section is not None else None
        for name, router in sorted((routers or {}).items()):
            key = reader.key_for((protocol, "routers", name, "rule"))
            try:
                parse_rule(router.rule or "", protocol=protocol, field=key)
            except RuleError as exc:
                raise LabelError(f"{reader.source}: label {exc}") from exc


def _check_values(
    config: DynamicConfig, reader: _Reader, foreign_exists: Callable[[str, str], bool]
) -> None:
    """What the model cannot see but Traefik refuses at runtime, disabling a router."""
    _check_entrypoints(config, reader)
    _check_hosts(config, reader)
    _check_regexes(config, reader)
    _check_server_urls(config, reader)


def _check_entrypoints(config: DynamicConfig, reader: _Reader) -> None:
    for protocol in ("http", "tcp", "udp"):
        section = getattr(config, protocol)
        for name, router in sorted(((section.routers if section else None) or {}).items()):
            for entrypoint in router.entry_points or []:
                if not _PLAIN_NAME.fullmatch(entrypoint):
                    key = reader.key_for((protocol, "routers", name, "entryPoints"))
                    raise LabelError(
                        f"{reader.source}: label {key!r}: {entrypoint!r} is not a plain name "
                        "(letters, digits, - and _)"
                    )


def _check_hosts(config: DynamicConfig, reader: _Reader) -> None:
    routers = (config.http.routers if config.http else None) or {}
    for name, router in sorted(routers.items()):
        key = reader.key_for(("http", "routers", name, "rule"))
        for host in parse_rule(router.rule or "", field=key).hosts():
            try:
                normalize_host(host, field=key)
            except RuleError as exc:
                raise LabelError(f"{reader.source}: label {key!r}: {exc}") from exc


def _check_regexes(config: DynamicConfig, reader: _Reader) -> None:
    middlewares = (config.http.middlewares if config.http else None) or {}
    for name, middleware in sorted(middlewares.items()):
        for kind, field_name, patterns in _regexes_of(middleware):
            key = reader.key_for(("http", "middlewares", name, kind, field_name))
            for pattern in patterns:
                try:
                    check_re2(pattern, field="regex")
                except RuleError as exc:
                    raise LabelError(f"{reader.source}: label {key!r}: {exc}") from exc


def _regexes_of(middleware: Any) -> list[tuple[str, str, list[str]]]:
    found = []
    if middleware.redirect_regex and middleware.redirect_regex.regex:
        found.append(("redirectRegex", "regex", [middleware.redirect_regex.regex]))
    if middleware.replace_path_regex and middleware.replace_path_regex.regex:
        found.append(("replacePathRegex", "regex", [middleware.replace_path_regex.regex]))
    if middleware.strip_prefix_regex and middleware.strip_prefix_regex.regex:
        found.append(("stripPrefixRegex", "regex", list(middleware.strip_prefix_regex.regex)))
    return found


def _check_server_urls(config: DynamicConfig, reader: _Reader) -> None:
    services = (config.http.services if config.http else None) or {}
    for name, service in sorted(services.items()):
        balancer = service.load_balancer
        for server in (balancer.servers if balancer else None) or []:
            if server.url is not None and not usable_url(server.url):
                key = reader.key_for(("http", "services", name, "loadBalancer", "servers"))
                raise LabelError(
                    f"{reader.source}: label {key!r}: the server url is not a valid url"
                )


def _check_references(
    config: DynamicConfig, reader: _Reader, foreign_exists: Callable[[str, str], bool]
) -> None:
    local = defined_names(config)
    for reference in references(config):
        if _resolves(reference, local, foreign_exists):
            continue
        path = (*reference.owner_section.split("."), reference.owner_name)
        path += tuple(part.split("[")[0] for part in reference.field.split("."))
        raise LabelError(
            f"{reader.source}: {describe(reference.owner_section, reference.owner_name)} "
            f"references {describe(reference.section, reference.name)} that exists nowhere "
            f"(label {reader.key_for(path)!r})"
        )


def _resolves(
    reference: Reference,
    local: Mapping[str, set[str]],
    foreign_exists: Callable[[str, str], bool],
) -> bool:
    name, _, provider = reference.name.partition("@")
    if reference.qualified:
        # Another provider's objects cannot be seen from here; name@file means the file
        # provider's object (never the label set's own), which must exist in a file.
        return provider != "file" or foreign_exists(reference.section, name)
    # The default TLS options and store always exist, and belong to no provider.
    if reference.section.startswith("tls.") and reference.name == "default":
        return True
    return reference.name in local[reference.section] or foreign_exists(
        reference.section, reference.name
    )


def _namespaced(
    config: DynamicConfig, reader: _Reader, namespace: Callable[[str, str], str]
) -> DynamicConfig:
    finals: dict[str, dict[str, str]] = {}
    for section, names in defined_names(config).items():
        taken: dict[str, str] = {}
        for name in sorted(names):
            if "@" in name:
                key = reader.key_for((*section.split("."), name))
                raise reader.error(key, "names an object with '@', which Traefik reserves")
            final = namespace(section, name)
            if final in taken:
                raise LabelError(
                    f"{reader.source}: {describe(section, taken[final])} and "
                    f"{describe(section, name)} would both be named {final!r}"
                )
            taken[final] = name
        finals[section] = {name: final for final, name in taken.items()}
    return rename(config, lambda section, name: finals[section].get(name, name))
