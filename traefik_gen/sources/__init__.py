"""Where desired routes come from: the Dokploy database, routes files, or both at once."""

from __future__ import annotations

import logging
from pathlib import Path

from traefik_gen.routes import DesiredState, Owner, Rejection
from traefik_gen.settings import Settings, SourceSpec
from traefik_gen.sources.dokploy import read_desired_state
from traefik_gen.sources.routes_file import read_routes_file

__all__ = ["read_sources"]

logger = logging.getLogger(__name__)


def read_sources(settings: Settings) -> DesiredState:
    """Every configured source, read in order; any source failing fails the whole read."""
    owners: list[Owner] = []
    rejections: list[Rejection] = []
    for spec in settings.sources():
        if spec.is_database:
            state = _read_database(settings, spec)
        else:
            state = read_routes_file(Path(spec.text))
        logger.debug("read %d owners from %s", len(state.owners), spec.describe())
        owners.extend(state.owners)
        rejections.extend(state.rejections)
    return DesiredState(owners=tuple(owners), rejections=tuple(rejections))


def _read_database(settings: Settings, spec: SourceSpec) -> DesiredState:
    return read_desired_state(
        settings.conninfo(spec),
        server=None if settings.server == "local" else settings.server,
        password=settings.password(),
        connect_timeout=settings.connect_timeout,
    )
