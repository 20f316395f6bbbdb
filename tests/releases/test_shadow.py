"""Shadow runs execute no write, reach no approver, stay out of the live runs; a dry-run
bundle decides beside the live one and never counts."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from proctor.releases.reports import dry_run_report, shadow_report
from proctor.runs.views import list_runs
from proctor.runtime import Runtime
from proctor.states import ApprovalStatus
from proctor.store import Store
from proctor.store.tables import approvals, runs

from .conftest import Deployment, spec

TwoReleases = Callable[[], tuple[Runtime, str, str]]


async def test_a_shadow_run_lists_the_write_it_would_make_and_makes_none(
    deployment: Deployment, two_releases: TwoReleases
) -> None:
    rt, _stable, candidate = two_releases()
    rt.releases.shadow(candidate, 1.0, "ann")
    run = await rt.start_run(spec())
    run.trust("refund 500.00 for order A-1")
    await run.call("lookup", {"order_id": "A-1"})
    held = await run.call("refund", {"order_id": "A-1", "amount": "500.00"})
    assert held.status.value == "awaiting_approval"  # live: the stable bundle asks a person

    # The read ran for both runs (it is side-effect free); the write ran for neither.
    assert deployment.counters.calls == {"lookup": 2, "refund": 0}
    with rt.store.read() as conn:
        report = shadow_report(conn, candidate)
        live_runs = list_runs(conn)
        pending = conn.execute(
            sa.select(approvals.c.run_id).where(approvals.c.status == ApprovalStatus.PENDING.value)
        ).all()
    assert report.would_execute == [("refund", {"order_id": "A-1", "amount": "500.00"}, run.id)]
    assert report.verdicts["different_decisions"] == 1
    assert report.incidents == {"policy_breach": 1}
    pair = report.pairs[0]
    assert [c["candidate"]["status"] for c in pair.calls] == ["executed", "would_execute"]
    # Only the live run is a live run, and only its approval request reaches a person.
    assert [r.id for r in live_runs] == [run.id]
    assert [p.run_id for p in pending] == [run.id]
    # The shadow run is kept in the shadow store, with its own journal.
    shadow = Store(rt.settings.shadow_database_url, migrate=False)
    try:
        with shadow.read() as conn:
            kept = conn.execute(sa.select(runs.c.id, runs.c.state)).all()
    finally:
        shadow.close()
    assert [k.id for k in kept] == [pair.shadow_run]


async def test_a_write_both_allow_runs_once_not_twice(
    deployment: Deployment, two_releases: TwoReleases
) -> None:
    rt, _stable, candidate = two_releases()
    rt.releases.shadow(candidate, 1.0, "ann")
    run = await rt.start_run(spec())
    run.trust("refund 20.00 for order A-2")
    done = await run.call("refund", {"order_id": "A-2", "amount": "20.00"})
    assert done.status.value == "executed"
    await run.complete()
    assert deployment.counters.calls["refund"] == 1
    with rt.store.read() as conn:
        report = shadow_report(conn, candidate)
    # The candidate decided on the world the live call saw, not the one after it: the
    # order had no refund yet ("refund-once" would have denied it afterwards).
    assert report.pairs[0].calls[0]["candidate"] == {"decision": "allow", "status": "would_execute"}
    assert report.verdicts == {
        "same_actions": 1,
        "different_actions": 0,
        "different_decisions": 0,
    }
    assert report.pairs[0].candidate["state"] == "completed"


async def test_the_shadow_samples_the_fraction_asked(two_releases: TwoReleases) -> None:
    rt, _stable, candidate = two_releases()
    rt.releases.shadow(candidate, 0.25, "ann")
    for i in range(80):
        run = await rt.start_run(spec(f"cust-{i}"))
        await run.complete()
    with rt.store.read() as conn:
        shadowed = len(shadow_report(conn, candidate).pairs)
    assert 8 <= shadowed <= 32


async def test_a_dry_run_decides_beside_the_live_bundle_and_never_counts(
    deployment: Deployment, two_releases: TwoReleases
) -> None:
    rt, _stable, candidate = two_releases()
    rt.releases.dry_run(candidate, "ann")
    run = await rt.start_run(spec())
    await run.call("lookup", {"order_id": "A-1"})
    held = await run.call("refund", {"order_id": "A-1", "amount": "500.00"})
    assert held.status.value == "awaiting_approval"  # the live bundle decided
    assert deployment.counters.calls["refund"] == 0
    with rt.store.read() as conn:
        report = dry_run_report(conn, candidate)
    assert (report.decisions, report.runs, report.changed) == (2, 1, 1)
    assert report.transitions == {("require_approval", "allow"): 1}
    assert report.by_tool == {"refund": {("require_approval", "allow"): 1}}
    assert report.examples[0][5] == ["small-refund"]
