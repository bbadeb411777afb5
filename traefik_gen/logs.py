"""Logging set-up: human-readable lines by default, JSON lines for log collectors.

A last-line filter masks anything shaped like a secret (a DSN password, a bcrypt hash)
in every record, as a second fence behind code that never logs secrets in the first place.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Literal

__all__ = ["configure_logging", "mask"]

# ":/+": a URL taken for a path loses one slash; greedy to the last "@", as a password may
# hold an unencoded "@".
_DSN_PASSWORD = re.compile(r"(:/+[^:/@\s]*:)\S*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&\s]*", re.IGNORECASE)
_BCRYPT = re.compile(r"\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def mask(text: str) -> str:
    """The text with DSN passwords, `password=` values and bcrypt hashes masked."""
    text = _DSN_PASSWORD.sub(r"\1***@", text)
    text = _QUERY_PASSWORD.sub(r"\1***", text)
    text = _KEYWORD_PASSWORD.sub(r"\1***", text)
    return _BCRYPT.sub("<bcrypt hash>", text)


class _MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage())
        record.args = None
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = mask(self.formatException(record.exc_info))
        return json.dumps(document, ensure_ascii=False)


def configure_logging(log_format: Literal["text", "json"] = "text", level: str = "info") -> None:
    """Send traefik-gen's records to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_MaskingFilter())
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("traefik_gen")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
