"""PostgreSQL for tests: the machine's server, and throwaway Dokploy-shaped databases.

`pg_admin_dsn` finds the server (127.0.0.1:5432, user postgres, trust auth, or the DSN in
TRAEFIK_GEN_TEST_PG). Each Dokploy fixture creates one database per test from a template
built once per session (`CREATE DATABASE ... TEMPLATE` copies files, far faster than
replaying the schema) and drops it afterwards. The `DokployDb` it yields has row factories
that supply what Dokploy's application code would: nanoid-like ids, appName, createdAt and
the ownership chain.
"""

from __future__ import annotations

import logging
import os
import secrets
import string
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Json

__all__ = [
    "App",
    "Compose",
    "DokployDb",
    "Domain",
    "Preview",
    "Redirect",
    "database_dsn",
    "dokploy_db",
    "dokploy_db_v0_13",
    "dokploy_db_v0_24",
    "pg_admin_dsn",
]

logger = logging.getLogger(__name__)

ENV_DSN = "TRAEFIK_GEN_TEST_PG"
DEFAULT_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
# Databases this plugin creates start with this, so a stray one is easy to recognise.
DB_PREFIX = "traefik_gen_test_"

_NANOID = string.ascii_letters + string.digits + "_-"
_LOWER = string.ascii_lowercase + string.digits
_PRIMARY_KEYS = {
    "application": "applicationId",
    "compose": "composeId",
    "domain": "domainId",
    "forward_auth_settings": "forwardAuthSettingsId",
    "preview_deployments": "previewDeploymentId",
    "redirect": "redirectId",
    "security": "securityId",
    "server": "serverId",
}


@dataclass(frozen=True)
class _Variant:
    """One Dokploy schema level: its SQL file and how rows hang off the ownership chain."""

    name: str
    sql_file: str
    chain: tuple[str, ...]
    parent_column: str
    parent_id: str
    owner_column: str
    owner_id: str


_CURRENT = _Variant(
    name="current",
    sql_file="dokploy_current.sql",
    chain=(
        """INSERT INTO "user" (id, name, email)
           VALUES ('user-fixture', 'Owner', 'o@example.com')""",
        """INSERT INTO organization (id, name, owner_id)
           VALUES ('org-fixture', 'Org', 'user-fixture')""",
        """INSERT INTO project ("projectId", name, "createdAt", "organizationId")
           VALUES ('project-fixture', 'Project', '2026-01-01T00:00:00.000Z', 'org-fixture')""",
        """INSERT INTO environment ("environmentId", name, "createdAt", "projectId", "isDefault")
           VALUES ('env-fixture', 'production', '2026-01-01T00:00:00.000Z',
                   'project-fixture', true)""",
    ),
    parent_column="environmentId",
    parent_id="env-fixture",
    owner_column="organizationId",
    owner_id="org-fixture",
)
_V0_24 = _Variant(
    name="v0_24",
    sql_file="dokploy_v0_24.sql",
    chain=_CURRENT.chain[:3],
    parent_column="projectId",
    parent_id="project-fixture",
    owner_column="organizationId",
    owner_id="org-fixture",
)
_V0_13 = _Variant(
    name="v0_13",
    sql_file="dokploy_v0_13.sql",
    chain=(
        """INSERT INTO auth (id, email, password, "createdAt")
           VALUES ('auth-fixture', 'o@example.com', 'not-a-real-hash',
                   '2024-01-01T00:00:00.000Z')""",
        """INSERT INTO admin ("adminId", "authId", "createdAt")
           VALUES ('admin-fixture', 'auth-fixture', '2024-01-01T00:00:00.000Z')""",
        """INSERT INTO project ("projectId", name, "createdAt", "adminId")
           VALUES ('project-fixture', 'Project', '2024-01-01T00:00:00.000Z', 'admin-fixture')""",
    ),
    parent_column="projectId",
    parent_id="project-fixture",
    owner_column="adminId",
    owner_id="admin-fixture",
)


@dataclass(frozen=True)
class App:
    id: str
    app_name: str


@dataclass(frozen=True)
class Compose:
    id: str
    app_name: str


@dataclass(frozen=True)
class Preview:
    id: str
    app_name: str
    application_id: str


@dataclass(frozen=True)
class Domain:
    id: str
    key: int


@dataclass(frozen=True)
class Redirect:
    id: str
    key: int


def nanoid() -> str:
    """A 21-character id from nanoid's alphabet, as Dokploy generates them."""
    return "".join(secrets.choice(_NANOID) for _ in range(21))


def _suffix(length: int = 6) -> str:
    return "".join(secrets.choice(_LOWER) for _ in range(length))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def database_dsn(admin_dsn: str, dbname: str) -> str:
    """The admin DSN pointed at another database of the same server."""
    return make_conninfo(admin_dsn, dbname=dbname)


class DokployDb:
    """One throwaway Dokploy database, with factories that insert rows the way Dokploy does.

    Column keyword arguments use Dokploy's camelCase column names verbatim, so a test reads
    like the row it creates: `db.add_domain(app, https=True, certificateType="letsencrypt")`.
    """

    def __init__(self, dsn: str, variant: _Variant, conn: psycopg.Connection[Any]) -> None:
        self.dsn = dsn
        self.variant = variant
        self._conn = conn
        self._columns: dict[str, frozenset[str]] = {}

    @property
    def url(self) -> str:
        """The database as the postgresql:// URL an operator gives `--source`."""
        parts = conninfo_to_dict(self.dsn)
        return f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"

    # --- plumbing -------------------------------------------------------------------------

    def execute(self, query: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Run one statement (autocommit) and return its rows, if it has any."""
        cursor = self._conn.execute(query.encode(), params)
        return cursor.fetchall() if cursor.description else []

    def columns(self, table: str) -> frozenset[str]:
        if table not in self._columns:
            rows = self.execute(
                "SELECT column_name::text FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %(table)s",
                {"table": table},
            )
            self._columns[table] = frozenset(row[0] for row in rows)
        return self._columns[table]

    def insert(self, table: str, values: Mapping[str, Any], returning: str) -> Any:
        """Insert one row; values whose column this schema lacks are a test error."""
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING {}").format(
            sql.Identifier(table),
            sql.SQL(", ").join(sql.Identifier(column) for column in values),
            sql.SQL(", ").join(sql.Placeholder(column) for column in values),
            sql.Identifier(returning),
        )
        cursor = self._conn.execute(query, {key: _adapt(value) for key, value in values.items()})
        row = cursor.fetchone()
        assert row is not None
        return row[0]

    def update(self, table: str, row_id: str, **columns: Any) -> None:
        query = sql.SQL("UPDATE {} SET {} WHERE {} = %(_id)s").format(
            sql.Identifier(table),
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column))
                for column in columns
            ),
            sql.Identifier(_PRIMARY_KEYS[table]),
        )
        params = {key: _adapt(value) for key, value in columns.items()} | {"_id": row_id}
        self._conn.execute(query, params)

    def delete(self, table: str, row_id: str) -> None:
        query = sql.SQL("DELETE FROM {} WHERE {} = %(_id)s").format(
            sql.Identifier(table), sql.Identifier(_PRIMARY_KEYS[table])
        )
        self._conn.execute(query, {"_id": row_id})

    def add_enum_value(self, enum: str, value: str) -> None:
        """Simulate a newer Dokploy that added an enum label this code does not know."""
        self._conn.execute(
            sql.SQL("ALTER TYPE {} ADD VALUE {}").format(sql.Identifier(enum), sql.Literal(value))
        )

    def _with_defaults(
        self, table: str, defaults: Mapping[str, Any], given: Mapping[str, Any]
    ) -> dict[str, Any]:
        present = self.columns(table)
        values = {key: value for key, value in defaults.items() if key in present}
        values.update(given)
        return values

    # --- factories ------------------------------------------------------------------------

    def add_server(self, name: str | None = None, **columns: Any) -> str:
        """A remote server (serverType 'deploy' by default where the column exists)."""
        server_id = nanoid()
        values = {
            "serverId": server_id,
            "name": name or f"server-{_suffix()}",
            "ipAddress": "192.0.2.10",
            "port": 22,
            "username": "root",
            "appName": f"server-{_suffix()}",
            "createdAt": _now(),
            self.variant.owner_column: self.variant.owner_id,
        }
        return str(self.insert("server", values | columns, "serverId"))

    def add_application(self, app_name: str | None = None, **columns: Any) -> App:
        app_id = nanoid()
        name = app_name or f"app-{_suffix()}"
        values = {
            "applicationId": app_id,
            "name": name,
            "appName": name,
            "createdAt": _now(),
            self.variant.parent_column: self.variant.parent_id,
        }
        self.insert("application", values | columns, "applicationId")
        return App(app_id, name)

    def add_compose(self, app_name: str | None = None, **columns: Any) -> Compose:
        compose_id = nanoid()
        name = app_name or f"compose-{_suffix()}"
        values = {
            "composeId": compose_id,
            "name": name,
            "appName": name,
            "createdAt": _now(),
            self.variant.parent_column: self.variant.parent_id,
        }
        self.insert("compose", values | columns, "composeId")
        return Compose(compose_id, name)

    def add_preview(self, parent: App, app_name: str | None = None, **columns: Any) -> Preview:
        """A preview deployment of `parent`, named `preview-<parent>-<6 chars>` like Dokploy."""
        preview_id = nanoid()
        name = app_name or f"preview-{parent.app_name}-{_suffix()}"
        values = {
            "previewDeploymentId": preview_id,
            "branch": "feature",
            "pullRequestId": "1",
            "pullRequestNumber": "1",
            "pullRequestURL": "https://example.com/pr/1",
            "pullRequestTitle": "A change",
            "pullRequestCommentId": "1",
            "appName": name,
            "applicationId": parent.id,
            "createdAt": _now(),
        }
        self.insert("preview_deployments", values | columns, "previewDeploymentId")
        return Preview(preview_id, name, parent.id)

    def add_domain(
        self, owner: App | Compose | Preview, host: str = "app.example.com", **columns: Any
    ) -> Domain:
        """A domain of an application, compose (serviceName 'web') or preview deployment."""
        domain_id = nanoid()
        defaults: dict[str, Any] = {"domainId": domain_id, "host": host, "createdAt": _now()}
        if isinstance(owner, App):
            defaults |= {"applicationId": owner.id, "domainType": "application"}
        elif isinstance(owner, Compose):
            defaults |= {"composeId": owner.id, "domainType": "compose", "serviceName": "web"}
        else:
            defaults |= {"previewDeploymentId": owner.id, "domainType": "preview"}
        values = self._with_defaults("domain", defaults, columns)
        key = int(self.insert("domain", values, "uniqueConfigKey"))
        if isinstance(owner, Preview):
            self.update("preview_deployments", owner.id, domainId=domain_id)
        return Domain(domain_id, key)

    def add_redirect(
        self,
        app: App,
        regex: str = "^https?://www\\.(.*)",
        replacement: str = "https://$1",
        **columns: Any,
    ) -> Redirect:
        redirect_id = nanoid()
        values = {
            "redirectId": redirect_id,
            "regex": regex,
            "replacement": replacement,
            "createdAt": _now(),
            "applicationId": app.id,
        }
        key = int(self.insert("redirect", values | columns, "uniqueConfigKey"))
        return Redirect(redirect_id, key)

    def add_security(
        self, app: App, username: str = "admin", password: str = "s3cret-pass", **columns: Any
    ) -> str:
        """A basic-auth user; Dokploy stores the password in plaintext."""
        values = {
            "securityId": nanoid(),
            "username": username,
            "password": password,
            "createdAt": _now(),
            "applicationId": app.id,
        }
        return str(self.insert("security", values | columns, "securityId"))

    def add_forward_auth(
        self, auth_domain: str = "auth.example.com", server_id: str | None = None, **columns: Any
    ) -> str:
        values = {
            "forwardAuthSettingsId": nanoid(),
            "authDomain": auth_domain,
            "baseDomain": "example.com",
            "serverId": server_id,
            "createdAt": _now(),
        }
        return str(self.insert("forward_auth_settings", values | columns, "forwardAuthSettingsId"))

    def set_labels(self, app: App, labels: Mapping[str, Any] | list[Any] | str | None) -> None:
        """Set application.labelsSwarm: a mapping or list as json, a str as raw json text."""
        value = labels if labels is None or isinstance(labels, str) else Json(labels)
        self.update("application", app.id, labelsSwarm=value)


def _adapt(value: Any) -> Any:
    # A dict for a json column must be wrapped; lists stay lists (text[] columns).
    return Json(value) if isinstance(value, dict) else value


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_admin_dsn() -> str:
    """A superuser DSN for the test PostgreSQL server; skip (fail on CI) if unreachable."""
    dsn = os.environ.get(ENV_DSN) or DEFAULT_ADMIN_DSN
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        params = conninfo_to_dict(dsn)
        where = f"{params.get('host', '(default host)')}:{params.get('port', 5432)}"
        reason = f"postgresql for tests is unreachable at {where}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return dsn


def _admin(admin_dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5)


def _create_database(admin_dsn: str, name: str, template: str | None = None) -> None:
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
    with _admin(admin_dsn) as conn:
        conn.execute(query)


def _drop_database(admin_dsn: str, name: str) -> None:
    with _admin(admin_dsn) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _build_template(admin_dsn: str, variant: _Variant) -> str:
    name = f"{DB_PREFIX}tpl_{variant.name}_{uuid.uuid4().hex[:10]}"
    _create_database(admin_dsn, name)
    script = (SQL_DIR / variant.sql_file).read_text(encoding="utf-8")
    with psycopg.connect(database_dsn(admin_dsn, name), autocommit=True) as conn:
        # Without parameters psycopg uses the simple protocol: the whole script in one go.
        conn.execute(script.encode())
        for statement in variant.chain:
            conn.execute(statement.encode())
    logger.debug("built template database %s", name)
    return name


def _template_fixture(variant: _Variant) -> Any:
    @pytest.fixture(scope="session", name=f"_template_{variant.name}")
    def template(pg_admin_dsn: str) -> Iterator[str]:
        name = _build_template(pg_admin_dsn, variant)
        yield name
        _drop_database(pg_admin_dsn, name)

    return template


_template_current = _template_fixture(_CURRENT)
_template_v0_24 = _template_fixture(_V0_24)
_template_v0_13 = _template_fixture(_V0_13)


def _database(admin_dsn: str, template: str, variant: _Variant) -> Iterator[DokployDb]:
    name = f"{DB_PREFIX}{variant.name}_{uuid.uuid4().hex[:12]}"
    _create_database(admin_dsn, name, template)
    dsn = database_dsn(admin_dsn, name)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            yield DokployDb(dsn, variant, conn)
    finally:
        _drop_database(admin_dsn, name)


@pytest.fixture
def dokploy_db(pg_admin_dsn: str, _template_current: str) -> Iterator[DokployDb]:
    """A fresh database with the current (v0.30) Dokploy schema."""
    yield from _database(pg_admin_dsn, _template_current, _CURRENT)


@pytest.fixture
def dokploy_db_v0_24(pg_admin_dsn: str, _template_v0_24: str) -> Iterator[DokployDb]:
    """A fresh database shaped like a v0.24 install (no enabled, middlewares, ...)."""
    yield from _database(pg_admin_dsn, _template_v0_24, _V0_24)


@pytest.fixture
def dokploy_db_v0_13(pg_admin_dsn: str, _template_v0_13: str) -> Iterator[DokployDb]:
    """A fresh database shaped like a v0.13 install (no previews, no 'custom', ...)."""
    yield from _database(pg_admin_dsn, _template_v0_13, _V0_13)
