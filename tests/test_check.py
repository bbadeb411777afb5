"""traefik-gen check: every finding kind is reported, and a clean directory gives none.

The database is a real Dokploy-shaped PostgreSQL, the directories real files, and the
--traefik and --traefik-api paths run the real Traefik binaries.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.postgres import DokployDb
from tests.support.traefik import (
    TraefikFactory,
    TraefikProcess,
    binary_path,
    free_ports,
    require_binary,
)
from traefik_gen.check import CheckReport, FindingKind, run_check
from traefik_gen.check.lint import lint_content
from traefik_gen.errors import SourceError
from traefik_gen.settings import Mode, Settings
from traefik_gen.sync import sync

BACKEND = "http://127.0.0.1:1"


def settings_for(db: DokployDb, out: Path, mode: Mode = Mode.COMPLEMENT) -> Settings:
    return Settings(source=(db.url,), out=out, mode=mode)


def write(directory: Path, name: str, document: dict[str, Any] | str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    text = document if isinstance(document, str) else yaml.safe_dump(document)
    path.write_text(text, encoding="utf-8")
    return path


def router(rule: str, service: str = "svc", **extra: Any) -> dict[str, Any]:
    return {"rule": rule, "service": service, "entryPoints": ["web"], **extra}


def services(*names: str) -> dict[str, Any]:
    return {name: {"loadBalancer": {"servers": [{"url": BACKEND}]}} for name in names}


SVC = {"services": services("svc")}


def kinds(report: CheckReport) -> list[FindingKind]:
    return [finding.kind for finding in report.findings]


def of_kind(report: CheckReport, kind: FindingKind) -> list[Any]:
    return [finding for finding in report.findings if finding.kind is kind]


# --- a clean directory ----------------------------------------------------------------------


def test_a_clean_synced_directory_gives_no_finding_and_exit_0(
    dokploy_db: DokployDb, tmp_path: Path
) -> None:
    compose = dokploy_db.add_compose("shop")
    dokploy_db.add_domain(compose, "shop.example.test", https=True, port=3000)
    write(tmp_path, "dokploy.yml", {"http": {"routers": {"dash": router("Host(`d.test`)")}}})
    write(tmp_path, "services.yml", {"http": {"services": services("svc")}})
    settings = settings_for(dokploy_db, tmp_path)
    sync(settings)

    report = run_check(settings)

    assert report.findings == []
    assert report.exit_code() == 0
    assert json.loads(report.to_json())["summary"] == {
        "findings": 0,
        "by_kind": {},
        "exit_code": 0,
    }


def test_check_writes_nothing_to_the_directory(dokploy_db: DokployDb, tmp_path: Path) -> None:
    compose = dokploy_db.add_compose("shop")
    dokploy_db.add_domain(compose, "shop.example.test")
    out = tmp_path / "dynamic"

    report = run_check(settings_for(dokploy_db, out))

    assert report.exit_code() == 0
    assert not out.exists()


# --- rejected rows --------------------------------------------------------------------------


def test_a_rejected_row_is_reported_with_table_row_app_and_field(
    dokploy_db: DokployDb, tmp_path: Path
) -> None:
    compose = dokploy_db.add_compose("shop")
    domain = dokploy_db.add_domain(compose, "shop.example.test", path="nolead")

    report = run_check(settings_for(dokploy_db, tmp_path))

    [finding] = report.findings
    assert finding.kind is FindingKind.REJECTED
    assert (finding.table, finding.row_id, finding.app, finding.field) == (
        "domain",
        domain.id,
        "shop",
        "path",
    )
    assert finding.line.startswith("rejected domain row")
    assert report.exit_code() == 3


# --- name clashes ---------------------------------------------------------------------------


def test_a_name_defined_in_two_foreign_files_is_a_clash_naming_the_winner(
    dokploy_db: DokployDb, tmp_path: Path
) -> None:
    write(tmp_path, "b.yml", {"http": {"services": services("svc")}})
    write(tmp_path, "sub/a.yml", {"http": {"services": services("svc")}})

    report = run_check(settings_for(dokploy_db, tmp_path))

    [finding] = report.findings
    assert finding.kind is FindingKind.NAME_CLASH
    # Traefik's walk is byte order of names: "b.yml" sorts before the directory "sub".
    assert "defined in b.yml and sub/a.yml" in finding.line
    assert finding.file == "sub/a.yml"


def test_a_planned_name_equal_to_a_foreign_name_is_reported(
    dokploy_db: DokployDb, tmp_path: Path
) -> None:
    compose = dokploy_db.add_compose("shop")
    domain = dokploy_db.add_domain(compose, "shop.example.test")
    taken = f"tg-compose-shop-{domain.key}"
    write(tmp_path, "users.yml", {"http": {"services": services(taken)}})

    report = run_check(settings_for(dokploy_db, tmp_path))

    [finding] = report.findings
    assert finding.kind is FindingKind.REJECTED
    assert finding.field == "name"
    assert taken in finding.line


# --- route clashes --------------------------------------------------------------------------


def test_one_host_and_path_claimed_by_two_routers_on_one_entrypoint_is_reported(
    dokploy_db: DokployDb, tmp_path: Path
) -> None:
    write(
        tmp_path,
        "a.yml",
        {
            "http": {
                "routers": {"one": router('Host("A.test") && PathPrefix("/api")')},
                "services": services("svc"),
            }
        },
    )
    write(
        tmp_path,
        "b.yml",
        {"http": {"routers": {"two": router("PathPrefix(`/api`) && Host(`a.test`)")}}},
    )

    report = run_check(settings_for(dokploy_db, tmp_path))

    [finding] = report.findings
    assert finding.kind is FindingKind.ROUTE_CLASH
    assert "'a.test'" in finding.line and "'/api'" in finding.line
    assert "'one' (a.yml)" in finding.line and "'two' (b.yml)" in finding.line


def test_a_generated_route_claimed_again_by_a_foreign_router_is_reported(
    dokploy_db: DokployDb, tmp_path: Path
) -> None:
    compose = dokploy_db.add_compose("shop")
    dokploy_db.add_domain(compose, "shop.example.test")
    write(
        tmp_path,
        "user.yml",
        {
            "http": {
                "routers": {"mine": router("Host(`shop.example.test`)")},
                "services": services("svc"),
            }
        },
    )

    report = run_check(settings_for(dokploy_db, tmp_path))

    [finding] = of_kind(report, FindingKind.ROUTE_CLASH)
    assert "'mine' (user.yml)" in finding.line
    assert "tg-compose-shop-" in finding.line


def test_the_same_host_on_different_entrypoints_or_paths_is_no_clash(
    dokploy_db: DokployDb, tmp_path: Path
) -> None:
    routers = {
        "plain": router("Host(`a.test`)"),
        "secure": router("Host(`a.test`)", entryPoints=["websecure"]),
        "api": router("Host(`a.test`) && PathPrefix(`/api`)"),
    }
    write(tmp_path, "a.yml", {"http": {"routers": routers, "services": services("svc")}})

    assert run_check(settings_for(dokploy_db, tmp_path)).findings == []


# --- missing references ---------------------------------------------------------------------


def test_references_to_objects_that_exist_nowhere_are_reported(
    dokploy_db: DokployDb, tmp_path: Path
) -> None:
    write(
        tmp_path,
        "a.yml",
        {
            "http": {
                "routers": {
                    "r": router("Host(`a.test`)", service="ghost", middlewares=["chained"]),
                    "s": router("Host(`b.test`)", service="svc@file", middlewares=["x@docker"]),
                },
                "middlewares": {"chained": {"chain": {"middlewares": ["gone@file"]}}},
            }
        },
    )
    write(tmp_path, "b.yml", {"http": {"services": services("svc")}})

    report = run_check(settings_for(dokploy_db, tmp_path))

    lines = " | ".join(f.line for f in report.findings)
    assert kinds(report) == [FindingKind.MISSING_REFERENCE] * 2, lines
    assert "router 'r' (service) names service 'ghost'" in lines
    assert "middleware 'chained' (chain.middlewares[0]) names middleware 'gone@file'" in lines
    assert {f.file for f in report.findings} == {"a.yml"}


# --- unserved domains (complement mode) ------------------------------------------------------


def test_an_application_domain_no_file_serves_is_reported_in_complement_mode(
    dokploy_db: DokployDb, tmp_path: Path
) -> None:
    served, unserved = dokploy_db.add_application("web"), dokploy_db.add_application("api")
    key = dokploy_db.add_domain(served, "web.example.test").key
    dokploy_db.add_domain(unserved, "api.example.test")
    dokploy = {
        "http": {
            "routers": {f"web-router-{key}": router("Host(`web.example.test`)", service="web")},
            "services": services("web"),
        }
    }
    write(tmp_path, "web.yml", dokploy)

    report = run_check(settings_for(dokploy_db, tmp_path))

    [finding] = report.findings
    assert finding.kind is FindingKind.UNSERVED
    assert "'api-router-" in finding.line
    assert report.exit_code() == 3


# --- files Traefik would refuse ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("http:\n  routers:\n    r: {rule: 'Host(`a`)'\n", "yaml does not parse (line"),
        ("http:\n  routers:\n    r:\n      rule: a\n      rule: b\n", "already defined"),
        (
            "http:\n  routers:\n    r:\n      rulez: x\n",
            "'http.routers.r.rulez' is not a known key",
        ),
        ("http:\n  routers:\n    r:\n      priority: high\n", "http.routers.r.priority"),
        ("http:\n  routers: {}\n", "standalone element"),
        ("http:\n  middlewares:\n    m:\n      headers: {}\n", "standalone element"),
        ("# {{ broken\nhttp: {}\n", "go template: line 1: unclosed action"),
        ("x: {{ }}\n", "missing value for command"),
        ("- a\n- b\n", "not a mapping"),
        ('[http.routers.r]\nrule = "x"\nrule = "y"\n', "toml does not parse"),
    ],
)
def test_the_lint_reports_what_traefik_would_refuse(content: str, reason: str) -> None:
    name = "f.toml" if content.startswith("[") else "f.yml"

    result = lint_content(name, content.encode())

    [finding] = result.findings
    assert finding.kind is FindingKind.PARSE
    assert reason in finding.line, finding.line
    assert finding.file == name
    assert result.config is None


@pytest.mark.parametrize(
    "content",
    [
        "",
        "# only a comment\n",
        "---\n",
        "x-note: {anything: here}\n",
        "HTTP:\n  Routers:\n    r:\n      RULE: Host(`a`)\n      Service: s\n",
        'http:\n  routers:\n    r:\n      rule: Host(`{{ "{{" }}a`)\n      service: s\n',
        "http:\n  routers:\n    r:\n      rule: Host(`a`)\n      tls: {}\n      priority: '10'\n",
    ],
)
def test_the_lint_accepts_what_traefik_accepts(content: str) -> None:
    result = lint_content("f.yml", content.encode())

    assert result.findings == []
    assert result.config is not None


def test_a_template_function_is_reported_as_unchecked_not_as_refused() -> None:
    result = lint_content("f.yml", b'http:\n  routers:\n    r:\n      rule: {{ env "RULE" }}\n')

    [finding] = result.findings
    assert finding.kind is FindingKind.UNCHECKED
    assert "line 4" in finding.line


def test_an_unparsable_foreign_file_gives_exit_5_without_echoing_its_values(
    dokploy_db: DokployDb, tmp_path: Path
) -> None:
    secret = "$2y$10$notreallyahashbutsecretvalue0123456789abcdefghijklmnopq"
    write(tmp_path, "middlewares.yml", f"http:\n  middlewares:\n    a: {{basicAuth: '{secret}'}}\n")

    report = run_check(settings_for(dokploy_db, tmp_path))

    [finding] = report.findings
    assert finding.kind is FindingKind.PARSE
    assert finding.file == "middlewares.yml"
    assert "http.middlewares.a.basicAuth" in finding.line
    assert secret not in report.to_json()
    assert report.exit_code() == 5


def test_to_json_lists_each_finding_with_its_fields_and_a_summary(
    dokploy_db: DokployDb, tmp_path: Path
) -> None:
    compose = dokploy_db.add_compose("shop")
    dokploy_db.add_domain(compose, "")
    write(tmp_path, "bad.yml", "http: [\n")

    document = json.loads(run_check(settings_for(dokploy_db, tmp_path)).to_json())

    assert [f["kind"] for f in document["findings"]] == ["rejected", "parse"]
    assert document["findings"][0]["table"] == "domain"
    assert document["findings"][1]["file"] == "bad.yml"
    assert document["summary"] == {
        "findings": 2,
        "by_kind": {"parse": 1, "rejected": 1},
        "exit_code": 5,
    }


# --- the real parser: a scratch Traefik --------------------------------------------------------


def test_a_scratch_traefik_reports_the_file_it_refuses_without_its_value(
    dokploy_db: DokployDb, tmp_path: Path, traefik_version: str
) -> None:
    require_binary(traefik_version)
    write(tmp_path, "a.yml", {"http": {"routers": {"r": router("Host(`a.test`)")}}})
    write(tmp_path, "b.yml", "http:\n  routers:\n    r2:\n      priority: sekrit-value\n")

    report = run_check(
        settings_for(dokploy_db, tmp_path), traefik_binary=binary_path(traefik_version)
    )

    [real] = of_kind(report, FindingKind.TRAEFIK_PARSE)
    assert real.file == "b.yml"
    assert real.line.startswith("traefik refuses b.yml: ")
    assert "b.yml" not in real.line.removeprefix("traefik refuses b.yml")
    assert "sekrit-value" not in real.line
    assert [f.file for f in of_kind(report, FindingKind.PARSE)] == ["b.yml"]
    assert report.exit_code() == 5


def test_a_scratch_traefik_finds_nothing_in_a_clean_directory(
    dokploy_db: DokployDb, tmp_path: Path, traefik_version: str
) -> None:
    require_binary(traefik_version)
    compose = dokploy_db.add_compose("shop")
    dokploy_db.add_domain(compose, "shop.example.test", https=True)
    settings = settings_for(dokploy_db, tmp_path)
    sync(settings)
    write(tmp_path, "user.yml", {"http": {"routers": {"r": router("Host(`a.test`)")}}})
    write(
        tmp_path,
        "user.yml",
        {"http": {"routers": {"r": router("Host(`a.test`)")}, "services": services("svc")}},
    )

    report = run_check(settings, traefik_binary=binary_path(traefik_version))

    assert report.findings == []


# --- a running Traefik's API: label routers and other providers --------------------------------


class _Document(ThreadingHTTPServer):
    daemon_threads = True
    body = b"{}"


class _Serve(BaseHTTPRequestHandler):
    server: _Document

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_provider() -> Iterator[_Document]:
    """A local endpoint for Traefik's HTTP provider, standing in for Docker labels."""
    server = _Document(("127.0.0.1", 0), _Serve)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _WithHttpProvider(TraefikProcess):
    endpoint = ""

    @property
    def static_config(self) -> dict[str, Any]:
        config = super().static_config
        config["providers"]["http"] = {"endpoint": self.endpoint, "pollInterval": "1s"}
        return config


def traefik_with_labels(
    factory: TraefikFactory, tmp_path: Path, provider: _Document, labels: dict[str, Any]
) -> TraefikProcess:
    provider.body = json.dumps(labels).encode()
    instance = _WithHttpProvider(factory.version, tmp_path / "traefik")
    instance.endpoint = f"http://127.0.0.1:{provider.server_address[1]}/"
    factory.started.append(instance)
    instance.start()
    names = {f"{name}@http" for name in labels["http"]["routers"]}
    seen = instance.wait_for(lambda: names <= {r["name"] for r in instance.routers()})
    assert seen, instance.routers()
    return instance


def label_router(rule: str, entrypoint: str = "web") -> dict[str, Any]:
    return {"rule": rule, "service": "labels", "entryPoints": [entrypoint]}


def test_label_routers_serving_what_the_database_changed_are_redeploys_due(
    dokploy_db: DokployDb,
    tmp_path: Path,
    traefik_factory: TraefikFactory,
    http_provider: _Document,
) -> None:
    compose = dokploy_db.add_compose("shop")
    moved = dokploy_db.add_domain(compose, "new.example.test")
    current = dokploy_db.add_domain(compose, "same.example.test", path="/app")
    disabled = dokploy_db.add_domain(compose, "off.example.test", enabled=False)
    labels = {
        "http": {
            "routers": {
                f"shop-{moved.key}-web": label_router("Host(`old.example.test`)"),
                f"shop-{current.key}-web": label_router(
                    "Host(`same.example.test`) && PathPrefix(`/app`)"
                ),
                f"shop-{disabled.key}-web": label_router("Host(`off.example.test`)"),
                f"shop-{current.key}-websecure": label_router(
                    "Host(`same.example.test`) && PathPrefix(`/app`)", "websecure"
                ),
                "unrelated-1-web": label_router("Host(`other.example.test`)"),
            },
            "services": services("labels"),
        }
    }
    traefik = traefik_with_labels(traefik_factory, tmp_path, http_provider, labels)
    out = tmp_path / "dynamic"

    report = run_check(
        settings_for(dokploy_db, out), traefik_api=traefik.api_url, label_providers=("http",)
    )

    due = of_kind(report, FindingKind.REDEPLOY_DUE)
    assert {f.row_id for f in due} == {moved.id, current.id, compose.id}
    by_row = {f.row_id: f.line for f in due}
    assert "its rule differs" in by_row[moved.id]
    assert "no longer has a router on entrypoint 'websecure'" in by_row[current.id]
    assert "disabled or deleted" in by_row[compose.id]
    assert all(f.app == "shop" for f in due)
    assert f"'shop-{moved.key}-web@http'" in by_row[moved.id]


def test_label_routers_are_not_read_from_providers_other_than_the_label_ones(
    dokploy_db: DokployDb,
    tmp_path: Path,
    traefik_factory: TraefikFactory,
    http_provider: _Document,
) -> None:
    compose = dokploy_db.add_compose("shop")
    moved = dokploy_db.add_domain(compose, "new.example.test")
    labels = {
        "http": {
            "routers": {f"shop-{moved.key}-web": label_router("Host(`old.example.test`)")},
            "services": services("labels"),
        }
    }
    traefik = traefik_with_labels(traefik_factory, tmp_path, http_provider, labels)

    report = run_check(settings_for(dokploy_db, tmp_path / "dynamic"), traefik_api=traefik.api_url)

    assert report.findings == []


def test_references_to_another_provider_are_checked_against_the_api(
    dokploy_db: DokployDb,
    tmp_path: Path,
    traefik_factory: TraefikFactory,
    http_provider: _Document,
) -> None:
    labels = {
        "http": {
            "routers": {"elsewhere": label_router("Host(`x.example.test`)")},
            "services": services("labels"),
        }
    }
    traefik = traefik_with_labels(traefik_factory, tmp_path, http_provider, labels)
    out = tmp_path / "dynamic"
    routers = {
        "ok": router("Host(`a.test`)", service="labels@http", middlewares=[]),
        "bad": router("Host(`b.test`)", service="ghost@http"),
        "internal": router("Host(`c.test`)", service="api@internal"),
    }
    write(out, "a.yml", {"http": {"routers": routers}})

    report = run_check(settings_for(dokploy_db, out), traefik_api=traefik.api_url)

    [finding] = report.findings
    assert finding.kind is FindingKind.MISSING_REFERENCE
    assert "service 'ghost@http'" in finding.line


def test_an_unreachable_traefik_api_is_a_source_error(
    dokploy_db: DokployDb, tmp_path: Path
) -> None:

    [port] = free_ports(1)
    with pytest.raises(SourceError, match="cannot read traefik api"):
        run_check(settings_for(dokploy_db, tmp_path), traefik_api=f"http://127.0.0.1:{port}")
