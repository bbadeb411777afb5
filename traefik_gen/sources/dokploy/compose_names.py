"""The Docker DNS name Traefik reaches a Dokploy compose service by.

Dokploy routes compose domains with container labels, so it never needs an address; a
file-provider route does. The names follow Docker, not Dokploy: `docker stack deploy`
names a Swarm service `<stack>_<service>`, and `docker compose -p <project>` names the
first container `<project>-<service>-1` unless the service sets `container_name`.
"""

from __future__ import annotations

import logging

import yaml

from traefik_gen.errors import ConfigError

__all__ = ["COMPOSE_TYPES", "compose_backend_host", "container_name"]

logger = logging.getLogger(__name__)

COMPOSE_TYPES = frozenset({"docker-compose", "stack"})


def compose_backend_host(
    app_name: str, compose_type: str, service_name: str, compose_file: str | None
) -> str:
    """Return the host name of `service_name` in the compose `app_name`.

    Raises:
        ConfigError: the compose type is unknown, or the service's container_name uses
            variable interpolation, which only the deploy's environment can resolve.
    """
    if compose_type == "stack":
        # Swarm ignores container_name; the service name is the stack's prefix plus the key.
        return f"{app_name}_{service_name}"
    if compose_type == "docker-compose":
        # Limitation: a scaled service is reached through its first container only.
        return container_name(compose_file, service_name) or f"{app_name}-{service_name}-1"
    raise ConfigError(f"unknown compose type {compose_type!r}")


def container_name(compose_file: str | None, service_name: str) -> str | None:
    """The `container_name` the stored compose file sets for a service, if any.

    A file that does not parse, or a service the file does not list, gives None: the
    deploy may use a different file (a git source), and the default name is the best guess.

    Raises:
        ConfigError: the container_name uses `$` interpolation.
    """
    # Limitation: only the stored composeFile is read; a git source's file in the repository,
    # and services renamed by `randomize`, are not seen (they fall back to the default name).
    service = _services(compose_file).get(service_name)
    name = service.get("container_name") if isinstance(service, dict) else None
    if not isinstance(name, str) or not name:
        return None
    if "$" in name:
        raise ConfigError(
            f"container_name of compose service {service_name!r} uses variable interpolation"
        )
    return name


def _services(compose_file: str | None) -> dict[object, object]:
    if not compose_file:
        return {}
    try:
        document = yaml.safe_load(compose_file)
    except yaml.YAMLError:
        logger.debug("stored compose file does not parse; using default container names")
        return {}
    services = document.get("services") if isinstance(document, dict) else None
    return services if isinstance(services, dict) else {}
