"""Command-line options of the test suite: ``--docker`` and ``--traefik-versions``.

Tests that need a Docker engine (marked ``docker``, or using the pytest-docker stack) are
deselected, not skipped, unless ``--docker`` is given: a skip would read as "could not run"
in every CI report, while these tests are simply not part of a run without Docker. Asking
for them without a Docker engine is a usage error, never a silent skip.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess

import pytest

__all__ = [
    "DEFAULT_TRAEFIK_VERSIONS",
    "docker_enabled",
    "traefik_versions",
    "uses_docker",
]

logger = logging.getLogger(__name__)

# 3.6 is the line Dokploy installs; 3.7 is the newest release.
DEFAULT_TRAEFIK_VERSIONS = ("3.6.15", "3.7.15")

_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_ENGINE_TIMEOUT = 20.0
_DOCKER_FIXTURE = "docker_services"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("traefik-gen", "traefik-gen real services")
    group.addoption(
        "--docker",
        action="store_true",
        default=False,
        help="also run the tests marked 'docker' against compose.test.yml (needs an engine)",
    )
    group.addoption(
        "--traefik-versions",
        default=",".join(DEFAULT_TRAEFIK_VERSIONS),
        help="comma-separated Traefik versions the 'traefik' fixture runs (default: %(default)s)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "docker: runs against compose.test.yml through pytest-docker (--docker)"
    )
    traefik_versions(config)
    if docker_enabled(config):
        _require_docker_engine()
    # Registered always so that `pytest --fixtures` lists the Docker fixtures too; they
    # refuse to start anything without --docker.
    config.pluginmanager.import_plugin("tests.support.docker_stack")


def docker_enabled(config: pytest.Config) -> bool:
    """Whether this run was asked to use the Docker engine."""
    return bool(config.getoption("docker"))


def traefik_versions(config: pytest.Config) -> tuple[str, ...]:
    """The Traefik versions to test against, from ``--traefik-versions``."""
    raw = str(config.getoption("traefik_versions"))
    versions = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not versions:
        raise pytest.UsageError("--traefik-versions names no version")
    for version in versions:
        if not _VERSION.match(version):
            raise pytest.UsageError(f"--traefik-versions: {version!r} is not a version like 3.6.15")
    return versions


def uses_docker(item: pytest.Item) -> bool:
    """Whether a test needs the Docker engine: marked ``docker`` or using the compose stack."""
    if item.get_closest_marker("docker") is not None:
        return True
    return _DOCKER_FIXTURE in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if uses_docker(item) and item.get_closest_marker("docker") is None:
            item.add_marker(pytest.mark.docker)
    if docker_enabled(config):
        return
    deselected = [item for item in items if uses_docker(item)]
    if deselected:
        items[:] = [item for item in items if not uses_docker(item)]
        config.hook.pytest_deselected(items=deselected)


def _require_docker_engine() -> None:
    if shutil.which("docker") is None:
        raise pytest.UsageError("--docker: the docker command is not installed")
    _run_docker_check(["docker", "version", "--format", "{{.Server.Version}}"], "engine")
    _run_docker_check(["docker", "compose", "version", "--short"], "compose plugin")


def _run_docker_check(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_ENGINE_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise pytest.UsageError(f"--docker: no docker {what} answers (timed out)") from exc
    if done.returncode != 0:
        reason = (done.stderr.strip() or done.stdout.strip()).splitlines()[:1]
        raise pytest.UsageError(f"--docker: no docker {what} answers ({''.join(reason)})")
    logger.debug("docker %s answers: %s", what, done.stdout.strip())
