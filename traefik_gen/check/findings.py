"""What `traefik-gen check` reports: one finding a line, with the row, app and field it names."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from traefik_gen.routes import Rejection, RowRef

__all__ = ["Finding", "FindingKind"]

logger = logging.getLogger(__name__)


class FindingKind(StrEnum):
    """The kinds of problem a check reports, as they appear in `--format json`."""

    # A file Traefik's file provider would refuse: every file-provider route freezes.
    PARSE = "parse"
    # The same, as the real Traefik binary said it (--traefik).
    TRAEFIK_PARSE = "traefik-parse"
    # A file that could not be linted (a Go template action traefik-gen cannot evaluate).
    UNCHECKED = "unchecked"
    REJECTED = "rejected"
    NAME_CLASH = "name-clash"
    ROUTE_CLASH = "route-clash"
    MISSING_REFERENCE = "missing-reference"
    UNSERVED = "unserved"
    REDEPLOY_DUE = "redeploy-due"


@dataclass(frozen=True)
class Finding:
    """One problem: `line` is the human-readable sentence, the rest says where it is."""

    kind: FindingKind
    line: str
    file: str | None = None
    table: str | None = None
    row_id: str | None = None
    app: str | None = None
    field: str | None = None

    @classmethod
    def of_rejection(cls, rejection: Rejection) -> Finding:
        return cls.at_row(FindingKind.REJECTED, rejection.line(), rejection.ref, rejection.field)

    @classmethod
    def at_row(
        cls, kind: FindingKind, line: str, ref: RowRef | None, field: str | None = None
    ) -> Finding:
        if ref is None:
            return cls(kind, line, field=field)
        return cls(kind, line, table=ref.table, row_id=ref.row_id, app=ref.app, field=field)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        return data
