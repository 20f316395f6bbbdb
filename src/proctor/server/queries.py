"""The reads behind the API, shaped as its answers: runs with their cost, one run in
full, costs by day. The reading itself is the read model's (``proctor.runs.views``)."""

from __future__ import annotations

import base64
import json
import math
import statistics
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

import sqlalchemy as sa

from proctor.budgets import NANO
from proctor.errors import ProctorError
from proctor.runs.views import ModelCallView, RunFilter, RunView, StepView, count_runs
from proctor.runs.views import list_runs as read_runs
from proctor.runs.views.aggregates import cost_by, cost_per_run
from proctor.server.params import MAX_OFFSET
from proctor.server.schemas import (
    ApprovalOut,
    CostlyRun,
    CostOutlier,
    CostRow,
    Costs,
    ModelCallOut,
    Page,
    RunDetail,
    RunPage,
    RunSummary,
    StepOut,
    UsageOut,
)

__all__ = [
    "RunFilter",
    "cost_outliers",
    "costs",
    "cursor_offset",
    "list_runs",
    "next_cursor",
    "page_of",
    "run_detail",
    "usd",
]

T = TypeVar("T")


def next_cursor(offset: int, shown: int, total: int) -> str | None:
    """The cursor of the page after one of ``shown`` items from ``offset``, if any is left."""
    after = offset + shown
    if shown == 0 or after >= total:
        return None
    return base64.urlsafe_b64encode(json.dumps({"offset": after}).encode()).decode().rstrip("=")


def cursor_offset(cursor: str | None) -> int:
    """Where the page a cursor names begins; a cursor the API did not give is refused."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        offset = json.loads(raw)["offset"]
    except (ValueError, KeyError, TypeError):
        offset = None
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidCursor(
            f"cursor {cursor!r} is not one this API gave; send the `next` of the previous "
            "page as it was, or no cursor for the first page"
        )
    return offset


def page_of(items: Sequence[T], limit: int, cursor: str | None) -> Page[T]:
    """One page of a list held in full (approvals, reports, cost rows)."""
    offset = cursor_offset(cursor)
    shown = list(items[offset : offset + limit])
    return Page[T](items=shown, next=next_cursor(offset, len(shown), len(items)))


class InvalidCursor(ProctorError):
    """A paging cursor the API did not give."""

    http_status = 422
    exit_code = 2


def usd(nano: int | None) -> Decimal:
    return Decimal(nano or 0) / NANO


def summary(run: RunView) -> RunSummary:
    return RunSummary(
        id=run.id,
        tenant=run.tenant,
        workflow=run.workflow,
        agent=run.agent,
        requester=run.requester,
        state=run.state,
        reason=run.reason,
        bundle_version=run.bundle_version,
        release=run.release,
        tool_calls=run.usage.tool_calls,
        cost_usd=run.cost.usd,
        created_at=run.created_at,
        ended_at=run.ended_at,
    )


def list_runs(conn: sa.Connection, f: RunFilter, limit: int, offset: int) -> RunPage:
    total = count_runs(conn, f)
    items = [summary(r) for r in read_runs(conn, f, limit=limit, offset=offset)]
    return RunPage(items=items, total=total, limit=limit, offset=offset)


def model_call_out(c: ModelCallView) -> ModelCallOut:
    return ModelCallOut(
        model=c.model,
        answered_by=c.answered_by,
        input_tokens=c.input_tokens,
        cached_input_tokens=c.cached_input_tokens,
        output_tokens=c.output_tokens,
        reasoning_tokens=c.reasoning_tokens,
        cost_usd=c.cost_usd,
        latency_ms=c.latency_ms,
        created_at=c.created_at,
    )


def step_out(s: StepView) -> StepOut:
    d = s.decision
    return StepOut(
        idx=s.idx,
        tool=s.tool,
        status=s.status,
        effect=d.effect.value if d is not None else None,
        policy_ids=list(d.policy_ids) if d is not None else [],
        decision=d.to_json() if d is not None else {},
        approval_id=s.approval_id,
        args=dict(s.args),
        result=s.result,
        error=s.error.to_json() if s.error is not None else None,
    )


def run_detail(run: RunView) -> RunDetail:
    """The API's answer for one run, loaded with its history."""
    u = run.usage
    return RunDetail(
        run=summary(run),
        usage=UsageOut(tool_calls=u.tool_calls, model_tokens=u.model_tokens, usd=u.usd),
        steps=[step_out(s) for s in run.steps],
        approvals=[ApprovalOut.of(a.request) for a in run.approvals],
        model_calls=[model_call_out(c) for c in run.model_calls],
        tokens=run.cost.tokens,
        cost_usd=run.cost.usd,
    )


def costs(
    conn: sa.Connection,
    tenant: str | None,
    since: datetime | None,
    until: datetime | None,
    top: int,
    release: str | None = None,
) -> Costs:
    rows = [
        CostRow(
            tenant=g.tenant,
            workflow=g.workflow,
            model=g.model,
            day=g.day,
            calls=g.calls,
            tokens=g.tokens,
            cost_usd=g.usd,
        )
        for g in cost_by(conn, tenant=tenant, since=since, until=until, release=release)
    ]
    per_run = cost_per_run(conn, tenant=tenant, since=since, until=until, release=release)
    return Costs(
        outliers=cost_outliers([(r.run_id, r.tenant, r.workflow, r.nano_usd) for r in per_run]),
        rows=rows,
        top_runs=[
            CostlyRun(
                run_id=r.run_id,
                tenant=r.tenant,
                workflow=r.workflow,
                tokens=r.tokens,
                cost_usd=r.usd,
            )
            for r in per_run[:top]
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
