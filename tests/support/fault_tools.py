"""Helpers of the fault and secret tests: the CLI as a subprocess, directory snapshots, mounts.

Tests run as root, which ignores file modes, so a read-only directory is a read-only bind
mount and a full disk is a small tmpfs, both mounted under the test's own tmp_path and
unmounted at teardown (:func:`read_only_bind`, :func:`small_tmpfs`).
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from tests.support.sidecar import clean_environment

__all__ = [
    "CONFIG_SUFFIXES",
    "PREFIX",
    "UPSTREAM",
    "everything_in",
    "file_size_limit",
    "fill",
    "read_only_bind",
    "run_cli",
    "small_tmpfs",
    "spawn_cli",
    "staged_config_files",
]

UPSTREAM = "http://127.0.0.1:{port}"
PREFIX = "zz-traefik-gen-"
CONFIG_SUFFIXES = (".yml", ".yaml", ".toml")
COMMAND = (sys.executable, "-m", "traefik_gen")
_TIMEOUT = 120


def _command(args: Sequence[str]) -> list[str]:
    return [*COMMAND, *args]


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    preexec: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m traefik_gen <args>`` with none of the runner's settings in its environment."""
    return subprocess.run(
        _command(args),
        capture_output=True,
        text=True,
        env=clean_environment(env or {}),
        timeout=_TIMEOUT,
        check=False,
        preexec_fn=preexec,
    )


def spawn_cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """The same, started and not waited for (for a test that kills it)."""
    return subprocess.Popen(
        _command(args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean_environment(env or {}),
    )


def file_size_limit(limit: int) -> Callable[[], None]:
    """A preexec function capping the size of any file the child writes (RLIMIT_FSIZE).

    Python ignores SIGXFSZ, so a write past the cap fails with EFBIG instead of killing.
    """

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def everything_in(out: Path) -> dict[str, bytes]:
    """Every regular file below ``out`` (staging included), by relative path, with its bytes."""
    return {
        str(path.relative_to(out)): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def staged_config_files(out: Path) -> list[str]:
    """Names in the staging directory that Traefik would parse as configuration."""
    staging = out / ".traefik-gen"
    if not staging.is_dir():
        return []
    return sorted(p.name for p in staging.rglob("*") if p.name.lower().endswith(CONFIG_SUFFIXES))


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def read_only_bind(directory: Path) -> Iterator[Path]:
    """Make ``directory`` read-only for everyone, root included, until the block ends."""
    _run("mount", "--bind", str(directory), str(directory))
    try:
        _run("mount", "-o", "remount,ro,bind", str(directory))
        yield directory
    finally:
        _run("umount", str(directory))


@contextlib.contextmanager
def small_tmpfs(directory: Path, size_kib: int) -> Iterator[Path]:
    """Mount a tmpfs of ``size_kib`` KiB on ``directory`` until the block ends."""
    directory.mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(directory))
    try:
        yield directory
    finally:
        _run("umount", "-l", str(directory))


def fill(directory: Path, name: str = "filler.bin") -> int:
    """Write a foreign file until the filesystem is full; returns the bytes it took."""
    path = directory / name
    written = 0
    chunk = b"\0" * 4096
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while True:
            try:
                written += os.write(fd, chunk)
            except OSError:
                break
        # Single bytes too, so not even a small file fits.
        while True:
            try:
                written += os.write(fd, b"\0")
            except OSError:
                break
    finally:
        os.close(fd)
    return written
