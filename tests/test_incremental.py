"""The sidecar's incremental sync writes exactly what a full sync would, or defers to one.

Every case runs the in-process sidecar against a real PostgreSQL: a change is committed,
one poll runs, and the directory must then be byte for byte what a fresh full generation
of the same rows writes. The incremental-sync counter tells which path the poll took.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.postgres import DokployDb
from traefik_gen.settings import Settings, load_settings
from traefik_gen.sync import sync
from traefik_gen.watch.loop import Sidecar

PREFIX = "zz-traefik-gen-"


class Install:
    """A small Dokploy install: two applications, a compose project and a preview."""

    def __init__(self, db: DokployDb) -> None:
        self.db = db
        self.web = db.add_application("web")
        self.api = db.add_application("api")
        self.shop = db.add_compose("shop")
        self.web_domain = db.add_domain(self.web, "web.example.com", port=3000)
        db.add_domain(self.api, "api.example.com", port=8080, https=True)
        self.shop_domain = db.add_domain(self.shop, "shop.example.com", port=80)
        self.preview = db.add_preview(self.web)
        db.add_domain(self.preview, "pr-1.example.com", port=3000)


@pytest.fixture
def install(dokploy_db: DokployDb) -> Install:
    return Install(dokploy_db)


@pytest.fixture
def sidecar(install: Install, tmp_path: Path) -> Iterator[Sidecar]:
    watcher = Sidecar(_settings(install.db, tmp_path / "dynamic"))
    assert watcher.poll()
    yield watcher
    watcher.close()


def _settings(db: DokployDb, out: Path) -> Settings:
    return load_settings(source=(db.url,), out=out, mode="full", docker=False)


def owned(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob(PREFIX + "*"))}


def full_generation(db: DokployDb, out: Path) -> dict[str, bytes]:
    sync(_settings(db, out))
    return owned(out)


def assert_a_full_sync_would_write_nothing(db: DokployDb, out: Path) -> None:
    """The directory is exactly what a full sync of the same rows, into it, would write."""
    result = sync(_settings(db, out))
    assert (result.write.written, result.write.removed) == ([], [])


def incremental_syncs(sidecar: Sidecar) -> float:
    value = sidecar.metrics.registry.get_sample_value("traefik_gen_incremental_syncs_total")
    return value or 0.0


def poll_after(sidecar: Sidecar, change: Callable[[], object]) -> bool:
    """Commit `change`, poll once; whether the poll took the incremental path."""
    before = incremental_syncs(sidecar)
    change()
    assert sidecar.poll()
    return incremental_syncs(sidecar) > before


CHANGES: dict[str, Callable[[Install], object]] = {
    "a domain's port": lambda i: i.db.update("domain", i.web_domain.id, port=4000),
    "a domain's host": lambda i: i.db.update("domain", i.shop_domain.id, host="store.example.com"),
    "https switched on": lambda i: i.db.update(
        "domain", i.web_domain.id, https=True, certificateType="letsencrypt"
    ),
    "a new domain": lambda i: i.db.add_domain(i.api, "v2.api.example.com", port=8081),
    "a new application": lambda i: i.db.add_domain(
        i.db.add_application("blog"), "blog.example.com", port=2368
    ),
    "a new compose project": lambda i: i.db.add_domain(
        i.db.add_compose("wiki"), "wiki.example.com", port=3000
    ),
    "a new redirect": lambda i: i.db.add_redirect(i.web),
    "a path prefix stripped": lambda i: i.db.update(
        "domain", i.web_domain.id, path="/app", stripPath=True
    ),
    "swarm labels": lambda i: i.db.set_labels(
        i.api,
        {
            "traefik.enable": "true",
            "traefik.http.routers.extra.rule": "Host(`extra.example.com`)",
            "traefik.http.services.extra.loadbalancer.server.port": "9000",
        },
    ),
    "a renamed application": lambda i: i.db.update("application", i.api.id, appName="api-v2"),
    "a domain moved to another application": lambda i: i.db.update(
        "domain", i.web_domain.id, applicationId=i.api.id
    ),
}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_a_change_is_written_incrementally_exactly_as_a_full_generation_writes_it(
    install: Install, sidecar: Sidecar, tmp_path: Path, name: str
) -> None:
    before = owned(sidecar.settings.out)

    took_incremental = poll_after(sidecar, lambda: CHANGES[name](install))

    after = owned(sidecar.settings.out)
    assert after != before
    assert after == full_generation(install.db, tmp_path / "fresh")
    assert_a_full_sync_would_write_nothing(install.db, sidecar.settings.out)
    assert took_incremental


def test_changes_one_after_another_stay_exact_and_untouched_files_keep_their_bytes(
    install: Install, sidecar: Sidecar, tmp_path: Path
) -> None:
    out = sidecar.settings.out
    shop_file = f"{PREFIX}compose-{install.shop.id}.yml"
    shop_inode = (out / shop_file).stat().st_ino

    for port in (4001, 4002, 4003):
        change = lambda p=port: install.db.update("domain", install.web_domain.id, port=p)  # noqa: E731
        assert poll_after(sidecar, change)

    assert (out / shop_file).stat().st_ino == shop_inode
    assert b"4003" in b"".join(owned(out).values())
    assert owned(out) == full_generation(install.db, tmp_path / "fresh")


def _delete_domain(i: Install) -> None:
    i.db.delete("domain", i.shop_domain.id)


def _forward_auth(i: Install) -> None:
    i.db.add_forward_auth()


def _bad_port(i: Install) -> None:
    i.db.update("domain", i.web_domain.id, port=70000)


def _basic_auth(i: Install) -> None:
    i.db.add_security(i.web)


FULL_SYNC_CASES: dict[str, Callable[[Install], object]] = {
    "a deleted domain": _delete_domain,
    "a forward-auth settings row": _forward_auth,
    "a rejected row": _bad_port,
    "a basic-auth user": _basic_auth,
}


@pytest.mark.parametrize("name", sorted(FULL_SYNC_CASES))
def test_what_an_incremental_sync_cannot_follow_exactly_takes_the_full_sync(
    install: Install, sidecar: Sidecar, tmp_path: Path, name: str
) -> None:
    took_incremental = poll_after(sidecar, lambda: FULL_SYNC_CASES[name](install))

    assert not took_incremental
    assert_a_full_sync_would_write_nothing(install.db, sidecar.settings.out)


def test_after_a_rejected_row_every_change_is_a_full_sync_until_it_is_fixed(
    install: Install, sidecar: Sidecar, tmp_path: Path
) -> None:
    assert not poll_after(sidecar, lambda: _bad_port(install))
    assert not poll_after(
        sidecar, lambda: install.db.update("domain", install.shop_domain.id, port=81)
    )
    assert not poll_after(
        sidecar, lambda: install.db.update("domain", install.web_domain.id, port=3001)
    )

    assert poll_after(sidecar, lambda: install.db.update("domain", install.shop_domain.id, port=82))
    assert_a_full_sync_would_write_nothing(install.db, sidecar.settings.out)


def test_a_change_made_while_a_sync_reads_is_caught_by_the_next_poll(
    install: Install, sidecar: Sidecar, tmp_path: Path
) -> None:
    # A transaction that began before the sidecar's last read and commits after it: its
    # row versions carry an xid below the newer rows', which a plain "newest xmin" misses.
    with psycopg.connect(install.db.dsn) as slow:
        slow.execute(
            'UPDATE domain SET port = 5555 WHERE "domainId" = %s', (install.web_domain.id,)
        )
        install.db.update("domain", install.shop_domain.id, port=8888)
        assert sidecar.poll()
        slow.commit()

    assert sidecar.poll()

    files = owned(sidecar.settings.out)
    assert b"5555" in b"".join(files.values())
    assert files == full_generation(install.db, tmp_path / "fresh")


def test_a_compose_domain_and_an_application_domain_in_one_commit(
    install: Install, sidecar: Sidecar, tmp_path: Path
) -> None:
    def both() -> None:
        install.db.execute(
            'UPDATE domain SET port = 9100 WHERE "domainId" IN (%(a)s, %(b)s)',
            {"a": install.web_domain.id, "b": install.shop_domain.id},
        )

    assert poll_after(sidecar, both)
    assert owned(sidecar.settings.out) == full_generation(install.db, tmp_path / "fresh")


def test_a_heal_that_fails_is_retried_at_the_next_poll_until_the_file_is_back(
    install: Install, sidecar: Sidecar
) -> None:
    out = sidecar.settings.out
    name = f"{PREFIX}compose-{install.shop.id}.yml"
    written = (out / name).read_bytes()
    (out / name).unlink()
    (out / name).mkdir()  # a directory in its place: the rename back fails

    sidecar._edited({name})  # what the directory watcher reports
    sidecar.poll()
    assert (out / name).is_dir()

    (out / name).rmdir()
    assert sidecar.poll()

    assert (out / name).read_bytes() == written
