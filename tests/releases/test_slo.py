"""The SLO monitor rolls a canary back on a forbidden incident and on a significant drop of
its success rate, and leaves it alone on noise."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from proctor.releases.registry import transitions
from proctor.runs.views import RunFilter, count_runs
from proctor.runtime import Runtime
from proctor.states import Reason

from .conftest import Deployment, spec, write_bundle

TwoReleases = Callable[[], tuple[Runtime, str, str]]


async def _traffic(rt: Runtime, runs: int, succeeds: Callable[[str | None], bool]) -> None:
    """``runs`` runs from as many requesters, each ending as ``succeeds`` says for its
    release (the agent's outcome, played by the test)."""
    for i in range(runs):
        run = await rt.start_run(spec(f"cust-{i}"))
        await run.call("lookup", {"order_id": f"A-{i}"})
        if succeeds(run.release_id):
            await run.complete()
        else:
            await run.fail_safe(Reason.TOOL_ERROR, "the agent gave up")


async def test_a_forbidden_incident_rolls_the_canary_back_at_once(
    two_releases: TwoReleases,
) -> None:
    rt, stable, candidate = two_releases()
    rt.releases.canary(candidate, 100, "ann")
    run = await rt.start_run(spec())
    # The candidate lets a $500 refund run that the stable bundle holds for a supervisor.
    outcome = await run.call("refund", {"order_id": "A-1", "amount": "500.00"})
    assert outcome.status.value == "executed"
    assert rt.releases.channels().canary is not None  # judged when the run ends
    await run.complete()

    assert rt.releases.channels().canary is None
    with rt.store.read() as conn:
        breach = transitions(conn, "release.slo_breached")
        moved = transitions(conn, "release.moved")[-1].payload
    assert breach[0].payload["failures"][0]["objective"] == "incidents.policy_breach"
    assert breach[0].payload["failures"][0]["canary"] == 1
    assert (moved["action"], moved["actor"], moved["previous"]) == (
        "rollback",
        "slo-monitor",
        candidate,
    )
    nxt = await rt.start_run(spec())
    assert nxt.release_id == stable


@pytest.mark.slow
@pytest.mark.timeout(120)  # enough runs for the test to be significant
async def test_a_significant_success_drop_rolls_the_canary_back(
    two_releases: TwoReleases,
) -> None:
    rt, stable, candidate = two_releases()
    rt.releases.canary(candidate, 50, "ann")
    rng = random.Random(7)
    # Stable succeeds 95% of the time, the candidate 50%.
    await _traffic(rt, 120, lambda release: rng.random() < (0.95 if release == stable else 0.5))
    assert rt.releases.channels().canary is None
    with rt.store.read() as conn:
        failures = transitions(conn, "release.slo_breached")[0].payload["failures"]
        on_candidate = count_runs(conn, RunFilter(release=candidate))
    assert [f["objective"] for f in failures] == ["success_rate"]
    assert "significant drop" in failures[0]["explanation"]
    # Rolled back as soon as both had their minimum of runs and the drop was significant:
    # far fewer than half of the 120 runs went to the candidate.
    assert 20 <= on_candidate < 60


@pytest.mark.slow
@pytest.mark.timeout(120)  # enough runs of each for every objective to be judged
async def test_noise_never_rolls_back_a_canary_that_behaves_as_stable(
    deployment: Deployment,
) -> None:
    rt = deployment.runtime()
    stable = deployment.release(rt, deployment.stable_bundle, "as it runs today")
    same = deployment.release(rt, deployment.stable_bundle, "the same, rebuilt")
    rt.releases.promote(stable, "ann")
    rt.releases.canary(same, 50, "ann")
    rng = random.Random(11)
    await _traffic(rt, 200, lambda release: rng.random() < 0.85)
    verdict = rt.monitor.check()
    assert verdict is not None
    assert not verdict.breached
    assert rt.releases.channels().canary is not None
    success = next(r for r in verdict.rows if r.objective == "success_rate")
    assert success.status == "pass"
    assert min(success.samples) >= 20


async def test_too_few_runs_are_waited_for_not_judged(two_releases: TwoReleases) -> None:
    rt, stable, candidate = two_releases()
    rt.releases.canary(candidate, 50, "ann")
    await _traffic(rt, 10, lambda release: release == stable)
    verdict = rt.monitor.check()
    assert verdict is not None
    assert not verdict.breached
    success = next(r for r in verdict.rows if r.objective == "success_rate")
    assert success.status == "waiting"


async def test_a_forbidden_incident_is_judged_at_once_between_periodic_checks(
    deployment: Deployment,
) -> None:
    slow = deployment.stable_bundle.parent / "slow"
    write_bundle(slow, "shop-v1-slow", "100.00")
    text = (slow / "proctor.yaml").read_text().replace("check_every_s: 0", "check_every_s: 3600")
    (slow / "proctor.yaml").write_text(text)
    rt = deployment.runtime()
    stable = deployment.release(rt, slow, "checks hourly")
    candidate = deployment.release(rt, deployment.weaker_bundle, "bigger refunds unattended")
    rt.releases.promote(stable, "ann")
    rt.releases.canary(candidate, 100, "ann")
    rt.monitor.check()  # the hourly check is not due for an hour from here
    quiet = await rt.start_run(spec("cust-1"))
    await quiet.complete()
    assert rt.releases.channels().canary is not None
    loud = await rt.start_run(spec("cust-2"))
    await loud.call("refund", {"order_id": "A-1", "amount": "500.00"})
    await loud.complete()
    assert rt.releases.channels().canary is None
