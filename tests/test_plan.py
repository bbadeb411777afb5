"""The planner: desired routes to the configuration of every generated file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from traefik_gen.auth import PasswordHasher
from traefik_gen.plan import DirectoryView, Plan, PlanOptions, build_plan
from traefik_gen.plan.domains import Entrypoints
from traefik_gen.routes import (
    Backend,
    BasicAuthUser,
    DesiredState,
    ForwardAuth,
    Owner,
    OwnerKind,
    Redirect,
    Rejection,
    Route,
    RowRef,
    Tls,
)
from traefik_gen.settings import Mode

FILE = "zz-traefik-gen-compose-c1.yml"
NS = "tg-compose-shop"


def options(mode: Mode = Mode.FULL) -> PlanOptions:
    return PlanOptions(
        mode=mode,
        file_prefix="zz-traefik-gen-",
        name_prefix="tg",
        extension=".yml",
        upstream="{scheme}://{host}:{port}",
        entrypoints=Entrypoints("web", "websecure"),
        exposed_by_default=False,
    )


def route(key: str = "7", **fields: Any) -> Route:
    fields.setdefault("host", "shop.example.com")
    fields.setdefault("backend", Backend(host="shop", port=8080))
    fields.setdefault("ref", RowRef(table="domain", row_id=f"d{key}", app="shop"))
    return Route(key=key, **fields)


def owner(*routes: Route, kind: OwnerKind = OwnerKind.COMPOSE, **fields: Any) -> Owner:
    return Owner(kind=kind, id="c1", name="shop", routes=routes, **fields)


@pytest.fixture
def hasher(tmp_path: Path) -> PasswordHasher:
    return PasswordHasher(tmp_path / "cache", rounds=4)


def plan_of(
    *owners: Owner,
    hasher: PasswordHasher,
    view: DirectoryView | None = None,
    mode: Mode = Mode.FULL,
    rejections: tuple[Rejection, ...] = (),
) -> Plan:
    desired = DesiredState(owners=owners, rejections=rejections)
    return build_plan(desired, options(mode), view or DirectoryView(), hasher)


def http_of(plan: Plan, filename: str = FILE) -> dict[str, Any]:
    http: dict[str, Any] = plan.files[filename]["http"]
    return http


def test_http_domain_gets_one_web_router(hasher: PasswordHasher) -> None:
    http = http_of(plan_of(owner(route()), hasher=hasher))

    assert http["routers"] == {
        f"{NS}-7-web": {
            "entryPoints": ["web"],
            "rule": 'Host("shop.example.com")',
            "service": f"{NS}-7",
        }
    }
    assert http["services"][f"{NS}-7"] == {
        "loadBalancer": {"servers": [{"url": "http://shop:8080"}], "passHostHeader": True}
    }


def test_https_domain_gets_a_redirect_only_web_router_and_a_websecure_router(
    hasher: PasswordHasher,
) -> None:
    served = route(https=True, tls=Tls(cert_resolver="letsencrypt"), strip_prefix=True, path="/api")
    http = http_of(plan_of(owner(served), hasher=hasher))

    web, secure = http["routers"][f"{NS}-7-web"], http["routers"][f"{NS}-7-websecure"]
    assert web["middlewares"] == [f"{NS}--to-https"]
    assert "tls" not in web
    assert secure["entryPoints"] == ["websecure"]
    assert secure["tls"] == {"certResolver": "letsencrypt"}
    assert secure["middlewares"] == [f"{NS}-7-stripprefix"]
    assert secure["rule"] == 'Host("shop.example.com") && PathPrefix("/api")'
    assert http["middlewares"][f"{NS}--to-https"] == {
        "redirectScheme": {"scheme": "https", "permanent": True}
    }


def test_tls_without_resolver_is_an_empty_block_and_no_tls_means_no_key(
    hasher: PasswordHasher,
) -> None:
    routes = (route("1", https=True, tls=Tls()), route("2", https=True, tls=None))
    http = http_of(plan_of(owner(*routes), hasher=hasher))

    assert http["routers"][f"{NS}-1-websecure"]["tls"] == {}
    assert "tls" not in http["routers"][f"{NS}-2-websecure"]


def test_custom_entrypoint_gets_one_router_carrying_everything(hasher: PasswordHasher) -> None:
    custom = route(entrypoint="internal", https=True, tls=Tls(cert_resolver="dns"))
    http = http_of(plan_of(owner(custom), hasher=hasher))

    assert list(http["routers"]) == [f"{NS}-7-internal"]
    assert http["routers"][f"{NS}-7-internal"]["entryPoints"] == ["internal"]
    assert http["routers"][f"{NS}-7-internal"]["tls"] == {"certResolver": "dns"}


def test_middlewares_follow_dokploys_order(hasher: PasswordHasher, tmp_path: Path) -> None:
    (tmp_path / "mw.yml").write_text("")
    app = owner(
        route(path="/api", strip_prefix=True, add_prefix="/v1", middlewares=("extra@file",)),
        kind=OwnerKind.APPLICATION,
        redirects=(Redirect(key="3", regex="^/old(.*)", replacement="/new${1}"),),
        users=(BasicAuthUser(username="admin", password=SecretStr("pw")),),
    )
    view = DirectoryView(foreign_names={"http.middlewares": {"extra"}})
    http = http_of(plan_of(app, hasher=hasher, view=view), "zz-traefik-gen-app-c1.yml")

    ns = "tg-app-shop"
    assert http["routers"][f"{ns}-7-web"]["middlewares"] == [
        f"{ns}-7-stripprefix",
        f"{ns}-7-addprefix",
        f"{ns}--redirect-3",
        f"{ns}--auth",
        "extra@file",
    ]
    users = http["middlewares"][f"{ns}--auth"]["basicAuth"]["users"]
    assert users[0].startswith("admin:$2b$")


def test_a_bad_host_rejects_only_that_route(hasher: PasswordHasher) -> None:
    plan = plan_of(owner(route("1", host="bad host`)"), route("2")), hasher=hasher)

    assert [r.field for r in plan.rejections] == ["host"]
    assert (
        plan.rejections[0].line().startswith("rejected domain row 'd1' (app 'shop', field 'host')")
    )
    assert list(http_of(plan)["routers"]) == [f"{NS}-2-web"]


def test_a_rejected_route_keeps_its_last_written_form(hasher: PasswordHasher) -> None:
    before = plan_of(owner(route("1"), route("2")), hasher=hasher)
    view = DirectoryView(previous={FILE: before.files[FILE]})

    after = plan_of(owner(route("1", host=""), route("2")), hasher=hasher, view=view)

    assert after.files[FILE] == before.files[FILE]
    assert [r.field for r in after.rejections] == ["host"]


def test_a_route_the_source_could_not_read_keeps_its_last_written_form(
    hasher: PasswordHasher,
) -> None:
    before = plan_of(owner(route("1"), route("2")), hasher=hasher)
    view = DirectoryView(previous={FILE: before.files[FILE]})
    unreadable = Rejection(
        ref=RowRef(table="domain", row_id="d1", app="shop"),
        field="serviceName",
        reason="no service",
        owner_kind=OwnerKind.COMPOSE,
        owner_id="c1",
        route_key="1",
    )

    after = plan_of(owner(route("2")), hasher=hasher, view=view, rejections=(unreadable,))

    assert after.files[FILE] == before.files[FILE]


def test_an_owner_the_source_could_not_read_keeps_its_file(hasher: PasswordHasher) -> None:
    broken = Rejection(
        ref=RowRef(table="application", row_id="c1", app="shop"),
        field="labelsSwarm",
        reason="not json",
        owner_kind=OwnerKind.COMPOSE,
        owner_id="c1",
    )
    view = DirectoryView(previous={FILE: {"http": {}}})

    plan = plan_of(hasher=hasher, view=view, rejections=(broken,))

    assert plan.kept == [FILE]


def test_a_protection_fault_unpublishes_a_route_that_was_served(hasher: PasswordHasher) -> None:
    app = owner(
        route("1"),
        kind=OwnerKind.APPLICATION,
        users=(BasicAuthUser(username="admin", password=SecretStr("pw")),),
    )
    filename = "zz-traefik-gen-app-c1.yml"
    before = plan_of(app, hasher=hasher)
    broken = app.model_copy(
        update={"users": (BasicAuthUser(username="ad:min", password=SecretStr("pw")),)}
    )

    after = plan_of(
        broken, hasher=hasher, view=DirectoryView(previous={filename: before.files[filename]})
    )

    assert filename not in after.files
    assert {r.field for r in after.rejections} == {"username", "security"}
    assert all(r.protection for r in after.rejections)
    assert "pw" not in " ".join(r.line() for r in after.rejections)


def test_forward_auth_without_settings_is_not_published(hasher: PasswordHasher) -> None:
    plan = plan_of(owner(route("1", forward_auth=True), route("2")), hasher=hasher)

    assert [(r.field, r.protection) for r in plan.rejections] == [("forwardAuthEnabled", True)]
    assert list(http_of(plan)["routers"]) == [f"{NS}-2-web"]


def test_forward_auth_is_rendered_from_its_settings(hasher: PasswordHasher) -> None:
    settings = ForwardAuth(
        address="https://auth.example.com/oauth2/auth",
        errors_service_url="http://dokploy-forward-auth:4180",
    )
    plan = plan_of(owner(route(forward_auth=True), forward_auth=settings), hasher=hasher)
    http = http_of(plan)

    assert http["routers"][f"{NS}-7-web"]["middlewares"] == [
        f"{NS}-7-forwardauth-errors",
        f"{NS}-7-forwardauth",
    ]
    assert http["middlewares"][f"{NS}-7-forwardauth"]["forwardAuth"]["address"] == settings.address
    assert f"{NS}--forward-auth-proxy" in http["services"]


def test_complement_mode_leaves_applications_to_dokploy_and_reports_unserved(
    hasher: PasswordHasher,
) -> None:
    app = owner(route("5"), kind=OwnerKind.APPLICATION)
    view = DirectoryView(foreign_names={"http.routers": {"shop-router-9"}})

    plan = plan_of(app, owner(route("6")), hasher=hasher, view=view, mode=Mode.COMPLEMENT)

    assert list(plan.files) == [FILE]
    assert len(plan.notices) == 1
    assert "Dokploy's router 'shop-router-5'" in plan.notices[0]


def test_a_name_clash_with_a_foreign_file_is_reported_not_written(hasher: PasswordHasher) -> None:
    view = DirectoryView(foreign_names={"http.routers": {f"{NS}-1-web"}})

    plan = plan_of(owner(route("1"), route("2")), hasher=hasher, view=view)

    assert [r.field for r in plan.rejections] == ["name"]
    assert list(http_of(plan)["routers"]) == [f"{NS}-2-web"]


def test_an_extra_middleware_that_exists_nowhere_rejects_the_route(hasher: PasswordHasher) -> None:
    plan = plan_of(owner(route("1", middlewares=("ghost@file",))), hasher=hasher)

    assert [r.field for r in plan.rejections] == ["middlewares"]
    assert plan.files == {}


def test_a_middleware_of_another_provider_is_kept_verbatim(hasher: PasswordHasher) -> None:
    plan = plan_of(owner(route(middlewares=("chain@docker",))), hasher=hasher)

    assert http_of(plan)["routers"][f"{NS}-7-web"]["middlewares"] == ["chain@docker"]


def test_names_do_not_depend_on_row_order(hasher: PasswordHasher) -> None:
    one = plan_of(owner(route("1"), route("2"), route("10")), hasher=hasher)
    other = plan_of(owner(route("10"), route("2"), route("1")), hasher=hasher)

    assert one.files == other.files
    assert list(http_of(one)["routers"]) == sorted(http_of(one)["routers"])


def test_an_owner_with_no_usable_route_gets_no_file(hasher: PasswordHasher) -> None:
    plan = plan_of(owner(route(host="")), owner(), hasher=hasher)

    assert plan.files == {}


def test_a_bad_redirect_regex_rejects_the_row_and_holds_back_its_routes(
    hasher: PasswordHasher,
) -> None:
    app = owner(
        route("1"),
        kind=OwnerKind.APPLICATION,
        redirects=(
            Redirect(
                key="2",
                regex="(?<=x)y",
                replacement="z",
                ref=RowRef(table="redirect", row_id="r2", app="shop"),
            ),
        ),
    )

    plan = plan_of(app, hasher=hasher)

    assert [(r.ref.table, r.field) for r in plan.rejections] == [
        ("redirect", "regex"),
        ("domain", "redirect"),
    ]
    assert plan.files == {}
