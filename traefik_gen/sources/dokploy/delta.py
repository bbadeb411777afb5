"""What changed in Dokploy's routing rows since a full read, and the rows of the owners it touches.

A full read in the sidecar also records its snapshot's horizon (the oldest transaction
still running when the snapshot was taken) and the id of every row of every routing table.
Every row version written since then has an `xmin` at or above that horizon, so one cheap
statement per table finds them; a row count that the ids known plus the new ones cannot
explain means a delete. From the changed rows and the parents they had and have, the
delta names the owners they touch and reads only those owners' rows, in one snapshot.

Whatever this cannot follow exactly (a delete, a changed server or forward-auth row, a
transaction id epoch that moved) answers None, and the caller reads everything again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from traefik_gen.sources.dokploy.queries import SourceRows, Subset, read_rows
from traefik_gen.sources.dokploy.schema import Schema

__all__ = ["Delta", "ReadBase", "read_base", "read_delta", "snapshot_horizon"]

logger = logging.getLogger(__name__)

_EPOCH = 1 << 32
# age() compares transaction ids modulo 2^32, so only within half of that, with room.
_REACH = 1 << 30
# Each routing table's id column. A changed row of the two tables after it means a full read.
_IDS = {
    "application": "applicationId",
    "compose": "composeId",
    "domain": "domainId",
    "redirect": "redirectId",
    "security": "securityId",
    "preview_deployments": "previewDeploymentId",
}
_GLOBAL = {"server": "serverId", "forward_auth_settings": "forwardAuthSettingsId"}
# The parent columns of a changed row that say which owners it touches.
_PARENTS = {
    "domain": ("applicationId", "composeId", "previewDeploymentId"),
    "redirect": ("applicationId",),
    "security": ("applicationId",),
    "preview_deployments": ("applicationId",),
}
_WIDEST = max(len(parents) for parents in _PARENTS.values())


@dataclass
class ReadBase:
    """What a delta needs from the read before it: its horizon, ids and owners' children."""

    horizon: int
    ids: dict[str, set[str]]
    # Row id -> the owner ids it belonged to, from the rows last read.
    parents: dict[str, dict[str, tuple[str | None, ...]]] = field(default_factory=dict)
    previews_of: dict[str, set[str]] = field(default_factory=dict)

    def remember(self, rows: SourceRows) -> None:
        """Take in the parents of rows just read (a full read, or a delta's subset)."""
        for domain in rows.domains:
            self.parents.setdefault("domain", {})[domain.domain_id] = (
                domain.application_id,
                domain.compose_id,
                domain.preview_id,
            )
        for redirect in rows.redirects:
            self.parents.setdefault("redirect", {})[redirect.redirect_id] = (
                redirect.application_id,
            )
        for user in rows.users:
            self.parents.setdefault("security", {})[user.security_id] = (user.application_id,)
        for preview in rows.previews:
            self.previews_of.setdefault(preview.application_id, set()).add(preview.preview_id)


@dataclass(frozen=True)
class Delta:
    """The rows of every owner a change touched, and which owners those are."""

    rows: SourceRows
    subset: Subset


def snapshot_horizon(conn: psycopg.Connection[TupleRow]) -> int:
    """The oldest transaction id (with epoch) still running when this snapshot was taken."""
    if conn.info.server_version >= 130000:
        statement = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
    else:
        statement = "SELECT txid_snapshot_xmin(txid_current_snapshot())"
    row = conn.execute(statement).fetchone()
    assert row is not None
    return int(row[0])


def read_base(conn: psycopg.Connection[TupleRow], schema: Schema, rows: SourceRows) -> ReadBase:
    """The base for later deltas, read in the same snapshot as `rows`."""
    ids: dict[str, set[str]] = {}
    for table, column in (*_IDS.items(), *_GLOBAL.items()):
        if schema.has_table(table):
            statement = sql.SQL("SELECT {} FROM {}").format(
                sql.Identifier(column), sql.Identifier(table)
            )
            ids[table] = {str(row[0]) for row in conn.execute(statement)}
    base = ReadBase(horizon=snapshot_horizon(conn), ids=ids)
    base.remember(rows)
    return base


def read_delta(
    conn: psycopg.Connection[TupleRow], schema: Schema, base: ReadBase, server: str | None
) -> Delta | None:
    """The owners touched since `base`, with their rows; None when a full read is needed.

    Runs in the caller's REPEATABLE READ snapshot; on success `base` moves up to it.
    """
    horizon = snapshot_horizon(conn)
    if not 0 <= horizon - base.horizon < _REACH:
        logger.debug("too many transactions since the last read: a full read")
        return None
    since = base.horizon % _EPOCH
    changed = _changed(conn, schema, since)
    if any(changed.get(table) for table in _GLOBAL):
        logger.debug("a server or forward-auth row changed: a full read")
        return None
    if not _no_deletes(conn, base, changed):
        # Limitation: a delete leaves no row version to find by xmin, so it takes a full read.
        logger.debug("a row was deleted: a full read")
        return None
    subset = _touched(base, changed)
    rows = read_rows(conn, schema, server, subset)
    base.horizon = horizon
    for table, found in changed.items():
        base.ids.setdefault(table, set()).update(str(row[0]) for row in found)
    base.remember(rows)
    return Delta(rows=rows, subset=subset)


def _changed(
    conn: psycopg.Connection[TupleRow], schema: Schema, since: int
) -> dict[str, list[tuple[str | None, ...]]]:
    """Per table, the rows written at or after `since` as (id, *parents), in one statement."""
    parts = []
    for table, column in (*_IDS.items(), *_GLOBAL.items()):
        if not schema.has_table(table):
            continue
        parents = [
            sql.SQL("{}::text").format(sql.Identifier(p))
            if schema.has(table, p)
            else sql.SQL("NULL::text")
            for p in _PARENTS.get(table, ())
        ]
        padding = [sql.SQL("NULL::text")] * (_WIDEST - len(parents))
        parts.append(
            # age() is stable within a statement and cheaper than casting every xmin.
            sql.SQL(
                "SELECT {}, {}::text, {} FROM {} WHERE age(xmin) <= age(%(since)s::xid)"
            ).format(
                sql.Literal(table),
                sql.Identifier(column),
                sql.SQL(", ").join([*parents, *padding]),
                sql.Identifier(table),
            )
        )
    changed: dict[str, list[tuple[str | None, ...]]] = {
        table: [] for table in (*_IDS, *_GLOBAL) if schema.has_table(table)
    }
    params = {"since": str(since)}
    for table, *values in conn.execute(sql.SQL(" UNION ALL ").join(parts), params):
        width = 1 + len(_PARENTS.get(table, ()))
        changed[table].append(tuple(values[:width]))
    return changed


def _no_deletes(
    conn: psycopg.Connection[TupleRow],
    base: ReadBase,
    changed: dict[str, list[tuple[str | None, ...]]],
) -> bool:
    """Every table's row count is what the ids known before plus the new ones make."""
    tables = list(changed)
    counts = sql.SQL(", ").join(
        sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(table)) for table in tables
    )
    row = conn.execute(sql.SQL("SELECT {}").format(counts)).fetchone()
    assert row is not None
    for table, count in zip(tables, row, strict=True):
        known = base.ids.get(table, set())
        new = {str(found[0]) for found in changed[table]} - known
        if int(count) != len(known) + len(new):
            return False
    return True


def _touched(base: ReadBase, changed: dict[str, list[tuple[str | None, ...]]]) -> Subset:
    apps: set[str] = {str(row[0]) for row in changed.get("application", [])}
    composes: set[str] = {str(row[0]) for row in changed.get("compose", [])}
    previews: set[str] = {str(row[0]) for row in changed.get("preview_deployments", [])}
    for table in ("domain", "redirect", "security", "preview_deployments"):
        for row in changed.get(table, []):
            now = dict(zip(_PARENTS[table], row[1:], strict=True))
            before = base.parents.get(table, {}).get(str(row[0]), ())
            for parents in (now, dict(zip(_PARENTS[table], before, strict=False))):
                _add(apps, parents.get("applicationId") if table != "preview_deployments" else None)
                _add(composes, parents.get("composeId"))
                _add(previews, parents.get("previewDeploymentId"))
    for app in apps:
        # A preview is guarded by its parent's users and lives on its parent's server.
        previews.update(base.previews_of.get(app, ()))
    user_apps = set(apps)
    for app, owned in base.previews_of.items():
        if owned & previews:
            user_apps.add(app)
    user_apps.update(str(row[1]) for row in changed.get("preview_deployments", []) if row[1])
    return Subset(
        apps=frozenset(apps),
        previews=frozenset(previews),
        composes=frozenset(composes),
        user_apps=frozenset(user_apps),
    )


def _add(into: set[str], value: str | None) -> None:
    if value is not None:
        into.add(value)
