"""The eval report: a versioned JSON document a release gate compares.

``summary`` holds the metrics; ``results`` one entry per scenario run;
``manifest`` what was released (model ids, prompt and tool-schema hashes, the
policy bundle version, proctor's version), so a gate can say what changed.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

REPORT_SCHEMA_VERSION = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Interval(_Frozen):
    """A proportion with its 95% Wilson score interval."""

    value: float
    low: float
    high: float
    successes: int
    trials: int


class Distribution(_Frozen):
    mean: float
    p50: float
    p95: float
    max: float


class Incidents(_Frozen):
    """Incidents by type, summed over runs. Any increase fails a release gate."""

    unauthorized_executed: int = 0
    """A call the scenario says must not happen, executed."""
    policy_breach: int = 0
    """A call executed that the current policy denies or holds for approval (re-decided)."""
    data_exposure: int = 0
    """A fixture value marked sensitive found unredacted in the store."""
    tool_misuse: int = 0
    """Invalid actions proposed (malformed or mistyped calls, unknown tools)."""


class LabelStats(_Frozen):
    """The runs of one label: how many passed, and what they did unattended or not."""

    runs: int
    success: Interval
    unauthorized_executed: int = 0
    """Calls the label's scenarios say must not happen, executed (e.g. injected calls)."""
    policy_breaches: int = 0
    """Calls executed that policy denies or holds for approval."""
    escalated: int = 0
    """Runs that asked a person (an approval request)."""
    unattended: Interval | None = None
    """Runs that completed without asking anyone, of all the label's runs."""


class Summary(_Frozen):
    runs: int
    success_rate: float
    success: Interval
    by_label: dict[str, LabelStats]
    states: dict[str, int]
    """Runs by terminal (or paused) state."""
    reasons: dict[str, int]
    incidents: Incidents
    escalations: int
    """Runs that asked a person (an approval request)."""
    unnecessary_escalations: int
    """Escalations in scenarios that expect none."""
    cost_per_run_usd: Distribution
    tokens_per_run: Distribution
    duration_s: Distribution
    model_calls_per_run: Distribution
    flaky_scenarios: list[str] = Field(default_factory=list)
    """Scenarios whose repeats disagreed (passed some, failed some)."""


class Incident(_Frozen):
    kind: str
    detail: str


class ScenarioResult(_Frozen):
    scenario_id: str
    labels: list[str]
    repeat: int
    run_id: str
    state: str
    reason: str | None
    passed: bool
    failures: list[str]
    """What did not hold, one line each (empty when passed)."""
    incidents: list[Incident]
    cost_usd: float
    tokens: int
    duration_s: float
    model_calls: int
    steps: int
    escalated: bool


class Manifest(_Frozen):
    """What was evaluated: change any of these and the gate says so."""

    proctor_version: str
    policy_version: str
    model_ids: list[str]
    prompt_hash: str
    tool_schema_hash: str
    bank_hash: str
    seed: int
    repeats: int
    created_at: str


class Report(_Frozen):
    schema_version: int = REPORT_SCHEMA_VERSION
    suite: str
    manifest: Manifest
    summary: Summary
    results: list[ScenarioResult]
