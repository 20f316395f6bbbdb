"""The reads behind the pages: a run's timeline, the approval queue with each request's
run so far, costs shaped for charts, and the eval reports under the proctor home.

Arguments and results shown are the stored, redacted ones; sealed values are never read.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import ValidationError

from proctor.approvals import ApprovalRequest
from proctor.evals.report import Report
from proctor.runs.views import ApprovalView, RunView, StepView, load_run, steps_of
from proctor.runs.views.aggregates import count_pending_approvals
from proctor.server import queries
from proctor.server.deciding import no_policy_role, shared_roles
from proctor.server.schemas import CostlyRun, CostOutlier, ModelCallOut, RunDetail
from proctor.server.tokens import ApiToken, Role
from proctor.states import RunState

# -- a run's timeline ----------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    kind: Literal["model", "step"]
    at: datetime
    step: StepView | None = None
    approval: ApprovalView | None = None
    """The step's approval request, when it had one."""
    call: ModelCallOut | None = None


@dataclass(frozen=True)
class Timeline:
    run: RunView
    detail: RunDetail
    entries: list[TimelineEntry]

    @property
    def active(self) -> bool:
        return not self.detail.run.state.terminal

    @property
    def version(self) -> str:
        """Changes whenever what the page shows may have changed (for live refresh)."""
        d = self.detail
        return (
            f"{d.run.state}:{len(d.steps)}:{len(d.model_calls)}:"
            + ",".join(f"{s.status}" for s in d.steps)
            + ":"
            + ",".join(a.status for a in d.approvals)
        )


def timeline(run: RunView) -> Timeline:
    """The run's steps and model calls in the order they happened (``run`` loaded in full)."""
    detail = queries.run_detail(run)
    entries = [TimelineEntry("model", c.created_at, call=c) for c in detail.model_calls]
    entries += [
        TimelineEntry("step", s.created_at, step=s, approval=run.approval(s.approval_id))
        for s in run.steps
    ]
    # A model call proposes the steps stamped with its own instant: it goes first.
    entries.sort(key=lambda e: (e.at, 0 if e.kind == "model" else 1))
    return Timeline(run, detail, entries)


# -- the approval queue --------------------------------------------------------------------


@dataclass(frozen=True)
class QueueItem:
    request: ApprovalRequest
    step: StepView | None
    """The proposed call, as stored (redacted)."""
    earlier: list[StepView]
    """The run so far."""
    workflow: str
    run_state: RunState
    can_decide: bool
    why_not: str | None
    """Why this token may not decide it (shown instead of the buttons)."""
    roles: list[str] = field(default_factory=list)
    """The policy roles this token may decide it in."""


def may_decide(request: ApprovalRequest, token: ApiToken) -> tuple[list[str], str | None]:
    """The roles ``token`` may decide ``request`` in, or why it may not decide it at all.

    Mirrors what ``deciding.py`` and the queue enforce, to show the right controls; the
    decision itself is still checked there."""
    if token.role is Role.VIEWER:
        return [], f"{token.name} is a viewer; deciding needs an approver or admin token"
    if token.name in (request.requester, request.agent):
        return [], f"{token.name} raised this request; nobody approves their own request"
    roles = shared_roles(request, token)
    if not roles:
        return [], no_policy_role(request, token)
    return roles, None


def approval_queue(
    conn: sa.Connection, pending: Sequence[ApprovalRequest], token: ApiToken
) -> list[QueueItem]:
    items = []
    for request in pending:
        views = steps_of(conn, request.run_id, before=request.step + 1)
        run = load_run(conn, request.run_id, history=False)
        roles, why_not = may_decide(request, token)
        items.append(
            QueueItem(
                request=request,
                step=next((v for v in views if v.idx == request.step), None),
                earlier=[v for v in views if v.idx < request.step],
                workflow=run.workflow,
                run_state=run.state,
                can_decide=why_not is None,
                why_not=why_not,
                roles=roles,
            )
        )
    return items


def queue_version(pending: Iterable[ApprovalRequest]) -> str:
    return ",".join(r.id for r in pending) or "empty"


def pending_count(conn: sa.Connection, tenant: str | None) -> int:
    return count_pending_approvals(conn, tenant)


# -- costs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    label: str
    usd: Decimal
    tokens: int
    calls: int


@dataclass(frozen=True)
class CostView:
    total_usd: Decimal
    total_tokens: int
    by_day: list[Bar]
    by_workflow: list[Bar]
    by_tenant: list[Bar]
    by_model: list[Bar]
    top_runs: list[CostlyRun]
    outliers: list[CostOutlier]
    """As the API reports them (``queries.cost_outliers``)."""


def _bars(groups: dict[str, list[Any]], *, by_value: bool) -> list[Bar]:
    bars = [
        Bar(
            label,
            sum((r.cost_usd for r in rows), Decimal(0)),
            sum(r.tokens for r in rows),
            sum(r.calls for r in rows),
        )
        for label, rows in groups.items()
    ]
    if by_value:
        bars.sort(key=lambda b: (-b.usd, b.label))
    else:
        bars.sort(key=lambda b: b.label)
    return bars


def cost_view(
    conn: sa.Connection, tenant: str | None, since: datetime | None, until: datetime | None
) -> CostView:
    costs = queries.costs(conn, tenant, since, until, top=10)
    groups: dict[str, dict[str, list[Any]]] = {
        k: defaultdict(list) for k in ("day", "workflow", "tenant", "model")
    }
    for r in costs.rows:
        for key in groups:
            groups[key][getattr(r, key)].append(r)
    return CostView(
        total_usd=costs.total_usd,
        total_tokens=sum(r.tokens for r in costs.rows),
        by_day=_bars(groups["day"], by_value=False),
        by_workflow=_bars(groups["workflow"], by_value=True),
        by_tenant=_bars(groups["tenant"], by_value=True),
        by_model=_bars(groups["model"], by_value=True),
        top_runs=costs.top_runs,
        outliers=costs.outliers,
    )


# -- eval reports --------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class ReportEntry:
    name: str
    json_path: Path
    html_path: Path | None
    modified: float
    report: Report | None = None
    problem: str | None = None


def reports_dir(home: Path) -> Path:
    return home / "reports"


def _entry(root: Path, name: str) -> ReportEntry | None:
    if not _NAME.match(name):
        return None
    # ``NAME.json`` (as ``latest.json``) or ``NAME/report.json``; the HTML beside the latter.
    candidates = [root / f"{name}.json", root / name / "report.json"]
    json_path = next((p for p in candidates if p.is_file()), None)
    if json_path is None:
        return None
    html = root / name / "report.html"
    resolved = root.resolve()
    for p in (json_path, html):
        if not p.resolve().is_relative_to(resolved):  # a symlink out of the folder
            return None
    return ReportEntry(name, json_path, html if html.is_file() else None, json_path.stat().st_mtime)


def list_reports(home: Path) -> list[ReportEntry]:
    """Reports under ``<home>/reports``, newest first (summaries not loaded)."""
    root = reports_dir(home)
    if not root.is_dir():
        return []
    names = {p.stem for p in root.glob("*.json")}
    names |= {p.parent.name for p in root.glob("*/report.json")}
    entries = [e for e in (_entry(root, n) for n in sorted(names)) if e is not None]
    return sorted(entries, key=lambda e: (-e.modified, e.name))


def load_report(home: Path, name: str) -> ReportEntry | None:
    """One report with its summary read, or None when there is no such report."""
    entry = _entry(reports_dir(home), name)
    if entry is None:
        return None
    try:
        report = Report.model_validate_json(entry.json_path.read_bytes())
    except (OSError, ValidationError) as exc:
        problem = f"{entry.json_path.name} is not an eval report this version reads ({exc})"
        return dataclasses.replace(entry, problem=problem)
    return dataclasses.replace(entry, report=report)
