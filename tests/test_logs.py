"""Logging: the last-line mask keeps anything shaped like a secret out of every record."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from traefik_gen.logs import configure_logging, mask


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("postgresql://user:hunter2@db:5432/dokploy", "hunter2"),
        ("cannot read routes file 'POSTGRESQL:/user:hunter2@db/dokploy'", "hunter2"),
        ("postgresql://user:hun@ter2@db/dokploy", "ter2"),
        ("postgresql://user@db/dokploy?sslmode=require&password=hunter2", "hunter2"),
        ("host=db password=hunter2 dbname=dokploy", "hunter2"),
        ("admin:$2b$10$" + "a" * 53, "$2b$10$"),
    ],
)
def test_secrets_are_masked(text: str, secret: str) -> None:
    assert secret not in mask(text)


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """configure_logging changes the package logger; give the next tests theirs back."""
    package = logging.getLogger("traefik_gen")
    saved = (package.handlers[:], package.level, package.propagate)
    yield
    package.handlers[:], package.level, package.propagate = saved


@pytest.mark.usefixtures("restored_logging")
def test_json_logs_are_one_masked_object_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    logging.getLogger("traefik_gen.test").info("reading %s", "postgresql://u:hunter2@db/x")

    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["level"] == "info"
    assert record["message"] == "reading postgresql://u:***@db/x"
