"""The one plan-and-write path that `generate`, `--dry-run`, `--diff` and `watch` share.

source -> desired routes -> plan (config per file) -> bytes -> directory. A dry run and a
diff take exactly the same path as a real write and stop just before the first byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from traefik_gen.auth import PasswordHasher
from traefik_gen.errors import ConfigError, RemovalRefusedError
from traefik_gen.plan import (
    DirectoryView,
    OwnerMemo,
    OwnerSource,
    Plan,
    PlanOptions,
    plan_source,
    state_source,
)
from traefik_gen.plan.domains import Entrypoints
from traefik_gen.record import Record, inputs_key, load_record, save_record
from traefik_gen.render import Format, parse_rendered, render
from traefik_gen.routes import DesiredState, Rejection, RowRef
from traefik_gen.settings import Settings
from traefik_gen.sources import fetch_sources
from traefik_gen.sources.dokploy.delta import ReadBase
from traefik_gen.writer import (
    STAGED_SUFFIX,
    STAGING_DIR,
    DirectoryState,
    EarlyStager,
    WriteResult,
    apply,
    listing_digest,
    scan,
    statuses,
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

    Owners' plans as rendered bytes (see OwnerMemo), the router names of each owned file
    by its bytes, and the digests of the files for the marker: never any file's data, so
    the memory it holds is about the size of the directory.
    """

    owners: OwnerMemo = field(default_factory=OwnerMemo)
    # File name -> (SHA-256 of its bytes, its router names or None if it did not read back).
    routers: dict[str, tuple[str, frozenset[str] | None]] = field(default_factory=dict)
    digests: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)


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
    source: OwnerSource
    if desired is None:
        read = fetch_sources(settings, with_base=memo is not None)
        if memo is None and not preview:
            inputs = inputs_key(read, settings, replicas, hasher)
            record = load_record(out, inputs, prefix=settings.file_prefix)
            if record is not None:
                logger.debug("sources, settings and directory are as the last run left them")
                return _replayed(record)
        source, base = read, read.base
    else:
        source, base = state_source(desired), None
    # Taken before the scan: the record is kept only if nobody else changed the directory
    # while this run planned and wrote.
    before = statuses(out, prefix=settings.file_prefix) if inputs is not None else {}
    state = scan(out, prefix=settings.file_prefix, create=not preview)
    view = directory_view(state, memo.routers if memo is not None else None)
    with _early_stager(out, state, preview) as early:
        plan = plan_source(
            source,
            plan_options(settings),
            view,
            hasher,
            replicas,
            memo.owners if memo is not None else None,
            # Each file is rendered as it is planned: one owner's data in memory at a time.
            renderer=lambda data: render(data, settings.format),
            # ...and staged while the next ones are planned.
            sink=early.offer if early is not None else None,
        )
        files = rendered_files(plan, state, settings, memo.digests if memo is not None else None)
        _guard_removals(view, plan, settings)
        write = apply(out, files, state, dry_run=preview, early=early)
    result = SyncResult(plan=plan, write=write, files=files)
    result.base, result.view, result.state = base, view, state
    if memo is not None and not preview:
        _remember_routers(memo, plan, files)
    if diff:
        result.diff = unified_diff(out, files, state)
    if not preview:
        hasher.save()
    if inputs is not None:
        record = _record_of(result, inputs, settings, before)
        if record is not None:
            save_record(out, record)
    return result


def _early_stager(
    out: Path, state: DirectoryState, preview: bool
) -> contextlib.AbstractContextManager[EarlyStager | None]:
    return contextlib.nullcontext() if preview else EarlyStager(out, state)


def bcrypt_cache(out: Path) -> Path:
    return out / STAGING_DIR / "bcrypt-cache"


def _replayed(record: Record) -> SyncResult:
    plan = Plan(
        rejections=list(record.rejections), notices=list(record.notices), routers=record.routers
    )
    return SyncResult(plan=plan, write=WriteResult(unchanged=list(record.names)))


def _record_of(
    result: SyncResult, inputs: str, settings: Settings, before: Mapping[str, bytes]
) -> Record | None:
    """The record of this run; None if the directory changed meanwhile by another hand."""
    out, prefix = settings.out, settings.file_prefix
    after = statuses(out, prefix=prefix)
    ours = set(result.write.written) | set(result.write.removed)
    others = (set(before) | set(after)) - ours
    staged = {name for name in others if name.endswith(STAGED_SUFFIX)}
    changed = any(before.get(name) != after.get(name) for name in others - staged)
    rewritten = any(_read_back(out / name) != result.files[name] for name in result.write.written)
    if changed or rewritten or any(name in after for name in result.write.removed):
        logger.debug("the directory changed during this run: no record is kept")
        return None
    return Record(
        inputs=inputs,
        listing=listing_digest(after, prefix=prefix),
        routers=result.plan.routers,
        rejections=tuple(result.plan.rejections),
        notices=tuple(result.plan.notices),
        names=tuple(sorted(result.files)),
    )


def _read_back(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def rendered_files(
    plan: Plan,
    state: DirectoryState,
    settings: Settings,
    digests: dict[str, tuple[bytes, bytes]] | None = None,
) -> dict[str, bytes]:
    """The bytes of every file of the plan: rendered, kept ones as they are, the marker.

    A plan made with a renderer has its bytes already; `digests` is the marker's cache.
    """
    files = dict(plan.contents)
    files.update({name: render(data, settings.format) for name, data in plan.files.items()})
    for name in plan.kept:
        files[name] = state.owned[name]
    _drop_taken_names(files, plan, state, settings)
    if files:
        name, data = generation_marker(files, settings, digests)
        files[name] = render(data, settings.format)
    if digests is not None:
        for name in set(digests) - set(files):
            del digests[name]
    return files


def _remember_routers(memo: SyncMemo, plan: Plan, files: Mapping[str, bytes]) -> None:
    """The next sync reads these files back: their router names are known already."""
    for name, routers in plan.router_names.items():
        if name in files:
            memo.routers[name] = (hashlib.sha256(files[name]).hexdigest(), routers)


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
    previous = view.previous
    if not isinstance(previous, PreviousFiles):
        raise AssertionError("the removal guard reads a view made by directory_view")
    for name, routers in plan.router_names.items():
        # Planned to the very bytes on disk (kept as the same object): no need to parse.
        if name in view.current and plan.contents.get(name) is view.current[name]:
            previous.learn(name, routers)
    before = set().union(*(previous.routers(name) or () for name in previous))
    if not before:
        return
    kept = (previous.routers(name) or frozenset() for name in plan.kept)
    after = set().union(*plan.router_names.values(), _routers(plan.files.values()), *kept)
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
    state: DirectoryState, routers: dict[str, tuple[str, frozenset[str] | None]] | None = None
) -> DirectoryView:
    """Names defined by foreign files, and the last generation of every owned file.

    The owned files are parsed only when asked for (`PreviousFiles`); `routers` (kept by
    the caller across calls) holds their router names by content.
    """
    view = DirectoryView(current=state.owned)
    for path in state.foreign:
        for section, names in _names_in(path).items():
            view.foreign_names.setdefault(section, set()).update(names)
    for name, content in state.owned.items():
        view.digests[name] = hashlib.sha256(content).hexdigest()
    if routers is not None:
        for name in set(routers) - set(state.owned):
            del routers[name]
    view.previous = PreviousFiles(state.owned, view.digests, routers)
    return view


class PreviousFiles(Mapping[str, dict[str, Any]]):
    """The last generation of every owned file, parsed when asked for, not all up front.

    A file that does not read back is left out, and will be rewritten. Router names are
    kept in `cache` by the file's digest (not its bytes: the cache outlives the scan), so
    the guard parses an unchanged file once at most.
    """

    def __init__(
        self,
        owned: Mapping[str, bytes],
        digests: Mapping[str, str],
        cache: dict[str, tuple[str, frozenset[str] | None]] | None = None,
    ) -> None:
        self._owned = owned
        self._digests = digests
        self._cache = {} if cache is None else cache

    def routers(self, name: str) -> frozenset[str] | None:
        """The names of the routers the file defines; None if it is not readable."""
        content = self._owned.get(name)
        if content is None:
            return None
        digest = self._digests.get(name) or hashlib.sha256(content).hexdigest()
        hit = self._cache.get(name)
        if hit is not None and hit[0] == digest:
            return hit[1]
        data = self._parse(name, content)
        found = None if data is None else frozenset(_routers([data]))
        self._cache[name] = (digest, found)
        return found

    def learn(self, name: str, routers: frozenset[str]) -> None:
        """The router names of the file as it is now, known without parsing it."""
        if name in self._owned:
            digest = self._digests.get(name) or hashlib.sha256(self._owned[name]).hexdigest()
            self._cache[name] = (digest, routers)

    def __getitem__(self, name: str) -> dict[str, Any]:
        content = self._owned.get(name)
        if content is None or self.routers(name) is None:
            raise KeyError(name)
        data = self._parse(name, content)
        if data is None:
            raise KeyError(name)
        return data

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.routers(name) is not None

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._owned if self.routers(name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _parse(self, name: str, content: bytes) -> dict[str, Any] | None:
        try:
            return parse_rendered(content, _format_of(name))
        except (ConfigError, ValueError, yaml.YAMLError, tomllib.TOMLDecodeError):
            if name not in self._cache:
                logger.warning("cannot read back the owned file %s; it will be rewritten", name)
            return None


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
