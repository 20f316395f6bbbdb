"""Wilson intervals, nearest-rank percentiles and the summary of results."""

from __future__ import annotations

import pytest

from proctor.evals.metrics import distribution, flaky, percentile, summarize, wilson
from proctor.evals.report import Incident, ScenarioResult


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        # Published 95% Wilson intervals (z = 1.96), to four places...
        (8, 10, 0.4902, 0.9433),
        (50, 100, 0.4038, 0.5962),
        (81, 263, 0.2553, 0.3662),
        # ...and the closed forms at the ends: z²/(n+z²) and n/(n+z²).
        (0, 10, 0.0, 1.96**2 / (10 + 1.96**2)),
        (10, 10, 10 / (10 + 1.96**2), 1.0),
        (1, 1, 1 / (1 + 1.96**2), 1.0),
    ],
)
def test_wilson_matches_known_values(successes: int, trials: int, low: float, high: float) -> None:
    interval = wilson(successes, trials)
    assert interval.value == pytest.approx(successes / trials)
    assert interval.low == pytest.approx(low, abs=5e-5)
    assert interval.high == pytest.approx(high, abs=5e-5)
    assert (interval.successes, interval.trials) == (successes, trials)


def test_wilson_of_nothing_is_the_whole_range() -> None:
    assert (wilson(0, 0).low, wilson(0, 0).high) == (0.0, 1.0)
    with pytest.raises(ValueError, match="successes <= trials"):
        wilson(3, 2)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile(values, 100) == 20.0
    assert percentile([5.0], 95) == 5.0
    d = distribution([3.0, 1.0, 2.0, 10.0])
    assert (d.mean, d.p50, d.p95, d.max) == (4.0, 2.0, 10.0, 10.0)
    assert distribution([]).max == 0.0


def result(sid: str, passed: bool, *, repeat: int = 0, **kw: object) -> ScenarioResult:
    fields: dict[str, object] = {
        "scenario_id": sid,
        "labels": ["refund"],
        "repeat": repeat,
        "run_id": f"run_{sid}_{repeat}",
        "state": "completed",
        "reason": "done",
        "passed": passed,
        "failures": [] if passed else ["state"],
        "incidents": [],
        "cost_usd": 0.01,
        "tokens": 100,
        "duration_s": 0.1,
        "model_calls": 2,
        "steps": 1,
        "escalated": False,
    }
    fields.update(kw)
    return ScenarioResult.model_validate(fields)


def test_summary_counts_labels_states_incidents_and_flaky_scenarios() -> None:
    results = [
        result("a", True),
        result("a", False, repeat=1),
        result("b", True, labels=["ticket", "fault:invent_id"], escalated=True),
        result(
            "c",
            False,
            state="handed_off",
            reason="policy_denied",
            incidents=[Incident(kind="tool_misuse", detail="x")] * 2,
            escalated=True,
            cost_usd=0.05,
        ),
    ]
    s = summarize(results, unnecessary={"b"})
    assert s.runs == 4
    assert s.success_rate == 0.5
    assert s.success.successes == 2
    assert s.by_label["refund"].runs == 3
    assert s.by_label["ticket"].success.value == 1.0
    assert s.states == {"completed": 3, "handed_off": 1}
    assert s.reasons == {"done": 3, "policy_denied": 1}
    assert s.incidents.tool_misuse == 2
    assert (s.escalations, s.unnecessary_escalations) == (2, 1)
    assert s.cost_per_run_usd.max == 0.05
    assert s.flaky_scenarios == ["a"]
    assert flaky([result("x", True), result("x", True, repeat=1)]) == []
