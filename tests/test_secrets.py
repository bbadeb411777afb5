"""Secrets never leak: not into logs (text or json), errors, --dry-run, --diff or files.

Each leak path has its own test: a DSN password (in --source and in DATABASE_URL), the
contents of POSTGRES_PASSWORD_FILE, the driver's connection errors, settings validation
errors, basic-auth plaintext passwords, and basicauth.users hashes in labelsSwarm.

Covered elsewhere, not repeated here: the session is read-only
(tests/test_dokploy_source.py::test_a_write_through_the_snapshot_fails) and the image runs
as a non-root user (tests/test_dockerfile.py::test_image_runs_as_a_fixed_non_root_user).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fault_tools import CONFIG_SUFFIXES, PREFIX, UPSTREAM, run_cli
from tests.support.own_postgres import ClusterFactory, OwnPostgres
from tests.support.postgres import DokployDb
from tests.support.sidecar import SidecarFactory
from traefik_gen.errors import SettingsError
from traefik_gen.settings import Settings, load_settings

PLAINTEXT = "plain-" + "Zq7Kx2"
LABEL_APR1 = "$apr1$tgsalt12$T9.GsU7yUgLGRvmXDbWIb."
LABEL_BCRYPT = "$2b$04$1OZdnNC6.4v0M5C7j9CnJ.K6REcKAVaVg9SDCA0cC07RJlI.BRYO."
# Every variant of a run that prints something: the log formats, debug, the previews.
# Every way a run prints: both log formats with debug, and the two previews (which come
# first, so that they still have a change to show). Without --debug is a subset of with.
VARIANTS = [
    ("--dry-run", "--debug"),
    ("--diff", "--debug"),
    ("--log-format", "json", "--debug"),
    ("--debug",),
]
# A password hash of any scheme traefik-gen writes or passes through (bcrypt, apr1).
HASH = re.compile(r"\$(?:2[aby]|apr1)\$")


def secret() -> str:
    return "pw-" + os.urandom(8).hex()


def outputs(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """(variant, stdout + stderr) of ``generate <args>`` in every printing variant."""
    for variant in VARIANTS:
        result = run_cli("generate", *args, *variant, env=env)
        yield " ".join(variant), result.stdout + result.stderr


def assert_absent(needles: list[str], *args: str, env: dict[str, str] | None = None) -> None:
    for variant, text in outputs(*args, env=env):
        for needle in needles:
            assert needle not in text, (variant, needle, text)
        assert HASH.search(text) is None, (variant, text)


def url_with_password(cluster: OwnPostgres, password: str) -> str:
    return f"postgresql://dokploy:{password}@{cluster.host}:{cluster.port}/dokploy"


@pytest.fixture
def password_cluster(own_postgres_factory: ClusterFactory) -> OwnPostgres:
    cluster = own_postgres_factory(password=secret())
    compose = cluster.db.add_compose("shop")
    cluster.db.add_domain(compose, "shop.secrets.test", port=8080)
    return cluster


# --- database passwords ---------------------------------------------------------------------


def test_a_dsn_password_in_source_appears_in_no_output(
    password_cluster: OwnPostgres, tmp_path: Path
) -> None:
    assert password_cluster.password is not None
    url = url_with_password(password_cluster, password_cluster.password)
    args = ("--source", url, "--out", str(tmp_path / "out"), "--upstream", UPSTREAM)

    first = run_cli("generate", *args)

    assert first.returncode == 0, first.stderr
    assert "visible to every local user" in first.stderr
    assert_absent([password_cluster.password], *args)


def test_a_dsn_password_in_database_url_appears_in_no_output(
    password_cluster: OwnPostgres, tmp_path: Path
) -> None:
    assert password_cluster.password is not None
    env = {"DATABASE_URL": url_with_password(password_cluster, password_cluster.password)}
    args = ("--out", str(tmp_path / "out"), "--upstream", UPSTREAM)

    first = run_cli("generate", *args, env=env)

    assert first.returncode == 0, first.stderr
    assert_absent([password_cluster.password], *args, env=env)


def test_a_wrong_dsn_password_appears_in_no_connection_error(
    password_cluster: OwnPostgres, tmp_path: Path
) -> None:
    wrong = secret()
    url = url_with_password(password_cluster, wrong)
    args = ("--source", url, "--out", str(tmp_path / "out"))

    failed = run_cli("generate", *args)

    assert failed.returncode == 1
    assert "password authentication failed" in failed.stderr
    assert_absent([wrong], *args)


def test_the_password_file_contents_appear_in_no_output(
    password_cluster: OwnPostgres, tmp_path: Path
) -> None:
    assert password_cluster.password is not None
    right, wrong = tmp_path / "right", tmp_path / "wrong"
    right.write_text(password_cluster.password + "\n")
    wrong_password = secret()
    wrong.write_text(wrong_password)
    args = ("--source", password_cluster.url, "--out", str(tmp_path / "out"))
    needles = [password_cluster.password, wrong_password]

    ok = run_cli(
        "generate", *args, "--upstream", UPSTREAM, env={"POSTGRES_PASSWORD_FILE": str(right)}
    )

    assert ok.returncode == 0, ok.stderr
    assert_absent(needles, *args, env={"POSTGRES_PASSWORD_FILE": str(right)})
    assert_absent(needles, *args, env={"POSTGRES_PASSWORD_FILE": str(wrong)})


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("postgresql://dokploy:{pw}%ZZ@127.0.0.1:{port}/dokploy", id="bad-escape"),
        pytest.param("postgresql://dokploy:{pw}@127.0.0.1:notaport/dokploy", id="bad-port"),
        pytest.param(
            "postgresql://dokploy:{pw}@127.0.0.1:{port}/dokploy?sslmode=bogus", id="bad-sslmode"
        ),
        pytest.param(
            "postgresql://dokploy:{pw}@127.0.0.1:{port}/dokploy?nosuchoption=1", id="bad-option"
        ),
    ],
)
def test_a_malformed_dsn_is_refused_without_quoting_its_password(
    template: str, tmp_path: Path, own_postgres: OwnPostgres
) -> None:
    password = secret()
    url = template.format(pw=password, port=own_postgres.port)

    failed = run_cli("generate", "--source", url, "--out", str(tmp_path / "out"))

    assert failed.returncode in (1, 2), failed.stderr
    assert "Traceback" not in failed.stderr
    assert failed.stderr.splitlines()[-1].startswith("traefik-gen: "), failed.stderr
    assert_absent([password], "--source", url, "--out", str(tmp_path / "out"))


# --- settings validation -----------------------------------------------------------------------

MARKER = "MARKER-" + "c0ffee"
# Plain strings any value satisfies: no validation error exists to leak through.
_FREE_TEXT = {
    "database_url",
    "db_password",
    "db_password_file",
    "postgres_user",
    "postgres_db",
    "postgres_host",
    "out",
    "server",
    "entrypoint_web",
    "entrypoint_websecure",
    "listen",
    "docker_host",
    "source",
}
VALIDATED = sorted(set(Settings.model_fields) - _FREE_TEXT)


# Braces make it a broken upstream template, spaces break the prefixes, and every number
# or choice refuses it outright.
BAD = f"{{{MARKER}}} {MARKER}"


@pytest.mark.parametrize("field", VALIDATED)
def test_a_bad_option_value_is_refused_without_echoing_it(field: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(**{field: BAD})

    assert field in str(refused.value)
    assert MARKER not in str(refused.value)


@pytest.mark.parametrize("field", VALIDATED)
def test_a_bad_environment_value_is_refused_without_echoing_it(
    field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"TRAEFIK_GEN_{field.upper()}", BAD)

    with pytest.raises(SettingsError) as refused:
        load_settings()

    assert MARKER not in str(refused.value)


@pytest.mark.parametrize(
    "name", ["TRAEFIK_GEN_POSTGRES_PORT", "TRAEFIK_GEN_UPSTREAM", "TRAEFIK_GEN_MODE"]
)
def test_the_cli_refuses_a_bad_setting_with_exit_2_without_echoing_it(
    name: str, tmp_path: Path
) -> None:
    failed = run_cli("generate", "--out", str(tmp_path), env={name: BAD})

    assert failed.returncode == 2, failed.stderr
    assert MARKER not in failed.stdout + failed.stderr


# --- basic auth -----------------------------------------------------------------------------


@pytest.fixture
def guarded_db(dokploy_db: DokployDb) -> DokployDb:
    app = dokploy_db.add_application("guarded")
    dokploy_db.add_domain(app, "guarded.secrets.test", port=8080)
    dokploy_db.add_security(app, "alice", PLAINTEXT)
    return dokploy_db


def written(out: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file())


def test_a_basic_auth_plaintext_password_appears_in_no_output_and_no_file(
    guarded_db: DokployDb, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ("--source", guarded_db.url, "--out", str(out), "--upstream", UPSTREAM, "--mode", "full")

    first = run_cli("generate", *args)

    assert first.returncode == 0, first.stderr
    assert b"alice:$2" in written(out)
    assert PLAINTEXT.encode() not in written(out)
    assert_absent([PLAINTEXT], *args)


def test_a_basic_auth_hash_is_masked_in_dry_run_diff_and_logs(
    guarded_db: DokployDb, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ("--source", guarded_db.url, "--out", str(out), "--upstream", UPSTREAM, "--mode", "full")
    preview = run_cli("generate", *args, "--dry-run")
    assert "alice:" in preview.stdout, preview.stdout
    assert run_cli("generate", *args).returncode == 0
    hashes = [line.split("alice:", 1)[1].strip("'\" ") for line in written_lines(out)]
    assert hashes and all(h.startswith("$2") for h in hashes)
    guarded_db.execute("""UPDATE security SET password = 'changed-password'""")

    assert_absent(hashes, *args)


def written_lines(out: Path) -> list[str]:
    return [
        line
        for p in sorted(out.glob(PREFIX + "*"))
        for line in p.read_text().splitlines()
        if "alice:" in line
    ]


@pytest.fixture
def labelled_db(dokploy_db: DokployDb) -> DokployDb:
    app = dokploy_db.add_application("labelled")
    dokploy_db.set_labels(
        app,
        {
            "traefik.enable": "true",
            "traefik.http.routers.api.rule": "Host(`api.secrets.test`)",
            "traefik.http.routers.api.middlewares": "auth",
            "traefik.http.middlewares.auth.basicauth.users": (
                f"ann:{LABEL_APR1},bob:{LABEL_BCRYPT}"
            ),
            "traefik.http.services.api.loadbalancer.server.port": "8080",
        },
    )
    return dokploy_db


def test_basicauth_users_label_hashes_appear_in_no_output(
    labelled_db: DokployDb, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ("--source", labelled_db.url, "--out", str(out), "--upstream", UPSTREAM)

    preview = run_cli("generate", *args, "--dry-run")

    assert "ann:" in preview.stdout and "bob:" in preview.stdout, preview.stdout
    assert_absent([LABEL_APR1, LABEL_BCRYPT], *args)
    assert run_cli("generate", *args).returncode == 0
    assert LABEL_APR1.encode() in written(out) and LABEL_BCRYPT.encode() in written(out)


def test_a_rejected_label_set_does_not_quote_its_basicauth_users(
    labelled_db: DokployDb, tmp_path: Path
) -> None:
    (app_id,) = labelled_db.execute("""SELECT "applicationId" FROM application""")[0]
    broken = labelled_db.execute(
        """SELECT "labelsSwarm"::text FROM application WHERE "applicationId" = %(id)s""",
        {"id": app_id},
    )[0][0]
    labels = json.loads(broken)
    labels["traefik.http.middlewares.auth.basicauth.realm"] = "{{ broken"
    labels["traefik.http.middlewares.auth.basicauth.bogus"] = "x"
    labelled_db.execute(
        """UPDATE application SET "labelsSwarm" = %(labels)s::json""",
        {"labels": json.dumps(labels)},
    )
    args = ("--source", labelled_db.url, "--out", str(tmp_path / "out"), "--upstream", UPSTREAM)

    rejected = run_cli("generate", *args)

    assert "rejected" in rejected.stderr, rejected.stderr
    assert_absent([LABEL_APR1, LABEL_BCRYPT], *args)


# --- the sidecar's log ------------------------------------------------------------------------


def test_the_sidecar_logs_no_password_in_text_or_json(
    own_postgres_factory: ClusterFactory, tmp_path: Path, sidecar_factory: SidecarFactory
) -> None:
    cluster = own_postgres_factory(password=secret())
    assert cluster.password is not None
    app = cluster.db.add_application("guarded")
    cluster.db.add_domain(app, "guarded.secrets.test", port=8080)
    cluster.db.add_security(app, "alice", PLAINTEXT)
    env = {"TRAEFIK_GEN_SOURCE": url_with_password(cluster, cluster.password)}
    for log_format in ("text", "json"):
        out = tmp_path / log_format
        sidecar = sidecar_factory(
            "--out", str(out), "--upstream", UPSTREAM, "--mode", "full", "--no-docker",
            "--poll-interval", "0.2", "--log-format", log_format, "--debug", env=env,
        )  # fmt: skip
        sidecar.wait_ready()
        sidecar.terminate()

        log = sidecar.log_text()
        assert "wrote" in log
        for needle in (cluster.password, PLAINTEXT, "$2b$", "$2y$", "$2a$"):
            assert needle not in log, (log_format, needle)


# --- modes and names of what is written ---------------------------------------------------------


def test_files_are_0644_and_nothing_private_is_named_like_config(
    guarded_db: DokployDb, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    done = run_cli(
        "generate", "--source", guarded_db.url, "--out", str(out), "--upstream", UPSTREAM,
        "--mode", "full",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    files = list(out.glob(PREFIX + "*"))
    assert files
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o644}
    private = [p for p in (out / ".traefik-gen").rglob("*")]
    assert {"lock", "bcrypt-cache"} <= {p.name for p in private}
    assert [p.name for p in private if p.name.lower().endswith(CONFIG_SUFFIXES)] == []
    cache = out / ".traefik-gen" / "bcrypt-cache"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert PLAINTEXT.encode() not in cache.read_bytes()
