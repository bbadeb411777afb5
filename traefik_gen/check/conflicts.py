"""What goes wrong between files, and between the files and the database.

Traefik's file provider merges the files of its directory in filename order and keeps the
first definition of every name, dropping the others with one WARN line. Two routers with
one Host and path on one entrypoint leave Traefik to pick one by priority (the rule's
length when equal). A reference to nothing disables its router at runtime, and a Dokploy
label router keeps serving whatever rule the last deploy wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from traefik_gen.check.findings import Finding, FindingKind
from traefik_gen.errors import RuleError
from traefik_gen.routes import DesiredState, Owner, OwnerKind, Route
from traefik_gen.traefik.model import (
    DynamicConfig,
    Reference,
    defined_names,
    describe,
    references,
)
from traefik_gen.traefik.rules import parse_rule

__all__ = [
    "ApiRouter",
    "ParsedFile",
    "defined_by_file",
    "missing_references",
    "name_clashes",
    "redeploys_due",
    "route_clashes",
]

logger = logging.getLogger(__name__)

# Names Traefik defines itself, whatever the files say.
_IMPLICIT = {("tls.options", "default"), ("tls.stores", "default")}
_ANY_ENTRYPOINT = "*"


@dataclass(frozen=True)
class ParsedFile:
    """One file of the directory that parses: its name relative to the directory."""

    name: str
    config: DynamicConfig


@dataclass(frozen=True)
class ApiRouter:
    """An HTTP router as Traefik's API lists it (`name` without `@provider`)."""

    name: str
    provider: str
    rule: str
    entrypoints: tuple[str, ...]


# --- names --------------------------------------------------------------------------------


def defined_by_file(files: Sequence[ParsedFile]) -> dict[tuple[str, str], list[str]]:
    """Every (section, name) and the files defining it, in Traefik's merge order."""
    found: dict[tuple[str, str], list[str]] = {}
    for parsed in files:
        for section, names in defined_names(parsed.config).items():
            for name in names:
                found.setdefault((section, name), []).append(parsed.name)
    return found


def name_clashes(files: Sequence[ParsedFile]) -> list[Finding]:
    """Names defined by more than one file: Traefik keeps the first and drops the rest."""
    findings = []
    for (section, name), where in sorted(defined_by_file(files).items()):
        if len(where) < 2:
            continue
        dropped = ", ".join(where[1:])
        line = (
            f"name clash: {describe(section, name)} is defined in {where[0]} and {dropped}; "
            f"Traefik keeps the one in {where[0]} and drops the others"
        )
        findings.append(Finding(FindingKind.NAME_CLASH, line, file=where[1]))
    return findings


# --- host and path claims -----------------------------------------------------------------


def route_clashes(files: Sequence[ParsedFile]) -> list[Finding]:
    """Host+path claims made by two routers on one entrypoint (first definitions only)."""
    claimed: dict[tuple[str, str], list[tuple[str, str, tuple[str, ...]]]] = {}
    for name, filename, router_claims, entrypoints in _winning_routers(files):
        for claim in router_claims:
            claimed.setdefault(claim, []).append((name, filename, entrypoints))
    findings = []
    reported: set[tuple[str, str]] = set()
    for (host, path), routers in sorted(claimed.items()):
        for first, second in _pairs_sharing_an_entrypoint(routers):
            pair = (first[0], second[0])
            if pair in reported:
                continue
            reported.add(pair)
            findings.append(_route_clash(host, path, first, second))
    return findings


def _winning_routers(
    files: Sequence[ParsedFile],
) -> Iterator[tuple[str, str, set[tuple[str, str]], tuple[str, ...]]]:
    seen: set[str] = set()
    for parsed in files:
        routers = parsed.config.http.routers if parsed.config.http else None
        for name, router in sorted((routers or {}).items()):
            if name in seen or not router.rule:
                continue
            seen.add(name)
            found = rule_claims(router.rule)
            if found:
                entrypoints = tuple(router.entry_points or ()) or (_ANY_ENTRYPOINT,)
                yield name, parsed.name, found, entrypoints


def rule_claims(rule: str) -> set[tuple[str, str]]:
    """The (host, path) pairs a rule asks for; a rule without Path claims '/' of its hosts.

    An unparsable rule claims nothing: Traefik disables that router.
    """
    # Limitation: hosts and paths of one rule are paired crosswise, so `Host(a) &&
    # PathPrefix(/x) || Host(b)` also claims b's /x; HostRegexp claims nothing.
    try:
        node = parse_rule(rule)
    except RuleError:
        return set()
    paths = [_path_key(path) for path in node.paths()] or ["/"]
    return {(host, path) for host in node.hosts() for path in paths}


def _path_key(path: str) -> str:
    return path if path == "/" else path.rstrip("/") or "/"


def _pairs_sharing_an_entrypoint(
    routers: list[tuple[str, str, tuple[str, ...]]],
) -> Iterator[tuple[tuple[str, str, tuple[str, ...]], tuple[str, str, tuple[str, ...]]]]:
    for index, first in enumerate(routers):
        for second in routers[index + 1 :]:
            if _share_entrypoint(first[2], second[2]):
                yield first, second


def _share_entrypoint(first: tuple[str, ...], second: tuple[str, ...]) -> bool:
    if _ANY_ENTRYPOINT in first or _ANY_ENTRYPOINT in second:
        return True
    return bool(set(first) & set(second))


def _route_clash(
    host: str,
    path: str,
    first: tuple[str, str, tuple[str, ...]],
    second: tuple[str, str, tuple[str, ...]],
) -> Finding:
    shared = sorted(set(first[2]) & set(second[2])) or ["every entrypoint"]
    line = (
        f"route clash: host {host!r} path {path!r} on {', '.join(shared)} is claimed by "
        f"router {first[0]!r} ({first[1]}) and router {second[0]!r} ({second[1]}); "
        "Traefik serves only one of them"
    )
    return Finding(FindingKind.ROUTE_CLASH, line, file=second[1])


# --- references ---------------------------------------------------------------------------


def missing_references(
    files: Sequence[ParsedFile], api_names: Mapping[str, set[str]] | None = None
) -> list[Finding]:
    """References that name no object of any file (or, with `api_names`, of any provider).

    `api_names` maps a section to the qualified names Traefik's API shows in it; without
    it, a reference to another provider (`name@docker`) is not checked.
    """
    defined = {key for key in defined_by_file(files)} | _IMPLICIT
    findings = []
    for parsed in files:
        for reference in references(parsed.config):
            if not _exists(reference, defined, api_names):
                findings.append(_missing(parsed.name, reference))
    return findings


def _exists(
    reference: Reference,
    defined: set[tuple[str, str]],
    api_names: Mapping[str, set[str]] | None,
) -> bool:
    name, _, provider = reference.name.partition("@")
    if provider in ("", "file"):
        return (reference.section, name) in defined
    if api_names is None or reference.section not in api_names:
        # Limitation: without --traefik-api, other providers' objects cannot be seen.
        return True
    return reference.name in api_names[reference.section]


def _missing(filename: str, reference: Reference) -> Finding:
    line = (
        f"missing reference in {filename}: {reference.referrer} names "
        f"{describe(reference.section, reference.name)}, which exists nowhere"
    )
    return Finding(FindingKind.MISSING_REFERENCE, line, file=filename, field=reference.field)


# --- Dokploy label routers ----------------------------------------------------------------


def redeploys_due(
    routers: Iterable[ApiRouter],
    desired: DesiredState,
    *,
    label_providers: Sequence[str],
    entrypoints: tuple[str, str],
) -> list[Finding]:
    """Dokploy label routers whose rule the database has since changed, disabled or deleted.

    Dokploy names a compose domain's label router `<appName>-<uniqueConfigKey>-<entrypoint>`
    and rewrites it only when the compose is deployed, so what it serves is the database of
    the last deploy.
    """
    composes = [owner for owner in desired.owners if owner.kind is OwnerKind.COMPOSE]
    rejected = {(r.owner_id, r.route_key) for r in desired.rejections if r.route_key}
    findings = []
    for router in routers:
        if router.provider not in label_providers:
            continue
        match = _label_router_owner(router.name, composes)
        if match is None:
            continue
        owner, key, entrypoint = match
        if (owner.id, key) in rejected:
            continue
        problem = _stale(router, owner, key, entrypoint, entrypoints)
        if problem is not None:
            findings.append(_redeploy(router, owner, key, problem))
    return findings


def _label_router_owner(name: str, composes: Sequence[Owner]) -> tuple[Owner, str, str] | None:
    # appNames hold dashes too: the longest appName that fits the scheme wins.
    for owner in sorted(composes, key=lambda o: len(o.name), reverse=True):
        rest = name.removeprefix(f"{owner.name}-")
        if rest == name:
            continue
        key, _, entrypoint = rest.partition("-")
        if key.isdigit() and entrypoint:
            return owner, key, entrypoint
    return None


def _stale(
    router: ApiRouter,
    owner: Owner,
    key: str,
    entrypoint: str,
    entrypoints: tuple[str, str],
) -> str | None:
    route = next((r for r in owner.routes if r.key == key), None)
    if route is None:
        return "its domain is disabled or deleted in the database"
    if entrypoint not in _label_entrypoints(route, entrypoints):
        return f"its domain no longer has a router on entrypoint {entrypoint!r}"
    if rule_claims(router.rule) != _route_claims(route):
        return "its rule differs from the domain's host and path in the database"
    return None


def _label_entrypoints(route: Route, entrypoints: tuple[str, str]) -> set[str]:
    # Dokploy's label scheme: a custom entrypoint alone, else web, plus websecure for https.
    if route.entrypoint:
        return {route.entrypoint}
    web, websecure = entrypoints
    return {web, websecure} if route.https else {web}


def _route_claims(route: Route) -> set[tuple[str, str]]:
    host = route.host.lower()
    host = host[:-1] if host.endswith(".") else host
    return {(host, _path_key(route.path or "/"))}


def _redeploy(router: ApiRouter, owner: Owner, key: str, problem: str) -> Finding:
    route = next((r for r in owner.routes if r.key == key), None)
    ref = route.ref if route is not None and route.ref is not None else owner.ref
    line = (
        f"redeploy due: label router '{router.name}@{router.provider}' of compose "
        f"{owner.name!r} still serves the last deploy, but {problem}; redeploy the compose"
    )
    return Finding.at_row(FindingKind.REDEPLOY_DUE, line, ref, "domain")
