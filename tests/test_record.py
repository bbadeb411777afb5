"""A one-shot rerun over unchanged sources, settings and directory replays the last run.

The replay must be indistinguishable from a full run that finds nothing to do: the same
routers, rejections and exit status, nothing written. Anything that could change the
output (a row, a setting, an owned or foreign file, the hash cache) makes it a full run.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.postgres import DokployDb
from traefik_gen.record import record_path
from traefik_gen.routes import Owner, Rejection
from traefik_gen.settings import Settings, load_settings
from traefik_gen.sources.dokploy.mapping import iter_owners
from traefik_gen.sources.dokploy.queries import SourceRows
from traefik_gen.sync import SyncResult, sync
from traefik_gen.writer import apply as writer_apply

PASSWORD = "record-test-s3cret"


@pytest.fixture
def db(dokploy_db: DokployDb) -> DokployDb:
    web = dokploy_db.add_application("web")
    dokploy_db.add_domain(web, "web.example.com", port=3000)
    dokploy_db.add_security(web, "alice", PASSWORD)
    shop = dokploy_db.add_compose("shop")
    dokploy_db.add_domain(shop, "shop.example.com", port=80)
    return dokploy_db


def settings(db: DokployDb, out: Path, **extra: object) -> Settings:
    return load_settings(source=(db.url,), out=out, mode="full", docker=False, **extra)


class MappingSpy:
    """Counts how often the rows are mapped: a replay maps nothing."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0

        def counting(rows: SourceRows, rejections: list[Rejection]) -> Iterator[Owner]:
            self.calls += 1
            return iter_owners(rows, rejections)

        monkeypatch.setattr("traefik_gen.sources.iter_owners", counting)


def outcome(result: SyncResult) -> tuple[object, ...]:
    plan = result.plan
    lines = [rejection.line() for rejection in plan.rejections]
    return plan.routers, lines, plan.notices, result.write.written, result.write.removed


def test_an_unchanged_rerun_maps_nothing_writes_nothing_and_reports_the_same(
    db: DokployDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.add_domain(db.add_application("broken"), "bad.example.com", port=70000)
    out = tmp_path / "dynamic"
    first = sync(settings(db, out))
    full = sync(settings(db, out), dry_run=True)
    spy = MappingSpy(monkeypatch)

    again = sync(settings(db, out))

    assert spy.calls == 0
    assert again.write.written == again.write.removed == []
    assert sorted(again.write.unchanged) == sorted(first.files)
    assert outcome(again) == outcome(full)
    assert again.plan.rejections and again.plan.routers == first.plan.routers


CHANGES: dict[str, Callable[[DokployDb, Path], object]] = {
    "a row": lambda db, out: db.execute(
        "UPDATE domain SET port = 3001 WHERE host = %(h)s", {"h": "web.example.com"}
    ),
    "an owned file edited in place, same size": lambda db, out: _edit_same_size(out),
    "an owned file removed": lambda db, out: _owned(out)[0].unlink(),
    "a foreign file added": lambda db, out: (out / "mine.yml").write_text(
        "http:\n  middlewares:\n    mine:\n      headers: {}\n"
    ),
    "the hash cache removed": lambda db, out: (out / ".traefik-gen" / "bcrypt-cache").unlink(),
}


def _owned(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("zz-traefik-gen-*") if "generation" not in p.name)


def _edit_same_size(out: Path) -> None:
    path = _owned(out)[0]
    content = path.read_bytes()
    path.write_bytes(content.replace(b"# ", b"#!", 1))
    assert len(path.read_bytes()) == len(content)


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_anything_that_could_change_the_output_makes_a_full_run(
    db: DokployDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    out = tmp_path / "dynamic"
    sync(settings(db, out))
    CHANGES[name](db, out)
    spy = MappingSpy(monkeypatch)

    sync(settings(db, out))

    assert spy.calls == 1
    fixpoint = sync(settings(db, out), dry_run=True)
    assert fixpoint.write.written == fixpoint.write.removed == []


def test_a_changed_setting_makes_a_full_run(
    db: DokployDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "dynamic"
    sync(settings(db, out))
    spy = MappingSpy(monkeypatch)

    result = sync(settings(db, out, entrypoint_web="http"))

    assert spy.calls == 1
    assert result.write.written


def test_the_record_is_private_and_holds_no_password(db: DokployDb, tmp_path: Path) -> None:
    out = tmp_path / "dynamic"
    sync(settings(db, out))

    path = record_path(out)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PASSWORD.encode() not in path.read_bytes()
    assert "alice" not in json.loads(path.read_bytes())["inputs"]


@pytest.mark.parametrize("damage", [b"", b"{not json", b'{"version": 1}', b"[]"])
def test_a_damaged_record_costs_one_full_run_and_nothing_else(
    db: DokployDb,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    damage: bytes,
) -> None:
    out = tmp_path / "dynamic"
    sync(settings(db, out))
    record_path(out).write_bytes(damage)
    spy = MappingSpy(monkeypatch)

    result = sync(settings(db, out))

    assert spy.calls == 1
    assert result.write.written == result.write.removed == []
    assert PASSWORD not in caplog.text


def test_dry_runs_and_diffs_never_replay(
    db: DokployDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "dynamic"
    sync(settings(db, out))
    spy = MappingSpy(monkeypatch)

    sync(settings(db, out), dry_run=True)
    sync(settings(db, out), diff=True)

    assert spy.calls == 2


def test_the_command_exits_with_the_same_status_and_lines_when_it_replays(
    db: DokployDb, tmp_path: Path
) -> None:
    db.add_domain(db.add_application("broken"), "bad.example.com", port=70000)
    out = tmp_path / "dynamic"
    command = [sys.executable, "-m", "traefik_gen", "generate", "--source", db.url]
    command += ["--out", str(out), "--mode", "full", "--log-format", "json", "--strict"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRAEFIK_GEN_")}

    runs = [
        subprocess.run(command, capture_output=True, text=True, env=environment, timeout=60)
        for _ in range(2)
    ]

    assert [run.returncode for run in runs] == [3, 3]
    warnings = [
        [json.loads(line)["message"] for line in run.stderr.splitlines() if "rejected" in line]
        for run in runs
    ]
    assert warnings[0] and warnings[0][0] == warnings[1][0]
    assert "wrote 0 files" in runs[1].stderr


def test_a_run_killed_mid_write_is_not_replayed_so_the_next_run_cleans_up(
    db: DokployDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "dynamic"
    sync(settings(db, out))
    leftover = out / ".traefik-gen" / "zz-traefik-gen-app-x.yml.staged"
    leftover.write_bytes(b"half a file")
    spy = MappingSpy(monkeypatch)

    sync(settings(db, out))

    assert spy.calls == 1
    assert not leftover.exists()


@pytest.mark.parametrize("while_writing", ["a foreign file added", "a written file replaced"])
def test_a_run_during_which_someone_else_changed_the_directory_keeps_no_record(
    db: DokployDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, while_writing: str
) -> None:
    out = tmp_path / "dynamic"
    real_apply = writer_apply

    def apply_and_meddle(*args: Any, **kwargs: Any) -> Any:
        result = real_apply(*args, **kwargs)
        if while_writing == "a foreign file added":
            (out / "late.yml").write_text("http:\n  middlewares:\n    late:\n      headers: {}\n")
        else:
            _owned(out)[0].write_text("# generated by traefik-gen; do not edit\nhttp: {}\n")
        return result

    monkeypatch.setattr("traefik_gen.sync.apply", apply_and_meddle)
    sync(settings(db, out))
    monkeypatch.setattr("traefik_gen.sync.apply", real_apply)
    spy = MappingSpy(monkeypatch)

    sync(settings(db, out))

    assert spy.calls == 1
    fixpoint = sync(settings(db, out), dry_run=True)
    assert fixpoint.write.written == fixpoint.write.removed == []
