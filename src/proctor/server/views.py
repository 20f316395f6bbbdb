"""The reads behind the pages: a run's timeline, costs shaped for charts, and the eval
reports under the proctor home (the approval queue is ``queue``'s).

Arguments and results shown are the stored, redacted ones; sealed values are never read.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import ValidationError

from proctor.budgets import DailyUse, daily_scopes
from proctor.evals.report import Report
from proctor.policy.settings import RunBudgetSettings
from proctor.runs.views import ApprovalView, ModelCallView, RunView, StepView
from proctor.server import queries
from proctor.server.schemas import CostlyRun, CostOutlier
from proctor.server.waterfall import Waterfall, waterfall
from proctor.states import ApprovalStatus, RunState

# -- a run's timeline ----------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    kind: Literal["model", "step"]
    at: datetime
    step: StepView | None = None
    approval: ApprovalView | None = None
    """The step's approval request, when it had one."""
    call: ModelCallView | None = None


@dataclass(frozen=True)
class Timeline:
    run: RunView
    entries: list[TimelineEntry]
    waterfall: Waterfall
    now: datetime

    @property
    def active(self) -> bool:
        return not self.run.state.terminal

    @property
    def waiting(self) -> ApprovalView | None:
        """The approval the run waits on now, if it does."""
        if self.run.state is not RunState.AWAITING_APPROVAL:
            return None
        pending = [a for a in self.run.approvals if a.request.status is ApprovalStatus.PENDING]
        return pending[-1] if pending else None

    @property
    def release(self) -> str | None:
        """The release the run ran under, where runs record one."""
        found = getattr(self.run, "release", None)
        return str(found) if found else None

    @property
    def version(self) -> str:
        """Changes whenever what the page shows may have changed (for live refresh)."""
        r = self.run
        return (
            f"{r.state}:{len(r.steps)}:{len(r.model_calls)}:"
            + ",".join(f"{s.status}" for s in r.steps)
            + ":"
            + ",".join(a.request.status for a in r.approvals)
        )


def timeline(run: RunView, now: datetime) -> Timeline:
    """The run's steps and model calls in the order they happened (``run`` loaded in full)."""
    entries = [TimelineEntry("model", c.created_at, call=c) for c in run.model_calls]
    entries += [
        TimelineEntry("step", s.created_at, step=s, approval=run.approval(s.approval_id))
        for s in run.steps
    ]
    # A model call proposes the steps stamped with its own instant: it goes first.
    entries.sort(key=lambda e: (e.at, 0 if e.kind == "model" else 1))
    return Timeline(run, entries, waterfall(run, now), now)


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


@dataclass(frozen=True)
class BudgetUse:
    """One daily budget (a tenant's, or a workflow's in a tenant) on one day."""

    kind: Literal["tenant", "workflow"]
    name: str
    usd: Decimal
    reserved_usd: Decimal
    cap_usd: Decimal | None
    tokens: int
    cap_tokens: int | None

    @property
    def share(self) -> float | None:
        """The larger of the money and token shares of the cap used (0 to 1+), if capped."""
        shares = []
        if self.cap_usd is not None:
            shares.append(float(self.usd / self.cap_usd) if self.cap_usd else 1.0)
        if self.cap_tokens is not None:
            shares.append(self.tokens / self.cap_tokens if self.cap_tokens else 1.0)
        return max(shares) if shares else None


def budget_use(
    day: str,
    use: Mapping[str, DailyUse],
    caps: RunBudgetSettings,
    tenant: str | None,
) -> list[BudgetUse]:
    """The day's use of every tenant and workflow budget that was used that day, and of
    every tenant named in the caps; of ``tenant``, or of all."""
    pairs = {(t, "") for t in caps.tenant if t != "*"}
    for key in use:
        kind, _, name = key.partition(":")
        if kind == "workflow" and "/" in name:
            t, _, w = name.partition("/")
            pairs.add((t, w))
        elif kind == "tenant":
            pairs.add((name, ""))
    found: dict[str, BudgetUse] = {}
    for t, w in sorted(pairs):
        if tenant is not None and t != tenant:
            continue
        for scope in daily_scopes(t, w or "*", caps.tenant, caps.workflow):
            kind, _, name = scope.key.partition(":")
            if scope.key in found or (kind == "workflow" and not w):
                continue
            used = use.get(scope.key)
            cap = scope.caps
            found[scope.key] = BudgetUse(
                kind="tenant" if kind == "tenant" else "workflow",
                name=name,
                usd=used.usd if used else Decimal(0),
                reserved_usd=used.reserved_usd if used else Decimal(0),
                cap_usd=cap.usd if cap else None,
                tokens=used.tokens if used else 0,
                cap_tokens=cap.model_tokens if cap else None,
            )
    return sorted(found.values(), key=lambda b: (b.kind != "tenant", b.name))


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
