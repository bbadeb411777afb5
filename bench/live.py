"""Benchmark helpers that run real processes: `traefik-gen generate` and `watch`, Traefik.

Every socket is on 127.0.0.1: the sidecar's endpoints on a free port, the database on the
machine's PostgreSQL, Traefik on free ports of its own.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dataset as ds

from tests.support.traefik import TraefikProcess, free_ports
from traefik_gen.render import render
from traefik_gen.sources.dokploy.changes import _WATCHED, _statement
from traefik_gen.staging_helper import _PROGRAM

__all__ = [
    "WatchProcess",
    "change_latency",
    "generate_process",
    "staging_helper_rss",
    "watch_process",
]

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / ".venv" / "bin" / "traefik-gen"
CLOCK = os.sysconf("SC_CLK_TCK")
QUIET = 2.5  # seconds between trials, so each starts outside Traefik's 2 s throttle window


def child_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {key: os.environ[key] for key in keep if key in os.environ}


# Peak RSS is read by a small parent of the measured program: the kernel's ru_maxrss of a
# process counts the image it was forked from, so a program forked from this benchmark
# would report this benchmark's size.
_MEASURE = r"""
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
elapsed = time.perf_counter() - started
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024, elapsed)
"""


def measured(command: list[str], stdin: bytes | None = None) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of one run of `command` (its children included)."""
    python = ROOT / ".venv" / "bin" / "python"
    answer = subprocess.run(
        [str(python), "-I", "-S", "-c", _MEASURE, *command],
        input=stdin,
        stdout=subprocess.PIPE,
        env=child_env(),
        check=True,
    )
    code, rss, elapsed = answer.stdout.split()
    if int(code) != 0:
        raise RuntimeError(f"{command[0]} exited {int(code)}")
    return float(elapsed), int(rss)


def generate_process(url: str, out: Path) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of one `traefik-gen generate` process."""
    return measured([str(BINARY), "generate", "--source", url, "--out", str(out), "--mode", "full"])


def staging_helper_rss(files: dict[str, bytes], scratch: Path) -> int:
    """Peak RSS (bytes) of the staging helper given every file of a full generation."""
    scratch.mkdir(parents=True, exist_ok=True)
    paths = {name: os.fsencode(scratch / (name + ".staged")) for name in files}
    requests = b"".join(
        b"%d %d\n" % (len(paths[name]), len(content)) + paths[name] + content
        for name, content in files.items()
    )
    python = ROOT / ".venv" / "bin" / "python"
    return measured([str(python), "-I", "-S", "-c", _PROGRAM], stdin=requests)[1]


@dataclass
class IdleSample:
    elapsed: float
    cpu: float
    polls: int
    written: int


class WatchProcess:
    """One `traefik-gen watch` process with its metrics endpoint."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port

    def metrics(self) -> dict[str, float]:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            text = answer.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.port}/readyz"
            with urllib.request.urlopen(url, timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("traefik-gen watch never became ready")
            time.sleep(0.1)

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        # utime and stime are fields 14 and 15 of stat(5); [0] here is field 3.
        return (int(fields[11]) + int(fields[12])) / CLOCK

    def peak_rss(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        found = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(found.group(1)) * 1024 if found else 0

    def polls(self) -> float:
        return self.metrics().get('traefik_gen_syncs_total{outcome="ok"}', 0.0)

    def written(self) -> float:
        return self.metrics().get("traefik_gen_files_written_total", 0.0)

    def idle(self, seconds: float) -> IdleSample:
        """CPU and polls over `seconds` of an idle sidecar, after one settling poll."""
        time.sleep(2.5)
        polls, written, cpu, started = self.polls(), self.written(), self.cpu(), time.monotonic()
        time.sleep(seconds)
        # The metrics scrape itself costs the process a little CPU: read the clock first.
        cpu_after, elapsed = self.cpu(), time.monotonic() - started
        return IdleSample(
            elapsed=elapsed,
            cpu=cpu_after - cpu,
            polls=int(self.polls() - polls),
            written=int(self.written() - written),
        )


@contextmanager
def watch_process(url: str, out: Path, *, poll_interval: float) -> Iterator[WatchProcess]:
    (port,) = free_ports(1)
    command = [
        str(BINARY), "watch", "--source", url, "--out", str(out), "--mode", "full",
        "--no-docker", "--listen", f"127.0.0.1:{port}", "--poll-interval", str(poll_interval),
    ]  # fmt: skip
    log = (out.parent / f"watch-{port}.log").open("wb")
    process = subprocess.Popen(command, env=child_env(), stdout=log, stderr=subprocess.STDOUT)
    watcher = WatchProcess(process, port)
    try:
        watcher.wait_ready()
        yield watcher
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def fingerprint_server_time(dsn: str, runs: int = 20) -> float:
    """Median server-side execution time of the change-detection statement."""
    samples = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        statement = _statement(_WATCHED)
        explain = psycopg.sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) {}").format(statement)
        for _ in range(runs):
            row = conn.execute(explain).fetchone()
            assert row is not None
            samples.append(float(row[0][0]["Execution Time"]) / 1000)
    return statistics.median(samples)


# 5. change latency


def router_live(traefik: TraefikProcess, host: str) -> bool:
    answer = traefik.api(f"/api/http/routers?search={host}&per_page=10")
    return answer.status == 200 and host in answer.text


def wait_live(traefik: TraefikProcess, host: str, started: float) -> float:
    while not router_live(traefik, host):
        if time.perf_counter() - started > 30:
            raise RuntimeError(f"no router for {host} went live")
        time.sleep(0.005)
    return time.perf_counter() - started


def floor_trial(traefik: TraefikProcess, directory: Path, trial: int) -> float:
    host = f"floor-{trial}.latency.bench.test"
    name = f"floor{trial}"
    config = {
        "http": {
            "routers": {name: {"rule": f"Host(`{host}`)", "service": name}},
            "services": {name: {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:9"}]}}},
        }
    }
    sibling = directory.parent / "outside"
    sibling.mkdir(exist_ok=True)
    staged = sibling / "floor.yml"
    started = time.perf_counter()
    staged.write_bytes(render(config, "yaml"))
    os.replace(staged, directory / "floor.yml")
    return wait_live(traefik, host, started)


def ours_trial(traefik: TraefikProcess, data: ds.Dataset, trial: int) -> float:
    host = f"ours-{trial}.latency.bench.test"
    with data.connect() as conn:
        started = time.perf_counter()
        conn.execute(
            'UPDATE domain SET host = %s WHERE "domainId" = %s', (host, data.compose_domain)
        )
    return wait_live(traefik, host, started)


def change_latency(
    data: ds.Dataset, workdir: Path, directory: Path, trials: int
) -> tuple[list[float], list[float]]:
    """Seconds from a committed change (or a renamed file) until its router is live."""
    traefik = TraefikProcess("3.7.15", workdir, dynamic_dir=directory).start()
    try:
        with watch_process(data.url, directory, poll_interval=2.0):
            ours, floor = [], []
            for trial in range(trials):
                time.sleep(QUIET)
                floor.append(floor_trial(traefik, directory, trial))
                time.sleep(QUIET)
                ours.append(ours_trial(traefik, data, trial))
            print(
                "  latency samples (ms): ours "
                + " ".join(f"{s * 1000:.0f}" for s in ours)
                + "; floor "
                + " ".join(f"{s * 1000:.0f}" for s in floor),
                flush=True,
            )
            return ours, floor
    finally:
        traefik.stop()
