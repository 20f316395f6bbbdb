"""Short ids: what a person types and reads instead of a 36-character id.

An id is shown by its shortest prefix that no other stored id of its kind shares (at
least ``MIN_HEX`` hex digits after the kind, as git shows commits), and wherever an id
is taken, any prefix that only one stored id starts with is that id. A prefix more
ids share is an error naming some of them.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from proctor.errors import ApprovalNotFound, ProctorError, RunNotFound
from proctor.store.tables import approvals, runs

MIN_HEX = 8
"""Hex digits a short id keeps at least: fewer would collide as soon as runs pile up."""
_TABLES = {"run": runs, "apr": approvals}
_NOT_FOUND: dict[str, type[ProctorError]] = {"run": RunNotFound, "apr": ApprovalNotFound}
_KINDS = {"run": "run", "apr": "approval request"}
_LISTED_BY = {"run": "proctor runs list", "apr": "proctor approvals list"}
_SHOWS = {"run": "the runs", "apr": "pending ones"}


class AmbiguousId(ProctorError):
    """A prefix that more than one stored id starts with."""

    http_status = 422
    exit_code = 2


def _table(kind: str) -> sa.Table:
    try:
        return _TABLES[kind]
    except KeyError:
        raise ValueError(f"no ids of kind {kind!r}; kinds: {', '.join(_TABLES)}") from None


def resolve_id(conn: sa.Connection, kind: str, given: str) -> str:
    """The stored id of ``kind`` (``run`` or ``apr``) that ``given`` is, or starts with."""
    table = _table(kind)
    text = given.strip()
    if not text.startswith(f"{kind}_"):
        text = f"{kind}_{text}"  # the hex part alone is enough
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found = [
        row[0]
        for row in conn.execute(
            sa.select(table.c.id)
            .where(table.c.id.like(f"{escaped}%", escape="\\"))
            .order_by(table.c.id)
            .limit(4)
        )
    ]
    if text in found:
        return text
    if len(found) == 1:
        return str(found[0])
    what = _KINDS[kind]
    if not found:
        raise _NOT_FOUND[kind](f"no {what} {given}; `{_LISTED_BY[kind]}` shows {_SHOWS[kind]}")
    shown = ", ".join(found[:3]) + (", …" if len(found) > 3 else "")
    raise AmbiguousId(
        f"{given!r} is the start of more than one {what}'s id ({shown}); give more of it"
    )


def short_ids(conn: sa.Connection, kind: str, ids: Iterable[str]) -> dict[str, str]:
    """Each of ``ids`` by its shortest prefix no other stored id of ``kind`` shares."""
    table = _table(kind)
    shortest: dict[str, str] = {}
    for full in ids:
        neighbours = [
            conn.execute(sa.select(sa.func.max(table.c.id)).where(table.c.id < full)).scalar(),
            conn.execute(sa.select(sa.func.min(table.c.id)).where(table.c.id > full)).scalar(),
        ]
        common = max((_common_prefix(full, str(n)) for n in neighbours if n), default=0)
        length = max(common + 1, len(kind) + 1 + MIN_HEX)
        shortest[full] = full[:length]
    return shortest


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
