"""The real parser (`--traefik PATH`): the directory's files loaded by a scratch Traefik.

A copy of the files goes into a temporary directory, and a Traefik binary is started on
free 127.0.0.1 ports with the file provider alone (no Docker, no ACME, no version check,
no usage report) and JSON logs. Its first build either delivers the configuration or
logs the error that names the file; then it is stopped and the copy removed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from traefik_gen.check.findings import Finding, FindingKind
from traefik_gen.render import mask_secrets

__all__ = ["scratch_parse"]

logger = logging.getLogger(__name__)

_READY_TIMEOUT = 30.0
_STOP_TIMEOUT = 5.0
_POLL = 0.05
_DELIVERED = "Configuration received"
_FAILED = ("Error while building configuration", "Error occurred during watcher callback")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def scratch_parse(
    binary: Path,
    files: Mapping[str, bytes],
    *,
    entrypoints: tuple[str, ...] = ("web", "websecure"),
    timeout: float = _READY_TIMEOUT,
) -> list[Finding]:
    """What a real Traefik says of `files` (relative path to bytes): one finding per error."""
    with tempfile.TemporaryDirectory(prefix="traefik-gen-check-") as scratch:
        root = Path(scratch)
        dynamic = root / "dynamic"
        _copy(files, dynamic)
        config = root / "traefik.yml"
        log = root / "traefik.log"
        config.write_text(yaml.safe_dump(_static(dynamic, log, entrypoints)), encoding="utf-8")
        entries, problem = _run(binary, config, log, root / "traefik.out", timeout)
        if problem is not None:
            return [_unverified(problem)]
        return [_finding(entry, dynamic) for entry in entries if _is_failure(entry)]


def _copy(files: Mapping[str, bytes], dynamic: Path) -> None:
    dynamic.mkdir()
    for name, content in files.items():
        target = dynamic / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _static(dynamic: Path, log: Path, entrypoints: tuple[str, ...]) -> dict[str, Any]:
    names = [*dict.fromkeys(e for e in entrypoints if e != "traefik"), "traefik"]
    ports = _free_ports(len(names))
    return {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {
            name: {"address": f"127.0.0.1:{port}"} for name, port in zip(names, ports, strict=True)
        },
        "api": {"insecure": True},
        "providers": {"file": {"directory": str(dynamic), "watch": True}},
        "log": {"level": "DEBUG", "format": "json", "noColor": True, "filePath": str(log)},
    }


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _run(
    binary: Path, config: Path, log: Path, output: Path, timeout: float
) -> tuple[list[dict[str, Any]], str | None]:
    with output.open("wb") as out:
        try:
            process = subprocess.Popen(
                # Absolute: the process runs in the scratch directory.
                [str(binary.absolute()), f"--configFile={config}"],
                cwd=config.parent,
                env=_child_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            return [], f"cannot start {binary}: {exc.strerror}"
        try:
            return _wait_for_first_build(process, log, timeout)
        finally:
            _stop(process)


def _child_env() -> dict[str, str]:
    # TRAEFIK_* variables are a static-configuration source of their own.
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("TRAEFIK_")}


def _wait_for_first_build(
    process: subprocess.Popen[bytes], log: Path, timeout: float
) -> tuple[list[dict[str, Any]], str | None]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = list(_entries(log))
        if any(_is_failure(e) or _is_delivery(e) for e in entries):
            return entries, None
        if process.poll() is not None:
            return [], f"the scratch traefik exited with status {process.returncode}"
        time.sleep(_POLL)
    return [], f"the scratch traefik did not build its configuration within {timeout:.0f}s"


def _entries(log: Path) -> Iterator[dict[str, Any]]:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            yield entry


def _is_delivery(entry: Mapping[str, Any]) -> bool:
    return entry.get("providerName") == "file" and _DELIVERED in str(entry.get("message", ""))


def _is_failure(entry: Mapping[str, Any]) -> bool:
    return any(marker in str(entry.get("message", "")) for marker in _FAILED)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            # The provider throttle may sleep out its window after shutdown has begun.
            process.kill()
            process.wait()


def _finding(entry: Mapping[str, Any], dynamic: Path) -> Finding:
    error = str(entry.get("error", ""))
    prefix = f"{dynamic}{os.sep}"
    name = _file_named(error, prefix)
    reason = _redacted(error.replace(prefix, ""))
    if name is not None:
        reason = reason.replace(f"{name}: ", "", 1)
    line = f"traefik refuses {name or 'the directory'}: {reason}"
    return Finding(FindingKind.TRAEFIK_PARSE, line, file=name)


def _file_named(error: str, prefix: str) -> str | None:
    start = error.find(prefix)
    if start < 0:
        return None
    rest = error[start + len(prefix) :]
    end = rest.find(": ")
    return rest if end < 0 else rest[:end]


def _redacted(text: str) -> str:
    # Go's decoder quotes the offending value (`parsing "x": invalid syntax`), which may
    # be a secret; the key and the line say enough.
    return mask_secrets(_QUOTED.sub('"…"', text))


def _unverified(problem: str) -> Finding:
    return Finding(FindingKind.UNCHECKED, f"not verified by traefik: {problem}")
