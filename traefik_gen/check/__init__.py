"""`traefik-gen check`: build the full plan, write nothing, report what would go wrong.

One finding a line, naming the row, app and field (or file and key) where there is one:

- rows the plan rejects, and why;
- files Traefik's file provider would refuse to parse (a Python lint of every config file
  of the directory, foreign ones included; with `--traefik PATH`, also what a scratch
  Traefik says of a copy of them);
- names defined by two files (Traefik keeps the first in filename order, drops the rest);
- one host and path claimed by two routers on one entrypoint;
- references to objects that exist nowhere (`name@other` only with `--traefik-api`);
- complement mode: enabled application and preview domains no file serves;
- with `--traefik-api URL`: Dokploy label routers still serving what the database has
  since changed, disabled or deleted (a redeploy is due).

Name, route and reference checks look at the directory as the next sync would leave it:
the foreign files as they are, and the tool's files as planned.

Exit codes (`CheckReport.exit_code`, and the CLI's for the errors it raises):

| code | meaning |
|---|---|
| 0 | nothing found |
| 1 | a source (the database, a routes file, the Traefik API) could not be read (`SourceError`) |
| 2 | usage: the settings or the command line are wrong (`SettingsError`) |
| 3 | findings: rejected rows, clashes, missing references, unserved domains, redeploys due |
| 5 | a file of the directory that Traefik would fail to parse (the most serious) |
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from traefik_gen.auth import PasswordHasher
from traefik_gen.check.api import TraefikApi
from traefik_gen.check.conflicts import (
    ParsedFile,
    missing_references,
    name_clashes,
    redeploys_due,
    route_clashes,
)
from traefik_gen.check.findings import Finding, FindingKind
from traefik_gen.check.lint import lint_content
from traefik_gen.check.scratch import scratch_parse
from traefik_gen.plan import Plan, build_plan
from traefik_gen.render import Format, parse_rendered
from traefik_gen.routes import DesiredState
from traefik_gen.settings import Settings
from traefik_gen.sources import read_sources
from traefik_gen.sync import bcrypt_cache, directory_view, plan_options, rendered_files
from traefik_gen.traefik.model import parse_config
from traefik_gen.writer import DirectoryState, scan

__all__ = [
    "EXIT_CLEAN",
    "EXIT_FINDINGS",
    "EXIT_UNPARSABLE",
    "CheckReport",
    "Finding",
    "FindingKind",
    "run_check",
]

logger = logging.getLogger(__name__)

EXIT_CLEAN = 0
EXIT_FINDINGS = 3
EXIT_UNPARSABLE = 5
LABEL_PROVIDERS = ("docker", "swarm")
_UNPARSABLE = frozenset({FindingKind.PARSE, FindingKind.TRAEFIK_PARSE})


@dataclass
class CheckReport:
    """Every finding of one check, in the order they were found."""

    findings: list[Finding] = field(default_factory=list)

    def exit_code(self) -> int:
        if any(finding.kind in _UNPARSABLE for finding in self.findings):
            return EXIT_UNPARSABLE
        return EXIT_FINDINGS if self.findings else EXIT_CLEAN

    def lines(self) -> list[str]:
        return [finding.line for finding in self.findings]

    def to_json(self) -> str:
        """`{"findings": [...], "summary": {"findings", "by_kind", "exit_code"}}`."""
        by_kind = Counter(finding.kind.value for finding in self.findings)
        document = {
            "findings": [finding.as_dict() for finding in self.findings],
            "summary": {
                "findings": len(self.findings),
                "by_kind": dict(sorted(by_kind.items())),
                "exit_code": self.exit_code(),
            },
        }
        return json.dumps(document, ensure_ascii=False)


def run_check(
    settings: Settings,
    *,
    traefik_api: str | None = None,
    traefik_binary: Path | None = None,
    label_providers: Sequence[str] = LABEL_PROVIDERS,
) -> CheckReport:
    """Plan from the sources against `settings.out`, and report; nothing is written.

    Raises:
        SourceError: a source or the Traefik API cannot be read (exit 1).
        SettingsError: the settings are wrong (exit 2).
    """
    api = TraefikApi(traefik_api) if traefik_api is not None else None
    desired = read_sources(settings)
    state = scan(settings.out, prefix=settings.file_prefix, create=False)
    plan = _plan(desired, state, settings)
    report = CheckReport([Finding.of_rejection(r) for r in plan.rejections])
    on_disk = _files_on_disk(settings.out, state)
    parsed = _lint(on_disk, report)
    if traefik_binary is not None:
        report.findings.extend(scratch_parse(traefik_binary, on_disk, entrypoints=_eps(settings)))
    prospective = _prospective(parsed, state, plan, settings)
    report.findings.extend(name_clashes(prospective))
    report.findings.extend(route_clashes(prospective))
    report.findings.extend(missing_references(prospective, api.names() if api else None))
    report.findings.extend(Finding(FindingKind.UNSERVED, notice) for notice in plan.notices)
    if api is not None:
        report.findings.extend(
            redeploys_due(
                api.routers(), desired, label_providers=label_providers, entrypoints=_eps(settings)
            )
        )
    logger.info("check found %d problem(s)", len(report.findings))
    return report


def _eps(settings: Settings) -> tuple[str, str]:
    return settings.entrypoint_web, settings.entrypoint_websecure


def _plan(desired: DesiredState, state: DirectoryState, settings: Settings) -> Plan:
    # No cache path: a check computes every hash afresh and writes no byte.
    # The sidecar's cache is read (never saved), so unchanged users cost no bcrypt work.
    cache = bcrypt_cache(settings.out)
    hasher = PasswordHasher(cache, rounds=settings.bcrypt_rounds)
    return build_plan(desired, plan_options(settings), directory_view(state), hasher)


def _files_on_disk(out: Path, state: DirectoryState) -> dict[str, bytes]:
    """Every config file Traefik reads now, by path relative to `out`, in its merge order."""
    files = {name: content for name, content in state.owned.items()}
    for path in state.foreign:
        try:
            files[path.relative_to(out).as_posix()] = path.read_bytes()
        except OSError as exc:
            logger.warning("cannot read %s: %s", path, exc.strerror)
    return dict(sorted(files.items(), key=lambda item: _merge_order(item[0])))


def _merge_order(name: str) -> tuple[bytes, ...]:
    # Traefik walks the tree with os.ReadDir: byte order at every level.
    return tuple(part.encode("utf-8", "surrogateescape") for part in name.split("/"))


def _lint(files: Mapping[str, bytes], report: CheckReport) -> dict[str, ParsedFile]:
    parsed: dict[str, ParsedFile] = {}
    for name, content in files.items():
        result = lint_content(name, content)
        report.findings.extend(result.findings)
        if result.config is not None:
            parsed[name] = ParsedFile(name, result.config)
    return parsed


def _prospective(
    parsed: Mapping[str, ParsedFile], state: DirectoryState, plan: Plan, settings: Settings
) -> list[ParsedFile]:
    """The directory as the next sync leaves it: foreign files as they are, ours as planned."""
    files = {name: p for name, p in parsed.items() if name not in state.owned}
    for name, content in rendered_files(plan, state, settings).items():
        fmt: Format = "toml" if name.endswith(".toml") else "yaml"
        files[name] = ParsedFile(name, parse_config(parse_rendered(content, fmt), source=name))
    return [files[name] for name in sorted(files, key=_merge_order)]
