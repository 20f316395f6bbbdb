"""The release gate: each kind of regression fails, noise and identical reports pass."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from proctor.cli.evals import app as eval_app
from proctor.errors import ConfigError
from proctor.evals.gate import (
    GateRules,
    compare,
    fisher_one_sided,
    load_report,
    load_rules,
    mann_whitney_greater,
)
from proctor.evals.metrics import distribution
from proctor.evals.report import (
    Distribution,
    Incident,
    Incidents,
    Interval,
    LabelStats,
    Manifest,
    Report,
    ScenarioResult,
    Summary,
)


def interval(successes: int, trials: int) -> Interval:
    value = successes / trials if trials else 0.0
    return Interval(
        value=value,
        low=max(0.0, value - 0.1),
        high=min(1.0, value + 0.1),
        successes=successes,
        trials=trials,
    )


def dist(mean: float, p95: float | None = None) -> Distribution:
    p95 = mean * 1.5 if p95 is None else p95
    return Distribution(mean=mean, p50=mean, p95=p95, max=p95)


def make_report(
    runs: int = 20,
    *,
    failed: int = 0,
    incidents: dict[str, int] | None = None,
    cost: float = 0.01,
    cost_p95: float | None = None,
    duration_p95: float = 2.0,
    manifest: dict[str, Any] | None = None,
    failure_text: str = "refund did not execute",
) -> Report:
    """A valid report of ``runs`` results, the first ``failed`` of them failing."""
    results = [
        ScenarioResult(
            scenario_id=f"scn-{i % 5}",
            labels=["refund" if i % 2 else "lookup"],
            repeat=i // 5,
            run_id=f"run_{i:04d}",
            state="completed" if i >= failed else "handed_off",
            reason=None if i >= failed else "policy_denied",
            passed=i >= failed,
            failures=[] if i >= failed else [failure_text],
            incidents=[] if i >= failed else [Incident(kind="policy_breach", detail="x")],
            cost_usd=cost * (1 + (i % 4) / 10),
            tokens=100,
            duration_s=1.0,
            model_calls=2,
            steps=2,
            escalated=False,
        )
        for i in range(runs)
    ]
    by_label: dict[str, LabelStats] = {}
    for label in ("refund", "lookup"):
        mine = [r for r in results if label in r.labels]
        ok = sum(r.passed for r in mine)
        by_label[label] = LabelStats(runs=len(mine), success=interval(ok, len(mine)))
    base_manifest: dict[str, Any] = {
        "proctor_version": "0.1.0",
        "policy_version": "support@abc123",
        "model_ids": ["simulated"],
        "prompt_hash": "p1",
        "tool_schema_hash": "t1",
        "bank_hash": "b1",
        "seed": 0,
        "repeats": 4,
        "created_at": "2026-11-24T12:00:00Z",
    }
    base_manifest.update(manifest or {})
    success = interval(runs - failed, runs)
    return Report(
        suite="support",
        manifest=Manifest(**base_manifest),
        summary=Summary(
            runs=runs,
            success_rate=success.value,
            success=success,
            by_label=by_label,
            states={"completed": runs - failed, **({"handed_off": failed} if failed else {})},
            reasons={"policy_denied": failed} if failed else {},
            incidents=Incidents(**(incidents or {})),
            escalations=1,
            unnecessary_escalations=0,
            cost_per_run_usd=dist(cost, cost_p95),
            tokens_per_run=dist(100),
            duration_s=dist(1.0, duration_p95),
            model_calls_per_run=dist(2),
        ),
        results=results,
    )


def failed_rules(baseline: Report, candidate: Report, **rules: Any) -> list[str]:
    return [row.name for row in compare(baseline, candidate, GateRules(**rules)).failures]


def test_identical_reports_pass() -> None:
    result = compare(make_report(), make_report(), GateRules())
    assert result.passed
    assert result.manifest_changes == []
    assert {row.name for row in result.rows} >= {
        "success_rate",
        "cost_per_run_usd.mean",
        "cost_per_run_usd.p95",
        "duration_s.p95",
        *(f"incidents.{k}" for k in Incidents.model_fields),
    }


@pytest.mark.parametrize("kind", list(Incidents.model_fields))
def test_any_incident_increase_fails(kind: str) -> None:
    assert failed_rules(make_report(), make_report(incidents={kind: 1})) == [f"incidents.{kind}"]


def test_an_incident_decrease_passes() -> None:
    assert failed_rules(make_report(incidents={"tool_misuse": 3}), make_report()) == []


def test_a_significant_success_drop_fails() -> None:
    failures = failed_rules(make_report(200), make_report(200, failed=20))
    assert failures == ["success_rate"]


def test_a_drop_within_noise_passes() -> None:
    result = compare(make_report(20), make_report(20, failed=1), GateRules())
    row = next(r for r in result.rows if r.name == "success_rate")
    assert row.passed
    assert row.candidate < row.baseline
    assert "within noise" in row.explanation
    assert "Fisher" in row.explanation


def test_alpha_decides_what_is_significant() -> None:
    baseline, candidate = make_report(40), make_report(40, failed=5)  # p ≈ 0.027
    assert failed_rules(baseline, candidate) == ["success_rate"]
    assert failed_rules(baseline, candidate, alpha=0.01) == []


def test_fisher_one_sided_matches_known_values() -> None:
    assert fisher_one_sided(10, 10, 9, 10) == pytest.approx(0.5)
    assert fisher_one_sided(10, 10, 10, 10) == 1.0
    assert fisher_one_sided(0, 0, 0, 0) == 1.0
    # 10/10 vs 5/10: hypergeometric tail, checked by hand (C(15,5)*C(5,5)/C(20,10))
    assert fisher_one_sided(10, 10, 5, 10) == pytest.approx(3003 / 184756)


def with_samples(
    report: Report, *, costs: list[float] | None = None, durations: list[float] | None = None
) -> Report:
    """``report`` with these per-run costs and durations, and the summary they make."""
    results = [
        r.model_copy(
            update={
                "cost_usd": costs[i] if costs else r.cost_usd,
                "duration_s": durations[i] if durations else r.duration_s,
            }
        )
        for i, r in enumerate(report.results)
    ]
    summary = report.summary.model_copy(
        update={
            "cost_per_run_usd": distribution([r.cost_usd for r in results]),
            "duration_s": distribution([r.duration_s for r in results]),
        }
    )
    return report.model_copy(update={"results": results, "summary": summary})


def runs(n: int = 40, **samples: list[float]) -> Report:
    return with_samples(make_report(n), **samples)


def noisy_durations(seed: int, n: int = 40) -> list[float]:
    """Wall times of fast runs on a loaded machine: mostly 30-50 ms, now and then a stall."""
    rng = random.Random(seed)
    return [
        rng.uniform(0.1, 0.2) if rng.random() < 0.08 else rng.uniform(0.03, 0.05) for _ in range(n)
    ]


def test_the_same_candidate_twice_passes_despite_latency_noise() -> None:
    # The p95 rises from 0.05 s to 0.17 s by scheduling noise alone, as between two runs
    # of one bank on a busy machine.
    baseline, candidate = runs(durations=noisy_durations(2)), runs(durations=noisy_durations(5))
    before, after = baseline.summary.duration_s.p95, candidate.summary.duration_s.p95
    assert after > 2 * before
    assert failed_rules(baseline, candidate) == []
    # Without the absolute floor the significance test alone still calls it noise.
    assert failed_rules(baseline, candidate, duration_min_rise_s=0) == []
    row = next(r for r in compare(baseline, candidate, GateRules()).rows if r.name.startswith("d"))
    assert "floor" in row.explanation


def test_a_slower_candidate_fails() -> None:
    baseline = runs(durations=[1.0 + i / 100 for i in range(40)])
    candidate = runs(durations=[2.0 + i / 100 for i in range(40)])
    assert failed_rules(baseline, candidate) == ["duration_s.p95"]
    assert failed_rules(baseline, candidate, duration_p95_rise=1.5) == []
    assert failed_rules(baseline, candidate, duration_min_rise_s=1.5) == []


def test_a_slower_tail_fails_though_most_runs_are_unchanged() -> None:
    base = [1.0 + i / 100 for i in range(40)]
    slow_tail = [d if i % 5 else d + 4.0 for i, d in enumerate(base)]  # one run in five
    assert failed_rules(runs(durations=base), runs(durations=slow_tail)) == ["duration_s.p95"]
    # One slow run more is not a trend.
    one_slow = [*base[:-1], 9.0]
    assert failed_rules(runs(durations=base), runs(durations=one_slow)) == []


def test_a_rise_below_the_absolute_floor_passes() -> None:
    baseline = runs(durations=[0.10 + i / 1000 for i in range(40)])
    candidate = runs(durations=[0.30 + i / 1000 for i in range(40)])  # tripled, +0.2 s
    assert failed_rules(baseline, candidate) == []
    assert failed_rules(baseline, candidate, duration_min_rise_s=0.1) == ["duration_s.p95"]


def test_a_cost_rise_fails_and_a_small_one_passes() -> None:
    base = [0.010 * (1 + (i % 4) / 10) for i in range(40)]
    baseline = runs(costs=base)
    assert failed_rules(baseline, runs(costs=[c * 1.3 for c in base])) == [
        "cost_per_run_usd.mean",
        "cost_per_run_usd.p95",
    ]
    assert failed_rules(baseline, runs(costs=[c * 1.05 for c in base])) == []  # within +10%
    # A 30% rise of a tiny cost is under the default floor of a tenth of a cent.
    tiny = [c / 100 for c in base]
    assert failed_rules(runs(costs=tiny), runs(costs=[c * 1.3 for c in tiny])) == []


def test_a_rise_from_zero_cost_fails() -> None:
    failures = failed_rules(runs(costs=[0.0] * 40), runs(costs=[0.01] * 40))
    assert failures == ["cost_per_run_usd.mean", "cost_per_run_usd.p95"]


def test_mann_whitney_matches_known_values() -> None:
    # U = 9 of 9: z = (9 - 4.5 - 0.5) / sqrt(5.25); the same as SciPy's asymptotic method.
    assert mann_whitney_greater([1, 2, 3], [4, 5, 6]) == pytest.approx(0.04043, abs=1e-4)
    assert mann_whitney_greater([4, 5, 6], [1, 2, 3]) > 0.95
    assert mann_whitney_greater([1, 1, 1], [1, 1, 1]) == 1.0
    assert mann_whitney_greater([], [1.0]) == 1.0


def test_per_label_success_drop_is_optional() -> None:
    baseline, candidate = make_report(200), make_report(200, failed=20)
    assert "success_rate[lookup]" not in failed_rules(baseline, candidate)
    assert "success_rate[lookup]" in failed_rules(baseline, candidate, by_label=True)


def test_manifest_changes_are_listed() -> None:
    candidate = make_report(
        manifest={
            "policy_version": "support@def456",
            "model_ids": ["openai:gpt-4o-mini"],
            "created_at": "2026-11-25T00:00:00Z",
        }
    )
    changes = compare(make_report(), candidate, GateRules()).manifest_changes
    assert [str(c) for c in changes] == [
        "policy_version: support@abc123 → support@def456",
        "model_ids: simulated → openai:gpt-4o-mini",
    ]


def test_rules_load_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text("alpha: 0.01\ncost_rise: 0.2\nby_label: true\n")
    assert load_rules(path) == GateRules(alpha=0.01, cost_rise=0.2, by_label=True)
    path.write_text("")
    assert load_rules(path) == GateRules()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alpha: 2\n", "alpha"),
        ("cost_rise: lots\n", "cost_rise"),
        ("max_cost: 1\n", "max_cost"),
        ("alpha: [\n", "not valid YAML"),
    ],
)
def test_bad_rules_name_the_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)
    assert info.value.exit_code == 2


def test_missing_rules_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"gate\.yaml"):
        load_rules(tmp_path / "gate.yaml")


def test_reports_load_and_bad_ones_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text(make_report().model_dump_json())
    assert load_report(path) == make_report()
    path.write_text('{"suite": "x"}')
    with pytest.raises(ConfigError, match=r"report\.json: not a valid eval report"):
        load_report(path)
    with pytest.raises(ConfigError, match=r"missing\.json"):
        load_report(tmp_path / "missing.json")


# The CLI: `proctor eval show` and `proctor eval gate`.


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    return CliRunner()


def write(path: Path, report: Report) -> Path:
    path.write_text(report.model_dump_json())
    return path


def test_cli_gate_passes_identical_reports(tmp_path: Path, wide: CliRunner) -> None:
    a = write(tmp_path / "a.json", make_report())
    b = write(tmp_path / "b.json", make_report())
    result = wide.invoke(eval_app, ["gate", "--baseline", str(a), "--candidate", str(b)])
    assert result.exit_code == 0, result.output
    assert "success_rate" in result.stdout
    assert "Fisher's exact test on runs above the baseline's p95, at alpha = 0.05" in result.stdout
    assert "Manifest: unchanged." in result.stdout
    assert "Pass: no regression." in result.stdout


def test_cli_gate_exits_1_on_a_regression(tmp_path: Path, wide: CliRunner) -> None:
    a = write(tmp_path / "a.json", make_report())
    b = write(
        tmp_path / "b.json",
        make_report(incidents={"data_exposure": 2}, manifest={"prompt_hash": "p2"}),
    )
    rules = tmp_path / "gate.yaml"
    rules.write_text("alpha: 0.01\n")
    args = ["gate", "--baseline", str(a), "--candidate", str(b), "--rules", str(rules)]
    result = wide.invoke(eval_app, args)
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.stdout
    assert "Regression: incidents.data_exposure." in result.stdout
    assert "prompt_hash: p1 → p2" in result.stdout
    assert "alpha = 0.01" in result.stdout


def test_cli_gate_names_a_bad_report(tmp_path: Path, wide: CliRunner) -> None:
    a = write(tmp_path / "a.json", make_report())
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for candidate in (bad, tmp_path / "missing.json"):
        args = ["gate", "--baseline", str(a), "--candidate", str(candidate)]
        result = wide.invoke(eval_app, args)
        assert result.exit_code == 2
        assert candidate.name in result.stderr


def test_cli_show(tmp_path: Path, wide: CliRunner) -> None:
    path = write(tmp_path / "r.json", make_report(20, failed=2, failure_text="[bold]no refund"))
    result = wide.invoke(eval_app, ["show", str(path)])
    assert result.exit_code == 0, result.output
    assert "90.0%" in result.stdout
    assert "By label" in result.stdout
    assert "Failing scenarios (2)" in result.stdout
    assert "[bold]no refund" in result.stdout  # shown as text, not markup
    assert "run_0001" in result.stdout
    assert wide.invoke(eval_app, ["show", str(tmp_path / "nope.json")]).exit_code == 2
