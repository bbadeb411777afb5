"""Deployment files for a Dokploy host, rendered from templates/ with the operator's values.

Four files: a Docker Swarm stack (the sidecar and its read-only Docker API proxy), the
Traefik static-configuration fragment that enables the file provider, and a systemd unit
with its environment file for a host install. Templates use `string.Template` (`$name`)
over `DeployValues`, whose every field is checked against a strict pattern first, so no
value can break out of its YAML scalar or systemd line. Optional blocks sit between
`#% if <flag>`, `#% else` and `#% end` lines. Every rendered file is parsed before a byte
is written.
"""

from __future__ import annotations

import configparser
import contextlib
import ipaddress
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from string import Template

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from traefik_gen.errors import ConfigError, SettingsError, WriteError
from traefik_gen.settings import Mode

__all__ = [
    "OUTPUT_NAMES",
    "TEMPLATE_DIR",
    "DeployValues",
    "deploy_values",
    "render",
    "render_templates",
]

logger = logging.getLogger(__name__)


def _template_dir() -> Path:
    """templates/ of a checkout, else the copy a wheel installs under <prefix>/share."""
    checkout = Path(__file__).resolve().parent.parent / "templates"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "traefik-gen" / "templates"


TEMPLATE_DIR = _template_dir()

# Rendered file name -> template file name, in the order render_templates returns them.
OUTPUT_NAMES: Mapping[str, str] = {
    "traefik-gen.stack.yml": "stack.yml.tmpl",
    "traefik-file-provider.yml": "traefik-file-provider.yml.tmpl",
    "traefik-gen.service": "traefik-gen.service.tmpl",
    "traefik-gen.env": "traefik-gen.env.tmpl",
}

_FILE_MODE = 0o644
_PORT_MAX = 65535
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?P<tag>:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?P<digest>@sha256:[0-9a-f]{64})?"
)
_PATH = re.compile(r"(?:/[A-Za-z0-9_.-]+)+")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
_PG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_DOCKER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SERVER = re.compile(r"[A-Za-z0-9_-]{1,64}")
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_ADDRESS = re.compile(r"(?P<host>[0-9.]+):(?P<port>[0-9]{1,5})")
# The container probes its own loopback, so it must listen there or on every address.
_CONTAINER_HOSTS = frozenset({"0.0.0.0", "127.0.0.1"})
_PLACEMENT = re.compile(
    r"(?:node\.(?:id|hostname|role|platform\.os|platform\.arch|labels\.[A-Za-z0-9_.-]+)"
    r"|engine\.labels\.[A-Za-z0-9_.-]+)\s*(?:==|!=)\s*[A-Za-z0-9_.-]+"
)
_BLOCK = re.compile(r"\s*#%\s*(?P<word>if|else|end)\b\s*(?P<flag>\w*)\s*")


class DeployValues(BaseModel):
    """The operator's settings for the deployment files; the defaults are Dokploy's layout.

    Every value is checked against a strict pattern, so a template can place it verbatim.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str = Field(
        default="traefik-gen:0.1.0", description="the sidecar image, with a pinned tag or digest"
    )
    dynamic_dir: str = Field(
        default="/etc/dokploy/traefik/dynamic", description="Traefik's watched directory"
    )
    db_host: str = Field(default="dokploy-postgres", description="Dokploy's PostgreSQL service")
    db_port: int = Field(default=5432, ge=1, le=_PORT_MAX)
    db_name: str = "dokploy"
    db_user: str = Field(default="dokploy", description="Dokploy's user, or a read-only role")
    password_secret: str = Field(
        default="dokploy_postgres_password",
        description="the external Swarm secret holding db_user's password",
    )
    network: str = Field(default="dokploy-network", description="Dokploy's overlay network")
    listen: str = Field(default="0.0.0.0:9180", description="the sidecar's /healthz address")
    mode: Mode = Mode.COMPLEMENT
    server: str = Field(default="local", description="'local' or a Dokploy serverId")
    docker_proxy: bool = Field(
        default=True, description="Docker events through a read-only API proxy, or none"
    )
    docker_proxy_image: str = "tecnativa/docker-socket-proxy:0.3.0"
    placement: str = Field(
        default="node.role == manager",
        description="Swarm constraint of the node where Dokploy's Traefik runs",
    )
    uid: int = Field(default=10001, ge=1, le=2**31 - 1, description="the sidecar's uid")
    gid: int = Field(default=10001, ge=1, le=2**31 - 1, description="the sidecar's gid")
    venv: str = Field(default="/opt/traefik-gen/venv", description="host install: the venv")
    user: str = Field(default="traefik-gen", description="host install: the system user")
    host_listen: str = Field(default="127.0.0.1:9180", description="host install: /healthz")
    tunnel_port: int = Field(
        default=15432, ge=1, le=_PORT_MAX, description="host install: the database tunnel"
    )

    @field_validator("*", mode="before")
    @classmethod
    def _single_line(cls, value: object) -> object:
        if isinstance(value, str) and _CONTROL.search(value):
            raise ValueError("must be one line without control characters")
        return value

    @field_validator("image", "docker_proxy_image")
    @classmethod
    def _pinned_image(cls, value: str) -> str:
        found = _IMAGE.fullmatch(value)
        if found is None:
            raise ValueError(f"{value!r} is not a docker image reference")
        if not found.group("digest") and found.group("tag") in (None, ":latest"):
            raise ValueError(f"{value!r} has no pinned tag or digest")
        return value

    @field_validator("dynamic_dir", "venv")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        parts = value.split("/")[1:]
        if _PATH.fullmatch(value) is None or any(part in (".", "..") for part in parts):
            raise ValueError(f"{value!r} is not a plain absolute path (letters, digits, ._-)")
        return value

    @field_validator("db_host")
    @classmethod
    def _host_name(cls, value: str) -> str:
        return _matching(value, _HOST, "a host name")

    @field_validator("db_name", "db_user")
    @classmethod
    def _postgres_name(cls, value: str) -> str:
        return _matching(value, _PG_NAME, "a plain postgresql name (letters, digits, _)")

    @field_validator("password_secret", "network")
    @classmethod
    def _docker_name(cls, value: str) -> str:
        return _matching(value, _DOCKER_NAME, "a docker object name")

    @field_validator("server")
    @classmethod
    def _server_id(cls, value: str) -> str:
        return _matching(value, _SERVER, "'local' or a dokploy serverId")

    @field_validator("user")
    @classmethod
    def _user_name(cls, value: str) -> str:
        return _matching(value, _USER, "a system user name")

    @field_validator("placement")
    @classmethod
    def _constraint(cls, value: str) -> str:
        return _matching(value, _PLACEMENT, "a swarm constraint such as 'node.role == manager'")

    @field_validator("listen")
    @classmethod
    def _container_address(cls, value: str) -> str:
        host = _address_host(value)
        if host not in _CONTAINER_HOSTS:
            raise ValueError(f"{value!r} must listen on 0.0.0.0 or 127.0.0.1 in the container")
        return value

    @field_validator("host_listen")
    @classmethod
    def _host_address(cls, value: str) -> str:
        _address_host(value)
        return value


def _matching(value: str, pattern: re.Pattern[str], what: str) -> str:
    if pattern.fullmatch(value) is None:
        raise ValueError(f"{value!r} is not {what}")
    return value


def _address_host(value: str) -> str:
    found = _ADDRESS.fullmatch(value)
    if found is None or not 1 <= int(found.group("port")) <= _PORT_MAX:
        raise ValueError(f"{value!r} is not an address '<ipv4>:<port>'")
    try:
        ipaddress.IPv4Address(found.group("host"))
    except ValueError:
        raise ValueError(f"{value!r} is not an address '<ipv4>:<port>'") from None
    return found.group("host")


def deploy_values(**given: object) -> DeployValues:
    """DeployValues from keyword values (None means the default).

    Raises:
        SettingsError: a value does not fit its field, naming the field.
    """
    chosen = {key: value for key, value in given.items() if value is not None}
    try:
        return DeployValues.model_validate(chosen)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "values"
        message = error["msg"].removeprefix("Value error, ")
        message = message[:1].lower() + message[1:]
        problems.append(f"deploy value '{field}': {message}")
    return "; ".join(problems)


def render(values: DeployValues, templates: Path = TEMPLATE_DIR) -> dict[str, str]:
    """Render every deployment file in memory: file name -> text, each one parsed once.

    Raises:
        SettingsError: `values` bypassed validation and holds a value that does not fit.
        ConfigError: a template is missing, names an unknown value, or renders a file that
            does not parse.
    """
    checked = _revalidate(values)
    mapping = _substitutions(checked)
    flags = {"docker_proxy": checked.docker_proxy}
    rendered = {}
    for name, template_name in OUTPUT_NAMES.items():
        text = _fill(templates / template_name, mapping, flags)
        _PARSERS[name](name, text)
        rendered[name] = text
    return rendered


def _revalidate(values: DeployValues) -> DeployValues:
    # model_construct() skips validation; the templates rely on every value being checked.
    return deploy_values(**values.model_dump())


def _substitutions(values: DeployValues) -> dict[str, str]:
    return {key: str(value) for key, value in values.model_dump(mode="json").items()}


def _fill(path: Path, mapping: Mapping[str, str], flags: Mapping[str, bool]) -> str:
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read template '{path}': {exc.strerror}") from exc
    selected = _select_blocks(path.name, source, flags)
    try:
        return Template(selected).substitute(mapping)
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"template '{path.name}' names an unknown value: {exc}") from exc


def _select_blocks(name: str, source: str, flags: Mapping[str, bool]) -> str:
    """Keep the lines of each `#% if` block whose flag holds, else those of its `#% else`."""
    kept: list[str] = []
    keeping: bool | None = None
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        marker = _BLOCK.fullmatch(line)
        if marker is None:
            if keeping is not False:
                kept.append(line)
            continue
        keeping = _next_state(name, number, marker, keeping, flags)
    if keeping is not None:
        raise ConfigError(f"template '{name}' has an '#% if' without '#% end'")
    return "".join(kept)


def _next_state(
    name: str,
    number: int,
    marker: re.Match[str],
    keeping: bool | None,
    flags: Mapping[str, bool],
) -> bool | None:
    word, flag = marker.group("word"), marker.group("flag")
    if word == "if" and keeping is None and flag in flags:
        return flags[flag]
    if word == "else" and keeping is not None:
        return not keeping
    if word == "end" and keeping is not None:
        return None
    raise ConfigError(f"template '{name}' line {number}: misplaced or unknown '#% {word}'")


def _parse_yaml(name: str, text: str) -> None:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"rendered '{name}' is not valid yaml: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"rendered '{name}' is not a yaml mapping")


def _parse_unit(name: str, text: str) -> None:
    # strict=False: systemd allows a key more than once (SystemCallFilter= accumulates).
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    try:
        parser.read_string(text, source=name)
    except configparser.Error as exc:
        raise ConfigError(f"rendered '{name}' is not a valid unit file: {exc}") from exc
    missing = {"Unit", "Service", "Install"} - set(parser.sections())
    if missing:
        raise ConfigError(f"rendered '{name}' lacks section(s) {', '.join(sorted(missing))}")


_ENV_LINE = re.compile(r"[A-Z_][A-Z0-9_]*=[^\s\"'\\$]*")


def _parse_env(name: str, text: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        if line and not line.startswith("#") and _ENV_LINE.fullmatch(line) is None:
            raise ConfigError(f"rendered '{name}' line {number} is not a plain KEY=value")


_PARSERS: Mapping[str, Callable[[str, str], None]] = {
    "traefik-gen.stack.yml": _parse_yaml,
    "traefik-file-provider.yml": _parse_yaml,
    "traefik-gen.service": _parse_unit,
    "traefik-gen.env": _parse_env,
}


def render_templates(
    values: DeployValues,
    dest: Path,
    *,
    overwrite: bool = False,
    templates: Path = TEMPLATE_DIR,
) -> list[Path]:
    """Render every deployment file into `dest` and return their paths.

    Nothing is written unless every file renders and parses. Each file is written to a
    temporary name and renamed into place, mode 0644 (none holds a secret).

    Raises:
        SettingsError: a value does not fit its field.
        ConfigError: a template is broken.
        WriteError: a file exists and `overwrite` is off, or `dest` cannot be written.
    """
    rendered = render(values, templates)
    paths = [dest / name for name in rendered]
    if not overwrite:
        _refuse_existing(paths)
    _make_directory(dest)
    for path in paths:
        _write(path, rendered[path.name])
    return paths


def _refuse_existing(paths: list[Path]) -> None:
    for path in paths:
        if path.exists():
            raise WriteError(f"'{path}' exists and overwriting it was not asked for")


def _make_directory(dest: Path) -> None:
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create directory '{dest}': {exc.strerror}") from exc


def _write(path: Path, text: str) -> None:
    # The temporary name never ends in .yml: a Traefik watching `dest` must not load it.
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.chmod(partial, _FILE_MODE)
        os.replace(partial, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise WriteError(f"cannot write '{path}': {exc.strerror}") from exc
    logger.info("wrote %s", path)
