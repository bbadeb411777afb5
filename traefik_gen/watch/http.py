"""The sidecar's HTTP endpoints: /healthz, /readyz and /metrics."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from traefik_gen.errors import SettingsError
from traefik_gen.watch.metrics import Health, Metrics

__all__ = ["EndpointServer"]

logger = logging.getLogger(__name__)


class EndpointServer:
    """A small threaded HTTP server; it never blocks the sync loop."""

    def __init__(self, address: str, health: Health, metrics: Metrics) -> None:
        host, _, port = address.rpartition(":")
        try:
            bound = (host.strip("[]") or "127.0.0.1", int(port))
            self._server = ThreadingHTTPServer(bound, _handler(health, metrics))
        except (ValueError, OSError) as exc:
            raise SettingsError(f"cannot listen on '{address}': {exc}") from exc
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        logger.info("serving /healthz, /readyz and /metrics on port %d", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(health: Health, metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                alive, why = health.alive()
                self._send(200 if alive else 503, why.encode() + b"\n", "text/plain")
            elif path == "/readyz":
                ready, why = health.ready()
                self._send(200 if ready else 503, why.encode() + b"\n", "text/plain")
            elif path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"not found\n", "text/plain")

        def do_HEAD(self) -> None:
            # Some health checkers probe with HEAD: same status, no body.
            self._head_only = True
            self.do_GET()

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not getattr(self, "_head_only", False):
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                logger.debug("a client of %s went away before the answer", self.path)

        def log_message(self, format: str, *args: object) -> None:
            # Probes every few seconds would drown the log; keep them at debug.
            logger.debug("endpoint %s", format % args)

    return Handler
