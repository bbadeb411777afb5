"""Docker as a sync trigger, and as the source of compose replicas' DNS names.

The sidecar re-plans when a container or a Swarm service changes. A compose domain's
backend is every running replica of its service, reached by container name on
dokploy-network: Traefik gets DNS names, never IPs, so a replica that is recreated with a
new address needs no rewrite. Docker is optional: without an engine the sidecar only
polls, and while the engine is away the last known replicas stand.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import requests
from docker import DockerClient
from docker.errors import DockerException

from traefik_gen.errors import SettingsError

__all__ = [
    "DEFAULT_DOCKER_URL",
    "NUMBER_LABEL",
    "ONEOFF_LABEL",
    "PROJECT_LABEL",
    "SERVICE_LABEL",
    "Debouncer",
    "DockerWatcher",
    "ReplicaKey",
    "resolve_engine_url",
]

logger = logging.getLogger(__name__)

DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"
ONEOFF_LABEL = "com.docker.compose.oneoff"

ReplicaKey = tuple[str, str]
"""A compose (project, service) pair."""

# The engine names a removed container "destroy" (its "remove" is for services and
# networks); "rename" matters because compose renames a container it is about to replace.
_TRIGGERS: Mapping[str, frozenset[str]] = {
    "container": frozenset({"create", "update", "remove", "destroy", "start", "die", "rename"}),
    "service": frozenset({"create", "update", "remove"}),
}
_EVENT_FILTERS = {"type": sorted(_TRIGGERS)}
_FAILURES = (DockerException, requests.exceptions.RequestException, OSError)
_FIRST_RETRY = 0.1
_STOP_WITHIN = 2.0
_UNNUMBERED = sys.maxsize
_DISPATCH_THREAD = "traefik-gen-docker-debounce"

OnChange = Callable[[str], None]


def resolve_engine_url(base_url: str | None, environ: Mapping[str, str]) -> tuple[str, str]:
    """The engine URL to dial, and how log lines name it.

    An explicit URL is its own name. One taken from ``DOCKER_HOST`` is named after the
    variable, because environment values never go into logs.
    """
    if base_url:
        return base_url, base_url
    # Limitation: DOCKER_TLS_VERIFY, DOCKER_CERT_PATH and CLI contexts are not read (no TLS).
    from_env = environ.get("DOCKER_HOST", "").strip()
    if from_env:
        return from_env, "$DOCKER_HOST"
    return DEFAULT_DOCKER_URL, DEFAULT_DOCKER_URL


class Debouncer:
    """Turns a burst of events into one trigger.

    The trigger is due after ``min_wait`` seconds without a new event, but never later
    than ``max_wait`` after the first event of the burst, so a steady stream still syncs.
    Not thread-safe by itself; :class:`DockerWatcher` guards it.
    """

    def __init__(self, min_wait: float, max_wait: float) -> None:
        if min_wait < 0:
            raise SettingsError(f"docker debounce 'min_wait' must not be negative, not {min_wait}")
        if max_wait < min_wait:
            raise SettingsError(
                f"docker debounce 'max_wait' ({max_wait}) is shorter than 'min_wait' ({min_wait})"
            )
        self.min_wait = min_wait
        self.max_wait = max_wait
        self._first: float | None = None
        self._last = 0.0
        self._reason = ""
        self._count = 0

    def add(self, reason: str, now: float) -> None:
        """Record one event seen at monotonic time ``now``."""
        if self._first is None:
            self._first, self._reason, self._count = now, reason, 0
        self._last = now
        self._count += 1

    def wait_time(self, now: float) -> float | None:
        """Seconds until the trigger is due (0 when due); None when nothing is pending."""
        if self._first is None:
            return None
        due = min(self._last + self.min_wait, self._first + self.max_wait)
        return max(0.0, due - now)

    def take(self) -> str:
        """The burst's reason (its first event, and how many followed); starts a new burst."""
        more = self._count - 1
        reason = f"{self._reason} (+{more} more)" if more else self._reason
        self._first, self._reason, self._count = None, "", 0
        return reason


class _Backoff:
    """Doubling pauses between reconnects, capped."""

    def __init__(self, first: float, cap: float) -> None:
        self._first = min(first, cap)
        self._cap = cap
        self._next = self._first

    def pause(self) -> float:
        current = self._next
        self._next = min(current * 2, self._cap)
        return current

    def reset(self) -> None:
        self._next = self._first


class _Link:
    """The state of one connection to the engine: one log line per change, never per retry."""

    def __init__(self, what: str, lost: str, then: str, back: str) -> None:
        self._what = what
        self._lost = lost
        self._then = then
        self._back = back
        self._up: bool | None = None
        self._lock = threading.Lock()

    def up(self) -> bool:
        """Mark the connection working; True when it had been lost."""
        with self._lock:
            recovered, self._up = self._up is False, True
        if recovered:
            logger.info("%s %s", self._what, self._back)
        return recovered

    def down(self, why: str) -> None:
        """Mark the connection lost because of ``why`` (an exception type, never a value)."""
        with self._lock:
            changed, self._up = self._up is not False, False
        if changed:
            logger.warning("%s %s (%s); %s", self._what, self._lost, why, self._then)


class DockerWatcher:
    """Docker events as debounced sync triggers, and the replicas of compose services.

    Build it with :meth:`connect`. A watcher without an engine is disabled: it never
    starts a thread, :meth:`replicas` answers None and :meth:`snapshot` is empty.
    """

    def __init__(
        self,
        client: Any | None,
        where: str,
        *,
        debouncer: Debouncer,
        max_backoff: float = 10.0,
        socket_path: str | None = None,
    ) -> None:
        self._client = client
        self._where = where
        self._socket_path = socket_path
        self._debouncer = debouncer
        self._max_backoff = max_backoff
        self._replicas: dict[ReplicaKey, tuple[str, ...]] | None = None
        self._lock = threading.Lock()
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._in_handler = threading.Event()
        self._stream: Any | None = None
        self._threads: list[threading.Thread] = []
        self._events = _Link(f"docker events from {where}", "lost", "retrying", "are back")
        self._listing = _Link(
            f"docker container listing from {where}",
            "failed",
            "keeping the last known replicas",
            "works again",
        )

    @classmethod
    def connect(
        cls,
        base_url: str | None = None,
        *,
        min_wait: float = 0.5,
        max_wait: float = 5.0,
        max_backoff: float = 10.0,
        timeout: float = 10.0,
    ) -> DockerWatcher:
        """Connect to the engine at ``base_url`` (None: ``$DOCKER_HOST``, else the local socket).

        Never raises for a missing engine: it logs one info line and returns a disabled
        watcher, and the sidecar goes on polling. ``timeout`` bounds every call but the
        event stream.
        """
        debouncer = Debouncer(min_wait, max_wait)
        url, where = resolve_engine_url(base_url, os.environ)
        socket_path = _unix_socket(url)
        client = None if _missing(socket_path) else _open_client(url, timeout)
        if client is None:
            # Limitation: an engine that appears later is not picked up; restart the sidecar.
            logger.info("no Docker engine at %s: polling only", where)
            return cls(None, where, debouncer=debouncer, max_backoff=max_backoff)
        watcher = cls(
            client, where, debouncer=debouncer, max_backoff=max_backoff, socket_path=socket_path
        )
        watcher.refresh()
        logger.info("using the Docker engine at %s", where)
        return watcher

    @property
    def enabled(self) -> bool:
        """False when no engine answered at :meth:`connect`."""
        return self._client is not None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, on_change: OnChange) -> None:
        """Follow the event stream in daemon threads; ``on_change(reason)`` once per burst.

        The replica listing is refreshed just before each call, so ``on_change`` reads
        fresh :meth:`replicas`. A disabled watcher does nothing.
        """
        if self._client is None or self._threads:
            logger.debug("docker watcher not started (disabled or already running)")
            return
        self._threads = [
            threading.Thread(target=self._follow, name="traefik-gen-docker-events", daemon=True),
            threading.Thread(
                target=self._dispatch,
                args=(on_change,),
                name=_DISPATCH_THREAD,
                daemon=True,
            ),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop both threads; returns within about two seconds, pending triggers dropped."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        with self._lock:
            stream = self._stream
        if stream is not None:
            _close_stream(stream)
        deadline = time.monotonic() + _STOP_WITHIN
        for thread in self._threads_to_join():
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            logger.debug("docker watcher threads still busy at stop; left to exit as daemons")
        if self._client is not None:
            self._client.close()

    def _threads_to_join(self) -> list[threading.Thread]:
        # A handler that is busy (a sync in progress) or that calls stop() itself is not
        # waited for: it is a daemon, and it is never called again.
        busy = self._in_handler.is_set()
        current = threading.current_thread()
        return [
            thread
            for thread in self._threads
            if thread is not current and not (busy and thread.name == _DISPATCH_THREAD)
        ]

    # -- replicas ------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """List the running compose containers now: one ``/containers/json`` call.

        Returns False when the engine does not answer; the last known listing stays, so
        a replica set never flips back to unknown while the engine is away.
        """
        if self._client is None:
            return False
        if _missing(self._socket_path):
            self._listing.down("socket missing")
            return False
        try:
            entries = self._client.api.containers(filters={"label": [PROJECT_LABEL]})
        except _FAILURES as exc:
            if not self._stopping.is_set():
                self._listing.down(type(exc).__name__)
            return False
        listing = _group_replicas(entries if isinstance(entries, list) else [])
        with self._lock:
            self._replicas = listing
        self._listing.up()
        return True

    def replicas(self, project: str, service: str) -> tuple[str, ...] | None:
        """DNS names of the running replicas of compose ``service`` in ``project``.

        Sorted by container number, then name. Empty when none runs; None only when
        Docker is unavailable and no listing was ever read.
        """
        # Limitation: one engine; remote servers (serverId) and Swarm stacks are not listed.
        with self._lock:
            listing = self._replicas
        if listing is None:
            return None
        return listing.get((project, service), ())

    def snapshot(self) -> dict[ReplicaKey, tuple[str, ...]]:
        """Every known (project, service) with its replica names, for the planner."""
        with self._lock:
            return dict(self._replicas or {})

    # -- the event thread --------------------------------------------------------------------

    def _follow(self) -> None:
        backoff = _Backoff(_FIRST_RETRY, self._max_backoff)
        while not self._stopping.is_set():
            opened = time.monotonic()
            why = self._follow_once()
            if self._stopping.is_set():
                return
            self._events.down(why)
            # A stream that lived longer than the longest pause was a success, not a retry.
            if time.monotonic() - opened > self._max_backoff:
                backoff.reset()
            pause = backoff.pause()
            logger.debug("reconnecting to docker events in %.2f s", pause)
            self._stopping.wait(pause)

    def _follow_once(self) -> str:
        """Read one event stream until it breaks; why it broke."""
        assert self._client is not None
        if _missing(self._socket_path):
            return "socket missing"
        try:
            stream = self._client.events(decode=True, filters=_EVENT_FILTERS)
        except _FAILURES as exc:
            return type(exc).__name__
        with self._lock:
            self._stream = stream
        try:
            refused = _refusal(stream)
            if refused is not None or self._stopping.is_set():
                return refused or "stopped"
            self._on_stream_open()
            for event in stream:
                self._on_event(event)
        except _FAILURES as exc:
            return type(exc).__name__
        finally:
            with self._lock:
                self._stream = None
            _close_stream(stream)
        return "stream ended"

    def _on_stream_open(self) -> None:
        # Events are not queued while no stream is open: what happened meanwhile is
        # found by a listing (first stream) or assumed (a stream that came back).
        if self._events.up():
            self._trigger("docker events resumed")
            return
        before = self.snapshot()
        if self.refresh() and self.snapshot() != before:
            self._trigger("docker containers changed before events were followed")

    def _on_event(self, event: object) -> None:
        reason = _event_reason(event)
        if reason is not None:
            logger.debug("docker event: %s", reason)
            self._trigger(reason)

    def _trigger(self, reason: str) -> None:
        with self._wake:
            self._debouncer.add(reason, time.monotonic())
            self._wake.notify_all()

    # -- the debounce thread -----------------------------------------------------------------

    def _dispatch(self, on_change: OnChange) -> None:
        while True:
            reason = self._next_burst()
            if reason is None:
                return
            self.refresh()
            self._call(on_change, reason)

    def _next_burst(self) -> str | None:
        """Block until a burst is due (its reason) or the watcher stops (None)."""
        with self._wake:
            while not self._stopping.is_set():
                wait = self._debouncer.wait_time(time.monotonic())
                if wait is not None and wait <= 0:
                    return self._debouncer.take()
                self._wake.wait(wait)
        return None

    def _call(self, on_change: OnChange, reason: str) -> None:
        logger.debug("docker change: %s", reason)
        self._in_handler.set()
        try:
            on_change(reason)
        except Exception:
            # The handler belongs to the sync loop; its failure must not end the watching.
            logger.warning("docker change handler failed on %s", reason, exc_info=True)
        finally:
            self._in_handler.clear()


def _unix_socket(url: str) -> str | None:
    """The socket path of a unix URL (both spellings the SDK takes), else None."""
    for scheme in ("unix://", "http+unix://"):
        if url.startswith(scheme):
            return "/" + url.removeprefix(scheme).lstrip("/")
    return None


def _missing(socket_path: str | None) -> bool:
    # An engine that stops removes its socket. Not dialing a missing file names the cause
    # and sidesteps docker SDK 7 leaking the socket object of a failed unix connect
    # (docker/docker-py pull request #3356), a ResourceWarning on every retry.
    return socket_path is not None and not os.path.exists(socket_path)


def _open_client(url: str, timeout: float) -> Any | None:
    """A client whose engine answered a ping, or None."""
    try:
        # The SDK asks /version while it is built, so a dead socket fails here already.
        client = DockerClient(base_url=url, timeout=timeout)
    except _FAILURES as exc:
        logger.debug("docker engine probe failed: %s", type(exc).__name__)
        return None
    try:
        client.ping()
    except _FAILURES as exc:
        logger.debug("docker engine ping failed: %s", type(exc).__name__)
        client.close()
        return None
    return client


def _close_stream(stream: Any) -> None:
    # The SDK digs the socket out of the response; once the response is done its file
    # object is gone and that lookup fails, with nothing left to close.
    with contextlib.suppress(OSError, AttributeError):
        stream.close()


def _refusal(stream: Any) -> str | None:
    """``HTTP <status>`` when the engine answered the event request with an error."""
    # The SDK turns an error answer to /events into an empty stream (its APIError is an
    # OSError, which its CancellableStream swallows), so read the status it wraps.
    status = getattr(getattr(stream, "_response", None), "status_code", 200)
    return f"HTTP {status}" if isinstance(status, int) and status >= 400 else None


def _event_reason(event: object) -> str | None:
    """A one-line reason for a triggering event, or None for one that does not trigger."""
    if not isinstance(event, Mapping):
        return None
    kind, action = event.get("Type"), event.get("Action")
    if not isinstance(kind, str) or action not in _TRIGGERS.get(kind, ()):
        return None
    actor = event.get("Actor")
    attributes = actor.get("Attributes") if isinstance(actor, Mapping) else None
    name = attributes.get("name") if isinstance(attributes, Mapping) else None
    return f"docker {kind} {action} {name or '?'}"


def _group_replicas(entries: Iterable[object]) -> dict[ReplicaKey, tuple[str, ...]]:
    found: dict[ReplicaKey, list[tuple[int, str]]] = {}
    for entry in entries:
        replica = _replica(entry)
        if replica is not None:
            key, order = replica
            found.setdefault(key, []).append(order)
    return {key: tuple(name for _, name in sorted(orders)) for key, orders in found.items()}


def _replica(entry: object) -> tuple[ReplicaKey, tuple[int, str]] | None:
    """(project, service) and (number, DNS name) of one running compose container."""
    if not isinstance(entry, Mapping) or entry.get("State") != "running":
        return None
    labels = entry.get("Labels")
    # `docker compose run` containers carry the service's labels too, but serve no traffic.
    if not isinstance(labels, Mapping) or labels.get(ONEOFF_LABEL) == "True":
        return None
    # Limitation: a running but unhealthy replica is kept; the listing gives health as text.
    project, service = labels.get(PROJECT_LABEL), labels.get(SERVICE_LABEL)
    name = _dns_name(entry.get("Names"))
    if not isinstance(project, str) or not isinstance(service, str) or name is None:
        return None
    return (project, service), (_number(labels.get(NUMBER_LABEL)), name)


def _dns_name(names: object) -> str | None:
    # The engine lists "/name"; legacy links add "/other/alias" entries, which are not
    # names the container answers to on a user-defined network.
    if not isinstance(names, list):
        return None
    for name in names:
        if isinstance(name, str) and name.startswith("/") and name.count("/") == 1:
            return name[1:]
    return None


def _number(value: object) -> int:
    # A replica without a number (not started by compose) sorts after the numbered ones.
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return _UNNUMBERED
