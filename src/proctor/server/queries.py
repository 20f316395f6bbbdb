"""The reads behind the API: runs with their cost, one run in full, costs by day."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from proctor.approvals import ApprovalRequest
from proctor.budgets import NANO, nano_usd
from proctor.runs.journal import load_run
from proctor.server.schemas import (
    ApprovalOut,
    CostlyRun,
    CostOutlier,
    CostRow,
    Costs,
    ModelCallOut,
    RunDetail,
    RunPage,
    RunSummary,
    StepOut,
    UsageOut,
)
from proctor.states import Reason, RunState
from proctor.store.tables import approvals, model_calls, runs

_TOKENS = model_calls.c.input_tokens + model_calls.c.output_tokens + model_calls.c.reasoning_tokens


def usd(nano: int | None) -> Decimal:
    return Decimal(nano or 0) / NANO


def utc(moment: datetime | None) -> datetime | None:
    """A query's time as UTC; a time without a zone is taken as UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class RunFilter:
    tenant: str | None = None
    workflow: str | None = None
    state: RunState | None = None
    reason: Reason | None = None
    since: datetime | None = None
    until: datetime | None = None
    cost_above: Decimal | None = None


def _run_costs() -> sa.Subquery:
    return (
        sa.select(
            model_calls.c.run_id,
            sa.func.sum(model_calls.c.nano_usd).label("nano"),
        )
        .group_by(model_calls.c.run_id)
        .subquery("run_costs")
    )


def _summary(row: Any) -> RunSummary:
    return RunSummary(
        id=row.id,
        tenant=row.tenant,
        workflow=row.workflow,
        agent=row.agent,
        requester=row.requester,
        state=RunState(row.state),
        reason=row.reason,
        bundle_version=row.bundle_version,
        tool_calls=int(row.usage.get("tool_calls", 0)),
        cost_usd=usd(row.nano),
        created_at=row.created_at,
        ended_at=row.ended_at,
    )


def list_runs(conn: sa.Connection, f: RunFilter, limit: int, offset: int) -> RunPage:
    costs = _run_costs()
    nano = sa.func.coalesce(costs.c.nano, 0)
    query = sa.select(runs, nano.label("nano")).select_from(
        runs.outerjoin(costs, costs.c.run_id == runs.c.id)
    )
    conditions: list[sa.ColumnElement[bool]] = []
    if f.tenant is not None:
        conditions.append(runs.c.tenant == f.tenant)
    if f.workflow is not None:
        conditions.append(runs.c.workflow == f.workflow)
    if f.state is not None:
        conditions.append(runs.c.state == f.state.value)
    if f.reason is not None:
        conditions.append(runs.c.reason == f.reason.value)
    if f.since is not None:
        conditions.append(runs.c.created_at >= utc(f.since))
    if f.until is not None:
        conditions.append(runs.c.created_at < utc(f.until))
    if f.cost_above is not None:
        conditions.append(nano > nano_usd(f.cost_above, round_up=False))
    query = query.where(*conditions)
    total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(
        query.order_by(runs.c.created_at.desc(), runs.c.id).limit(limit).offset(offset)
    )
    return RunPage(items=[_summary(r) for r in rows], total=total, limit=limit, offset=offset)


def run_tenant(conn: sa.Connection, run_id: str) -> str | None:
    return conn.execute(sa.select(runs.c.tenant).where(runs.c.id == run_id)).scalar_one_or_none()


def run_detail(conn: sa.Connection, run_id: str) -> RunDetail:
    record = load_run(conn, run_id)
    costs = _run_costs()
    row = conn.execute(
        sa.select(runs, sa.func.coalesce(costs.c.nano, 0).label("nano"))
        .select_from(runs.outerjoin(costs, costs.c.run_id == runs.c.id))
        .where(runs.c.id == run_id)
    ).one()
    requests: list[ApprovalRequest] = [
        ApprovalRequest.from_row(r)
        for r in conn.execute(
            sa.select(approvals).where(approvals.c.run_id == run_id).order_by(approvals.c.step)
        )
    ]
    calls = [
        ModelCallOut(
            model=c.model,
            answered_by=c.answered_by,
            input_tokens=c.input_tokens,
            cached_input_tokens=c.cached_input_tokens,
            output_tokens=c.output_tokens,
            reasoning_tokens=c.reasoning_tokens,
            cost_usd=usd(c.nano_usd),
            latency_ms=c.latency_ms,
            created_at=c.created_at,
        )
        for c in conn.execute(
            sa.select(model_calls)
            .where(model_calls.c.run_id == run_id)
            .order_by(model_calls.c.created_at, model_calls.c.id)
        )
    ]
    steps = [
        StepOut(
            idx=s.idx,
            tool=s.tool,
            status=s.status,
            effect=s.decision.effect.value,
            policy_ids=list(s.decision.policy_ids),
            decision=s.decision.to_json(),
            approval_id=s.approval_id,
            args=s.args,
            result=s.result,
            error=s.error,
        )
        for s in record.steps
    ]
    u = record.usage
    return RunDetail(
        run=_summary(row),
        usage=UsageOut(tool_calls=u.tool_calls, model_tokens=u.model_tokens, usd=u.usd),
        steps=steps,
        approvals=[ApprovalOut.of(r) for r in requests],
        model_calls=calls,
        tokens=sum(c.input_tokens + c.output_tokens + c.reasoning_tokens for c in calls),
        cost_usd=usd(row.nano),
    )


def _day(dialect: str) -> sa.ColumnElement[str]:
    """The UTC day of a model call as YYYY-MM-DD."""
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", model_calls.c.created_at), "YYYY-MM-DD")
    return sa.func.substr(model_calls.c.created_at, 1, 10)


def costs(
    conn: sa.Connection,
    tenant: str | None,
    since: datetime | None,
    until: datetime | None,
    top: int,
) -> Costs:
    conditions: list[sa.ColumnElement[bool]] = []
    if tenant is not None:
        conditions.append(model_calls.c.tenant == tenant)
    if since is not None:
        conditions.append(model_calls.c.created_at >= utc(since))
    if until is not None:
        conditions.append(model_calls.c.created_at < utc(until))
    day = _day(conn.dialect.name).label("day")
    keys = (model_calls.c.tenant, model_calls.c.workflow, model_calls.c.model, day)
    grouped = conn.execute(
        sa.select(
            *keys,
            sa.func.count().label("calls"),
            sa.func.sum(_TOKENS).label("tokens"),
            sa.func.sum(model_calls.c.nano_usd).label("nano"),
        )
        .where(*conditions)
        .group_by(*keys)
        .order_by(day, model_calls.c.tenant, model_calls.c.workflow, model_calls.c.model)
    ).all()
    nano = sa.func.sum(model_calls.c.nano_usd).label("nano")
    costly = conn.execute(
        sa.select(
            model_calls.c.run_id,
            model_calls.c.tenant,
            model_calls.c.workflow,
            sa.func.sum(_TOKENS).label("tokens"),
            nano,
        )
        .where(*conditions)
        .group_by(model_calls.c.run_id, model_calls.c.tenant, model_calls.c.workflow)
        .order_by(nano.desc(), model_calls.c.run_id)
        .limit(top)
    ).all()
    rows = [
        CostRow(
            tenant=r.tenant,
            workflow=r.workflow,
            model=r.model,
            day=r.day,
            calls=r.calls,
            tokens=int(r.tokens or 0),
            cost_usd=usd(r.nano),
        )
        for r in grouped
    ]
    per_run = conn.execute(
        sa.select(
            model_calls.c.run_id,
            model_calls.c.tenant,
            model_calls.c.workflow,
            sa.func.sum(model_calls.c.nano_usd).label("nano"),
        )
        .where(*conditions)
        .group_by(model_calls.c.run_id, model_calls.c.tenant, model_calls.c.workflow)
    ).all()
    return Costs(
        outliers=cost_outliers(
            [(r.run_id, r.tenant, r.workflow, int(r.nano or 0)) for r in per_run]
        ),
        rows=rows,
        top_runs=[
            CostlyRun(
                run_id=r.run_id,
                tenant=r.tenant,
                workflow=r.workflow,
                tokens=int(r.tokens or 0),
                cost_usd=usd(r.nano),
            )
            for r in costly
        ],
        total_usd=sum((r.cost_usd for r in rows), Decimal(0)),
    )


OUTLIER_SCORE = 3.5
"""The modified z-score above which a run's cost is an outlier (Iglewicz and Hoaglin)."""
MIN_RUNS_FOR_OUTLIERS = 8
"""Fewer runs of a workflow than this say too little about what a run usually costs."""


def cost_outliers(per_run: list[tuple[str, str, str, int]]) -> list[CostOutlier]:
    """Runs whose cost is far above the others of their tenant and workflow, costliest first.

    Robust to the outliers themselves: the score is ``0.6745 (x - median) / MAD``. Where
    most runs cost the same (MAD 0), a run above twice the median is an outlier.
    """
    groups: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for run_id, tenant, workflow, nano in per_run:
        groups.setdefault((tenant, workflow), []).append((run_id, nano))
    found: list[CostOutlier] = []
    for (tenant, workflow), members in groups.items():
        if len(members) < MIN_RUNS_FOR_OUTLIERS:
            continue
        costs = [n for _, n in members]
        median = statistics.median(costs)
        mad = statistics.median(abs(n - median) for n in costs)
        for run_id, nano in members:
            if mad:
                score = 0.6745 * (nano - median) / mad
                outlier = score > OUTLIER_SCORE
            else:
                score = math.inf if nano > median else 0.0
                outlier = nano > 2 * median
            if outlier:
                found.append(
                    CostOutlier(
                        run_id=run_id,
                        tenant=tenant,
                        workflow=workflow,
                        cost_usd=usd(nano),
                        median_usd=usd(round(median)),
                        score=round(score, 2) if math.isfinite(score) else 999.0,
                    )
                )
    return sorted(found, key=lambda o: (-o.cost_usd, o.run_id))
