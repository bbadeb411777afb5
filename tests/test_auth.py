"""Basic-auth users: bcrypt once per password, never for an unchanged user."""

from __future__ import annotations

import stat
from pathlib import Path

import bcrypt
import pytest
from pydantic import SecretStr

from traefik_gen.auth import PasswordHasher
from traefik_gen.errors import ConfigError
from traefik_gen.routes import BasicAuthUser


def user(name: str = "admin", password: str = "s3cret") -> BasicAuthUser:
    return BasicAuthUser(username=name, password=SecretStr(password))


def test_an_entry_is_the_username_and_a_bcrypt_hash_of_the_password(tmp_path: Path) -> None:
    entry = PasswordHasher(tmp_path / "cache", rounds=4).entry(user())

    name, hashed = entry.split(":", 1)
    assert name == "admin"
    assert bcrypt.checkpw(b"s3cret", hashed.encode())


def test_an_unchanged_user_costs_no_bcrypt_work_in_the_next_run(tmp_path: Path) -> None:
    first = PasswordHasher(tmp_path / "cache", rounds=4)
    entry = first.entry(user())
    first.save()

    second = PasswordHasher(tmp_path / "cache", rounds=4)

    assert second.entry(user()) == entry
    assert second.hashes_computed == 0


def test_a_changed_password_always_gets_a_new_hash(tmp_path: Path) -> None:
    first = PasswordHasher(tmp_path / "cache", rounds=4)
    old = first.entry(user(password="old"))
    first.save()

    second = PasswordHasher(tmp_path / "cache", rounds=4)
    new = second.entry(user(password="new"))

    assert new != old
    assert second.hashes_computed == 1
    assert bcrypt.checkpw(b"new", new.split(":", 1)[1].encode())


def test_the_cache_is_readable_by_its_owner_only_and_holds_no_plaintext(tmp_path: Path) -> None:
    hasher = PasswordHasher(tmp_path / "cache", rounds=4)
    hasher.entry(user(password="plain-text-pw"))
    hasher.save()

    mode = stat.S_IMODE((tmp_path / "cache").stat().st_mode)
    assert mode == 0o600
    assert b"plain-text-pw" not in (tmp_path / "cache").read_bytes()


def test_users_no_longer_used_leave_the_cache(tmp_path: Path) -> None:
    first = PasswordHasher(tmp_path / "cache", rounds=4)
    gone = first.entry(user(name="gone")).split(":", 1)[1]
    first.save()

    second = PasswordHasher(tmp_path / "cache", rounds=4)
    second.entry(user(name="kept"))
    second.save()

    assert gone.encode() not in (tmp_path / "cache").read_bytes()


def test_a_damaged_cache_costs_only_new_hashes(tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("{not json")

    hasher = PasswordHasher(tmp_path / "cache", rounds=4)

    assert hasher.entry(user()).startswith("admin:$2b$")


@pytest.mark.parametrize("name", ["ad:min", "", " admin", "ad\nmin"])
def test_an_unusable_username_is_refused_without_showing_the_password(
    tmp_path: Path, name: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        PasswordHasher(None, rounds=4).entry(user(name=name, password="hunter2"))

    assert "hunter2" not in str(caught.value)


def test_a_given_hash_must_be_bcrypt(tmp_path: Path) -> None:
    given = BasicAuthUser(username="admin", hash=SecretStr("$apr1$abc$def"))

    with pytest.raises(ConfigError, match="not a bcrypt hash"):
        PasswordHasher(None).entry(given)


def test_a_password_past_bcrypts_72_bytes_is_refused_without_showing_it() -> None:
    long = "LongDbSecret-" * 8

    with pytest.raises(ConfigError, match="longer than bcrypt's 72 bytes") as caught:
        PasswordHasher(None, rounds=4).entry(user(password=long))

    assert long not in str(caught.value)
