"""generate, end to end: a Dokploy-shaped PostgreSQL, the real Traefik, real HTTP backends.

Every test runs against both Traefik lines (3.6, which Dokploy ships, and 3.7) and sends
real requests through Traefik with the right Host header.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.backends import BackendFactory
from tests.support.postgres import DokployDb
from tests.support.traefik import TraefikProcess

UPSTREAM = "http://127.0.0.1:{port}"


def generate(db: DokployDb, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRAEFIK_GEN_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "traefik_gen",
            "generate",
            "--source",
            db.url,
            "--out",
            str(out),
            "--upstream",
            UPSTREAM,
            *extra,
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def owned(out: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_ino) for p in out.glob("zz-traefik-gen-*")}


def generated_routers(traefik: TraefikProcess) -> list[dict[str, Any]]:
    return [r for r in traefik.routers() if r["name"].startswith("tg-")]


def assert_all_generated_routers_enabled(traefik: TraefikProcess, expected: int) -> None:
    routers = traefik.wait_for(lambda: len(generated_routers(traefik)) >= expected or None)
    assert routers, f"expected {expected} routers, Traefik has {generated_routers(traefik)}"
    for router in generated_routers(traefik):
        assert router["status"] == "enabled", router
        assert not router.get("error"), router
    assert traefik.log_errors() == []


def served_by(traefik: TraefikProcess, host: str, path: str = "/", **kw: Any) -> Any:
    answer = traefik.wait_for(lambda: (r := traefik.get(host, path, **kw)).status == 200 and r)
    assert answer, f"{host}{path} was never served"
    return answer.json()


def test_application_and_compose_domains_are_served_from_files(
    dokploy_db: DokployDb, traefik: TraefikProcess, backends: BackendFactory
) -> None:
    api, shop = backends("api"), backends("shop")
    app = dokploy_db.add_application("api-app")
    dokploy_db.add_domain(app, "api.example.test", port=api.port, path="/v1", stripPath=True)
    compose = dokploy_db.add_compose("shop-stack", composeType="stack")
    dokploy_db.add_domain(
        compose, "Shop.Example.Test", port=shop.port, https=True, certificateType="letsencrypt"
    )

    generate(dokploy_db, traefik.dynamic_dir, "--mode", "full")

    stripped = served_by(traefik, "api.example.test", "/v1/items")
    assert (stripped["backend"], stripped["path"]) == ("api", "/items")
    secure = served_by(traefik, "shop.example.test", "/cart", https=True)
    assert (secure["backend"], secure["path"], secure["host"]) == (
        "shop",
        "/cart",
        "shop.example.test",
    )
    assert_all_generated_routers_enabled(traefik, expected=3)


def test_http_is_redirected_to_https_for_an_https_domain(
    dokploy_db: DokployDb, traefik: TraefikProcess, backends: BackendFactory
) -> None:
    backend = backends("web")
    app = dokploy_db.add_application("secure-app")
    dokploy_db.add_domain(app, "secure.example.test", port=backend.port, https=True)

    generate(dokploy_db, traefik.dynamic_dir, "--mode", "full")

    redirect = traefik.wait_for(
        lambda: (r := traefik.get("secure.example.test", "/a?b=1")).status in (301, 308) and r
    )
    assert redirect, "plain http was not redirected"
    assert redirect.header("location") == "https://secure.example.test/a?b=1"
    assert served_by(traefik, "secure.example.test", "/a", https=True)["backend"] == "web"
    assert backend.requests[-1]["path"] == "/a"


def test_basic_auth_is_demanded_and_the_right_password_passes(
    dokploy_db: DokployDb, traefik: TraefikProcess, backends: BackendFactory
) -> None:
    backend = backends("private")
    app = dokploy_db.add_application("private-app")
    dokploy_db.add_domain(app, "private.example.test", port=backend.port)
    dokploy_db.add_security(app, "alice", "correct horse")

    generate(dokploy_db, traefik.dynamic_dir, "--mode", "full")

    denied = traefik.wait_for(
        lambda: (r := traefik.get("private.example.test")).status == 401 and r
    )
    assert denied, "basic auth was not demanded"
    wrong = traefik.get("private.example.test", auth=("alice", "wrong"))
    assert wrong.status == 401
    allowed = traefik.get("private.example.test", auth=("alice", "correct horse"))
    assert allowed.status == 200
    assert "authorization" not in {k.lower() for k in allowed.json()["headers"]}


def test_stored_swarm_labels_are_served_from_a_file(
    dokploy_db: DokployDb, traefik: TraefikProcess, backends: BackendFactory
) -> None:
    backend = backends("labelled")
    app = dokploy_db.add_application("labelled-app")
    dokploy_db.set_labels(
        app,
        {
            "traefik.enable": "true",
            "traefik.http.routers.api.rule": "Host(`api.labels.test`)",
            "traefik.http.routers.api.entrypoints": "websecure",
            "traefik.http.routers.api.tls.certresolver": "letsencrypt",
            "traefik.http.services.api.loadbalancer.server.port": str(backend.port),
        },
    )

    generate(dokploy_db, traefik.dynamic_dir)

    assert served_by(traefik, "api.labels.test", https=True)["backend"] == "labelled"
    router = traefik.wait_router("tg-labels-labelled-app-api@file")
    assert router["entryPoints"] == ["websecure"]
    assert router["tls"]["certResolver"] == "letsencrypt"
    assert_all_generated_routers_enabled(traefik, expected=1)


def test_complement_mode_writes_compose_and_leaves_applications_to_dokploy(
    dokploy_db: DokployDb, traefik: TraefikProcess, backends: BackendFactory
) -> None:
    backend = backends("compose")
    app = dokploy_db.add_application("left-to-dokploy")
    dokploy_db.add_domain(app, "app.example.test", port=backend.port)
    compose = dokploy_db.add_compose("written")
    dokploy_db.add_domain(compose, "compose.example.test", port=backend.port)

    result = generate(dokploy_db, traefik.dynamic_dir)

    assert served_by(traefik, "compose.example.test")["backend"] == "compose"
    assert [name for name in owned(traefik.dynamic_dir) if "-app-" in name] == []
    assert "no file in the directory defines Dokploy's router 'left-to-dokploy-router-" in (
        result.stderr
    )


def test_an_unchanged_database_rewrites_nothing_and_traefik_restarted_serves_at_once(
    dokploy_db: DokployDb, traefik: TraefikProcess, backends: BackendFactory
) -> None:
    backend = backends("steady")
    compose = dokploy_db.add_compose("steady")
    dokploy_db.add_domain(compose, "steady.example.test", port=backend.port, https=True)
    app = dokploy_db.add_application("guarded")
    dokploy_db.add_domain(app, "guarded.example.test", port=backend.port)
    dokploy_db.add_security(app)
    generate(dokploy_db, traefik.dynamic_dir, "--mode", "full")
    served_by(traefik, "steady.example.test", https=True)
    before = owned(traefik.dynamic_dir)

    again = generate(dokploy_db, traefik.dynamic_dir, "--mode", "full")

    assert "wrote 0 files, removed 0" in again.stderr
    assert owned(traefik.dynamic_dir) == before
    assert traefik.get("steady.example.test", https=True).status == 200
    traefik.restart()
    # Served from the files already on disk: nothing was rewritten for the new process.
    assert served_by(traefik, "steady.example.test", https=True)["backend"] == "steady"
    assert owned(traefik.dynamic_dir) == before


def test_a_changed_domain_is_live_without_restarting_anything(
    dokploy_db: DokployDb, traefik: TraefikProcess, backends: BackendFactory
) -> None:
    old, new = backends("old"), backends("new")
    compose = dokploy_db.add_compose("moving")
    domain = dokploy_db.add_domain(compose, "moving.example.test", port=old.port)
    generate(dokploy_db, traefik.dynamic_dir)
    assert served_by(traefik, "moving.example.test")["backend"] == "old"

    dokploy_db.update("domain", domain.id, port=new.port)
    generate(dokploy_db, traefik.dynamic_dir)

    moved = traefik.wait_for(lambda: traefik.get("moving.example.test").json()["backend"] == "new")
    assert moved, "the changed port never reached Traefik"
    staging = traefik.dynamic_dir / ".traefik-gen"
    assert [p.name for p in staging.iterdir() if p.suffix in (".yml", ".yaml", ".toml")] == []


def test_a_disabled_or_deleted_domain_stops_being_served(
    dokploy_db: DokployDb, traefik: TraefikProcess, backends: BackendFactory
) -> None:
    backend = backends("b")
    compose = dokploy_db.add_compose("going")
    kept = dokploy_db.add_domain(compose, "kept.example.test", port=backend.port)
    gone = dokploy_db.add_domain(compose, "gone.example.test", port=backend.port)
    generate(dokploy_db, traefik.dynamic_dir)
    served_by(traefik, "gone.example.test")

    dokploy_db.update("domain", gone.id, enabled=False)
    generate(dokploy_db, traefik.dynamic_dir)
    assert traefik.wait_for(lambda: traefik.get("gone.example.test").status == 404)

    dokploy_db.delete("domain", kept.id)
    generate(dokploy_db, traefik.dynamic_dir)
    assert traefik.wait_for(lambda: traefik.get("kept.example.test").status == 404)
    assert owned(traefik.dynamic_dir) == {}


def test_a_bad_row_costs_nothing_else(
    dokploy_db: DokployDb, traefik: TraefikProcess, backends: BackendFactory
) -> None:
    backend = backends("good")
    compose = dokploy_db.add_compose("mixed")
    dokploy_db.add_domain(compose, "good.example.test", port=backend.port)
    bad = dokploy_db.add_domain(compose, "bad.example.test`) || Host(`evil.test", port=backend.port)

    result = generate(dokploy_db, traefik.dynamic_dir)

    assert f"rejected domain row '{bad.id}' (app 'mixed', field 'host')" in result.stderr
    assert served_by(traefik, "good.example.test")["backend"] == "good"
    assert traefik.get("evil.test").status == 404
    assert_all_generated_routers_enabled(traefik, expected=1)


def test_an_older_install_is_read_with_dokploys_defaults(
    dokploy_db_v0_24: DokployDb, traefik: TraefikProcess, backends: BackendFactory
) -> None:
    backend = backends("old-install")
    compose = dokploy_db_v0_24.add_compose("legacy")
    dokploy_db_v0_24.add_domain(compose, "legacy.example.test", port=backend.port)

    generate(dokploy_db_v0_24, traefik.dynamic_dir)

    assert served_by(traefik, "legacy.example.test")["backend"] == "old-install"


@pytest.mark.parametrize("output_format", ["toml"])
def test_toml_files_are_served_the_same(
    dokploy_db: DokployDb, traefik: TraefikProcess, backends: BackendFactory, output_format: str
) -> None:
    backend = backends("toml")
    compose = dokploy_db.add_compose("toml-stack")
    dokploy_db.add_domain(compose, "toml.example.test", port=backend.port, https=True, path="/x")

    generate(dokploy_db, traefik.dynamic_dir, "--format", output_format)

    assert served_by(traefik, "toml.example.test", "/x/y", https=True)["path"] == "/x/y"
    assert_all_generated_routers_enabled(traefik, expected=2)


def test_a_preview_is_served_with_its_parents_users_and_without_redirects(
    dokploy_db: DokployDb, traefik: TraefikProcess, backends: BackendFactory
) -> None:
    backend = backends("preview")
    parent = dokploy_db.add_application("parent-app")
    dokploy_db.add_security(parent, "reviewer", "let me see")
    dokploy_db.add_redirect(parent, regex="^http://(.*)/old$", replacement="http://$1/new")
    preview = dokploy_db.add_preview(parent)
    dokploy_db.add_domain(preview, "pr-1.preview.test", port=backend.port)

    generate(dokploy_db, traefik.dynamic_dir, "--mode", "full")

    assert traefik.wait_for(lambda: traefik.get("pr-1.preview.test").status == 401)
    answer = traefik.get("pr-1.preview.test", "/old", auth=("reviewer", "let me see"))
    assert (answer.status, answer.json()["path"]) == (200, "/old")
    assert_all_generated_routers_enabled(traefik, expected=1)


def test_verify_proves_the_generation_is_loaded_and_names_a_file_that_froze_traefik(
    dokploy_db: DokployDb, traefik: TraefikProcess, backends: BackendFactory
) -> None:
    backend = backends("verified")
    compose = dokploy_db.add_compose("verified")
    dokploy_db.add_domain(compose, "verified.example.test", port=backend.port)
    generate(dokploy_db, traefik.dynamic_dir)

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "traefik_gen",
                "verify",
                "--traefik-api",
                traefik.api_url,
                "--out",
                str(traefik.dynamic_dir),
                "--traefik-log",
                str(traefik.log_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    loaded = verify()
    (traefik.dynamic_dir / "broken.yml").write_text("http:\n  routers:\n    x:\n      bogus: 1\n")
    dokploy_db.add_domain(compose, "later.example.test", port=backend.port)
    generate(dokploy_db, traefik.dynamic_dir)
    frozen = verify()

    assert loaded.returncode == 0, loaded.stderr
    assert "is loaded" in loaded.stderr
    assert frozen.returncode == 6, frozen.stderr
    assert "broken.yml" in frozen.stderr
