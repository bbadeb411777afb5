"""The one settings model: `TRAEFIK_GEN_*` variables, Dokploy's own variables as aliases.

Precedence: command-line options, then environment variables, then the defaults below.
Every field is documented in the README's settings table.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from psycopg.conninfo import make_conninfo
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from traefik_gen.errors import SettingsError
from traefik_gen.traefik.hosts import usable_url

__all__ = ["Mode", "Settings", "SourceSpec", "load_settings"]

logger = logging.getLogger(__name__)

_PREFIX = "TRAEFIK_GEN_"


def _env(name: str, *aliases: str) -> AliasChoices:
    """Read `TRAEFIK_GEN_<NAME>` first, then Dokploy's own variable names."""
    return AliasChoices(_PREFIX + name.upper(), *aliases)


class Mode(StrEnum):
    """Which domains the tool writes (see the README's "Modes" section)."""

    COMPLEMENT = "complement"
    FULL = "full"


class SourceSpec:
    """One `--source`: a PostgreSQL URL or the path of a routes file."""

    def __init__(self, text: str) -> None:
        # A stray space or a capitalised scheme must not turn a URL into a "file path",
        # whose error message would then show the password.
        self.text = text.strip()
        self.is_database = self.text.lower().startswith(("postgres://", "postgresql://"))

    @property
    def has_password(self) -> bool:
        if not self.is_database:
            return False
        parts = urlsplit(self.text)
        return parts.password is not None or "password=" in parts.query.lower()

    def describe(self) -> str:
        """The source for messages: a URL without its password or query."""
        if not self.is_database:
            return self.text
        parts = urlsplit(self.text)
        host = parts.hostname or "localhost"
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            port = ":<invalid port>"
        user = f"{parts.username}@" if parts.username else ""
        return f"{parts.scheme}://{user}{host}{port}{parts.path}"


class Settings(BaseSettings):
    """Every setting of traefik-gen. Field docs are the README's settings table."""

    model_config = SettingsConfigDict(
        env_prefix=_PREFIX, populate_by_name=True, extra="forbid", case_sensitive=False
    )

    source: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        validation_alias=_env("source"),
        description="postgres:// URLs or routes-file paths; default: the Dokploy database",
    )
    database_url: SecretStr | None = Field(
        default=None, validation_alias=_env("database_url", "DATABASE_URL")
    )
    postgres_user: str = Field(
        default="dokploy", validation_alias=_env("postgres_user", "POSTGRES_USER")
    )
    postgres_db: str = Field(default="dokploy", validation_alias=_env("postgres_db", "POSTGRES_DB"))
    postgres_host: str = Field(
        default="dokploy-postgres", validation_alias=_env("postgres_host", "POSTGRES_HOST")
    )
    postgres_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=5432, validation_alias=_env("postgres_port", "POSTGRES_PORT")
    )
    db_password: SecretStr | None = Field(
        default=None, validation_alias=_env("db_password", "PGPASSWORD")
    )
    db_password_file: Path | None = Field(
        default=None, validation_alias=_env("db_password_file", "POSTGRES_PASSWORD_FILE")
    )
    connect_timeout: Annotated[float, Field(gt=0)] = 10.0
    out: Path = Path("/etc/dokploy/traefik/dynamic")
    mode: Mode = Mode.COMPLEMENT
    server: str = "local"
    format: Literal["yaml", "toml"] = "yaml"
    upstream: str = "{scheme}://{host}:{port}"
    entrypoint_web: str = "web"
    entrypoint_websecure: str = "websecure"
    file_prefix: str = "zz-traefik-gen-"
    name_prefix: str = "tg"
    exposed_by_default: bool = False
    strict: bool = False
    bcrypt_rounds: Annotated[int, Field(ge=4, le=16)] = 10
    max_removal_share: Annotated[float, Field(ge=0, le=1)] = 0.5
    removal_floor: Annotated[int, Field(ge=0)] = 2
    allow_mass_removal: bool = False
    listen: str = "127.0.0.1:9180"
    poll_interval: Annotated[float, Field(gt=0)] = 2.0
    retry_max: Annotated[float, Field(gt=0)] = 30.0
    ready_max_age: Annotated[float, Field(gt=0)] | None = None
    docker_host: str | None = Field(
        default=None, validation_alias=_env("docker_host", "DOCKER_HOST")
    )
    docker: bool = True
    verify_api: str | None = None
    verify_timeout: Annotated[float, Field(gt=0)] = 5.0
    debounce_min: Annotated[float, Field(ge=0)] = 0.5
    debounce_max: Annotated[float, Field(gt=0)] = 5.0
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("source", mode="before")
    @classmethod
    def _split_sources(cls, value: object) -> object:
        # An environment variable holds several sources separated by commas.
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("upstream")
    @classmethod
    def _upstream_is_a_template(cls, value: str) -> str:
        try:
            sample = value.format(scheme="http", host="backend", port=80)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError("use only the fields {scheme}, {host} and {port}") from exc
        if not usable_url(sample):
            raise ValueError("it must give a URL with a scheme and a host")
        return value

    @field_validator("verify_api")
    @classmethod
    def _verify_api_is_a_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 (raises on a malformed port)
        except ValueError as exc:
            raise ValueError("it must be an http(s) URL of Traefik's API") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("it must be an http(s) URL of Traefik's API")
        return value

    @field_validator("entrypoint_web", "entrypoint_websecure")
    @classmethod
    def _entrypoint_is_a_name(cls, value: str) -> str:
        if not value or not all(c.isascii() and (c.isalnum() or c in "-_") for c in value):
            raise ValueError("use letters, digits, dashes and underscores only")
        return value

    @field_validator("out")
    @classmethod
    def _out_is_absolute(cls, value: Path) -> Path:
        # Self-heal compares the watcher's absolute paths with this one.
        return value.absolute()

    @field_validator("file_prefix", "name_prefix")
    @classmethod
    def _prefix_is_plain(cls, value: str) -> str:
        if not value or not all(c.isascii() and (c.isalnum() or c == "-") for c in value):
            raise ValueError("use letters, digits and dashes only")
        return value

    def readiness_age(self) -> float:
        """How old the last successful sync may be before /readyz fails."""
        return self.ready_max_age or max(30.0, 10 * self.poll_interval)

    def sources(self) -> list[SourceSpec]:
        """The sources to read; the Dokploy database when none is given."""
        if self.source:
            return [SourceSpec(text) for text in self.source]
        return [SourceSpec("postgresql://dokploy")]

    def conninfo(self, spec: SourceSpec) -> str:
        """The libpq connection string for a database source (may hold a password)."""
        if self.source:
            return spec.text
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return make_conninfo(
            host=self.postgres_host,
            port=str(self.postgres_port),
            dbname=self.postgres_db,
            user=self.postgres_user,
        )

    def describe_database(self, spec: SourceSpec) -> str:
        """A database source for messages, never with its password."""
        if self.source:
            return spec.describe()
        if self.database_url is not None:
            return SourceSpec(self.database_url.get_secret_value()).describe()
        return f"postgresql://{self.postgres_user}@{self.postgres_host}:{self.postgres_port}/{self.postgres_db}"

    def password(self) -> str | None:
        """The database password from the environment or a `_FILE`, if any."""
        if self.db_password is not None:
            return self.db_password.get_secret_value()
        if self.db_password_file is None:
            return None
        try:
            return self.db_password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(
                f"cannot read the database password file '{self.db_password_file}': {exc.strerror}"
            ) from exc


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment with command-line `overrides` on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        settings = Settings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_describe_validation(exc)) from None
    for spec in settings.sources():
        if "source" in given and spec.has_password:
            logger.warning(
                "the database password in --source %s is visible to every local user; "
                "use TRAEFIK_GEN_DB_PASSWORD_FILE or POSTGRES_PASSWORD_FILE instead",
                spec.describe(),
            )
    return settings


def _describe_validation(exc: ValidationError) -> str:
    # Never echo the input: a value may be a password or a DSN.
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        problems.append(f"setting '{field}': {error['msg'].lower()}")
    return "; ".join(problems)
