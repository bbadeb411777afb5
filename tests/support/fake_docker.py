"""A stand-in Docker Engine API on a unix socket, for tests that drive the real docker SDK.

No engine runs on the test machines, so this serves just what traefik_gen.watch.docker asks
of the SDK: ``/_ping``, ``/version`` (the SDK negotiates the API version from it), a label-
filtered ``/containers/json`` and a streaming ``/events``, each with or without the
``/v1.NN`` prefix. Tests add and remove containers, emit events, count calls, make an
endpoint fail, and stop the engine (the socket goes away) and start it again on the same
path. The fixture ``fake_docker`` gives a running engine under ``tmp_path``.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import queue
import re
import select
import socket
import socketserver
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest

__all__ = [
    "API_VERSION",
    "FakeContainer",
    "FakeDockerEngine",
    "compose_labels",
    "eventually",
    "fake_docker",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

API_VERSION = "1.43"
_VERSIONED = re.compile(r"^/v\d+\.\d+(?=/)")
# sun_path holds 108 bytes on Linux; a deep basetemp would not fit.
_MAX_SOCKET_PATH = 100
_POLL = 0.05


def compose_labels(project: str, service: str, number: int) -> dict[str, str]:
    """The labels docker compose puts on replica ``number`` of ``service``."""
    return {
        "com.docker.compose.project": project,
        "com.docker.compose.service": service,
        "com.docker.compose.container-number": str(number),
        "com.docker.compose.oneoff": "False",
    }


def eventually(predicate: Callable[[], T], timeout: float = 5.0) -> T:
    """Poll ``predicate`` until it is truthy or ``timeout`` passes; its last value either way."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(0.01)
        value = predicate()
    return value


@dataclass
class FakeContainer:
    """One container as the engine lists it."""

    id: str
    name: str
    labels: dict[str, str]
    state: str = "running"
    created: int = field(default_factory=lambda: int(time.time()))

    def summary(self) -> dict[str, Any]:
        """The entry of ``GET /containers/json`` for this container."""
        return {
            "Id": self.id,
            "Names": [f"/{self.name}"],
            "Image": "fake/image:latest",
            "Labels": dict(self.labels),
            "State": self.state,
            "Status": "Up 1 second" if self.state == "running" else "Exited (0) 1 second ago",
            "Created": self.created,
        }


@dataclass(frozen=True)
class Call:
    """One request the engine answered: method, unversioned path and query."""

    method: str
    path: str
    query: dict[str, list[str]]


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, path: str, engine: FakeDockerEngine) -> None:
        self.engine = engine
        self.connections: set[socket.socket] = set()
        self.guard = threading.Lock()
        super().__init__(path, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.guard:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.guard:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Cut every open connection, as a dying engine does."""
        with self.guard:
            open_now = list(self.connections)
        for conn in open_now:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path = _VERSIONED.sub("", url.path)
        query = parse_qs(url.query)
        engine = self.server.engine
        engine.record(Call("GET", path, query))
        failure = engine.failure(path)
        if failure is not None:
            self._json(failure, {"message": f"fake failure of {path}"})
        elif path == "/_ping":
            self._send(200, b"OK", "text/plain; charset=utf-8")
        elif path == "/version":
            self._json(200, engine.version())
        elif path == "/containers/json":
            self._containers(query)
        elif path == "/events":
            self._events(query)
        else:
            self._json(404, {"message": f"page not found: {path}"})

    def _containers(self, query: dict[str, list[str]]) -> None:
        try:
            filters = _filters(query)
            listing = self.server.engine.list_containers(filters, _flag(query, "all"))
        except ValueError as exc:
            self._json(400, {"message": str(exc)})
            return
        self._json(200, listing)

    def _events(self, query: dict[str, list[str]]) -> None:
        try:
            kinds = _event_kinds(_filters(query))
        except ValueError as exc:
            self._json(400, {"message": str(exc)})
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        with self.server.engine.subscription() as inbox:
            self._stream(inbox, kinds)

    def _stream(self, inbox: queue.Queue[dict[str, Any] | None], kinds: set[str]) -> None:
        while True:
            try:
                event = inbox.get(timeout=_POLL)
            except queue.Empty:
                if self._peer_gone():
                    return
                continue
            if event is None:
                return
            if kinds and event["Type"] not in kinds:
                continue
            if not self._chunk(json.dumps(event).encode() + b"\n"):
                return

    def _chunk(self, data: bytes) -> bool:
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except OSError:
            return False
        return True

    def _peer_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True

    def _json(self, status: int, body: object) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Api-Version", API_VERSION)
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:
        # A unix-socket peer has no address; the base class would index an empty string.
        return "unix"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake docker: %s", format % args)


def _filters(query: dict[str, list[str]]) -> dict[str, list[str]]:
    raw = query.get("filters", ["{}"])[0]
    parsed = json.loads(raw)
    if not isinstance(parsed, dict):
        raise ValueError(f"invalid filters: {raw}")
    return {str(key): [str(item) for item in value] for key, value in parsed.items()}


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, ["0"])[0] not in ("0", "false", "")


def _event_kinds(filters: dict[str, list[str]]) -> set[str]:
    unknown = set(filters) - {"type"}
    if unknown:
        raise ValueError(f"fake engine does not filter events by {sorted(unknown)}")
    return set(filters.get("type", []))


def _label_matches(labels: dict[str, str], wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)


class FakeDockerEngine:
    """A small in-memory Docker engine behind a real unix socket."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.calls: list[Call] = []
        self._containers: dict[str, FakeContainer] = {}
        self._inboxes: set[queue.Queue[dict[str, Any] | None]] = set()
        self._failures: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL to hand the SDK."""
        return f"unix://{self.socket_path}"

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Listen on the socket path (again)."""
        assert self._server is None, "fake docker engine already running"
        self.socket_path.unlink(missing_ok=True)
        self._server = _Server(str(self.socket_path), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _POLL},
            name="fake-docker",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Go away: the socket file disappears and every open connection is cut."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        self.socket_path.unlink(missing_ok=True)
        with self._lock:
            inboxes = list(self._inboxes)
        for inbox in inboxes:
            inbox.put(None)
        server.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def restart(self) -> None:
        """Stop, then start again on the same path, as an engine restart does."""
        self.stop()
        self.start()

    # -- state ----------------------------------------------------------------------------

    def add_container(
        self, name: str, labels: dict[str, str] | None = None, state: str = "running"
    ) -> FakeContainer:
        """Create a container (no event is emitted; call :meth:`emit` for that)."""
        number = next(self._ids)
        digest = hashlib.sha256(f"{name}-{number}".encode()).hexdigest()
        container = FakeContainer(id=digest, name=name, labels=dict(labels or {}), state=state)
        with self._lock:
            self._containers[name] = container
        return container

    def add_replica(
        self, project: str, service: str, number: int, *, name: str | None = None
    ) -> FakeContainer:
        """A running compose replica, named as compose names it unless ``name`` is given."""
        default = f"{project}-{service}-{number}"
        return self.add_container(name or default, compose_labels(project, service, number))

    def remove_container(self, name: str) -> None:
        with self._lock:
            del self._containers[name]

    def set_state(self, name: str, state: str) -> None:
        with self._lock:
            self._containers[name].state = state

    def fail(self, path: str, status: int | None = 500) -> None:
        """Answer ``path`` (unversioned, e.g. ``/events``) with ``status``; None heals it."""
        with self._lock:
            if status is None:
                self._failures.pop(path, None)
            else:
                self._failures[path] = status

    def emit(
        self, kind: str, action: str, name: str, attributes: dict[str, str] | None = None
    ) -> None:
        """Send one event to every open ``/events`` stream."""
        event = self._event(kind, action, name, attributes or {})
        with self._lock:
            inboxes = list(self._inboxes)
        for inbox in inboxes:
            inbox.put(event)

    # -- what tests observe -------------------------------------------------------------------

    @property
    def subscribers(self) -> int:
        """How many ``/events`` streams are open now."""
        with self._lock:
            return len(self._inboxes)

    def count(self, path: str) -> int:
        """How many requests for ``path`` (unversioned) were answered so far."""
        with self._lock:
            return sum(1 for call in self.calls if call.path == path)

    # -- used by the handler --------------------------------------------------------------------

    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def failure(self, path: str) -> int | None:
        with self._lock:
            return self._failures.get(path)

    def version(self) -> dict[str, Any]:
        return {
            "ApiVersion": API_VERSION,
            "MinAPIVersion": "1.12",
            "Version": "24.0.0-fake",
            "Os": "linux",
            "Arch": "amd64",
        }

    def list_containers(self, filters: dict[str, list[str]], all_states: bool) -> list[Any]:
        unknown = set(filters) - {"label", "status"}
        if unknown:
            raise ValueError(f"fake engine does not filter containers by {sorted(unknown)}")
        with self._lock:
            found = list(self._containers.values())
        # Like the real engine, a listing without `all` holds running and paused containers.
        shown = [c for c in found if all_states or c.state in ("running", "paused")]
        wanted = filters.get("label", [])
        shown = [c for c in shown if all(_label_matches(c.labels, w) for w in wanted)]
        states = filters.get("status")
        return [c.summary() for c in shown if not states or c.state in states]

    def subscription(self) -> _Subscription:
        return _Subscription(self)

    def _event(
        self, kind: str, action: str, name: str, attributes: dict[str, str]
    ) -> dict[str, Any]:
        with self._lock:
            container = self._containers.get(name)
        labels = dict(container.labels) if container else {}
        actor_id = container.id if container else hashlib.sha256(name.encode()).hexdigest()
        now = time.time_ns()
        return {
            "Type": kind,
            "Action": action,
            "Actor": {"ID": actor_id, "Attributes": {**labels, "name": name, **attributes}},
            "scope": "local",
            "time": now // 1_000_000_000,
            "timeNano": now,
        }

    def _subscribe(self, inbox: queue.Queue[dict[str, Any] | None]) -> None:
        with self._lock:
            self._inboxes.add(inbox)

    def _unsubscribe(self, inbox: queue.Queue[dict[str, Any] | None]) -> None:
        with self._lock:
            self._inboxes.discard(inbox)


class _Subscription:
    """One open ``/events`` stream's inbox, registered for as long as the stream lives."""

    def __init__(self, engine: FakeDockerEngine) -> None:
        self._engine = engine
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def __enter__(self) -> queue.Queue[dict[str, Any] | None]:
        self._engine._subscribe(self._inbox)
        return self._inbox

    def __exit__(self, *exc: object) -> None:
        self._engine._unsubscribe(self._inbox)


@pytest.fixture
def fake_docker(tmp_path: Path) -> Iterator[FakeDockerEngine]:
    """A running fake engine on ``<tmp_path>/docker.sock``, stopped after the test."""
    with contextlib.ExitStack() as stack:
        folder = tmp_path
        if len(str(folder / "docker.sock")) > _MAX_SOCKET_PATH:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fake-docker-")))
        engine = FakeDockerEngine(folder / "docker.sock")
        engine.start()
        stack.callback(engine.stop)
        yield engine
