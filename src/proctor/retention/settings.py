"""``retention:`` in ``proctor.yaml``: how long audit payloads and finished runs are kept.

    retention:
      default: {payloads: 90d, runs: 365d}
      tenants:
        acme: {payloads: 30d}

A tenant's own setting wins over ``default`` kind by kind; a kind set nowhere is
kept forever. Durations are a whole number and a unit: ``w`` (weeks), ``d``,
``h``, ``m`` or ``s``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer
from pydantic_core import PydanticCustomError

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"^\s*(\d+)\s*([wdhms])\s*$")


def parse_duration(value: Any) -> timedelta:
    """``"30d"`` → 30 days. A bare number is refused: its unit would be a guess."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise PydanticCustomError(
            "duration",
            "{value} is not a duration: write a whole number and a unit, "
            "like 30d, 12h, 45m, 90s or 2w",
            {"value": repr(value)},
        )
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise PydanticCustomError(
            "duration",
            "{value} keeps nothing: a retention period must be longer than 0",
            {"value": repr(value)},
        )
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest spelling ``parse_duration`` reads back: 30 days → ``30d``."""
    seconds = int(value.total_seconds())
    for unit, size in _UNITS.items():
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"  # pragma: no cover - every whole number of seconds divides by 1


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


class Kind(StrEnum):
    """What retention purges."""

    PAYLOADS = "payloads"
    """Audit payloads: the body goes, the envelope and its payload hash stay."""
    RUNS = "runs"
    """Finished runs: their steps' arguments and results, and their sealed conversation."""


class RetentionRule(BaseModel):
    """How long each kind is kept; unset means kept forever (or the default's)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    payloads: Duration | None = None
    """Audit payloads older than this are purged."""
    runs: Duration | None = None
    """Runs that ended longer ago than this are purged."""


@dataclass(frozen=True)
class Expiry:
    """One kind's time to live for one tenant, and the setting it comes from."""

    kind: Kind
    ttl: timedelta
    rule: str
    """Where it is set, e.g. ``tenants.acme.payloads=30d``; recorded with each purge."""


class RetentionSettings(BaseModel):
    """The ``retention:`` section: a default and per-tenant overrides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: RetentionRule = Field(default_factory=RetentionRule)
    """Applies to every tenant, kind by kind, unless the tenant sets its own."""
    tenants: dict[str, RetentionRule] = Field(default_factory=dict)
    """Per tenant by name."""

    def expiries(self, tenant: str) -> list[Expiry]:
        """The kinds that expire for ``tenant``, each with its rule."""
        found = []
        own = self.tenants.get(tenant)
        for kind in Kind:
            if own is not None and (ttl := getattr(own, kind.value)) is not None:
                where = f"tenants.{tenant}.{kind.value}"
            elif (ttl := getattr(self.default, kind.value)) is not None:
                where = f"default.{kind.value}"
            else:
                continue
            found.append(Expiry(kind, ttl, f"retention.{where}={format_duration(ttl)}"))
        return found

    @property
    def configured(self) -> bool:
        return any(
            getattr(rule, kind.value) is not None
            for rule in (self.default, *self.tenants.values())
            for kind in Kind
        )
