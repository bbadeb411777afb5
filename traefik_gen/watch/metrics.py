"""The sidecar's numbers, in Prometheus format, and the health it reports."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Health", "Metrics"]


class Metrics:
    """Counters and gauges of one sidecar, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.syncs = Counter(
            "traefik_gen_syncs", "Syncs by outcome", ["outcome"], registry=self.registry
        )
        self.incremental = Counter(
            "traefik_gen_incremental_syncs",
            "Syncs that planned and wrote only the owners a change touched",
            registry=self.registry,
        )
        self.last_success = Gauge(
            "traefik_gen_last_success_timestamp_seconds",
            "Unix time of the last successful sync",
            registry=self.registry,
        )
        self.duration = Histogram(
            "traefik_gen_sync_duration_seconds",
            "Time one sync took, from reading the sources to the last rename",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.routers = Gauge(
            "traefik_gen_routers_rendered", "Routers in the generated files", registry=self.registry
        )
        self.rejected = Gauge(
            "traefik_gen_rows_rejected", "Rows rejected by the last sync", registry=self.registry
        )
        self.written = Counter(
            "traefik_gen_files_written", "Files renamed into the directory", registry=self.registry
        )
        self.removed = Counter(
            "traefik_gen_files_removed", "Owned files removed", registry=self.registry
        )
        self.verified = Gauge(
            "traefik_gen_generation_loaded",
            "1 when Traefik's API shows the last written generation, every router enabled",
            registry=self.registry,
        )
        self.verify_failures = Counter(
            "traefik_gen_verify_failures",
            "Writes that Traefik did not load as written",
            registry=self.registry,
        )
        self.ready = Gauge(
            "traefik_gen_ready", "1 when the last sync succeeded recently", registry=self.registry
        )
        for outcome in ("ok", "failed"):
            self.syncs.labels(outcome=outcome)


@dataclass
class Health:
    """What /readyz answers: the last sync succeeded, recently, and nothing holds it back."""

    max_age: float
    # How long the loop may go without turning once before /healthz fails: a read stuck
    # on a stalled network is then restarted by the orchestrator.
    max_stall: float = 120.0
    last_success: float | None = None
    problem: str | None = "no sync has run yet"
    last_beat: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def beat(self) -> None:
        with self._lock:
            self.last_beat = time.monotonic()

    def alive(self) -> tuple[bool, str]:
        with self._lock:
            stalled = time.monotonic() - self.last_beat
        if stalled > self.max_stall:
            return False, f"the sync loop has not turned for {stalled:.0f}s"
        return True, "ok"

    def succeeded(self) -> None:
        with self._lock:
            self.last_success = time.monotonic()
            self.problem = None

    def failed(self, problem: str) -> None:
        with self._lock:
            self.problem = problem

    def ready(self) -> tuple[bool, str]:
        with self._lock:
            if self.problem is not None:
                return False, self.problem
            if self.last_success is None or time.monotonic() - self.last_success > self.max_age:
                return False, "the last successful sync is too old"
            return True, "ok"
