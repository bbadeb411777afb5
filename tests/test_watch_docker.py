"""Docker events as sync triggers, and compose replicas, against a stand-in engine.

The real docker SDK talks to tests.support.fake_docker on a unix socket under tmp_path;
nothing here dials the machine's own socket or $DOCKER_HOST.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_docker import FakeDockerEngine, compose_labels, eventually
from traefik_gen.errors import SettingsError
from traefik_gen.watch.docker import (
    DEFAULT_DOCKER_URL,
    Debouncer,
    DockerWatcher,
    resolve_engine_url,
)

LOGGER = "traefik_gen.watch.docker"
Connect = Callable[..., DockerWatcher]


class Changes:
    """An on_change that records its calls, with what replicas() answered inside each."""

    def __init__(self, watcher: DockerWatcher, project: str = "shop", service: str = "web"):
        self.reasons: list[str] = []
        self.seen: list[tuple[str, ...] | None] = []
        self._watcher = watcher
        self._key = (project, service)
        self._lock = threading.Lock()

    def __call__(self, reason: str) -> None:
        seen = self._watcher.replicas(*self._key)
        with self._lock:
            self.reasons.append(reason)
            self.seen.append(seen)

    def count(self) -> int:
        with self._lock:
            return len(self.reasons)


@pytest.fixture
def connect(fake_docker: FakeDockerEngine) -> Iterator[Connect]:
    """Connect watchers to the fake engine (fast debounce by default); stop them all after."""
    made: list[DockerWatcher] = []

    def _connect(url: str | None = None, **options: Any) -> DockerWatcher:
        settings: dict[str, Any] = {"min_wait": 0.1, "max_wait": 2.0, "max_backoff": 0.2}
        settings.update(options)
        watcher = DockerWatcher.connect(url or fake_docker.url, **settings)
        made.append(watcher)
        return watcher

    yield _connect
    for watcher in made:
        watcher.stop()


def _started(watcher: DockerWatcher, engine: FakeDockerEngine) -> Changes:
    """Start ``watcher``; return once it follows events and has listed what it missed."""
    changes = Changes(watcher)
    subscribers, listed = engine.subscribers, engine.count("/containers/json")
    watcher.start(changes)
    assert eventually(lambda: engine.subscribers > subscribers), "watcher never opened /events"
    assert eventually(lambda: engine.count("/containers/json") > listed), "no catch-up listing"
    return changes


def _watcher_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("traefik-gen-docker")]


def _messages(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    found = [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]
    return [message for message in found if text in message]


def _pauses(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The pauses before each reconnect, in order, as the watcher logged them."""
    retries = [r for r in caplog.records if r.msg == "reconnecting to docker events in %.2f s"]
    return [
        r.args[0] for r in retries if isinstance(r.args, tuple) and isinstance(r.args[0], float)
    ]


# -- the debounce rule ---------------------------------------------------------------------


def test_debounced_trigger_waits_for_min_wait_of_quiet() -> None:
    debouncer = Debouncer(min_wait=0.5, max_wait=5.0)
    debouncer.add("docker container start a", now=10.0)
    debouncer.add("docker container start b", now=10.3)

    assert debouncer.wait_time(10.4) == pytest.approx(0.4)
    assert debouncer.wait_time(10.8) == 0
    assert debouncer.take() == "docker container start a (+1 more)"
    assert debouncer.wait_time(11.0) is None


def test_max_wait_bounds_the_debounce_of_a_continuous_stream() -> None:
    debouncer = Debouncer(min_wait=0.5, max_wait=5.0)
    due_at = None
    for step in range(100):
        now = step * 0.2
        debouncer.add("docker container die x", now)
        if debouncer.wait_time(now) == 0:
            due_at = now
            break

    assert due_at == pytest.approx(5.0)


def test_max_wait_shorter_than_min_wait_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="max_wait"):
        Debouncer(min_wait=2.0, max_wait=1.0)


# -- where the engine is -------------------------------------------------------------------


def test_explicit_engine_url_wins_over_docker_host() -> None:
    url, shown = resolve_engine_url("unix:///run/x.sock", {"DOCKER_HOST": "tcp://10.1.2.3:2375"})

    assert (url, shown) == ("unix:///run/x.sock", "unix:///run/x.sock")


def test_docker_host_is_used_but_never_named_in_logs() -> None:
    url, shown = resolve_engine_url(None, {"DOCKER_HOST": "tcp://10.1.2.3:2375"})

    assert url == "tcp://10.1.2.3:2375"
    assert "10.1.2.3" not in shown


def test_without_url_or_docker_host_the_local_socket_is_used() -> None:
    assert resolve_engine_url(None, {}) == (DEFAULT_DOCKER_URL, DEFAULT_DOCKER_URL)


# -- no engine -------------------------------------------------------------------------------


def test_no_engine_gives_a_disabled_watcher_and_one_info_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    url = f"unix://{tmp_path}/absent.sock"
    calls: list[str] = []

    watcher = DockerWatcher.connect(url)
    watcher.start(calls.append)

    assert not watcher.enabled
    assert watcher.replicas("shop", "web") is None
    assert watcher.snapshot() == {}
    assert not watcher.refresh()
    assert _watcher_threads() == []
    watcher.stop()
    infos = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert infos == [f"no Docker engine at {url}: polling only"]


# -- events ----------------------------------------------------------------------------------


def test_burst_of_events_gives_one_debounced_change(
    fake_docker: FakeDockerEngine, connect: Connect
) -> None:
    watcher = connect(min_wait=0.2)
    changes = _started(watcher, fake_docker)

    for number in range(1, 6):
        fake_docker.emit("container", "start", f"shop-web-{number}")
    assert eventually(lambda: changes.count() >= 1)
    fake_docker.emit("service", "update", "blog_api")
    assert eventually(lambda: changes.count() >= 2)

    assert changes.reasons == [
        "docker container start shop-web-1 (+4 more)",
        "docker service update blog_api",
    ]


def test_events_that_move_no_backend_trigger_nothing(
    fake_docker: FakeDockerEngine, connect: Connect
) -> None:
    watcher = connect()
    changes = _started(watcher, fake_docker)

    fake_docker.emit("container", "exec_start: sh -c true", "shop-web-1")
    fake_docker.emit("container", "health_status: healthy", "shop-web-1")
    fake_docker.emit("container", "attach", "shop-web-1")
    fake_docker.emit("container", "destroy", "shop-web-2")
    assert eventually(lambda: changes.count() >= 1)

    assert changes.reasons == ["docker container destroy shop-web-2"]


def test_max_wait_fires_while_events_keep_coming(
    fake_docker: FakeDockerEngine, connect: Connect
) -> None:
    watcher = connect(min_wait=0.3, max_wait=0.6)
    changes = _started(watcher, fake_docker)

    sent = 0
    deadline = time.monotonic() + 5.0
    while changes.count() == 0 and time.monotonic() < deadline:
        fake_docker.emit("container", "die", f"shop-worker-{sent}")
        sent += 1
        time.sleep(0.05)

    assert changes.count() == 1, "a steady stream starved the debounce"
    assert changes.reasons[0].startswith("docker container die shop-worker-0 (+")


def test_on_change_failure_does_not_end_the_watching(
    fake_docker: FakeDockerEngine, connect: Connect
) -> None:
    watcher = connect()
    reasons: list[str] = []

    def flaky(reason: str) -> None:
        reasons.append(reason)
        if len(reasons) == 1:
            raise RuntimeError("sync loop hiccup")

    watcher.start(flaky)
    assert eventually(lambda: fake_docker.subscribers == 1)
    fake_docker.emit("container", "start", "shop-web-1")
    assert eventually(lambda: len(reasons) == 1)
    fake_docker.emit("container", "die", "shop-web-1")

    assert eventually(lambda: len(reasons) == 2)


# -- replicas ----------------------------------------------------------------------------------


def test_replicas_of_a_scaled_service_are_dns_names_sorted_by_container_number(
    fake_docker: FakeDockerEngine, connect: Connect
) -> None:
    for number in (10, 2, 1):
        fake_docker.add_replica("shop", "web", number)

    watcher = connect()

    assert watcher.replicas("shop", "web") == ("shop-web-1", "shop-web-2", "shop-web-10")


def test_container_name_from_the_compose_file_is_the_replica_name(
    fake_docker: FakeDockerEngine, connect: Connect
) -> None:
    fake_docker.add_replica("shop", "db", 1, name="shop-postgres")

    watcher = connect()

    assert watcher.replicas("shop", "db") == ("shop-postgres",)


def test_other_projects_services_and_stopped_replicas_are_not_mixed_in(
    fake_docker: FakeDockerEngine, connect: Connect
) -> None:
    fake_docker.add_replica("shop", "web", 1)
    fake_docker.add_replica("shop", "web", 2)
    fake_docker.set_state("shop-web-2", "exited")
    fake_docker.add_replica("shop", "worker", 1)
    fake_docker.add_replica("blog", "web", 1)
    fake_docker.add_container("loose", {"traefik.enable": "true"})

    watcher = connect()

    assert watcher.replicas("shop", "web") == ("shop-web-1",)
    assert watcher.snapshot() == {
        ("shop", "web"): ("shop-web-1",),
        ("shop", "worker"): ("shop-worker-1",),
        ("blog", "web"): ("blog-web-1",),
    }


def test_compose_run_containers_are_not_replicas(
    fake_docker: FakeDockerEngine, connect: Connect
) -> None:
    fake_docker.add_replica("shop", "web", 1)
    labels = {**compose_labels("shop", "web", 1), "com.docker.compose.oneoff": "True"}
    fake_docker.add_container("shop-web-run-3f2a1b", labels)

    watcher = connect()

    assert watcher.replicas("shop", "web") == ("shop-web-1",)


def test_a_service_with_no_running_replica_is_empty_not_unknown(
    fake_docker: FakeDockerEngine, connect: Connect
) -> None:
    watcher = connect()

    assert watcher.replicas("shop", "web") == ()


def test_listing_is_cached_and_read_once_per_event_burst(
    fake_docker: FakeDockerEngine, connect: Connect
) -> None:
    fake_docker.add_replica("shop", "web", 1)
    watcher = connect()
    changes = _started(watcher, fake_docker)
    listed = fake_docker.count("/containers/json")

    for _ in range(20):
        watcher.replicas("shop", "web")
        watcher.snapshot()
    assert fake_docker.count("/containers/json") == listed

    fake_docker.add_replica("shop", "web", 2)
    fake_docker.emit("container", "create", "shop-web-2")
    fake_docker.emit("container", "start", "shop-web-2")
    assert eventually(lambda: changes.count() == 1)

    assert fake_docker.count("/containers/json") == listed + 1
    assert changes.seen == [("shop-web-1", "shop-web-2")]


def test_on_change_reads_the_replicas_after_the_event(
    fake_docker: FakeDockerEngine, connect: Connect
) -> None:
    fake_docker.add_replica("shop", "web", 1)
    fake_docker.add_replica("shop", "web", 2)
    watcher = connect()
    changes = _started(watcher, fake_docker)

    fake_docker.remove_container("shop-web-2")
    fake_docker.emit("container", "destroy", "shop-web-2")

    assert eventually(lambda: changes.count() == 1)
    assert changes.seen == [("shop-web-1",)]
    assert watcher.replicas("shop", "web") == ("shop-web-1",)


def test_changes_between_connect_and_start_trigger_on_the_first_stream(
    fake_docker: FakeDockerEngine, connect: Connect
) -> None:
    watcher = connect()
    fake_docker.add_replica("shop", "web", 1)

    changes = _started(watcher, fake_docker)

    assert eventually(lambda: changes.count() == 1)
    assert changes.seen == [("shop-web-1",)]


# -- the engine goes away and comes back -----------------------------------------------------


def test_replica_sets_survive_the_engine_going_away_and_update_when_it_is_back(
    fake_docker: FakeDockerEngine, connect: Connect
) -> None:
    fake_docker.add_replica("shop", "web", 1)
    watcher = connect()
    changes = _started(watcher, fake_docker)

    fake_docker.stop()
    assert not watcher.refresh()
    assert watcher.replicas("shop", "web") == ("shop-web-1",)
    assert watcher.snapshot() == {("shop", "web"): ("shop-web-1",)}

    fake_docker.add_replica("shop", "web", 2)
    fake_docker.start()
    assert eventually(lambda: changes.count() >= 1)

    assert changes.reasons[0] == "docker events resumed"
    assert changes.seen[0] == ("shop-web-1", "shop-web-2")


def test_engine_outage_logs_one_line_per_state_change_and_backs_off(
    fake_docker: FakeDockerEngine, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    watcher = connect(max_backoff=0.2)
    _started(watcher, fake_docker)

    fake_docker.stop()
    assert eventually(lambda: len(_pauses(caplog)) >= 4)
    fake_docker.start()
    assert eventually(lambda: _messages(caplog, logging.INFO, "are back"))

    assert len(_messages(caplog, logging.WARNING, "lost")) == 1
    assert len(_messages(caplog, logging.INFO, "are back")) == 1
    pauses = _pauses(caplog)
    assert pauses == sorted(pauses), "the pause between retries must not shrink while away"
    assert pauses[0] > 0 and max(pauses) == pytest.approx(0.2)


def test_failing_event_stream_is_retried_with_one_warning_and_no_triggers(
    fake_docker: FakeDockerEngine, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    fake_docker.fail("/events", 500)
    watcher = connect(max_backoff=0.1)
    changes = Changes(watcher)
    watcher.start(changes)

    assert eventually(lambda: fake_docker.count("/events") >= 4)
    fake_docker.fail("/events", None)
    assert eventually(lambda: changes.count() == 1)
    fake_docker.emit("container", "start", "shop-web-1")
    assert eventually(lambda: changes.count() == 2)

    warnings = _messages(caplog, logging.WARNING, "docker events")
    assert warnings == [f"docker events from {fake_docker.url} lost (HTTP 500); retrying"]
    assert changes.reasons == ["docker events resumed", "docker container start shop-web-1"]


# -- stopping --------------------------------------------------------------------------------


def test_stop_is_prompt_with_an_open_event_stream(
    fake_docker: FakeDockerEngine, connect: Connect
) -> None:
    watcher = connect()
    _started(watcher, fake_docker)

    began = time.monotonic()
    watcher.stop()

    assert time.monotonic() - began < 2.0
    assert _watcher_threads() == []
    assert eventually(lambda: fake_docker.subscribers == 0)


def test_stop_is_prompt_while_waiting_to_reconnect(
    fake_docker: FakeDockerEngine, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    watcher = connect(max_backoff=30.0)
    _started(watcher, fake_docker)
    fake_docker.stop()
    assert eventually(lambda: max(_pauses(caplog), default=0) >= 0.8), "backoff never grew"

    began = time.monotonic()
    watcher.stop()

    assert time.monotonic() - began < 0.5, "stop waited out the reconnect pause"
    assert _watcher_threads() == []


def test_stop_does_not_wait_for_a_slow_change_handler(
    fake_docker: FakeDockerEngine, connect: Connect
) -> None:
    watcher = connect()
    entered, release = threading.Event(), threading.Event()

    def slow(reason: str) -> None:
        entered.set()
        release.wait(10)

    watcher.start(slow)
    assert eventually(lambda: fake_docker.subscribers == 1)
    fake_docker.emit("container", "start", "shop-web-1")
    assert entered.wait(5)

    began = time.monotonic()
    watcher.stop()
    release.set()

    assert time.monotonic() - began < 1.0


def test_stop_called_from_the_change_handler_returns(
    fake_docker: FakeDockerEngine, connect: Connect
) -> None:
    watcher = connect()
    stopped = threading.Event()

    def stop_on_change(reason: str) -> None:
        watcher.stop()
        stopped.set()

    watcher.start(stop_on_change)
    assert eventually(lambda: fake_docker.subscribers == 1)
    fake_docker.emit("service", "remove", "blog_api")

    assert stopped.wait(3), "stop() from inside on_change hung or raised"
    assert eventually(lambda: _watcher_threads() == [])
