"""The real-services harness itself: Traefik processes, backends, options, the Docker path."""

from __future__ import annotations

import http.client
import json
import textwrap
import time
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from tests.support.backends import Backend, BackendFactory
from tests.support.docker_stack import DockerBackend, DockerTraefik
from tests.support.traefik import (
    DEFAULT_ALLOWED_ERRORS,
    TraefikEndpoints,
    TraefikFactory,
    TraefikProcess,
    error_entries,
    last_file_config,
    static_config,
    version_ids,
    wait_for,
)

pytest_plugins = ["pytester"]

# Tests about the harness, not about Traefik's reload latency, skip the 2 s throttle window
# that a file written right after startup would otherwise wait out.
fast = pytest.mark.traefik_throttle("0s")

ROOT = Path(__file__).resolve().parents[1]
INNER_CONFTEST = """
pytest_plugins = ["tests.support.options", "tests.support.backends", "tests.support.traefik"]
"""


def write_dynamic(traefik: TraefikEndpoints, name: str, config: dict[str, Any]) -> Path:
    """Drop a hand-written file into the watched directory, renamed in atomically."""
    staging = traefik.dynamic_dir.parent / f".{name}.staging"
    staging.write_text(json.dumps(config))
    target = traefik.dynamic_dir / name
    staging.replace(target)
    return target


def route(
    name: str, host: str, url: str, *, entrypoint: str = "web", **router: Any
) -> dict[str, Any]:
    return {
        "http": {
            "routers": {
                name: {
                    "rule": f'Host("{host}")',
                    "service": name,
                    "entryPoints": [entrypoint],
                    **router,
                }
            },
            "services": {name: {"loadBalancer": {"servers": [{"url": url}]}}},
        }
    }


def direct(backend: Backend, method: str, target: str, body: bytes | None = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=5)
    try:
        conn.request(method, target, body=body, headers={"Host": "direct.test"})
        answer = conn.getresponse()
        payload = answer.read()
        return answer.status, (json.loads(payload) if payload else None)
    finally:
        conn.close()


# -- Traefik, both versions ---------------------------------------------------------------


def test_hand_written_file_routes_host_to_backend(
    traefik: TraefikProcess, backends: BackendFactory
) -> None:
    backend = backends("alpha")
    write_dynamic(traefik, "alpha.yml", route("alpha", "alpha.test", backend.url))
    traefik.wait_router("alpha")

    answer = traefik.get("alpha.test", "/some/path?x=1")

    assert answer.status == 200
    body = answer.json()
    assert body["backend"] == "alpha"
    assert body["host"] == "alpha.test"
    assert (body["method"], body["path"], body["query"]) == ("GET", "/some/path", "x=1")
    assert answer.url == "http://alpha.test/some/path?x=1"


@fast
def test_unrouted_host_gets_traefik_404(traefik: TraefikProcess) -> None:
    assert traefik.get("nobody.test").status == 404


@fast
def test_https_router_on_websecure_answers_over_tls(
    traefik: TraefikProcess, backends: BackendFactory
) -> None:
    backend = backends("secure")
    config = route("secure", "secure.test", backend.url, entrypoint="websecure", tls={})
    write_dynamic(traefik, "secure.yml", config)
    traefik.wait_router("secure")

    answer = traefik.get("secure.test", https=True)

    assert answer.status == 200
    assert answer.json()["backend"] == "secure"
    assert traefik.get("secure.test").status == 404


@fast
def test_https_request_presents_host_as_sni(
    traefik: TraefikProcess, backends: BackendFactory
) -> None:
    # A TCP router matches on SNI alone, before any HTTP routing: it proves the name sent.
    backend = backends("sni")
    router = {"rule": 'HostSNI("sni.test")', "entryPoints": ["websecure"], "tls": {}}
    servers = [{"address": f"127.0.0.1:{backend.port}"}]
    config = {
        "tcp": {
            "routers": {"sni": {**router, "service": "sni"}},
            "services": {"sni": {"loadBalancer": {"servers": servers}}},
        }
    }
    write_dynamic(traefik, "sni.yml", config)
    traefik.wait_for(lambda: traefik.api("/api/tcp/routers/sni@file").status == 200)

    answer = traefik.get("sni.test", https=True)

    assert answer.status == 200
    assert answer.json()["backend"] == "sni"
    assert traefik.get("other.test", https=True).status == 404


@fast
def test_serving_routes_logs_no_errors(traefik: TraefikProcess, backends: BackendFactory) -> None:
    backend = backends("quiet")
    # As Dokploy writes websecure routers: the resolver the static config only names.
    tls = {"certResolver": "letsencrypt"}
    config = route("quiet", "quiet.test", backend.url, entrypoint="websecure", tls=tls)
    write_dynamic(traefik, "quiet.yml", config)
    traefik.wait_router("quiet")
    assert traefik.get("quiet.test", https=True).status == 200

    assert traefik.log_errors() == []
    # The allowed line is really there: the allow-list is what keeps the result empty.
    assert "nonexistent certificate resolver" in traefik.log_text()


@fast
def test_log_errors_reports_a_broken_file(traefik: TraefikProcess) -> None:
    mark = traefik.log_offset()
    (traefik.dynamic_dir / "broken.yml").write_text("http:\n  routers: [unclosed\n")

    errors = traefik.wait_for(lambda: traefik.log_errors(since=mark))

    assert errors
    assert "broken.yml" in errors[0]
    assert traefik.log_errors(allow=[r"broken\.yml"], since=mark) == []


@fast
def test_router_is_found_by_name(traefik: TraefikProcess, backends: BackendFactory) -> None:
    backend = backends("named")
    write_dynamic(traefik, "named.yml", route("named", "named.test", backend.url))

    found = traefik.wait_router("named")

    assert found["name"] == "named@file"
    assert found["provider"] == "file"
    assert traefik.router("named@file") == found
    assert traefik.router("absent") is None
    assert traefik.service("named") is not None


@fast
def test_broken_router_is_reported_disabled(traefik: TraefikProcess) -> None:
    config = route("lost", "lost.test", "http://127.0.0.1:9")
    config["http"]["routers"]["lost"]["service"] = "nosuch"
    write_dynamic(traefik, "lost.yml", config)

    found = traefik.wait_router("lost", status="disabled")

    assert any("nosuch" in error for error in found["error"])
    with pytest.raises(AssertionError, match="never became 'enabled'"):
        traefik.wait_router("lost", timeout=0.2)


@fast
def test_routers_follows_pagination(traefik: TraefikProcess, backends: BackendFactory) -> None:
    backend = backends("many")
    service = {"many": {"loadBalancer": {"servers": [{"url": backend.url}]}}}
    routers = {
        f"many-{i:03d}": {"rule": f'Host("many{i}.test")', "service": "many"} for i in range(150)
    }
    write_dynamic(traefik, "many.yml", {"http": {"routers": routers, "services": service}})
    traefik.wait_router("many-149")

    names = {router["name"] for router in traefik.routers()}

    assert {f"{name}@file" for name in routers} <= names
    assert "api@internal" in names


@fast
def test_get_follows_redirect_to_websecure(
    traefik: TraefikProcess, backends: BackendFactory
) -> None:
    backend = backends("moved")
    config = route("moved", "moved.test", backend.url, entrypoint="websecure", tls={})
    config["http"]["routers"]["moved-web"] = {
        "rule": 'Host("moved.test")',
        "service": "moved",
        "entryPoints": ["web"],
        "middlewares": ["to-https"],
    }
    config["http"]["middlewares"] = {"to-https": {"redirectScheme": {"scheme": "https"}}}
    write_dynamic(traefik, "moved.yml", config)
    traefik.wait_router("moved-web")

    plain = traefik.get("moved.test", "/p?q=1")
    followed = traefik.get("moved.test", "/p?q=1", follow=True)

    assert plain.status in (301, 302, 307, 308)
    assert plain.header("Location") == "https://moved.test/p?q=1"
    assert followed.status == 200
    assert followed.url == "https://moved.test/p?q=1"
    assert followed.json()["query"] == "q=1"


@fast
def test_get_sends_basic_auth(traefik: TraefikProcess, backends: BackendFactory) -> None:
    backend = backends("guarded")
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    config = route("guarded", "guarded.test", backend.url, middlewares=["auth"])
    config["http"]["middlewares"] = {"auth": {"basicAuth": {"users": [f"ann:{hashed}"]}}}
    write_dynamic(traefik, "guarded.yml", config)
    traefik.wait_router("guarded")

    assert traefik.get("guarded.test").status == 401
    assert traefik.get("guarded.test", auth=("ann", "wrong")).status == 401
    assert traefik.get("guarded.test", auth=("ann", "s3cret")).status == 200


def test_restart_keeps_ports_and_dynamic_files(
    traefik_factory: TraefikFactory, backends: BackendFactory
) -> None:
    instance = traefik_factory(throttle="0s")
    backend = backends("again")
    write_dynamic(instance, "again.yml", route("again", "again.test", backend.url))
    instance.wait_router("again")
    ports = (instance.web_port, instance.websecure_port, instance.api_port)

    instance.restart()

    # Ready means serving what the directory already holds: no waiting after restart.
    assert instance.get("again.test").json()["backend"] == "again"
    assert (instance.web_port, instance.websecure_port, instance.api_port) == ports
    assert instance.log_text().count("Traefik version") == 2


def test_factory_instances_can_share_a_dynamic_directory(
    traefik_factory: TraefikFactory, backends: BackendFactory, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    first = traefik_factory(dynamic_dir=shared, throttle="0s")
    second = traefik_factory(dynamic_dir=shared, throttle="0s")
    backend = backends("both")

    write_dynamic(first, "both.yml", route("both", "both.test", backend.url))

    for node in (first, second):
        node.wait_router("both")
        assert node.get("both.test").json()["backend"] == "both"
    assert first.web_port != second.web_port


def test_start_on_prewritten_files_serves_them_at_once(
    traefik_factory: TraefikFactory, backends: BackendFactory
) -> None:
    instance = traefik_factory(start=False)
    backend = backends("early")
    names = [f"early{i}" for i in range(20)]
    for name in names:
        write_dynamic(instance, f"{name}.yml", route(name, f"{name}.test", backend.url))

    instance.start()

    assert all(instance.get(f"{name}.test").status == 200 for name in names)


def test_last_file_config_reads_the_logged_configuration() -> None:
    received = "2026-01-01T00:00:00Z DBG c.go:1 > Configuration received"
    log = (
        f'{received} config={{"http":{{"routers":{{"a":{{}}}}}}}} providerName=file\n'
        f'{received} config={{"http":{{}}}} providerName=internal\n'
    )

    assert last_file_config(log) == {"http": {"routers": {"a": {}}}}
    assert last_file_config("nothing delivered yet") is None


def test_start_with_a_broken_file_is_ready_and_logs_it(traefik_factory: TraefikFactory) -> None:
    instance = traefik_factory(start=False)
    (instance.dynamic_dir / "broken.yml").write_text("http: [unclosed\n")

    instance.start()

    assert instance.running
    assert any("for the first time" in error for error in instance.log_errors())


def test_stop_ends_the_process(traefik_factory: TraefikFactory) -> None:
    instance = traefik_factory()
    instance.stop()

    assert not instance.running
    with pytest.raises(OSError):
        instance.get("any.test")
    instance.stop()


def test_static_config_matches_dokploy_shape(traefik: TraefikProcess) -> None:
    written = yaml.safe_load(traefik.config_path.read_text())

    assert written["entryPoints"]["web"]["address"] == f"127.0.0.1:{traefik.web_port}"
    assert written["entryPoints"]["websecure"]["http"] == {"tls": {"certResolver": "letsencrypt"}}
    # No providersThrottleDuration: Traefik's real 2 s default applies.
    assert written["providers"] == {"file": {"directory": str(traefik.dynamic_dir), "watch": True}}
    assert written["global"] == {"checkNewVersion": False, "sendAnonymousUsage": False}
    assert written["api"] == {"insecure": True}
    assert written["log"]["level"] == "DEBUG"
    assert "accessLog" not in written
    assert traefik.api_url == f"http://127.0.0.1:{traefik.api_port}"


@fast
def test_throttle_marker_sets_providers_throttle(
    traefik: TraefikProcess, backends: BackendFactory
) -> None:
    written = yaml.safe_load(traefik.config_path.read_text())
    started = time.monotonic()

    write_dynamic(traefik, "quick.yml", route("quick", "quick.test", backends("quick").url))
    traefik.wait_router("quick")

    assert written["providers"]["providersThrottleDuration"] == "0s"
    # With the 2 s default, a file written right after startup waits out the window.
    assert time.monotonic() - started < 1.5


@fast
def test_running_version_is_the_requested_one(traefik: TraefikProcess) -> None:
    assert traefik.api_json("/api/version")["Version"] == traefik.version


# -- Docker static configuration ----------------------------------------------------------


def test_docker_static_config_is_the_local_one_with_container_addresses() -> None:
    docker = yaml.safe_load((ROOT / "tests" / "data" / "traefik.yml").read_text())
    local = static_config(
        web_port=80,
        websecure_port=443,
        api_port=8080,
        dynamic_dir=Path("/etc/dokploy/traefik/dynamic"),
        log_path=None,
    )
    for entrypoint in local["entryPoints"].values():
        entrypoint["address"] = entrypoint["address"].removeprefix("127.0.0.1")

    assert docker == local


# -- pure helpers -------------------------------------------------------------------------


def test_wait_for_returns_first_truthy_value() -> None:
    values = iter([0, 0, 7, 8])

    assert wait_for(lambda: next(values), timeout=5) == 7


def test_wait_for_returns_last_value_when_time_is_up() -> None:
    started = time.monotonic()

    assert wait_for(lambda: [], timeout=0.1) == []
    assert time.monotonic() - started < 2


def test_error_entries_keep_continuation_lines_and_skip_other_levels() -> None:
    log = textwrap.dedent(
        """\
        2026-01-01T00:00:00Z INF x.go:1 > fine
        2026-01-01T00:00:01Z ERR x.go:2 > first line
        second line
        2026-01-01T00:00:02Z WRN x.go:3 > a warning
        panic: boom
        """
    )

    assert error_entries(log) == ["2026-01-01T00:00:01Z ERR x.go:2 > first line\nsecond line"]
    assert error_entries("panic: boom\ngoroutine 1") == ["panic: boom\ngoroutine 1"]


def test_default_allow_list_names_only_the_letsencrypt_resolver() -> None:
    line = "2026-01-01T00:00:00Z ERR t.go:1 > Router uses a nonexistent certificate resolver"
    known = f"{line} certificateResolver=letsencrypt routerName=a@file"
    custom = f"{line} certificateResolver=custom routerName=a@file"

    assert len(DEFAULT_ALLOWED_ERRORS) >= 1
    endpoints = _TextLog(known + "\n" + custom)
    assert endpoints.log_errors() == [custom]


class _TextLog(TraefikEndpoints):
    def __init__(self, text: str) -> None:
        super().__init__(Path("/nonexistent"), 1, 2, 3)
        self.text = text

    def log_text(self) -> str:
        return self.text


def test_version_ids_name_the_minor_line() -> None:
    assert version_ids(["3.6.15", "3.7.15"]) == ["traefik3.6", "traefik3.7"]
    assert version_ids(["3.6.14", "3.6.15"]) == ["traefik3.6.14", "traefik3.6.15"]


# -- backends -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE"])
def test_backend_answers_every_method_with_json(backends: BackendFactory, method: str) -> None:
    backend = backends("echo")

    status, body = direct(backend, method, "/a/b?c=d&e=f", body=b"payload")

    assert status == 200
    assert body["backend"] == "echo"
    assert (body["method"], body["path"], body["query"]) == (method, "/a/b", "c=d&e=f")
    assert body["host"] == "direct.test"
    assert body["headers"]["Host"] == "direct.test"
    assert backend.requests[-1] == body


def test_backend_answers_head_without_body(backends: BackendFactory) -> None:
    status, body = direct(backends("head"), "HEAD", "/")

    assert (status, body) == (200, None)


def test_backend_status_and_headers_are_configurable(backends: BackendFactory) -> None:
    backend = backends("denied", status=401, headers={"WWW-Authenticate": "Basic"})
    conn = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=5)
    try:
        conn.request("GET", "/")
        answer = conn.getresponse()
        answer.read()
    finally:
        conn.close()

    assert answer.status == 401
    assert answer.getheader("WWW-Authenticate") == "Basic"


def test_backends_get_distinct_ports_and_stop() -> None:
    factory = BackendFactory()
    first, second = factory("one"), factory("two")
    assert first.port != second.port
    assert first.url == f"http://127.0.0.1:{first.port}"

    factory.stop_all()

    with pytest.raises(OSError):
        direct(first, "GET", "/")


# -- options ------------------------------------------------------------------------------


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """An isolated pytest run that loads the harness plugins."""
    monkeypatch.syspath_prepend(str(ROOT))
    pytester.makeconftest(INNER_CONFTEST)
    return pytester


def test_docker_tests_are_deselected_without_the_option(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.docker
        def test_marked(): pass

        def test_by_fixture(docker_traefik): pass

        def test_plain(): pass
        """
    )

    result = inner.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=1, deselected=2)


def test_docker_option_without_engine_is_an_error(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Aim the docker client at a socket of our own that nothing serves.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    inner.makepyfile("def test_plain(): pass")

    result = inner.runpytest("-p", "no:cacheprovider", "--docker")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--docker: no docker engine answers*absent.sock*"])


def test_traefik_fixture_is_parametrized_over_versions(inner: pytest.Pytester) -> None:
    inner.makepyfile("def test_proxy(traefik): pass")

    default = inner.runpytest("-p", "no:cacheprovider", "--collect-only", "-q")
    chosen = inner.runpytest(
        "-p", "no:cacheprovider", "--collect-only", "-q", "--traefik-versions", "3.7.15"
    )

    default.stdout.fnmatch_lines(["*test_proxy[[]traefik3.6[]]", "*test_proxy[[]traefik3.7[]]"])
    chosen.stdout.fnmatch_lines(["*test_proxy[[]traefik3.7[]]"])
    assert "traefik3.6" not in chosen.stdout.str()


def test_bad_traefik_version_is_a_usage_error(inner: pytest.Pytester) -> None:
    inner.makepyfile("def test_plain(): pass")

    result = inner.runpytest("-p", "no:cacheprovider", "--traefik-versions", "latest")

    assert result.ret == pytest.ExitCode.USAGE_ERROR


@pytest.mark.parametrize(("ci", "outcome"), [("true", "errors"), ("", "skipped")])
def test_missing_binary_fails_in_ci_and_skips_locally(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str
) -> None:
    monkeypatch.setenv("CI", ci)
    inner.makepyfile("def test_proxy(traefik): pass")

    result = inner.runpytest("-p", "no:cacheprovider", "-rs", "--traefik-versions", "0.0.1")

    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*traefik 0.0.1 is not installed at*scripts/setup.sh*"])


# -- the Docker path (deselected without --docker) ----------------------------------------


@pytest.mark.docker
def test_docker_traefik_routes_to_whoami(
    docker_traefik: DockerTraefik, docker_backend: DockerBackend
) -> None:
    write_dynamic(docker_traefik, "whoami.yml", route("whoami", "whoami.test", docker_backend.url))
    docker_traefik.wait_router("whoami")

    answer = docker_traefik.get("whoami.test", "/api")

    assert answer.status == 200
    assert answer.json()["host"] == "whoami.test"
    assert docker_traefik.version.startswith("3.6.")
    assert docker_traefik.log_errors() == []
