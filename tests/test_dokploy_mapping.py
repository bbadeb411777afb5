"""Dokploy v0.30's meaning of its rows, read back from a real database through the source."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.postgres import App, DokployDb
from traefik_gen.routes import DesiredState, Owner, OwnerKind, Rejection, Route, Tls
from traefik_gen.sources.dokploy import read_desired_state

pytestmark = pytest.mark.postgres


def read(db: DokployDb, server: str | None = None) -> DesiredState:
    return read_desired_state(db.dsn, server=server, connect_timeout=5)


def owner_of(state: DesiredState, kind: OwnerKind, owner_id: str) -> Owner:
    found = [owner for owner in state.owners if owner.kind is kind and owner.id == owner_id]
    assert len(found) == 1, f"expected one {kind} owner {owner_id}, got {state.owners}"
    return found[0]


def route_of(state: DesiredState, kind: OwnerKind, owner_id: str) -> Route:
    routes = owner_of(state, kind, owner_id).routes
    assert len(routes) == 1, routes
    return routes[0]


def app_route(db: DokployDb, **columns: Any) -> Route:
    app = db.add_application()
    db.add_domain(app, **columns)
    return route_of(read(db), OwnerKind.APPLICATION, app.id)


def compose_route(db: DokployDb, compose_columns: dict[str, Any], **columns: Any) -> Route:
    compose = db.add_compose(**compose_columns)
    db.add_domain(compose, **columns)
    return route_of(read(db), OwnerKind.COMPOSE, compose.id)


def rejection_of(state: DesiredState, row_id: str) -> Rejection:
    found = [r for r in state.rejections if r.ref.row_id == row_id]
    assert len(found) == 1, state.rejections
    return found[0]


# --- application domains ------------------------------------------------------------------


def test_application_domain_maps_to_a_route_keyed_by_unique_config_key(
    dokploy_db: DokployDb,
) -> None:
    app = dokploy_db.add_application()
    domain = dokploy_db.add_domain(app, host="  Shop.Example.COM ", port=8080, path="/api")

    route = route_of(read(dokploy_db), OwnerKind.APPLICATION, app.id)

    assert route.key == str(domain.key)
    assert route.host == "Shop.Example.COM"
    assert route.path == "/api"
    assert route.backend.host == app.app_name
    assert route.backend.port == 8080
    assert route.ref is not None
    assert (route.ref.table, route.ref.row_id, route.ref.app) == ("domain", domain.id, app.app_name)


@pytest.mark.parametrize("port", [None, 0])
def test_unset_or_zero_port_falls_back_to_80(dokploy_db: DokployDb, port: int | None) -> None:
    assert app_route(dokploy_db, port=port).backend.port == 80


def test_null_path_means_the_root_path(dokploy_db: DokployDb) -> None:
    assert app_route(dokploy_db, path=None).path == "/"


@pytest.mark.parametrize(
    ("certificate_type", "resolver", "expected"),
    [
        ("letsencrypt", None, Tls(cert_resolver="letsencrypt")),
        ("custom", "myresolver", Tls(cert_resolver="myresolver")),
        ("custom", None, None),
        ("custom", "", None),
        ("none", None, None),
    ],
)
def test_https_application_tls_follows_certificate_type(
    dokploy_db: DokployDb, certificate_type: str, resolver: str | None, expected: Tls | None
) -> None:
    route = app_route(
        dokploy_db, https=True, certificateType=certificate_type, customCertResolver=resolver
    )

    assert route.https is True
    assert route.tls == expected


@pytest.mark.parametrize("certificate_type", ["letsencrypt", "custom", "none"])
def test_plain_http_domain_has_no_tls_block(dokploy_db: DokployDb, certificate_type: str) -> None:
    route = app_route(
        dokploy_db, https=False, certificateType=certificate_type, customCertResolver="res"
    )

    assert route.https is False
    assert route.tls is None


@pytest.mark.parametrize(("entrypoint", "expected"), [("internal", "internal"), ("", None)])
def test_custom_entrypoint_is_kept_and_empty_means_none(
    dokploy_db: DokployDb, entrypoint: str, expected: str | None
) -> None:
    assert app_route(dokploy_db, customEntrypoint=entrypoint).entrypoint == expected


@pytest.mark.parametrize(
    ("strip_path", "path", "expected"),
    [(True, "/api", True), (True, "/", False), (True, "", False), (False, "/api", False)],
)
def test_strip_prefix_needs_strip_path_and_a_non_root_path(
    dokploy_db: DokployDb, strip_path: bool, path: str, expected: bool
) -> None:
    assert app_route(dokploy_db, stripPath=strip_path, path=path).strip_prefix is expected


@pytest.mark.parametrize(
    ("internal_path", "path", "expected"),
    [
        ("/v1", "/", "/v1"),
        ("/v1", "/api", "/v1"),
        ("/api", "/api", None),
        ("/", "/api", None),
        (None, "/api", None),
    ],
)
def test_application_add_prefix_is_an_internal_path_that_differs_from_the_path(
    dokploy_db: DokployDb, internal_path: str | None, path: str, expected: str | None
) -> None:
    route = app_route(dokploy_db, internalPath=internal_path, path=path)

    assert route.add_prefix == expected


@pytest.mark.parametrize("forward_auth", [True, False])
def test_application_route_applies_redirects_and_basic_auth_and_its_forward_auth_flag(
    dokploy_db: DokployDb, forward_auth: bool
) -> None:
    route = app_route(dokploy_db, forwardAuthEnabled=forward_auth)

    assert (route.redirects, route.basic_auth, route.forward_auth) == (True, True, forward_auth)


def test_domain_middlewares_are_kept_verbatim_in_order(dokploy_db: DokployDb) -> None:
    route = app_route(dokploy_db, middlewares=["zeta@file", "alpha@docker", "mid"])

    assert route.middlewares == ("zeta@file", "alpha@docker", "mid")


def test_application_without_domains_is_still_an_owner(dokploy_db: DokployDb) -> None:
    app = dokploy_db.add_application()
    dokploy_db.add_security(app)

    owner = owner_of(read(dokploy_db), OwnerKind.APPLICATION, app.id)

    assert owner.routes == ()
    assert owner.name == app.app_name
    assert [user.username for user in owner.users] == ["admin"]


def test_routes_are_ordered_by_unique_config_key_as_numbers(dokploy_db: DokployDb) -> None:
    app = dokploy_db.add_application()
    for key in (10, 9, 100):
        dokploy_db.add_domain(app, host=f"k{key}.example.com", uniqueConfigKey=key)

    routes = owner_of(read(dokploy_db), OwnerKind.APPLICATION, app.id).routes

    assert [route.key for route in routes] == ["9", "10", "100"]


# --- redirects and basic auth -------------------------------------------------------------


def test_redirects_are_ordered_by_unique_config_key_with_their_columns(
    dokploy_db: DokployDb,
) -> None:
    app = dokploy_db.add_application()
    later = dokploy_db.add_redirect(app, "^/old/(.*)", "/new/$1", permanent=True, uniqueConfigKey=7)
    first = dokploy_db.add_redirect(app, "^http://(.*)", "https://$1", uniqueConfigKey=3)

    redirects = owner_of(read(dokploy_db), OwnerKind.APPLICATION, app.id).redirects

    assert [(r.key, r.regex, r.replacement, r.permanent) for r in redirects] == [
        (str(first.key), "^http://(.*)", "https://$1", False),
        (str(later.key), "^/old/(.*)", "/new/$1", True),
    ]
    assert [r.ref.row_id for r in redirects if r.ref] == [first.id, later.id]


def test_redirect_with_a_regex_traefik_rejects_is_passed_on_for_the_planner(
    dokploy_db: DokployDb,
) -> None:
    # The planner checks the regex and then holds back every route that needs it; dropping
    # the row here would publish those routes without the redirect.
    app = dokploy_db.add_application()
    dokploy_db.add_redirect(app, "(?<=look)behind", "/x")

    state = read(dokploy_db)

    redirects = owner_of(state, OwnerKind.APPLICATION, app.id).redirects
    assert [r.regex for r in redirects] == ["(?<=look)behind"]
    assert state.rejections == ()


def test_users_are_ordered_by_username_and_carry_the_plaintext_password(
    dokploy_db: DokployDb,
) -> None:
    app = dokploy_db.add_application()
    dokploy_db.add_security(app, "zoe", "pw-zoe")
    dokploy_db.add_security(app, "adam", "pw-adam")

    users = owner_of(read(dokploy_db), OwnerKind.APPLICATION, app.id).users

    assert [(u.username, u.password.get_secret_value() if u.password else None) for u in users] == [
        ("adam", "pw-adam"),
        ("zoe", "pw-zoe"),
    ]
    assert all(u.hash is None and u.ref and u.ref.table == "security" for u in users)


def test_a_user_with_a_bad_name_is_never_dropped(dokploy_db: DokployDb) -> None:
    # Dropping it could leave the app with no users at all, and so unprotected.
    app = dokploy_db.add_application()
    dokploy_db.add_security(app, "bad:name")

    users = owner_of(read(dokploy_db), OwnerKind.APPLICATION, app.id).users

    assert [user.username for user in users] == ["bad:name"]


# --- previews -----------------------------------------------------------------------------


def test_preview_domain_routes_to_the_preview_with_parent_users_and_no_redirects(
    dokploy_db: DokployDb,
) -> None:
    parent = dokploy_db.add_application()
    dokploy_db.add_security(parent, "reviewer")
    dokploy_db.add_redirect(parent)
    preview = dokploy_db.add_preview(parent)
    domain = dokploy_db.add_domain(
        preview, host="pr-1.example.com", https=True, certificateType="letsencrypt", port=3000
    )

    state = read(dokploy_db)
    owner = owner_of(state, OwnerKind.PREVIEW, preview.id)

    assert owner.name == preview.app_name
    assert owner.redirects == ()
    assert [user.username for user in owner.users] == ["reviewer"]
    (route,) = owner.routes
    assert route.key == str(domain.key)
    assert route.redirects is False
    assert route.basic_auth is True
    assert route.backend.host == preview.app_name
    assert route.tls == Tls(cert_resolver="letsencrypt")
    assert owner_of(state, OwnerKind.APPLICATION, parent.id).routes == ()


# --- compose ------------------------------------------------------------------------------

_COMPOSE_FILE = """
services:
  web:
    image: nginx
    container_name: shop-frontend
  api:
    image: api
"""


@pytest.mark.parametrize(
    ("compose_type", "service", "compose_file", "expected"),
    [
        ("stack", "web", _COMPOSE_FILE, "{app}_web"),
        ("docker-compose", "web", _COMPOSE_FILE, "shop-frontend"),
        ("docker-compose", "api", _COMPOSE_FILE, "{app}-api-1"),
        ("docker-compose", "web", "", "{app}-web-1"),
        ("docker-compose", "web", "services: [unclosed", "{app}-web-1"),
    ],
)
def test_compose_backend_host_follows_docker_naming(
    dokploy_db: DokployDb, compose_type: str, service: str, compose_file: str, expected: str
) -> None:
    compose = dokploy_db.add_compose(composeType=compose_type, composeFile=compose_file)
    dokploy_db.add_domain(compose, serviceName=service, port=8000)

    route = route_of(read(dokploy_db), OwnerKind.COMPOSE, compose.id)

    assert route.backend.host == expected.format(app=compose.app_name)
    assert route.backend.port == 8000


@pytest.mark.parametrize(
    ("certificate_type", "resolver", "expected"),
    [
        ("letsencrypt", None, Tls(cert_resolver="letsencrypt")),
        ("custom", "myresolver", Tls(cert_resolver="myresolver")),
        ("custom", None, Tls()),
        ("none", None, Tls()),
    ],
)
def test_https_compose_tls_follows_dokploy_labels(
    dokploy_db: DokployDb, certificate_type: str, resolver: str | None, expected: Tls
) -> None:
    route = compose_route(
        dokploy_db, {}, https=True, certificateType=certificate_type, customCertResolver=resolver
    )

    assert route.tls == expected


def test_plain_http_compose_domain_has_no_tls_block(dokploy_db: DokployDb) -> None:
    assert compose_route(dokploy_db, {}, https=False, certificateType="none").tls is None


@pytest.mark.parametrize(
    ("internal_path", "path", "expected"),
    [("/api", "/api", "/api"), ("/v1", "/", "/v1"), ("v1", "/", None), ("/", "/x", None)],
)
def test_compose_add_prefix_needs_only_a_leading_slash_and_not_root(
    dokploy_db: DokployDb, internal_path: str, path: str, expected: str | None
) -> None:
    route = compose_route(dokploy_db, {}, internalPath=internal_path, path=path)

    assert route.add_prefix == expected


def test_compose_route_has_no_redirects_or_basic_auth_but_keeps_forward_auth(
    dokploy_db: DokployDb,
) -> None:
    route = compose_route(dokploy_db, {}, forwardAuthEnabled=True, stripPath=True, path="/x")

    assert (route.redirects, route.basic_auth, route.forward_auth) == (False, False, True)
    assert route.strip_prefix is True


@pytest.mark.parametrize("service_name", [None, ""])
def test_compose_domain_without_service_is_rejected_and_the_rest_still_maps(
    dokploy_db: DokployDb, service_name: str | None
) -> None:
    compose = dokploy_db.add_compose()
    bad = dokploy_db.add_domain(compose, host="bad.example.com", serviceName=service_name)
    good = dokploy_db.add_domain(compose, host="good.example.com")

    state = read(dokploy_db)

    assert [r.key for r in owner_of(state, OwnerKind.COMPOSE, compose.id).routes] == [str(good.key)]
    rejection = rejection_of(state, bad.id)
    assert (rejection.ref.table, rejection.field) == ("domain", "serviceName")
    assert (rejection.owner_kind, rejection.owner_id) == (OwnerKind.COMPOSE, compose.id)
    assert rejection.route_key == str(bad.key)


def test_interpolated_container_name_is_rejected(dokploy_db: DokployDb) -> None:
    compose_file = "services:\n  web:\n    container_name: ${PREFIX}-web\n"
    compose = dokploy_db.add_compose(composeFile=compose_file)
    domain = dokploy_db.add_domain(compose)

    state = read(dokploy_db)

    assert owner_of(state, OwnerKind.COMPOSE, compose.id).routes == ()
    assert rejection_of(state, domain.id).field == "composeFile"


def test_unknown_compose_type_leaves_the_owner_out_and_names_it(dokploy_db: DokployDb) -> None:
    dokploy_db.add_enum_value("composeType", "kubernetes")
    compose = dokploy_db.add_compose(composeType="kubernetes")
    dokploy_db.add_domain(compose)
    other = dokploy_db.add_compose()

    state = read(dokploy_db)

    assert [o.id for o in state.owners if o.kind is OwnerKind.COMPOSE] == [other.id]
    rejection = rejection_of(state, compose.id)
    assert (rejection.ref.table, rejection.field) == ("compose", "composeType")
    assert (rejection.owner_kind, rejection.owner_id, rejection.route_key) == (
        OwnerKind.COMPOSE,
        compose.id,
        None,
    )


# --- forward auth -------------------------------------------------------------------------


@pytest.mark.parametrize(("https", "scheme"), [(True, "https"), (False, "http")])
def test_forward_auth_settings_of_the_server_apply_to_its_owners(
    dokploy_db: DokployDb, https: bool, scheme: str
) -> None:
    dokploy_db.add_forward_auth("sso.example.com", https=https)
    app = dokploy_db.add_application()
    compose = dokploy_db.add_compose()

    state = read(dokploy_db)

    for kind, owner_id in ((OwnerKind.APPLICATION, app.id), (OwnerKind.COMPOSE, compose.id)):
        forward_auth = owner_of(state, kind, owner_id).forward_auth
        assert forward_auth is not None
        assert forward_auth.address == f"{scheme}://sso.example.com/oauth2/auth"
        assert forward_auth.errors_service_url == "http://dokploy-forward-auth:4180"


def test_another_servers_forward_auth_settings_do_not_apply(dokploy_db: DokployDb) -> None:
    server = dokploy_db.add_server()
    dokploy_db.add_forward_auth("remote-sso.example.com", server_id=server)
    app = dokploy_db.add_application()

    assert owner_of(read(dokploy_db), OwnerKind.APPLICATION, app.id).forward_auth is None


# --- swarm labels -------------------------------------------------------------------------


def test_non_empty_swarm_labels_make_a_label_owner(dokploy_db: DokployDb) -> None:
    app = dokploy_db.add_application()
    labels = {"traefik.enable": "true", "traefik.http.routers.x.rule": "Host(`x.example.com`)"}
    dokploy_db.set_labels(app, labels)

    owner = owner_of(read(dokploy_db), OwnerKind.LABELS, app.id)

    assert owner.labels == labels
    assert owner.name == app.app_name
    assert owner.routes == ()


@pytest.mark.parametrize("labels", [None, "{}", "null"])
def test_empty_or_absent_swarm_labels_make_no_label_owner(
    dokploy_db: DokployDb, labels: str | None
) -> None:
    app = dokploy_db.add_application()
    dokploy_db.set_labels(app, labels)

    state = read(dokploy_db)

    assert [o for o in state.owners if o.kind is OwnerKind.LABELS] == []
    assert state.rejections == ()
    owner_of(state, OwnerKind.APPLICATION, app.id)


def test_swarm_labels_that_are_not_an_object_are_rejected(dokploy_db: DokployDb) -> None:
    app = dokploy_db.add_application()
    dokploy_db.set_labels(app, '["traefik.enable=true"]')

    state = read(dokploy_db)

    rejection = rejection_of(state, app.id)
    assert (rejection.ref.table, rejection.field) == ("application", "labelsSwarm")
    assert (rejection.owner_kind, rejection.owner_id) == (OwnerKind.LABELS, app.id)


def test_non_string_label_value_is_rejected_without_quoting_any_value(
    dokploy_db: DokployDb,
) -> None:
    app = dokploy_db.add_application()
    dokploy_db.set_labels(
        app,
        {
            "traefik.http.middlewares.a.basicauth.users": "u:$2y$05$secrethashvalue",
            "traefik.http.services.s.loadbalancer.server.port": 8080,
        },
    )

    rejection = rejection_of(read(dokploy_db), app.id)

    assert "traefik.http.services.s.loadbalancer.server.port" in rejection.reason
    assert "secrethashvalue" not in rejection.line()
    assert "8080" not in rejection.line()


# --- unknown values and faults ------------------------------------------------------------


def test_unknown_certificate_type_is_rejected_and_other_domains_still_map(
    dokploy_db: DokployDb,
) -> None:
    dokploy_db.add_enum_value("certificateType", "wildcard")
    app = dokploy_db.add_application()
    bad = dokploy_db.add_domain(app, host="bad.example.com", https=True, certificateType="wildcard")
    good = dokploy_db.add_domain(app, host="good.example.com")

    state = read(dokploy_db)

    assert [r.key for r in owner_of(state, OwnerKind.APPLICATION, app.id).routes] == [str(good.key)]
    rejection = rejection_of(state, bad.id)
    assert rejection.field == "certificateType"
    assert "wildcard" in rejection.reason
    assert (rejection.owner_kind, rejection.owner_id, rejection.route_key) == (
        OwnerKind.APPLICATION,
        app.id,
        str(bad.key),
    )
    assert rejection.protection is False


def test_unknown_domain_type_is_rejected(dokploy_db: DokployDb) -> None:
    dokploy_db.add_enum_value("domainType", "wildcard")
    app = dokploy_db.add_application()
    domain = dokploy_db.add_domain(app, domainType="wildcard")

    assert rejection_of(read(dokploy_db), domain.id).field == "domainType"


@pytest.mark.parametrize(
    ("columns", "field"),
    [
        ({"host": "   "}, "host"),
        ({"port": 70000}, "port"),
        ({"middlewares": ["ok", None]}, "middlewares"),
        ({"middlewares": [""]}, "middlewares"),
    ],
)
def test_unmappable_domain_values_are_rejected_naming_the_field(
    dokploy_db: DokployDb, columns: dict[str, Any], field: str
) -> None:
    app = dokploy_db.add_application()
    domain = dokploy_db.add_domain(app, **columns)

    state = read(dokploy_db)

    assert owner_of(state, OwnerKind.APPLICATION, app.id).routes == ()
    rejection = rejection_of(state, domain.id)
    assert (rejection.ref.table, rejection.ref.app, rejection.field) == (
        "domain",
        app.app_name,
        field,
    )


def test_domain_without_a_parent_is_skipped(dokploy_db: DokployDb) -> None:
    app = dokploy_db.add_application()
    dokploy_db.add_domain(app)
    orphan = dokploy_db.add_domain(app, host="orphan.example.com")
    dokploy_db.update("domain", orphan.id, applicationId=None)

    state = read(dokploy_db)

    hosts = [route.host for owner in state.owners for route in owner.routes]
    assert hosts == ["app.example.com"]
    assert state.rejections == ()


def test_owners_are_ordered_by_kind_then_id(dokploy_db: DokployDb) -> None:
    apps: list[App] = [dokploy_db.add_application() for _ in range(3)]
    for app in apps:
        dokploy_db.set_labels(app, {"traefik.enable": "true"})
    parent = apps[0]
    previews = [dokploy_db.add_preview(parent) for _ in range(2)]
    composes = [dokploy_db.add_compose() for _ in range(2)]

    state = read(dokploy_db)

    expected = (
        [(OwnerKind.APPLICATION, app_id) for app_id in sorted(app.id for app in apps)]
        + [(OwnerKind.PREVIEW, p_id) for p_id in sorted(p.id for p in previews)]
        + [(OwnerKind.COMPOSE, c_id) for c_id in sorted(c.id for c in composes)]
        + [(OwnerKind.LABELS, app_id) for app_id in sorted(app.id for app in apps)]
    )
    assert [(owner.kind, owner.id) for owner in state.owners] == expected


def test_domain_typed_preview_applies_no_redirects_even_under_an_application(
    dokploy_db: DokployDb,
) -> None:
    # Dokploy decides on domainType, not on which foreign key is set.
    app = dokploy_db.add_application()
    dokploy_db.add_redirect(app)

    route = app_route(dokploy_db, domainType="preview")
    assert route.redirects is False
    preview = dokploy_db.add_preview(app)
    dokploy_db.add_domain(preview, host="pr.example.com", domainType="application")
    assert route_of(read(dokploy_db), OwnerKind.PREVIEW, preview.id).redirects is False
