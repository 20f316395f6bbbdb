"""An eval suite: what a scenario may name is checked before anything runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from proctor.app import App
from proctor.errors import ConfigError
from proctor.evals.checks import RubricContext
from proctor.evals.scenario import Scenario
from proctor.evals.suite import EvalSuite, RunDefaults, suite_of
from proctor.evals.suite import rubric as as_rubric
from proctor.tools import Tool


class Shelf:
    tools: Sequence[Tool] = ()

    def __init__(self, path: Path, scenario: Scenario) -> None:
        self.path = path

    def rows(self, table: str) -> list[dict[str, Any]]:
        return []

    def sensitive_values(self) -> Sequence[str]:
        return ()


def tidy(ctx: RubricContext) -> str | None:
    return None


def suite(**kw: Any) -> EvalSuite:
    return EvalSuite(
        name="shelf",
        scenarios=Path("scenarios"),
        world=Shelf,
        run=RunDefaults(role="clerk", workflow="shelving"),
        tables=frozenset({"books"}),
        rubrics=(as_rubric(tidy),),
        **kw,
    )


def scenario(**expect: Any) -> Scenario:
    return Scenario.model_validate(
        {"id": "s", "labels": ["x"], "request": "r", "expect": {"state": "completed", **expect}}
    )


def test_a_scenario_may_name_the_suites_tables_and_rubrics() -> None:
    suite().check(scenario(world=[{"table": "books", "count": 0}], rubrics=["tidy"]))


def test_an_unknown_table_or_rubric_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match="suite 'shelf' has no table 'films' \\(its tables: books"
    ):
        suite().check(scenario(world=[{"table": "films"}]))
    with pytest.raises(ConfigError, match="no rubric 'neat' \\(its rubrics: tidy\\)"):
        suite().check(scenario(rubrics=["neat"]))


def test_fixtures_are_checked_by_the_suite() -> None:
    def no_fixtures(s: Scenario) -> None:
        if s.fixtures:
            raise ConfigError(f"scenario {s.id!r}, field fixtures: the shelf takes none")

    checked = suite(check_fixtures=no_fixtures)
    with pytest.raises(ConfigError, match="the shelf takes none"):
        checked.check(scenario().model_copy(update={"fixtures": {"books": [{"id": 1}]}}))


def test_rubric_names_are_unique_and_indexed() -> None:
    assert list(suite().rubric_index) == ["tidy"]
    with pytest.raises(ConfigError, match="two rubrics share a name"):
        EvalSuite(
            name="shelf",
            scenarios=Path("s"),
            world=Shelf,
            run=RunDefaults(role="clerk", workflow="shelving"),
            rubrics=(as_rubric(tidy), as_rubric(tidy)),
        )


def test_suite_of_an_app() -> None:
    bundle = Path("bundle")
    assert suite_of(App(tools=(), policy=bundle, suite=suite())).name == "shelf"
    with pytest.raises(ConfigError, match="this app has no eval suite"):
        suite_of(App(tools=(), policy=bundle))
