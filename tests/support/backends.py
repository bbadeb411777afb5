"""Real HTTP backends for tests: threads on free 127.0.0.1 ports that describe each request.

Every backend answers every method with a JSON body naming itself and echoing what it
received (``backend``, ``method``, ``path``, ``query``, ``host``, ``headers``), so a test
can tell which backend Traefik chose and what Traefik changed on the way (stripped
prefixes, forwarded headers, basic-auth removal).
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

__all__ = ["Backend", "BackendFactory", "backends", "describe_request"]

logger = logging.getLogger(__name__)

_JOIN_TIMEOUT = 5.0


class _BackendServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name: str, status: int, headers: Mapping[str, str]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.name = name
        self.status = status
        self.extra_headers = dict(headers)
        self.seen: list[dict[str, Any]] = []
        self.seen_lock = threading.Lock()


def describe_request(
    name: str, method: str, target: str, headers: Mapping[str, str]
) -> dict[str, Any]:
    """The JSON a backend answers for one request (``query`` is the raw query string)."""
    parts = urllib.parse.urlsplit(target)
    return {
        "backend": name,
        "method": method,
        "path": parts.path,
        "query": parts.query,
        "host": headers.get("Host", ""),
        "headers": dict(headers),
    }


class _Handler(BaseHTTPRequestHandler):
    server: _BackendServer
    protocol_version = "HTTP/1.1"

    def __getattr__(self, name: str) -> Callable[[], None]:
        # http.server dispatches on do_<METHOD>; every method, even PURGE, gets an answer.
        if name.startswith("do_"):
            return self._answer
        raise AttributeError(name)

    def _answer(self) -> None:
        self._drain_body()
        headers = _merged(self.headers.items())
        described = describe_request(self.server.name, self.command, self.path, headers)
        with self.server.seen_lock:
            self.server.seen.append(described)
        self._reply(json.dumps(described, sort_keys=True).encode())

    def _drain_body(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._drain_chunks()
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def _drain_chunks(self) -> None:
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return
            self.rfile.read(size + 2)

    def _reply(self, body: bytes) -> None:
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in self.server.extra_headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # http.server writes every request to stderr; keep it in the debug log instead.
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("backend %s: %s", self.server.name, format % args)


def _merged(pairs: Any) -> dict[str, str]:
    merged: dict[str, str] = {}
    for key, value in pairs:
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


@dataclass
class Backend:
    """One running backend. ``url`` is how Traefik (on this host) reaches it."""

    name: str
    _server: _BackendServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """What this backend has answered so far, oldest first."""
        with self._server.seen_lock:
            return list(self._server.seen)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(_JOIN_TIMEOUT)


@dataclass
class BackendFactory:
    """Starts backends for one test and stops them all at its end."""

    started: list[Backend] = field(default_factory=list)

    def __call__(
        self, name: str = "backend", *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Backend:
        """A new backend answering ``status`` with extra response ``headers``."""
        server = _BackendServer(name, status, headers or {})
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.name = f"backend-{name}"
        thread.start()
        backend = Backend(name, server, thread)
        self.started.append(backend)
        logger.debug("backend %s listening on %s", name, backend.url)
        return backend

    def stop_all(self) -> None:
        for backend in self.started:
            backend.stop()


@pytest.fixture
def backends() -> Iterator[BackendFactory]:
    """Start HTTP backends with ``backends("name")``; all are stopped at teardown."""
    factory = BackendFactory()
    try:
        yield factory
    finally:
        factory.stop_all()
