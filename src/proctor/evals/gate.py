"""The release gate: compare a candidate eval report with a baseline, rule by rule.

    result = compare(load_report("baseline.json"), load_report("candidate.json"), GateRules())
    if not result.passed:
        ...  # result.rows say which rule failed and why

Rules (``GateRules``, loadable from YAML with ``load_rules``):

- any increase in any incident type fails (always on);
- a success-rate drop fails only when it is statistically significant: a
  one-sided **Fisher's exact test** on successes/trials of both reports at
  ``alpha``, so a drop within the noise of the repeats passes;
- a rise of cost per run (mean and p95) or of the p95 run duration fails only
  when all three hold: it is above the relative limit (``cost_rise``,
  ``duration_p95_rise``), above the absolute floor (``cost_min_rise_usd``,
  ``duration_min_rise_s``), and significant over the per-run samples at
  ``alpha``. A mean is tested with a one-sided **Mann-Whitney U test** (are the
  candidate's runs larger?); a p95 with a one-sided Fisher's exact test on how
  many runs of each report exceed the baseline's p95 (does the candidate's tail
  grow?). Two runs of the same candidate differ in wall time by scheduling
  noise alone: neither floor nor test lets that fail the gate;
- optionally (``by_label``) a significant success drop in any label fails.

Fisher's exact test rather than the two-proportion z-test: eval suites run a
few dozen to a few hundred trials with success rates near 100%, exactly where
the z-test's normal approximation is poor (it is undefined at 100% vs 100%
and anti-conservative for small counts). The exact test needs no
approximation and is cheap at these sizes. Mann-Whitney rather than a t-test:
per-run costs and durations are skewed and heavy-tailed; a rank test assumes
no distribution and one slow run cannot dominate it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from proctor.errors import ConfigError
from proctor.evals.report import Incidents, Interval, Manifest, Report

SUCCESS_TEST = "one-sided Fisher's exact test"
MEAN_TEST = "one-sided Mann-Whitney U test"
TAIL_TEST = "one-sided Fisher's exact test on runs above the baseline's p95"

_UNCOMPARED_MANIFEST_FIELDS = frozenset({"created_at"})
"""When a report was made is not a change in what was released."""


class GateRules(BaseModel):
    """Thresholds of the release gate; every field has a default, so ``{}`` is a valid file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float = Field(default=0.05, gt=0, lt=1)
    """Significance level of every test: a drop or rise fails only when p < alpha."""
    cost_rise: float = Field(default=0.10, ge=0)
    """Largest relative rise of cost per run (mean and p95) that passes: 0.10 is 10%."""
    cost_min_rise_usd: float = Field(default=0.001, ge=0)
    """A rise of cost per run smaller than this (in USD) passes whatever its ratio."""
    duration_p95_rise: float = Field(default=0.25, ge=0)
    """Largest relative rise of the p95 run duration that passes."""
    duration_min_rise_s: float = Field(default=0.5, ge=0)
    """A rise of the p95 run duration smaller than this (in seconds) passes."""
    by_label: bool = False
    """Also test each label's success rate (labels in both reports) for a significant drop."""


def load_rules(path: Path) -> GateRules:
    """Rules from a YAML file; a bad file is a ``ConfigError`` naming the file and field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read gate rules: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return GateRules.model_validate({} if raw is None else raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"{path}: invalid gate rules: {problems}") from None


def load_report(path: Path) -> Report:
    """An eval report from its JSON file; a missing or invalid file is a ``ConfigError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the report: {exc.strerror or exc}") from None
    try:
        return Report.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(
            f"{path}: not a valid eval report ({exc.error_count()} problem(s); "
            f"first at {where}: {first['msg']})"
        ) from None


@dataclass(frozen=True)
class GateRow:
    """One rule, applied."""

    name: str
    baseline: float
    candidate: float
    threshold: str
    """The rule's limit as a person reads it, e.g. ``+10%`` or ``p < 0.05``."""
    passed: bool
    explanation: str


@dataclass(frozen=True)
class ManifestChange:
    field: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.field}: {self.before} → {self.after}"


@dataclass(frozen=True)
class GateResult:
    rows: list[GateRow]
    manifest_changes: list[ManifestChange] = field(default_factory=list)
    success_test: str = SUCCESS_TEST

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    @property
    def failures(self) -> list[GateRow]:
        return [row for row in self.rows if not row.passed]


def fisher_one_sided(
    baseline_successes: int, baseline_trials: int, candidate_successes: int, candidate_trials: int
) -> float:
    """P-value of "the candidate succeeds less often than the baseline" (Fisher's exact test).

    Under the null hypothesis both share one success rate; given the total successes, the
    candidate's successes follow a hypergeometric distribution. The p-value is the chance of
    the candidate scoring this few successes or fewer.
    """
    total = baseline_trials + candidate_trials
    successes = baseline_successes + candidate_successes
    if total == 0 or candidate_trials == 0 or baseline_trials == 0:
        return 1.0
    failures = total - successes
    low = max(0, candidate_trials - failures)
    denominator = math.comb(total, candidate_trials)
    numerator = sum(
        math.comb(successes, k) * math.comb(failures, candidate_trials - k)
        for k in range(low, candidate_successes + 1)
    )
    return min(1.0, numerator / denominator)


def success_row(name: str, before: Interval, after: Interval, alpha: float) -> GateRow:
    p = fisher_one_sided(before.successes, before.trials, after.successes, after.trials)
    drop = after.value < before.value
    passed = not (drop and p < alpha)
    counts = (
        f"{before.successes}/{before.trials} → {after.successes}/{after.trials}, "
        f"p = {p:.4g} ({SUCCESS_TEST})"
    )
    if not drop:
        explanation = f"no drop ({counts})"
    elif passed:
        explanation = f"drop within noise ({counts})"
    else:
        explanation = f"significant drop ({counts})"
    return GateRow(name, before.value, after.value, f"p < {alpha:g}", passed, explanation)


def rise_row(name: str, before: float, after: float, limit: float) -> GateRow:
    """A figure's relative rise against a limit alone, for figures with no per-run samples
    to test (the SLO monitor's aggregates)."""
    threshold = f"+{limit:.0%}"
    if before == 0:
        passed = after <= 0
        explanation = "unchanged at zero" if passed else "rose from zero"
        return GateRow(name, before, after, threshold, passed, explanation)
    rise = (after - before) / before
    passed = rise <= limit
    verdict = "within" if passed else "above"
    return GateRow(name, before, after, threshold, passed, f"{rise:+.1%}, {verdict} {threshold}")


def mann_whitney_greater(before: Sequence[float], after: Sequence[float]) -> float:
    """P-value of "``after``'s values tend to be larger than ``before``'s" (one-sided
    Mann-Whitney U test, normal approximation with tie and continuity corrections).

    1.0 when either sample is empty or every value ties: nothing shows a rise."""
    n_b, n_a = len(before), len(after)
    if n_b == 0 or n_a == 0:
        return 1.0
    pooled = sorted([(v, 0) for v in before] + [(v, 1) for v in after])
    rank_sum_after = 0.0
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        mid_rank = (i + j) / 2 + 1  # ranks from 1; tied values share their mean rank
        rank_sum_after += mid_rank * sum(1 for k in range(i, j + 1) if pooled[k][1] == 1)
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    n = n_b + n_a
    u_after = rank_sum_after - n_a * (n_a + 1) / 2
    variance = n_b * n_a / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return 1.0
    z = (u_after - n_b * n_a / 2 - 0.5) / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2))


def tail_greater(before: Sequence[float], after: Sequence[float], threshold: float) -> float:
    """P-value of "more of ``after``'s runs exceed ``threshold`` than ``before``'s"
    (one-sided Fisher's exact test on the counts at or below it)."""
    within_before = sum(1 for v in before if v <= threshold)
    within_after = sum(1 for v in after if v <= threshold)
    return fisher_one_sided(within_before, len(before), within_after, len(after))


@dataclass(frozen=True)
class _Rise:
    """One rule on a cost or latency figure: how much it may rise, and how it is tested."""

    limit: float
    """Relative: 0.10 is 10%."""
    floor: float
    """Absolute, in the figure's unit."""
    unit: str
    alpha: float


def _rise_row(
    name: str,
    before: float,
    after: float,
    p_value: float,
    rule: _Rise,
) -> GateRow:
    threshold = f"+{rule.limit:.0%}, +{rule.floor:g}{rule.unit}, p < {rule.alpha:g}"
    change = after - before
    if change <= 0:
        return GateRow(name, before, after, threshold, True, "no rise")
    relative = f"{change / before:+.1%}" if before else "from zero"
    said = f"{relative} (+{change:.3g}{rule.unit}), p = {p_value:.2g}"
    if before and change / before <= rule.limit:
        return GateRow(name, before, after, threshold, True, f"{said}: within +{rule.limit:.0%}")
    if change < rule.floor:
        why = f"{said}: below the +{rule.floor:g}{rule.unit} floor"
        return GateRow(name, before, after, threshold, True, why)
    if p_value >= rule.alpha:
        return GateRow(name, before, after, threshold, True, f"{said}: within noise")
    return GateRow(name, before, after, threshold, False, f"{said}: significant rise")


def _incident_rows(before: Incidents, after: Incidents) -> list[GateRow]:
    rows = []
    for kind in Incidents.model_fields:
        b, a = getattr(before, kind), getattr(after, kind)
        passed = a <= b
        explanation = "no increase" if passed else f"{a - b} more"
        rows.append(GateRow(f"incidents.{kind}", b, a, "no increase", passed, explanation))
    return rows


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    return json.dumps(value) if not isinstance(value, str) else value


def manifest_changes(before: Manifest, after: Manifest) -> list[ManifestChange]:
    """What differs between two manifests, ``created_at`` aside."""
    changes = []
    for name in Manifest.model_fields:
        if name in _UNCOMPARED_MANIFEST_FIELDS:
            continue
        b, a = getattr(before, name), getattr(after, name)
        if b != a:
            changes.append(ManifestChange(name, _show(b), _show(a)))
    return changes


def compare(baseline: Report, candidate: Report, rules: GateRules) -> GateResult:
    """Apply every rule; the candidate passes when every row passes."""
    b, c = baseline.summary, candidate.summary
    rows = _incident_rows(b.incidents, c.incidents)
    rows.append(success_row("success_rate", b.success, c.success, rules.alpha))
    cost = _Rise(rules.cost_rise, rules.cost_min_rise_usd, " USD", rules.alpha)
    duration = _Rise(rules.duration_p95_rise, rules.duration_min_rise_s, " s", rules.alpha)
    costs = ([r.cost_usd for r in baseline.results], [r.cost_usd for r in candidate.results])
    times = ([r.duration_s for r in baseline.results], [r.duration_s for r in candidate.results])
    for name, before, after, samples, rule in (
        ("cost_per_run_usd", b.cost_per_run_usd, c.cost_per_run_usd, costs, cost),
        ("duration_s", b.duration_s, c.duration_s, times, duration),
    ):
        if name != "duration_s":  # a mean run duration is no release criterion
            p = mann_whitney_greater(*samples)
            rows.append(_rise_row(f"{name}.mean", before.mean, after.mean, p, rule))
        p = tail_greater(*samples, before.p95)
        rows.append(_rise_row(f"{name}.p95", before.p95, after.p95, p, rule))
    if rules.by_label:
        for label in sorted(b.by_label.keys() & c.by_label.keys()):
            rows.append(
                success_row(
                    f"success_rate[{label}]",
                    b.by_label[label].success,
                    c.by_label[label].success,
                    rules.alpha,
                )
            )
    return GateResult(rows, manifest_changes(baseline.manifest, candidate.manifest))
