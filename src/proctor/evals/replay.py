"""Replay recorded decisions under a candidate policy bundle: what would change?

    report = replay_decisions(conn, PolicyBundle.load("policies/next"), tools=app.tools)
    for (before, after), n in report.transitions.items():
        ...  # e.g. allow → require_approval: 12

Every recorded step (joined with its run for principal, tenant, workflow and
mode) is decided again with the recorded tool and stored arguments, and the
run facts rebuilt from the run's earlier executed steps (calls, calls per
tool, numeric totals, taint).

A decision recorded with its inputs (the resource with its attributes, the
run facts and the other context entries, provenance included, as they were
when it was made) is decided again on exactly those. What a replay cannot
know, and so where a replayed decision may differ from what the live runtime
would decide (``ReplayReport.limits`` says so too):

- **Masked arguments.** Sensitive fields are stored masked; the policy sees
  the mask. Changes on such steps are flagged ``masked_args``.
- **Effect classes and argument types** come from ``tools``; a tool not given
  is decided with effect class ``unknown`` and counted in ``unknown_tools``.
- **Decisions recorded without their inputs** (by an older proctor): the run
  facts are rebuilt from the run's earlier executed steps, with the run's mode
  as stored now; no resource is passed (policies see ``Tool::"<tool>"``, and
  changes that involve a policy reading ``resource`` are flagged
  ``resource_dependent``); provenance is not passed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from proctor.errors import InvalidAction
from proctor.policy import Decision, DecisionEffect, PolicyBundle, PolicyRequest, Principal
from proctor.policy.decision import request_from_inputs
from proctor.redaction import MASK
from proctor.runs.facts import RunFacts
from proctor.runs.views import RunFilter, RunView, StepView, runs_with_steps
from proctor.states import StepStatus
from proctor.tools import Tool, ToolRegistry

UNKNOWN_EFFECT_CLASS = "unknown"
EXAMPLES_PER_TRANSITION = 5

_READS_RESOURCE = re.compile(r"\bresource\s*(\.|==|\bin\b|\bis\b|\bhas\b)")

LIMITS = (
    "masked (sensitive) arguments are replayed masked",
    "decisions recorded without their inputs are replayed with rebuilt run facts, the "
    "run's mode as stored now, no resource and no provenance",
)

Transition = tuple[DecisionEffect, DecisionEffect]


@dataclass(frozen=True)
class ReplayChange:
    """One recorded decision the candidate bundle would decide differently."""

    run_id: str
    step: int
    tool: str
    before: DecisionEffect
    after: DecisionEffect
    before_policy_ids: tuple[str, ...]
    after_policy_ids: tuple[str, ...]
    reason: str
    """The candidate decision's reason."""
    resource_dependent: bool
    """A policy reading ``resource`` took part (or may have): the live decision may differ."""
    masked_args: bool
    """Some arguments were replayed masked."""

    @property
    def transition(self) -> Transition:
        return (self.before, self.after)


@dataclass
class ReplayReport:
    candidate_version: str
    steps: int = 0
    """Recorded decisions replayed."""
    unchanged: int = 0
    changes: list[ReplayChange] = field(default_factory=list)
    transitions: Counter[Transition] = field(default_factory=Counter)
    by_tool: dict[str, Counter[Transition]] = field(default_factory=dict)
    examples: dict[Transition, list[ReplayChange]] = field(default_factory=dict)
    """The first few changes of each transition."""
    unknown_tools: set[str] = field(default_factory=set)
    """Tools not given to the replay: decided with effect class ``unknown``."""
    resource_policies: tuple[str, ...] = ()
    """The candidate's policies that read ``resource``."""
    limits: tuple[str, ...] = LIMITS

    @property
    def uncertain(self) -> list[ReplayChange]:
        """Changes the replay cannot vouch for (resource-dependent or masked arguments)."""
        return [c for c in self.changes if c.resource_dependent or c.masked_args]

    def add(self, change: ReplayChange) -> None:
        self.changes.append(change)
        self.transitions[change.transition] += 1
        self.by_tool.setdefault(change.tool, Counter())[change.transition] += 1
        examples = self.examples.setdefault(change.transition, [])
        if len(examples) < EXAMPLES_PER_TRANSITION:
            examples.append(change)


def _has_mask(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_mask(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_mask(v) for v in value)
    return bool(value == MASK)


def _typed_args(t: Tool | None, stored: dict[str, Any]) -> dict[str, Any]:
    """The arguments as the live policy saw them (typed by the tool), when they still parse."""
    if t is None:
        return stored
    try:
        return t.validate(stored).model_dump()
    except InvalidAction:
        return stored  # masked or changed schema: decide on what was stored


class _RunReplay:
    """The facts of one run, rebuilt step by step."""

    def __init__(self, run: RunView, registry: ToolRegistry) -> None:
        self.principal = Principal(run.agent, run.role, run.tenant)
        self.facts = RunFacts.of(registry, run.spec)

    def executed(self, t: Tool | None, tool_name: str, args: dict[str, Any]) -> None:
        if t is not None:
            self.facts.count(t, args)
            return
        self.facts.calls += 1
        self.facts.calls_by_tool[tool_name] = self.facts.calls_by_tool.get(tool_name, 0) + 1


def replay_decisions(
    conn: sa.Connection,
    candidate: PolicyBundle,
    *,
    since: datetime | None = None,
    tools: Sequence[Tool] = (),
) -> ReplayReport:
    """Decide every recorded step again under ``candidate``; list what would change.

    ``since`` keeps runs created at or after it. ``tools`` (the app's tools) give effect
    classes, argument types and trust; without them the replay is coarser (see the module
    docstring).
    """
    registry = ToolRegistry(tools)
    known = {t.name: t for t in tools}
    resource_policies = tuple(
        p.id for p in candidate.policies if _READS_RESOURCE.search(p.text) is not None
    )
    report = ReplayReport(str(candidate.version), resource_policies=resource_policies)
    for run in runs_with_steps(conn, RunFilter(since=since)):
        replay = _RunReplay(run, registry)
        for step in run.steps:
            _replay_step(report, candidate, replay, run.id, step, known.get(step.tool))
    return report


def _replay_step(
    report: ReplayReport,
    candidate: PolicyBundle,
    replay: _RunReplay,
    run_id: str,
    step: StepView,
    t: Tool | None,
) -> None:
    stored = dict(step.args)
    if t is None:
        report.unknown_tools.add(step.tool)
    recorded = step.decision
    if recorded is not None and recorded.inputs and "resource_error" in recorded.inputs:
        report.steps += 1  # never decided by a policy: its resource could not be looked up
        report.unchanged += 1
    elif recorded is not None:
        effect_class = t.effect.value if t is not None else UNKNOWN_EFFECT_CLASS
        args = _typed_args(t, stored)
        if recorded.inputs is not None:  # decided again on exactly what it was decided on
            request = request_from_inputs(
                recorded.inputs, replay.principal, step.tool, effect_class, args
            )
        else:  # recorded before decisions kept their inputs: rebuilt, without a resource
            request = PolicyRequest(
                principal=replay.principal,
                tool=step.tool,
                effect_class=effect_class,
                resource=None,
                args=args,
                run=replay.facts.snapshot(),
            )
        decision = candidate.decide(request)
        _compare(report, run_id, step, recorded, decision, _has_mask(stored))
    if step.status is StepStatus.SUCCEEDED:
        replay.executed(t, step.tool, stored)


def _compare(
    report: ReplayReport,
    run_id: str,
    step: StepView,
    recorded: Decision,
    decision: Decision,
    masked: bool,
) -> None:
    before, before_ids = recorded.effect, recorded.policy_ids
    report.steps += 1
    if decision.effect is before:
        report.unchanged += 1
        return
    resource_policies = set(report.resource_policies)
    involved = (set(before_ids) | set(decision.policy_ids)) & resource_policies
    report.add(
        ReplayChange(
            run_id=run_id,
            step=step.idx,
            tool=step.tool,
            before=before,
            after=decision.effect,
            before_policy_ids=before_ids,
            after_policy_ids=decision.policy_ids,
            reason=decision.reason,
            # a default deny may be a resource-reading permit that no longer matched
            resource_dependent=bool(involved)
            or (not decision.policy_ids and bool(resource_policies)),
            masked_args=masked,
        )
    )
