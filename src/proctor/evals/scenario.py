"""The scenario bank format: YAML files of scenarios, each a request, a starting world, model
settings, what the approvers do, and what must be true at the end.

A bank is a folder of ``*.yaml`` files (or one file), each ``{suite, scenarios: [...]}``.
``scenario_json_schema()`` documents it as JSON Schema.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from proctor.models.simulated import FaultRates
from proctor.states import RunState

SCENARIO_FORMAT_VERSION: Literal[1] = 1


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ActionMatcher(_Strict):
    """A governed call, matched by tool and (a subset of) its arguments.

    Argument values compare as text after normalising numbers ("30" matches
    "30.00"); ``"*"`` matches any value.
    """

    tool: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class WorldCheck(_Strict):
    """A check on the world's state at the end: rows of a table, filtered, counted.

    ``table`` is one of the tables the app's eval suite declares (the bundled
    example's: refunds, tickets, emails, escalations, account_changes, deletions,
    orders, customers); ``where`` filters rows by field values (compared as text, numbers
    normalised); ``count`` is the exact number of rows expected (default: at
    least one when ``where`` is given).
    """

    table: str = Field(min_length=1)
    where: dict[str, Any] = Field(default_factory=dict)
    count: int | None = Field(default=None, ge=0)


class Expectations(_Strict):
    """What must be true when the run ends (or pauses)."""

    state: RunState | list[RunState]
    """The state (or any of these states) the run ends in; ``awaiting_approval`` counts
    when the scenario's approvers leave a request pending."""
    reason: str | None = None
    """The reason the run ended with, when it matters (e.g. ``policy_denied``)."""
    must: list[ActionMatcher] = Field(default_factory=list)
    """Calls that must have executed."""
    must_not: list[ActionMatcher] = Field(default_factory=list)
    """Calls that must not have executed (the incidents a release must never regress)."""
    world: list[WorldCheck] = Field(default_factory=list)
    max_cost_usd: Decimal | None = Field(default=None, ge=0)
    max_steps: int | None = Field(default=None, ge=0)
    escalation: bool | None = None
    """Whether a person should have been asked; an escalation where this is false is
    counted as unnecessary."""
    rubrics: list[str] = Field(default_factory=list)
    """Names of the eval suite's rubrics; each must pass."""


class ApprovalAnswer(_Strict):
    """How the person in the loop answers the run's approval requests."""

    decision: Literal["approve", "deny", "none"] = "none"
    """``none`` leaves requests pending: the run ends the scenario awaiting approval."""
    role: str = "supervisor"
    name: str = "eval-approver"


class ModelSettings(_Strict):
    model: str = "simulated"
    """``simulated`` (routed by tier), or a model spec such as ``openai:gpt-4o-mini``."""
    seed: int = 0
    faults: FaultRates = Field(default_factory=FaultRates)


class Scenario(_Strict):
    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    labels: list[str] = Field(min_length=1)
    """At least one label: intents (``refund``) and sharp edges (``prompt_injection``)."""
    request: str = Field(min_length=1)
    tenant: str | None = None
    """The tenant the run acts for; the eval suite's default when not given."""
    requester: str | None = None
    """Who asked; the eval suite's default when not given."""
    fixtures: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    """Changes to the world's starting state, table → rows, as the eval suite's world
    takes them (the bundled example: ``orders`` / ``customers`` rows by ``id``, each
    overriding the fixture's fields or adding a row)."""
    model: ModelSettings = Field(default_factory=ModelSettings)
    approver: ApprovalAnswer = Field(default_factory=ApprovalAnswer)
    expect: Expectations


class BankFile(_Strict):
    version: Literal[1] = SCENARIO_FORMAT_VERSION
    suite: str | None = None
    """The suite the bank was written for, for readers; the app given to the runner
    decides which suite runs it."""
    scenarios: list[Scenario] = Field(min_length=1)


def scenario_json_schema() -> dict[str, Any]:
    """The bank file format as JSON Schema (``docs/scenario.schema.json`` is generated from it)."""
    return BankFile.model_json_schema()
