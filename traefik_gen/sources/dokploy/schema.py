"""Which Dokploy tables and columns this database has, probed from the system catalog.

Dokploy installs are upgraded by Drizzle migrations, and an install can sit at any of
them: routing columns such as `domain.enabled` (v0.30.0) or `domain.middlewares` (v0.29.0)
may be missing. The reader asks this probe, inside its own snapshot, what it may select.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from psycopg.rows import TupleRow

from traefik_gen.errors import SourceError

__all__ = ["REQUIRED_COLUMNS", "Schema", "probe_schema"]

logger = logging.getLogger(__name__)

# Present since Dokploy's first migration; without them the database is not Dokploy's, and
# reading on would silently lose basic auth (security) or redirects.
REQUIRED_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "application": ("applicationId", "appName"),
    "domain": (
        "domainId",
        "host",
        "https",
        "port",
        "path",
        "uniqueConfigKey",
        "applicationId",
        "certificateType",
    ),
    "redirect": ("redirectId", "regex", "replacement", "permanent", "uniqueConfigKey"),
    "security": ("securityId", "username", "password", "applicationId"),
}

_PROBED_TABLES = (
    "application",
    "compose",
    "domain",
    "forward_auth_settings",
    "preview_deployments",
    "redirect",
    "security",
    "server",
)

# pg_catalog, not information_schema: the latter hides columns the role holds no privilege
# on, and a hidden `enabled` or `forwardAuthEnabled` would be read as its default (every
# domain enabled, no forward auth). Here such a column is selected and fails the read.
_PROBE = """
    SELECT c.relname::text, a.attname::text
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
    WHERE c.relnamespace = current_schema()::regnamespace
      AND c.relname = ANY(%s)
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND a.attnum > 0
      AND NOT a.attisdropped
"""


@dataclass(frozen=True, slots=True)
class Schema:
    """The routing tables of one database and their columns (case-sensitive names)."""

    columns: Mapping[str, frozenset[str]]

    def has_table(self, table: str) -> bool:
        return table in self.columns

    def has(self, table: str, column: str) -> bool:
        return column in self.columns.get(table, frozenset())


def probe_schema(conn: psycopg.Connection[TupleRow]) -> Schema:
    """Read the columns of the routing tables; raise SourceError if a required one is absent.

    Raises:
        SourceError: a table or column every Dokploy version has is missing.
    """
    rows = conn.execute(_PROBE, (list(_PROBED_TABLES),)).fetchall()
    schema = _collect(rows)
    _check_required(schema)
    logger.debug("dokploy schema has tables %s", ", ".join(sorted(schema.columns)))
    return schema


def _collect(rows: list[TupleRow]) -> Schema:
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(str(table), set()).add(str(column))
    return Schema({table: frozenset(cols) for table, cols in found.items()})


def _check_required(schema: Schema) -> None:
    for table, columns in REQUIRED_COLUMNS.items():
        if not schema.has_table(table):
            raise SourceError(f"this database has no dokploy table {table!r}")
        missing = [column for column in columns if not schema.has(table, column)]
        if missing:
            raise SourceError(f"dokploy table {table!r} lacks column(s) {', '.join(missing)}")
