"""The SLO monitor: the canary against the stable release, with the eval gate's statistics.

Figures come from the runs each release served in an objective's window: ended runs,
completed ones, runs that asked a person, their cost and active duration, and their
incidents (a call executed that the stable release's bundle, deciding beside every
canary call, denies or holds for approval; an invalid action proposed). The targets
are the stable release's ``slo:`` settings, so a candidate cannot loosen its own judge.

A significant drop of the success rate or rise of the escalation rate (one-sided
Fisher's exact test at ``alpha``), a rise of cost or p95 duration past its limit, or an
incident rate above its limit fails, once both releases have the objective's minimum of
ended runs. An incident of a kind the SLO forbids fails at once, whatever the counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from proctor.evals.gate import GateRow, fisher_one_sided, rise_row, success_row
from proctor.evals.metrics import percentile, wilson
from proctor.evals.report import Interval
from proctor.policy.settings import IncidentKind, SloSettings
from proctor.states import RunState
from proctor.store.tables import approvals, dry_run_decisions, model_calls, runs

_ENDED = tuple(s.value for s in RunState if s.terminal)
_COUNTED = (*_ENDED, RunState.AWAITING_APPROVAL.value)


@dataclass(frozen=True)
class Figures:
    """One release's runs in a window."""

    release: str
    ended: int
    completed: int
    asked: int
    """Runs that ended or wait for a person: the escalation rate's runs."""
    escalated: int
    """Of ``asked``, runs that asked a person (an approval request)."""
    cost_usd: float
    """Mean per ended run."""
    duration_p95_s: float
    incidents: dict[str, int]

    @property
    def success(self) -> Interval:
        return wilson(self.completed, self.ended)

    @property
    def unescalated(self) -> Interval:
        return wilson(self.asked - self.escalated, self.asked)


@dataclass(frozen=True)
class SloRow:
    objective: str
    stable: float
    canary: float
    target: str
    """The stable release's target, as a person reads it."""
    samples: tuple[int, int]
    """Ended runs of the stable release and the canary in the window."""
    status: str
    """``pass``, ``fail`` or ``waiting`` (fewer runs than the objective's minimum)."""
    explanation: str


@dataclass(frozen=True)
class SloVerdict:
    stable: str
    canary: str
    rows: tuple[SloRow, ...]
    checked_at: datetime

    @property
    def breached(self) -> bool:
        return any(r.status == "fail" for r in self.rows)

    @property
    def failures(self) -> list[SloRow]:
        return [r for r in self.rows if r.status == "fail"]


def figures(conn: sa.Connection, release: str, stable: str, since: datetime) -> Figures:
    """What ``release``'s runs opened since ``since`` did; incidents against ``stable``."""
    r = runs.c
    window = sa.and_(r.release == release, r.created_at >= since)
    rows = conn.execute(
        sa.select(r.id, r.state, r.created_at, r.ended_at, r.paused_s, r.invalid_actions).where(
            window, r.state.in_(_COUNTED)
        )
    ).all()
    ended = [row for row in rows if row.state != RunState.AWAITING_APPROVAL.value]
    ended_ids = sa.select(r.id).where(window, r.state.in_(_ENDED))
    escalated = conn.execute(
        sa.select(sa.func.count(sa.distinct(approvals.c.run_id))).where(
            approvals.c.run_id.in_(sa.select(r.id).where(window, r.state.in_(_COUNTED)))
        )
    ).scalar_one()
    nano = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(model_calls.c.nano_usd), 0)).where(
            model_calls.c.run_id.in_(ended_ids)
        )
    ).scalar_one()
    breaches = 0
    if release != stable:
        d = dry_run_decisions.c
        breaches = conn.execute(
            sa.select(sa.func.count())
            .select_from(dry_run_decisions.join(runs, r.id == d.run_id))
            .where(window, d.candidate == stable, d.live == "allow", d.dry_run != "allow")
        ).scalar_one()
    durations = [
        max(0.0, (row.ended_at - row.created_at).total_seconds() - (row.paused_s or 0.0))
        for row in ended
        if row.ended_at is not None
    ]
    return Figures(
        release=release,
        ended=len(ended),
        completed=sum(row.state == RunState.COMPLETED.value for row in ended),
        asked=len(rows),
        escalated=int(escalated),
        cost_usd=(int(nano) / 1e9 / len(ended)) if ended else 0.0,
        duration_p95_s=percentile(durations, 95),
        incidents={
            "policy_breach": int(breaches),
            "tool_misuse": sum(int(row.invalid_actions or 0) for row in ended),
        },
    )


def run_incidents(conn: sa.Connection, run_id: str, stable: str) -> dict[str, int]:
    """One run's incidents, as ``figures`` counts them."""
    d = dry_run_decisions.c
    breaches = conn.execute(
        sa.select(sa.func.count()).where(
            d.run_id == run_id, d.candidate == stable, d.live == "allow", d.dry_run != "allow"
        )
    ).scalar_one()
    invalid = conn.execute(sa.select(runs.c.invalid_actions).where(runs.c.id == run_id)).scalar()
    return {"policy_breach": int(breaches), "tool_misuse": int(invalid or 0)}


def judge(
    conn: sa.Connection, settings: SloSettings, stable: str, canary: str, now: datetime
) -> SloVerdict:
    """Every objective of ``settings``, the canary against the stable release."""
    seen: dict[int, tuple[Figures, Figures]] = {}

    def pair(window_s: int) -> tuple[Figures, Figures]:
        if window_s not in seen:
            since = now - timedelta(seconds=window_s)
            seen[window_s] = (
                figures(conn, stable, stable, since),
                figures(conn, canary, stable, since),
            )
        return seen[window_s]

    rows: list[SloRow] = []
    alpha = settings.alpha
    for kind, objective in settings.incidents.items():
        s, c = pair(objective.window_s)
        rows.append(_incident_row(kind, objective.max_rate, objective.min_runs, s, c))
    if settings.success_rate is not None:
        o = settings.success_rate
        s, c = pair(o.window_s)
        gate = success_row("success_rate", s.success, c.success, alpha)
        rows.append(_row(gate, f"≥ {o.target:.0%}", o.min_runs, s, c))
    if settings.escalation_rate is not None:
        o = settings.escalation_rate
        s, c = pair(o.window_s)
        rows.append(_escalation_row(o.target, o.min_runs, alpha, s, c))
    if settings.cost_per_run_usd is not None:
        cost = settings.cost_per_run_usd
        s, c = pair(cost.window_s)
        gate = rise_row("cost_per_run_usd", s.cost_usd, c.cost_usd, cost.max_rise)
        target = _rise_target(cost.max_rise, cost.target, "$")
        rows.append(_row(gate, target, cost.min_runs, s, c))
    if settings.duration_p95_s is not None:
        took = settings.duration_p95_s
        s, c = pair(took.window_s)
        gate = rise_row("duration_p95_s", s.duration_p95_s, c.duration_p95_s, took.max_rise)
        target = _rise_target(took.max_rise, took.target, "s")
        rows.append(_row(gate, target, took.min_runs, s, c))
    return SloVerdict(stable, canary, tuple(rows), now)


def _row(gate: GateRow, target: str, min_runs: int, s: Figures, c: Figures) -> SloRow:
    enough = s.ended >= min_runs and c.ended >= min_runs
    status = ("pass" if gate.passed else "fail") if enough else "waiting"
    explanation = gate.explanation if enough else _waiting(min_runs, s, c)
    return SloRow(
        gate.name, gate.baseline, gate.candidate, target, (s.ended, c.ended), status, explanation
    )


def _escalation_row(target: float, min_runs: int, alpha: float, s: Figures, c: Figures) -> SloRow:
    """A significant rise of escalations is a significant drop of runs that ask nobody."""
    p = fisher_one_sided(
        s.unescalated.successes, s.unescalated.trials, c.unescalated.successes, c.unescalated.trials
    )
    before, after = _rate(s.escalated, s.asked), _rate(c.escalated, c.asked)
    rose = after > before
    counts = f"{s.escalated}/{s.asked} → {c.escalated}/{c.asked}, p = {p:.4g}"
    passed = not (rose and p < alpha)
    explanation = (
        f"no rise ({counts})"
        if not rose
        else f"rise within noise ({counts})"
        if passed
        else f"significant rise ({counts})"
    )
    gate = GateRow("escalation_rate", before, after, f"p < {alpha:g}", passed, explanation)
    return _row(gate, f"≤ {target:.0%}", min_runs, s, c)


def _incident_row(
    kind: IncidentKind, max_rate: float, min_runs: int, s: Figures, c: Figures
) -> SloRow:
    count, name = c.incidents.get(kind, 0), f"incidents.{kind}"
    samples = (s.ended, c.ended)
    if max_rate == 0:
        status = "fail" if count else "pass"
        text = f"{count} on the canary: the SLO forbids any" if count else "none"
        return SloRow(name, s.incidents.get(kind, 0), count, "none", samples, status, text)
    rate = _rate(count, c.ended)
    if c.ended < min_runs:
        status, text = "waiting", _waiting(min_runs, s, c)
    else:
        status = "fail" if rate > max_rate else "pass"
        text = f"{count} in {c.ended} runs ({rate:.1%})"
    return SloRow(
        name,
        _rate(s.incidents.get(kind, 0), s.ended),
        rate,
        f"≤ {max_rate:.1%}",
        samples,
        status,
        text,
    )


def _waiting(min_runs: int, s: Figures, c: Figures) -> str:
    return f"waiting for {min_runs} ended runs of each (stable {s.ended}, canary {c.ended})"


def _rise_target(max_rise: float, target: float | None, unit: str) -> str:
    rise = f"+{max_rise:.0%} over stable"
    if target is None:
        return rise
    shown = f"${target:g}" if unit == "$" else f"{target:g}s"
    return f"{shown}, {rise}"


def _rate(count: int, total: int) -> float:
    return count / total if total else 0.0
