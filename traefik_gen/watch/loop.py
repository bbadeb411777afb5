"""The sidecar loop: the same plan-and-write path as `generate`, kept converged forever.

Triggers: a poll of a cheap fingerprint query every `poll_interval` (a full plan only when
it moves), Docker events, edits of the directory by someone else, and SIGHUP. Everything
runs on the main thread except the trigger threads, which only wake it. An outage leaves
the directory exactly as it is and turns readiness false; recovery needs no restart.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Protocol

from traefik_gen.errors import TraefikGenError, WriteError
from traefik_gen.incremental import Converged, converged_after, sync_delta
from traefik_gen.settings import Settings
from traefik_gen.sources.dokploy.changes import ChangeDetector
from traefik_gen.sync import SyncMemo, SyncResult, sync
from traefik_gen.verify import verify_generation
from traefik_gen.watch.directory import DirectoryWatcher
from traefik_gen.watch.http import EndpointServer
from traefik_gen.watch.metrics import Health, Metrics
from traefik_gen.writer import apply, lock, scan_names

__all__ = ["Sidecar", "replica_source"]

logger = logging.getLogger(__name__)

Replicas = dict[tuple[str, str], tuple[str, ...]]


class ReplicaSource(Protocol):
    def start(self, on_change: Callable[[str], None]) -> None: ...
    def stop(self) -> None: ...
    def snapshot(self) -> Replicas: ...


class Sidecar:
    """One `traefik-gen watch` process."""

    def __init__(self, settings: Settings, docker: ReplicaSource | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.health = Health(max_age=settings.readiness_age(), max_stall=_max_stall(settings))
        self._docker = docker
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._reasons: set[str] = set()
        self._heal_names: set[str] = set()
        self._reasons_lock = threading.Lock()
        self._detectors = _detectors(settings)
        self._fingerprint: object = None
        self._files: dict[str, bytes] | None = None
        self._memo = SyncMemo()
        self._converged: Converged | None = None
        self._replicas: Replicas | None = None
        self._unverified = False
        self._failure: str | None = None
        self._failures = 0

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; the exit status is 0 after a clean stop."""
        endpoints = EndpointServer(self.settings.listen, self.health, self.metrics)
        endpoints.start()
        self._install_signals()
        try:
            held = self._acquire_lock()
            if held is not None:
                with held:
                    self._serve()
        finally:
            endpoints.stop()
            self.close()
        logger.info("stopped")
        return 0

    def request(self, reason: str) -> None:
        """Ask for a sync soon (from any thread)."""
        with self._reasons_lock:
            self._reasons.add(reason)
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def poll(self) -> bool:
        """One poll as the loop runs it when due (a sync only if the sources moved); ok?"""
        return self._poll(self._take_reasons())

    def close(self) -> None:
        """Close the change detectors' connections (`run` does it on its way out)."""
        for detector in self._detectors:
            detector.close()

    # The lock: one writer per directory, whichever container or host it runs in.

    def _acquire_lock(self) -> ExitStack | None:
        """The held lock, once this instance may write; None if stopped while waiting."""
        waiting = False
        while not self._stop.is_set():
            held = ExitStack()
            try:
                held.enter_context(lock(self.settings.out, blocking=False))
            except WriteError as exc:
                held.close()
                if not waiting:
                    logger.warning("waiting: %s", exc)
                    waiting = True
                self.health.failed("waiting for the lock held by another traefik-gen")
                self._stop.wait(1.0)
                continue
            if waiting:
                logger.info("took the lock of %s", self.settings.out)
            return held
        return None

    # The loop.

    def _serve(self) -> None:
        watcher = DirectoryWatcher(self.settings.out, self._edited)
        watcher.start()
        if self._docker is not None:
            self._docker.start(lambda reason: self.request(f"docker: {reason}"))
        try:
            self._loop()
        finally:
            watcher.stop()
            if self._docker is not None:
                self._docker.stop()

    def _loop(self) -> None:
        next_poll = 0.0
        while not self._stop.is_set():
            self.health.beat()
            self._wake.wait(max(0.0, next_poll - time.monotonic()))
            self._wake.clear()
            self.health.beat()
            if self._stop.is_set():
                return
            reasons = self._take_reasons()
            due = time.monotonic() >= next_poll
            if not due and (self._failure is not None or reasons <= {"heal"}):
                # Between polls only a self-heal runs; an outage waits out its backoff.
                if "heal" in reasons:
                    self._heal()
                continue
            succeeded = self._poll(reasons)
            next_poll = time.monotonic() + self._delay(succeeded)

    def _take_reasons(self) -> set[str]:
        with self._reasons_lock:
            reasons, self._reasons = self._reasons, set()
        return reasons

    def _poll(self, reasons: set[str]) -> bool:
        try:
            fingerprint = tuple(detector.fingerprint() for detector in self._detectors)
            if reasons - {"heal"} or fingerprint != self._fingerprint or self._files is None:
                if reasons - {"heal"} or not self._incremental_sync():
                    self._full_sync(reasons)
                self._fingerprint = fingerprint
            elif "heal" in reasons or self._heal_names:
                # Names left by a heal that failed are retried at the pace of the polls.
                self._heal()
            if self._unverified:
                self._verify()
        except TraefikGenError as exc:
            self._failed(exc)
            return False
        except Exception as exc:
            logger.debug("unexpected error in a sync", exc_info=True)
            self._failed(TraefikGenError(f"unexpected {type(exc).__name__} in a sync: {exc}"))
            return False
        self._succeeded()
        return True

    def _full_sync(self, reasons: set[str]) -> None:
        started = time.perf_counter()
        self._converged = None
        replicas = self._docker.snapshot() if self._docker is not None else None
        result = sync(self.settings, replicas=replicas, memo=self._memo)
        self.metrics.duration.observe(time.perf_counter() - started)
        self._replicas = replicas
        self._converged = converged_after(result)
        self._synced(result, reasons)

    def _incremental_sync(self) -> bool:
        """Sync only the owners whose rows changed; False when a full sync must run instead."""
        detector = self._detectors[0] if len(self._detectors) == 1 else None
        if self._converged is None or not isinstance(detector, ChangeDetector):
            return False
        started = time.perf_counter()
        server = None if self.settings.server == "local" else self.settings.server
        try:
            delta = detector.delta(self._converged.base, server)
            result = None
            if delta is not None:
                result = sync_delta(self.settings, self._converged, delta, self._replicas)
        except BaseException:
            # The delta's base may have moved past a change that was never written.
            self._converged = None
            raise
        if result is None:
            return False
        self.metrics.duration.observe(time.perf_counter() - started)
        self.metrics.incremental.inc()
        self._synced(result, {"poll: incremental"})
        return True

    def _synced(self, result: SyncResult, reasons: set[str]) -> None:
        self._files = result.files
        self._report(result, reasons)
        if result.write.written or result.write.removed:
            self._unverified = self.settings.verify_api is not None

    def _report(self, result: SyncResult, reasons: set[str]) -> None:
        plan, write = result.plan, result.write
        for rejection in plan.rejections:
            logger.warning("%s", rejection.line())
        for notice in plan.notices:
            logger.warning("%s", notice)
        self.metrics.routers.set(plan.routers)
        self.metrics.rejected.set(len(plan.rejections))
        self.metrics.written.inc(len(write.written))
        self.metrics.removed.inc(len(write.removed))
        logger.debug("synced (%s)", ", ".join(sorted(reasons)) or "poll")

    def _verify(self) -> None:
        """With a Traefik API to ask, a write counts only once Traefik has loaded it.

        Until it has, every poll asks again and readiness stays false.
        """
        assert self.settings.verify_api is not None
        outcome = verify_generation(
            self.settings.verify_api,
            self.settings.out,
            self.settings,
            timeout=self.settings.verify_timeout,
        )
        self.metrics.verified.set(1 if outcome.ok else 0)
        if outcome.ok:
            logger.info("traefik loaded generation %s", outcome.generation)
            self._unverified = False
            return
        self.metrics.verify_failures.inc()
        raise WriteError("; ".join(outcome.problems))

    def _heal(self) -> None:
        """Put back the owned files the watcher saw change, if they are not as written."""
        with self._reasons_lock:
            names, self._heal_names = self._heal_names, set()
        if self._files is None or not names:
            return
        try:
            state = scan_names(self.settings.out, names, prefix=self.settings.file_prefix)
            wanted = {name: self._files[name] for name in names if name in self._files}
            result = apply(self.settings.out, wanted, state)
        except TraefikGenError as exc:
            with self._reasons_lock:
                # Asked again at the next heal: these files are still not as written.
                self._heal_names |= names
            self._failed(exc)
            return
        if result.written or result.removed:
            logger.info(
                "restored %d files edited or removed by someone else",
                len(result.written) + len(result.removed),
            )
            self.metrics.written.inc(len(result.written))
            self.metrics.removed.inc(len(result.removed))

    def _edited(self, names: set[str]) -> None:
        # Our own renames come back here too; healing then finds nothing to do.
        prefix = self.settings.file_prefix
        owned = {name for name in names if name.startswith(prefix)}
        if owned:
            with self._reasons_lock:
                self._heal_names |= owned
            self.request("heal")
        if names - owned:
            self.request("directory")

    # Outcomes.

    def _succeeded(self) -> None:
        if self._failure is not None:
            logger.info("recovered: the directory is in sync again")
        self._failure = None
        self._failures = 0
        self.health.succeeded()
        self.metrics.syncs.labels(outcome="ok").inc()
        self.metrics.last_success.set_to_current_time()
        self.metrics.ready.set(1)

    def _failed(self, exc: TraefikGenError) -> None:
        # One line per change of state (a source outage, a write failure), not per retry.
        state = type(exc).__name__
        if state != self._failure:
            logger.error("sync failed, the directory is left as it is: %s", exc)
        else:
            logger.debug("still failing: %s", exc)
        self._failure = state
        self._failures += 1
        self.health.failed(str(exc))
        self.metrics.syncs.labels(outcome="failed").inc()
        self.metrics.ready.set(0)

    def _delay(self, succeeded: bool) -> float:
        interval = self.settings.poll_interval
        if succeeded:
            return interval
        return float(min(self.settings.retry_max, interval * 2 ** min(self._failures, 16)))

    # Signals.

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_hangup)

    def _on_stop_signal(self, number: int, _frame: FrameType | None) -> None:
        logger.info("stopping on %s", signal.Signals(number).name)
        self.stop()
        # A read stuck on a stalled network would hold the loop past any grace period; the
        # directory is consistent at every instant (staged files are never config), so a
        # hard exit after a few seconds loses nothing.
        timer = threading.Timer(_STOP_GRACE, _exit_now)
        timer.daemon = True
        timer.start()

    def _on_hangup(self, _number: int, _frame: FrameType | None) -> None:
        logger.info("SIGHUP: full sync")
        self.request("sighup")


_STOP_GRACE = 5.0


def _exit_now() -> None:
    logger.warning("did not stop within %.0fs (a stalled read?); exiting now", _STOP_GRACE)
    logging.shutdown()
    os._exit(0)


def _max_stall(settings: Settings) -> float:
    # One backoff wait, a connect and a statement timeout (30 s), with room to spare.
    return settings.retry_max + 2 * settings.connect_timeout + 60.0


class _FileDetector:
    """A routes file changes when its size, mtime or inode does."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def fingerprint(self) -> object:
        try:
            stat = self._path.stat()
        except OSError:
            return None
        return (stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def close(self) -> None:
        return


def _detectors(settings: Settings) -> list[ChangeDetector | _FileDetector]:
    detectors: list[ChangeDetector | _FileDetector] = []
    for spec in settings.sources():
        if spec.is_database:
            detectors.append(
                ChangeDetector(
                    settings.conninfo(spec),
                    password=settings.password(),
                    connect_timeout=settings.connect_timeout,
                )
            )
        else:
            detectors.append(_FileDetector(Path(spec.text)))
    return detectors


def replica_source(settings: Settings) -> ReplicaSource | None:
    """The Docker engine as a source of events and compose replicas, if asked for."""
    if not settings.docker:
        return None
    from traefik_gen.watch.docker import DockerWatcher

    return DockerWatcher.connect(
        settings.docker_host, min_wait=settings.debounce_min, max_wait=settings.debounce_max
    )
