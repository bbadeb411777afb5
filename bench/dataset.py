"""A Dokploy-shaped database of a given size, with a realistic mix of routing rows.

Per 1,000 domains: 250 applications with two domains each (70 % https with Let's Encrypt,
10 % on a stripped path with an internal prefix, 10 % of apps with a redirect), 200
compose projects with two domains each, 100 preview deployments with one domain each, 1 %
of applications with swarm labels defining one router, and a few basic-auth users (bcrypt
is paid once per user, then cached). The database is named traefik_gen_bench_* and lives
in the machine's PostgreSQL; `drop` removes it.
"""

from __future__ import annotations

import logging
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.postgres import _CURRENT, App, Compose, DokployDb, database_dsn

__all__ = ["ADMIN_DSN", "Dataset", "build", "drop"]

logger = logging.getLogger(__name__)

ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
SCHEMA = Path(__file__).resolve().parent.parent / "tests" / "sql" / "dokploy_current.sql"
DB_PREFIX = "traefik_gen_bench_"


@dataclass
class Dataset:
    name: str
    dsn: str
    domains: int
    users: int
    # A compose project whose domains the change trials edit, and one domain of it.
    compose: Compose | None = None
    compose_domain: str = ""
    apps: list[App] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:5432/{self.name}"

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True)


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5)


def build(domains: int) -> Dataset:
    """Create and fill a fresh database with `domains` domains (a multiple of 10)."""
    name = f"{DB_PREFIX}{domains}_{uuid.uuid4().hex[:8]}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dataset = Dataset(name=name, dsn=database_dsn(ADMIN_DSN, name), domains=domains, users=0)
    with psycopg.connect(dataset.dsn, autocommit=True) as conn:
        conn.execute(SCHEMA.read_text(encoding="utf-8").encode())
        for statement in _CURRENT.chain:
            conn.execute(statement.encode())
    with psycopg.connect(dataset.dsn) as conn:
        _fill(DokployDb(dataset.dsn, _CURRENT, conn), dataset)
        conn.commit()
    with psycopg.connect(dataset.dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return dataset


def drop(dataset: Dataset) -> None:
    with _admin() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dataset.name))
        )


def _fill(db: DokployDb, dataset: Dataset) -> None:
    scale = dataset.domains // 1000 or 1
    unit = dataset.domains / 1000
    _applications(db, dataset, int(250 * unit), users=4 * scale)
    _previews(db, dataset, int(100 * unit))
    _composes(db, dataset, int(200 * unit))


def _applications(db: DokployDb, dataset: Dataset, count: int, users: int) -> None:
    for i in range(count):
        app = db.add_application(f"app-{i:05d}")
        dataset.apps.append(app)
        for k in range(2):
            _app_domain(db, app, i, k)
        if i % 10 == 3:
            db.add_redirect(app, permanent=True)
        if i % 100 == 7:
            _labels(db, app, i)
        if dataset.users < users and i % 17 == 5:
            db.add_security(app, username=f"user{i}", password=f"pass-{i}")
            dataset.users += 1


def _app_domain(db: DokployDb, app: App, i: int, k: int) -> None:
    host = f"{app.app_name}-{k}.bench.test"
    extra: dict[str, Any] = {"port": 3000}
    if (i + k) % 10 < 7:
        extra |= {"https": True, "certificateType": "letsencrypt"}
    if i % 10 == 5 and k == 1:
        extra |= {"path": "/api", "stripPath": True, "internalPath": "/v1"}
    db.add_domain(app, host=host, **extra)


def _labels(db: DokployDb, app: App, i: int) -> None:
    db.set_labels(
        app,
        {
            "traefik.enable": "true",
            f"traefik.http.routers.l{i}.rule": f"Host(`labels-{i}.bench.test`)",
            f"traefik.http.routers.l{i}.entrypoints": "websecure",
            f"traefik.http.routers.l{i}.tls.certresolver": "letsencrypt",
            f"traefik.http.services.l{i}.loadbalancer.server.port": "8080",
        },
    )


def _previews(db: DokployDb, dataset: Dataset, count: int) -> None:
    for i in range(count):
        parent = dataset.apps[i % len(dataset.apps)]
        preview = db.add_preview(parent, app_name=f"preview-{parent.app_name}-{i:05d}")
        db.add_domain(preview, host=f"pr-{i}.preview.bench.test", port=3000)


def _composes(db: DokployDb, dataset: Dataset, count: int) -> None:
    for i in range(count):
        compose = db.add_compose(f"stack-{i:05d}")
        for k in range(2):
            https = (i + k) % 3 != 0
            extra: dict[str, Any] = {"https": https}
            if https:
                extra["certificateType"] = "letsencrypt"
            domain = db.add_domain(
                compose, host=f"{compose.app_name}-{k}.bench.test", port=8000 + k, **extra
            )
            if dataset.compose is None:
                dataset.compose, dataset.compose_domain = compose, domain.id
