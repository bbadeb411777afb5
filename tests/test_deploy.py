"""Deployment files: every template renders, parses and says what it should; bad values are
refused; the Traefik fragment runs in a real Traefik; the SELECT-only role of
docs/select-only-role.sql reads what traefik-gen needs and not one column more."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from jsonschema import Draft7Validator
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.support.backends import BackendFactory
from tests.support.postgres import DokployDb
from tests.support.traefik import TraefikProcess, require_binary
from traefik_gen.deploy import (
    OUTPUT_NAMES,
    TEMPLATE_DIR,
    DeployValues,
    deploy_values,
    render,
    render_templates,
)
from traefik_gen.errors import ConfigError, SettingsError, WriteError
from traefik_gen.settings import Mode, load_settings
from traefik_gen.sources.dokploy import open_snapshot, read_desired_state
from traefik_gen.sources.dokploy.queries import build_statements
from traefik_gen.sources.dokploy.schema import probe_schema

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"
ROLE_SQL = ROOT / "docs" / "select-only-role.sql"
TRAEFIK_37 = "3.7.15"
STACK = "traefik-gen.stack.yml"
FRAGMENT = "traefik-file-provider.yml"
UNIT = "traefik-gen.service"
ENV = "traefik-gen.env"

CUSTOM: dict[str, Any] = {
    "image": "registry.example.com:5000/ops/traefik-gen@sha256:" + "ab" * 32,
    "dynamic_dir": "/srv/traefik/dynamic.d",
    "db_host": "pg-1.internal",
    "db_port": 6543,
    "db_name": "dokploy_prod",
    "db_user": "traefik_gen",
    "password_secret": "traefik_gen_db_password",
    "network": "edge_net",
    "listen": "127.0.0.1:9300",
    "mode": Mode.FULL,
    "server": "Xy3_k-9Qz",
    "docker_proxy": False,
    "docker_proxy_image": "tecnativa/docker-socket-proxy:0.3",
    "placement": "node.hostname==dokploy-1",
    "uid": 20002,
    "gid": 20003,
    "venv": "/srv/tg/venv",
    "user": "tg",
    "host_listen": "10.0.0.5:9400",
    "tunnel_port": 25432,
}

# Keys `docker stack deploy` ignores with a warning (docker/cli's loader), in any release:
# in a stack file each would be a silent no-op.
STACK_IGNORED_KEYS = frozenset(
    {
        "build",
        "cap_add",
        "cap_drop",
        "cgroup_parent",
        "container_name",
        "devices",
        "dns",
        "dns_search",
        "domainname",
        "expose",
        "external_links",
        "ipc",
        "links",
        "mac_address",
        "network_mode",
        "pid",
        "privileged",
        "read_only",
        "restart",
        "security_opt",
        "shm_size",
        "stop_signal",
        "sysctls",
        "tmpfs",
        "ulimits",
        "userns_mode",
        "depends_on",
    }
)
GO_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+")
# watch calls /_ping, /version, /events and /containers/json, nothing else.
PROXY_SECTIONS = {"EVENTS", "PING", "VERSION", "CONTAINERS"}


@pytest.fixture(params=["defaults", "custom"])
def values(request: pytest.FixtureRequest) -> DeployValues:
    return DeployValues() if request.param == "defaults" else DeployValues(**CUSTOM)


def stack_of(values: DeployValues) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(render(values)[STACK])
    return document


def sidecar_of(values: DeployValues) -> dict[str, Any]:
    service: dict[str, Any] = stack_of(values)["services"]["traefik-gen"]
    return service


class _UnitParser(configparser.ConfigParser):
    """systemd's syntax: keys keep their case, and a key may repeat (strict=False)."""

    def __init__(self) -> None:
        super().__init__(strict=False, interpolation=None, delimiters=("=",))

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def unit_of(text: str) -> configparser.ConfigParser:
    parser = _UnitParser()
    parser.read_string(text)
    return parser


def env_file_of(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


# --- rendering --------------------------------------------------------------------------------


def test_every_template_renders_to_a_parsed_file(values: DeployValues) -> None:
    rendered = render(values)

    assert list(rendered) == list(OUTPUT_NAMES)
    for name in (STACK, FRAGMENT):
        assert isinstance(yaml.safe_load(rendered[name]), dict), name
    assert {"Unit", "Service", "Install"} <= set(unit_of(rendered[UNIT]).sections())
    assert env_file_of(rendered[ENV])
    for name, text in rendered.items():
        assert "$" not in text, name
        assert "#%" not in text, name


def test_custom_values_land_in_every_file() -> None:
    custom = DeployValues(**CUSTOM)
    rendered = render(custom)
    sidecar = yaml.safe_load(rendered[STACK])["services"]["traefik-gen"]
    service = unit_of(rendered[UNIT])["Service"]
    env = env_file_of(rendered[ENV])
    fragment = yaml.safe_load(rendered[FRAGMENT])

    assert sidecar["image"] == CUSTOM["image"]
    assert sidecar["user"] == "20002:20003"
    assert sidecar["environment"] == {
        "POSTGRES_HOST": "pg-1.internal",
        "POSTGRES_PORT": "6543",
        "POSTGRES_DB": "dokploy_prod",
        "POSTGRES_USER": "traefik_gen",
        "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres_password",
        "TRAEFIK_GEN_OUT": "/srv/traefik/dynamic.d",
        "TRAEFIK_GEN_MODE": "full",
        "TRAEFIK_GEN_SERVER": "Xy3_k-9Qz",
        "TRAEFIK_GEN_LISTEN": "127.0.0.1:9300",
        "TRAEFIK_GEN_DOCKER": "false",
    }
    assert sidecar["deploy"]["placement"]["constraints"] == ["node.hostname==dokploy-1"]
    assert service["ExecStart"] == "/srv/tg/venv/bin/traefik-gen watch"
    assert service["ReadWritePaths"] == "/srv/traefik/dynamic.d"
    assert service["User"] == "tg"
    assert env["POSTGRES_PORT"] == "25432"
    assert env["TRAEFIK_GEN_LISTEN"] == "10.0.0.5:9400"
    assert fragment["providers"]["file"]["directory"] == "/srv/traefik/dynamic.d"


def _clear_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("TRAEFIK_GEN_", "POSTGRES_", "DOCKER_")) or name in (
            "DATABASE_URL",
            "PGPASSWORD",
        ):
            monkeypatch.delenv(name)


def test_stack_environment_is_read_by_the_settings(
    values: DeployValues, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_settings_env(monkeypatch)
    for name, value in sidecar_of(values)["environment"].items():
        monkeypatch.setenv(name, value)

    settings = load_settings()

    assert settings.out == Path(values.dynamic_dir)
    assert settings.mode is values.mode
    assert settings.server == values.server
    assert (settings.postgres_host, settings.postgres_port) == (values.db_host, values.db_port)
    assert (settings.postgres_db, settings.postgres_user) == (values.db_name, values.db_user)
    assert settings.db_password_file == Path("/run/secrets/postgres_password")
    assert settings.listen == values.listen
    assert settings.docker is values.docker_proxy
    if values.docker_proxy:
        assert settings.docker_host == "tcp://docker-api:2375"


def test_host_env_file_is_read_by_the_settings(
    values: DeployValues, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_settings_env(monkeypatch)
    for name, value in env_file_of(render(values)[ENV]).items():
        monkeypatch.setenv(name, value)

    settings = load_settings()

    assert settings.out == Path(values.dynamic_dir)
    assert (settings.postgres_host, settings.postgres_port) == ("127.0.0.1", values.tunnel_port)
    assert settings.postgres_user == values.db_user
    assert settings.listen == values.host_listen
    assert settings.docker is False


# --- the stack file ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_validator() -> Draft7Validator:
    if not COMPOSE_SCHEMA.is_file():
        pytest.fail(f"{COMPOSE_SCHEMA} is missing: the compose schema is part of the suite")
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


@pytest.mark.parametrize("docker_proxy", [True, False], ids=["proxy", "no-proxy"])
def test_stack_follows_the_compose_specification(
    compose_validator: Draft7Validator, values: DeployValues, docker_proxy: bool
) -> None:
    document = stack_of(values.model_copy(update={"docker_proxy": docker_proxy}))

    problems = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in compose_validator.iter_errors(document)
    ]

    assert problems == []


def test_compose_schema_check_catches_a_broken_stack(compose_validator: Draft7Validator) -> None:
    document = stack_of(DeployValues())
    document["services"]["traefik-gen"]["deploy"]["placement"]["constrains"] = []

    assert list(compose_validator.iter_errors(document))


@pytest.mark.parametrize("docker_proxy", [True, False], ids=["proxy", "no-proxy"])
def test_stack_is_a_docker_stack_deploy_file(values: DeployValues, docker_proxy: bool) -> None:
    document = stack_of(values.model_copy(update={"docker_proxy": docker_proxy}))

    assert "version" not in document
    assert set(document) <= {"services", "networks", "secrets", "volumes", "configs"}
    for name, service in document["services"].items():
        assert not STACK_IGNORED_KEYS & set(service), name
        assert service["image"], name
        assert service["deploy"]["replicas"] == 1
        assert all(isinstance(v, str) for v in service.get("environment", {}).values()), name
        durations = [service.get("stop_grace_period"), service["deploy"]["restart_policy"]["delay"]]
        durations += [service.get("healthcheck", {}).get(key) for key in ("interval", "timeout")]
        assert all(GO_DURATION.fullmatch(d) for d in durations if d is not None), name
    for mount in document["services"]["traefik-gen"]["secrets"]:
        assert isinstance(mount["mode"], int) and mount["mode"] == 0o400


def test_password_comes_from_the_external_swarm_secret(values: DeployValues) -> None:
    document = stack_of(values)
    (mount,) = document["services"]["traefik-gen"]["secrets"]
    secret = document["secrets"][mount["source"]]
    environment = document["services"]["traefik-gen"]["environment"]

    assert secret == {"external": True, "name": values.password_secret}
    assert environment["POSTGRES_PASSWORD_FILE"] == f"/run/secrets/{mount['target']}"
    assert (mount["uid"], mount["gid"]) == (str(values.uid), str(values.gid))
    assert document["services"]["traefik-gen"]["user"] == f"{values.uid}:{values.gid}"
    assert "POSTGRES_PASSWORD" not in environment
    assert "DATABASE_URL" not in environment


def test_sidecar_is_on_dokploy_network_declared_external(values: DeployValues) -> None:
    document = stack_of(values)
    networks = document["networks"]

    assert "dokploy" in document["services"]["traefik-gen"]["networks"]
    assert networks["dokploy"] == {"external": True, "name": values.network}


def test_dynamic_directory_is_bind_mounted_as_a_directory(tmp_path: Path) -> None:
    directory = tmp_path / "dynamic"
    directory.mkdir()

    sidecar = sidecar_of(DeployValues(dynamic_dir=str(directory)))

    (mount,) = sidecar["volumes"]
    assert mount["type"] == "bind"
    assert mount["source"] == mount["target"] == str(directory)
    assert Path(mount["source"]).is_dir()
    assert sidecar["environment"]["TRAEFIK_GEN_OUT"] == mount["target"]


@pytest.mark.parametrize("docker_proxy", [True, False], ids=["proxy", "no-proxy"])
def test_sidecar_never_gets_the_docker_socket(values: DeployValues, docker_proxy: bool) -> None:
    sidecar = sidecar_of(values.model_copy(update={"docker_proxy": docker_proxy}))

    mounts = [str(part) for mount in sidecar["volumes"] for part in mount.values()]

    assert not [part for part in mounts if "docker.sock" in part]
    assert not str(sidecar["environment"].get("DOCKER_HOST", "")).startswith("unix:")


def test_docker_api_reaches_the_sidecar_through_a_get_only_proxy() -> None:
    document = stack_of(DeployValues())
    sidecar = document["services"]["traefik-gen"]
    proxy = document["services"]["docker-api"]
    environment = proxy["environment"]
    granted = {name for name, value in environment.items() if value == "1"}

    assert environment["POST"] == "0"
    assert granted == PROXY_SECTIONS
    assert all(value == "0" for name, value in environment.items() if name.startswith("ALLOW_"))
    assert sidecar["environment"]["DOCKER_HOST"] == "tcp://docker-api:2375"
    assert [m["source"] for m in proxy["volumes"]] == ["/var/run/docker.sock"]
    assert proxy["deploy"]["placement"] == sidecar["deploy"]["placement"]


def test_docker_proxy_network_is_private_to_the_sidecar() -> None:
    document = stack_of(DeployValues())
    members = {
        name
        for name, service in document["services"].items()
        if "docker_api" in service["networks"]
    }

    assert document["services"]["docker-api"]["networks"] == ["docker_api"]
    assert members == {"traefik-gen", "docker-api"}
    assert document["networks"]["docker_api"] == {"driver": "overlay", "internal": True}
    assert not [s for s in document["services"].values() if "ports" in s]


def test_without_docker_proxy_the_sidecar_only_polls() -> None:
    document = stack_of(DeployValues(docker_proxy=False))
    sidecar = document["services"]["traefik-gen"]

    assert set(document["services"]) == {"traefik-gen"}
    assert set(document["networks"]) == {"dokploy"}
    assert sidecar["networks"] == ["dokploy"]
    assert sidecar["environment"]["TRAEFIK_GEN_DOCKER"] == "false"
    assert "DOCKER_HOST" not in sidecar["environment"]


def run_probe(code: str, listen: str) -> int:
    """Exit status of the healthcheck's Python code, run as the container would run it."""
    environment = {**os.environ, "TRAEFIK_GEN_LISTEN": listen}
    done = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, timeout=20
    )
    return done.returncode


def test_stack_healthcheck_passes_only_when_healthz_answers_200(
    backends: BackendFactory,
) -> None:
    test = sidecar_of(DeployValues())["healthcheck"]["test"]
    healthy, failing = backends("ok"), backends("broken", status=503)
    closed = backends("gone")
    closed.stop()

    assert test[:3] == ["CMD", "python", "-c"]
    assert run_probe(test[3], f"0.0.0.0:{healthy.port}") == 0
    assert run_probe(test[3], f"0.0.0.0:{failing.port}") != 0
    assert run_probe(test[3], f"0.0.0.0:{closed.port}") != 0
    assert healthy.requests[-1]["path"] == "/healthz"


# --- the Traefik fragment ---------------------------------------------------------------------


def test_fragment_enables_a_watched_file_provider_on_the_directory(values: DeployValues) -> None:
    fragment = yaml.safe_load(render(values)[FRAGMENT])

    assert fragment == {"providers": {"file": {"directory": values.dynamic_dir, "watch": True}}}


def test_fragment_flag_comment_says_the_same_as_its_yaml(values: DeployValues) -> None:
    text = render(values)[FRAGMENT]
    flags = re.findall(r"^#\s+--(\S+)=(\S+)$", text, flags=re.MULTILINE)

    config: dict[str, Any] = {}
    for dotted, raw in flags:
        *parents, leaf = dotted.split(".")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = yaml.safe_load(raw)

    assert flags
    assert config == yaml.safe_load(text)


class _FragmentTraefik(TraefikProcess):
    """A Traefik whose providers come from the rendered fragment, the rest from the harness."""

    def __init__(self, workdir: Path, fragment: dict[str, Any]) -> None:
        directory = Path(fragment["providers"]["file"]["directory"])
        super().__init__(TRAEFIK_37, workdir, dynamic_dir=directory)
        self.fragment = fragment

    @property
    def static_config(self) -> dict[str, Any]:
        config = super().static_config
        config["providers"] = self.fragment["providers"]
        return config


@pytest.mark.traefik
def test_traefik_37_runs_the_fragment_and_loads_a_file_from_the_directory(
    tmp_path: Path, backends: BackendFactory
) -> None:
    require_binary(TRAEFIK_37)
    directory = tmp_path / "dynamic"
    fragment = yaml.safe_load(render(DeployValues(dynamic_dir=str(directory)))[FRAGMENT])
    backend = backends("deployed")
    traefik = _FragmentTraefik(tmp_path / "traefik", fragment)
    route = {
        "http": {
            "routers": {"deploy-check": {"rule": 'Host("deploy.test")', "service": "deployed"}},
            "services": {"deployed": {"loadBalancer": {"servers": [{"url": backend.url}]}}},
        }
    }
    try:
        traefik.start()
        staged = tmp_path / "deploy-check.yml.partial"
        staged.write_text(yaml.safe_dump(route), encoding="utf-8")
        os.replace(staged, directory / "deploy-check.yml")
        traefik.wait_router("deploy-check")

        answer = traefik.get("deploy.test", "/")
    finally:
        traefik.stop()

    assert traefik.static_config["providers"] == fragment["providers"]
    assert answer.status == 200
    assert answer.json()["backend"] == "deployed"


# --- the systemd unit -------------------------------------------------------------------------


def test_unit_runs_watch_from_the_venv_and_writes_only_the_directory(
    values: DeployValues,
) -> None:
    unit = unit_of(render(values)[UNIT])
    service = unit["Service"]

    assert service["Type"] == "simple"
    assert service["ExecStart"] == f"{values.venv}/bin/traefik-gen watch"
    assert service["EnvironmentFile"] == "/etc/traefik-gen/env"
    assert service["Restart"] == "on-failure"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == values.dynamic_dir
    assert service["NoNewPrivileges"] == "yes"
    assert service["User"] == values.user
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.fixture
def installed_unit(tmp_path: Path) -> Path:
    """The rendered unit, with a venv and a dynamic directory that exist on this machine."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    executable = venv / "bin" / "traefik-gen"
    executable.write_text("#!/bin/sh\n", encoding="utf-8")
    executable.chmod(0o755)
    (tmp_path / "dynamic").mkdir()
    values = DeployValues(venv=str(venv), dynamic_dir=str(tmp_path / "dynamic"))
    path = tmp_path / UNIT
    path.write_text(render(values)[UNIT], encoding="utf-8")
    return path


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed; the unit was checked with configparser")
    return found


def test_unit_passes_systemd_analyze_verify(installed_unit: Path) -> None:
    done = subprocess.run(
        [_systemd_analyze(), "verify", str(installed_unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert str(installed_unit) not in done.stderr, done.stderr


def test_unit_hardening_rates_ok_in_systemd_analyze_security(installed_unit: Path) -> None:
    done = subprocess.run(
        [_systemd_analyze(), "security", "--offline=yes", "--no-pager", str(installed_unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout + done.stderr)

    assert found is not None, done.stdout + done.stderr
    assert float(found.group(1)) <= 2.0, done.stdout


# --- bad values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("image", "traefik-gen:0.1.0\nprivileged: true"),
        ("image", 'traefik-gen:0.1.0" ; x'),
        ("image", "traefik-gen"),
        ("image", "traefik-gen:latest"),
        ("image", "Traefik-Gen:1"),
        ("docker_proxy_image", "tecnativa/docker-socket-proxy"),
        ("dynamic_dir", "etc/dokploy/traefik/dynamic"),
        ("dynamic_dir", "/etc/dokploy/../../root"),
        ("dynamic_dir", "/etc/dokploy/traefik/dyn amic"),
        ("dynamic_dir", '/etc/"dynamic'),
        ("dynamic_dir", "/etc/%h"),
        ("dynamic_dir", "/"),
        ("venv", "/opt/venv\nExecStartPre=/bin/sh"),
        ("db_host", "dokploy-postgres:5432"),
        ("db_host", "-bad.example"),
        ("db_port", 0),
        ("db_port", 70000),
        ("db_name", "dok'ploy"),
        ("db_user", "traefik gen"),
        ("password_secret", "dokploy postgres"),
        ("password_secret", "$(id)"),
        ("network", "dokploy-network\n  other"),
        ("listen", "10.0.0.1:9180"),
        ("listen", "0.0.0.0"),
        ("listen", "0.0.0.0:0"),
        ("host_listen", "999.0.0.1:9180"),
        ("host_listen", "localhost:9180"),
        ("server", "remote%i"),
        ("user", "Root"),
        ("placement", "node.role == manager\n  - node.role == worker"),
        ("placement", "node.role == ${ROLE}"),
        ("placement", "role == manager"),
        ("uid", 0),
        ("mode", "everything"),
        ("tunnel_port", -1),
        ("extra", "value"),
    ],
)
def test_bad_value_is_refused_naming_its_field(field: str, value: object) -> None:
    with pytest.raises(SettingsError, match=f"deploy value '{field}'"):
        deploy_values(**{field: value})


def test_deploy_values_keeps_defaults_for_none() -> None:
    assert deploy_values(image=None, db_port=None) == DeployValues()


def test_values_that_skipped_validation_are_refused_at_render() -> None:
    forged = DeployValues.model_construct(image='traefik-gen:1"\ncommand: ["sh"]')

    with pytest.raises(SettingsError, match="deploy value 'image'"):
        render(forged)


# --- writing ----------------------------------------------------------------------------------


def test_render_templates_writes_every_file_readable_by_all(tmp_path: Path) -> None:
    values = DeployValues(**CUSTOM)

    paths = render_templates(values, tmp_path / "out")

    assert [path.name for path in paths] == list(OUTPUT_NAMES)
    rendered = render(values)
    for path in paths:
        assert path.read_text(encoding="utf-8") == rendered[path.name]
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(OUTPUT_NAMES)


def test_render_templates_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / UNIT).write_text("# the operator's own\n", encoding="utf-8")

    with pytest.raises(WriteError, match=UNIT):
        render_templates(DeployValues(), tmp_path)

    assert [p.name for p in tmp_path.iterdir()] == [UNIT]
    assert (tmp_path / UNIT).read_text(encoding="utf-8") == "# the operator's own\n"


def test_render_templates_overwrites_when_asked(tmp_path: Path) -> None:
    render_templates(DeployValues(), tmp_path)

    render_templates(DeployValues(**CUSTOM), tmp_path, overwrite=True)

    assert (tmp_path / ENV).read_text(encoding="utf-8") == render(DeployValues(**CUSTOM))[ENV]


@pytest.fixture
def template_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATE_DIR, copy)
    return copy


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda text: text + "x: $nonexistent\n", "unknown value"),
        (lambda text: text + "#% if docker_proxy\n", "without '#% end'"),
        (lambda text: text + "#% if no_such_flag\n#% end\n", "unknown '#% if'"),
        (lambda text: text + "#% end\n", "misplaced"),
        (lambda text: text + "  : [unbalanced\n", "not valid yaml"),
    ],
    ids=["unknown-placeholder", "unclosed-block", "unknown-flag", "stray-end", "bad-yaml"],
)
def test_broken_template_is_reported_and_nothing_written(
    template_copy: Path, tmp_path: Path, edit: Any, message: str
) -> None:
    path = template_copy / OUTPUT_NAMES[STACK]
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")

    with pytest.raises(ConfigError, match=re.escape(message)):
        render_templates(DeployValues(), tmp_path / "out", templates=template_copy)

    assert not (tmp_path / "out").exists()


# --- the SELECT-only role ---------------------------------------------------------------------


def _psql() -> str:
    found = shutil.which("psql")
    if found is None:
        reason = "psql is not installed; docs/select-only-role.sql is a psql script"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


def apply_role_sql(db: DokployDb, role: str) -> None:
    done = subprocess.run(
        [_psql(), "-X", "-q", "-v", f"role={role}", "-f", str(ROLE_SQL), "-d", db.dsn],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "ERROR" not in done.stderr, done.stderr


def _drop_role(db: DokployDb, role: str) -> None:
    exists = db.execute("SELECT 1 FROM pg_roles WHERE rolname = %(role)s", {"role": role})
    if not exists:
        return
    # Its privileges in this database first: a role that holds any cannot be dropped.
    db.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)).as_string(None))
    with psycopg.connect(make_conninfo(db.dsn, dbname="postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@contextmanager
def reader_role(db: DokployDb) -> Iterator[str]:
    """A fresh role (traefik_gen_test_*) made by the SQL script in `db`, dropped afterwards."""
    role = f"traefik_gen_test_{uuid.uuid4().hex[:12]}"
    try:
        apply_role_sql(db, role)
        yield role
    finally:
        _drop_role(db, role)


@pytest.fixture
def role_db(dokploy_db: DokployDb) -> Iterator[tuple[DokployDb, str]]:
    """The current Dokploy schema and a role the SQL script created in it."""
    with reader_role(dokploy_db) as role:
        yield dokploy_db, role


def as_role(db: DokployDb, role: str) -> str:
    return make_conninfo(db.dsn, user=role)


def populate(db: DokployDb, server: str | None = None) -> None:
    """One owner of every kind, with redirects, basic auth and labels."""
    app = db.add_application(serverId=server) if server else db.add_application()
    db.add_domain(app, host="app.example.com", https=True, certificateType="letsencrypt")
    db.add_domain(app, host="app.example.com", path="/api", stripPath=True)
    db.add_redirect(app)
    db.add_security(app, "ops", "plain-secret")
    db.set_labels(app, {"traefik.enable": "true", "traefik.http.routers.x.rule": "Host(`x.test`)"})
    preview = db.add_preview(app)
    db.add_domain(preview, host="pr-1.example.com")
    compose = db.add_compose(serverId=server) if server else db.add_compose()
    db.add_domain(compose, host="shop.example.com")


@pytest.mark.postgres
def test_role_reads_the_same_desired_state_as_dokploy_user(
    role_db: tuple[DokployDb, str],
) -> None:
    db, role = role_db
    populate(db)

    as_reader = read_desired_state(as_role(db, role), server=None, connect_timeout=5)
    as_owner = read_desired_state(db.dsn, server=None, connect_timeout=5)

    assert as_reader == as_owner
    assert {owner.kind for owner in as_reader.owners} >= {"app", "preview", "compose", "labels"}


@pytest.mark.postgres
def test_role_reads_the_routes_of_a_remote_server(role_db: tuple[DokployDb, str]) -> None:
    db, role = role_db
    server = db.add_server()
    populate(db, server=server)
    db.add_forward_auth(server_id=server)

    as_reader = read_desired_state(as_role(db, role), server=server, connect_timeout=5)

    assert as_reader == read_desired_state(db.dsn, server=server, connect_timeout=5)
    assert as_reader.owners


@pytest.mark.postgres
@pytest.mark.parametrize(
    "query",
    [
        'SELECT "env" FROM application',
        "SELECT * FROM application",
        'SELECT "buildSecrets" FROM application',
        'SELECT "env" FROM compose',
        'SELECT "privateKey" FROM "ssh-key"',
        'SELECT "privateKey" FROM certificate',
        'SELECT email FROM "user"',
    ],
)
def test_role_cannot_read_a_secret(role_db: tuple[DokployDb, str], query: str) -> None:
    db, role = role_db
    db.add_application(env="enc:v1:secret")

    with (
        psycopg.connect(as_role(db, role), connect_timeout=5) as conn,
        pytest.raises(pg_errors.InsufficientPrivilege),
    ):
        conn.execute(query.encode())


@pytest.mark.postgres
def test_role_cannot_write(role_db: tuple[DokployDb, str]) -> None:
    db, role = role_db
    app = db.add_application()
    delete = 'DELETE FROM application WHERE "applicationId" = %s'

    with psycopg.connect(as_role(db, role), connect_timeout=5, autocommit=True) as conn:
        with pytest.raises(pg_errors.ReadOnlySqlTransaction):
            conn.execute(delete, (app.id,))
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(pg_errors.InsufficientPrivilege):
            conn.execute(delete, (app.id,))

    assert db.execute("SELECT count(*) FROM application") == [(1,)]


_COLUMN_REF = re.compile(r'"?([A-Za-z_]\w*)"?\."([A-Za-z_]\w*)"')
_TABLE_ALIAS = re.compile(r'(?:FROM|JOIN)\s+"?([A-Za-z_][\w-]*)"?\s+"?([A-Za-z_]\w*)"?')


def columns_the_code_reads(db: DokployDb) -> set[tuple[str, str]]:
    """(table, column) of every column reference in every statement the reader can run."""
    found: set[tuple[str, str]] = set()
    with open_snapshot(db.dsn, connect_timeout=5) as conn:
        schema = probe_schema(conn)
        for local in (True, False):
            for statement in build_statements(schema, local=local).all():
                text = statement.as_string(conn)
                aliases = dict((alias, table) for table, alias in _TABLE_ALIAS.findall(text))
                found |= {(aliases[a], column) for a, column in _COLUMN_REF.findall(text)}
    return found


def granted_columns(db: DokployDb, role: str) -> set[tuple[str, str]]:
    rows = db.execute(
        "SELECT table_name::text, column_name::text FROM information_schema.column_privileges "
        "WHERE grantee = %(role)s AND privilege_type = 'SELECT'",
        {"role": role},
    )
    return {(table, column) for table, column in rows}


@pytest.mark.postgres
def test_grants_are_exactly_the_columns_the_statements_name(
    role_db: tuple[DokployDb, str],
) -> None:
    db, role = role_db

    expected = columns_the_code_reads(db)
    table_grants = db.execute(
        "SELECT table_name::text FROM information_schema.table_privileges WHERE grantee = %(role)s",
        {"role": role},
    )

    assert ("security", "password") in expected
    assert granted_columns(db, role) == expected
    assert table_grants == []


@pytest.mark.postgres
def test_rerunning_the_script_restores_exactly_the_grants(role_db: tuple[DokployDb, str]) -> None:
    db, role = role_db
    before = granted_columns(db, role)
    db.execute(
        sql.SQL('GRANT SELECT ("env") ON application TO {}')
        .format(sql.Identifier(role))
        .as_string(None)
    )

    apply_role_sql(db, role)

    assert granted_columns(db, role) == before


@pytest.mark.postgres
@pytest.mark.parametrize("fixture", ["dokploy_db_v0_24", "dokploy_db_v0_13"])
def test_script_fits_older_dokploy_schemas(request: pytest.FixtureRequest, fixture: str) -> None:
    db: DokployDb = request.getfixturevalue(fixture)
    app = db.add_application()
    db.add_domain(app, host="old.example.com")
    db.add_security(app, "ops", "plain-secret")

    with reader_role(db) as role:
        as_reader = read_desired_state(as_role(db, role), server=None, connect_timeout=5)
        granted = granted_columns(db, role)

    assert as_reader == read_desired_state(db.dsn, server=None, connect_timeout=5)
    assert as_reader.owners
    assert granted == columns_the_code_reads(db)
