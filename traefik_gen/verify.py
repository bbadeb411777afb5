"""Prove that Traefik loaded the generation just written, through Traefik's own API.

Traefik's file provider applies the whole directory or nothing, and a file it cannot load
shows nowhere in the API. So the proof is the generation marker (sync.generation_marker):
once `<name_prefix>-generation-<hash>@file` answers 200, every file of this generation was
accepted. Then every router of the owned files must be `enabled` without error. When the
marker never shows, the provider is frozen by some file: its path is taken from Traefik's
log when readable, else found by loading each config file alone into a scratch Traefik on
loopback.

Exit codes (`VerifyResult.exit_code`): 0 loaded and every generated router enabled; 6 the
generation is not loaded (the provider is frozen, the marker or its file is missing, or the
API never answered); 7 loaded, but Traefik disabled some generated router or lacks it.

Network: only the `api_url` given is contacted, and no proxy from the environment is used;
the scratch Traefik listens on one free 127.0.0.1 port and sends nothing anywhere.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from traefik_gen.errors import ConfigError, SettingsError
from traefik_gen.render import Format, parse_rendered
from traefik_gen.settings import Settings
from traefik_gen.sync import marker_filename, marker_name
from traefik_gen.writer import CONFIG_EXTENSIONS, scan

__all__ = [
    "EXIT_NOT_LOADED",
    "EXIT_ROUTER_PROBLEMS",
    "Freeze",
    "VerifyResult",
    "find_freeze_in_log",
    "find_freeze_with_traefik",
    "verify_generation",
]

logger = logging.getLogger(__name__)

EXIT_NOT_LOADED = 6
EXIT_ROUTER_PROBLEMS = 7
# Traefik waits out providersThrottleDuration (2 s by default) between two reloads, so a
# write that lands just after another reload is live only ~2 s later; 5 s leaves room for
# that window, the rename burst and a slow API answer.
DEFAULT_TIMEOUT = 5.0
_POLL_PAUSE = 0.1
_REQUEST_TIMEOUT = 2.0
_LOG_TAIL_BYTES = 8 * 1024 * 1024
_SCRATCH_TIMEOUT = 10.0
_ROUTER_SECTIONS = {"http": "routers", "tcp": "tcpRouters", "udp": "udpRouters"}
_FREEZE_MESSAGES = (
    "Error occurred during watcher callback",
    "Error while building configuration (for the first time)",
)
_LOADED_MESSAGE = "Configuration received"
# Console format: error="..." (Go-quoted); JSON format: "error":"...".
_ERROR_FIELD = re.compile(r'"?error"?[=:]"(?P<value>(?:[^"\\]|\\.)*)"')
# Traefik 3.7 prefixes the path with "collecting file configs: "; 3.6 does not.
_COLLECTING = "collecting file configs: "
_PATH_AND_ERROR = re.compile(r"(?P<path>.+?\.(?:ya?ml|toml)): (?P<error>.*)", re.IGNORECASE)


@dataclass(frozen=True)
class Freeze:
    """The file that stopped Traefik's file provider, and Traefik's error about it."""

    path: Path
    error: str


@dataclass
class VerifyResult:
    """What Traefik showed for one generation.

    `loaded` tells 6 from 7: the marker was seen. `problems` holds one line per finding.
    """

    ok: bool
    generation: str
    problems: list[str] = field(default_factory=list)
    frozen_by: Path | None = None
    loaded: bool = False

    def exit_code(self) -> int:
        """0 ok; 6 the generation is not loaded; 7 loaded, some generated router not enabled."""
        if self.ok:
            return 0
        return EXIT_ROUTER_PROBLEMS if self.loaded else EXIT_NOT_LOADED


def verify_generation(
    api_url: str,
    out: Path,
    settings: Settings,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    log_path: Path | None = None,
    traefik_binary: Path | None = None,
) -> VerifyResult:
    """Check that Traefik at `api_url` serves the generation currently in `out`.

    Args:
        api_url: the base URL of Traefik's API (`http://127.0.0.1:8080`); nothing else is
            contacted.
        out: the watched directory the generation was written to.
        timeout: how long to wait for the marker, in seconds.
        log_path: Traefik's log file, read to name the file that froze the provider.
        traefik_binary: a Traefik executable for the scratch-load fallback.

    Raises:
        SettingsError: `api_url` is not an http(s) URL with a host, or the file prefix is
            not a plain name.
        WriteError: `out` exists but cannot be read.
    """
    api = _Api(api_url)
    state = scan(out, prefix=settings.file_prefix, create=False)
    marker_file = marker_filename(settings)
    generation = _generation(state.owned.get(marker_file), settings)
    if generation is None:
        problem = f"{out / marker_file} is missing or holds no generation marker"
        return VerifyResult(ok=False, generation="", problems=[problem])
    name = marker_name(settings, generation)
    seen, failure = _wait_for_marker(api, name, timeout)
    if not seen:
        return _not_loaded(out, generation, name, failure, timeout, log_path, traefik_binary)
    problems = _settled_router_problems(api, _generated_routers(state.owned), timeout)
    return VerifyResult(ok=not problems, generation=generation, problems=problems, loaded=True)


# the generation


def _generation(content: bytes | None, settings: Settings) -> str | None:
    if content is None:
        return None
    try:
        document = parse_rendered(content, _format_of(marker_filename(settings)))
    except ConfigError:
        return None
    prefix = marker_name(settings, "")
    middlewares = (document.get("http") or {}).get("middlewares") or {}
    for name in middlewares:
        if str(name).startswith(prefix):
            return str(name)[len(prefix) :]
    return None


def _format_of(filename: str) -> Format:
    return "toml" if filename.lower().endswith(".toml") else "yaml"


def _generated_routers(owned: Mapping[str, bytes]) -> dict[str, list[str]]:
    """Router names of every owned file, per protocol section."""
    found: dict[str, list[str]] = {section: [] for section in _ROUTER_SECTIONS}
    for filename, content in sorted(owned.items()):
        try:
            document = parse_rendered(content, _format_of(filename))
        except ConfigError:
            logger.warning(
                "cannot read back the owned file %s; its routers are not checked", filename
            )
            continue
        for section in _ROUTER_SECTIONS:
            found[section].extend(
                str(n) for n in (document.get(section) or {}).get("routers") or {}
            )
    return found


# the API


class _Api:
    """GET requests to Traefik's API, straight to the given host (no environment proxy)."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(f"traefik api url {url!r} must be http:// or https:// with a host")
        self.url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._base = parts.path.rstrip("/")

    def get(self, path: str, timeout: float) -> tuple[int, bytes]:
        """Status and body of `GET <base><path>`; OSError when Traefik cannot be reached."""
        conn_type = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = conn_type(self._host, self._port, timeout=timeout)
        try:
            conn.request("GET", self._base + path, headers={"Accept": "application/json"})
            answer = conn.getresponse()
            return answer.status, answer.read()
        except http.client.HTTPException as e:
            raise OSError(f"bad answer from {self.url}: {type(e).__name__}") from e
        finally:
            conn.close()

    def get_json(self, path: str) -> Any:
        status, body = self.get(path, _REQUEST_TIMEOUT)
        if status != 200:
            raise OSError(f"{self.url}{path} answered {status}")
        try:
            return json.loads(body)
        except ValueError as e:
            raise OSError(f"{self.url}{path} answered something that is not json") from e


def _wait_for_marker(api: _Api, name: str, timeout: float) -> tuple[bool, str | None]:
    """Poll the marker middleware until 200 or `timeout`; the last failure otherwise."""
    path = "/api/http/middlewares/" + urllib.parse.quote(f"{name}@file", safe="")
    deadline = time.monotonic() + timeout
    while True:
        seen, failure = _probe(api, path, deadline - time.monotonic())
        remaining = deadline - time.monotonic()
        if seen or remaining <= 0:
            return seen, failure
        time.sleep(min(_POLL_PAUSE, remaining))


def _probe(api: _Api, path: str, remaining: float) -> tuple[bool, str | None]:
    try:
        status, _ = api.get(path, max(0.1, min(_REQUEST_TIMEOUT, remaining)))
    except OSError as e:
        return False, f"the traefik api at {api.url} did not answer: {e}"
    if status in (200, 404):
        return status == 200, None
    return False, f"the traefik api at {api.url} answered {status}"


def _settled_router_problems(
    api: _Api, expected: Mapping[str, list[str]], timeout: float
) -> list[str]:
    """Router problems that last: asked again until none is left or `timeout` passes.

    Traefik's reload reads the files one by one while the renames run, so it can read a
    file just before its rename and the marker just after; the reload that the rename's
    own event triggers then brings the rest. The marker alone is therefore not the proof:
    every generated router must show too.
    """
    # Limitation: presence and status are checked, not each router's rule; a router whose
    # file Traefik read just before its rename still shows its previous rule for a moment.
    deadline = time.monotonic() + timeout
    while True:
        problems = _router_problems(api, expected)
        if not problems or time.monotonic() >= deadline:
            return problems
        time.sleep(0.1)


def _router_problems(api: _Api, expected: Mapping[str, list[str]]) -> list[str]:
    try:
        raw = api.get_json("/api/rawdata")
    except OSError as e:
        return [f"cannot read the routers from the traefik api: {e}"]
    problems: list[str] = []
    for section, names in expected.items():
        present = raw.get(_ROUTER_SECTIONS[section]) or {}
        problems.extend(
            _router_problem(section, name, present.get(f"{name}@file")) for name in names
        )
    return [problem for problem in problems if problem]


def _router_problem(section: str, name: str, router: Any) -> str:
    label = f"{section} router {name}@file"
    if not isinstance(router, dict):
        return f"{label} is not in traefik's api"
    status = router.get("status")
    errors = [str(e) for e in router.get("error") or ()]
    if status == "enabled" and not errors:
        return ""
    detail = "; ".join(errors) if errors else "no error given"
    return f"{label} is {status}: {detail}"


# not loaded: why


def _not_loaded(
    out: Path,
    generation: str,
    name: str,
    failure: str | None,
    timeout: float,
    log_path: Path | None,
    traefik_binary: Path | None,
) -> VerifyResult:
    problems = [
        f"generation {generation} is not loaded: {name}@file did not show within {timeout:g}s"
    ]
    if failure:
        problems.append(failure)
    freeze, note = _diagnose(out, log_path, traefik_binary, name)
    if freeze is not None:
        problems.append(f"traefik's file provider is frozen by {freeze.path}: {freeze.error}")
    if note:
        problems.append(note)
    frozen_by = freeze.path if freeze is not None else None
    return VerifyResult(ok=False, generation=generation, problems=problems, frozen_by=frozen_by)


def _diagnose(
    out: Path, log_path: Path | None, traefik_binary: Path | None, marker: str | None = None
) -> tuple[Freeze | None, str | None]:
    """The freezing file, from the log first, then from a scratch Traefik; else a note why not."""
    notes: list[str] = []
    if log_path is not None:
        freeze = find_freeze_in_log(log_path, out, expected=marker)
        if freeze is not None and _is_current(freeze, out):
            return freeze, None
        if freeze is not None:
            notes.append(f"traefik's log names {freeze.path}, which is no longer in {out}")
        else:
            notes.append(f"traefik's log {log_path} names no file that froze the provider")
    if traefik_binary is not None:
        try:
            freeze = find_freeze_with_traefik(out, traefik_binary)
        except OSError as e:
            notes.append(f"cannot run the scratch traefik {traefik_binary}: {e}")
        else:
            if freeze is not None:
                return freeze, "; ".join(notes) or None
            notes.append(f"every config file of {out} loads alone in a scratch traefik")
    if not notes:
        notes.append(
            "cannot tell which file froze the provider: no traefik log and no binary given"
        )
    return None, "; ".join(notes)


def _is_current(freeze: Freeze, out: Path) -> bool:
    return freeze.path.is_file() and freeze.path.resolve().is_relative_to(out.resolve())


def find_freeze_in_log(log_path: Path, out: Path, *, expected: str | None = None) -> Freeze | None:
    """The last file-provider load error of Traefik's log, unless a load succeeded since.

    A load counts only when it holds `expected` (the current marker's name): Traefik's
    throttle re-delivers the last good, older configuration after an error, which is no
    recovery. The path is mapped into `out` by its longest existing tail, since Traefik in
    a container sees the directory under another mount point.
    """
    # Limitation: only a DEBUG log shows successful loads; below DEBUG an old, since-fixed
    # error still names its file when that file exists (the caller checks it does).
    text = _log_tail(log_path)
    if text is None:
        return None
    for line in reversed(text.splitlines()):
        if _LOADED_MESSAGE in line and "providerName=file" in line:
            if expected is None or expected in line:
                return None
            continue
        if any(message in line for message in _FREEZE_MESSAGES):
            return _freeze_of(line, out)
    return None


def _log_tail(log_path: Path) -> str | None:
    try:
        with open(log_path, "rb") as file:
            file.seek(max(0, os.fstat(file.fileno()).st_size - _LOG_TAIL_BYTES))
            return file.read().decode("utf-8", errors="replace")
    except OSError as e:
        logger.warning("cannot read traefik's log %s: %s", log_path, e.strerror)
        return None


def _freeze_of(line: str, out: Path) -> Freeze | None:
    match = _ERROR_FIELD.search(line)
    if match is None:
        return None
    value = _unquote(match.group("value")).removeprefix(_COLLECTING)
    parts = _PATH_AND_ERROR.match(value)
    if parts is None:
        return None
    # Limitation: Traefik's error text may quote a line of a foreign file; it is shown as is.
    return Freeze(_local_path(parts.group("path"), out), parts.group("error"))


def _unquote(value: str) -> str:
    try:
        decoded = json.loads(f'"{value}"')
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value


def _local_path(logged: str, out: Path) -> Path:
    path = Path(logged)
    parts = path.parts[1:] if path.is_absolute() else path.parts
    for start in range(len(parts)):
        candidate = out.joinpath(*parts[start:])
        if candidate.is_file():
            return candidate
    return path


# scratch Traefik


def find_freeze_with_traefik(out: Path, traefik_binary: Path) -> Freeze | None:
    """Load each config file of `out` alone into a scratch Traefik, in Traefik's own order.

    The first file that fails is the one Traefik stops at, since its first error aborts the
    whole build. Raises OSError when the binary cannot run.
    """
    for path in _config_files(out):
        error = _load_alone(path, traefik_binary)
        if error is not None:
            return Freeze(path, error)
    return None


def _config_files(directory: Path) -> Iterator[Path]:
    """Every file Traefik's directory mode reads: sorted by name, subdirectories recursed."""
    try:
        entries = sorted(directory.iterdir(), key=lambda p: p.name.encode())
    except OSError as e:
        logger.warning("cannot list %s: %s", directory, e.strerror)
        return
    for entry in entries:
        if entry.is_dir():
            yield from _config_files(entry)
        elif entry.suffix.lower() in CONFIG_EXTENSIONS and entry.is_file():
            yield entry


def _load_alone(path: Path, traefik_binary: Path) -> str | None:
    """Traefik's load error for `path` alone; None when it loads."""
    with tempfile.TemporaryDirectory(prefix="traefik-gen-verify-") as scratch:
        root = Path(scratch)
        dynamic = root / "dynamic"
        dynamic.mkdir()
        shutil.copyfile(path, dynamic / path.name)
        log = root / "traefik.log"
        config = root / "traefik.yml"
        config.write_text(yaml.safe_dump(_scratch_config(dynamic, log)), encoding="utf-8")
        return _run_scratch(traefik_binary, config, log, root)


def _scratch_config(dynamic: Path, log: Path) -> dict[str, Any]:
    # One loopback entrypoint: with none at all Traefik would open :80 on every address.
    return {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {"scratch": {"address": f"127.0.0.1:{_free_port()}"}},
        "providers": {"file": {"directory": str(dynamic), "watch": True}},
        "log": {"level": "DEBUG", "noColor": True, "filePath": str(log)},
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_scratch(binary: Path, config: Path, log: Path, cwd: Path) -> str | None:
    # TRAEFIK_* variables are static configuration, and a file's {{ env }} sees the
    # environment: the scratch process gets neither.
    process = subprocess.Popen(
        [str(binary), f"--configFile={config}"],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return _scratch_outcome(process, log)
    finally:
        process.kill()
        process.wait()


def _scratch_outcome(process: subprocess.Popen[bytes], log: Path) -> str | None:
    deadline = time.monotonic() + _SCRATCH_TIMEOUT
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        for line in text.splitlines():
            if _LOADED_MESSAGE in line and line.endswith("providerName=file"):
                return None
            if any(message in line for message in _FREEZE_MESSAGES):
                freeze = _freeze_of(line, log.parent / "dynamic")
                return freeze.error if freeze is not None else line
        if process.poll() is not None:
            raise OSError(f"traefik exited with status {process.returncode} before loading")
        time.sleep(0.02)
    raise OSError(f"traefik did not load within {_SCRATCH_TIMEOUT:g}s")
