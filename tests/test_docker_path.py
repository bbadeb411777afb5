"""The Docker-based path (`pytest --docker`): the sidecar image beside Traefik and PostgreSQL.

The same behaviour the local tests prove, against compose.test.yml through pytest-docker:
a domain row in the database is served by the containerised Traefik from the sidecar's
files. Deselected unless --docker is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.docker_stack import DockerBackend, DockerStack, DockerTraefik, PostgresEndpoint
from tests.support.postgres import _CURRENT, DokployDb
from tests.support.traefik import http_request, wait_for

SCHEMA = Path(__file__).parent / "sql" / "dokploy_current.sql"

pytestmark = pytest.mark.docker


@pytest.fixture
def compose_db(docker_postgres: PostgresEndpoint) -> Any:
    with psycopg.connect(docker_postgres.dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('public.domain') IS NOT NULL").fetchone()
        if not (exists and exists[0]):
            conn.execute(SCHEMA.read_bytes())
        yield DokployDb(docker_postgres.dsn, _CURRENT, conn)


def test_the_sidecar_container_serves_a_database_domain_through_traefik(
    docker_stack: DockerStack,
    docker_traefik: DockerTraefik,
    docker_backend: DockerBackend,
    compose_db: DokployDb,
) -> None:
    port = docker_stack.host_port("sidecar", 9180)
    compose = compose_db.add_compose("docker-path")
    compose_db.add_domain(compose, "sidecar.docker.test", port=docker_backend.port)

    def ready() -> bool:
        try:
            return http_request(port, "GET", "127.0.0.1", "/readyz").status == 200
        except OSError:
            return False

    assert wait_for(ready, timeout=60)
    answer = wait_for(
        lambda: (r := docker_traefik.get("sidecar.docker.test", "/api")).status == 200 and r,
        timeout=30,
    )
    assert answer, "the containerised Traefik never served the sidecar's route"
    assert answer.json()["host"] == "sidecar.docker.test"
