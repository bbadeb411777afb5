"""verify_generation against real Traefik 3.6 and 3.7: loaded, frozen, disabled, timed out.

Files are written by sync() from a routes file, the same path `generate` takes; the
freezing file is a foreign one written into the directory before our write.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import yaml

from tests.support.traefik import TraefikProcess, binary_path
from traefik_gen.errors import SettingsError
from traefik_gen.settings import Settings
from traefik_gen.sync import marker_filename, marker_name, sync
from traefik_gen.verify import (
    EXIT_NOT_LOADED,
    EXIT_ROUTER_PROBLEMS,
    VerifyResult,
    find_freeze_in_log,
    verify_generation,
)

BROKEN_FILES = {
    "unknown-key": (
        "http:\n  routers:\n    r:\n      rule: Host(`a.test`)\n      bogus: 1\n",
        "field not found",
    ),
    "bad-yaml": ('http:\n  routers: [\n    "r: b\n', "yaml:"),
    "template": ('http:\n  routers:\n    r:\n      rule: "Host(`{{ a`)"\n', "template:"),
}


def write_routes(path: Path, *middlewares: str) -> Path:
    apps = [
        {
            "id": app,
            "routes": [
                {
                    "key": "1",
                    "host": f"{app}.example.test",
                    "backend": {"host": "127.0.0.1", "port": 9},
                    "middlewares": list(middlewares),
                }
            ],
        }
        for app in ("alpha", "beta")
    ]
    path.write_text(yaml.safe_dump({"apps": apps}), encoding="utf-8")
    return path


def settings_for(out: Path, routes: Path) -> Settings:
    return Settings(source=(str(routes),), out=out, upstream="http://{host}:{port}")


def written_generation(settings: Settings) -> str:
    text = (settings.out / marker_filename(settings)).read_text()
    prefix = marker_name(settings, "")
    return text.split(prefix, 1)[1][:16]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def freeze_with(traefik: TraefikProcess, name: str, content: str) -> Path:
    """A foreign broken file, seen by Traefik (its error logged) before our write."""
    foreign = traefik.dynamic_dir / name
    foreign.write_text(content, encoding="utf-8")
    logged = traefik.wait_for(lambda: str(foreign) in traefik.log_text())
    assert logged, "traefik never logged the broken foreign file"
    return foreign


def test_fresh_generation_verifies_ok(traefik: TraefikProcess, tmp_path: Path) -> None:
    settings = settings_for(traefik.dynamic_dir, write_routes(tmp_path / "routes.yml"))
    sync(settings)

    result = verify_generation(traefik.api_url, traefik.dynamic_dir, settings)

    assert result.problems == []
    assert result.ok and result.loaded
    assert result.generation == written_generation(settings)
    assert result.frozen_by is None
    assert result.exit_code() == 0


def test_a_new_generation_is_verified_after_a_rewrite(
    traefik: TraefikProcess, tmp_path: Path
) -> None:
    routes = write_routes(tmp_path / "routes.yml")
    settings = settings_for(traefik.dynamic_dir, routes)
    sync(settings)
    first = verify_generation(traefik.api_url, traefik.dynamic_dir, settings)
    routes.write_text(routes.read_text().replace("beta", "gamma"))
    sync(settings)

    second = verify_generation(traefik.api_url, traefik.dynamic_dir, settings)

    assert first.ok
    assert second.generation != first.generation
    assert second.generation == written_generation(settings)
    assert second.ok


@pytest.mark.parametrize("kind", sorted(BROKEN_FILES))
def test_foreign_broken_file_freezes_and_is_named_from_the_log(
    traefik: TraefikProcess, tmp_path: Path, kind: str
) -> None:
    content, error = BROKEN_FILES[kind]
    foreign = freeze_with(traefik, "aa-foreign.yml", content)
    settings = settings_for(traefik.dynamic_dir, write_routes(tmp_path / "routes.yml"))
    sync(settings)

    result = verify_generation(
        traefik.api_url, traefik.dynamic_dir, settings, timeout=1.0, log_path=traefik.log_path
    )

    assert not result.ok and not result.loaded
    assert result.exit_code() == EXIT_NOT_LOADED
    assert result.frozen_by == foreign
    assert any(str(foreign) in p and error in p for p in result.problems), result.problems


@pytest.mark.parametrize("kind", sorted(BROKEN_FILES))
def test_foreign_broken_file_is_found_by_a_scratch_traefik_without_a_log(
    traefik: TraefikProcess, tmp_path: Path, kind: str
) -> None:
    content, error = BROKEN_FILES[kind]
    foreign = freeze_with(traefik, "aa-foreign.yml", content)
    settings = settings_for(traefik.dynamic_dir, write_routes(tmp_path / "routes.yml"))
    sync(settings)

    result = verify_generation(
        traefik.api_url,
        traefik.dynamic_dir,
        settings,
        timeout=1.0,
        traefik_binary=binary_path(traefik.version),
    )

    assert result.exit_code() == EXIT_NOT_LOADED
    assert result.frozen_by == foreign
    assert any(str(foreign) in p and error in p for p in result.problems), result.problems


def test_a_log_naming_a_file_gone_since_falls_back_to_the_scratch_traefik(
    traefik: TraefikProcess, tmp_path: Path
) -> None:
    foreign = freeze_with(traefik, "ab-foreign.yml", BROKEN_FILES["template"][0])
    settings = settings_for(traefik.dynamic_dir, write_routes(tmp_path / "routes.yml"))
    sync(settings)
    stale = tmp_path / "stale.log"
    stale.write_text(
        "2026-01-01T00:00:00Z ERR file.go:204 > Error occurred during watcher callback "
        f'error="collecting file configs: {traefik.dynamic_dir}/aa-gone.yml: yaml: bad" '
        "providerName=file\n"
    )

    result = verify_generation(
        traefik.api_url,
        traefik.dynamic_dir,
        settings,
        timeout=0.5,
        log_path=stale,
        traefik_binary=binary_path(traefik.version),
    )

    assert result.frozen_by == foreign
    assert any("aa-gone.yml" in p and "no longer" in p for p in result.problems)


def test_frozen_provider_without_log_or_binary_says_it_cannot_tell(
    traefik: TraefikProcess, tmp_path: Path
) -> None:
    freeze_with(traefik, "aa-foreign.yml", BROKEN_FILES["unknown-key"][0])
    settings = settings_for(traefik.dynamic_dir, write_routes(tmp_path / "routes.yml"))
    sync(settings)

    result = verify_generation(traefik.api_url, traefik.dynamic_dir, settings, timeout=0.5)

    assert result.exit_code() == EXIT_NOT_LOADED
    assert result.frozen_by is None
    assert any("cannot tell" in p for p in result.problems), result.problems


def test_router_traefik_disables_is_reported_with_traefiks_error(
    traefik: TraefikProcess, tmp_path: Path
) -> None:
    routes = write_routes(tmp_path / "routes.yml", "x@docker")
    settings = settings_for(traefik.dynamic_dir, routes)
    sync(settings)

    result = verify_generation(traefik.api_url, traefik.dynamic_dir, settings)

    assert result.loaded and not result.ok
    assert result.exit_code() == EXIT_ROUTER_PROBLEMS
    assert len(result.problems) == 2, result.problems
    for problem in result.problems:
        assert "disabled" in problem
        assert 'middleware "x@docker" does not exist' in problem
    assert any("alpha" in p for p in result.problems)
    assert any("beta" in p for p in result.problems)


def test_timeout_is_respected_when_the_marker_never_shows(
    traefik: TraefikProcess, tmp_path: Path
) -> None:
    # Traefik watches its own directory; the generation goes to one it does not watch.
    out = tmp_path / "unwatched"
    settings = settings_for(out, write_routes(tmp_path / "routes.yml"))
    sync(settings)

    started = time.monotonic()
    result = verify_generation(traefik.api_url, out, settings, timeout=1.5)
    elapsed = time.monotonic() - started

    assert 1.5 <= elapsed < 2.5
    assert result.exit_code() == EXIT_NOT_LOADED
    assert "did not show within 1.5s" in result.problems[0]


def test_unreachable_api_is_not_loaded_within_the_timeout(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "out", write_routes(tmp_path / "routes.yml"))
    sync(settings)

    started = time.monotonic()
    result = verify_generation(
        f"http://127.0.0.1:{closed_port()}", settings.out, settings, timeout=0.5
    )

    assert time.monotonic() - started < 1.5
    assert result.exit_code() == EXIT_NOT_LOADED
    assert any("did not answer" in p for p in result.problems), result.problems


def test_directory_without_marker_is_not_loaded(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    settings = settings_for(out, tmp_path / "unused.yml")

    result = verify_generation(f"http://127.0.0.1:{closed_port()}", out, settings)

    assert result == VerifyResult(ok=False, generation="", problems=result.problems)
    assert result.exit_code() == EXIT_NOT_LOADED
    assert marker_filename(settings) in result.problems[0]


@pytest.mark.parametrize("url", ["", "127.0.0.1:8080", "ftp://127.0.0.1/", "http:///api"])
def test_api_url_must_be_http_with_a_host(tmp_path: Path, url: str) -> None:
    with pytest.raises(SettingsError, match="traefik api url"):
        verify_generation(url, tmp_path, settings_for(tmp_path, tmp_path / "r.yml"))


# the log, in the formats Traefik writes


def test_log_freeze_maps_a_container_path_into_the_directory(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text("x")
    log = tmp_path / "traefik.log"
    log.write_text(
        "2026-01-01T00:00:00Z ERR file.go:204 > Error occurred during watcher callback "
        'error="collecting file configs: /etc/traefik/dynamic/broken.yml: yaml: line 2: '
        'did not find expected key" providerName=file\n'
    )

    freeze = find_freeze_in_log(log, tmp_path)

    assert freeze is not None
    assert freeze.path == tmp_path / "broken.yml"
    assert freeze.error == "yaml: line 2: did not find expected key"


def test_log_freeze_reads_json_logs_and_quoted_errors(tmp_path: Path) -> None:
    log = tmp_path / "traefik.log"
    log.write_text(
        '{"level":"error","providerName":"file","error":"/x/a.toml: toml: \\"bad\\" key",'
        '"message":"Error while building configuration (for the first time)"}\n'
    )

    freeze = find_freeze_in_log(log, tmp_path)

    assert freeze is not None
    assert freeze.path == Path("/x/a.toml")
    assert freeze.error == 'toml: "bad" key'


def test_log_freeze_followed_by_a_successful_load_is_not_a_freeze(tmp_path: Path) -> None:
    log = tmp_path / "traefik.log"
    log.write_text(
        "2026-01-01T00:00:00Z ERR file.go:196 > Error occurred during watcher callback "
        'error="/d/a.yml: field not found, node: bogus" providerName=file\n'
        "2026-01-01T00:00:01Z DBG configurationwatcher.go:227 > Configuration received "
        'config={"http":{}} providerName=file\n'
    )

    assert find_freeze_in_log(log, tmp_path) is None


def test_unreadable_log_names_nothing(tmp_path: Path) -> None:
    assert find_freeze_in_log(tmp_path / "missing.log", tmp_path) is None
