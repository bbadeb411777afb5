"""The sidecar's incremental sync: plan, render and write only the owners a delta touched.

After a full sync the sidecar keeps the directory as that sync left it (`Converged`): every
file's bytes and planned data, which file each owner has, which file claims each object
name, and what was rejected. A delta (`sources.dokploy.delta`) names the owners whose rows
changed and brings their rows; only those are mapped, planned against the names the other
files claim, rendered and written, with the generation marker last.

The result must be exactly what a full sync would write. Whatever could make it differ
answers None, and the caller runs the full sync: a rejection, a kept file, a name clash,
more routers removed than the
mass-removal guard lets pass unjudged, an owner not served in this
mode, or a file name a foreign file holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from traefik_gen.auth import PasswordHasher
from traefik_gen.plan import DirectoryView, Plan, plan_owners
from traefik_gen.render import parse_rendered, render
from traefik_gen.routes import OwnerKind, Rejection
from traefik_gen.settings import Settings
from traefik_gen.sources.dokploy.delta import Delta, ReadBase
from traefik_gen.sources.dokploy.mapping import map_rows
from traefik_gen.sync import (
    SyncResult,
    generation_marker,
    marker_filename,
    plan_options,
    section_names,
)
from traefik_gen.writer import DirectoryState, apply

__all__ = ["Converged", "converged_after", "sync_delta"]

logger = logging.getLogger(__name__)

OwnerKey = tuple[OwnerKind, str]


@dataclass
class Converged:
    """The directory as the last sync left it, in the terms an incremental sync needs."""

    base: ReadBase
    files: dict[str, bytes]
    owner_files: dict[OwnerKey, str]
    claims: dict[tuple[str, str], str]
    foreign_names: dict[str, set[str]]
    foreign: tuple[Path, ...]
    rejections: list[Rejection] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    # Each file's router names (every section) and number of HTTP routers.
    routers: dict[str, frozenset[str]] = field(default_factory=dict)
    http_routers: dict[str, int] = field(default_factory=dict)
    # The files' digests, by content identity (see sync.generation_marker).
    digests: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)


def converged_after(result: SyncResult) -> Converged | None:
    """What a full sync leaves for incremental ones; None if it cannot be followed exactly."""
    plan = result.plan
    if result.base is None or result.view is None or result.state is None or plan.kept:
        return None
    if plan.files:
        raise AssertionError("an incremental sync follows only a plan made with a renderer")
    return Converged(
        base=result.base,
        files=dict(result.files),
        owner_files=dict(plan.owner_files),
        claims=dict(plan.claims),
        foreign_names=result.view.foreign_names,
        foreign=result.state.foreign,
        rejections=list(plan.rejections),
        notices=list(plan.notices),
        routers=dict(plan.router_names),
        http_routers=dict(plan.http_routers),
    )


def sync_delta(
    settings: Settings,
    converged: Converged,
    delta: Delta,
    replicas: dict[tuple[str, str], tuple[str, ...]] | None = None,
) -> SyncResult | None:
    """Write what `delta` changes; None (nothing written) when a full sync must decide."""
    if converged.rejections or converged.notices:
        # Limitation: with any row rejected, every change takes the full sync, which reports it.
        return None
    desired = map_rows(delta.rows)
    if desired.rejections or any(owner.users for owner in desired.owners):
        # Limitation: basic-auth owners take the full sync (the hash cache keeps one run's hashes).
        return None
    keys = _keys(delta)
    old_files = {converged.owner_files[key] for key in keys if key in converged.owner_files}
    previous = {
        name: parse_rendered(converged.files[name], settings.format)
        for name in old_files
        if name in converged.files
    }
    # Updated in place: a None or a failure from here on is always followed by a full sync.
    claims = converged.claims
    for file, data in previous.items():
        for section, names in section_names(data).items():
            for name in names:
                if claims.get((section, name)) == file:
                    del claims[(section, name)]
    view = DirectoryView(foreign_names=converged.foreign_names, previous=previous)
    plan = plan_owners(
        desired.owners,
        plan_options(settings),
        view,
        # Never asked for a hash: owners with basic-auth users were sent to the full sync.
        PasswordHasher(None),
        claims,
        replicas,
        renderer=lambda data: render(data, settings.format),
    )
    if (
        plan is None
        or plan.rejections
        or plan.kept
        or not _safe(converged, plan, old_files, settings)
    ):
        return None
    files = _files_after(converged, plan, old_files, settings)
    state = DirectoryState(
        prefix=settings.file_prefix, owned=converged.files, foreign=converged.foreign
    )
    write = apply(settings.out, files, state)
    _advance(converged, plan, old_files, keys, files)
    summary = Plan(
        rejections=list(converged.rejections),
        notices=list(converged.notices),
        routers=sum(converged.http_routers.values()),
    )
    logger.debug("incremental sync of %d owners: %d files written", len(keys), len(write.written))
    return SyncResult(plan=summary, write=write, files=files)


def _keys(delta: Delta) -> set[OwnerKey]:
    subset = delta.subset
    keys: set[OwnerKey] = set()
    for app in subset.apps:
        keys.update({(OwnerKind.APPLICATION, app), (OwnerKind.LABELS, app)})
    keys.update((OwnerKind.PREVIEW, preview) for preview in subset.previews)
    keys.update((OwnerKind.COMPOSE, compose) for compose in subset.composes)
    return keys


def _safe(converged: Converged, plan: Plan, old_files: set[str], settings: Settings) -> bool:
    """No file name a foreign file holds, and no more routers removed than the guard's floor.

    Past the floor, the full sync's mass-removal guard judges the share.
    """
    foreign_top = {path.name for path in converged.foreign if path.parent == settings.out}
    if foreign_top & set(plan.contents):
        return False
    before = set().union(*(converged.routers.get(name, ()) for name in old_files))
    after = set().union(*plan.router_names.values())
    return len(before - after) <= settings.removal_floor


def _files_after(
    converged: Converged, plan: Plan, old_files: set[str], settings: Settings
) -> dict[str, bytes]:
    marker = marker_filename(settings)
    files = {
        name: content
        for name, content in converged.files.items()
        if name not in old_files and name != marker
    }
    files.update(plan.contents)
    if files:
        name, data = generation_marker(files, settings, converged.digests)
        files[name] = render(data, settings.format)
    return files


def _advance(
    converged: Converged,
    plan: Plan,
    old_files: set[str],
    keys: set[OwnerKey],
    files: dict[str, bytes],
) -> None:
    for name in old_files:
        converged.routers.pop(name, None)
        converged.http_routers.pop(name, None)
    for key in keys:
        converged.owner_files.pop(key, None)
    converged.routers.update(plan.router_names)
    converged.http_routers.update(plan.http_routers)
    converged.owner_files.update(plan.owner_files)
    converged.files = files
