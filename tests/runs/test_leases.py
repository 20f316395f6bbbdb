"""A worker holds a run under a lease with a fencing token: a worker whose run was taken
over writes nothing more, and what a dead worker held is released after its lease."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from proctor import CallStatus, RunBusy, RunState, RunTerminated
from proctor.budgets import daily_scopes
from proctor.errors import LeaseLost
from proctor.store.tables import audit_entries, budget_usage, runs, steps
from tests.shop import Env

SMALL = {"order_id": "A-1", "amount": "20.00"}
LEASE_S = 30  # the shop's settings


def _row(env: Env, run_id: str) -> sa.Row[tuple[object, ...]]:
    with env.runtimes[0].store.read() as conn:
        return conn.execute(sa.select(runs).where(runs.c.id == run_id)).one()


async def test_a_worker_whose_run_was_taken_over_writes_nothing_more(env: Env) -> None:
    first = env.runtime()
    run = await first.start_run(env.spec())
    await run.call("lookup", {"order_id": "A-1"})
    env.clock.advance(LEASE_S + 1)  # the first worker stalls past its lease

    second = env.runtime()
    taken = await second.resume(run.id)
    assert _row(env, run.id).lease_generation == 2

    with pytest.raises(LeaseLost, match="taken over"):
        await run.call("refund", SMALL)
    with pytest.raises(LeaseLost):
        await run.complete()
    assert env.ledger.effects("refund") == []
    with first.store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(steps)).scalar_one() == 1

    outcome = await taken.call("lookup", {"order_id": "A-1"})  # replayed from the journal
    assert outcome.replayed
    assert (await taken.call("refund", SMALL)).status is CallStatus.EXECUTED
    await taken.complete()
    assert len(env.ledger.effects("refund")) == 1
    assert first.verify_audit().ok


async def test_a_live_lease_cannot_be_taken_and_an_ended_run_never_runs_again(env: Env) -> None:
    run = await env.runtime().start_run(env.spec())
    with pytest.raises(RunBusy):
        await env.runtime().resume(run.id)
    await run.complete()
    env.clock.advance(LEASE_S + 1)
    with pytest.raises(RunTerminated):
        await env.runtime().resume(run.id)


async def test_a_worker_renews_its_lease_as_it_records(env: Env) -> None:
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    for _ in range(4):  # two minutes of work, each call within half a lease of the last
        env.clock.advance(LEASE_S / 2)
        await run.call("lookup", {"order_id": "A-1"})
    with pytest.raises(RunBusy):
        await env.runtime().resume(run.id)
    assert _row(env, run.id).lease_generation == 1


async def test_recovery_releases_a_dead_workers_run_and_its_model_spend(env: Env) -> None:
    dead = env.runtime()
    run = await dead.start_run(env.spec())
    budgets = dead.policy.settings.budgets
    scopes = daily_scopes("acme", "support", budgets.tenant, budgets.workflow)
    day = env.clock.now().date().isoformat()
    # The worker dies in the middle of a model call: its worst case stays reserved.
    dead.ledger.reserve(run.id, scopes, day, Decimal("0.50"), 1000)

    survivor = env.runtime()
    early = survivor.recover_expired()
    assert (early.runs, early.holds) == ((), 0)  # its lease is still live

    env.clock.advance(LEASE_S + 1)
    recovered = survivor.recover_expired()
    assert recovered.runs == (run.id,)
    assert recovered.holds == 1
    row = _row(env, run.id)
    assert (row.state, row.owner, row.lease_generation) == (RunState.RUNNING.value, None, 2)
    with survivor.store.read() as conn:
        held = conn.execute(
            sa.select(budget_usage.c.nano_usd_reserved, budget_usage.c.tokens_reserved)
        ).all()
        kinds = [
            k
            for (k,) in conn.execute(
                sa.select(audit_entries.c.kind).where(audit_entries.c.run_id == run.id)
            )
        ]
    assert set(held) == {(0, 0)}
    assert kinds[-1] == "run.reclaimed"
    assert survivor.recover_expired().runs == ()  # once

    with pytest.raises(LeaseLost):  # the dead worker, had it only stalled
        await run.call("lookup", {"order_id": "A-1"})
    resumed = await survivor.resume(run.id)
    assert (await resumed.call("refund", SMALL)).status is CallStatus.EXECUTED
    await resumed.complete()
    assert survivor.verify_audit().ok


async def test_a_model_call_that_outlives_recovery_is_charged_once(env: Env) -> None:
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    budgets = rt.policy.settings.budgets
    scopes = daily_scopes("acme", "support", budgets.tenant, budgets.workflow)
    day = env.clock.now().date().isoformat()
    held = rt.ledger.reserve(run.id, scopes, day, Decimal("0.50"), 1000)
    env.clock.advance(LEASE_S + 1)
    assert rt.recover_expired().holds == 1
    with rt.store.write() as conn:  # the answer arrives after all
        rt.ledger.settle(conn, held, Decimal("0.01"), 100)
    with rt.store.read() as conn:
        rows = conn.execute(
            sa.select(budget_usage.c.nano_usd_reserved, budget_usage.c.tokens_reserved)
        ).all()
    assert set(rows) == {(0, 0)}  # the hold was given back once, not twice
    assert rt.ledger.usage("tenant:acme", day) == (Decimal("0.01"), 100)
