"""Where desired routes come from: the Dokploy database, routes files, or both at once."""

from __future__ import annotations

import hashlib
import heapq
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from traefik_gen.plan import plan_order
from traefik_gen.routes import DesiredState, Owner, Rejection
from traefik_gen.settings import Settings, SourceSpec
from traefik_gen.sources.dokploy import read_source_rows
from traefik_gen.sources.dokploy.delta import ReadBase
from traefik_gen.sources.dokploy.mapping import iter_owners, map_rows, rejection_order
from traefik_gen.sources.dokploy.queries import SourceRows
from traefik_gen.sources.routes_file import read_bytes, read_routes_file

__all__ = ["SourceRead", "fetch_sources", "read_sources"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Part:
    """One source as read: its description and digest, and its rows or its routes."""

    described: str
    digest: bytes
    rows: SourceRows | None = None
    routes: DesiredState | None = None

    def desired(self) -> DesiredState:
        return map_rows(self.rows) if self.rows is not None else self._routes()

    def stream(self, rejections: list[Rejection]) -> Iterator[Owner]:
        if self.rows is not None:
            return iter_owners(self.rows, rejections)
        routes = self._routes()
        rejections.extend(routes.rejections)
        return iter(sorted(routes.owners, key=plan_order))

    def ordered(self, rejections: list[Rejection]) -> list[Rejection]:
        # The order `desired` gives: a database's sorted, a routes file's as written.
        return sorted(rejections, key=rejection_order) if self.rows is not None else rejections

    def _routes(self) -> DesiredState:
        assert self.routes is not None
        return self.routes


class SourceRead:
    """One read of every configured source: a digest of all it read, mapped when asked.

    Mapping costs far more than reading: a caller that finds the digest unchanged since
    its last run maps nothing, and a planner takes the owners one at a time (`owners`).
    """

    def __init__(self, parts: list[_Part], base: ReadBase | None = None) -> None:
        digest = hashlib.sha256()
        for part in parts:
            digest.update(part.described.encode() + b"\0" + part.digest)
        # Covers passwords too: compared and keyed (auth.PasswordHasher.keyed), never shown.
        self.digest = digest.digest()
        self._parts = parts
        self._lists: list[list[Rejection]] = [[] for _ in parts]
        self._taken = [0 for _ in parts]
        # Set when the only source is a database and the caller asked for it.
        self.base = base

    def __repr__(self) -> str:
        return f"SourceRead({', '.join(part.described for part in self._parts)})"

    def desired(self) -> DesiredState:
        """Every source's owners and rejections, in source order, all in memory."""
        owners: list[Owner] = []
        rejections: list[Rejection] = []
        for part in self._parts:
            state = part.desired()
            logger.debug("read %d owners from %s", len(state.owners), part.described)
            owners.extend(state.owners)
            rejections.extend(state.rejections)
        return DesiredState(owners=tuple(owners), rejections=tuple(rejections))

    # The planner's OwnerSource: each owner mapped only when it is taken.

    def owners(self) -> Iterable[Owner]:
        streams = [part.stream(found) for part, found in zip(self._parts, self._lists, strict=True)]
        return heapq.merge(*streams, key=plan_order)

    def new_rejections(self) -> list[Rejection]:
        new: list[Rejection] = []
        for index, found in enumerate(self._lists):
            new.extend(found[self._taken[index] :])
            self._taken[index] = len(found)
        return new

    def rejections(self) -> list[Rejection]:
        ordered: list[Rejection] = []
        for part, found in zip(self._parts, self._lists, strict=True):
            ordered.extend(part.ordered(found))
        return ordered


def fetch_sources(settings: Settings, *, with_base: bool = False) -> SourceRead:
    """Read every configured source, in order; any source failing fails the whole read.

    `with_base`: keep what a delta of a single database source starts from (`base`).
    """
    parts: list[_Part] = []
    specs = settings.sources()
    base = None
    for spec in specs:
        if spec.is_database:
            rows, base = _read_database(settings, spec, with_base and len(specs) == 1)
            parts.append(_Part(spec.describe(), rows.digest, rows=rows))
        else:
            path = Path(spec.text)
            content = read_bytes(path)
            routes = read_routes_file(path, content)
            parts.append(_Part(spec.describe(), hashlib.sha256(content).digest(), routes=routes))
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
