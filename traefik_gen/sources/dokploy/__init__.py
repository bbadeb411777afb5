"""The Dokploy database as a source of desired routes, read in one read-only snapshot.

`read_desired_state` returns every owner of one Traefik instance (the Dokploy host, or one
remote server): applications, preview deployments, compose services, and applications'
swarm labels, whatever mode the caller will use them in.
"""

from __future__ import annotations

import logging

from traefik_gen.routes import DesiredState
from traefik_gen.sources.dokploy.delta import ReadBase, read_base
from traefik_gen.sources.dokploy.mapping import map_rows
from traefik_gen.sources.dokploy.queries import SourceRows, open_snapshot, read_rows, reading
from traefik_gen.sources.dokploy.schema import probe_schema

__all__ = ["open_snapshot", "read_desired_state", "read_source_rows"]

logger = logging.getLogger(__name__)


def read_desired_state(
    conninfo: str,
    *,
    server: str | None,
    password: str | None = None,
    connect_timeout: float = 10.0,
) -> DesiredState:
    """Read the routing rows of one Traefik instance and map them with Dokploy's meaning.

    Args:
        conninfo: a libpq connection string or URL for Dokploy's database.
        server: a `server.serverId`, or None for the Traefik on the Dokploy host.
        password: the database password, kept out of the connection string.
        connect_timeout: seconds to wait for the connection (rounded up to whole seconds).

    Raises:
        SourceError: the database cannot be reached or read, is not Dokploy's, or the
            server is unknown or a build server.
    """
    rows, _ = read_source_rows(
        conninfo, server=server, password=password, connect_timeout=connect_timeout
    )
    state = map_rows(rows)
    logger.debug(
        "dokploy source for server %s: %d owners, %d rejections",
        server or "local",
        len(state.owners),
        len(state.rejections),
    )
    return state


def read_source_rows(
    conninfo: str,
    *,
    server: str | None,
    password: str | None = None,
    connect_timeout: float = 10.0,
    with_base: bool = False,
) -> tuple[SourceRows, ReadBase | None]:
    """The routing rows of one Traefik instance, unmapped (see `read_desired_state`).

    `with_base` also reads, in the same snapshot, what later deltas start from.
    """
    with (
        reading(conninfo, password),
        open_snapshot(conninfo, password=password, connect_timeout=connect_timeout) as conn,
    ):
        schema = probe_schema(conn)
        rows = read_rows(conn, schema, server)
        return rows, read_base(conn, schema, rows) if with_base else None
