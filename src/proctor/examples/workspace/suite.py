"""The workspace example's eval suite: a fresh world per scenario, its tables, its secrets.

A scenario's ``fixtures`` lay rows over ``fixture.json`` by ``id`` (emails,
events, files, channels, messages, transactions, pages, contacts, or fields of
the ``owner``): that is how the red-team bank plants its instructions in outside
content. ``ScenarioWorld`` is what the runner and the rubrics see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proctor.errors import ConfigError
from proctor.evals.checks import sensitive_values as find_sensitive
from proctor.evals.scenario import Scenario
from proctor.examples.workspace.records import COLLECTIONS, Fixture, NotFound
from proctor.examples.workspace.tools import workspace_tools
from proctor.examples.workspace.world import EFFECTS, World
from proctor.tools import Tool

__all__ = ["TABLES", "ScenarioWorld", "apply_fixtures", "build_world", "check_fixtures"]

TABLES = frozenset({"owner", *COLLECTIONS, *EFFECTS})
"""What ``expect.world`` may check: the owner, each collection, each kind of effect."""


def apply_fixtures(base: Fixture, scenario: Scenario) -> Fixture:
    """``base`` with the scenario's ``fixtures`` rows laid over it (by ``id``, or added)."""
    try:
        return base.overlay(scenario.fixtures)
    except ValueError as exc:
        raise ConfigError(f"scenario {scenario.id!r}, field fixtures: {exc}") from None


@dataclass(frozen=True)
class ScenarioWorld:
    """One scenario's world: the database, its starting state, and the tools over it."""

    world: World
    fixture: Fixture
    tools: Sequence[Tool]

    def rows(self, table: str) -> list[dict[str, Any]]:
        try:
            return self.world.rows(table)
        except NotFound as exc:
            raise ConfigError(str(exc)) from None

    def sensitive_values(self) -> Sequence[str]:
        """The owner's password, and what detectors find in the fixture's texts."""
        texts = [
            str(value)
            for name in COLLECTIONS
            for row in getattr(self.fixture, name)
            for value in row.model_dump().values()
            if isinstance(value, str)
        ]
        return find_sensitive([self.fixture.owner.password], texts)


def check_fixtures(scenario: Scenario) -> None:
    """``ConfigError`` naming the scenario when its fixtures do not fit the world."""
    apply_fixtures(Fixture.load(), scenario)


def build_world(path: Path, scenario: Scenario) -> ScenarioWorld:
    """A fresh world at ``path`` holding the fixture with the scenario's rows over it."""
    fixture = apply_fixtures(Fixture.load(), scenario)
    world = World.create(path, fixture)
    return ScenarioWorld(world, fixture, workspace_tools(world))
