"""A TCP proxy a test controls: the network between the sidecar and its database.

``tcp_proxy(target_port)`` listens on 127.0.0.1:<free port> and forwards every connection
to 127.0.0.1:<target_port>, two threads per connection. A test then breaks the path the
ways a real network does: :meth:`TcpProxy.cut` (every live connection closed, new ones
refused, like a database host going away) and :meth:`TcpProxy.drop_after` (connections
closed after a byte budget from the server, like a connection that drops mid-query).
:meth:`TcpProxy.restore` heals both, on the same port.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

__all__ = ["ProxyFactory", "TcpProxy", "tcp_proxy"]

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
_CHUNK = 65536
_CONNECT_TIMEOUT = 5.0
_BACKLOG = 64


class _Link:
    """One client connection and its upstream twin; closed once, by whichever side ends."""

    def __init__(self, client: socket.socket, upstream: socket.socket, budget: int | None):
        self.client = client
        self.upstream = upstream
        # Bytes from the server still allowed through before the link is cut; None: no limit.
        self.budget = budget
        self._lock = threading.Lock()
        self._shut = False
        self._pumps_left = 2

    @property
    def open(self) -> bool:
        return not self._shut

    def take(self, size: int) -> tuple[int, bool]:
        """How many of ``size`` server bytes may pass, and whether that spends the budget."""
        with self._lock:
            if self.budget is None:
                return size, False
            allowed = min(size, self.budget)
            self.budget -= allowed
            return allowed, self.budget == 0

    def set_budget(self, budget: int | None) -> None:
        with self._lock:
            self.budget = budget

    def shut(self) -> None:
        """Wake both pumps; sockets are closed only once neither uses them any more."""
        with self._lock:
            if self._shut:
                return
            self._shut = True
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def pump_done(self) -> None:
        self.shut()
        with self._lock:
            self._pumps_left -= 1
            last = self._pumps_left == 0
        if last:
            self.client.close()
            self.upstream.close()


class TcpProxy:
    """A loopback TCP forwarder with switches for the failures a test needs."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.accepted = 0
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._budget: int | None = None
        self._stopped = False

    # --- switches -------------------------------------------------------------------------

    def start(self) -> None:
        """Listen (again): a free port the first time, the same port afterwards."""
        if self._stopped:
            raise RuntimeError("a stopped proxy does not start again")
        if self._listener is not None:
            return
        self._listener = _listen(self.port)
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(
            target=self._accept_loop, args=(self._listener,), daemon=True
        )
        self._acceptor.start()
        logger.debug("proxy 127.0.0.1:%d -> 127.0.0.1:%d listening", self.port, self.target_port)

    def cut(self) -> None:
        """Close every live connection and refuse new ones until :meth:`restore`."""
        # Limitation: a cut refuses at once; no black-hole mode where packets vanish and
        # clients wait out their timeouts (that needs a firewall, not a userspace proxy).
        self._close_listener()
        for link in self._snapshot():
            link.shut()
        logger.debug("proxy on port %d cut", self.port)

    def drop_after(self, n_bytes: int) -> None:
        """Cut each connection once ``n_bytes`` more have come from the server.

        Live connections count from now, new ones from their first byte; the budget holds
        for every connection until :meth:`restore`.
        """
        if n_bytes < 0:
            raise ValueError(f"drop_after needs a byte count >= 0, not {n_bytes}")
        with self._lock:
            self._budget = n_bytes
        for link in self._snapshot():
            link.set_budget(n_bytes)

    def restore(self) -> None:
        """Forward without limits again, listening on the same port."""
        with self._lock:
            self._budget = None
        for link in self._snapshot():
            link.set_budget(None)
        self.start()

    def stop(self) -> None:
        """Cut for good (fixture teardown)."""
        self.cut()
        self._stopped = True

    @property
    def live_connections(self) -> int:
        return sum(1 for link in self._snapshot() if link.open)

    # --- plumbing -------------------------------------------------------------------------

    def _snapshot(self) -> list[_Link]:
        with self._lock:
            return list(self._links)

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        # shutdown() is what wakes a thread blocked in accept(); close() alone does not.
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self._serve(client)

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection((HOST, self.target_port), _CONNECT_TIMEOUT)
        except OSError as exc:
            # The target is down: the client sees its connection closed, as through a NAT.
            logger.debug("proxy on port %d: target unreachable: %s", self.port, exc)
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            link = _Link(client, upstream, self._budget)
            self._links.add(link)
            self.accepted += 1
        self._pump(link, link.client, link.upstream, counted=False)
        self._pump(link, link.upstream, link.client, counted=True)

    def _pump(
        self, link: _Link, source: socket.socket, sink: socket.socket, *, counted: bool
    ) -> None:
        thread = threading.Thread(
            target=_forward, args=(link, source, sink, counted, self._forget), daemon=True
        )
        thread.start()

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)


def _listen(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Rebinding the same port after cut() must not wait out TIME_WAIT.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((HOST, port))
        listener.listen(_BACKLOG)
    except OSError:
        listener.close()
        raise
    return listener


def _forward(
    link: _Link,
    source: socket.socket,
    sink: socket.socket,
    counted: bool,
    forget: Callable[[_Link], None],
) -> None:
    try:
        with contextlib.suppress(OSError):
            _copy(link, source, sink, counted)
    finally:
        link.pump_done()
        forget(link)


def _copy(link: _Link, source: socket.socket, sink: socket.socket, counted: bool) -> None:
    while link.open:
        data = source.recv(_CHUNK)
        if not data:
            return
        allowed, spent = link.take(len(data)) if counted else (len(data), False)
        sink.sendall(data[:allowed])
        if spent:
            return


# --- fixture --------------------------------------------------------------------------------

ProxyFactory = Callable[[int], TcpProxy]


@pytest.fixture
def tcp_proxy() -> Iterator[ProxyFactory]:
    """Start proxies: ``proxy = tcp_proxy(own_postgres.port)``; all stop at teardown."""
    proxies: list[TcpProxy] = []

    def start(target_port: int) -> TcpProxy:
        proxy = TcpProxy(target_port)
        proxy.start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()
