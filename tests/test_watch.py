"""watch, the sidecar: real PostgreSQL, the real Traefik, `traefik-gen watch` as a real process.

Waits are bounded "eventually" loops; speed is measured in bench/, never asserted here.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import yaml

from tests.support.backends import BackendFactory
from tests.support.fake_docker import FakeDockerEngine
from tests.support.own_postgres import OwnPostgres
from tests.support.postgres import DokployDb
from tests.support.sidecar import Sidecar, SidecarFactory
from tests.support.traefik import TraefikProcess, wait_for

UPSTREAM = "http://127.0.0.1:{port}"
PREFIX = "zz-traefik-gen-"


def start_sidecar(
    factory: SidecarFactory, url: str, out: Path, *extra: str, upstream: str = UPSTREAM
) -> Sidecar:
    sidecar = factory(
        "--source",
        url,
        "--out",
        str(out),
        "--upstream",
        upstream,
        "--poll-interval",
        "0.2",
        *extra,
    )
    sidecar.wait_ready()
    return sidecar


def owned(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob(PREFIX + "*"))}


def everything_in(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def backend_of(traefik: TraefikProcess, host: str) -> str | None:
    answer = traefik.get(host)
    return answer.json()["backend"] if answer.status == 200 else None


@pytest.mark.parametrize("traefik_version", ["3.7.15"], ids=["traefik3.7"], indirect=True)
def test_a_domain_inserted_changed_disabled_and_deleted_follows_in_traefik(
    dokploy_db: DokployDb,
    traefik: TraefikProcess,
    backends: BackendFactory,
    sidecar_factory: SidecarFactory,
) -> None:
    first, second = backends("first"), backends("second")
    compose = dokploy_db.add_compose("live")
    start_sidecar(sidecar_factory, dokploy_db.url, traefik.dynamic_dir, "--no-docker")

    domain = dokploy_db.add_domain(compose, "live.example.test", port=first.port)
    assert traefik.wait_for(lambda: backend_of(traefik, "live.example.test") == "first")

    dokploy_db.update("domain", domain.id, port=second.port)
    assert traefik.wait_for(lambda: backend_of(traefik, "live.example.test") == "second")

    dokploy_db.update("domain", domain.id, enabled=False)
    assert traefik.wait_for(lambda: traefik.get("live.example.test").status == 404)

    dokploy_db.update("domain", domain.id, enabled=True)
    assert traefik.wait_for(lambda: backend_of(traefik, "live.example.test") == "second")
    dokploy_db.delete("domain", domain.id)
    assert traefik.wait_for(lambda: traefik.get("live.example.test").status == 404)
    assert traefik.wait_for(lambda: owned(traefik.dynamic_dir) == {})


@pytest.mark.parametrize("traefik_version", ["3.6.15"], ids=["traefik3.6"], indirect=True)
def test_an_outage_keeps_every_byte_and_recovers_without_a_restart(
    own_postgres: OwnPostgres,
    traefik: TraefikProcess,
    backends: BackendFactory,
    sidecar_factory: SidecarFactory,
) -> None:
    backend = backends("steady")
    db = own_postgres.db
    compose = db.add_compose("steady")
    db.add_domain(compose, "steady.example.test", port=backend.port)
    sidecar = start_sidecar(sidecar_factory, own_postgres.url, traefik.dynamic_dir, "--no-docker")
    assert traefik.wait_for(lambda: backend_of(traefik, "steady.example.test") == "steady")
    before = everything_in(traefik.dynamic_dir)

    own_postgres.stop()

    assert sidecar.wait_for(lambda: sidecar.readyz()[0] == 503)
    assert sidecar.wait_for(
        lambda: (sidecar.metric("traefik_gen_syncs_total", outcome="failed") or 0) >= 3
    )
    assert everything_in(traefik.dynamic_dir) == before
    assert backend_of(traefik, "steady.example.test") == "steady"
    assert sidecar.log_text().count("sync failed") == 1

    own_postgres.start()
    sidecar.wait_ready()
    db = own_postgres.db
    db.add_domain(compose, "new.example.test", port=backend.port)
    assert traefik.wait_for(lambda: backend_of(traefik, "new.example.test") == "steady", timeout=40)
    assert "recovered" in sidecar.log_text()


@pytest.mark.parametrize("traefik_version", ["3.7.15"], ids=["traefik3.7"], indirect=True)
def test_an_owned_file_deleted_or_overwritten_is_restored_and_foreign_files_are_left_alone(
    dokploy_db: DokployDb,
    traefik: TraefikProcess,
    backends: BackendFactory,
    sidecar_factory: SidecarFactory,
) -> None:
    backend = backends("healed")
    compose = dokploy_db.add_compose("healed")
    dokploy_db.add_domain(compose, "healed.example.test", port=backend.port)
    foreign = traefik.dynamic_dir / "users-own.yml"
    foreign.write_text("# a user's file\n")
    start_sidecar(sidecar_factory, dokploy_db.url, traefik.dynamic_dir, "--no-docker")
    assert traefik.wait_for(lambda: owned(traefik.dynamic_dir))
    written = owned(traefik.dynamic_dir)
    (name,) = [name for name in written if "-compose-" in name]

    (traefik.dynamic_dir / name).unlink()
    assert wait_for(lambda: owned(traefik.dynamic_dir) == written)

    (traefik.dynamic_dir / name).write_bytes(written[name] + b"# edited by hand\n")
    assert wait_for(lambda: owned(traefik.dynamic_dir) == written)

    foreign.write_text("# a user's file, edited\n")
    assert traefik.wait_for(lambda: backend_of(traefik, "healed.example.test") == "healed")
    assert foreign.read_text() == "# a user's file, edited\n"


@pytest.mark.parametrize("traefik_version", ["3.7.15"], ids=["traefik3.7"], indirect=True)
def test_sigterm_during_a_burst_of_changes_exits_cleanly_and_leaves_nothing_staged(
    dokploy_db: DokployDb,
    traefik: TraefikProcess,
    backends: BackendFactory,
    sidecar_factory: SidecarFactory,
) -> None:
    backend = backends("burst")
    sidecar = start_sidecar(sidecar_factory, dokploy_db.url, traefik.dynamic_dir, "--no-docker")
    for number in range(30):
        compose = dokploy_db.add_compose(f"burst-{number}")
        dokploy_db.add_domain(compose, f"burst-{number}.example.test", port=backend.port)

    assert sidecar.terminate(timeout=10) == 0

    staging = traefik.dynamic_dir / ".traefik-gen"
    assert [p.name for p in staging.iterdir() if p.name.endswith(".staged")] == []
    for content in owned(traefik.dynamic_dir).values():
        assert content.startswith(b"# generated by traefik-gen")
    assert "stopping on SIGTERM" in sidecar.log_text()


@pytest.mark.parametrize("traefik_version", ["3.7.15"], ids=["traefik3.7"], indirect=True)
def test_two_sidecars_on_one_directory_exactly_one_writes(
    dokploy_db: DokployDb,
    traefik: TraefikProcess,
    backends: BackendFactory,
    sidecar_factory: SidecarFactory,
) -> None:
    backend = backends("single")
    compose = dokploy_db.add_compose("single")
    dokploy_db.add_domain(compose, "single.example.test", port=backend.port)
    writer = start_sidecar(sidecar_factory, dokploy_db.url, traefik.dynamic_dir, "--no-docker")
    waiter = sidecar_factory(
        "--source",
        dokploy_db.url,
        "--out",
        str(traefik.dynamic_dir),
        "--upstream",
        UPSTREAM,
        "--poll-interval",
        "0.2",
        "--no-docker",
    )

    assert waiter.wait_for(lambda: "waiting" in waiter.log_text())
    dokploy_db.add_domain(compose, "single-2.example.test", port=backend.port)
    assert traefik.wait_for(lambda: backend_of(traefik, "single-2.example.test") == "single")
    assert waiter.readyz()[0] == 503
    assert "wrote" not in waiter.log_text()

    writer.terminate()
    waiter.wait_ready()
    dokploy_db.add_domain(compose, "single-3.example.test", port=backend.port)
    assert traefik.wait_for(lambda: backend_of(traefik, "single-3.example.test") == "single")
    assert "took the lock" in waiter.log_text()


def test_docker_events_make_compose_backends_follow_the_real_containers(
    dokploy_db: DokployDb,
    fake_docker: FakeDockerEngine,
    sidecar_factory: SidecarFactory,
    tmp_path: Path,
) -> None:
    out = tmp_path / "dynamic"
    compose = dokploy_db.add_compose("shop")
    dokploy_db.add_domain(compose, "shop.example.test", port=3000)
    fake_docker.add_replica("shop", "web", 1)
    fake_docker.add_replica("shop", "web", 2)
    sidecar = sidecar_factory(
        "--source",
        dokploy_db.url,
        "--out",
        str(out),
        "--poll-interval",
        "0.2",
        env={"DOCKER_HOST": fake_docker.url},
    )
    sidecar.wait_ready()

    def servers() -> list[str]:
        found: list[str] = []
        for content in owned(out).values():
            services = (yaml.safe_load(content) or {}).get("http", {}).get("services", {})
            for service in services.values():
                found.extend(s["url"] for s in service.get("loadBalancer", {}).get("servers", []))
        return sorted(found)

    assert wait_for(lambda: servers() == ["http://shop-web-1:3000", "http://shop-web-2:3000"])

    fake_docker.add_replica("shop", "web", 3)
    fake_docker.emit("container", "start", "shop-web-3")
    assert wait_for(lambda: len(servers()) == 3)

    fake_docker.stop()
    dokploy_db.add_domain(compose, "shop-2.example.test", port=3000)
    assert wait_for(lambda: len(servers()) == 6)
    assert set(servers()) == {f"http://shop-web-{n}:3000" for n in (1, 2, 3)}


def test_endpoints_and_json_logs_report_syncs_without_secrets(
    dokploy_db: DokployDb, sidecar_factory: SidecarFactory, tmp_path: Path
) -> None:
    app = dokploy_db.add_application("secretive")
    dokploy_db.add_domain(app, "secretive.example.test", port=80)
    dokploy_db.add_security(app, "admin", "hunter2-plaintext")
    out = tmp_path / "dynamic"
    sidecar = start_sidecar(
        sidecar_factory,
        dokploy_db.url,
        out,
        "--no-docker",
        "--mode",
        "full",
        "--log-format",
        "json",
    )

    assert sidecar.healthz()[0] == 200
    assert sidecar.metric("traefik_gen_routers_rendered") == 1
    assert sidecar.metric("traefik_gen_files_written_total") == 2  # the app and the marker
    assert (sidecar.metric("traefik_gen_syncs_total", outcome="ok") or 0) >= 1
    assert (sidecar.metric("traefik_gen_last_success_timestamp_seconds") or 0) > 0
    sidecar.signal(signal.SIGHUP)
    assert sidecar.wait_for(lambda: "SIGHUP" in sidecar.log_text())
    lines = [json.loads(line) for line in sidecar.log_text().splitlines() if line.strip()]
    assert any(line["message"].startswith("wrote ") for line in lines)
    assert "hunter2" not in sidecar.log_text()
    assert "$2b$" not in sidecar.log_text()


@pytest.mark.parametrize("traefik_version", ["3.7.15"], ids=["traefik3.7"], indirect=True)
def test_with_verify_api_readiness_follows_what_traefik_really_loaded(
    dokploy_db: DokployDb,
    traefik: TraefikProcess,
    backends: BackendFactory,
    sidecar_factory: SidecarFactory,
) -> None:
    backend = backends("checked")
    compose = dokploy_db.add_compose("checked")
    dokploy_db.add_domain(compose, "checked.example.test", port=backend.port)
    sidecar = start_sidecar(
        sidecar_factory,
        dokploy_db.url,
        traefik.dynamic_dir,
        "--no-docker",
        "--verify-api",
        traefik.api_url,
    )
    assert sidecar.wait_for(lambda: sidecar.metric("traefik_gen_generation_loaded") == 1)

    (traefik.dynamic_dir / "frozen.yml").write_text("http:\n  routers:\n    x:\n      bogus: 1\n")
    dokploy_db.add_domain(compose, "checked-2.example.test", port=backend.port)

    assert sidecar.wait_for(lambda: sidecar.readyz()[0] == 503, timeout=20)
    assert "is not loaded" in sidecar.readyz()[1]
    assert sidecar.metric("traefik_gen_generation_loaded") == 0

    (traefik.dynamic_dir / "frozen.yml").unlink()
    assert sidecar.wait_for(lambda: sidecar.readyz()[0] == 200, timeout=30)
    assert traefik.wait_for(lambda: backend_of(traefik, "checked-2.example.test") == "checked")
