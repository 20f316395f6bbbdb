"""Aggregates over many runs, as named queries: costs for the API, pages and evidence,
and the figures ``/metrics`` reads at each scrape.

Each is one grouped query (or one query over the rows written since a mark); rows
come back as small named tuples, with labels as the enums they are stored from.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa

from proctor.budgets import NANO
from proctor.policy import DecisionEffect
from proctor.runs.views.reads import utc
from proctor.states import ApprovalStatus, Reason, RunState
from proctor.store.tables import approvals, model_calls, runs, steps

_TOKENS = model_calls.c.input_tokens + model_calls.c.output_tokens + model_calls.c.reasoning_tokens


# -- costs ---------------------------------------------------------------------------------


class CostGroup(NamedTuple):
    """Model calls of one tenant, workflow and model on one UTC day."""

    tenant: str
    workflow: str
    model: str
    day: str
    """``YYYY-MM-DD``."""
    calls: int
    tokens: int
    """Input, output and reasoning tokens."""
    nano_usd: int

    @property
    def usd(self) -> Decimal:
        return Decimal(self.nano_usd) / NANO


class RunSpend(NamedTuple):
    """What one run's model calls cost (in the range asked)."""

    run_id: str
    tenant: str
    workflow: str
    tokens: int
    """Input, output and reasoning tokens."""
    nano_usd: int

    @property
    def usd(self) -> Decimal:
        return Decimal(self.nano_usd) / NANO


class WorkflowSpend(NamedTuple):
    """Model calls of one tenant's workflow: how many, for how many runs, what they cost."""

    tenant: str
    workflow: str
    runs: int
    calls: int
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    nano_usd: int

    @property
    def usd(self) -> Decimal:
        return Decimal(self.nano_usd) / NANO


def _calls_in(
    tenant: str | None,
    since: datetime | None,
    until: datetime | None,
    release: str | None = None,
) -> list[sa.ColumnElement[bool]]:
    found: list[sa.ColumnElement[bool]] = []
    if release is not None:
        found.append(
            model_calls.c.run_id.in_(sa.select(runs.c.id).where(runs.c.release == release))
        )
    if tenant is not None:
        found.append(model_calls.c.tenant == tenant)
    if since is not None:
        found.append(model_calls.c.created_at >= utc(since))
    if until is not None:
        found.append(model_calls.c.created_at < utc(until))
    return found


def _day(dialect: str) -> sa.ColumnElement[str]:
    """The UTC day of a model call as YYYY-MM-DD."""
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", model_calls.c.created_at), "YYYY-MM-DD")
    return sa.func.substr(model_calls.c.created_at, 1, 10)


def cost_by(
    conn: sa.Connection,
    *,
    tenant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    release: str | None = None,
) -> list[CostGroup]:
    """Model calls in ``[since, until)`` by tenant, workflow, model and UTC day, by day."""
    day = _day(conn.dialect.name).label("day")
    c = model_calls.c
    keys = (c.tenant, c.workflow, c.model, day)
    rows = conn.execute(
        sa.select(
            *keys,
            sa.func.count().label("calls"),
            sa.func.sum(_TOKENS).label("tokens"),
            sa.func.sum(c.nano_usd).label("nano"),
        )
        .where(*_calls_in(tenant, since, until, release))
        .group_by(*keys)
        .order_by(day, c.tenant, c.workflow, c.model)
    )
    return [
        CostGroup(
            r.tenant, r.workflow, r.model, r.day, int(r.calls), int(r.tokens or 0), int(r.nano or 0)
        )
        for r in rows
    ]


def cost_per_run(
    conn: sa.Connection,
    *,
    tenant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    release: str | None = None,
) -> list[RunSpend]:
    """Each run's model calls in ``[since, until)``, costliest first."""
    c = model_calls.c
    nano = sa.func.sum(c.nano_usd).label("nano")
    rows = conn.execute(
        sa.select(c.run_id, c.tenant, c.workflow, sa.func.sum(_TOKENS).label("tokens"), nano)
        .where(*_calls_in(tenant, since, until, release))
        .group_by(c.run_id, c.tenant, c.workflow)
        .order_by(nano.desc(), c.run_id)
    )
    return [
        RunSpend(r.run_id, r.tenant, r.workflow, int(r.tokens or 0), int(r.nano or 0)) for r in rows
    ]


def cost_by_workflow(
    conn: sa.Connection, since: datetime, until: datetime, *, tenant: str | None = None
) -> list[WorkflowSpend]:
    """Model calls in ``[since, until)`` per tenant and workflow."""
    c = model_calls.c
    rows = conn.execute(
        sa.select(
            c.tenant,
            c.workflow,
            sa.func.count(sa.distinct(c.run_id)).label("runs"),
            sa.func.count().label("calls"),
            sa.func.sum(c.input_tokens).label("input_tokens"),
            sa.func.sum(c.output_tokens).label("output_tokens"),
            sa.func.sum(c.reasoning_tokens).label("reasoning_tokens"),
            sa.func.sum(c.nano_usd).label("nano"),
        )
        .where(*_calls_in(tenant, since, until))
        .group_by(c.tenant, c.workflow)
        .order_by(c.tenant, c.workflow)
    )
    return [
        WorkflowSpend(
            r.tenant,
            r.workflow,
            int(r.runs),
            int(r.calls),
            int(r.input_tokens or 0),
            int(r.output_tokens or 0),
            int(r.reasoning_tokens or 0),
            int(r.nano or 0),
        )
        for r in rows
    ]


# -- what /metrics reads -------------------------------------------------------------------


class RunCount(NamedTuple):
    tenant: str
    state: RunState
    reason: Reason | None
    runs: int


class DecisionStamp(NamedTuple):
    """A step's policy decision, and when the step was recorded."""

    tenant: str
    tool: str
    effect: DecisionEffect | None
    at: datetime


class StepTimings(NamedTuple):
    """A finished step's stage timings, in microseconds."""

    tool: str
    timings_us: Any
    """As stored: a mapping of stage to microseconds (anything else is not a whole one)."""
    finished_at: datetime


class ApprovalDecided(NamedTuple):
    tenant: str
    status: ApprovalStatus
    created_at: datetime
    decided_at: datetime


class ModelUsage(NamedTuple):
    """Model calls of one tenant and model: how many, their tokens by kind, their cost."""

    tenant: str
    model: str
    calls: int
    nano_usd: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_tokens: int


def run_counts(conn: sa.Connection) -> list[RunCount]:
    """Runs by tenant, state and reason."""
    keys = (runs.c.tenant, runs.c.state, runs.c.reason)
    return [
        RunCount(tenant, RunState(state), Reason(reason) if reason else None, int(n))
        for tenant, state, reason, n in conn.execute(
            sa.select(*keys, sa.func.count()).group_by(*keys)
        )
    ]


def release_run_counts(conn: sa.Connection) -> list[tuple[str, str, int]]:
    """Runs opened under a release, by release and state."""
    keys = (runs.c.release, runs.c.state)
    query = sa.select(*keys, sa.func.count()).where(runs.c.release.is_not(None)).group_by(*keys)
    return [(release, state, int(n)) for release, state, n in conn.execute(query)]


def decisions_since(conn: sa.Connection, mark: datetime | None) -> Iterator[DecisionStamp]:
    """Every step's decision recorded at or after ``mark`` (every one without a mark)."""
    effect = steps.c.decision["effect"].as_string()
    query = sa.select(runs.c.tenant, steps.c.tool, effect, steps.c.created_at).select_from(
        steps.join(runs, runs.c.id == steps.c.run_id)
    )
    if mark is not None:
        query = query.where(steps.c.created_at >= mark)
    for tenant, tool, stored, at in conn.execute(query):
        yield DecisionStamp(tenant, tool, DecisionEffect(stored) if stored else None, at)


def step_timings_since(conn: sa.Connection, mark: datetime | None) -> Iterator[StepTimings]:
    """The stage timings of every step finished at or after ``mark``."""
    query = sa.select(steps.c.tool, steps.c.timings_us, steps.c.finished_at).where(
        steps.c.finished_at.is_not(None)
    )
    if mark is not None:
        query = query.where(steps.c.finished_at >= mark)
    for tool, timings, at in conn.execute(query):
        yield StepTimings(tool, timings, at)


def pending_approvals(conn: sa.Connection) -> list[tuple[str, int]]:
    """Pending approval requests per tenant, ``0`` for a tenant with requests but none pending."""
    pending = sa.case((approvals.c.status == ApprovalStatus.PENDING.value, 1), else_=0)
    query = (
        sa.select(approvals.c.tenant, sa.func.sum(pending))
        .group_by(approvals.c.tenant)
        .order_by(approvals.c.tenant)
    )
    return [(tenant, int(n or 0)) for tenant, n in conn.execute(query)]


def count_pending_approvals(
    conn: sa.Connection, tenant: str | None = None, *, live_only: bool = False
) -> int:
    """Approval requests waiting for a person (of one tenant, or of all); with
    ``live_only``, those of live runs (not an eval's or the demo's)."""
    query = sa.select(sa.func.count()).where(approvals.c.status == ApprovalStatus.PENDING.value)
    if tenant is not None:
        query = query.where(approvals.c.tenant == tenant)
    if live_only:
        live = sa.select(runs.c.id).where(runs.c.origin == "live")
        query = query.where(approvals.c.run_id.in_(live))
    return int(conn.execute(query).scalar_one())


def approvals_decided_since(
    conn: sa.Connection, mark: datetime | None
) -> Iterator[ApprovalDecided]:
    """Requests approved or denied by a person at or after ``mark`` (expired ones are not)."""
    verdicts = (ApprovalStatus.APPROVED.value, ApprovalStatus.DENIED.value)
    query = sa.select(
        approvals.c.tenant, approvals.c.status, approvals.c.created_at, approvals.c.decided_at
    ).where(approvals.c.status.in_(verdicts), approvals.c.decided_at.is_not(None))
    if mark is not None:
        query = query.where(approvals.c.decided_at >= mark)
    for tenant, status, created, decided in conn.execute(query):
        yield ApprovalDecided(tenant, ApprovalStatus(status), created, decided)


def model_usage(conn: sa.Connection) -> list[ModelUsage]:
    """Model calls by tenant and model."""
    c = model_calls.c
    kinds = (c.input_tokens, c.cached_input_tokens, c.output_tokens, c.reasoning_tokens)
    rows = conn.execute(
        sa.select(
            c.tenant,
            c.model,
            sa.func.count(),
            sa.func.sum(c.nano_usd),
            *(sa.func.sum(column) for column in kinds),
        )
        .group_by(c.tenant, c.model)
        .order_by(c.tenant, c.model)
    )
    return [
        ModelUsage(tenant, model, int(n), *(int(v or 0) for v in sums))
        for tenant, model, n, *sums in rows
    ]
