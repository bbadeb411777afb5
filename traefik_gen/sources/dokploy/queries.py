"""The SQL that reads Dokploy's routing rows, and the read-only snapshot it runs in.

Every statement is built from the probed schema with explicit column lists: a column an
older install lacks is replaced by Dokploy's default for it, and no column holding a
secret the tool has no use for (env, build secrets, registry or ssh credentials) is ever
named. Enums and json are read as text so an enum label this code does not know, or one an
old install lacks, can never break the SQL or the driver.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NoReturn, Protocol, TypeVar, overload

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

from traefik_gen.errors import SourceError
from traefik_gen.sources.dokploy.schema import Schema

__all__ = [
    "ApplicationRow",
    "ComposeRow",
    "DomainRow",
    "ForwardAuthRow",
    "PreviewRow",
    "RedirectRow",
    "SecurityRow",
    "SourceRows",
    "Statements",
    "Subset",
    "build_statements",
    "describe_target",
    "open_snapshot",
    "read_rows",
    "reading",
    "subset_statements",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


@dataclass(frozen=True, slots=True)
class ApplicationRow:
    application_id: str
    app_name: str
    # Label values can hold basic-auth hashes: kept out of reprs, so out of tracebacks.
    labels_swarm: str | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class PreviewRow:
    preview_id: str
    app_name: str
    application_id: str


@dataclass(frozen=True, slots=True)
class ComposeRow:
    compose_id: str
    app_name: str
    compose_type: str | None
    # A compose file may inline environment secrets.
    compose_file: str | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class DomainRow:
    domain_id: str
    host: str
    https: bool
    port: int | None
    path: str | None
    unique_config_key: int
    application_id: str | None
    compose_id: str | None
    preview_id: str | None
    service_name: str | None
    domain_type: str | None
    certificate_type: str | None
    custom_cert_resolver: str | None
    custom_entrypoint: str | None
    internal_path: str | None
    strip_path: bool
    middlewares: list[str | None] | None
    forward_auth_enabled: bool


@dataclass(frozen=True, slots=True)
class RedirectRow:
    redirect_id: str
    application_id: str
    regex: str
    replacement: str
    permanent: bool
    unique_config_key: int


@dataclass(frozen=True, slots=True)
class SecurityRow:
    security_id: str
    application_id: str
    username: str
    # Dokploy stores it in plaintext: kept out of reprs, so out of logs and tracebacks.
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ForwardAuthRow:
    settings_id: str
    auth_domain: str
    https: bool
    created_at: str


@dataclass(frozen=True, slots=True)
class _ServerRow:
    server_id: str
    server_type: str | None


@dataclass(frozen=True, slots=True)
class SourceRows:
    """Everything one snapshot read for one Traefik instance."""

    applications: tuple[ApplicationRow, ...] = ()
    previews: tuple[PreviewRow, ...] = ()
    composes: tuple[ComposeRow, ...] = ()
    domains: tuple[DomainRow, ...] = ()
    redirects: tuple[RedirectRow, ...] = ()
    users: tuple[SecurityRow, ...] = ()
    forward_auth: ForwardAuthRow | None = None
    # A SHA-256 of every value read, passwords included: held in memory, never shown.
    digest: bytes = field(default=b"", repr=False)


@dataclass(frozen=True, slots=True)
class _Column:
    """One selected column: its Dokploy name, the row field it fills, and its stand-in."""

    name: str
    alias: str
    cast: str | None = None
    # SQL literal for installs that predate the column (Dokploy's default); None = required.
    default: str | None = None


_APPLICATION = (
    _Column("applicationId", "application_id"),
    _Column("appName", "app_name"),
    _Column("labelsSwarm", "labels_swarm", cast="text", default="NULL::text"),
)
_PREVIEW = (
    _Column("previewDeploymentId", "preview_id"),
    _Column("appName", "app_name"),
    _Column("applicationId", "application_id"),
)
_COMPOSE = (
    _Column("composeId", "compose_id"),
    _Column("appName", "app_name"),
    _Column("composeType", "compose_type", cast="text", default="'docker-compose'::text"),
    _Column("composeFile", "compose_file", default="''::text"),
)
_DOMAIN = (
    _Column("domainId", "domain_id"),
    _Column("host", "host"),
    _Column("https", "https"),
    _Column("port", "port"),
    _Column("path", "path"),
    _Column("uniqueConfigKey", "unique_config_key"),
    _Column("applicationId", "application_id"),
    _Column("composeId", "compose_id", default="NULL::text"),
    _Column("previewDeploymentId", "preview_id", default="NULL::text"),
    _Column("serviceName", "service_name", default="NULL::text"),
    # Before v0.7.0 every domain belonged to an application.
    _Column("domainType", "domain_type", cast="text", default="'application'::text"),
    _Column("certificateType", "certificate_type", cast="text"),
    _Column("customCertResolver", "custom_cert_resolver", default="NULL::text"),
    _Column("customEntrypoint", "custom_entrypoint", default="NULL::text"),
    _Column("internalPath", "internal_path", default="'/'::text"),
    _Column("stripPath", "strip_path", default="false"),
    _Column("middlewares", "middlewares", default="ARRAY[]::text[]"),
    _Column("forwardAuthEnabled", "forward_auth_enabled", default="false"),
)
_REDIRECT = (
    _Column("redirectId", "redirect_id"),
    _Column("applicationId", "application_id"),
    _Column("regex", "regex"),
    _Column("replacement", "replacement"),
    _Column("permanent", "permanent"),
    _Column("uniqueConfigKey", "unique_config_key"),
)
_SECURITY = (
    _Column("securityId", "security_id"),
    _Column("applicationId", "application_id"),
    _Column("username", "username"),
    _Column("password", "password"),
)
_FORWARD_AUTH = (
    _Column("forwardAuthSettingsId", "settings_id"),
    _Column("authDomain", "auth_domain"),
    _Column("https", "https", default="true"),
    _Column("createdAt", "created_at", default="''::text"),
)
_SERVER = (
    _Column("serverId", "server_id"),
    # Before v0.26.0 there were no build servers: every server ran Traefik.
    _Column("serverType", "server_type", cast="text", default="'deploy'::text"),
)


@dataclass(frozen=True, slots=True)
class Statements:
    """The statements one read executes; None where the install lacks the table."""

    applications: sql.Composed | None
    domains: sql.Composed
    redirects: sql.Composed | None
    users: sql.Composed | None
    previews: sql.Composed | None
    composes: sql.Composed | None
    forward_auth: sql.Composed | None
    server: sql.Composed | None

    def all(self) -> tuple[sql.Composed, ...]:
        candidates = (
            self.applications,
            self.domains,
            self.redirects,
            self.users,
            self.previews,
            self.composes,
            self.forward_auth,
            self.server,
        )
        return tuple(statement for statement in candidates if statement is not None)


def build_statements(schema: Schema, *, local: bool) -> Statements:
    """Build every statement for this schema; `local` selects parents with serverId NULL.

    The server id, when not local, is the named parameter `server`.
    """
    return Statements(
        applications=_select(
            schema, "application", "a", _APPLICATION, _on_server(schema, "application", "a", local)
        ),
        domains=_domains(schema, local),
        redirects=_select(schema, "redirect", "r", _REDIRECT, _of_apps(schema, "r", local)),
        users=_select(schema, "security", "s", _SECURITY, _of_apps(schema, "s", local)),
        previews=_previews(schema, local),
        composes=_composes(schema, local),
        forward_auth=_forward_auth(schema, local),
        server=_server(schema),
    )


@dataclass(frozen=True)
class Subset:
    """The owners a subset read is limited to, by id: applications, previews, composes.

    `user_apps` names the applications whose basic-auth users are read: the subset's own
    and the parents of its previews.
    """

    apps: frozenset[str] = frozenset()
    previews: frozenset[str] = frozenset()
    composes: frozenset[str] = frozenset()
    user_apps: frozenset[str] = frozenset()

    def params(self) -> dict[str, list[str]]:
        return {
            "apps": sorted(self.apps),
            "previews": sorted(self.previews),
            "composes": sorted(self.composes),
            "user_apps": sorted(self.user_apps),
        }


def subset_statements(schema: Schema, *, local: bool) -> Statements:
    """`build_statements`, each limited to the owners of a `Subset` (its named parameters)."""
    full = build_statements(schema, local=local)
    domain_parents = [sql.SQL('d."applicationId" = ANY(%(apps)s)')]
    if schema.has("domain", "composeId"):
        domain_parents.append(sql.SQL('d."composeId" = ANY(%(composes)s)'))
    if schema.has("domain", "previewDeploymentId"):
        domain_parents.append(sql.SQL('d."previewDeploymentId" = ANY(%(previews)s)'))
    return Statements(
        applications=_and(full.applications, 'a."applicationId" = ANY(%(apps)s)'),
        domains=_and(full.domains, sql.SQL(" OR ").join(domain_parents)),
        redirects=_and(full.redirects, 'r."applicationId" = ANY(%(apps)s)'),
        users=_and(full.users, 's."applicationId" = ANY(%(user_apps)s)'),
        previews=_and(full.previews, 'p."previewDeploymentId" = ANY(%(previews)s)'),
        composes=_and(full.composes, 'c."composeId" = ANY(%(composes)s)'),
        forward_auth=full.forward_auth,
        server=full.server,
    )


@overload
def _and(statement: sql.Composed, condition: str | sql.Composable) -> sql.Composed: ...
@overload
def _and(statement: None, condition: str | sql.Composable) -> None: ...
def _and(statement: sql.Composed | None, condition: str | sql.Composable) -> sql.Composed | None:
    if statement is None:
        return None
    extra = sql.SQL(condition) if isinstance(condition, str) else condition
    return sql.SQL("{} AND ({})").format(statement, extra)


def _skip_empty(statements: Statements, subset: Subset) -> Statements:
    """Leave out the statements whose owner list is empty: they would select nothing."""
    return Statements(
        applications=statements.applications if subset.apps else None,
        domains=statements.domains,
        redirects=statements.redirects if subset.apps else None,
        users=statements.users if subset.user_apps else None,
        previews=statements.previews if subset.previews else None,
        composes=statements.composes if subset.composes else None,
        forward_auth=statements.forward_auth,
        server=statements.server,
    )


def _select(
    schema: Schema,
    table: str,
    alias: str,
    columns: Sequence[_Column],
    where: sql.Composable,
    joins: sql.Composable = sql.SQL(""),
) -> sql.Composed:
    # The condition is parenthesised so a subset read can add its own with AND.
    return sql.SQL("SELECT {columns} FROM {table} {alias}{joins} WHERE ({where})").format(
        columns=sql.SQL(", ").join(_column(schema, table, alias, c) for c in columns),
        table=sql.Identifier(table),
        alias=sql.Identifier(alias),
        joins=joins,
        where=where,
    )


def _column(schema: Schema, table: str, alias: str, column: _Column) -> sql.Composable:
    if schema.has(table, column.name):
        value: sql.Composable = sql.Identifier(alias, column.name)
        if column.cast:
            value = sql.SQL("{}::{}").format(value, sql.SQL(column.cast))
    elif column.default is not None:
        value = sql.SQL(column.default)
    else:
        raise SourceError(f"dokploy table {table!r} lacks column {column.name!r}")
    return sql.SQL("{} AS {}").format(value, sql.Identifier(column.alias))


def _on_server(schema: Schema, table: str, alias: str, local: bool) -> sql.Composable:
    if not schema.has(table, "serverId"):
        # Before v0.9.0 there were no remote servers: everything is local.
        return sql.SQL("TRUE" if local else "FALSE")
    column = sql.Identifier(alias, "serverId")
    if local:
        return sql.SQL("{} IS NULL").format(column)
    return sql.SQL("{} = %(server)s").format(column)


def _apps_on_server(schema: Schema, local: bool) -> sql.Composable:
    return sql.SQL('SELECT a."applicationId" FROM application a WHERE {}').format(
        _on_server(schema, "application", "a", local)
    )


def _of_apps(schema: Schema, alias: str, local: bool) -> sql.Composable:
    return sql.SQL("{} IN ({})").format(
        sql.Identifier(alias, "applicationId"), _apps_on_server(schema, local)
    )


def _domains(schema: Schema, local: bool) -> sql.Composed:
    owners: list[sql.Composable] = [_of_apps(schema, "d", local)]
    if schema.has_table("compose") and schema.has("domain", "composeId"):
        composes = sql.SQL('SELECT c."composeId" FROM compose c WHERE {}').format(
            _on_server(schema, "compose", "c", local)
        )
        owners.append(sql.SQL('d."composeId" IN ({})').format(composes))
    if schema.has_table("preview_deployments") and schema.has("domain", "previewDeploymentId"):
        previews = sql.SQL(
            'SELECT p."previewDeploymentId" FROM preview_deployments p '
            'JOIN application a ON a."applicationId" = p."applicationId" WHERE {}'
        ).format(_on_server(schema, "application", "a", local))
        owners.append(sql.SQL('d."previewDeploymentId" IN ({})').format(previews))
    where = sql.SQL("({})").format(sql.SQL(" OR ").join(owners))
    if schema.has("domain", "enabled"):
        # Dokploy treats a disabled domain as removed (v0.30.0 and later).
        where = sql.SQL('{} AND d."enabled"').format(where)
    return _select(schema, "domain", "d", _DOMAIN, where)


def _previews(schema: Schema, local: bool) -> sql.Composed | None:
    if not schema.has_table("preview_deployments"):
        return None
    join = sql.SQL(' JOIN application a ON a."applicationId" = p."applicationId"')
    where = _on_server(schema, "application", "a", local)
    return _select(schema, "preview_deployments", "p", _PREVIEW, where, join)


def _composes(schema: Schema, local: bool) -> sql.Composed | None:
    if not schema.has_table("compose"):
        return None
    return _select(schema, "compose", "c", _COMPOSE, _on_server(schema, "compose", "c", local))


def _forward_auth(schema: Schema, local: bool) -> sql.Composed | None:
    if not schema.has_table("forward_auth_settings"):
        return None
    where = _on_server(schema, "forward_auth_settings", "f", local)
    return _select(schema, "forward_auth_settings", "f", _FORWARD_AUTH, where)


def _server(schema: Schema) -> sql.Composed | None:
    if not schema.has_table("server"):
        return None
    return _select(schema, "server", "s", _SERVER, sql.SQL('s."serverId" = %(server)s'))


def read_rows(
    conn: psycopg.Connection[TupleRow],
    schema: Schema,
    server: str | None,
    subset: Subset | None = None,
) -> SourceRows:
    """Read every routing row of one Traefik instance (server None = the Dokploy host).

    With a `subset`, only the rows of the owners it names (see `Subset`).

    Raises:
        SourceError: the server is unknown, or is a build server (it runs no Traefik).
    """
    local = server is None
    statements = (
        build_statements(schema, local=local)
        if subset is None
        else subset_statements(schema, local=local)
    )
    params: dict[str, object] = {"server": server}
    if subset is not None:
        params.update(subset.params())
        statements = _skip_empty(statements, subset)
    if server is not None:
        _check_server(conn, statements.server, server)
    digest = hashlib.sha256()
    rows = SourceRows(
        applications=_fetch(conn, statements.applications, params, ApplicationRow, digest),
        previews=_fetch(conn, statements.previews, params, PreviewRow, digest),
        composes=_fetch(conn, statements.composes, params, ComposeRow, digest),
        domains=_fetch(conn, statements.domains, params, DomainRow, digest),
        redirects=_fetch(conn, statements.redirects, params, RedirectRow, digest),
        users=_fetch(conn, statements.users, params, SecurityRow, digest),
        forward_auth=_first_forward_auth(
            _fetch(conn, statements.forward_auth, params, ForwardAuthRow, digest)
        ),
        digest=digest.digest(),
    )
    logger.debug(
        "read %d applications, %d previews, %d composes, %d domains for server %s",
        len(rows.applications),
        len(rows.previews),
        len(rows.composes),
        len(rows.domains),
        server or "local",
    )
    return rows


def _fetch(
    conn: psycopg.Connection[TupleRow],
    statement: sql.Composed | None,
    params: Mapping[str, object],
    row_type: Callable[..., _T],
    digest: _Digest | None = None,
) -> tuple[_T, ...]:
    """The statement's rows as `row_type`, built from plain tuples (the driver's fast path).

    The columns are selected in the order of the row type's fields.
    """
    if statement is None:
        return ()
    rows = []
    # Short texts repeat on every row ("application", "letsencrypt", "/"): one copy each.
    shared: dict[str, str] = {}
    for raw in conn.execute(statement, params):
        values = [
            shared.setdefault(value, value) if type(value) is str and len(value) <= 16 else value
            for value in raw
        ]
        if digest is not None:
            # repr of str, int, bool, None and lists is exact and stable across runs; row
            # by row, so no text of the whole table is ever held.
            digest.update(repr(raw).encode("utf-8", "surrogatepass") + b"\n")
        rows.append(row_type(*values))
    if digest is not None:
        digest.update(b"\0")
    return tuple(rows)


def _check_server(
    conn: psycopg.Connection[TupleRow], statement: sql.Composed | None, server: str
) -> None:
    found = _fetch(conn, statement, {"server": server}, _ServerRow)
    if not found:
        raise SourceError(f"dokploy has no server with id {server!r}")
    if found[0].server_type == "build":
        raise SourceError(f"dokploy server {server!r} is a build server and runs no traefik")


def _first_forward_auth(rows: tuple[ForwardAuthRow, ...]) -> ForwardAuthRow | None:
    # The unique constraint on serverId does not stop several rows with serverId NULL
    # (NULLs are distinct); take the oldest, by Python's ordering, not the database collation.
    return min(rows, key=lambda row: (row.created_at, row.settings_id), default=None)


def describe_target(conninfo: str) -> str:
    """Name the database a connection string points at, for messages; never its password.

    Raises:
        SourceError: the connection string does not parse.
    """
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        # The parser quotes fragments of the string, which may be part of a password.
        raise SourceError("the database connection string is not valid") from None
    host = params.get("host") or params.get("hostaddr") or "(default host)"
    port = params.get("port")
    where = f"{host}:{port}" if port else str(host)
    # libpq's default database is the one named after the user.
    dbname = params.get("dbname") or params.get("user") or "(default)"
    return f"database {str(dbname)!r} on {where!r}"


def _secrets_of(conninfo: str, password: str | None) -> tuple[str, ...]:
    found = conninfo_to_dict(conninfo).get("password")
    return tuple(str(secret) for secret in (password, found) if secret)


_PASSWORD_PARAM = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def _mask(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    text = _PASSWORD_PARAM.sub(r"\1***", text)
    return _URL_PASSWORD.sub(r"\1***@", text)


def _source_error(
    doing: str, target: str, exc: psycopg.Error, secrets: Sequence[str]
) -> SourceError:
    detail = " ".join(str(exc).split())
    return SourceError(f"could not {doing} the dokploy {target}: {_mask(detail, secrets)}")


def _raise_source_error(
    doing: str, target: str, exc: psycopg.Error, secrets: Sequence[str]
) -> NoReturn:
    error = _source_error(doing, target, exc, secrets)
    # Keep the driver's error as the cause only when it holds nothing that had to be masked.
    clean = _mask(str(exc), secrets) == str(exc)
    raise error from (exc if clean else None)


@contextmanager
def reading(conninfo: str, password: str | None = None) -> Iterator[None]:
    """Turn driver errors raised inside the block into SourceError, password masked."""
    target = describe_target(conninfo)
    try:
        yield
    except psycopg.Error as exc:
        _raise_source_error("read", target, exc, _secrets_of(conninfo, password))


@contextmanager
def open_snapshot(
    conninfo: str, *, password: str | None = None, connect_timeout: float = 10.0
) -> Iterator[psycopg.Connection[TupleRow]]:
    """Connect and hold one `REPEATABLE READ READ ONLY` transaction for the whole block.

    Every statement run on the yielded connection sees the same snapshot, so a Dokploy
    edit made meanwhile can never be half-read; a write fails in the server.

    Raises:
        SourceError: the connection string is invalid or the server cannot be reached.
    """
    conn = _connect(conninfo, password, connect_timeout)
    with conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            yield conn


# A read blocked by a lock (a running Dokploy migration) or a dead peer must fail, not hang:
# the server ends a statement after 30 s, and keepalives notice a peer that went away.
SESSION_LIMITS: dict[str, str | int] = {
    "options": "-c statement_timeout=30s -c idle_in_transaction_session_timeout=60s",
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


def limited(conninfo: str) -> str:
    """The connection string with SESSION_LIMITS added (they win over the caller's)."""
    return make_conninfo(conninfo, **SESSION_LIMITS)


def _connect(conninfo: str, password: str | None, timeout: float) -> psycopg.Connection[TupleRow]:
    target = describe_target(conninfo)
    # libpq takes whole seconds, and 0 would mean "wait forever".
    seconds = max(1, math.ceil(timeout))
    try:
        # A None password is dropped by psycopg, leaving the conninfo's own.
        return psycopg.connect(limited(conninfo), connect_timeout=seconds, password=password)
    except psycopg.Error as exc:
        _raise_source_error("connect to", target, exc, _secrets_of(conninfo, password))
