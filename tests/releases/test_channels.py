"""Releases and their channels: sticky canary routing, promotion, rollback by hand, runs
finishing under their own release, and every transition in the audit log."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from proctor.errors import ConfigError
from proctor.releases.registry import transitions
from proctor.releases.serving import canary_bucket, on_canary
from proctor.runs.views import RunFilter, list_runs
from proctor.runtime import Runtime
from proctor.states import RunState

from .conftest import Deployment, spec

TwoReleases = Callable[[], tuple[Runtime, str, str]]


def test_canary_assignment_is_sticky_and_grows_by_adding_requesters() -> None:
    requesters = [f"cust-{i}" for i in range(2000)]
    at_20 = {r for r in requesters if on_canary(spec(r), "r2", 0.20)}
    assert 0.17 < len(at_20) / len(requesters) < 0.23
    # The same requester always lands on the same side of the same canary.
    assert all(on_canary(spec(r), "r2", 0.20) for r in at_20)
    # Raising the share keeps everyone already on the canary there.
    at_50 = {r for r in requesters if on_canary(spec(r), "r2", 0.50)}
    assert at_20 < at_50
    # Another tenant's requester of the same name is placed on their own.
    assert canary_bucket("acme", "cust-1", "r2") != canary_bucket("globex", "cust-1", "r2")


async def test_new_runs_record_the_release_they_ran_under(two_releases: TwoReleases) -> None:
    rt, _stable, candidate = two_releases()
    rt.releases.canary(candidate, 30, "ann")
    placed = {}
    for i in range(60):
        for _ in range(2):  # the same requester twice: the same release twice
            run = await rt.start_run(spec(f"cust-{i}"))
            await run.complete()
            placed.setdefault(f"cust-{i}", set()).add(run.release_id)
    assert all(len(releases) == 1 for releases in placed.values())
    on_candidate = [r for r, releases in placed.items() if releases == {candidate}]
    assert 0 < len(on_candidate) < 60
    with rt.store.read() as conn:
        listed = list_runs(conn, RunFilter(release=candidate))
    assert {r.release for r in listed} == {candidate}
    assert len(listed) == 2 * len(on_candidate)
    assert all(r.bundle_version.startswith("shop-v2@") for r in listed)


async def test_in_flight_canary_runs_finish_under_their_own_release(
    deployment: Deployment, two_releases: TwoReleases
) -> None:
    rt, stable, candidate = two_releases()
    rt.releases.canary(candidate, 100, "ann")
    run = await rt.start_run(spec())
    assert run.release_id == candidate
    rt.releases.rollback("ann", "by hand")

    # New runs go to stable at once ...
    fresh = await rt.start_run(spec())
    assert fresh.release_id == stable
    held = await fresh.call("refund", {"order_id": "A-1", "amount": "500.00"})
    assert held.status.value == "awaiting_approval"
    # ... while the canary's run goes on under the candidate's bundle, here and in
    # another worker that takes it over.
    await run.release()
    other = deployment.runtime()
    resumed = await other.resume(run.id)
    outcome = await resumed.call("refund", {"order_id": "A-1", "amount": "500.00"})
    assert outcome.status.value == "executed"
    assert outcome.decision is not None
    assert outcome.decision.bundle_version.startswith("shop-v2@")
    assert resumed.release_id == candidate
    await resumed.complete()


async def test_every_transition_is_an_audit_entry_and_the_log_verifies(
    two_releases: TwoReleases,
) -> None:
    rt, stable, candidate = two_releases()
    rt.releases.shadow(candidate, 0.5, "ann", "try it")
    rt.releases.stop("shadow", "ann")
    rt.releases.dry_run(candidate, "ann")
    rt.releases.stop("dry_run", "ann")
    rt.releases.canary(candidate, 10, "ann")
    rt.releases.rollback("bob", "a customer complained")
    rt.releases.promote(candidate, "ann")
    rt.releases.rollback("bob", "refunds too loose", to=stable)
    with rt.store.read() as conn:
        logged = [
            (t.kind, t.payload.get("action"), t.payload.get("actor")) for t in transitions(conn)
        ]
    assert logged == [
        ("release.created", None, "ann"),
        ("release.created", None, "ann"),
        ("release.moved", "promote", "ann"),
        ("release.moved", "shadow", "ann"),
        ("release.moved", "stop", "ann"),
        ("release.moved", "dry_run", "ann"),
        ("release.moved", "stop", "ann"),
        ("release.moved", "canary", "ann"),
        ("release.moved", "rollback", "bob"),
        ("release.moved", "promote", "ann"),
        ("release.moved", "rollback", "bob"),
    ]
    assert rt.releases.channels().stable.release == stable  # type: ignore[union-attr]
    assert rt.verify_audit().ok


def test_bad_moves_say_what_to_do(two_releases: TwoReleases, deployment: Deployment) -> None:
    rt, stable, candidate = two_releases()
    with pytest.raises(ConfigError, match="no canary to roll back"):
        rt.releases.rollback("ann", "nothing there")
    with pytest.raises(ConfigError, match="is the stable release"):
        rt.releases.canary(stable, 10, "ann")
    with pytest.raises(ConfigError, match="--percent must be above 0"):
        rt.releases.canary(candidate, 0, "ann")
    with pytest.raises(ConfigError, match="no release 'r9'"):
        rt.releases.promote("r9", "ann")
    with pytest.raises(ConfigError, match="needs a note"):
        deployment.release(rt, deployment.weaker_bundle, "   ")


async def test_runs_before_any_release_keep_the_runtimes_bundle(deployment: Deployment) -> None:
    rt = deployment.runtime()
    run = await rt.start_run(spec())
    assert run.release_id is None
    assert run.policy is rt.policy
    await run.complete()
    assert run.state is RunState.COMPLETED
