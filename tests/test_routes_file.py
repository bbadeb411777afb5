"""Routes files: the desired-route model in YAML or TOML, checked like the database."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w
import yaml

from traefik_gen.errors import SourceError
from traefik_gen.routes import OwnerKind
from traefik_gen.sources.routes_file import read_routes_file

APP = {
    "id": "whoami",
    "routes": [{"key": "1", "host": "whoami.localhost", "backend": {"host": "whoami"}}],
}


def write(tmp_path: Path, document: object, name: str = "routes.yml") -> Path:
    path = tmp_path / name
    if name.endswith(".toml"):
        path.write_text(tomli_w.dumps(document))  # type: ignore[arg-type]
    else:
        path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize("name", ["routes.yml", "routes.toml"])
def test_yaml_and_toml_give_the_same_owners(tmp_path: Path, name: str) -> None:
    state = read_routes_file(write(tmp_path, {"apps": [APP]}, name))

    assert [(o.kind, o.id, o.name) for o in state.owners] == [(OwnerKind.FILE, "whoami", "whoami")]
    assert state.owners[0].routes[0].ref is not None


def test_a_misspelt_key_rejects_that_app_and_names_the_field(tmp_path: Path) -> None:
    bad = {
        "id": "shop",
        "routes": [{"key": "1", "host": "a.b", "backend": {"host": "s"}, "basicAuht": False}],
    }

    state = read_routes_file(write(tmp_path, {"apps": [bad, APP]}))

    assert [o.id for o in state.owners] == ["whoami"]
    assert [r.field for r in state.rejections] == ["routes.0.basicAuht"]
    assert state.rejections[0].owner_id == "shop"


def test_a_rejected_app_never_shows_its_password(tmp_path: Path) -> None:
    bad = {**APP, "users": [{"username": "a", "password": "hunter2", "hash": "$2b$x"}]}

    state = read_routes_file(write(tmp_path, {"apps": [bad]}))

    assert state.rejections
    assert "hunter2" not in " ".join(r.line() for r in state.rejections)


def test_labels_of_an_app_become_a_label_owner(tmp_path: Path) -> None:
    app = {"id": "api", "labels": {"traefik.enable": "true"}}

    state = read_routes_file(write(tmp_path, {"apps": [app]}))

    assert [o.kind for o in state.owners] == [OwnerKind.FILE, OwnerKind.LABELS]


def test_a_file_that_does_not_parse_is_a_source_error_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "routes.yml"
    path.write_text("apps:\n  - id: [unclosed\n")

    with pytest.raises(SourceError, match=r"routes\.yml' does not parse: line"):
        read_routes_file(path)


def test_a_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read routes file"):
        read_routes_file(tmp_path / "absent.yml")


def test_unknown_top_level_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="one top-level key 'apps'"):
        read_routes_file(write(tmp_path, {"apps": [], "routes": []}))


def test_the_bundled_example_reads_without_rejections() -> None:
    state = read_routes_file(Path(__file__).parent.parent / "examples" / "routes.yml")

    assert state.rejections == ()
    assert {o.id for o in state.owners} == {"whoami", "shop", "api"}


def test_a_file_that_is_not_utf8_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "routes.yml"
    path.write_bytes(b"apps:\n  - id: \xff\xfe\n")

    with pytest.raises(SourceError, match="is not UTF-8 text"):
        read_routes_file(path)


def test_a_second_app_with_the_same_id_is_rejected_not_merged(tmp_path: Path) -> None:
    state = read_routes_file(write(tmp_path, {"apps": [APP, {**APP, "routes": []}]}))

    assert [o.id for o in state.owners] == ["whoami"]
    assert len(state.owners[0].routes) == 1
    assert [r.field for r in state.rejections] == ["apps.1.id"]
