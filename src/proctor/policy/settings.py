"""``proctor.yaml``: the settings that travel with a policy bundle.

The file is parsed strictly: an unknown field is an error naming the file, the
line and the fields that are allowed, so a typo never silently turns a setting
off. Each section is its own model; a new section is a new field on
``BundleSettings``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from proctor.budgets import BudgetCaps, DailyCaps
from proctor.errors import PolicyIssue
from proctor.models.pricing import Price
from proctor.redaction.settings import RedactionSettings
from proctor.retention.settings import RetentionSettings

SETTINGS_FILE = "proctor.yaml"


class ApprovalSettings(BaseModel):
    """How approval requests behave."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ttl_s: int = Field(default=86400, gt=0)
    """Seconds an approval request stays open before it expires."""


class RunBudgetSettings(BaseModel):
    """Budgets the bundle sets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run: BudgetCaps = Field(default_factory=BudgetCaps)
    """Caps for each run."""
    workflow: dict[str, DailyCaps] = Field(default_factory=dict)
    """Caps per day for each workflow by name; ``"*"`` applies to workflows not named."""
    tenant: dict[str, DailyCaps] = Field(default_factory=dict)
    """Caps per day for each tenant by name; ``"*"`` applies to tenants not named."""


class Tier(StrEnum):
    """Model tiers: a cheap model, a strong one, and safe mode (strong model, and every
    write or irreversible call needs approval under the default policy)."""

    CHEAP = "cheap"
    STRONG = "strong"
    SAFE = "safe"


class RoutingRule(BaseModel):
    """Requests that mention any of ``match`` (case-insensitive) are this intent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    intent: str = Field(min_length=1)
    match: tuple[str, ...] = Field(min_length=1)
    tier: Tier


class RoutingSettings(BaseModel):
    """How requests are read into intents and served by model tiers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: tuple[RoutingRule, ...] = ()
    """Tried in order; the first rule that matches decides."""
    default_intent: str = "general"
    default_tier: Tier = Tier.CHEAP
    models: dict[Tier, str] = Field(
        default_factory=lambda: {
            Tier.CHEAP: "simulated:cheap",
            Tier.STRONG: "simulated:strong",
            Tier.SAFE: "simulated:strong",
        }
    )
    """The model (``provider:model``) that serves each tier."""
    safe_after_denial: bool = True
    """After a call policy denies, the rest of the run is in safe mode."""
    safe_after_untrusted_argument: bool = True
    """After a call with an argument from untrusted content, the rest of the run is in safe mode."""


class Objective(BaseModel):
    """One service-level objective: over which window, from how many ended runs on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_s: int = Field(default=3600, gt=0)
    """Runs opened this many seconds back or less are compared."""
    min_runs: int = Field(default=20, ge=1)
    """Ended runs each release needs in the window before the objective is judged."""


class RateObjective(Objective):
    target: float = Field(ge=0, le=1)
    """The rate to hold (success: at least; escalation: at most), shown beside the figures;
    the canary fails on a significant move against the stable release."""


class RiseObjective(Objective):
    max_rise: float = Field(ge=0)
    """Largest relative rise over the stable release that passes: 0.10 is 10%."""
    target: float | None = Field(default=None, ge=0)
    """The figure to hold, shown beside the figures."""


class IncidentObjective(Objective):
    max_rate: float = Field(default=0.0, ge=0, le=1)
    """Incidents per ended run that pass; 0 forbids the kind: one incident fails at once."""


IncidentKind = Literal["policy_breach", "tool_misuse"]
"""Incidents seen on live traffic: a call executed that the stable release's bundle denies
or holds for approval; an invalid action proposed."""


def _forbid_breaches() -> dict[IncidentKind, IncidentObjective]:
    return {"policy_breach": IncidentObjective()}


class SloSettings(BaseModel):
    """What a canary must sustain against the stable release before it may stay."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float = Field(default=0.05, gt=0, lt=1)
    """Significance of the rate tests (one-sided Fisher's exact test, as the eval gate)."""
    check_every_s: float = Field(default=5.0, ge=0)
    """The monitor checks at most this often as a worker's canary runs end."""
    success_rate: RateObjective | None = RateObjective(target=0.95)
    escalation_rate: RateObjective | None = RateObjective(target=0.25)
    cost_per_run_usd: RiseObjective | None = RiseObjective(max_rise=0.10)
    duration_p95_s: RiseObjective | None = RiseObjective(max_rise=0.25)
    incidents: dict[IncidentKind, IncidentObjective] = Field(default_factory=_forbid_breaches)
    """By kind; a kind not named is not judged."""


class BundleSettings(BaseModel):
    """The contents of a bundle's ``proctor.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str = Field(min_length=1)
    """A human label for this bundle, e.g. ``refunds-2024-06``; part of its version."""
    description: str = ""
    """What the bundle is for."""
    approvals: ApprovalSettings = Field(default_factory=ApprovalSettings)
    """How approval requests behave."""
    budgets: RunBudgetSettings = Field(default_factory=RunBudgetSettings)
    """Budgets the bundle sets."""
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    """How requests are routed to model tiers, and when a run moves to safe mode."""
    prices: dict[str, Price] = Field(default_factory=dict)
    """USD per million tokens by model (``provider:model``), over the built-in table."""
    redaction: RedactionSettings = Field(default_factory=RedactionSettings)
    """How sensitive values are redacted before anything is stored or sent, per tenant."""
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    """How long audit payloads and finished runs are kept, by default and per tenant."""
    slo: SloSettings = Field(default_factory=SloSettings)
    """What a canary release must sustain against the stable one; breached, it rolls back."""


def parse_settings(text: str, file: str) -> tuple[BundleSettings | None, list[PolicyIssue]]:
    """Parse ``proctor.yaml`` text; ``file`` names it in the issues.

    Returns the settings, or ``None`` and at least one issue with its line.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        return None, [PolicyIssue(file, line, f"invalid YAML: {problem}")]
    except yaml.YAMLError as exc:
        return None, [PolicyIssue(file, None, f"invalid YAML: {exc}")]

    issues = _duplicate_keys(root, file)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        line = root.start_mark.line + 1 if root is not None else None
        issues.append(
            PolicyIssue(file, line, "must be a mapping of settings, e.g. `label: my-bundle`")
        )
        return None, issues
    try:
        settings = BundleSettings.model_validate(data)
    except ValidationError as exc:
        issues.extend(
            PolicyIssue(file, _line_of(root, error["loc"]), _describe(error))
            for error in exc.errors()
        )
        return None, issues
    return (settings, []) if not issues else (None, issues)


def _describe(error: ErrorDetails) -> str:
    loc = error["loc"]
    where = ".".join(str(part) for part in loc) or "proctor.yaml"
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(_fields_at(loc[:-1]))
        return f"unknown field `{where}`; the fields allowed here are: {allowed}"
    if error["type"] == "missing":
        return f"`{where}` is required"
    return f"`{where}`: {error['msg']}"


def _fields_at(loc: Sequence[int | str]) -> list[str]:
    model: type[BaseModel] = BundleSettings
    for part in loc:
        annotation = model.model_fields[str(part)].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _line_of(root: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """The line of the YAML key at ``loc``, or of its nearest existing parent."""
    if root is None:
        return None
    node: yaml.Node = root
    for depth, part in enumerate(loc):
        entry = _entry(node, part)
        if entry is None:
            break
        key, value = entry
        if depth == len(loc) - 1:
            return key.start_mark.line + 1
        node = value
    return node.start_mark.line + 1


def _entry(node: yaml.Node, part: int | str) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key, value) nodes for ``part`` of a mapping, or (item, item) of a sequence."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key, value
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item: yaml.Node = node.value[part]
        return item, item
    return None


def _duplicate_keys(node: yaml.Node | None, file: str) -> list[PolicyIssue]:
    """PyYAML keeps the last of two equal keys; a bundle must not hide a setting that way."""
    issues: list[PolicyIssue] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    issues.append(
                        PolicyIssue(file, key.start_mark.line + 1, f"`{key.value}` is set twice")
                    )
                seen.add(key.value)
            issues.extend(_duplicate_keys(value, file))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            issues.extend(_duplicate_keys(item, file))
    return issues
