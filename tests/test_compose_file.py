"""compose.test.yml and every compose file under templates/ follow the Compose specification."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from traefik_gen.deploy import DeployValues, render

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = ROOT / "tests" / "data" / "compose-spec.json"
COMPOSE_TEST = ROOT / "compose.test.yml"


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    # The schema says "draft-07/schema" without the trailing "#", which jsonschema does not
    # recognise (it would guess the newest draft, with a warning): name the draft outright.
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def violations(validator: Draft7Validator, document: Any) -> list[str]:
    """Every schema violation, one line each, located by its path in the document."""
    return sorted(
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    )


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_stored_schema_is_the_compose_specification(validator: Draft7Validator) -> None:
    schema = validator.schema
    assert isinstance(schema, dict)

    assert schema["$id"] == "compose_spec.json"
    assert schema["title"] == "Compose Specification"
    assert {"service", "network", "volume", "healthcheck"} <= set(schema["definitions"])


def test_compose_test_file_follows_the_specification(validator: Draft7Validator) -> None:
    assert violations(validator, load(COMPOSE_TEST)) == []


def test_the_rendered_swarm_stack_follows_the_specification(validator: Draft7Validator) -> None:
    stack = render(DeployValues())["traefik-gen.stack.yml"]

    assert violations(validator, yaml.safe_load(stack)) == []


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"services": [{"image": "nginx"}]}, "services"),
        ({"services": {"web": {"image": 5}}}, "services/web/image"),
        ({"services": {"web": {"image": "nginx", "imagee": "typo"}}}, "services/web"),
        ({"services": {"web": {"ports": [{"target": "80", "bogus": 1}]}}}, "services/web/ports/0"),
        ({"services": {}, "servics": {}}, "<root>"),
        ({"services": {"bad name!": {"image": "nginx"}}}, "services"),
    ],
    ids=["list-of-services", "image-not-string", "unknown-key", "bad-port", "top-typo", "name"],
)
def test_invalid_compose_document_is_rejected(
    validator: Draft7Validator, document: dict[str, Any], where: str
) -> None:
    found = violations(validator, document)

    assert found
    assert any(line.startswith(f"{where}:") for line in found), found


def test_compose_test_file_runs_the_harness_services() -> None:
    services = load(COMPOSE_TEST)["services"]

    assert set(services) == {"postgres", "traefik", "whoami", "sidecar"}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["traefik"]["image"] == "traefik:v3.6"
    assert services["whoami"]["image"] == "traefik/whoami"
    assert services["sidecar"]["build"] == "."


def test_the_compose_sidecar_shares_traefiks_directory_and_reads_the_compose_database() -> None:
    services = load(COMPOSE_TEST)["services"]
    sidecar, traefik = services["sidecar"], services["traefik"]

    assert set(sidecar["volumes"]) & set(traefik["volumes"]) == {
        "./.cache/docker-dynamic:/etc/dokploy/traefik/dynamic"
    }
    assert sidecar["environment"]["DATABASE_URL"].endswith("@postgres:5432/dokploy")
    assert sidecar["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_compose_traefik_mounts_static_config_and_shared_dynamic_dir() -> None:
    volumes = load(COMPOSE_TEST)["services"]["traefik"]["volumes"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in volumes}

    assert mounts["/etc/traefik/traefik.yml"] == "./tests/data/traefik.yml"
    assert (ROOT / mounts["/etc/traefik/traefik.yml"]).is_file()
    assert mounts["/etc/dokploy/traefik/dynamic"] == "./.cache/docker-dynamic"


def test_compose_publishes_ports_on_loopback_only() -> None:
    services = load(COMPOSE_TEST)["services"]
    published = [port for service in services.values() for port in service.get("ports", [])]

    assert published
    assert all(str(port).startswith("127.0.0.1:") for port in published), published


def test_services_with_tools_have_healthchecks_for_compose_wait() -> None:
    services = load(COMPOSE_TEST)["services"]

    assert "healthcheck" in services["postgres"]
    assert "healthcheck" in services["traefik"]
