"""The one plan-and-write path that `generate`, `--dry-run`, `--diff` and `watch` share.

source -> desired routes -> plan (config per file) -> bytes -> directory. A dry run and a
diff take exactly the same path as a real write and stop just before the first byte.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from traefik_gen.auth import PasswordHasher
from traefik_gen.errors import RemovalRefusedError
from traefik_gen.plan import DirectoryView, OwnerMemo, Plan, PlanOptions, build_plan
from traefik_gen.plan.domains import Entrypoints
from traefik_gen.record import Record, inputs_key, load_record, save_record
from traefik_gen.render import Format, parse_rendered, render
from traefik_gen.routes import DesiredState, Rejection, RowRef
from traefik_gen.settings import Settings
from traefik_gen.sources import fetch_sources
from traefik_gen.sources.dokploy.delta import ReadBase
from traefik_gen.writer import (
    STAGING_DIR,
    DirectoryState,
    WriteResult,
    apply,
    listing,
    scan,
    unified_diff,
)

__all__ = [
    "SyncMemo",
    "SyncResult",
    "bcrypt_cache",
    "plan_options",
    "rendered_files",
    "section_names",
    "sync",
]

logger = logging.getLogger(__name__)

_EXTENSIONS = {"yaml": ".yml", "toml": ".toml"}
# Section names as Traefik's keys, lowercased, to the planner's canonical section ids.
_SECTIONS = {
    ("http", "routers"): "http.routers",
    ("http", "services"): "http.services",
    ("http", "middlewares"): "http.middlewares",
    ("http", "models"): "http.models",
    ("http", "serverstransports"): "http.serversTransports",
    ("tcp", "routers"): "tcp.routers",
    ("tcp", "services"): "tcp.services",
    ("tcp", "middlewares"): "tcp.middlewares",
    ("tcp", "serverstransports"): "tcp.serversTransports",
    ("udp", "routers"): "udp.routers",
    ("udp", "services"): "udp.services",
    ("tls", "options"): "tls.options",
    ("tls", "stores"): "tls.stores",
}


@dataclass
class SyncResult:
    plan: Plan
    write: WriteResult
    files: dict[str, bytes] = field(default_factory=dict)
    diff: str | None = None
    # For the sidecar's incremental syncs: where deltas start, and the directory as seen.
    base: ReadBase | None = None
    view: DirectoryView | None = None
    state: DirectoryState | None = None


@dataclass
class SyncMemo:
    """What one sync leaves for the next in a long-running process (the sidecar).

    Owned files read back, by their bytes; owners' plans (see OwnerMemo); rendered bytes,
    by the identity of the planned data they came from.
    """

    owners: OwnerMemo = field(default_factory=OwnerMemo)
    parsed: dict[str, tuple[bytes, dict[str, Any]]] = field(default_factory=dict)
    rendered: dict[str, tuple[dict[str, Any], bytes]] = field(default_factory=dict)


def plan_options(settings: Settings) -> PlanOptions:
    return PlanOptions(
        mode=settings.mode,
        file_prefix=settings.file_prefix,
        name_prefix=settings.name_prefix,
        extension=_EXTENSIONS[settings.format],
        upstream=settings.upstream,
        entrypoints=Entrypoints(settings.entrypoint_web, settings.entrypoint_websecure),
        exposed_by_default=settings.exposed_by_default,
    )


def sync(
    settings: Settings,
    *,
    dry_run: bool = False,
    diff: bool = False,
    desired: DesiredState | None = None,
    replicas: Mapping[tuple[str, str], tuple[str, ...]] | None = None,
    memo: SyncMemo | None = None,
) -> SyncResult:
    """Read the sources, plan, and bring the directory to the plan (or show what would change).

    A `memo` kept across calls spares unchanged owners their planning and rendering. A run
    without one (one-shot `generate`) that finds the sources, settings and directory as
    its last run left them replays that run's outcome instead (see `traefik_gen.record`).
    """
    out = settings.out
    preview = dry_run or diff
    hasher = PasswordHasher(bcrypt_cache(out), rounds=settings.bcrypt_rounds)
    inputs = None
    base = None
    if desired is None:
        read = fetch_sources(settings, with_base=memo is not None)
        if memo is None and not preview:
            inputs = inputs_key(read, settings, replicas, hasher)
            record = load_record(out, inputs, prefix=settings.file_prefix)
            if record is not None:
                logger.debug("sources, settings and directory are as the last run left them")
                return _replayed(record)
        desired = read.desired()
        base = read.base
    state = scan(out, prefix=settings.file_prefix, create=not preview)
    view = directory_view(state, memo.parsed if memo is not None else None)
    owners = memo.owners if memo is not None else None
    plan = build_plan(desired, plan_options(settings), view, hasher, replicas, owners)
    files = rendered_files(plan, state, settings, memo.rendered if memo is not None else None)
    _guard_removals(view, plan, settings)
    result = SyncResult(plan=plan, write=apply(out, files, state, dry_run=preview), files=files)
    result.base, result.view, result.state = base, view, state
    if diff:
        result.diff = unified_diff(out, files, state)
    if not preview:
        hasher.save()
    if inputs is not None:
        save_record(out, _record_of(result, inputs, settings))
    return result


def bcrypt_cache(out: Path) -> Path:
    return out / STAGING_DIR / "bcrypt-cache"


def _replayed(record: Record) -> SyncResult:
    plan = Plan(
        rejections=list(record.rejections), notices=list(record.notices), routers=record.routers
    )
    return SyncResult(plan=plan, write=WriteResult(unchanged=list(record.names)))


def _record_of(result: SyncResult, inputs: str, settings: Settings) -> Record:
    return Record(
        inputs=inputs,
        listing=listing(settings.out, prefix=settings.file_prefix),
        routers=result.plan.routers,
        rejections=tuple(result.plan.rejections),
        notices=tuple(result.plan.notices),
        names=tuple(sorted(result.files)),
    )


def rendered_files(
    plan: Plan,
    state: DirectoryState,
    settings: Settings,
    memo: dict[str, tuple[dict[str, Any], bytes]] | None = None,
) -> dict[str, bytes]:
    """The bytes of every file of the plan: rendered, kept ones as they are, the marker."""
    files = {name: _render_one(name, data, settings, memo) for name, data in plan.files.items()}
    if memo is not None:
        for name in set(memo) - set(plan.files):
            del memo[name]
    for name in plan.kept:
        files[name] = state.owned[name]
    _drop_taken_names(files, plan, state, settings)
    if files:
        name, data = generation_marker(files, settings)
        files[name] = render(data, settings.format)
    return files


def _drop_taken_names(
    files: dict[str, bytes], plan: Plan, state: DirectoryState, settings: Settings
) -> None:
    """A foreign file holding one owner's file name costs that owner only, never the rest."""
    taken = {path.name for path in state.foreign if path.parent == settings.out}
    for name in sorted(taken & set(files)):
        del files[name]
        plan.rejections.append(
            Rejection(
                ref=RowRef(table="directory", row_id=name, app=name),
                field="file",
                reason=f"'{settings.out / name}' exists and is not traefik-gen's "
                "(no header); this owner is not written until it is moved away",
            )
        )


def _render_one(
    name: str,
    data: dict[str, Any],
    settings: Settings,
    memo: dict[str, tuple[dict[str, Any], bytes]] | None,
) -> bytes:
    hit = memo.get(name) if memo is not None else None
    if hit is not None and hit[0] is data:
        return hit[1]
    content = render(data, settings.format)
    if memo is not None:
        memo[name] = (data, content)
    return content


def marker_filename(settings: Settings) -> str:
    """The marker's file; it sorts after every owner's file, so it is renamed last."""
    return f"{settings.file_prefix}zz-generation{_EXTENSIONS[settings.format]}"


def generation_marker(
    files: Mapping[str, bytes],
    settings: Settings,
    digests: dict[str, tuple[bytes, bytes]] | None = None,
) -> tuple[str, dict[str, Any]]:
    """A middleware named after the hash of every other file of this generation.

    Traefik's file provider applies the whole directory or nothing, so once this unused
    middleware shows in Traefik's API, every file of the generation has been accepted.
    `digests` (kept by the caller, by content identity) spares hashing unchanged files.
    """
    lines = [_file_line(name, files[name], digests) for name in sorted(files)]
    digest = hashlib.sha256(b"".join(lines))
    generation = digest.hexdigest()[:16]
    middleware = {"headers": {"customResponseHeaders": {"X-Traefik-Gen-Generation": generation}}}
    data = {"http": {"middlewares": {marker_name(settings, generation): middleware}}}
    return marker_filename(settings), data


def _file_line(name: str, content: bytes, digests: dict[str, tuple[bytes, bytes]] | None) -> bytes:
    hit = digests.get(name) if digests is not None else None
    if hit is not None and hit[0] is content:
        return hit[1]
    line = name.encode() + b"\0" + hashlib.sha256(content).digest()
    if digests is not None:
        digests[name] = (content, line)
    return line


def marker_name(settings: Settings, generation: str) -> str:
    return f"{settings.name_prefix}-generation-{generation}"


def _guard_removals(view: DirectoryView, plan: Plan, settings: Settings) -> None:
    """Refuse a plan that drops most of the routers the directory serves now.

    An empty or wrong answer (the wrong database, a fresh restore) looks like "every route
    was deleted"; applying it would take every route down at once.
    """
    if settings.allow_mass_removal:
        return
    before = _routers(view.previous.values())
    if not before:
        return
    # The plan's own data, not the rendered bytes read back: the same routers, unparsed.
    kept = (view.previous[name] for name in plan.kept if name in view.previous)
    after = _routers(itertools.chain(plan.files.values(), kept))
    removed = before - after
    if len(removed) <= settings.removal_floor:
        return
    if len(removed) > settings.max_removal_share * len(before):
        raise RemovalRefusedError(
            f"refusing to remove {len(removed)} of the {len(before)} routers the directory "
            f"serves (more than {settings.max_removal_share:.0%}); if the source is right, "
            "run with --allow-mass-removal (TRAEFIK_GEN_ALLOW_MASS_REMOVAL=true)"
        )


def _routers(documents: Iterable[Mapping[str, Any]]) -> set[str]:
    found: set[str] = set()
    for document in documents:
        for section in ("http", "tcp", "udp"):
            found.update(document.get(section, {}).get("routers", {}))
    return found


def directory_view(
    state: DirectoryState, parsed: dict[str, tuple[bytes, dict[str, Any]]] | None = None
) -> DirectoryView:
    """Names defined by foreign files, and the last generation of every owned file.

    `parsed` (kept by the caller across calls) spares re-reading a file whose bytes are
    the same as last time.
    """
    view = DirectoryView()
    for path in state.foreign:
        for section, names in _names_in(path).items():
            view.foreign_names.setdefault(section, set()).update(names)
    for name, content in state.owned.items():
        view.digests[name] = hashlib.sha256(content).hexdigest()
        hit = parsed.get(name) if parsed is not None else None
        if hit is not None and hit[0] == content:
            view.previous[name] = hit[1]
            continue
        try:
            view.previous[name] = parse_rendered(content, _format_of(name))
        except (ValueError, yaml.YAMLError, tomllib.TOMLDecodeError):
            logger.warning("cannot read back the owned file %s; it will be rewritten", name)
            continue
        if parsed is not None:
            parsed[name] = (content, view.previous[name])
    if parsed is not None:
        for name in set(parsed) - set(state.owned):
            del parsed[name]
    return view


def _names_in(path: Path) -> dict[str, set[str]]:
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        # Limitation: a foreign file that only parses after Go templating is not read here.
        logger.warning("cannot read the names defined in %s: %s", path, type(exc).__name__)
        return {}
    return section_names(data)


def section_names(data: Any) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    if not isinstance(data, dict):
        return found
    for top, body in data.items():
        if not isinstance(body, dict):
            continue
        for kind, objects in body.items():
            section = _SECTIONS.get((str(top).lower(), str(kind).lower()))
            if section and isinstance(objects, dict):
                found.setdefault(section, set()).update(str(name) for name in objects)
    return found


def _format_of(filename: str) -> Format:
    return "toml" if filename.lower().endswith(".toml") else "yaml"
