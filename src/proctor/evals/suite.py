"""An eval suite: what an application brings so that its scenario bank can run.

The runner knows no application. An ``EvalSuite`` tells it how to build a
fresh world for one scenario (laying the scenario's ``fixtures`` over the
starting state) and the tools bound to that world; which world tables a
scenario may check; which values of the world must never be stored unmasked;
the rubrics scenarios may name; the run-spec defaults of its runs; and where
its scenario bank is. An ``App`` carries its suite (``App(suite=...)``)::

    suite = EvalSuite(
        name="notes",
        scenarios=Path(__file__).parent / "scenarios",
        world=lambda path, scenario: NotesWorld.create(path, scenario.fixtures),
        tables=("notes",),
        rubrics=(rubric(no_empty_note),),
        run=RunDefaults(role="note_taker", workflow="notes"),
    )
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from proctor.app import App
from proctor.errors import ConfigError
from proctor.evals.checks import Rubric, RubricContext, WorldTables
from proctor.evals.scenario import Scenario
from proctor.tools import Tool

__all__ = [
    "EvalSuite",
    "FunctionRubric",
    "Rubric",
    "RubricContext",
    "RunDefaults",
    "ScriptedCall",
    "SuiteWorld",
    "Walkthrough",
    "WorldFactory",
    "WorldTables",
    "rubric",
    "suite_of",
]


class SuiteWorld(WorldTables, Protocol):
    """The world of one scenario run: its tools, its tables as rows, its sensitive values."""

    @property
    def tools(self) -> Sequence[Tool]:
        """The application's tools, bound to this world."""
        ...

    def sensitive_values(self) -> Sequence[str]:
        """Values of the starting state that must never be stored unmasked (customers'
        emails, card numbers...); the runner adds what detectors find in the request."""
        ...


class WorldFactory(Protocol):
    """Builds a fresh world at ``path`` for ``scenario``, from its ``fixtures``."""

    def __call__(self, path: Path, scenario: Scenario) -> SuiteWorld: ...


@dataclass(frozen=True)
class FunctionRubric:
    """A rubric from a function of the context."""

    name: str
    check: Callable[[RubricContext], str | None]

    def evaluate(self, context: RubricContext) -> str | None:
        return self.check(context)


def rubric(check: Callable[[RubricContext], str | None]) -> FunctionRubric:
    """``check`` as a rubric named after the function."""
    return FunctionRubric(check.__name__, check)


@dataclass(frozen=True)
class RunDefaults:
    """How the suite's runs are opened, where a scenario does not say."""

    role: str
    """The agent's role, as policies see it."""
    workflow: str
    """The workflow budgets and reports group runs under."""
    agent: str = "{tenant}-eval-agent"
    """The agent's name; ``{tenant}`` becomes the run's tenant."""
    tenant: str = "acme"
    """The tenant, when a scenario names none."""
    requester: str = "customer"
    """Who asked, when a scenario does not say."""


@dataclass(frozen=True)
class ScriptedCall:
    """One call of a walkthrough, proposed by code rather than a model."""

    label: str
    """What the call shows, in a sentence (``refund $20 (within the agent's limit)``)."""
    tool: str
    args: Mapping[str, Any]


@dataclass(frozen=True)
class Walkthrough:
    """A short scripted run for ``proctor demo --walkthrough``: its calls are made in
    order in a fresh world, and the approver answers a call that waits for approval."""

    calls: tuple[ScriptedCall, ...]
    """Best one allowed, one denied and one needing approval, in that order."""
    approver: str = "sam"
    """Who approves the call that waits."""
    approver_role: str = "supervisor"
    """The role the approver approves with."""
    note: str = "checked by a person"
    """The approver's reason."""
    tenant: str = "demo"
    """The tenant the run acts for, apart from the bank's runs."""
    requester: str = "customer"
    """Who asked for the run."""
    agent: str | None = None
    """The agent's name; the suite's run defaults when None."""
    workflow: str | None = None
    """The run's workflow; the suite's run defaults when None."""


@dataclass(frozen=True)
class EvalSuite:
    """Everything the runner needs from an application to run its bank. See the module."""

    name: str
    """The suite's name, as reports show it."""
    scenarios: Path
    """The scenario bank: a folder of ``*.yaml`` files, or one file."""
    world: WorldFactory
    """Builds a fresh world for one scenario run; raises ``ConfigError`` naming the
    scenario when its ``fixtures`` do not fit the world."""
    run: RunDefaults
    """Run-spec defaults: the agent's role, the workflow, the tenant..."""
    tables: frozenset[str] = frozenset()
    """The world tables a scenario's ``expect.world`` may check."""
    rubrics: Sequence[Rubric] = ()
    """The rubrics a scenario's ``expect.rubrics`` may name."""
    check_fixtures: Callable[[Scenario], None] | None = None
    """Checks a scenario's ``fixtures`` before anything runs (``ConfigError`` naming the
    scenario); without it, a bad fixture shows when its world is built."""
    walkthrough: Walkthrough | None = None
    """The scripted run ``proctor demo --walkthrough`` makes, if the suite has one."""
    rubric_index: Mapping[str, Rubric] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {r.name: r for r in self.rubrics}
        if len(index) != len(self.rubrics):
            raise ConfigError(f"eval suite {self.name!r}: two rubrics share a name")
        object.__setattr__(self, "rubric_index", index)

    def check(self, scenario: Scenario) -> None:
        """Raise ``ConfigError`` when ``scenario`` names a table or rubric this suite lacks,
        or has fixtures its world cannot take."""
        for check in scenario.expect.world:
            if check.table not in self.tables:
                known = ", ".join(sorted(self.tables)) or "none"
                raise ConfigError(
                    f"scenario {scenario.id!r}, field expect.world: suite {self.name!r} has "
                    f"no table {check.table!r} (its tables: {known})"
                )
        for name in scenario.expect.rubrics:
            if name not in self.rubric_index:
                known = ", ".join(sorted(self.rubric_index)) or "none"
                raise ConfigError(
                    f"scenario {scenario.id!r}, field expect.rubrics: suite {self.name!r} has "
                    f"no rubric {name!r} (its rubrics: {known})"
                )
        if self.check_fixtures is not None:
            self.check_fixtures(scenario)


def suite_of(app: App) -> EvalSuite:
    """The app's eval suite; ``ConfigError`` when it has none."""
    if app.suite is None:
        raise ConfigError(
            "this app has no eval suite: give it one (App(suite=EvalSuite(...))) to run "
            "scenario banks on it"
        )
    if not isinstance(app.suite, EvalSuite):
        raise ConfigError(
            f"the app's suite is a {type(app.suite).__name__}, not a proctor.evals.EvalSuite"
        )
    return app.suite
