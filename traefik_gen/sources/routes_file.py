"""A routes file (YAML or TOML): desired routes kept outside Dokploy, same model, same checks.

Each app of the file becomes one owner. An app that does not validate is rejected on one
line naming the file, the app and the field (never a value: a file may hold passwords); the
other apps are still read, and the rejected app's last written file is kept.
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from traefik_gen.errors import SourceError
from traefik_gen.routes import (
    BasicAuthUser,
    DesiredState,
    ForwardAuth,
    Owner,
    OwnerKind,
    Redirect,
    Rejection,
    Route,
    RowRef,
)

__all__ = ["read_bytes", "read_routes_file"]

logger = logging.getLogger(__name__)


class FileApp(BaseModel):
    """One app of a routes file; unknown keys are errors, never silently dropped."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(min_length=1)
    name: str | None = None
    routes: tuple[Route, ...] = ()
    redirects: tuple[Redirect, ...] = ()
    users: tuple[BasicAuthUser, ...] = ()
    forward_auth: ForwardAuth | None = Field(default=None, alias="forwardAuthSettings")
    labels: dict[str, str] | None = None


def read_routes_file(path: Path, content: bytes | None = None) -> DesiredState:
    """The desired state a routes file describes (`content`: its bytes, already read)."""
    document = _load(path, read_bytes(path) if content is None else content)
    apps = document.get("apps", [])
    if set(document) - {"apps"} or not isinstance(apps, list):
        raise SourceError(f"routes file '{path}' must hold one top-level key 'apps', a list")
    owners: list[Owner] = []
    rejections: list[Rejection] = []
    seen: set[str] = set()
    for index, raw in enumerate(apps):
        app_id = str(raw.get("id", f"#{index}")) if isinstance(raw, dict) else f"#{index}"
        try:
            app = FileApp.model_validate(raw)
        except ValidationError as exc:
            rejections.extend(_rejections(path, app_id, exc))
            continue
        if app.id in seen:
            rejections.append(_duplicate(path, app.id, index))
            continue
        seen.add(app.id)
        owners.extend(_owners(path, app))
    return DesiredState(owners=tuple(owners), rejections=tuple(rejections))


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read routes file '{path}': {exc.strerror}") from exc


def _load(path: Path, content: bytes) -> dict[str, Any]:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"routes file '{path}' is not UTF-8 text (byte {exc.start})") from None
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise SourceError(f"routes file '{path}' does not parse: {_position(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SourceError(f"routes file '{path}' must hold a mapping at the top")
    return data


def _position(exc: Exception) -> str:
    # Parser messages quote the offending text, which may be a password: keep the place only.
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}"
    line = getattr(exc, "lineno", None)
    column = getattr(exc, "colno", None)
    if line and column:
        return f"line {line}, column {column}"
    return f"line {line}" if line else "syntax error"


def _duplicate(path: Path, app_id: str, index: int) -> Rejection:
    return Rejection(
        ref=RowRef(table=f"routes file {path}", row_id=app_id, app=app_id),
        field=f"apps.{index}.id",
        reason="another app of the file has the same id; only the first is read",
    )


def _rejections(path: Path, app_id: str, exc: ValidationError) -> list[Rejection]:
    ref = RowRef(table=f"routes file {path}", row_id=app_id, app=app_id)
    found = []
    for error in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "app"
        found.append(
            Rejection(
                ref=ref,
                field=field,
                reason=error["msg"].lower(),
                owner_kind=OwnerKind.FILE,
                owner_id=app_id,
            )
        )
    return found


def _owners(path: Path, app: FileApp) -> list[Owner]:
    name = app.name or app.id
    table = f"routes file {path}"

    def ref(row: str) -> RowRef:
        return RowRef(table=table, row_id=f"{app.id}/{row}", app=name)

    routes = tuple(
        r.model_copy(update={"ref": r.ref or ref(f"routes/{r.key}")}) for r in app.routes
    )
    owner = Owner(
        kind=OwnerKind.FILE,
        id=app.id,
        name=name,
        routes=routes,
        redirects=tuple(
            r.model_copy(update={"ref": r.ref or ref(f"redirects/{r.key}")}) for r in app.redirects
        ),
        users=tuple(
            u.model_copy(update={"ref": u.ref or ref(f"users/{u.username}")}) for u in app.users
        ),
        forward_auth=app.forward_auth,
        ref=RowRef(table=table, row_id=app.id, app=name),
    )
    owners = [owner]
    if app.labels:
        owners.append(
            Owner(
                kind=OwnerKind.LABELS,
                id=app.id,
                name=name,
                labels=app.labels,
                ref=RowRef(table=table, row_id=app.id, app=name),
            )
        )
    return owners
