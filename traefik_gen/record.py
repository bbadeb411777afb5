"""The record of the last one-shot generation, so an unchanged rerun costs a read and a compare.

A generation depends on what the sources hold, the settings, the code, the Docker replicas
and the directory as found, and on nothing else (bcrypt hashes come from the kept cache).
The record keeps a keyed digest of the first four and a digest of the directory's listing
(names, inodes, sizes, times) as the write left it, plus the run's outcome. A rerun that
finds both digests the same would write nothing, so it replays the outcome (routers,
rejections, notices) instead of mapping, planning and rendering every owner again.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pydantic

import traefik_gen
from traefik_gen.auth import PasswordHasher
from traefik_gen.routes import Rejection
from traefik_gen.settings import Settings
from traefik_gen.sources import SourceRead
from traefik_gen.writer import STAGING_DIR, listing

__all__ = ["Record", "inputs_key", "load_record", "save_record"]

logger = logging.getLogger(__name__)

RECORD_NAME = "last-generation.json"
_VERSION = 1
_PACKAGE = Path(traefik_gen.__file__).resolve().parent


@dataclass(frozen=True)
class Record:
    inputs: str
    listing: str
    routers: int
    rejections: tuple[Rejection, ...]
    notices: tuple[str, ...]
    names: tuple[str, ...]


def inputs_key(
    read: SourceRead,
    settings: Settings,
    replicas: Mapping[tuple[str, str], tuple[str, ...]] | None,
    hasher: PasswordHasher,
) -> str:
    """Everything a generation depends on besides the directory, keyed by the hash cache.

    The source digest covers passwords: keyed, the record gives none of them away.
    """
    described = json.dumps(
        [
            settings.model_dump_json(),
            sorted((list(key), list(value)) for key, value in (replicas or {}).items()),
            _code_stamp(),
        ]
    )
    return hasher.keyed(read.digest + b"\0" + described.encode())


@functools.cache
def _code_stamp() -> list[object]:
    # An upgrade, or an edit of an installed module, can change the output for the same rows.
    stamp: list[object] = [traefik_gen.__version__]
    for path in sorted(_PACKAGE.rglob("*.py")):
        status = path.stat()
        stamp.append([str(path.relative_to(_PACKAGE)), status.st_size, status.st_mtime_ns])
    return stamp


def record_path(out: Path) -> Path:
    return out / STAGING_DIR / RECORD_NAME


def load_record(out: Path, inputs: str, *, prefix: str) -> Record | None:
    """The record, if it holds these inputs and the directory is as the record left it."""
    path = record_path(out)
    try:
        document = json.loads(path.read_bytes())
        if document.get("version") != _VERSION or document.get("inputs") != inputs:
            return None
        record = Record(
            inputs=str(document["inputs"]),
            listing=str(document["listing"]),
            routers=int(document["routers"]),
            rejections=tuple(Rejection.model_validate(r) for r in document["rejections"]),
            notices=tuple(str(notice) for notice in document["notices"]),
            names=tuple(str(name) for name in document["names"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, pydantic.ValidationError):
        # A damaged record costs one full generation, never a wrong one.
        logger.warning("ignoring the unreadable generation record %s", path)
        return None
    if record.listing != listing(out, prefix=prefix):
        logger.debug("the directory changed since the last generation")
        return None
    return record


def save_record(out: Path, record: Record) -> None:
    """Keep `record` (mode 0600: it holds a keyed digest of the sources) for the next run."""
    document = {
        "version": _VERSION,
        "inputs": record.inputs,
        "listing": record.listing,
        "routers": record.routers,
        "rejections": [r.model_dump(mode="json") for r in record.rejections],
        "notices": list(record.notices),
        "names": list(record.names),
    }
    path = record_path(out)
    temporary = path.with_name(path.name + ".new")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(descriptor, 0o600)
            file.write(json.dumps(document, sort_keys=True).encode())
        os.replace(temporary, path)
    except OSError as exc:
        # Only the next run's shortcut is lost; the generation itself is on disk.
        logger.warning("cannot keep the generation record %s: %s", path, exc.strerror)
