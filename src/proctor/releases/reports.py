"""What a candidate did beside live traffic: the shadow report and the dry-run report."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from proctor.store.tables import dry_run_decisions, runs, shadow_runs

VERDICTS = ("same_actions", "different_actions", "different_decisions")


@dataclass(frozen=True)
class ShadowPair:
    live_run: str
    shadow_run: str
    verdict: str
    calls: list[dict[str, Any]]
    incidents: list[dict[str, str]]
    live: dict[str, Any]
    candidate: dict[str, Any]


@dataclass
class ShadowReport:
    candidate: str
    pairs: list[ShadowPair] = field(default_factory=list)

    @property
    def verdicts(self) -> dict[str, int]:
        counted = Counter(p.verdict for p in self.pairs)
        return {v: counted.get(v, 0) for v in VERDICTS}

    @property
    def incidents(self) -> dict[str, int]:
        return dict(Counter(i["kind"] for p in self.pairs for i in p.incidents))

    @property
    def would_execute(self) -> list[tuple[str, dict[str, Any], str]]:
        """Every write the candidate would have executed: tool, arguments, live run."""
        return [
            (c["tool"], c["args"], p.live_run)
            for p in self.pairs
            for c in p.calls
            if c["candidate"]["status"] == "would_execute"
        ]

    def states(self, side: str) -> dict[str, int]:
        return dict(
            Counter(p.live["state"] if side == "live" else p.candidate["state"] for p in self.pairs)
        )

    def total(self, side: str, key: str) -> Decimal:
        return sum((Decimal(str(getattr(p, side)[key])) for p in self.pairs), Decimal(0))


def shadow_report(conn: sa.Connection, candidate: str) -> ShadowReport:
    query = (
        sa.select(shadow_runs)
        .where(shadow_runs.c.candidate == candidate)
        .order_by(shadow_runs.c.created_at)
    )
    report = ShadowReport(candidate)
    for row in conn.execute(query):
        c = row.comparison
        report.pairs.append(
            ShadowPair(
                row.live_run,
                row.shadow_run,
                c["verdict"],
                c["calls"],
                c["incidents"],
                c["live"],
                c["candidate"],
            )
        )
    return report


@dataclass
class DryRunReport:
    candidate: str
    decisions: int = 0
    runs: int = 0
    transitions: dict[tuple[str, str], int] = field(default_factory=dict)
    """``(live, candidate)`` effects that differ, with how many calls."""
    by_tool: dict[str, dict[tuple[str, str], int]] = field(default_factory=dict)
    examples: list[tuple[str, int, str, str, str, list[str]]] = field(default_factory=list)
    """Run, step, tool, live effect, candidate effect, the candidate's policies."""

    @property
    def changed(self) -> int:
        return sum(self.transitions.values())


def dry_run_report(conn: sa.Connection, candidate: str, examples: int = 5) -> DryRunReport:
    """Every live call the candidate decided beside the live bundle, and where they
    differed, per transition and per tool. Calls of the candidate's own runs (as a canary)
    are left out: there it is the live bundle."""
    d = dry_run_decisions.c
    query = (
        sa.select(d.run_id, d.step, d.tool, d.live, d.dry_run, d.dry_run_policies)
        .select_from(dry_run_decisions.join(runs, runs.c.id == d.run_id))
        .where(
            d.candidate == candidate, sa.or_(runs.c.release.is_(None), runs.c.release != candidate)
        )
        .order_by(d.created_at, d.run_id, d.step)
    )
    report = DryRunReport(candidate)
    seen_runs = set()
    for row in conn.execute(query):
        report.decisions += 1
        seen_runs.add(row.run_id)
        if row.live == row.dry_run:
            continue
        key = (row.live, row.dry_run)
        report.transitions[key] = report.transitions.get(key, 0) + 1
        tool = report.by_tool.setdefault(row.tool, {})
        tool[key] = tool.get(key, 0) + 1
        if len(report.examples) < examples:
            report.examples.append(
                (row.run_id, row.step, row.tool, row.live, row.dry_run, list(row.dry_run_policies))
            )
    report.runs = len(seen_runs)
    return report
