"""Cheap change detection for the sidecar: has anything routing-relevant changed?

Every poll runs one read-only statement over one kept connection: per routing table the row
count and the sum and maximum of the rows' `xmin` (the id of the transaction that wrote
each row version). Any committed insert or update writes a new xmin; a delete lowers the
count. No column value is read, so no secret either, and nothing is written: no trigger, no
LISTEN. The full plan runs only when the fingerprint moves.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from traefik_gen.errors import SourceError
from traefik_gen.sources.dokploy.delta import Delta, ReadBase, read_delta
from traefik_gen.sources.dokploy.queries import describe_target, limited, reading
from traefik_gen.sources.dokploy.schema import probe_schema

__all__ = ["ChangeDetector", "Fingerprint"]

logger = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int, int], ...]

_WATCHED = (
    "application",
    "compose",
    "domain",
    "redirect",
    "security",
    "preview_deployments",
    "server",
    "forward_auth_settings",
)


class ChangeDetector:
    """Holds one read-only connection and answers the current fingerprint."""

    def __init__(self, conninfo: str, *, password: str | None, connect_timeout: float) -> None:
        self._conninfo = conninfo
        self._password = password
        self._timeout = max(1, round(connect_timeout))
        self._conn: psycopg.Connection[TupleRow] | None = None
        self._statement: sql.Composed | None = None

    def fingerprint(self) -> Fingerprint:
        """The fingerprint now; raises SourceError (and reconnects next time) on failure."""
        with reading(self._conninfo, self._password):
            try:
                conn = self._connection()
                assert self._statement is not None
                with conn.transaction():
                    rows = conn.execute(self._statement).fetchall()
            except psycopg.Error:
                self.close()
                raise
        return tuple((str(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows)

    def delta(self, base: ReadBase, server: str | None) -> Delta | None:
        """The owners touched since `base` and their rows, in one snapshot (see `delta`).

        None when only a full read can tell; raises SourceError as `fingerprint` does.
        """
        with reading(self._conninfo, self._password):
            try:
                conn = self._connection()
                with conn.transaction():
                    # Probed again: a Dokploy upgrade may have migrated the schema meanwhile.
                    return read_delta(conn, probe_schema(conn), base, server)
            except psycopg.Error:
                self.close()
                raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._statement = None

    def _connection(self) -> psycopg.Connection[TupleRow]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = psycopg.connect(
            limited(self._conninfo), connect_timeout=self._timeout, password=self._password
        )
        conn.read_only = True
        # A delta's statements must all see one snapshot; the fingerprint does not mind.
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            schema = probe_schema(conn)
            tables = [t for t in _WATCHED if schema.has_table(t)]
        if not tables:
            conn.close()
            raise SourceError(f"{describe_target(self._conninfo)} holds no Dokploy tables")
        self._statement = _statement(tables)
        self._conn = conn
        logger.debug("change detection watches %s", ", ".join(tables))
        return conn


def _statement(tables: Sequence[str]) -> sql.Composed:
    parts = [
        sql.SQL(
            "SELECT {name}, count(*), coalesce(sum(xmin::text::bigint), 0), "
            "coalesce(max(xmin::text::bigint), 0) FROM {table}"
        ).format(name=sql.Literal(table), table=sql.Identifier(table))
        for table in tables
    ]
    return sql.SQL(" UNION ALL ").join(parts)
