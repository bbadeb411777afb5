"""Settings: TRAEFIK_GEN_ variables, Dokploy's own variables as aliases, options on top."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from traefik_gen.errors import SettingsError
from traefik_gen.settings import Mode, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL",
        "POSTGRES_USER",
        "POSTGRES_DB",
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "POSTGRES_PASSWORD_FILE",
        "PGPASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_point_at_dokploys_database_and_directory() -> None:
    settings = load_settings()

    assert settings.mode is Mode.COMPLEMENT
    assert settings.out == Path("/etc/dokploy/traefik/dynamic")
    spec = settings.sources()[0]
    assert settings.conninfo(spec) == "host=dokploy-postgres port=5432 dbname=dokploy user=dokploy"


def test_dokploys_variables_are_aliases(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-the-secret\n")
    monkeypatch.setenv("POSTGRES_HOST", "db.internal")
    monkeypatch.setenv("POSTGRES_PORT", "5433")
    monkeypatch.setenv("POSTGRES_PASSWORD_FILE", str(tmp_path / "pw"))

    settings = load_settings()

    assert "host=db.internal port=5433" in settings.conninfo(settings.sources()[0])
    assert settings.password() == "from-the-secret"


def test_the_prefixed_variable_wins_over_dokploys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://a@one/db")
    monkeypatch.setenv("TRAEFIK_GEN_DATABASE_URL", "postgresql://b@two/db")

    settings = load_settings()

    assert settings.conninfo(settings.sources()[0]) == "postgresql://b@two/db"


def test_options_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAEFIK_GEN_MODE", "full")

    assert load_settings(mode="complement").mode is Mode.COMPLEMENT


def test_several_sources_come_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAEFIK_GEN_SOURCE", "routes.yml, postgresql://u@h/db")

    assert [s.is_database for s in load_settings().sources()] == [False, True]


def test_a_password_in_a_command_line_url_draws_a_warning_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        load_settings(source=("postgresql://user:hunter2@db/dokploy",))

    assert "visible to every local user" in caplog.text
    assert "hunter2" not in caplog.text


def test_a_bad_setting_is_a_settings_error_that_names_it() -> None:
    with pytest.raises(SettingsError, match="setting 'format'"):
        load_settings(format="json")


def test_an_upstream_template_with_unknown_fields_is_refused() -> None:
    with pytest.raises(SettingsError, match="upstream"):
        load_settings(upstream="http://{hostname}:{port}")


def test_a_missing_password_file_names_the_file(tmp_path: Path) -> None:
    settings = load_settings(db_password_file=tmp_path / "absent")

    with pytest.raises(SettingsError, match="absent"):
        settings.password()


@pytest.mark.parametrize("text", ["POSTGRESQL://u:pw@db/x", " postgresql://u:pw@db/x"])
def test_a_capitalised_or_padded_url_is_still_a_database(text: str) -> None:
    (spec,) = load_settings(source=(text,)).sources()

    assert spec.is_database
    assert "pw" not in spec.describe()


def test_a_url_with_a_bad_port_is_described_without_crashing() -> None:
    (spec,) = load_settings(source=("postgresql://u:pw@db:99999/x",)).sources()

    assert spec.describe() == "postgresql://u@db:<invalid port>/x"


def test_a_password_in_the_query_also_draws_the_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        load_settings(source=("postgresql://u@db/x?password=hunter2",))

    assert "visible to every local user" in caplog.text
    assert "hunter2" not in caplog.text


@pytest.mark.parametrize("upstream", ["{host}", "http://[{host}:{port}", "{host}:{port}"])
def test_an_upstream_that_gives_no_url_is_refused(upstream: str) -> None:
    with pytest.raises(SettingsError, match="upstream"):
        load_settings(upstream=upstream)


def test_an_entrypoint_name_must_be_plain() -> None:
    with pytest.raises(SettingsError, match="entrypoint_web"):
        load_settings(entrypoint_web="we b{{x}}")


def test_a_relative_out_becomes_absolute() -> None:
    assert load_settings(out=Path("dynamic")).out.is_absolute()
