"""Where desired routes come from: the Dokploy database, routes files, or both at once."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path

from traefik_gen.routes import DesiredState, Owner, Rejection
from traefik_gen.settings import Settings, SourceSpec
from traefik_gen.sources.dokploy import read_source_rows
from traefik_gen.sources.dokploy.delta import ReadBase
from traefik_gen.sources.dokploy.mapping import map_rows
from traefik_gen.sources.dokploy.queries import SourceRows
from traefik_gen.sources.routes_file import read_bytes, read_routes_file

__all__ = ["SourceRead", "fetch_sources", "read_sources"]

logger = logging.getLogger(__name__)


class SourceRead:
    """One read of every configured source: a digest of all it read, mapped when asked.

    Mapping costs far more than reading, and a caller that finds the digest unchanged
    since its last run has no use for the mapped routes.
    """

    def __init__(
        self,
        parts: list[tuple[str, bytes, Callable[[], DesiredState]]],
        base: ReadBase | None = None,
    ) -> None:
        digest = hashlib.sha256()
        for described, part_digest, _ in parts:
            digest.update(described.encode() + b"\0" + part_digest)
        # Covers passwords too: compared and keyed (auth.PasswordHasher.keyed), never shown.
        self.digest = digest.digest()
        self._parts = parts
        self._desired: DesiredState | None = None
        # Set when the only source is a database and the caller asked for it.
        self.base = base

    def __repr__(self) -> str:
        return f"SourceRead({', '.join(described for described, _, _ in self._parts)})"

    def desired(self) -> DesiredState:
        """Every source's owners and rejections, in source order (mapped once)."""
        if self._desired is None:
            owners: list[Owner] = []
            rejections: list[Rejection] = []
            for described, _, mapped in self._parts:
                state = mapped()
                logger.debug("read %d owners from %s", len(state.owners), described)
                owners.extend(state.owners)
                rejections.extend(state.rejections)
            self._desired = DesiredState(owners=tuple(owners), rejections=tuple(rejections))
        return self._desired


def fetch_sources(settings: Settings, *, with_base: bool = False) -> SourceRead:
    """Read every configured source, in order; any source failing fails the whole read.

    `with_base`: keep what a delta of a single database source starts from (`base`).
    """
    parts: list[tuple[str, bytes, Callable[[], DesiredState]]] = []
    specs = settings.sources()
    base = None
    for spec in specs:
        if spec.is_database:
            rows, base = _read_database(settings, spec, with_base and len(specs) == 1)
            parts.append((spec.describe(), rows.digest, partial(map_rows, rows)))
        else:
            path = Path(spec.text)
            content = read_bytes(path)
            digest = hashlib.sha256(content).digest()
            parts.append((spec.describe(), digest, partial(read_routes_file, path, content)))
    return SourceRead(parts, base)


def read_sources(settings: Settings) -> DesiredState:
    """Every configured source's desired routes (see `fetch_sources`)."""
    return fetch_sources(settings).desired()


def _read_database(
    settings: Settings, spec: SourceSpec, with_base: bool
) -> tuple[SourceRows, ReadBase | None]:
    return read_source_rows(
        settings.conninfo(spec),
        server=None if settings.server == "local" else settings.server,
        password=settings.password(),
        connect_timeout=settings.connect_timeout,
        with_base=with_base,
    )
