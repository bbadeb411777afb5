"""One route (a Dokploy domain) to its Traefik routers, service and middlewares.

The source already decided Dokploy's meaning (which middlewares, which TLS block); this
module only validates every value that reaches a rule or a URL and names the objects.
Middleware order is Dokploy's: strip-prefix, add-prefix, redirects, basic auth, forward
auth, then the domain's own middlewares.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from traefik_gen.errors import ConfigError
from traefik_gen.plan.naming import OwnerNames
from traefik_gen.routes import Backend, Owner, Route, Tls
from traefik_gen.traefik.hosts import normalize_host, usable_url
from traefik_gen.traefik.rules import route_rule, validate_path

__all__ = ["Entrypoints", "RouteError", "RouteObjects", "SharedNeeds", "build_route"]

_SIMPLE_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")
_REFERENCE = re.compile(r"[A-Za-z0-9_-]{1,200}(@[A-Za-z0-9_-]{1,100})?")
_DOCKER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")


@dataclass(frozen=True)
class Entrypoints:
    web: str
    websecure: str


class RouteError(ConfigError):
    """A route that cannot be rendered safely, with the field at fault."""

    def __init__(
        self, field: str, reason: str, *, protection: bool = False, keep_last: bool = True
    ) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.protection = protection
        self.keep_last = keep_last


@dataclass
class SharedNeeds:
    """Owner-wide objects the route's routers reference."""

    https_redirect: bool = False
    auth: bool = False
    redirects: bool = False
    forward_auth_proxy: bool = False


@dataclass
class RouteObjects:
    """The http objects of one route, keyed by final name."""

    key: str
    routers: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    middlewares: dict[str, dict[str, Any]] = field(default_factory=dict)
    needs: SharedNeeds = field(default_factory=SharedNeeds)
    foreign_refs: list[str] = field(default_factory=list)

    def names(self) -> list[tuple[str, str]]:
        return (
            [("http.routers", name) for name in self.routers]
            + [("http.services", name) for name in self.services]
            + [("http.middlewares", name) for name in self.middlewares]
        )


def build_route(
    route: Route,
    owner: Owner,
    names: OwnerNames,
    *,
    upstream: str,
    entrypoints: Entrypoints,
    redirect_names: list[str],
    replicas: Mapping[tuple[str, str], tuple[str, ...]],
) -> RouteObjects:
    """All objects of one route; raises RouteError naming the field at fault."""
    rule = _rule(route)
    objects = RouteObjects(key=route.key)
    base = names.route(route.key)
    objects.services[base] = _service(route.backend, upstream, replicas)
    chain = _middleware_chain(route, owner, names, objects, redirect_names)
    tls = _tls(route.tls)
    if route.entrypoint is not None:
        entrypoint = _checked_name(route.entrypoint, "customEntrypoint")
        router = _router(rule, base, entrypoint, chain)
        if route.https and tls is not None:
            router["tls"] = tls
        objects.routers[f"{base}-{_ep_suffix(entrypoint)}"] = router
    elif route.https:
        objects.needs.https_redirect = True
        to_https = [names.shared("to-https")]
        objects.routers[f"{base}-web"] = _router(rule, base, entrypoints.web, to_https)
        secure = _router(rule, base, entrypoints.websecure, chain)
        if tls is not None:
            secure["tls"] = tls
        objects.routers[f"{base}-websecure"] = secure
    else:
        objects.routers[f"{base}-web"] = _router(rule, base, entrypoints.web, chain)
    return objects


def _rule(route: Route) -> str:
    try:
        host = normalize_host(route.host)
    except ConfigError as exc:
        raise RouteError("host", str(exc)) from exc
    try:
        path = validate_path(route.path)
    except ConfigError as exc:
        raise RouteError("path", str(exc)) from exc
    return route_rule(host, path)


def _router(rule: str, service: str, entrypoint: str, chain: list[str]) -> dict[str, Any]:
    router: dict[str, Any] = {"rule": rule, "service": service, "entryPoints": [entrypoint]}
    if chain:
        router["middlewares"] = list(chain)
    return router


def _service(
    backend: Backend, upstream: str, replicas: Mapping[tuple[str, str], tuple[str, ...]]
) -> dict[str, Any]:
    if backend.url is not None:
        if not usable_url(backend.url):
            raise RouteError("backend.url", f"backend url {backend.url!r} is not a valid url")
        urls = [backend.url]
    else:
        urls = [_upstream_url(backend, host, upstream) for host in _hosts(backend, replicas)]
    for url in urls:
        if not usable_url(url):
            raise RouteError("backend", "the backend url has no usable scheme or host")
    servers = [{"url": url} for url in urls]
    return {"loadBalancer": {"servers": servers, "passHostHeader": True}}


def _hosts(backend: Backend, replicas: Mapping[tuple[str, str], tuple[str, ...]]) -> list[str]:
    if backend.compose_project is None or backend.compose_service is None:
        return [backend.host]
    running = replicas.get((backend.compose_project, backend.compose_service))
    return list(running) if running else [backend.host]


def _upstream_url(backend: Backend, host: str, upstream: str) -> str:
    if not _DOCKER_NAME.fullmatch(host):
        # A compose backend's name comes from its service; anything else from the app.
        field = "serviceName" if backend.compose_service else "appName"
        raise RouteError(field, f"backend host {host!r} is not a usable DNS name")
    return upstream.format(scheme=backend.scheme, host=host, port=backend.port)


def _tls(tls: Tls | None) -> dict[str, Any] | None:
    if tls is None:
        return None
    if tls.cert_resolver is None or tls.cert_resolver == "":
        return {}
    return {"certResolver": _checked_name(tls.cert_resolver, "customCertResolver")}


def _middleware_chain(
    route: Route,
    owner: Owner,
    names: OwnerNames,
    objects: RouteObjects,
    redirect_names: list[str],
) -> list[str]:
    base = names.route(route.key)
    chain: list[str] = []
    if route.strip_prefix and route.path not in ("", "/"):
        objects.middlewares[f"{base}-stripprefix"] = {"stripPrefix": {"prefixes": [route.path]}}
        chain.append(f"{base}-stripprefix")
    if route.add_prefix is not None:
        prefix = _checked_path(route.add_prefix, "internalPath")
        objects.middlewares[f"{base}-addprefix"] = {"addPrefix": {"prefix": prefix}}
        chain.append(f"{base}-addprefix")
    if route.redirects and owner.redirects:
        objects.needs.redirects = True
        chain.extend(redirect_names)
    if route.basic_auth and owner.users:
        objects.needs.auth = True
        chain.append(names.shared("auth"))
    if route.forward_auth:
        chain.extend(_forward_auth(owner, names, base, objects))
    for reference in route.middlewares:
        if not _REFERENCE.fullmatch(reference):
            raise RouteError("middlewares", f"middleware reference {reference!r} is not a name")
        objects.foreign_refs.append(reference)
        chain.append(reference)
    return chain


def _forward_auth(owner: Owner, names: OwnerNames, base: str, objects: RouteObjects) -> list[str]:
    settings = owner.forward_auth
    if settings is None:
        raise RouteError(
            "forwardAuthEnabled",
            "forward auth is enabled but no forward_auth_settings row exists for this server; "
            "the route is not published unprotected",
            protection=True,
        )
    objects.needs.forward_auth_proxy = True
    errors_name, auth_name = f"{base}-forwardauth-errors", f"{base}-forwardauth"
    objects.middlewares[errors_name] = {
        "errors": {
            "status": ["401-403"],
            "service": names.shared("forward-auth-proxy"),
            "query": settings.sign_in_query,
            "statusRewrites": {"401": 302},
        }
    }
    objects.middlewares[auth_name] = {
        "forwardAuth": {
            "address": settings.address,
            "trustForwardHeader": True,
            "authResponseHeaders": [
                "X-Auth-Request-User",
                "X-Auth-Request-Email",
                "X-Auth-Request-Preferred-Username",
                "Authorization",
            ],
        }
    }
    return [errors_name, auth_name]


def _checked_name(value: str, field_name: str) -> str:
    if not _SIMPLE_NAME.fullmatch(value):
        raise RouteError(field_name, f"{value!r} is not a plain name (letters, digits, - and _)")
    return value


def _checked_path(value: str, field_name: str) -> str:
    try:
        return validate_path(value, field=field_name)
    except ConfigError as exc:
        raise RouteError(field_name, str(exc)) from exc


def _ep_suffix(entrypoint: str) -> str:
    return entrypoint.replace("_", "-").lower()
