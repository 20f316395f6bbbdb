"""What a request may ask, checked at the edge: the API's query and path parameters and
the pages' filters share these limits, so a value the store cannot hold or compare (an
amount past its 64-bit nano-USD, an offset past its integers, a moment outside the
calendar once in UTC, a NUL byte PostgreSQL refuses) is a 4xx that says why, never a 500.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator

from proctor.ids import MAX_NAME_LENGTH, name_problem

MAX_USD = Decimal(1_000_000_000)
"""The largest amount a filter takes (a billion USD); the store counts nano-USD in 64 bits."""
MAX_OFFSET = 1_000_000_000
"""The largest offset into a list."""
MAX_ID_LENGTH = 200
"""Longer than any id the service hands out (runs, approvals, eval reports)."""
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
"""Moments a filter takes: a day inside the calendar, so a day added or taken stays in it."""


def name_or_problem(value: str, what: str) -> str:
    problem = name_problem(value, what)
    if problem is not None:
        raise ValueError(problem)
    return value


def _tenant(value: str | None) -> str | None:
    return None if value is None else name_or_problem(value, "tenant")


def _workflow(value: str | None) -> str | None:
    return None if value is None else name_or_problem(value, "workflow")


def _release(value: str | None) -> str | None:
    return None if value is None else name_or_problem(value, "release")


def checked_moment(moment: datetime | None) -> datetime | None:
    """``moment`` as an aware datetime, if it lies within ``EARLIEST`` .. ``LATEST`` in UTC."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    try:
        utc = aware.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(
            f"{moment.isoformat()} is outside the dates the service filters on "
            f"({EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}, UTC)"
        )
    return aware


def _identifier(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("an id cannot hold control characters")
    return value


TenantQuery = Annotated[
    str | None,
    Query(description=f"A tenant: 1 to {MAX_NAME_LENGTH} characters."),
    AfterValidator(_tenant),
]
ReleaseQuery = Annotated[
    str | None,
    Query(description="A release (``proctor release list``): runs opened under it."),
    AfterValidator(_release),
]
WorkflowQuery = Annotated[
    str | None,
    Query(description=f"A workflow: 1 to {MAX_NAME_LENGTH} characters."),
    AfterValidator(_workflow),
]
MomentQuery = Annotated[
    datetime | None,
    Query(description="An ISO 8601 date or time; UTC unless it says otherwise."),
    AfterValidator(checked_moment),
]
UsdQuery = Annotated[Decimal | None, Query(ge=0, le=MAX_USD, description="USD")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
Identifier = Annotated[str, Path(max_length=MAX_ID_LENGTH), AfterValidator(_identifier)]
