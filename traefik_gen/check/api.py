"""Reading a running Traefik's API (`--traefik-api`): its HTTP routers and every object name.

Only the URL the user gives is contacted, with GET requests and a timeout.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from traefik_gen.check.conflicts import ApiRouter
from traefik_gen.errors import SourceError

__all__ = ["TraefikApi"]

logger = logging.getLogger(__name__)

_TIMEOUT = 10.0
_PER_PAGE = 100
_MAX_PAGES = 1000
# /api/rawdata's keys per section; tls options and transports are not listed there.
_RAWDATA_KEYS = {
    "http.routers": "routers",
    "http.services": "services",
    "http.middlewares": "middlewares",
    "tcp.routers": "tcpRouters",
    "tcp.services": "tcpServices",
    "tcp.middlewares": "tcpMiddlewares",
    "udp.routers": "udpRouters",
    "udp.services": "udpServices",
}


class TraefikApi:
    """A Traefik API base URL such as `http://127.0.0.1:8080`."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceError(f"--traefik-api {_shown(url)!r} is not an http(s) url")
        self._base = url.rstrip("/")

    def routers(self) -> list[ApiRouter]:
        """Every HTTP router of every provider, following the API's pagination."""
        found: list[ApiRouter] = []
        page = 1
        while page and len(found) < _PER_PAGE * _MAX_PAGES:
            body, next_page = self._get(f"/api/http/routers?per_page={_PER_PAGE}&page={page}")
            found.extend(_router(entry) for entry in body if isinstance(entry, dict))
            # Traefik names page 1 as the next one on the last page.
            page = next_page if next_page > page else 0
        return found

    def names(self) -> dict[str, set[str]]:
        """Qualified names (`name@provider`) per section, as /api/rawdata lists them."""
        body, _ = self._get("/api/rawdata")
        if not isinstance(body, dict):
            raise SourceError(f"traefik api {self._shown()}/api/rawdata is not a json object")
        return {
            section: set(body.get(key) or {})
            for section, key in _RAWDATA_KEYS.items()
            if isinstance(body.get(key) or {}, dict)
        }

    def _get(self, path: str) -> tuple[Any, int]:
        url = self._base + path
        try:
            with urllib.request.urlopen(url, timeout=_TIMEOUT) as answer:
                body = json.loads(answer.read())
                next_page = answer.headers.get("X-Next-Page", "")
        except urllib.error.HTTPError as exc:
            raise SourceError(f"traefik api {self._shown()}{path} answered {exc.code}") from exc
        except (OSError, ValueError) as exc:
            raise SourceError(
                f"cannot read traefik api {self._shown()}{path}: {type(exc).__name__}"
            ) from exc
        logger.debug("read %s from traefik api %s", path, self._shown())
        return body, int(next_page) if next_page.isdigit() else 0

    def _shown(self) -> str:
        return _shown(self._base)


def _shown(url: str) -> str:
    # A URL's user info may hold a password.
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _router(entry: dict[str, Any]) -> ApiRouter:
    qualified = str(entry.get("name", ""))
    name, _, provider = qualified.partition("@")
    return ApiRouter(
        name=name,
        provider=str(entry.get("provider") or provider),
        rule=str(entry.get("rule", "")),
        entrypoints=tuple(str(e) for e in entry.get("entryPoints") or ()),
    )
