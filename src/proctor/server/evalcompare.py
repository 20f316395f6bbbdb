"""Eval reports as the pages read them: every scenario with filters, and two reports
compared by the release gate's own rules, as ``proctor eval gate`` would decide."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from proctor.evals.gate import GateResult, GateRules, compare
from proctor.evals.report import Report, ScenarioResult

OUTCOMES = ("passed", "failed")


@dataclass(frozen=True)
class ScenarioFilter:
    """Which results a report's page lists; ``None`` keeps any."""

    outcome: str | None = None
    label: str | None = None
    state: str | None = None
    text: str | None = None
    """In the scenario's id (any case)."""

    def keeps(self, r: ScenarioResult) -> bool:
        return (
            (self.outcome is None or (self.outcome == "passed") == r.passed)
            and (self.label is None or self.label in r.labels)
            and (self.state is None or r.state == self.state)
            and (self.text is None or self.text.lower() in r.scenario_id.lower())
        )


def scenarios(report: Report, f: ScenarioFilter) -> list[ScenarioResult]:
    """The results ``f`` keeps: failures first, then by scenario and repeat."""
    kept = [r for r in report.results if f.keeps(r)]
    return sorted(kept, key=lambda r: (r.passed, r.scenario_id, r.repeat))


def labels_of(report: Report) -> list[str]:
    return sorted({label for r in report.results for label in r.labels})


def states_of(report: Report) -> list[str]:
    return sorted({r.state for r in report.results})


def written_at(report: Report) -> datetime | None:
    """When the report was made, from its manifest (``None`` if unreadable)."""
    try:
        return datetime.fromisoformat(report.manifest.created_at)
    except ValueError:
        return None


@dataclass(frozen=True)
class ScenarioChange:
    """A scenario whose passes moved between the two reports."""

    scenario_id: str
    before: tuple[int, int]
    """Passed and run, in the baseline (``(0, 0)``: not in it)."""
    after: tuple[int, int]

    @property
    def worse(self) -> bool:
        b_passed, b_runs = self.before
        a_passed, a_runs = self.after
        if not a_runs or not b_runs:
            return False
        return a_passed / a_runs < b_passed / b_runs


@dataclass(frozen=True)
class Comparison:
    result: GateResult
    rules: GateRules
    changes: list[ScenarioChange]
    """Scenarios whose pass rate moved, or that are in only one report; worse first."""


def _passes(report: Report) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in report.results:
        counts[r.scenario_id][0] += int(r.passed)
        counts[r.scenario_id][1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}


def comparison(baseline: Report, candidate: Report, rules: GateRules | None = None) -> Comparison:
    """The gate's verdict with ``rules`` (its defaults, as ``proctor eval gate`` without
    ``--rules``), and the scenarios that moved."""
    rules = rules or GateRules()
    before, after = _passes(baseline), _passes(candidate)
    changes = []
    for sid in sorted(before.keys() | after.keys()):
        b, a = before.get(sid, (0, 0)), after.get(sid, (0, 0))
        b_rate = b[0] / b[1] if b[1] else None
        a_rate = a[0] / a[1] if a[1] else None
        if b_rate != a_rate:
            changes.append(ScenarioChange(sid, b, a))
    changes.sort(key=lambda c: (not c.worse, c.scenario_id))
    return Comparison(compare(baseline, candidate, rules), rules, changes)
