"""Bytes to the watched directory: ownership, staging, atomic renames, reconcile, diff, lock.

The directory is Traefik's file-provider directory, shared with Dokploy and with users.
A file is ours only if its name has our prefix and a config extension and its first line
is the render header; everything else is foreign and never touched.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import fcntl
import hashlib
import itertools
import logging
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from traefik_gen.errors import SettingsError, WriteError
from traefik_gen.render import HEADER_LINE, mask_secrets
from traefik_gen.staging_helper import StagingHelper

__all__ = [
    "CONFIG_EXTENSIONS",
    "STAGED_SUFFIX",
    "STAGING_DIR",
    "DirectoryState",
    "EarlyStager",
    "WriteResult",
    "apply",
    "listing",
    "listing_digest",
    "lock",
    "scan",
    "scan_names",
    "staging_path",
    "statuses",
    "unified_diff",
]

logger = logging.getLogger(__name__)

# Traefik parses subdirectories recursively but watches only the top level: files
# staged here cause no reload, and no name in here may end in a config extension.
STAGING_DIR = ".traefik-gen"
STAGED_SUFFIX = ".staged"
LOCK_NAME = "lock"
CONFIG_EXTENSIONS = (".yml", ".yaml", ".toml")
FILE_MODE = 0o644
DIR_MODE = 0o755
_NAME_MAX = 255
_HEADER = HEADER_LINE.encode("utf-8") + b"\n"
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class DirectoryState:
    """What `scan` found: our files with their bytes, and every foreign config file."""

    prefix: str
    owned: Mapping[str, bytes] = field(default_factory=dict)
    foreign: tuple[Path, ...] = ()


@dataclass(frozen=True)
class WriteResult:
    """File names (not paths) written, removed, and left as they were."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def staging_path(out: Path, name: str) -> Path:
    """Where `name` is staged before its rename into `out`."""
    return out / STAGING_DIR / (name + STAGED_SUFFIX)


def scan(out: Path, *, prefix: str, create: bool = True) -> DirectoryState:
    """Read the watched directory: owned files (top level only) and foreign config files.

    Args:
        out: the watched directory; created with its parents if missing (unless `create`
            is false, when a missing directory scans as empty).
        prefix: the file-name prefix of our files.

    Raises:
        SettingsError: the prefix is not a plain name.
        WriteError: the directory cannot be created or read.
    """
    _check_prefix(prefix)
    if not _directory_exists(out):
        if not create:
            return DirectoryState(prefix=prefix)
        _make_directory(out)
    owned: dict[str, bytes] = {}
    foreign: list[Path] = []
    for entry in _entries(out):
        _classify(entry, prefix, owned, foreign)
    _warn_about_staging_configs(out, foreign)
    return DirectoryState(prefix=prefix, owned=owned, foreign=tuple(foreign))


def listing(out: Path, *, prefix: str) -> str:
    """A digest of what `scan` would find, from names and file status alone (no reads).

    Any write, rename, removal, chmod or new file in scope moves it: each config file's
    path, inode, size, mode and change and modification times are in it.
    """
    return listing_digest(statuses(out, prefix=prefix), prefix=prefix)


def statuses(out: Path, *, prefix: str) -> dict[str, bytes]:
    """Each file `listing` covers, by its path below `out`, with its status line."""
    _check_prefix(prefix)
    found: dict[str, bytes] = {}
    if _directory_exists(out):
        _list_into(found, os.fspath(out), "")
    return found


def listing_digest(found: Mapping[str, bytes], *, prefix: str) -> str:
    digest = hashlib.sha256(prefix.encode() + b"\0")
    for line in found.values():
        digest.update(line)
    return digest.hexdigest()


def _list_into(found: dict[str, bytes], directory: str, relative: str) -> None:
    """The walk of `_config_files_below`, on plain strings: it runs on every one-shot run."""
    for entry in _entries(Path(directory)):
        name = relative + entry.name
        if _is_directory(entry):
            _list_into(found, entry.path, name + "/")
        elif _is_config_name(entry.name) or entry.name.endswith(STAGED_SUFFIX):
            # A staged leftover (a run killed mid-write) is in too: the next run cleans it.
            found[name] = _status_line(entry, name)


def _status_line(entry: os.DirEntry[str], name: str) -> bytes:
    # Limitation: with coarse file times (1 s), a same-size edit in place within a tick is unseen.
    try:
        status = entry.stat()
    except OSError:
        return f"{name}\0gone\n".encode("utf-8", "surrogateescape")
    fields = (
        status.st_ino,
        status.st_size,
        status.st_mode,
        status.st_mtime_ns,
        status.st_ctime_ns,
        entry.is_symlink(),
    )
    return f"{name}\0{fields}\n".encode("utf-8", "surrogateescape")


def scan_names(out: Path, names: Iterable[str], *, prefix: str) -> DirectoryState:
    """`scan`, limited to the top-level files `names` (the ones a watcher saw change).

    Raises:
        SettingsError: the prefix is not a plain name.
        WriteError: a file cannot be read.
    """
    _check_prefix(prefix)
    owned: dict[str, bytes] = {}
    foreign: list[Path] = []
    for name in sorted(set(names)):
        if "/" in name or name in ("", ".", "..") or not _is_config_name(name):
            continue
        path = out / name
        try:
            status = path.lstat()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise WriteError(f"cannot read {path}: {e.strerror}") from e
        content = _read(path) if stat.S_ISREG(status.st_mode) and name.startswith(prefix) else None
        if content is not None and content.startswith(_HEADER):
            owned[name] = content
        elif not stat.S_ISDIR(status.st_mode):
            foreign.append(path)
    return DirectoryState(prefix=prefix, owned=owned, foreign=tuple(foreign))


def apply(
    out: Path,
    desired: Mapping[str, bytes],
    state: DirectoryState,
    *,
    dry_run: bool = False,
    early: EarlyStager | None = None,
) -> WriteResult:
    """Make the owned files of `out` exactly `desired`, touching only what differs.

    Every changed file is staged (written, chmod 0644, fsynced) before the first rename;
    the renames then run back to back so Traefik sees one burst, and owned files no longer
    desired are removed last. Files `early` staged already with the same bytes are not
    staged again. Call it under `lock`.

    Raises:
        WriteError: a name is not acceptable or belongs to a foreign file, or the
            filesystem refused a step (the message names the path and says what changed).
    """
    if not dry_run and early is None:
        _remove_leftovers(out)
    plan = _plan(out, desired, state)
    if plan.unchanged:
        logger.debug("%d files unchanged in %s", len(plan.unchanged), out)
    if dry_run:
        return plan
    if plan.written:
        ready = early.finish() if early is not None else {}
        staged = _stage_all(out, [(name, desired[name]) for name in plan.written], ready)
        _rename_all(out, staged)
        _fsync_directory(out)
    if plan.removed:
        _remove_all(out, plan.removed)
        _fsync_directory(out)
    return plan


def unified_diff(out: Path, desired: Mapping[str, bytes], state: DirectoryState) -> str:
    """A unified diff of every owned file that `apply` would write or remove, hashes masked.

    Raises:
        WriteError: as `apply` would, for an unacceptable or foreign name.
    """
    plan = _plan(out, desired, state)
    names = sorted(plan.written + plan.removed)
    chunks = [_file_diff(out / name, state.owned.get(name), desired.get(name)) for name in names]
    return mask_secrets("".join(chunks))


@contextlib.contextmanager
def lock(out: Path, *, blocking: bool = True) -> Iterator[None]:
    """Hold the exclusive advisory lock of `out` (flock on `.traefik-gen/lock`).

    The lock file lives in the watched directory, so every container that mounts it
    contends for the same lock.

    Raises:
        WriteError: `blocking` is false and another run holds the lock, or the lock file
            cannot be created or locked.
    """
    # Limitation: flock is only as reliable as the filesystem; on some network mounts it
    # is local to one client, so two hosts sharing such a directory are not excluded.
    if not _directory_exists(out):
        _make_directory(out)
    path = _ensure_staging(out) / LOCK_NAME
    fd = _open_lock(path)
    try:
        _acquire(fd, path, blocking=blocking)
        _HELD[_lock_key(out)] = fd
        try:
            yield
        finally:
            del _HELD[_lock_key(out)]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# The descriptor of each lock this process holds, by directory: a staging helper is given
# it, so a helper left writing after its parent was killed keeps the next run out.
_HELD: dict[str, int] = {}


def _lock_key(out: Path) -> str:
    return os.path.abspath(out)


# scan


def _check_prefix(prefix: str) -> None:
    if not _PREFIX.fullmatch(prefix):
        raise SettingsError(
            f"file prefix {prefix!r} must start with a letter or digit and hold only "
            "letters, digits, '_', '.' and '-'"
        )


def _directory_exists(out: Path) -> bool:
    try:
        st = os.stat(out)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise WriteError(f"cannot read directory {out}: {e.strerror}") from e
    if not stat.S_ISDIR(st.st_mode):
        raise WriteError(f"{out} exists and is not a directory")
    return True


def _make_directory(out: Path) -> None:
    missing: list[Path] = []
    path = out
    while not os.path.lexists(path):
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        _make_one_directory(directory)


def _make_one_directory(directory: Path) -> None:
    try:
        os.mkdir(directory, DIR_MODE)
        # Explicit, so a restrictive umask cannot hide the directory from Traefik.
        os.chmod(directory, DIR_MODE)
    except OSError as e:
        raise WriteError(f"cannot create directory {directory}: {e.strerror}") from e
    logger.info("created directory %s", directory)


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except OSError as e:
        raise WriteError(f"cannot read directory {directory}: {e.strerror}") from e


def _classify(
    entry: os.DirEntry[str], prefix: str, owned: dict[str, bytes], foreign: list[Path]
) -> None:
    path = Path(entry.path)
    if _is_directory(entry):
        foreign.extend(_config_files_below(path))
    elif _is_config_name(entry.name):
        content = _owned_content(entry, prefix)
        if content is None:
            foreign.append(path)
        else:
            owned[entry.name] = content


def _is_directory(entry: os.DirEntry[str]) -> bool:
    # Traefik's directory walk does not follow symlinked directories either.
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError as e:
        raise WriteError(f"cannot read {entry.path}: {e.strerror}") from e


def _config_files_below(directory: Path) -> Iterator[Path]:
    for entry in _entries(directory):
        if _is_directory(entry):
            yield from _config_files_below(Path(entry.path))
        elif _is_config_name(entry.name):
            yield Path(entry.path)


def _is_config_name(name: str) -> bool:
    return name.lower().endswith(CONFIG_EXTENSIONS)


def _owned_content(entry: os.DirEntry[str], prefix: str) -> bytes | None:
    if not entry.name.startswith(prefix) or not entry.is_file(follow_symlinks=False):
        return None
    content = _read(Path(entry.path))
    return content if content.startswith(_HEADER) else None


def _read(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise WriteError(f"cannot read {path}: {e.strerror}") from e
    with os.fdopen(fd, "rb") as file:
        try:
            return file.read()
        except OSError as e:
            raise WriteError(f"cannot read {path}: {e.strerror}") from e


def _warn_about_staging_configs(out: Path, foreign: Iterable[Path]) -> None:
    staging = out / STAGING_DIR
    for path in foreign:
        if staging in path.parents:
            logger.warning("%s is not ours, but Traefik loads it: remove it", path)


# apply: plan


def _plan(out: Path, desired: Mapping[str, bytes], state: DirectoryState) -> WriteResult:
    names = sorted(desired)
    written = [name for name in names if state.owned.get(name) != desired[name]]
    # Listed on disk, not only taken from the state: a user may have created a file since.
    present = _names_in(out) if any(name not in state.owned for name in written) else set()
    # A file left as it is was ours with these very bytes: only what is written is checked.
    for name in written:
        _check_name(name, state.prefix)
        _check_content(name, desired[name])
        _check_not_foreign(out, name, state, present)
    return WriteResult(
        written=written,
        removed=[name for name in sorted(state.owned) if name not in desired],
        unchanged=[name for name in names if state.owned.get(name) == desired[name]],
    )


def _check_name(name: str, prefix: str) -> None:
    if "/" in name or "\0" in name or ".." in name or not name.isprintable():
        raise WriteError(f"file name {name!r} is not a plain file name")
    if not name.startswith(prefix):
        raise WriteError(f"file name {name!r} does not start with the prefix {prefix!r}")
    if not _is_config_name(name):
        raise WriteError(f"file name {name!r} does not end in .yml, .yaml or .toml")
    if len((name + STAGED_SUFFIX).encode("utf-8")) > _NAME_MAX:
        raise WriteError(f"file name {name!r} is too long to stage")


def _check_content(name: str, content: bytes) -> None:
    if not isinstance(content, bytes) or not content.startswith(_HEADER):
        raise WriteError(
            f"content for {name!r} does not start with the traefik-gen header, so the next "
            "scan would take the file for a foreign one"
        )


def _check_not_foreign(out: Path, name: str, state: DirectoryState, present: set[str]) -> None:
    if name not in state.owned and name in present:
        raise WriteError(f"{out / name} exists and is not ours (no traefik-gen header)")


def _names_in(out: Path) -> set[str]:
    # One listing instead of a stat per file: a full generation writes thousands.
    try:
        return set(os.listdir(out))
    except FileNotFoundError:
        return set()
    except OSError as e:
        raise WriteError(f"cannot read directory {out}: {e.strerror}") from e


# apply: stage, rename, remove


def _remove_leftovers(out: Path) -> None:
    staging = out / STAGING_DIR
    if not os.path.isdir(staging) or os.path.islink(staging):
        return
    for entry in _entries(staging):
        if entry.name.endswith(STAGED_SUFFIX):
            _unlink(Path(entry.path))
            logger.info("removed %s, left over from an interrupted run", entry.path)


def _ensure_staging(out: Path) -> Path:
    staging = out / STAGING_DIR
    try:
        st = os.lstat(staging)
    except FileNotFoundError:
        _make_one_directory(staging)
        return staging
    except OSError as e:
        raise WriteError(f"cannot read {staging}: {e.strerror}") from e
    if not stat.S_ISDIR(st.st_mode):
        # A symlink could lead to another filesystem, where rename is not atomic.
        raise WriteError(f"{staging} exists and is not a directory")
    return staging


def _stage_all(
    out: Path, files: list[tuple[str, bytes]], ready: Mapping[str, bytes]
) -> list[tuple[str, Path]]:
    """Stage `files`; those in `ready` with the same bytes are staged already.

    Every file of `ready` is this call's to rename or discard.
    """
    _ensure_staging(out)
    wanted = {name for name, _ in files}
    _discard(staging_path(out, name) for name in ready if name not in wanted)
    staged: list[tuple[str, Path]] = []
    for index, (name, content) in enumerate(files):
        path = staging_path(out, name)
        staged.append((name, path))
        if ready.get(name) == content:
            continue
        try:
            _stage_one(path, content)
        except OSError as e:
            later = (staging_path(out, n) for n, _ in files[index + 1 :] if n in ready)
            _discard(itertools.chain((path for _, path in staged), later))
            raise _stage_failure(out, name, path, e) from e
    return staged


def _stage_failure(out: Path, name: str, path: Path, error: OSError) -> WriteError:
    return WriteError(
        f"cannot stage {out / name} as {path}: {error.strerror}; nothing in {out} changed"
    )


class EarlyStager:
    """Stages each file as soon as it is planned, while the planner goes on with the others.

    A helper process (`traefik_gen.staging_helper`) writes and fsyncs the staged files
    meanwhile, so a full generation costs about its writes or its planning, whichever is
    longer, instead of both. Traefik does not watch the staging directory: nothing is
    visible before `apply` renames, and leaving the context discards whatever `apply`
    did not take. Only files `apply` would write are staged (bytes that differ from the
    scan, acceptable names), and only once there are enough of them to be worth a
    helper: a small change is staged by `apply` alone.
    """

    def __init__(self, out: Path, state: DirectoryState, *, threshold: int = 64) -> None:
        self._out = out
        self._state = state
        self._threshold = threshold
        self._pending: list[tuple[str, bytes]] = []
        self._staged: dict[str, bytes] = {}
        self._helper: StagingHelper | None = None
        self._sent: list[str] = []
        self._failure: WriteError | None = None
        self._finished = False
        self._staging = os.path.join(str(out), STAGING_DIR)

    def __enter__(self) -> EarlyStager:
        _remove_leftovers(self._out)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._finished:
            # `apply` never took the files (a refused plan, an error, Ctrl-C): nothing
            # staged is wanted any more, so the helper is stopped rather than waited for.
            self._finished = True
            if self._helper is not None:
                self._helper.abort()
        # Whatever `finish` did not hand to `apply` never reaches Traefik.
        _discard(staging_path(self._out, name) for name in self._staged)

    def offer(self, name: str, content: bytes) -> None:
        """Stage `name` now if `apply` would write it; anything else is left to `apply`."""
        if self._finished or self._failure is not None:
            return
        if self._state.owned.get(name) == content or not _acceptable(name, self._state):
            return
        if self._helper is not None:
            self._stage(name, content)
            return
        self._pending.append((name, content))
        if len(self._pending) >= self._threshold:
            _ensure_staging(self._out)
            self._helper = StagingHelper(lock_fd=_HELD.get(_lock_key(self._out)))
            logger.debug("staging in %s through a helper process", self._staging)
            pending, self._pending = self._pending, []
            for item in pending:
                self._stage(*item)

    def finish(self) -> dict[str, bytes]:
        """Wait until every file is staged; their bytes by name, now the caller's to
        rename or discard.

        Raises:
            WriteError: staging failed (nothing in the directory changed).
        """
        self._stop()
        staged, self._staged = self._staged, {}
        if self._failure is not None:
            _discard(staging_path(self._out, name) for name in staged)
            raise self._failure
        return staged

    def _stage(self, name: str, content: bytes) -> None:
        assert self._helper is not None
        self._staged[name] = content
        # A plain string: a Path per file costs more than handing the file over.
        path = os.path.join(self._staging, name + STAGED_SUFFIX)
        if self._helper.stage(path, content):
            self._sent.append(name)
        else:
            self._stage_here([name])

    def _stop(self) -> None:
        if self._finished:
            return
        self._finished = True
        # Files still pending were never staged: `apply` stages them itself.
        self._pending.clear()
        if self._helper is None:
            return
        report = self._helper.wait()
        if report.failed is not None:
            index, number = report.failed
            name = self._sent[index]
            error = OSError(number, os.strerror(number))
            self._failure = self._failure or _stage_failure(
                self._out, name, staging_path(self._out, name), error
            )
        elif not report.complete:
            logger.debug("staging %d files the helper did not report", len(self._sent))
            self._stage_here(self._sent)

    def _stage_here(self, names: list[str]) -> None:
        for name in names:
            if self._failure is not None:
                return
            path = staging_path(self._out, name)
            try:
                _stage_one(path, self._staged[name])
            except OSError as e:
                self._failure = _stage_failure(self._out, name, path, e)


def _acceptable(name: str, state: DirectoryState) -> bool:
    try:
        _check_name(name, state.prefix)
    except WriteError:
        return False
    return True


def _stage_one(path: Path, content: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, FILE_MODE)
    try:
        _write_all(fd, content)
        # Explicit: the umask may have narrowed the create mode, and Traefik may not be root.
        os.fchmod(fd, FILE_MODE)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, content: bytes) -> None:
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view) :]


def _rename_all(out: Path, staged: list[tuple[str, Path]]) -> None:
    done: list[str] = []
    directory = str(out)
    for index, (name, path) in enumerate(staged):
        target = os.path.join(directory, name)
        try:
            os.replace(path, target)
        except OSError as e:
            _discard(path for _, path in staged[index:])
            raise WriteError(_rename_failure(out, name, path, e, done)) from e
        logger.info("wrote %s", target)
        done.append(name)


def _rename_failure(out: Path, name: str, path: Path, error: OSError, done: list[str]) -> str:
    message = f"cannot rename {path} to {out / name}: {error.strerror}"
    if not done:
        return message + f"; nothing in {out} changed"
    return message + f"; already replaced, each complete and valid: {', '.join(done)}"


def _discard(paths: Iterable[Path]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            logger.warning("cannot remove staged file %s: %s", path, e.strerror)


def _remove_all(out: Path, names: list[str]) -> None:
    for name in names:
        path = out / name
        if not _still_owned(path):
            logger.warning("not removing %s: it lost the traefik-gen header since the scan", path)
            continue
        _unlink(path, note="; the new files are in place")
        logger.info("removed %s", path)


def _still_owned(path: Path) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(len(_HEADER)) == _HEADER
    except FileNotFoundError:
        return False
    except OSError as e:
        raise WriteError(f"cannot read {path}: {e.strerror}") from e


def _unlink(path: Path, note: str = "") -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise WriteError(f"cannot remove {path}: {e.strerror}{note}") from e


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        # The renames are done and visible; only their durability across a crash is unsure.
        logger.warning("cannot fsync directory %s: %s", directory, e.strerror)


# diff


def _file_diff(path: Path, old: bytes | None, new: bytes | None) -> str:
    lines = difflib.unified_diff(
        _lines(old),
        _lines(new),
        fromfile=str(path) if old is not None else "/dev/null",
        tofile=str(path) if new is not None else "/dev/null",
    )
    return "".join(_terminated(line) for line in lines)


def _lines(content: bytes | None) -> list[str]:
    if content is None:
        return []
    return content.decode("utf-8", errors="replace").splitlines(keepends=True)


def _terminated(line: str) -> str:
    return line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"


# lock


def _open_lock(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as e:
        raise WriteError(f"cannot open lock file {path}: {e.strerror}") from e


def _acquire(fd: int, path: Path, *, blocking: bool) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError as e:
        if not blocking:
            raise WriteError(f"{path} is held by another traefik-gen run") from e
    except OSError as e:
        raise WriteError(_lock_failure(path, e)) from e
    logger.info("waiting for %s: another traefik-gen run holds it", path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as e:
        raise WriteError(_lock_failure(path, e)) from e


def _lock_failure(path: Path, error: OSError) -> str:
    if error.errno == errno.ENOLCK:
        return f"cannot lock {path}: the filesystem does not support locks"
    return f"cannot lock {path}: {error.strerror}"
