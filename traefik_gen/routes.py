"""The desired-route model: what every source produces and the planner consumes.

A source (the Dokploy database, a routes file) has already applied its own semantics
here: which middlewares a route carries, what its TLS block is, which host its backend
has. The planner only turns these into Traefik objects with stable names. The same
model is the routes-file format, so every field is documented for users too; input
models forbid unknown keys, so a misspelt key is an error and never an unprotected route.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = [
    "Backend",
    "BasicAuthUser",
    "DesiredState",
    "ForwardAuth",
    "Owner",
    "OwnerKind",
    "Redirect",
    "Rejection",
    "Route",
    "RowRef",
    "Tls",
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class OwnerKind(StrEnum):
    """What owns a generated file. Part of every file and object name."""

    APPLICATION = "app"
    PREVIEW = "preview"
    COMPOSE = "compose"
    LABELS = "labels"
    FILE = "route"


class RowRef(_Input):
    """Where a value came from, for error lines: table, row id, app."""

    table: str
    row_id: str
    app: str

    def describe(self, field: str | None = None) -> str:
        where = f"{self.table} row {self.row_id!r} (app {self.app!r}"
        return where + (f", field {field!r})" if field else ")")


class Rejection(_Input):
    """One input the plan could not render safely, reported on one line."""

    ref: RowRef
    field: str
    reason: str
    # A fault in a route's protection (basic auth, forward auth) unpublishes it; any other
    # fault keeps the route's last written form, which the planner finds through these:
    protection: bool = False
    owner_kind: OwnerKind | None = None
    owner_id: str | None = None
    route_key: str | None = None

    def line(self) -> str:
        return f"rejected {self.ref.describe(self.field)}: {self.reason}"


class Tls(_Input):
    """A router TLS block. Absent on a route means: no `tls` key at all."""

    cert_resolver: str | None = Field(default=None, alias="certResolver")


class Backend(_Input):
    """Where requests go. `host` is the Docker DNS name fed to the upstream template."""

    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 80
    scheme: Literal["http", "https"] = "http"
    # A full URL bypasses the upstream template (routes files, `server.url` labels).
    url: str | None = None
    # A docker-compose service: with a Docker engine at hand, every running replica of
    # (project, service) becomes a server; without one, `host` (the first replica) serves.
    compose_project: str | None = None
    compose_service: str | None = None


class Redirect(_Input):
    """A Dokploy `redirect` row: a redirectRegex middleware."""

    key: str
    regex: str
    replacement: str
    permanent: bool = False
    ref: RowRef | None = None


class BasicAuthUser(_Input):
    """One basic-auth user. Exactly one of `password` (plaintext) or `hash` (bcrypt)."""

    username: str
    password: SecretStr | None = None
    hash: SecretStr | None = None
    ref: RowRef | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> BasicAuthUser:
        if (self.password is None) == (self.hash is None):
            raise ValueError("give exactly one of 'password' or 'hash'")
        return self


class ForwardAuth(_Input):
    """Forward auth as Dokploy renders it from `forward_auth_settings`."""

    address: str
    errors_service_url: str
    sign_in_query: str = "/oauth2/sign_in?rd={url}"


class Route(_Input):
    """One domain: a host (and path) served on one or two entrypoints."""

    key: str = Field(description="stable id within the owner; part of every object name")
    host: str
    path: str = "/"
    https: bool = False
    entrypoint: str | None = Field(default=None, description="a custom entrypoint")
    tls: Tls | None = None
    strip_prefix: bool = Field(default=False, alias="stripPrefix")
    add_prefix: str | None = Field(default=None, alias="addPrefix")
    redirects: bool = Field(default=True, description="apply the owner's redirects")
    basic_auth: bool = Field(default=True, alias="basicAuth", description="apply owner users")
    forward_auth: bool = Field(default=False, alias="forwardAuth")
    middlewares: tuple[str, ...] = ()
    backend: Backend
    ref: RowRef | None = None


class Owner(_Input):
    """Everything one generated file holds: one application, preview, compose, label set."""

    kind: OwnerKind
    id: str = Field(description="stable id (a database primary key or a routes-file name)")
    name: str = Field(description="the app name, for messages and object names")
    routes: tuple[Route, ...] = ()
    redirects: tuple[Redirect, ...] = ()
    users: tuple[BasicAuthUser, ...] = ()
    forward_auth: ForwardAuth | None = Field(default=None, alias="forwardAuthSettings")
    labels: dict[str, str] | None = None
    ref: RowRef | None = None


class DesiredState(_Input):
    """What a source says should be served, plus the rows it could not read."""

    owners: tuple[Owner, ...] = ()
    rejections: tuple[Rejection, ...] = ()
