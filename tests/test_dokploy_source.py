"""Reading the Dokploy database: the snapshot, the SQL, server selection, errors, old schemas."""

from __future__ import annotations

import dataclasses
import socket

import pytest
from psycopg.errors import ReadOnlySqlTransaction

from tests.support.postgres import DokployDb, database_dsn
from traefik_gen.errors import SourceError
from traefik_gen.routes import DesiredState, Owner, OwnerKind, Tls
from traefik_gen.sources.dokploy import open_snapshot, queries, read_desired_state
from traefik_gen.sources.dokploy.queries import build_statements, describe_target, read_rows
from traefik_gen.sources.dokploy.schema import probe_schema

pytestmark = pytest.mark.postgres

# Columns that hold secrets the tool has no use for (Dokploy encrypts some, not all).
SECRET_COLUMNS = (
    "env",
    "previewEnv",
    "buildArgs",
    "buildSecrets",
    "previewBuildArgs",
    "previewBuildSecrets",
    "privateKey",
    "certificateData",
    "refreshToken",
    "registryUrl",
    "customGitSSHKeyId",
    "metricsConfig",
)
SECRET_TABLES = ("ssh-key", "certificate", "registry", "user", "auth", "admin")


def read(db: DokployDb, server: str | None = None) -> DesiredState:
    return read_desired_state(db.dsn, server=server, connect_timeout=5)


def owners(state: DesiredState, kind: OwnerKind) -> list[Owner]:
    return [owner for owner in state.owners if owner.kind is kind]


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the snapshot -------------------------------------------------------------------------


def test_snapshot_is_one_repeatable_read_read_only_transaction(dokploy_db: DokployDb) -> None:
    with open_snapshot(dokploy_db.dsn, connect_timeout=5) as conn:
        isolation = conn.execute("SHOW transaction_isolation").fetchone()
        read_only = conn.execute("SHOW transaction_read_only").fetchone()
        started = conn.execute("SELECT now()").fetchone()
        later = conn.execute("SELECT now()").fetchone()

    assert isolation == ("repeatable read",)
    assert read_only == ("on",)
    # now() is the transaction's start time: equal across statements only in one transaction.
    assert started is not None
    assert started == later


def test_a_write_through_the_snapshot_fails(dokploy_db: DokployDb) -> None:
    app = dokploy_db.add_application()

    with (
        pytest.raises(ReadOnlySqlTransaction),
        open_snapshot(dokploy_db.dsn, connect_timeout=5) as conn,
    ):
        conn.execute('DELETE FROM application WHERE "applicationId" = %s', (app.id,))

    assert dokploy_db.execute("SELECT count(*) FROM application") == [(1,)]


def test_snapshot_does_not_see_rows_committed_after_it_began(dokploy_db: DokployDb) -> None:
    first = dokploy_db.add_application()

    with open_snapshot(dokploy_db.dsn, connect_timeout=5) as conn:
        schema = probe_schema(conn)
        before = read_rows(conn, schema, None)
        late = dokploy_db.add_application()
        dokploy_db.add_domain(late)
        again = read_rows(conn, schema, None)

    assert [row.application_id for row in before.applications] == [first.id]
    assert again == before
    assert {app.id for app in owners(read(dokploy_db), OwnerKind.APPLICATION)} == {
        first.id,
        late.id,
    }


# --- the SQL ------------------------------------------------------------------------------


def _statement_texts(db: DokployDb) -> list[str]:
    with open_snapshot(db.dsn, connect_timeout=5) as conn:
        schema = probe_schema(conn)
        texts: list[str] = []
        for local in (True, False):
            statements = build_statements(schema, local=local)
            texts.extend(statement.as_string(conn) for statement in statements.all())
    return texts


@pytest.mark.parametrize("fixture", ["dokploy_db", "dokploy_db_v0_24", "dokploy_db_v0_13"])
def test_statements_never_name_a_secret_column_or_table(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    db: DokployDb = request.getfixturevalue(fixture)

    texts = _statement_texts(db)

    assert texts
    for text in texts:
        assert "*" not in text, text
        for column in SECRET_COLUMNS:
            assert f'"{column}"' not in text, text
        for table in SECRET_TABLES:
            assert f'FROM "{table}"' not in text and f'JOIN "{table}"' not in text, text


def test_only_the_security_statement_reads_a_password(dokploy_db: DokployDb) -> None:
    with open_snapshot(dokploy_db.dsn, connect_timeout=5) as conn:
        statements = build_statements(probe_schema(conn), local=True)
        with_password = [
            statement.as_string(conn)
            for statement in statements.all()
            if '"password"' in statement.as_string(conn)
        ]

    assert len(with_password) == 1
    assert 'FROM "security"' in with_password[0]
    assert '"s"."password"' in with_password[0]


def test_enums_and_json_are_read_as_text(dokploy_db: DokployDb) -> None:
    with open_snapshot(dokploy_db.dsn, connect_timeout=5) as conn:
        statements = build_statements(probe_schema(conn), local=True)
        assert statements.applications is not None
        domains = statements.domains.as_string(conn)
        applications = statements.applications.as_string(conn)

    assert '"d"."certificateType"::text' in domains
    assert '"d"."domainType"::text' in domains
    assert '"a"."labelsSwarm"::text' in applications


# --- server selection ---------------------------------------------------------------------


def test_local_read_returns_only_parents_without_a_server(dokploy_db: DokployDb) -> None:
    server = dokploy_db.add_server()
    local_app = dokploy_db.add_application()
    remote_app = dokploy_db.add_application(serverId=server)
    local_compose = dokploy_db.add_compose()
    dokploy_db.add_compose(serverId=server)
    dokploy_db.add_preview(remote_app)
    dokploy_db.set_labels(remote_app, {"traefik.enable": "true"})

    state = read(dokploy_db)

    assert [(o.kind, o.id) for o in state.owners] == [
        (OwnerKind.APPLICATION, local_app.id),
        (OwnerKind.COMPOSE, local_compose.id),
    ]


def test_server_read_returns_every_owner_of_that_server(dokploy_db: DokployDb) -> None:
    server = dokploy_db.add_server()
    other = dokploy_db.add_server()
    dokploy_db.add_application()
    dokploy_db.add_application(serverId=other)
    app = dokploy_db.add_application(serverId=server)
    dokploy_db.add_domain(app, host="remote.example.com")
    dokploy_db.add_security(app, "ops")
    dokploy_db.add_redirect(app)
    dokploy_db.set_labels(app, {"traefik.enable": "true"})
    preview = dokploy_db.add_preview(app)
    dokploy_db.add_domain(preview, host="pr.example.com")
    compose = dokploy_db.add_compose(serverId=server)
    dokploy_db.add_domain(compose, host="compose.example.com")

    state = read(dokploy_db, server=server)

    assert {(o.kind, o.id) for o in state.owners} == {
        (OwnerKind.APPLICATION, app.id),
        (OwnerKind.PREVIEW, preview.id),
        (OwnerKind.COMPOSE, compose.id),
        (OwnerKind.LABELS, app.id),
    }
    hosts = sorted(route.host for owner in state.owners for route in owner.routes)
    assert hosts == ["compose.example.com", "pr.example.com", "remote.example.com"]
    (app_owner,) = owners(state, OwnerKind.APPLICATION)
    assert [u.username for u in app_owner.users] == ["ops"]
    assert len(app_owner.redirects) == 1


def test_build_server_is_a_source_error(dokploy_db: DokployDb) -> None:
    server = dokploy_db.add_server(serverType="build")

    with pytest.raises(SourceError, match="build server"):
        read(dokploy_db, server=server)


def test_unknown_server_is_a_source_error(dokploy_db: DokployDb) -> None:
    dokploy_db.add_server()

    with pytest.raises(SourceError, match="no server with id 'nope'"):
        read(dokploy_db, server="nope")


def test_disabled_domain_gets_no_route(dokploy_db: DokployDb) -> None:
    app = dokploy_db.add_application()
    dokploy_db.add_domain(app, host="off.example.com", enabled=False)
    dokploy_db.add_domain(app, host="on.example.com")

    state = read(dokploy_db)

    (owner,) = owners(state, OwnerKind.APPLICATION)
    assert [route.host for route in owner.routes] == ["on.example.com"]
    assert state.rejections == ()


# --- connection and schema errors ---------------------------------------------------------

_PASSWORD = "Hunter2-Very-Secret"


def test_unreachable_server_error_names_host_and_database_but_not_the_password() -> None:
    port = closed_port()
    conninfo = f"postgresql://dokploy:{_PASSWORD}@127.0.0.1:{port}/dokploy"

    with pytest.raises(SourceError) as caught:
        read_desired_state(conninfo, server=None, password=_PASSWORD, connect_timeout=2)

    message = str(caught.value)
    assert f"'127.0.0.1:{port}'" in message
    assert "'dokploy'" in message
    assert _PASSWORD not in message
    assert caught.value.__cause__ is None or _PASSWORD not in str(caught.value.__cause__)


def test_missing_database_is_a_source_error(pg_admin_dsn: str) -> None:
    dsn = database_dsn(pg_admin_dsn, "traefik_gen_test_does_not_exist")

    with pytest.raises(SourceError, match="traefik_gen_test_does_not_exist"):
        read_desired_state(dsn, server=None, password=_PASSWORD, connect_timeout=5)


def test_unparsable_connection_string_is_a_source_error_quoting_none_of_it() -> None:
    conninfo = f"host=127.0.0.1 password=abc {_PASSWORD}"

    with pytest.raises(SourceError, match="connection string is not valid") as caught:
        read_desired_state(conninfo, server=None)

    assert _PASSWORD not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_target_description_never_holds_the_password() -> None:
    described = describe_target(f"postgresql://dokploy:{_PASSWORD}@db.internal:5433/dokploy")

    assert described == "database 'dokploy' on 'db.internal:5433'"


def test_database_without_a_required_table_is_a_source_error(dokploy_db: DokployDb) -> None:
    dokploy_db.execute("DROP TABLE security")

    with pytest.raises(SourceError, match="no dokploy table 'security'"):
        read(dokploy_db)


def test_failing_query_is_a_source_error_without_the_password(dokploy_db: DokployDb) -> None:
    # A view that fails when read stands in for any error the server raises mid-read.
    dokploy_db.execute("ALTER TABLE domain RENAME TO domain_rows")
    dokploy_db.execute("CREATE VIEW domain AS SELECT * FROM domain_rows WHERE 1 / 0 = 1")

    with pytest.raises(SourceError, match="could not read the dokploy database") as caught:
        read_desired_state(dokploy_db.dsn, server=None, password=_PASSWORD, connect_timeout=5)

    assert "division by zero" in str(caught.value)
    assert _PASSWORD not in str(caught.value)


# --- older installs -----------------------------------------------------------------------


def test_v0_24_install_uses_dokploy_defaults_for_missing_columns(
    dokploy_db_v0_24: DokployDb,
) -> None:
    db = dokploy_db_v0_24
    app = db.add_application()
    domain = db.add_domain(
        app,
        https=True,
        certificateType="custom",
        customCertResolver="res",
        path="/api",
        stripPath=True,
        internalPath="/v1",
    )
    preview = db.add_preview(app)
    db.add_domain(preview, host="pr.example.com")

    state = read(db)

    (owner,) = owners(state, OwnerKind.APPLICATION)
    (route,) = owner.routes
    assert route.key == str(domain.key)
    assert (route.entrypoint, route.middlewares, route.forward_auth) == (None, (), False)
    assert (route.strip_prefix, route.add_prefix) == (True, "/v1")
    assert route.tls == Tls(cert_resolver="res")
    assert owner.forward_auth is None
    assert [o.id for o in owners(state, OwnerKind.PREVIEW)] == [preview.id]


def test_v0_24_server_without_server_type_is_a_deploy_server(
    dokploy_db_v0_24: DokployDb,
) -> None:
    server = dokploy_db_v0_24.add_server()
    app = dokploy_db_v0_24.add_application(serverId=server)

    state = read(dokploy_db_v0_24, server=server)

    assert [o.id for o in owners(state, OwnerKind.APPLICATION)] == [app.id]


def test_v0_13_install_without_previews_or_path_columns_still_maps(
    dokploy_db_v0_13: DokployDb,
) -> None:
    db = dokploy_db_v0_13
    app = db.add_application()
    db.add_domain(app, host="old.example.com", https=True, certificateType="letsencrypt")
    db.add_security(app, "legacy")
    compose = db.add_compose(composeType="stack")
    db.add_domain(compose, host="stack.example.com", serviceName="api")

    state = read(db)

    assert [o.kind for o in state.owners] == [OwnerKind.APPLICATION, OwnerKind.COMPOSE]
    app_owner, compose_owner = state.owners
    (route,) = app_owner.routes
    assert (route.host, route.tls, route.add_prefix, route.strip_prefix) == (
        "old.example.com",
        Tls(cert_resolver="letsencrypt"),
        None,
        False,
    )
    assert [u.username for u in app_owner.users] == ["legacy"]
    assert compose_owner.routes[0].backend.host == f"{compose.app_name}_api"
    assert state.rejections == ()


def test_install_without_server_table_is_all_local(dokploy_db_v0_13: DokployDb) -> None:
    db = dokploy_db_v0_13
    db.execute("DROP TABLE server CASCADE")
    db.execute('ALTER TABLE application DROP COLUMN "serverId"')
    db.execute('ALTER TABLE compose DROP COLUMN "serverId"')
    app = db.add_application()

    assert [o.id for o in read(db).owners] == [app.id]
    with pytest.raises(SourceError, match="no server with id 'remote'"):
        read(db, server="remote")


def test_dropped_column_is_read_as_its_dokploy_default(dokploy_db: DokployDb) -> None:
    dokploy_db.execute('ALTER TABLE domain DROP COLUMN "middlewares"')
    app = dokploy_db.add_application()
    dokploy_db.add_domain(app)

    (owner,) = owners(read(dokploy_db), OwnerKind.APPLICATION)

    assert owner.routes[0].middlewares == ()


@pytest.mark.parametrize(
    ("columns", "row_type"),
    [
        (queries._APPLICATION, queries.ApplicationRow),
        (queries._PREVIEW, queries.PreviewRow),
        (queries._COMPOSE, queries.ComposeRow),
        (queries._DOMAIN, queries.DomainRow),
        (queries._REDIRECT, queries.RedirectRow),
        (queries._SECURITY, queries.SecurityRow),
        (queries._FORWARD_AUTH, queries.ForwardAuthRow),
        (queries._SERVER, queries._ServerRow),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_rows_are_built_from_columns_selected_in_the_order_of_their_fields(
    columns: tuple[queries._Column, ...], row_type: type
) -> None:
    # Rows are built positionally from plain tuples (the driver's fast path).
    assert [column.alias for column in columns] == [f.name for f in dataclasses.fields(row_type)]
