"""The bad-input corpus: every kind of bad row, each next to good routes, through real Traefik.

One Dokploy database and one routes file hold every case of `tests/corpus/bad_input.yml`
(read the header there for the tokens and flags). `traefik-gen generate` runs once per
Traefik version into the directory of a real Traefik; each case then asserts its exact
rejection lines, that its good neighbours are served through Traefik, and that Traefik
holds none of its objects in error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.backends import Backend, BackendFactory
from tests.support.options import traefik_versions
from tests.support.postgres import _CURRENT, App, Compose, DokployDb, _database
from tests.support.traefik import TraefikProcess, version_ids, wait_for
from traefik_gen.plan.naming import slug

CORPUS = yaml.safe_load((Path(__file__).parent / "corpus" / "bad_input.yml").read_text("utf-8"))
CASES: list[dict[str, Any]] = CORPUS["cases"]
UPSTREAM = "http://127.0.0.1:{port}"
PREFIX = "rejected "
# Plaintext passwords of the corpus: none may reach traefik-gen's output or its files.
SECRETS = ("s3cret-",)
_KINDS = ("app", "labels", "compose", "route")


@dataclass
class CaseRows:
    """What one case put into the sources, for its tokens and its requests."""

    apps: list[str]
    tokens: dict[str, str] = field(default_factory=dict)
    served: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Corpus:
    db: DokployDb
    routes_file: Path
    backend: Backend
    rows: dict[str, CaseRows]
    # (namespace, case id), longest first: a case's namespace may prefix another's.
    namespaces: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Run:
    traefik: TraefikProcess
    stderr: str
    rejections: list[str]
    marker: str
    raw: dict[str, Any]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "corpus_version" in metafunc.fixturenames:
        versions = traefik_versions(metafunc.config)
        metafunc.parametrize(
            "corpus_version", versions, ids=version_ids(versions), indirect=True, scope="module"
        )


def _case_params(bug_key: str) -> list[Any]:
    params = []
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case[bug_key])] if bug_key in case else []
        params.append(pytest.param(case, id=case["id"], marks=marks))
    return params


# --- filling tokens -----------------------------------------------------------------------


def fill(value: Any, tokens: Mapping[str, str]) -> Any:
    """The corpus value with every <token> replaced; a lone <port> becomes an int."""
    if isinstance(value, str):
        if value == "<port>":
            return int(tokens["port"])
        for name, text in tokens.items():
            value = value.replace(f"<{name}>", text)
        return value
    if isinstance(value, list):
        return [fill(item, tokens) for item in value]
    if isinstance(value, dict):
        return {fill(k, tokens): fill(v, tokens) for k, v in value.items()}
    return value


# --- building the sources -------------------------------------------------------------------


class _Builder:
    def __init__(self, db: DokployDb, port: int) -> None:
        self.db = db
        self.port = port
        self.file_apps: list[dict[str, Any]] = []

    def build(self, case: dict[str, Any]) -> CaseRows:
        case_id = case["id"]
        tokens = {"id": case_id, "app": case_id, "port": str(self.port)}
        values = fill(case.get("values", {}), tokens)
        build_rows: Callable[..., CaseRows] = getattr(self, "_" + case["row"].replace("-", "_"))
        rows = build_rows(case_id, values, tokens)
        sibling = self.db.add_application(f"{case_id}-sib")
        self.db.add_domain(sibling, f"{case_id}.sib.test", port=self.port)
        rows.apps.append(sibling.app_name)
        rows.served.append({"host": f"{case_id}.sib.test"})
        if case.get("ok_served", True) and "ok" in rows.tokens:
            rows.served.append({"host": f"{case_id}.ok.test"})
        rows.served.extend(fill(case.get("served", []), rows.tokens))
        return rows

    def _app_with_ok(self, case_id: str, tokens: dict[str, str], **columns: Any) -> App:
        app = self.db.add_application(case_id, **columns)
        if "applicationId" in columns:
            app = App(columns["applicationId"], case_id)
        ok = self.db.add_domain(app, f"{case_id}.ok.test", port=self.port)
        tokens["ok"] = ok.id
        return app

    def _domain(self, case_id: str, values: dict[str, Any], tokens: dict[str, str]) -> CaseRows:
        app = self._app_with_ok(case_id, tokens)
        tokens["row"] = self.db.add_domain(app, **({"port": self.port} | values)).id
        return CaseRows([case_id], tokens)

    def _application_id(
        self, case_id: str, values: dict[str, Any], tokens: dict[str, str]
    ) -> CaseRows:
        app = self._app_with_ok(case_id, tokens, applicationId=values["applicationId"])
        tokens["row"] = app.id
        return CaseRows([case_id], tokens)

    def _redirect(self, case_id: str, values: dict[str, Any], tokens: dict[str, str]) -> CaseRows:
        app = self._app_with_ok(case_id, tokens)
        tokens["row"] = self.db.add_redirect(app, **values).id
        return CaseRows([case_id], tokens)

    def _security(self, case_id: str, values: dict[str, Any], tokens: dict[str, str]) -> CaseRows:
        app = self._app_with_ok(case_id, tokens)
        tokens["row"] = self.db.add_security(app, **values)
        return CaseRows([case_id], tokens)

    def _compose(self, case_id: str, values: dict[str, Any], tokens: dict[str, str]) -> CaseRows:
        compose = self.db.add_compose(case_id, **values)
        tokens["ok"] = self.db.add_domain(compose, f"{case_id}.ok.test", port=self.port).id
        tokens["row"] = compose.id
        return CaseRows([case_id], tokens)

    def _compose_domain(
        self, case_id: str, values: dict[str, Any], tokens: dict[str, str]
    ) -> CaseRows:
        compose: Compose = self.db.add_compose(case_id)
        tokens["ok"] = self.db.add_domain(compose, f"{case_id}.ok.test", port=self.port).id
        tokens["row"] = self.db.add_domain(compose, **({"port": self.port} | values)).id
        return CaseRows([case_id], tokens)

    def _labels_raw(self, case_id: str, values: dict[str, Any], tokens: dict[str, str]) -> CaseRows:
        app = self._app_with_ok(case_id, tokens)
        self.db.set_labels(app, str(values["labelsSwarm"]))
        tokens["row"] = app.id
        return CaseRows([case_id], tokens)

    def _labels(self, case_id: str, values: dict[str, Any], tokens: dict[str, str]) -> CaseRows:
        app = self._app_with_ok(case_id, tokens)
        merged = fill(CORPUS["label_base"], tokens) | values
        self.db.set_labels(app, {k: str(v) for k, v in merged.items() if v is not None})
        tokens["row"] = app.id
        return CaseRows([case_id], tokens)

    def _collide_auth(
        self, case_id: str, values: dict[str, Any], tokens: dict[str, str]
    ) -> CaseRows:
        apps = [self.db.add_application(name) for name in values["names"]]
        for app in apps:
            self.db.add_domain(app, f"{slug(app.app_name)}.ok.test", port=self.port)
            self.db.add_security(app)
        return self._collision(apps, "app", tokens)

    def _collide_labels(
        self, case_id: str, values: dict[str, Any], tokens: dict[str, str]
    ) -> CaseRows:
        apps = [self.db.add_application(name) for name in values["names"]]
        for app, router in zip(apps, values["routers"], strict=True):
            host = f"{slug(app.app_name)}.lab.test"
            self.db.set_labels(
                app,
                {
                    "traefik.enable": "true",
                    f"traefik.http.routers.{router}.rule": f"Host(`{host}`)",
                    f"traefik.http.services.{router}.loadbalancer.server.port": str(self.port),
                },
            )
        return self._collision(apps, "labels", tokens)

    def _collision(self, apps: list[App], kind: str, tokens: dict[str, str]) -> CaseRows:
        # Owners are planned in id order: the first claims the name, the second is refused.
        first, second = sorted(apps, key=lambda app: app.id)
        tokens |= {
            "first-file": f"zz-traefik-gen-{kind}-{first.id}.yml",
            "second-row": second.id,
            "second-app": second.app_name,
        }
        suffix = "ok" if kind == "app" else "lab"
        served: dict[str, Any] = {"host": f"{slug(first.app_name)}.{suffix}.test"}
        if kind == "app":
            served["auth"] = ("admin", "s3cret-pass")
        return CaseRows([app.app_name for app in apps], tokens, [served])

    def _routes_file(
        self, case_id: str, values: dict[str, Any], tokens: dict[str, str]
    ) -> CaseRows:
        backend: dict[str, Any] = {"host": "x", "port": self.port}
        ok_route = {"key": "ok", "host": f"{case_id}.ok.test", "backend": backend}
        app = {"id": case_id} | values
        app["routes"] = [*app.get("routes", []), ok_route]
        self.file_apps.append(app)
        tokens["ok"] = f"{app['id']}/routes/ok"
        return CaseRows([str(app["id"])], tokens)


@pytest.fixture(scope="module")
def corpus_backend() -> Iterator[Backend]:
    factory = BackendFactory()
    try:
        yield factory("corpus")
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def corpus_db(pg_admin_dsn: str, _template_current: str) -> Iterator[DokployDb]:
    yield from _database(pg_admin_dsn, _template_current, _CURRENT)


@pytest.fixture(scope="module")
def corpus(
    corpus_db: DokployDb, corpus_backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Corpus:
    """Every case in one database and one routes file."""
    for enum, value in CORPUS["enums"].items():
        corpus_db.add_enum_value(enum, value)
    builder = _Builder(corpus_db, corpus_backend.port)
    rows = {case["id"]: builder.build(case) for case in CASES}
    routes_file = tmp_path_factory.mktemp("corpus") / "routes.yml"
    routes_file.write_text(yaml.safe_dump({"apps": builder.file_apps}), encoding="utf-8")
    for case_rows in rows.values():
        case_rows.tokens["file"] = str(routes_file)
    namespaces = [(ns, case_id) for case_id, r in rows.items() for ns in _namespaces(r.apps)]
    namespaces.sort(key=lambda pair: -len(pair[0]))
    return Corpus(corpus_db, routes_file, corpus_backend, rows, namespaces)


@pytest.fixture(scope="module")
def corpus_version(request: pytest.FixtureRequest) -> str:
    version: str = request.param
    return version


@pytest.fixture(scope="module")
def run(
    corpus: Corpus, corpus_version: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    """One generate of the whole corpus into a real Traefik, loaded before any assertion."""
    traefik = TraefikProcess(corpus_version, tmp_path_factory.mktemp(f"traefik-{corpus_version}"))
    traefik.start()
    try:
        stderr = _generate(corpus, traefik.dynamic_dir)
        marker = _marker(traefik)
        raw = traefik.api_json("/api/rawdata")
        yield Run(traefik, stderr, _rejections(stderr), marker, raw)
    finally:
        traefik.stop()


def _generate(corpus: Corpus, out: Path) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRAEFIK_GEN_")}
    sources = ["--source", corpus.db.url, "--source", str(corpus.routes_file)]
    options = ["--out", str(out), "--mode", "full", "--upstream", UPSTREAM]
    result = subprocess.run(
        [sys.executable, "-m", "traefik_gen", "generate", *sources, *options],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def _marker(traefik: TraefikProcess) -> str:
    document = yaml.safe_load(
        (traefik.dynamic_dir / "zz-traefik-gen-zz-generation.yml").read_text()
    )
    (name,) = document["http"]["middlewares"]
    traefik.wait_for(lambda: traefik.middleware(name), timeout=20)
    return str(name)


def _rejections(stderr: str) -> list[str]:
    found = []
    for line in stderr.splitlines():
        _, _, message = line.partition("traefik_gen.cli: ")
        if message.startswith(PREFIX):
            found.append(message)
    return found


def _lines_of(run: Run, apps: list[str]) -> set[str]:
    return {line for line in run.rejections if any(f"(app '{app}'," in line for app in apps)}


def _namespaces(apps: list[str]) -> tuple[str, ...]:
    return tuple(f"tg-{kind}-{slug(app)}-" for app in apps for kind in _KINDS)


def _case_of(name: str, corpus: Corpus) -> str | None:
    """The case whose owner defines object `name`: the longest namespace that prefixes it."""
    return next((case_id for ns, case_id in corpus.namespaces if name.startswith(ns)), None)


def _get(run: Run, want: Mapping[str, Any]) -> Any:
    host, path, auth = want["host"], want.get("path", "/"), want.get("auth")
    auth_pair = (auth[0], auth[1]) if auth else None
    return wait_for(
        lambda: (r := run.traefik.get(host, path, auth=auth_pair)).status == 200 and r, 5.0
    )


# --- the assertions -------------------------------------------------------------------------


@pytest.mark.parametrize("case", _case_params("bug_line"))
def test_bad_row_is_reported_with_its_exact_line(
    run: Run, corpus: Corpus, case: dict[str, Any]
) -> None:
    rows = corpus.rows[case["id"]]
    expected = {fill(line, rows.tokens) for line in case["lines"]}
    assert _lines_of(run, rows.apps) == expected


@pytest.mark.parametrize("case", _case_params("bug_served"))
def test_good_routes_next_to_a_bad_row_are_served_by_traefik(
    run: Run, corpus: Corpus, case: dict[str, Any]
) -> None:
    rows = corpus.rows[case["id"]]
    for want in rows.served:
        answer = _get(run, want)
        assert answer, f"{want['host']} is not served"
        body = answer.json()
        assert (body["backend"], body["host"]) == ("corpus", want["host"])
        if "header" in want:
            name, value = want["header"]
            assert {k.lower(): v for k, v in body["headers"].items()}[name] == value
    for refused in fill(case.get("not_served", []), rows.tokens):
        assert run.traefik.get(refused["host"], refused.get("path", "/")).status == 404


@pytest.mark.parametrize("case", _case_params("bug_config"))
def test_traefik_holds_no_object_of_the_case_in_error(
    run: Run, corpus: Corpus, case: dict[str, Any]
) -> None:
    for section in ("routers", "services", "middlewares"):
        for name, body in (run.raw.get(section) or {}).items():
            if _case_of(name.partition("@")[0], corpus) == case["id"]:
                assert body.get("status", "enabled") == "enabled", (name, body)
                assert not body.get("err"), (name, body)


def test_every_other_generated_object_loads_without_an_error(run: Run, corpus: Corpus) -> None:
    known_bad = {c["id"] for c in CASES if "bug_config" in c}
    assert run.traefik.middleware(run.marker) is not None
    routers = [r for r in run.traefik.routers() if r["name"].startswith("tg-")]
    assert len(routers) >= len(CASES)
    for router in routers:
        if _case_of(router["name"].partition("@")[0], corpus) not in known_bad:
            assert router["status"] == "enabled" and not router.get("error"), router
    errors = [e for e in run.traefik.log_errors() if not any(f"-{i}-" in e for i in known_bad)]
    assert errors == []


def test_no_plaintext_password_reaches_the_output_or_the_files(run: Run) -> None:
    written = b"".join(p.read_bytes() for p in run.traefik.dynamic_dir.glob("*.yml"))
    for secret in SECRETS:
        assert secret not in run.stderr
        assert secret.encode() not in written


def test_ids_that_would_escape_the_directory_stay_inside_it(run: Run, corpus: Corpus) -> None:
    escaping = [c["id"] for c in CASES if c["id"].endswith("escapes-directory")]
    root = run.traefik.dynamic_dir.parent.parent
    outside = [p for p in root.rglob("*") if any(i in p.name for i in escaping)]
    assert outside == []
    owned = sorted(p.name for p in run.traefik.dynamic_dir.glob("zz-traefik-gen-*h.*.yml"))
    assert len(owned) == len(escaping)
