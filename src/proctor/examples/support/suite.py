"""The support example's eval suite: a fresh world per scenario, its tables, its secrets.

A scenario's ``fixtures`` lay ``orders`` / ``customers`` rows over ``fixture.json``
(by ``id``, or added); ``apply_fixtures`` checks them strictly, before anything
runs. ``ScenarioWorld`` is what the runner and the rubrics see: the world, its
starting state, and the tools bound to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from proctor.errors import ConfigError
from proctor.evals.checks import sensitive_values as find_sensitive
from proctor.evals.scenario import Scenario
from proctor.examples.support.records import Fixture
from proctor.examples.support.tools import support_tools
from proctor.examples.support.world import World
from proctor.tools import Tool

__all__ = [
    "TABLES",
    "ScenarioWorld",
    "apply_fixtures",
    "build_world",
    "check_fixtures",
    "sensitive_values",
]

TABLES = frozenset(
    {
        "refunds",
        "tickets",
        "emails",
        "escalations",
        "account_changes",
        "deletions",
        "orders",
        "customers",
    }
)
"""The world's effect tables, and ``orders`` / ``customers``: what ``expect.world`` checks."""

_CHANGEABLE = ("orders", "customers")


def apply_fixtures(base: Fixture, scenario: Scenario) -> Fixture:
    """``base`` with the scenario's ``fixtures`` rows laid over it (by ``id``, or added)."""
    if not scenario.fixtures:
        return base
    data: dict[str, Any] = base.model_dump(mode="json")
    for table, rows in scenario.fixtures.items():
        if table not in _CHANGEABLE:
            raise ConfigError(
                f"scenario {scenario.id!r}, field fixtures.{table}: "
                "only 'orders' and 'customers' can be changed"
            )
        existing = {row["id"]: row for row in data[table]}
        for row in rows:
            if "id" not in row:
                raise ConfigError(
                    f"scenario {scenario.id!r}, field fixtures.{table}: each row needs an 'id'"
                )
            if row["id"] in existing:
                existing[row["id"]].update(row)
            else:
                data[table].append(dict(row))
    try:
        return Fixture.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"scenario {scenario.id!r}, field fixtures: {exc}") from None


def sensitive_values(fixture: Fixture, request: str = "") -> list[str]:
    """The values that must never be stored unmasked: customers' emails and phones, and
    every value a redaction detector finds in the fixture's text or the request (card
    numbers, IBANs, SSNs, keys...), also without their spaces and dashes."""
    known = [c.email for c in fixture.customers] + [c.phone for c in fixture.customers]
    texts = [request]
    for row in (*fixture.customers, *fixture.orders):
        texts.extend(v for v in row.model_dump().values() if isinstance(v, str))
    return find_sensitive(known, texts)


@dataclass(frozen=True)
class ScenarioWorld:
    """One scenario's world: the database, its starting state, and the tools over it."""

    world: World
    fixture: Fixture
    """The starting state (the scenario's ``fixtures`` applied)."""
    tools: Sequence[Tool]

    def rows(self, table: str) -> list[dict[str, Any]]:
        if table not in TABLES:
            raise ConfigError(f"the support world has no table {table!r}")
        found: Iterable[Any] = getattr(self.world, table)()
        return [dataclasses.asdict(r) for r in found]

    def sensitive_values(self) -> Sequence[str]:
        return sensitive_values(self.fixture)


def check_fixtures(scenario: Scenario) -> None:
    """``ConfigError`` naming the scenario when its fixtures do not fit the world."""
    apply_fixtures(Fixture.load(), scenario)


def build_world(path: Path, scenario: Scenario) -> ScenarioWorld:
    """A fresh world at ``path`` holding the fixture with the scenario's rows over it."""
    fixture = apply_fixtures(Fixture.load(), scenario)
    world = World.create(path, fixture)
    return ScenarioWorld(world, fixture, support_tools(world))
