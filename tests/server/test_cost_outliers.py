"""Cost outliers: runs that cost far more than the other runs of their workflow."""

from __future__ import annotations

from decimal import Decimal

from proctor.server.queries import cost_outliers

NANO = 10**9


def _runs(
    workflow: str, costs_usd: list[float], tenant: str = "acme"
) -> list[tuple[str, str, str, int]]:
    return [(f"{workflow}-{i}", tenant, workflow, int(c * NANO)) for i, c in enumerate(costs_usd)]


def test_a_run_far_above_its_workflow_is_an_outlier() -> None:
    usual = [0.010, 0.011, 0.009, 0.012, 0.010, 0.011, 0.010, 0.009, 0.013]
    found = cost_outliers(_runs("support", [*usual, 0.150]))
    assert [o.run_id for o in found] == ["support-9"]
    [o] = found
    assert o.cost_usd == Decimal("0.15")
    assert o.median_usd == Decimal("0.0105")
    assert o.score > 3.5


def test_workflows_are_judged_apart() -> None:
    # A billing run at 0.15 is usual for billing; the same cost in support is not.
    billing = _runs("billing", [0.14, 0.15, 0.16, 0.15, 0.14, 0.16, 0.15, 0.15])
    support = _runs("support", [0.01] * 8 + [0.15])
    assert [o.run_id for o in cost_outliers(billing + support)] == ["support-8"]


def test_too_few_runs_say_nothing() -> None:
    assert cost_outliers(_runs("support", [0.01, 0.01, 0.5])) == []


def test_identical_costs_fall_back_to_twice_the_median() -> None:
    found = cost_outliers(_runs("support", [0.01] * 8 + [0.019, 0.03]))
    assert [o.run_id for o in found] == ["support-9"]
