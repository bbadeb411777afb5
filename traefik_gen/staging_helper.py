"""A helper process that stages files while this one goes on planning the others.

A thread cannot do this: a thread that waited in the kernel gets the GIL back only when
the planner yields it, so beside a busy planner it stalls after every system call
(measured: no overlap at all). A second interpreter has its own GIL. It is given each
staging path with the file's bytes, and writes, chmods and fsyncs the file exactly as
`traefik_gen.writer` does in process; it never renames and never sees anything else.

Anything short of its own report that every file was staged leaves the staging to the
caller (`EarlyStager` in `traefik_gen.writer`), so a helper that cannot start, dies or
is killed costs time, never durability.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["HelperReport", "StagingHelper"]

logger = logging.getLogger(__name__)

# Run with -I -S: no site packages, no environment, nothing of this project imported.
# Each request is a line "<path size> <content size>" followed by exactly that many bytes
# of path, then of content: sizes, not separators, so any path a directory can have is
# taken as it is. The argument is the parent's pid.
_PROGRAM = r"""
import os, sys
try:
    import ctypes
    # PR_SET_PDEATHSIG: die with the parent (and so let go of its lock) if it is killed.
    ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)
except (ImportError, OSError, AttributeError):
    pass  # Limitation: without ctypes a helper outlives a killed parent until it is done.
if len(sys.argv) > 1 and os.getppid() != int(sys.argv[1]):
    sys.exit(0)  # the parent died before the line above took effect
requests, staged = sys.stdin.buffer, 0
flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
while header := requests.readline():
    path_size, size = (int(word) for word in header.split())
    path, content = requests.read(path_size), requests.read(size)
    if len(path) != path_size or len(content) != size:
        sys.exit(0)  # a request cut short: the parent is gone
    try:
        fd = os.open(path, flags, 0o644)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, 0o644)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        sys.stdout.write("error %d %d\n" % (staged, e.errno or 0))
        sys.exit(0)
    staged += 1
sys.stdout.write("ok %d\n" % staged)
"""
# Requests queue in the pipe while the helper waits on the disk; a wider pipe lets the
# planner run further ahead before it blocks (the kernel may grant less).
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


@dataclass(frozen=True)
class HelperReport:
    """What the helper did: how many files it staged, and where it failed if it did."""

    staged: int
    # The index of the file whose staging failed, and the error number.
    failed: tuple[int, int] | None = None
    complete: bool = False


class StagingHelper:
    """One helper process, given files in order with `stage`, waited for with `wait`.

    `lock_fd` is the directory's lock held by this process (`traefik_gen.writer.lock`):
    the helper holds it too, so no other run stages beside it, even in the moment after
    this process was killed and before the helper follows it.
    """

    def __init__(self, *, lock_fd: int | None = None) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._sent = 0
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _PROGRAM, str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                close_fds=True,
                # Limitation: a helper stuck in fsync on a dead mount is unkillable, lock held.
                pass_fds=() if lock_fd is None else (lock_fd,),
            )
        except OSError as e:
            logger.debug("no staging helper (%s): files are staged in process", e.strerror)
            return
        assert self._process.stdin is not None
        _widen(self._process.stdin)

    def stage(self, path: str | Path, content: bytes) -> bool:
        """Hand `path` and its bytes over; False once the helper is gone (stage it here)."""
        if self._process is None or self._process.stdin is None:
            return False
        try:
            encoded = os.fsencode(path)
            self._process.stdin.write(b"%d %d\n" % (len(encoded), len(content)) + encoded)
            self._process.stdin.write(content)
            # At once, so the helper starts on it while the next file is planned.
            self._process.stdin.flush()
        except OSError:
            self._forget()
            return False
        self._sent += 1
        return True

    def wait(self) -> HelperReport:
        """Close the requests and wait for the helper's report."""
        if self._process is None:
            return HelperReport(staged=0)
        process, self._process = self._process, None
        try:
            output, _ = process.communicate()
        except OSError:
            process.kill()
            process.wait()
            return HelperReport(staged=0)
        return _report(output, self._sent, process.returncode)

    def abort(self) -> None:
        """Stop the helper at once; what it staged is the caller's to discard."""
        self._forget()

    def _forget(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _widen(pipe: IO[bytes]) -> None:
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, _PIPE_SIZE)


def _report(output: bytes, sent: int, returncode: int) -> HelperReport:
    words = output.decode("ascii", "replace").split()
    if returncode != 0 or len(words) < 2 or not words[1].isdigit():
        logger.debug("the staging helper ended with status %d and no report", returncode)
        return HelperReport(staged=0)
    if words[0] == "ok" and int(words[1]) == sent:
        return HelperReport(staged=sent, complete=True)
    if words[0] == "error" and len(words) == 3 and words[2].isdigit() and int(words[1]) < sent:
        return HelperReport(staged=int(words[1]), failed=(int(words[1]), int(words[2])))
    return HelperReport(staged=0)
