"""The numbers of a report: proportions with Wilson intervals, distributions, the summary."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

from proctor.evals.report import (
    Distribution,
    Incidents,
    Interval,
    LabelStats,
    ScenarioResult,
    Summary,
)

__all__ = ["Z95", "distribution", "flaky", "label_stats", "percentile", "summarize", "wilson"]

Z95 = 1.96


def wilson(successes: int, trials: int, z: float = Z95) -> Interval:
    """``successes / trials`` with its Wilson score interval (95% by default)."""
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")
    if trials == 0:
        return Interval(value=0.0, low=0.0, high=1.0, successes=0, trials=0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return Interval(
        value=p,
        low=max(0.0, centre - half),
        high=min(1.0, centre + half),
        successes=successes,
        trials=trials,
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (``q`` in 0..100) of ``values``."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def distribution(values: Sequence[float]) -> Distribution:
    if not values:
        return Distribution(mean=0.0, p50=0.0, p95=0.0, max=0.0)
    return Distribution(
        mean=sum(values) / len(values),
        p50=percentile(values, 50),
        p95=percentile(values, 95),
        max=max(values),
    )


def flaky(results: Sequence[ScenarioResult]) -> list[str]:
    """Scenarios whose repeats disagreed: some passed, some failed."""
    outcomes: dict[str, set[bool]] = defaultdict(set)
    for r in results:
        outcomes[r.scenario_id].add(r.passed)
    return sorted(sid for sid, seen in outcomes.items() if len(seen) > 1)


def _count(results: Sequence[ScenarioResult], kind: str) -> int:
    return sum(1 for r in results for i in r.incidents if i.kind == kind)


def label_stats(results: Sequence[ScenarioResult]) -> LabelStats:
    """The runs of one label: success, incidents, escalations, and runs completed unattended."""
    unattended = sum(r.state == "completed" and not r.escalated for r in results)
    return LabelStats(
        runs=len(results),
        success=wilson(sum(r.passed for r in results), len(results)),
        unauthorized_executed=_count(results, "unauthorized_executed"),
        policy_breaches=_count(results, "policy_breach"),
        escalated=sum(r.escalated for r in results),
        unattended=wilson(unattended, len(results)),
    )


def summarize(results: Sequence[ScenarioResult], *, unnecessary: set[str] | None = None) -> Summary:
    """The summary of ``results``. ``unnecessary`` names the scenarios that expect no
    escalation (``expect.escalation: false``); an escalation in one of them is unnecessary."""
    unnecessary = unnecessary or set()
    passed = sum(r.passed for r in results)
    by_label: dict[str, list[ScenarioResult]] = defaultdict(list)
    for r in results:
        for label in r.labels:
            by_label[label].append(r)
    kinds: Counter[str] = Counter(i.kind for r in results for i in r.incidents)
    return Summary(
        runs=len(results),
        success_rate=passed / len(results) if results else 0.0,
        success=wilson(passed, len(results)),
        by_label={label: label_stats(rs) for label, rs in sorted(by_label.items())},
        states=dict(sorted(Counter(r.state for r in results).items())),
        reasons=dict(sorted(Counter(r.reason for r in results if r.reason).items())),
        incidents=Incidents(
            unauthorized_executed=kinds["unauthorized_executed"],
            policy_breach=kinds["policy_breach"],
            data_exposure=kinds["data_exposure"],
            tool_misuse=kinds["tool_misuse"],
        ),
        escalations=sum(r.escalated for r in results),
        unnecessary_escalations=sum(r.escalated and r.scenario_id in unnecessary for r in results),
        cost_per_run_usd=distribution([r.cost_usd for r in results]),
        tokens_per_run=distribution([float(r.tokens) for r in results]),
        duration_s=distribution([r.duration_s for r in results]),
        model_calls_per_run=distribution([float(r.model_calls) for r in results]),
        flaky_scenarios=flaky(results),
    )
