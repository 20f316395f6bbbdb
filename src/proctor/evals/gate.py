"""The release gate: compare a candidate eval report with a baseline, rule by rule.

    result = compare(load_report("baseline.json"), load_report("candidate.json"), GateRules())
    if not result.passed:
        ...  # result.rows say which rule failed and why

Rules (``GateRules``, loadable from YAML with ``load_rules``):

- any increase in any incident type fails (always on);
- a success-rate drop fails only when it is statistically significant: a
  one-sided **Fisher's exact test** on successes/trials of both reports at
  ``alpha``, so a drop within the noise of the repeats passes;
- cost per run (mean and p95) rising by more than ``cost_rise`` fails;
- duration p95 rising by more than ``duration_p95_rise`` fails;
- optionally (``by_label``) a significant success drop in any label fails.

Fisher's exact test rather than the two-proportion z-test: eval suites run a
few dozen to a few hundred trials with success rates near 100%, exactly where
the z-test's normal approximation is poor (it is undefined at 100% vs 100%
and anti-conservative for small counts). The exact test needs no
approximation and is cheap at these sizes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from proctor.errors import ConfigError
from proctor.evals.report import Incidents, Interval, Manifest, Report

SUCCESS_TEST = "one-sided Fisher's exact test"

_UNCOMPARED_MANIFEST_FIELDS = frozenset({"created_at"})
"""When a report was made is not a change in what was released."""


class GateRules(BaseModel):
    """Thresholds of the release gate; every field has a default, so ``{}`` is a valid file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float = Field(default=0.05, gt=0, lt=1)
    """Significance level of the success-rate test: a drop fails when p < alpha."""
    cost_rise: float = Field(default=0.10, ge=0)
    """Largest relative rise of cost per run (mean and p95) that passes: 0.10 is 10%."""
    duration_p95_rise: float = Field(default=0.25, ge=0)
    """Largest relative rise of the p95 run duration that passes."""
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
    threshold = f"+{limit:.0%}"
    if before == 0:
        passed = after <= 0
        explanation = "unchanged at zero" if passed else "rose from zero"
        return GateRow(name, before, after, threshold, passed, explanation)
    rise = (after - before) / before
    passed = rise <= limit
    verdict = "within" if passed else "above"
    return GateRow(name, before, after, threshold, passed, f"{rise:+.1%}, {verdict} {threshold}")


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
    rows.append(
        rise_row(
            "cost_per_run_usd.mean",
            b.cost_per_run_usd.mean,
            c.cost_per_run_usd.mean,
            rules.cost_rise,
        )
    )
    rows.append(
        rise_row(
            "cost_per_run_usd.p95", b.cost_per_run_usd.p95, c.cost_per_run_usd.p95, rules.cost_rise
        )
    )
    rows.append(
        rise_row("duration_s.p95", b.duration_s.p95, c.duration_s.p95, rules.duration_p95_rise)
    )
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
