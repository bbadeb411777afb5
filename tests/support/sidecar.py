"""The sidecar as a real process: ``traefik-gen watch`` started, probed and signalled by a test.

``sidecar_factory("--mode", "full", env={"TRAEFIK_GEN_SOURCE": pg.url})`` starts
``python -m traefik_gen watch`` with a clean environment (none of the runner's
``TRAEFIK_GEN_*``, Dokploy or libpq variables), its endpoints on a free 127.0.0.1 port and
its output in a log file. The :class:`Sidecar` it returns reads /healthz, /readyz and
/metrics, waits with a bounded backoff, and sends signals. Teardown kills what is left.

A sidecar must be given a source and, unless told otherwise, writes into a directory of
the test's own and leaves Docker alone: the real defaults aim at the host
``dokploy-postgres``, at /etc/dokploy/traefik/dynamic and at /var/run/docker.sock, none
of which a test may touch.
"""

from __future__ import annotations

import atexit
import http.client
import itertools
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeVar

import pytest

from tests.support.traefik import free_ports, wait_for

__all__ = [
    "DEFAULT_COMMAND",
    "Sidecar",
    "SidecarExitedError",
    "SidecarFactory",
    "clean_environment",
    "parse_metrics",
    "sample_key",
    "sidecar_factory",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_COMMAND: tuple[str, ...] = (sys.executable, "-m", "traefik_gen", "watch")
HOST = "127.0.0.1"
ENV_LISTEN = "TRAEFIK_GEN_LISTEN"
ENV_OUT = "TRAEFIK_GEN_OUT"
ENV_DOCKER = "TRAEFIK_GEN_DOCKER"

# Variables the settings read besides TRAEFIK_GEN_* (Dokploy's names); PG* is libpq's,
# DOCKER_* the Docker SDK's.
_FOREIGN_NAMES = frozenset(
    {
        "DATABASE_URL",
        "POSTGRES_USER",
        "POSTGRES_DB",
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "POSTGRES_PASSWORD",
        "POSTGRES_PASSWORD_FILE",
    }
)
_FOREIGN_PREFIXES = ("TRAEFIK_GEN_", "PG", "DOCKER_")
_SOURCE_ENV = frozenset(
    {
        "TRAEFIK_GEN_SOURCE",
        "TRAEFIK_GEN_DATABASE_URL",
        "DATABASE_URL",
        "TRAEFIK_GEN_POSTGRES_HOST",
        "POSTGRES_HOST",
    }
)
# Any of these means the test chose its Docker engine (a fake one); else Docker is off.
_DOCKER_ENV = frozenset({ENV_DOCKER, "TRAEFIK_GEN_DOCKER_HOST", "DOCKER_HOST"})
_HTTP_TIMEOUT = 5.0
_READY_TIMEOUT = 15.0
_STOP_TIMEOUT = 10.0
_LOG_TAIL_LINES = 30

# One sample line of the Prometheus text format: name, optional {labels}, value, timestamp.
_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(?:\{(?P<labels>(?:[^"}]|"(?:[^"\\]|\\.)*")*)\})?'
    r"\s+(?P<value>\S+)(?:\s+-?\d+)?\s*$"
)
_LABEL = re.compile(r'\s*(?P<name>[a-zA-Z_]\w*)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}

# Every process still running, so an interpreter exit that skips teardown (an
# interrupted session) does not leave a sidecar behind.
_RUNNING: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_RUNNING):
        if process.poll() is None:
            process.kill()
            process.wait()


class SidecarExitedError(AssertionError):
    """The sidecar exited while a test waited for it; the message has its log tail."""


# --- Prometheus text format -----------------------------------------------------------------


def _unescape(value: str) -> str:
    return re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m.group(0)], value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def sample_key(name: str, labels: Mapping[str, str]) -> str:
    """The key :func:`parse_metrics` files a sample under: labels sorted by name."""
    if not labels:
        return name
    inner = ",".join(f'{key}="{_escape(labels[key])}"' for key in sorted(labels))
    return f"{name}{{{inner}}}"


def _parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    while position < len(text.rstrip()):
        match = _LABEL.match(text, position)
        if match is None:
            raise ValueError(f"malformed labels {{{text}}}")
        labels[match["name"]] = _unescape(match["value"])
        position = match.end()
    return labels


def parse_metrics(text: str) -> dict[str, float]:
    """Samples of a Prometheus text exposition, keyed ``name{a="x",b="y"}`` (or ``name``)."""
    samples: dict[str, float] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = _parse_sample(line, number)
            samples[key] = value
    return samples


def _parse_sample(line: str, number: int) -> tuple[str, float]:
    match = _SAMPLE.match(line)
    if match is None:
        raise ValueError(f"line {number} of the metrics is not a sample: {line!r}")
    try:
        labels = _parse_labels(match["labels"] or "")
        # float() reads the format's special values too: "+Inf", "-Inf" and "NaN".
        value = float(match["value"])
    except ValueError as exc:
        raise ValueError(f"line {number} of the metrics is not a sample: {line!r}") from exc
    return sample_key(match["name"], labels), value


# --- environment and command line -----------------------------------------------------------


def _foreign(name: str) -> bool:
    return name in _FOREIGN_NAMES or name.startswith(_FOREIGN_PREFIXES)


def clean_environment(given: Mapping[str, str]) -> dict[str, str]:
    """The runner's environment minus anything that configures traefik-gen, plus ``given``."""
    env = {name: value for name, value in os.environ.items() if not _foreign(name)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(given)
    return env


def _option_value(args: Sequence[str], option: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == option and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


def _has_source(args: Sequence[str], env: Mapping[str, str]) -> bool:
    return _option_value(args, "--source") is not None or bool(_SOURCE_ENV & env.keys())


def _listen_port(address: str) -> int:
    return int(address.rpartition(":")[2])


# --- the process ------------------------------------------------------------------------------


class Sidecar:
    """One ``traefik-gen watch`` process (or a stand-in ``command``) and its endpoints.

    ``args`` follow the command; ``env`` is added to the clean environment. Unless ``env``
    says otherwise, TRAEFIK_GEN_LISTEN is 127.0.0.1:<free port>, TRAEFIK_GEN_DOCKER is
    false (give TRAEFIK_GEN_DOCKER_HOST to watch a fake engine) and, without ``--out`` or
    TRAEFIK_GEN_OUT, the output directory is ``workdir/dynamic``.
    """

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        given = dict(env or {})
        if not _has_source(args, given):
            raise ValueError(
                "a sidecar under test needs a source (--source, TRAEFIK_GEN_SOURCE, "
                "DATABASE_URL or POSTGRES_HOST): the default is the host dokploy-postgres"
            )
        self.workdir = workdir
        self.log_path = workdir / "sidecar.log"
        self.out_dir = self._out_dir(args, given)
        # Limitation: the port is free when probed, not reserved; a process taking it first
        # makes the sidecar exit, which wait_ready reports (no retry on another port).
        listen = _option_value(args, "--listen") or given.setdefault(
            ENV_LISTEN, f"{HOST}:{free_ports(1)[0]}"
        )
        self.port = _listen_port(listen)
        if not _DOCKER_ENV & given.keys():
            given[ENV_DOCKER] = "false"
        self.command = [*(command or DEFAULT_COMMAND), *args]
        self.env = clean_environment(given)
        self.process: subprocess.Popen[bytes] | None = None

    def _out_dir(self, args: Sequence[str], given: dict[str, str]) -> Path:
        chosen = _option_value(args, "--out") or given.get(ENV_OUT)
        if chosen is not None:
            return Path(chosen)
        default = self.workdir / "dynamic"
        default.mkdir(parents=True, exist_ok=True)
        given[ENV_OUT] = str(default)
        return default

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self._process().pid

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has ended, else None."""
        return self._process().poll()

    def _process(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise RuntimeError("the sidecar has not been started")
        return self.process

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = _spawn(self.command, self.env, self.workdir, log)
        _RUNNING.add(self.process)
        logger.debug("started %s (pid %d) on port %d", self.command, self.process.pid, self.port)

    def signal(self, sig: signal.Signals | int) -> None:
        self._process().send_signal(sig)

    def terminate(self, timeout: float = _STOP_TIMEOUT) -> int:
        """SIGTERM and wait; a process still running after ``timeout`` is killed and fails."""
        process = self._process()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise AssertionError(
                f"sidecar did not exit within {timeout}s of SIGTERM; log tail:\n{self.log_tail()}"
            ) from exc
        _RUNNING.discard(process)
        return code

    def kill(self) -> int:
        """SIGKILL (if still running) and reap; returns the exit status."""
        process = self._process()
        if process.poll() is None:
            process.kill()
        code = process.wait()
        _RUNNING.discard(process)
        return code

    # --- endpoints ------------------------------------------------------------------------

    def get(self, path: str, timeout: float = _HTTP_TIMEOUT) -> tuple[int, str]:
        """GET ``path``; raises OSError when nothing answers on the port."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            answer = conn.getresponse()
            return answer.status, answer.read().decode("utf-8", errors="replace")
        finally:
            conn.close()

    def healthz(self) -> tuple[int, str]:
        return self.get("/healthz")

    def readyz(self) -> tuple[int, str]:
        return self.get("/readyz")

    def metrics(self) -> dict[str, float]:
        status, text = self.get("/metrics")
        if status != 200:
            raise AssertionError(f"/metrics answered {status}: {text.strip()}")
        return parse_metrics(text)

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample's value, its labels matched exactly; None when it is not exposed."""
        return self.metrics().get(sample_key(name, labels))

    # --- waiting --------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Poll ``predicate`` with a bounded backoff; its first truthy value, else its last."""
        return wait_for(predicate, timeout)

    def wait_ready(self, timeout: float = _READY_TIMEOUT) -> None:
        """Wait until /readyz answers 200; fail early, with the log, if the process exits."""
        last: list[tuple[int, str] | str] = ["no answer yet"]
        wait_for(lambda: self._ready_or_exited(last), timeout)
        if isinstance(last[0], tuple) and last[0][0] == 200:
            return
        self._fail_if_exited("while waiting for /readyz")
        raise AssertionError(
            f"sidecar not ready within {timeout}s; last /readyz: {last[0]}; "
            f"log tail:\n{self.log_tail()}"
        )

    def _ready_or_exited(self, last: list[tuple[int, str] | str]) -> bool:
        if self.returncode is not None:
            return True
        try:
            last[0] = self.readyz()
        except OSError as exc:
            last[0] = f"{type(exc).__name__}: {exc}"
            return False
        return last[0][0] == 200

    def _fail_if_exited(self, doing: str) -> None:
        code = self.returncode
        if code is not None:
            raise SidecarExitedError(
                f"sidecar exited with status {code} {doing}; log tail:\n{self.log_tail()}"
            )

    # --- log ------------------------------------------------------------------------------

    def log_text(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self) -> str:
        return "\n".join(self.log_text().splitlines()[-_LOG_TAIL_LINES:])


def _spawn(
    command: Sequence[str], env: Mapping[str, str], cwd: Path, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    # A session of its own: a signal meant for the sidecar never reaches pytest, nor a
    # terminal's Ctrl-C the sidecar before teardown has run.
    return subprocess.Popen(
        list(command),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


class SidecarFactory:
    """Starts sidecars in subdirectories of ``root`` and kills every one left at close."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._started: list[Sidecar] = []
        self._numbers = itertools.count(1)

    def __call__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
    ) -> Sidecar:
        """A started (not necessarily ready) sidecar; see :class:`Sidecar` for the options."""
        workdir = self.root / f"sidecar-{next(self._numbers)}"
        sidecar = Sidecar(args, workdir=workdir, env=env, command=command)
        sidecar.start()
        self._started.append(sidecar)
        return sidecar

    def close(self) -> None:
        for sidecar in self._started:
            sidecar.kill()
        self._started.clear()


@pytest.fixture
def sidecar_factory(tmp_path: Path) -> Iterator[SidecarFactory]:
    """Start ``traefik-gen watch`` processes; every one still running is killed at teardown."""
    factory = SidecarFactory(tmp_path)
    yield factory
    factory.close()
