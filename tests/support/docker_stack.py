"""The ``--docker`` path: the same services from compose.test.yml, through pytest-docker.

Fixtures here have the shape of the local ones (``docker_traefik`` offers what
:class:`tests.support.traefik.TraefikEndpoints` offers: ``dynamic_dir``, the three ports,
``api_url``, ``get(...)``, ``router(...)``, ``log_errors(...)``), so an integration test
can run against either. The stack is started once per session; the shared dynamic
directory is emptied around every test. Any test using these fixtures is marked ``docker``
and deselected unless ``--docker`` is given (tests/support/options.py).
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_docker.plugin import Services

from tests.support.traefik import TraefikEndpoints, wait_for

__all__ = [
    "COMPOSE_FILE",
    "DYNAMIC_DIR",
    "DockerBackend",
    "DockerStack",
    "DockerTraefik",
    "PostgresEndpoint",
]

logger = logging.getLogger(__name__)

# Limitation: a local engine only (ports published on 127.0.0.1, a bind-mounted directory);
# a remote DOCKER_HOST would need both to travel, which the tests never aim at.
ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.test.yml"
DYNAMIC_DIR = ROOT / ".cache" / "docker-dynamic"

_READY_TIMEOUT = 120.0
_COMPOSE_TIMEOUT = 300.0
# Container ports of compose.test.yml; the host side is random, on 127.0.0.1.
_WEB, _WEBSECURE, _API, _POSTGRES = 80, 443, 8080, 5432


@dataclass
class DockerStack:
    """The running compose project: runs ``docker compose`` subcommands against it."""

    compose_command: str
    compose_file: Path
    project: str

    def compose(self, *args: str) -> str:
        command = [*shlex.split(self.compose_command), "-f", str(self.compose_file)]
        command += ["-p", self.project, *args]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_COMPOSE_TIMEOUT, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"docker compose {args[0]} failed: {done.stderr.strip()}")
        return done.stdout

    def host_port(self, service: str, container_port: int) -> int:
        """The 127.0.0.1 port that publishes ``container_port`` of ``service``."""
        lines = self.compose("port", service, str(container_port)).strip().splitlines()
        if not lines:
            raise RuntimeError(f"service {service!r} publishes no port {container_port}")
        return int(lines[-1].rsplit(":", 1)[1])

    def service_config(self, service: str) -> dict[str, Any]:
        document: dict[str, Any] = yaml.safe_load(self.compose_file.read_text())
        config: dict[str, Any] = document["services"][service]
        return config


class DockerTraefik(TraefikEndpoints):
    """The compose ``traefik`` service, seen through its published loopback ports."""

    def __init__(self, stack: DockerStack) -> None:
        self.stack = stack
        super().__init__(DYNAMIC_DIR, *self._ports())

    def __repr__(self) -> str:
        return f"DockerTraefik(project={self.stack.project!r}, web={self.web_port})"

    def _ports(self) -> tuple[int, int, int]:
        return (
            self.stack.host_port("traefik", _WEB),
            self.stack.host_port("traefik", _WEBSECURE),
            self.stack.host_port("traefik", _API),
        )

    @property
    def version(self) -> str:
        """The version the image actually runs, from the API."""
        return str(self.api_json("/api/version")["Version"])

    def log_text(self) -> str:
        return self.stack.compose("logs", "--no-color", "--no-log-prefix", "traefik")

    def wait_ready(self, timeout: float = _READY_TIMEOUT) -> None:
        if not wait_for(self._api_answers, timeout):
            raise RuntimeError(f"traefik of {self.stack.project} never answered on its api")

    def _api_answers(self) -> bool:
        try:
            return self.api("/api/overview").status == 200
        except OSError:
            return False

    def restart(self) -> DockerTraefik:
        """Restart the container; Docker may publish new host ports, so read them again."""
        self.stack.compose("restart", "traefik")
        self.web_port, self.websecure_port, self.api_port = self._ports()
        self.wait_ready()
        return self


# Limitation: whoami answers its own JSON (on /api: host, method, url, headers), not the
# local backends' body; a test switching paths compares only what both carry.
@dataclass(frozen=True)
class DockerBackend:
    """The compose ``whoami`` service. ``url`` is how Traefik reaches it (compose DNS)."""

    name: str = "whoami"
    host: str = "whoami"
    port: int = 80

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class PostgresEndpoint:
    """The compose ``postgres`` service on its published loopback port."""

    host: str
    port: int
    user: str
    dbname: str
    password: str = field(repr=False)

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}"


def clear_dynamic_dir() -> None:
    """Empty the shared directory in place (replacing it would break Traefik's watch)."""
    DYNAMIC_DIR.mkdir(parents=True, exist_ok=True)
    for entry in DYNAMIC_DIR.iterdir():
        if entry.is_file() or entry.is_symlink():
            entry.unlink()


def _require_docker_option(config: pytest.Config) -> None:
    if not config.getoption("docker"):
        pytest.fail("the docker fixtures run only with --docker", pytrace=False)


@pytest.fixture(scope="session")
def docker_compose_file(pytestconfig: pytest.Config) -> str:
    """compose.test.yml, once the shared dynamic directory exists (before any bind mount)."""
    _require_docker_option(pytestconfig)
    DYNAMIC_DIR.mkdir(parents=True, exist_ok=True)
    return str(COMPOSE_FILE)


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return f"traefik-gen-test-{os.getpid()}"


@pytest.fixture(scope="session")
def docker_stack(
    docker_services: Services,
    docker_compose_command: str,
    docker_compose_file: str,
    docker_compose_project_name: str,
) -> DockerStack:
    """The compose project, up and healthy (pytest-docker runs ``up --wait`` and ``down``)."""
    compose_file = Path(docker_compose_file)
    return DockerStack(docker_compose_command, compose_file, docker_compose_project_name)


@pytest.fixture
def docker_traefik(docker_stack: DockerStack) -> Iterator[DockerTraefik]:
    """The compose Traefik with an empty shared dynamic directory."""
    clear_dynamic_dir()
    traefik = DockerTraefik(docker_stack)
    traefik.wait_ready()
    try:
        yield traefik
    finally:
        clear_dynamic_dir()


@pytest.fixture
def docker_backend(docker_stack: DockerStack) -> DockerBackend:
    """The whoami backend (it answers text, and JSON on ``/api``, not the local JSON body)."""
    return DockerBackend()


@pytest.fixture
def docker_postgres(docker_stack: DockerStack) -> PostgresEndpoint:
    """Credentials and published port of the compose PostgreSQL."""
    environment = docker_stack.service_config("postgres")["environment"]
    return PostgresEndpoint(
        host="127.0.0.1",
        port=docker_stack.host_port("postgres", _POSTGRES),
        user=environment["POSTGRES_USER"],
        dbname=environment["POSTGRES_DB"],
        password=environment["POSTGRES_PASSWORD"],
    )
