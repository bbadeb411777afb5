"""File and object names: deterministic, stable, letters, digits and dashes only.

Names come from ids and keys, never from row order, so the same database always gives the
same bytes. Traefik keeps the first definition of a name in filename order and silently
drops the others, so every name carries the tool's prefix and the owner's kind:

    file     <file_prefix><kind>-<id>.yml            zz-traefik-gen-compose-k3Jd9_x.yml
    route    <name_prefix>-<kind>-<app>-<key>[-<ep>]  tg-compose-shop-12-websecure
    shared   <name_prefix>-<kind>-<app>--<what>       tg-app-shop--auth

A slug never contains "--" nor starts with "-", so shared names can never equal a route's.
"""

from __future__ import annotations

import hashlib
import re

from traefik_gen.routes import Owner

__all__ = ["OwnerNames", "file_key", "slug"]

_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NOT_NAME = re.compile(r"[^A-Za-z0-9]+")


def slug(text: str) -> str:
    """Letters and digits kept, every other run of characters one dash."""
    return _NOT_NAME.sub("-", text).strip("-")


def file_key(owner_id: str) -> str:
    """The id part of a file name: the id itself when it is plain, else a digest of it.

    A digest key contains a dot, which a plain id never does, so the two cannot collide;
    ids with "/", ".." or anything else never reach a path.
    """
    if _PLAIN_ID.fullmatch(owner_id):
        return owner_id
    return "h." + hashlib.sha256(owner_id.encode()).hexdigest()[:20]


class OwnerNames:
    """Every name one owner's file uses."""

    def __init__(self, owner: Owner, *, name_prefix: str, file_prefix: str, ext: str) -> None:
        app = slug(owner.name) or slug(owner.id) or file_key(owner.id).replace(".", "-")
        self.namespace = f"{name_prefix}-{owner.kind.value}-{app}"
        self.filename = f"{file_prefix}{owner.kind.value}-{file_key(owner.id)}{ext}"

    def route(self, key: str) -> str:
        """The base name of one route: its service, and the stem of its routers."""
        return f"{self.namespace}-{slug(key) or 'x'}"

    def shared(self, what: str) -> str:
        """An object every route of the owner may use (auth, redirects, https redirect)."""
        return f"{self.namespace}--{what}"

    def label(self, name: str) -> str:
        """An object defined by the owner's Traefik labels."""
        return f"{self.namespace}-{slug(name) or 'x'}"

    def belongs_to_route(self, name: str, key: str) -> bool:
        base = self.route(key)
        return name == base or name.startswith(base + "-")
