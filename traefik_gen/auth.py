"""Basic-auth users as Traefik wants them: `name:bcrypt-hash`, hashed once per password.

Dokploy stores basic-auth passwords in plaintext and Traefik needs a hash. bcrypt is salted
and slow on purpose (tens of ms), so hashing on every run would both cost time and change
the file's bytes every time. The hash of an unchanged user is therefore kept in a cache
keyed by a keyed digest of (username, password): a changed password misses the cache and
always gets a new hash. The cache is mode 0600 (root only in the sidecar), and what it
holds is stronger than the database's own plaintext storage.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
from pathlib import Path

import bcrypt

from traefik_gen.errors import ConfigError
from traefik_gen.routes import BasicAuthUser

__all__ = ["PasswordHasher"]

logger = logging.getLogger(__name__)

_BCRYPT = re.compile(r"^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$")
_CACHE_VERSION = 1
_BCRYPT_MAX = 72


class PasswordHasher:
    """Turns users into `name:hash` entries, reusing the hash of an unchanged password."""

    def __init__(self, cache_path: Path | None, *, rounds: int = 10) -> None:
        self._path = cache_path
        self._rounds = rounds
        self._key, self._entries = self._load()
        self._used: set[str] = set()
        self.hashes_computed = 0

    def entry(self, user: BasicAuthUser) -> str:
        """The `users` line for one user; raises ConfigError without revealing a secret."""
        _check_username(user.username)
        if user.hash is not None:
            given = user.hash.get_secret_value()
            if not _BCRYPT.match(given):
                raise ConfigError(f"the hash of user '{user.username}' is not a bcrypt hash")
            return f"{user.username}:{given}"
        assert user.password is not None  # guaranteed by BasicAuthUser's validator
        password = user.password.get_secret_value()
        if len(password.encode()) > _BCRYPT_MAX:
            # bcrypt ignores (or, in bcrypt 5, refuses) what is past 72 bytes.
            raise ConfigError(
                f"the password of user '{user.username}' is longer than bcrypt's "
                f"{_BCRYPT_MAX} bytes"
            )
        return f"{user.username}:{self._hash(user.username, password)}"

    def keyed(self, data: bytes) -> str:
        """A digest of `data` under the cache's secret key, so it gives no password away.

        Comparable from run to run for as long as the cache (and so its key) is kept.
        """
        return hmac.new(self._key, b"keyed\0" + data, hashlib.sha256).hexdigest()

    def save(self) -> None:
        """Keep the hashes used by this run (and only those) for the next run."""
        if self._path is None:
            return
        entries = {key: value for key, value in self._entries.items() if key in self._used}
        document = {"version": _CACHE_VERSION, "key": self._key.hex(), "entries": entries}
        data = json.dumps(document, sort_keys=True).encode()
        if self._path.exists() and self._path.read_bytes() == data:
            return
        temporary = self._path.with_name(self._path.name + ".new")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(descriptor, 0o600)
            os.write(descriptor, data)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, self._path)

    def _hash(self, username: str, password: str) -> str:
        digest = hmac.new(self._key, f"{username}\0{password}".encode(), hashlib.sha256)
        key = digest.hexdigest()
        self._used.add(key)
        cached = self._entries.get(key)
        if cached is not None:
            return cached
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=self._rounds)).decode()
        self.hashes_computed += 1
        self._entries[key] = hashed
        return hashed

    def _load(self) -> tuple[bytes, dict[str, str]]:
        if self._path is None or not self._path.exists():
            return secrets.token_bytes(32), {}
        try:
            document = json.loads(self._path.read_bytes())
            if document.get("version") != _CACHE_VERSION:
                raise ValueError("unknown version")
            entries = {str(k): str(v) for k, v in document["entries"].items()}
            return bytes.fromhex(document["key"]), entries
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            # A damaged cache only costs new hashes; it never blocks a run.
            logger.warning("ignoring the unreadable hash cache %s", self._path)
            return secrets.token_bytes(32), {}


def _check_username(username: str) -> None:
    # Traefik splits each users entry at the first colon.
    if (
        not username
        or ":" in username
        or not username.isprintable()
        or username != username.strip()
    ):
        raise ConfigError(
            f"username {username!r} is not usable in basic auth "
            "(empty, a colon, a control character or surrounding spaces)"
        )
