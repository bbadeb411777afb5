"""Desired routes to the Traefik configuration of every generated file.

One owner (application, preview, compose project, label set, routes-file app) is one file.
A route that cannot be rendered safely is rejected with one line; the rest of its owner is
still written. A rejected route that was served before keeps its last written form, unless
the fault is in its protection (basic auth, forward auth): then it is not published.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from traefik_gen.auth import PasswordHasher
from traefik_gen.errors import ConfigError
from traefik_gen.plan.domains import Entrypoints, RouteError, RouteObjects, build_route
from traefik_gen.plan.naming import OwnerNames, slug
from traefik_gen.routes import DesiredState, Owner, OwnerKind, Rejection, RowRef
from traefik_gen.settings import Mode
from traefik_gen.traefik.labels import labels_to_config
from traefik_gen.traefik.model import dump_config, dumped_names, parse_config
from traefik_gen.traefik.regex import check_re2

__all__ = [
    "DirectoryView",
    "OwnerMemo",
    "OwnerSource",
    "Plan",
    "PlanOptions",
    "build_plan",
    "plan_order",
    "plan_owners",
    "plan_source",
    "state_source",
]

logger = logging.getLogger(__name__)

_HTTP = ("routers", "services", "middlewares")
_DOKPLOY_KINDS = (OwnerKind.APPLICATION, OwnerKind.PREVIEW)


@dataclass(frozen=True)
class PlanOptions:
    mode: Mode
    file_prefix: str
    name_prefix: str
    extension: str
    upstream: str
    entrypoints: Entrypoints
    exposed_by_default: bool


@dataclass
class DirectoryView:
    """What the planner needs to know of the directory as it is now."""

    foreign_names: dict[str, set[str]] = field(default_factory=dict)
    # The last generation of each owned file that can be read back (maybe parsed lazily).
    previous: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    # A digest of each owned file's bytes: part of an owner's memo key.
    digests: dict[str, str] = field(default_factory=dict)
    # Each owned file's bytes as scanned: a file planned to the same bytes keeps these,
    # so an unchanged file is held once.
    current: Mapping[str, bytes] = field(default_factory=dict)

    def foreign_exists(self, section: str, name: str) -> bool:
        return name in self.foreign_names.get(section, set())


@dataclass
class Plan:
    """Every generated file's configuration, and what could not be rendered."""

    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    routers: int = 0
    # Which file claimed each (section, name), and which file each wanted owner has.
    claims: dict[tuple[str, str], str] = field(default_factory=dict)
    owner_files: dict[tuple[OwnerKind, str], str] = field(default_factory=dict)
    # With a renderer, each file is rendered as soon as it is planned and only its bytes
    # and router names are kept (`contents`, `router_names`): one owner's data at a time.
    renderer: Callable[[dict[str, Any]], bytes] | None = field(default=None, repr=False)
    contents: dict[str, bytes] = field(default_factory=dict, repr=False)
    # Told each file's name and bytes as soon as they are known (the early stager).
    sink: Callable[[str, bytes], None] | None = field(default=None, repr=False)
    router_names: dict[str, frozenset[str]] = field(default_factory=dict)
    http_routers: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Planned:
    key: str
    claimed: Claimed
    # The data, or (planned with a renderer) the rendered bytes and the router names.
    data: dict[str, Any] | None = None
    content: bytes | None = None
    routers: frozenset[str] = frozenset()
    http_routers: int = 0


@dataclass
class OwnerMemo:
    """The last plan of every cleanly planned owner, keyed by a digest of all it depends on.

    The sidecar keeps one across syncs, so an unchanged owner is neither re-planned nor
    (by identity of its data) re-rendered. Owners with basic-auth users are always planned
    again: the hash cache keeps only the hashes a run asked for.
    """

    entries: dict[str, _Planned] = field(default_factory=dict)
    reused: int = 0
    planned: int = 0


class _OwnerError(ConfigError):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


class OwnerSource(Protocol):
    """Owners one at a time, in plan order (`plan_order`), and the rows they could not map.

    `new_rejections` answers those produced since it was last asked (while owners are
    taken); `rejections` answers all of them in their final order, once owners are done.
    """

    def owners(self) -> Iterable[Owner]: ...
    def new_rejections(self) -> list[Rejection]: ...
    def rejections(self) -> list[Rejection]: ...


def plan_order(owner: Owner) -> tuple[str, str]:
    return (owner.kind.value, owner.id)


def state_source(desired: DesiredState) -> OwnerSource:
    """A desired state already in memory, as an OwnerSource."""
    return _StateSource(desired)


class _StateSource:
    """A desired state already in memory, as an OwnerSource."""

    def __init__(self, desired: DesiredState) -> None:
        self._desired = desired
        self._given = False

    def owners(self) -> Iterable[Owner]:
        return sorted(self._desired.owners, key=plan_order)

    def new_rejections(self) -> list[Rejection]:
        if self._given:
            return []
        self._given = True
        return list(self._desired.rejections)

    def rejections(self) -> list[Rejection]:
        return list(self._desired.rejections)


def build_plan(
    desired: DesiredState,
    options: PlanOptions,
    view: DirectoryView,
    hasher: PasswordHasher,
    replicas: Mapping[tuple[str, str], tuple[str, ...]] | None = None,
    memo: OwnerMemo | None = None,
    renderer: Callable[[dict[str, Any]], bytes] | None = None,
) -> Plan:
    """The configuration of every file the tool owns, from the desired state.

    With a `renderer`, the plan holds each file's bytes instead of its data (see `Plan`).
    """
    return plan_source(state_source(desired), options, view, hasher, replicas, memo, renderer)


def plan_source(
    source: OwnerSource,
    options: PlanOptions,
    view: DirectoryView,
    hasher: PasswordHasher,
    replicas: Mapping[tuple[str, str], tuple[str, ...]] | None = None,
    memo: OwnerMemo | None = None,
    renderer: Callable[[dict[str, Any]], bytes] | None = None,
    *,
    sink: Callable[[str, bytes], None] | None = None,
) -> Plan:
    """`build_plan` for owners that arrive one at a time, so none is held after its turn.

    With a `renderer`, `sink` is given each file's name and bytes as soon as it is planned.
    """
    plan = Plan(renderer=renderer, sink=sink)
    taken = plan.claims
    context = _context_key(options, view, replicas or {}) if memo is not None else ""
    fresh: dict[str, _Planned] = {}
    present: set[tuple[OwnerKind, str]] = set()
    from_source: list[Rejection] = []
    for owner in source.owners():
        _take_rejections(source, plan, from_source)
        present.add((owner.kind, owner.id))
        if not _wanted(owner, options.mode):
            plan.notices.extend(_unserved_by_dokploy(owner, view))
            continue
        plan.owner_files[(owner.kind, owner.id)] = _names(owner, options).filename
        if memo is None or owner.users:
            _plan_owner(owner, options, view, hasher, plan, taken, replicas or {})
            continue
        _plan_with_memo(owner, options, view, hasher, plan, taken, replicas or {}, memo, context)
        filename = _names(owner, options).filename
        if filename in memo.entries:
            fresh[filename] = memo.entries[filename]
    _take_rejections(source, plan, from_source)
    if memo is not None:
        memo.entries = fresh
    # The source's rejections first, in its order, then the planner's, in plan order.
    mine = {id(rejection) for rejection in from_source}
    rejections = source.rejections()
    plan.rejections = [*rejections, *(r for r in plan.rejections if id(r) not in mine)]
    plan.kept[:0] = _files_of_owners_broken_upstream(present, rejections, options, view)
    return plan


def _take_rejections(source: OwnerSource, plan: Plan, taken: list[Rejection]) -> None:
    new = source.new_rejections()
    taken.extend(new)
    plan.rejections.extend(new)


def plan_owners(
    owners: Iterable[Owner],
    options: PlanOptions,
    view: DirectoryView,
    hasher: PasswordHasher,
    claims: dict[tuple[str, str], str],
    replicas: Mapping[tuple[str, str], tuple[str, ...]] | None = None,
    renderer: Callable[[dict[str, Any]], bytes] | None = None,
) -> Plan | None:
    """Plan only `owners`, against the names other files already claim (updated in place).

    None when any of them is not served in this mode: its notices need the whole plan.
    """
    plan = Plan(claims=claims, renderer=renderer)
    for owner in sorted(owners, key=plan_order):
        if not _wanted(owner, options.mode):
            return None
        plan.owner_files[(owner.kind, owner.id)] = _names(owner, options).filename
        _plan_owner(owner, options, view, hasher, plan, claims, replicas or {})
    return plan


def _plan_with_memo(
    owner: Owner,
    options: PlanOptions,
    view: DirectoryView,
    hasher: PasswordHasher,
    plan: Plan,
    taken: dict[tuple[str, str], str],
    replicas: Mapping[tuple[str, str], tuple[str, ...]],
    memo: OwnerMemo,
    context: str,
) -> None:
    filename = _names(owner, options).filename
    key = _owner_key(owner, context, view.digests.get(filename, ""), plan.rejections)
    hit = memo.entries.get(filename)
    if hit is not None and hit.key == key and _claimed_again(hit, filename, view, taken):
        memo.reused += 1
        _add_planned(plan, filename, hit)
        return
    memo.entries.pop(filename, None)
    memo.planned += 1
    rejections, kept = len(plan.rejections), len(plan.kept)
    planned = _plan_owner(owner, options, view, hasher, plan, taken, replicas)
    if planned is not None and len(plan.rejections) == rejections and len(plan.kept) == kept:
        data, claimed = planned
        if plan.renderer is None:
            memo.entries[filename] = _Planned(key, claimed, data=data)
        else:
            memo.entries[filename] = _Planned(
                key,
                claimed,
                content=plan.contents.get(filename),
                routers=plan.router_names.get(filename, frozenset()),
                http_routers=len(data.get("http", {}).get("routers", {})),
            )


def _add_planned(plan: Plan, filename: str, hit: _Planned) -> None:
    if hit.data is not None:
        _add_file(plan, filename, hit.data)
    elif hit.content is not None:
        if plan.renderer is None:
            raise AssertionError("a rendered memo entry reused without a renderer")
        _add_content(plan, filename, hit.content)
        plan.router_names[filename] = hit.routers
        plan.http_routers[filename] = hit.http_routers
        plan.routers += hit.http_routers


def _claimed_again(
    hit: _Planned, filename: str, view: DirectoryView, taken: dict[tuple[str, str], str]
) -> bool:
    try:
        _claim_names(hit.claimed, filename, view, taken)
    except _OwnerError:
        # Planned again below, which reports the clash as a rejection.
        return False
    return True


def _context_key(
    options: PlanOptions,
    view: DirectoryView,
    replicas: Mapping[tuple[str, str], tuple[str, ...]],
) -> str:
    """What every owner's plan depends on besides the owner itself."""
    foreign = sorted((section, sorted(names)) for section, names in view.foreign_names.items())
    shared = [repr(options), foreign, sorted((list(k), list(v)) for k, v in replicas.items())]
    return hashlib.sha256(json.dumps(shared).encode()).hexdigest()


def _owner_key(owner: Owner, context: str, previous: str, rejections: list[Rejection]) -> str:
    mine = [
        r.model_dump_json()
        for r in rejections
        if r.owner_kind is owner.kind and r.owner_id == owner.id
    ]
    # Secrets dump masked: which is why owners with users never reach the memo.
    text = json.dumps([context, previous, owner.model_dump(mode="json"), mine])
    return hashlib.sha256(text.encode()).hexdigest()


def _files_of_owners_broken_upstream(
    present: set[tuple[OwnerKind, str]],
    rejections: Iterable[Rejection],
    options: PlanOptions,
    view: DirectoryView,
) -> list[str]:
    """Owners the source could not read at all keep their last file untouched."""
    kept: list[str] = []
    for rejection in rejections:
        if rejection.owner_kind is None or rejection.owner_id is None or rejection.protection:
            continue
        if (rejection.owner_kind, rejection.owner_id) in present or rejection.route_key:
            continue
        stand_in = Owner(kind=rejection.owner_kind, id=rejection.owner_id, name=rejection.ref.app)
        filename = _names(stand_in, options).filename
        if filename in view.previous and filename not in kept:
            kept.append(filename)
    return kept


def _names(owner: Owner, options: PlanOptions) -> OwnerNames:
    return OwnerNames(
        owner,
        name_prefix=options.name_prefix,
        file_prefix=options.file_prefix,
        ext=options.extension,
    )


def _wanted(owner: Owner, mode: Mode) -> bool:
    # Complement mode leaves application and preview domains to Dokploy's own files.
    return mode is Mode.FULL or owner.kind not in _DOKPLOY_KINDS


def _plan_owner(
    owner: Owner,
    options: PlanOptions,
    view: DirectoryView,
    hasher: PasswordHasher,
    plan: Plan,
    taken: dict[tuple[str, str], str],
    replicas: Mapping[tuple[str, str], tuple[str, ...]],
) -> tuple[dict[str, Any], Claimed] | None:
    """Plan one owner into `plan`; its data and the names it claims, or None when rejected."""
    names = _names(owner, options)
    try:
        if owner.kind is OwnerKind.LABELS:
            data = _label_config(owner, names, options, view)
        else:
            data = _route_config(owner, names, options, view, hasher, plan.rejections, replicas)
        data, claimed = _validated(data, names.filename)
        _claim_names(claimed, names.filename, view, taken)
    except _OwnerError as fault:
        plan.rejections.append(
            Rejection(ref=_owner_ref(owner), field=fault.field, reason=fault.reason)
        )
        if names.filename in view.previous:
            plan.kept.append(names.filename)
        return None
    _add_file(plan, names.filename, data, view)
    return data, claimed


def _add_file(
    plan: Plan, filename: str, data: dict[str, Any], view: DirectoryView | None = None
) -> None:
    if not data:
        return
    http_routers = len(data.get("http", {}).get("routers", {}))
    plan.routers += http_routers
    if plan.renderer is None:
        plan.files[filename] = data
    else:
        plan.http_routers[filename] = http_routers
        content = plan.renderer(data)
        if view is not None and view.current.get(filename) == content:
            content = view.current[filename]
        _add_content(plan, filename, content)
        plan.router_names[filename] = frozenset(
            name
            for section in ("http", "tcp", "udp")
            for name in data.get(section, {}).get("routers", {})
        )


def _add_content(plan: Plan, filename: str, content: bytes) -> None:
    plan.contents[filename] = content
    if plan.sink is not None:
        plan.sink(filename, content)


def _label_config(
    owner: Owner, names: OwnerNames, options: PlanOptions, view: DirectoryView
) -> dict[str, Any]:
    if not owner.labels:
        return {}

    def server_url(port: int, scheme: str) -> str:
        return options.upstream.format(scheme=scheme, host=owner.name, port=port)

    source = _owner_ref(owner).describe("labelsSwarm")
    try:
        config = labels_to_config(
            owner.labels,
            exposed_by_default=options.exposed_by_default,
            namespace=lambda _section, name: names.label(name),
            server_url=server_url,
            foreign_exists=view.foreign_exists,
            source=source,
        )
    except ConfigError as exc:
        # The rejection line names the row already; keep the label's own part only.
        raise _OwnerError("labelsSwarm", str(exc).removeprefix(f"{source}: ")) from exc
    return {} if config is None else dump_config(config)


def _route_config(
    owner: Owner,
    names: OwnerNames,
    options: PlanOptions,
    view: DirectoryView,
    hasher: PasswordHasher,
    rejections: list[Rejection],
    replicas: Mapping[tuple[str, str], tuple[str, ...]],
) -> dict[str, Any]:
    redirects, redirect_fault = _redirects(owner, names, rejections)
    auth, auth_fault = _basic_auth(owner, names, hasher, rejections)

    @functools.cache
    def previous() -> dict[str, Any]:
        # Parsed only for a route carried over or a reference to close (rarely), once.
        return view.previous.get(names.filename, {})

    groups: list[RouteObjects] = []
    bases: dict[str, str] = {}
    for route in sorted(owner.routes, key=lambda r: _sort_key(r.key)):
        try:
            _check_distinct(route.key, names, bases)
            objects = build_route(
                route,
                owner,
                names,
                upstream=options.upstream,
                entrypoints=options.entrypoints,
                redirect_names=list(redirects),
                replicas=replicas,
            )
            _check_dependencies(objects, redirect_fault, auth_fault)
            _check_foreign(objects, view)
            groups.append(objects)
        except RouteError as fault:
            ref = route.ref or _owner_ref(owner)
            rejections.append(
                Rejection(
                    ref=ref, field=fault.field, reason=fault.reason, protection=fault.protection
                )
            )
            if fault.keep_last and not fault.protection:
                groups.extend(_carried(previous(), names, route.key))
    for key in _keys_rejected_upstream(owner, rejections):
        groups.extend(_carried(previous(), names, key))
    http = _merge(groups)
    _add_shared(http, groups, owner, names, redirects, auth)
    _close_references(http, previous, names, view)
    return {"http": http} if http.get("routers") else {}


def _check_distinct(key: str, names: OwnerNames, bases: dict[str, str]) -> None:
    """Two keys of one owner must not give the same object names ("a b" and "a-b")."""
    base = names.route(key)
    if base in bases:
        raise RouteError(
            "key",
            f"route key {key!r} gives the same names as route {bases[base]!r}",
            keep_last=False,
        )
    bases[base] = key


def _sort_key(key: str) -> tuple[int, int | str]:
    # Dokploy keys are integers: sort them as numbers so the order reads naturally.
    return (0, int(key)) if key.isdigit() else (1, key)


def _redirects(
    owner: Owner, names: OwnerNames, rejections: list[Rejection]
) -> tuple[dict[str, dict[str, Any]], str | None]:
    middlewares: dict[str, dict[str, Any]] = {}
    fault = None
    for redirect in owner.redirects:
        try:
            check_re2(redirect.regex, field="regex")
        except ConfigError as exc:
            ref = redirect.ref or _owner_ref(owner)
            rejections.append(Rejection(ref=ref, field="regex", reason=str(exc)))
            fault = f"its redirect {ref.row_id!r} is rejected"
            continue
        middlewares[names.shared(f"redirect-{slug(redirect.key) or 'x'}")] = {
            "redirectRegex": {
                "regex": redirect.regex,
                "replacement": redirect.replacement,
                "permanent": redirect.permanent,
            }
        }
    return middlewares, fault


def _basic_auth(
    owner: Owner, names: OwnerNames, hasher: PasswordHasher, rejections: list[Rejection]
) -> tuple[dict[str, Any] | None, str | None]:
    if not owner.users:
        return None, None
    users = []
    fault = None
    for user in owner.users:
        try:
            users.append(hasher.entry(user))
        except ConfigError as exc:
            ref = user.ref or _owner_ref(owner)
            rejections.append(
                Rejection(ref=ref, field="username", reason=str(exc), protection=True)
            )
            fault = f"its basic-auth user row {ref.row_id!r} is rejected"
    return {"basicAuth": {"users": users, "removeHeader": True}}, fault


def _check_dependencies(
    objects: RouteObjects, redirect_fault: str | None, auth_fault: str | None
) -> None:
    # A router is never published with fewer middlewares than it should carry.
    if objects.needs.auth and auth_fault:
        raise RouteError("security", f"not published: {auth_fault}", protection=True)
    if objects.needs.redirects and redirect_fault:
        raise RouteError("redirect", f"not updated: {redirect_fault}")


def _check_foreign(objects: RouteObjects, view: DirectoryView) -> None:
    for reference in objects.foreign_refs:
        name, _, provider = reference.partition("@")
        if provider in ("", "file") and not view.foreign_exists("http.middlewares", name):
            raise RouteError(
                "middlewares", f"middleware {reference!r} exists nowhere in the directory"
            )
    for section, name in objects.names():
        if view.foreign_exists(section, name):
            raise RouteError(
                "name",
                f"{section} name {name!r} is already defined by another file",
                keep_last=False,
            )


def _keys_rejected_upstream(owner: Owner, rejections: list[Rejection]) -> list[str]:
    """Routes the source could not read at all (so they are absent from the owner)."""
    present = {route.key for route in owner.routes}
    return sorted(
        {
            r.route_key
            for r in rejections
            if r.owner_kind is owner.kind
            and r.owner_id == owner.id
            and not r.protection
            and r.route_key is not None
            and r.route_key not in present
        }
    )


def _carried(previous: dict[str, Any], names: OwnerNames, key: str) -> list[RouteObjects]:
    """The last written form of a route, from the file as it is on disk."""
    old_http = previous.get("http", {})
    carried = RouteObjects(key=key)
    for section, target in (
        ("routers", carried.routers),
        ("services", carried.services),
        ("middlewares", carried.middlewares),
    ):
        for name, body in old_http.get(section, {}).items():
            if names.belongs_to_route(name, key):
                target[name] = body
    if not carried.routers:
        return []
    logger.info("keeping the last written form of route %s", names.route(key))
    return [carried]


def _merge(groups: Iterable[RouteObjects]) -> dict[str, dict[str, Any]]:
    http: dict[str, dict[str, Any]] = {section: {} for section in _HTTP}
    for group in groups:
        http["routers"].update(group.routers)
        http["services"].update(group.services)
        http["middlewares"].update(group.middlewares)
    return http


def _add_shared(
    http: dict[str, dict[str, Any]],
    groups: list[RouteObjects],
    owner: Owner,
    names: OwnerNames,
    redirects: dict[str, dict[str, Any]],
    auth: dict[str, Any] | None,
) -> None:
    if any(group.needs.https_redirect for group in groups):
        http["middlewares"][names.shared("to-https")] = {
            "redirectScheme": {"scheme": "https", "permanent": True}
        }
    if any(group.needs.redirects for group in groups):
        http["middlewares"].update(redirects)
    if auth is not None and any(group.needs.auth for group in groups):
        http["middlewares"][names.shared("auth")] = auth
    if owner.forward_auth is not None and any(g.needs.forward_auth_proxy for g in groups):
        url = owner.forward_auth.errors_service_url
        http["services"][names.shared("forward-auth-proxy")] = {
            "loadBalancer": {"servers": [{"url": url}], "passHostHeader": True}
        }


def _close_references(
    http: dict[str, dict[str, Any]],
    previous: Callable[[], dict[str, Any]],
    names: OwnerNames,
    view: DirectoryView,
) -> None:
    """Make the file self-contained: carried routers get what they reference, or go."""
    for router_name, router in list(http["routers"].items()):
        missing = [
            (section, ref)
            for section, ref in _router_refs(router)
            if "@" not in ref
            and ref not in http[section]
            and not view.foreign_exists(f"http.{section}", ref)
        ]
        old_http = previous().get("http", {}) if missing else {}
        for section, ref in missing:
            # Protection is never restored from an old file: it must come from the source.
            if ref != names.shared("auth") and ref in old_http.get(section, {}):
                http[section][ref] = old_http[section][ref]
        if any(ref not in http[section] for section, ref in missing):
            logger.warning("not publishing router %s: what it references is gone", router_name)
            del http["routers"][router_name]


def _router_refs(router: dict[str, Any]) -> list[tuple[str, str]]:
    refs = [("services", str(router.get("service", "")))]
    refs.extend(("middlewares", str(name)) for name in router.get("middlewares", []))
    return refs


def _validated(data: dict[str, Any], filename: str) -> tuple[dict[str, Any], Claimed]:
    """Every file passes the model of Traefik's configuration before a byte is written.

    Returns the file's canonical data and the names it defines per section.
    """
    if not data:
        return {}, ()
    _drop_empty(data)
    try:
        config = parse_config(data, source=filename)
    except ConfigError as exc:
        raise _OwnerError("configuration", str(exc)) from exc
    dumped = dump_config(config)
    # Pairs, not a set per section: the sidecar's memo keeps this for every owner.
    return dumped, tuple(dumped_names(dumped))


def _drop_empty(data: dict[str, Any]) -> None:
    for section in list(data):
        body = data[section]
        if isinstance(body, dict):
            for key in [k for k, v in body.items() if v == {}]:
                del body[key]
            if not body:
                del data[section]


Claimed = tuple[tuple[str, str], ...]


def _claim_names(
    claimed: Claimed,
    filename: str,
    view: DirectoryView,
    taken: dict[tuple[str, str], str],
) -> None:
    for section, name in claimed:
        other = taken.get((section, name))
        if other is not None:
            raise _OwnerError("name", f"{section} name {name!r} is also generated for {other}")
        if view.foreign_exists(section, name):
            raise _OwnerError("name", f"{section} name {name!r} is already defined by another file")
    taken.update({key: filename for key in claimed})


def _unserved_by_dokploy(owner: Owner, view: DirectoryView) -> list[str]:
    """Complement mode: enabled domains that Dokploy's own files should serve but do not."""
    notices = []
    for route in owner.routes:
        expected = f"{owner.name}-router-{route.key}"
        if not view.foreign_exists("http.routers", expected):
            ref = route.ref or _owner_ref(owner)
            notices.append(
                f"unserved {ref.describe()}: no file in the directory defines Dokploy's router "
                f"'{expected}'; save the domain in Dokploy or run with --mode full"
            )
    return notices


def _owner_ref(owner: Owner) -> RowRef:
    if owner.ref is not None:
        return owner.ref
    return RowRef(table=owner.kind.value, row_id=owner.id, app=owner.name)
