"""Owners planned one at a time, straight from the rows, give exactly the all-in-memory plan.

`sync` maps each owner only when the planner takes it and renders its file at once; the
planner's other entry, `build_plan` over a whole desired state, is the reference. Both
run here over one database with every kind of owner and rejection, plus a routes file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.postgres import DokployDb
from traefik_gen.auth import PasswordHasher
from traefik_gen.plan import DirectoryView, build_plan, plan_source
from traefik_gen.render import render
from traefik_gen.settings import Settings, load_settings
from traefik_gen.sources import fetch_sources
from traefik_gen.sync import plan_options

EXAMPLE = Path(__file__).parent.parent / "examples" / "routes.yml"


@pytest.fixture
def db(dokploy_db: DokployDb) -> DokployDb:
    for index in range(3):
        app = dokploy_db.add_application(f"app-{index}")
        dokploy_db.add_domain(app, f"a{index}.example.com", port=3000 + index)
        dokploy_db.add_domain(app, f"b{index}.example.com", port=70000)  # rejected
        preview = dokploy_db.add_preview(app)
        dokploy_db.add_domain(preview, f"pr{index}.example.com", port=3000)
        compose = dokploy_db.add_compose(f"stack-{index}")
        dokploy_db.add_domain(compose, f"c{index}.example.com", port=80)
    labelled = dokploy_db.add_application("labelled")
    dokploy_db.set_labels(
        labelled,
        {
            "traefik.enable": "true",
            "traefik.http.routers.extra.rule": "Host(`extra.example.com`)",
            "traefik.http.services.extra.loadbalancer.server.port": "9000",
        },
    )
    dokploy_db.set_labels(dokploy_db.add_application("bad-labels"), "[1, 2]")  # rejected
    return dokploy_db


def settings(db: DokployDb, out: Path) -> Settings:
    return load_settings(source=(db.url, str(EXAMPLE)), out=out, mode="full", docker=False)


def test_the_streamed_plan_is_the_all_in_memory_plan(db: DokployDb, tmp_path: Path) -> None:
    config = settings(db, tmp_path / "dynamic")
    options, view = plan_options(config), DirectoryView()

    def renderer(data: dict[str, object]) -> bytes:
        return render(data, "yaml")

    reference = build_plan(
        fetch_sources(config).desired(), options, view, PasswordHasher(None, rounds=4)
    )
    streamed = plan_source(
        fetch_sources(config), options, view, PasswordHasher(None, rounds=4), renderer=renderer
    )

    masked = {name: _no_hashes(renderer(data)) for name, data in reference.files.items()}
    assert {name: _no_hashes(content) for name, content in streamed.contents.items()} == masked
    assert [r.line() for r in streamed.rejections] == [r.line() for r in reference.rejections]
    assert len(reference.rejections) >= 4 and len(masked) >= 10
    assert (streamed.routers, streamed.kept, streamed.notices) == (
        reference.routers,
        reference.kept,
        reference.notices,
    )
    assert streamed.owner_files == reference.owner_files
    assert streamed.claims == reference.claims


def _no_hashes(content: bytes) -> bytes:
    # The routes file's user is hashed afresh by each hasher (a random salt).
    return b"\n".join(line for line in content.splitlines() if b"$2b$" not in line)
