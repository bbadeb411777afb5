"""Dokploy's routing rows, turned into the desired-route model with Dokploy v0.30's meaning.

Each rule here mirrors what Dokploy itself writes for the row (its `<appName>.yml` and
`middlewares.yml` for applications and previews, its labels for compose services), so
the planner only has to name and render. A row that cannot be mapped becomes a
Rejection naming its table, id, app and field; every other row still maps.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import NamedTuple, cast

from pydantic import SecretStr

from traefik_gen.errors import ConfigError
from traefik_gen.routes import (
    Backend,
    BasicAuthUser,
    DesiredState,
    ForwardAuth,
    Owner,
    OwnerKind,
    Redirect,
    Rejection,
    Route,
    RowRef,
    Tls,
)
from traefik_gen.sources.dokploy.compose_names import COMPOSE_TYPES, compose_backend_host
from traefik_gen.sources.dokploy.queries import (
    ApplicationRow,
    ComposeRow,
    DomainRow,
    ForwardAuthRow,
    PreviewRow,
    RedirectRow,
    SecurityRow,
    SourceRows,
)

__all__ = ["CERTIFICATE_TYPES", "DOMAIN_TYPES", "iter_owners", "map_rows", "rejection_order"]

logger = logging.getLogger(__name__)

CERTIFICATE_TYPES = frozenset({"letsencrypt", "none", "custom"})
DOMAIN_TYPES = frozenset({"application", "compose", "preview"})

# The service Dokploy's forward-auth-domain.yml defines for the oauth2 proxy.
_FORWARD_AUTH_ERRORS_URL = "http://dokploy-forward-auth:4180"
_KIND_ORDER = {kind: index for index, kind in enumerate(OwnerKind)}


class _RowError(ConfigError):
    """One field of one row that cannot be mapped."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def map_rows(rows: SourceRows) -> DesiredState:
    """Map one snapshot's rows to owners (sorted by kind, then id) and rejections."""
    rejections: list[Rejection] = []
    owners = list(iter_owners(rows, rejections))
    owners.sort(key=lambda owner: (_KIND_ORDER[owner.kind], owner.id))
    rejections.sort(key=rejection_order)
    logger.debug("mapped %d owners with %d rejections", len(owners), len(rejections))
    return DesiredState(owners=tuple(owners), rejections=tuple(rejections))


def iter_owners(rows: SourceRows, rejections: list[Rejection]) -> Iterator[Owner]:
    """The owners one at a time, in the planner's order (kind value, then id).

    Each owner is mapped only when it is taken, and its rejections are appended to
    `rejections` before it is yielded; `rejection_order` sorts them as `map_rows` does.
    """
    context = _Context.build(rows)
    apps = sorted(rows.applications, key=lambda app: app.application_id)
    streams: dict[OwnerKind, Callable[[], Iterable[Owner]]] = {
        OwnerKind.APPLICATION: lambda: (_application_owner(a, context, rejections) for a in apps),
        OwnerKind.PREVIEW: lambda: (
            _preview_owner(preview, context, rejections)
            for preview in sorted(rows.previews, key=lambda preview: preview.preview_id)
        ),
        OwnerKind.COMPOSE: lambda: _compose_owners(
            sorted(rows.composes, key=lambda compose: compose.compose_id), context, rejections
        ),
        OwnerKind.LABELS: lambda: _label_owners(apps, rejections),
    }
    for kind in sorted(streams, key=lambda kind: kind.value):
        yield from streams[kind]()


class _OwnerKey(NamedTuple):
    """Which owner a rejection belongs to, so the planner can keep its last written form."""

    kind: OwnerKind
    id: str
    name: str


def _rejection(
    owner: _OwnerKey, ref: RowRef, fault: _RowError, route_key: str | None = None
) -> Rejection:
    return Rejection(
        ref=ref,
        field=fault.field,
        reason=fault.reason,
        owner_kind=owner.kind,
        owner_id=owner.id,
        route_key=route_key,
    )


def rejection_order(rejection: Rejection) -> tuple[str, str, str, int, str]:
    kind = _KIND_ORDER[rejection.owner_kind] if rejection.owner_kind else -1
    ref = rejection.ref
    return (ref.table, ref.row_id, rejection.field, kind, rejection.owner_id or "")


class _Context:
    """What owners share: their domains, the apps' redirects and users, forward auth."""

    def __init__(
        self,
        domains: Mapping[tuple[str, str], list[DomainRow]],
        redirects: Mapping[str, tuple[Redirect, ...]],
        users: Mapping[str, tuple[BasicAuthUser, ...]],
        forward_auth: ForwardAuth | None,
    ) -> None:
        self.domains = domains
        self.redirects = redirects
        self.users = users
        self.forward_auth = forward_auth

    @classmethod
    def build(cls, rows: SourceRows) -> _Context:
        names = {app.application_id: app.app_name for app in rows.applications}
        return cls(
            domains=_domains_by_parent(rows.domains),
            redirects=_redirects_by_app(rows.redirects, names),
            users=_users_by_app(rows.users, names),
            forward_auth=_forward_auth(rows.forward_auth),
        )

    def domains_of(self, table: str, row_id: str) -> list[DomainRow]:
        found = self.domains.get((table, row_id), [])
        return sorted(found, key=lambda domain: (domain.unique_config_key, domain.domain_id))


def _domains_by_parent(domains: Iterable[DomainRow]) -> dict[tuple[str, str], list[DomainRow]]:
    # A row points at its parent by foreign key; one with none is an orphan and is dropped.
    grouped: dict[tuple[str, str], list[DomainRow]] = defaultdict(list)
    for domain in domains:
        parents = (
            ("application", domain.application_id),
            ("compose", domain.compose_id),
            ("preview_deployments", domain.preview_id),
        )
        for table, parent_id in parents:
            if parent_id is not None:
                grouped[(table, parent_id)].append(domain)
    return grouped


def _redirects_by_app(
    rows: Iterable[RedirectRow], names: Mapping[str, str]
) -> dict[str, tuple[Redirect, ...]]:
    # Dokploy sets no ORDER BY; uniqueConfigKey is the stable order it creates them in. The
    # regex is checked by the planner, which then holds back every route that needs it.
    grouped: dict[str, list[Redirect]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r.unique_config_key, r.redirect_id)):
        app = names.get(row.application_id, row.application_id)
        redirect = Redirect(
            key=str(row.unique_config_key),
            regex=row.regex,
            replacement=row.replacement,
            permanent=row.permanent,
            ref=RowRef(table="redirect", row_id=row.redirect_id, app=app),
        )
        grouped[row.application_id].append(redirect)
    return {app: tuple(redirects) for app, redirects in grouped.items()}


def _users_by_app(
    rows: Iterable[SecurityRow], names: Mapping[str, str]
) -> dict[str, tuple[BasicAuthUser, ...]]:
    # Every row is passed on, even one with a bad username: dropping it here could leave a
    # route with no users, and so unprotected. The planner's hasher rejects bad names.
    grouped: dict[str, list[BasicAuthUser]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r.username, r.security_id)):
        app = names.get(row.application_id, row.application_id)
        user = BasicAuthUser(
            username=row.username,
            password=SecretStr(row.password),
            ref=RowRef(table="security", row_id=row.security_id, app=app),
        )
        grouped[row.application_id].append(user)
    return {app: tuple(users) for app, users in grouped.items()}


def _forward_auth(row: ForwardAuthRow | None) -> ForwardAuth | None:
    if row is None:
        return None
    scheme = "https" if row.https else "http"
    return ForwardAuth(
        address=f"{scheme}://{row.auth_domain}/oauth2/auth",
        errors_service_url=_FORWARD_AUTH_ERRORS_URL,
    )


def _application_owner(
    app: ApplicationRow, context: _Context, rejections: list[Rejection]
) -> Owner:
    key = _OwnerKey(OwnerKind.APPLICATION, app.application_id, app.app_name)
    routes = _routes(
        context.domains_of("application", app.application_id),
        lambda domain: _application_route(domain, app.app_name, preview=False),
        key,
        rejections,
    )
    return Owner(
        kind=key.kind,
        id=key.id,
        name=key.name,
        routes=routes,
        redirects=context.redirects.get(app.application_id, ()),
        users=context.users.get(app.application_id, ()),
        forward_auth=context.forward_auth,
        ref=RowRef(table="application", row_id=app.application_id, app=app.app_name),
    )


def _preview_owner(preview: PreviewRow, context: _Context, rejections: list[Rejection]) -> Owner:
    # A preview routes to its own service but is guarded by its parent's basic-auth users;
    # Dokploy applies no redirects to previews.
    key = _OwnerKey(OwnerKind.PREVIEW, preview.preview_id, preview.app_name)
    routes = _routes(
        context.domains_of("preview_deployments", preview.preview_id),
        lambda domain: _application_route(domain, preview.app_name, preview=True),
        key,
        rejections,
    )
    return Owner(
        kind=key.kind,
        id=key.id,
        name=key.name,
        routes=routes,
        users=context.users.get(preview.application_id, ()),
        forward_auth=context.forward_auth,
        ref=RowRef(table="preview_deployments", row_id=preview.preview_id, app=preview.app_name),
    )


def _compose_owners(
    composes: Iterable[ComposeRow], context: _Context, rejections: list[Rejection]
) -> Iterator[Owner]:
    for compose in composes:
        key = _OwnerKey(OwnerKind.COMPOSE, compose.compose_id, compose.app_name)
        ref = RowRef(table="compose", row_id=compose.compose_id, app=compose.app_name)
        if compose.compose_type not in COMPOSE_TYPES:
            # Without its type no backend name is known; the owner is left out so the
            # planner keeps its last file.
            fault = _RowError("composeType", f"unknown compose type {compose.compose_type!r}")
            rejections.append(_rejection(key, ref, fault))
            continue
        yield _compose_owner(compose, key, ref, context, rejections)


def _compose_owner(
    compose: ComposeRow,
    key: _OwnerKey,
    ref: RowRef,
    context: _Context,
    rejections: list[Rejection],
) -> Owner:
    routes = _routes(
        context.domains_of("compose", compose.compose_id),
        lambda domain: _compose_route(domain, compose),
        key,
        rejections,
    )
    return Owner(
        kind=key.kind,
        id=key.id,
        name=key.name,
        routes=routes,
        forward_auth=context.forward_auth,
        ref=ref,
    )


def _routes(
    domains: Iterable[DomainRow],
    route_of: Callable[[DomainRow], Route],
    owner: _OwnerKey,
    rejections: list[Rejection],
) -> tuple[Route, ...]:
    routes: list[Route] = []
    for domain in domains:
        try:
            routes.append(route_of(domain))
        except _RowError as fault:
            ref = RowRef(table="domain", row_id=domain.domain_id, app=owner.name)
            rejections.append(_rejection(owner, ref, fault, str(domain.unique_config_key)))
    return tuple(routes)


def _application_route(domain: DomainRow, app_name: str, *, preview: bool) -> Route:
    """A domain of an application or preview, as Dokploy's createRouterConfig renders it."""
    domain_type = _domain_type(domain)
    return Route(
        key=str(domain.unique_config_key),
        host=_host(domain),
        path=_path(domain),
        https=domain.https,
        entrypoint=domain.custom_entrypoint or None,
        tls=_application_tls(domain),
        strip_prefix=_strips_prefix(domain),
        add_prefix=_application_add_prefix(domain),
        redirects=not preview and domain_type != "preview",
        basic_auth=True,
        forward_auth=domain.forward_auth_enabled,
        middlewares=_middlewares(domain),
        backend=Backend(host=app_name, port=_port(domain)),
        ref=RowRef(table="domain", row_id=domain.domain_id, app=app_name),
    )


def _compose_route(domain: DomainRow, compose: ComposeRow) -> Route:
    """A compose domain: Dokploy's labels for it, as one file-provider route."""
    _domain_type(domain)
    return Route(
        key=str(domain.unique_config_key),
        host=_host(domain),
        path=_path(domain),
        https=domain.https,
        entrypoint=domain.custom_entrypoint or None,
        tls=_compose_tls(domain),
        strip_prefix=_strips_prefix(domain),
        add_prefix=_compose_add_prefix(domain),
        redirects=False,
        basic_auth=False,
        # Limitation: Dokploy ignores forwardAuthEnabled on compose domains (issue #5495);
        # it is honoured here so such a domain is never served unprotected.
        forward_auth=domain.forward_auth_enabled,
        middlewares=_middlewares(domain),
        backend=_compose_backend(domain, compose),
        ref=RowRef(table="domain", row_id=domain.domain_id, app=compose.app_name),
    )


def _domain_type(domain: DomainRow) -> str:
    # The column is nullable; Dokploy only ever tests it for 'preview'.
    domain_type = domain.domain_type or "application"
    if domain_type not in DOMAIN_TYPES:
        raise _RowError("domainType", f"unknown domain type {domain_type!r}")
    return domain_type


def _certificate_type(domain: DomainRow) -> str:
    certificate_type = domain.certificate_type or "none"
    if certificate_type not in CERTIFICATE_TYPES:
        raise _RowError("certificateType", f"unknown certificate type {certificate_type!r}")
    return certificate_type


def _host(domain: DomainRow) -> str:
    host = domain.host.strip()
    if not host:
        raise _RowError("host", "the host is empty")
    return host


def _path(domain: DomainRow) -> str:
    # Dokploy adds PathPrefix only for a path that is set and not "/".
    return domain.path or "/"


def _port(domain: DomainRow) -> int:
    # Dokploy falls back to 80 only for NULL or 0.
    port = domain.port or 80
    if not 1 <= port <= 65535:
        raise _RowError("port", f"port {port} is outside 1-65535")
    return port


def _application_tls(domain: DomainRow) -> Tls | None:
    certificate_type = _certificate_type(domain)
    if not domain.https or certificate_type == "none":
        # `none` leaves the tls key out; the websecure entrypoint's default TLS applies.
        return None
    if certificate_type == "letsencrypt":
        return Tls(cert_resolver="letsencrypt")
    # Dokploy leaves tls unset for `custom` with no resolver name.
    return Tls(cert_resolver=domain.custom_cert_resolver) if domain.custom_cert_resolver else None


def _compose_tls(domain: DomainRow) -> Tls | None:
    certificate_type = _certificate_type(domain)
    if not domain.https:
        return None
    if certificate_type == "letsencrypt":
        return Tls(cert_resolver="letsencrypt")
    if certificate_type == "custom":
        return Tls(cert_resolver=domain.custom_cert_resolver or None)
    # Dokploy's compose labels say `tls=true` for `none`: an empty tls block.
    return Tls()


def _strips_prefix(domain: DomainRow) -> bool:
    return domain.strip_path and domain.path not in (None, "", "/")


def _application_add_prefix(domain: DomainRow) -> str | None:
    internal = domain.internal_path
    if internal and internal != "/" and internal != domain.path:
        return internal
    return None


def _compose_add_prefix(domain: DomainRow) -> str | None:
    # Compose labels lack the application rule's "differs from path" test.
    internal = domain.internal_path
    if internal and internal.startswith("/") and internal != "/":
        return internal
    return None


def _middlewares(domain: DomainRow) -> tuple[str, ...]:
    entries = domain.middlewares or []
    names = tuple(entry for entry in entries if entry)
    if len(names) != len(entries):
        raise _RowError("middlewares", "the middleware list has a null or empty entry")
    return names


def _compose_backend(domain: DomainRow, compose: ComposeRow) -> Backend:
    host = _compose_host(domain, compose)
    if (compose.compose_type or "docker-compose") != "docker-compose":
        # A stack service has one Swarm DNS name that balances over its tasks itself.
        return Backend(host=host, port=_port(domain))
    return Backend(
        host=host,
        port=_port(domain),
        compose_project=compose.app_name,
        compose_service=domain.service_name,
    )


def _compose_host(domain: DomainRow, compose: ComposeRow) -> str:
    if not domain.service_name:
        raise _RowError("serviceName", "a compose domain names no compose service")
    try:
        return compose_backend_host(
            compose.app_name,
            compose.compose_type or "docker-compose",
            domain.service_name,
            compose.compose_file,
        )
    except ConfigError as exc:
        raise _RowError("composeFile", str(exc)) from exc


def _label_owners(apps: Iterable[ApplicationRow], rejections: list[Rejection]) -> Iterator[Owner]:
    for app in apps:
        key = _OwnerKey(OwnerKind.LABELS, app.application_id, app.app_name)
        ref = RowRef(table="application", row_id=app.application_id, app=app.app_name)
        try:
            labels = _labels(app.labels_swarm)
        except _RowError as fault:
            rejections.append(_rejection(key, ref, fault))
            continue
        if labels:
            yield _label_owner(app, labels, ref)


def _label_owner(app: ApplicationRow, labels: dict[str, str], ref: RowRef) -> Owner:
    return Owner(
        kind=OwnerKind.LABELS,
        id=app.application_id,
        name=app.app_name,
        labels=labels,
        ref=ref,
    )


def _labels(text: str | None) -> dict[str, str]:
    # The column is json, so the server has already checked the syntax.
    document: object = json.loads(text) if text is not None else None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise _RowError("labelsSwarm", "swarm labels are not a json object")
    for key, value in document.items():
        if not isinstance(value, str):
            # Never quote the value: basic-auth labels carry password hashes.
            raise _RowError("labelsSwarm", f"label {key!r} has a value that is not a string")
    return cast(dict[str, str], document)
