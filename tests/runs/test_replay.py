"""Resuming never repeats a side effect: re-run code replays from the journal."""

from __future__ import annotations

import pytest

from proctor import CallStatus, ReplayMismatch, RunBusy, RunTerminated
from tests.shop import Env


async def agent(run: object) -> list[CallStatus]:
    calls = [
        ("lookup", {"order_id": "A-1"}),
        ("refund", {"order_id": "A-1", "amount": "10.00"}),
        ("refund", {"order_id": "A-1", "amount": "9999.00"}),
    ]
    return [(await run.call(t, a)).status for t, a in calls]  # type: ignore[attr-defined]


async def test_rerunning_the_agent_after_resume_replays_and_executes_nothing(env: Env) -> None:
    first = await env.runtime().start_run(env.spec())
    assert await agent(first) == [CallStatus.EXECUTED, CallStatus.EXECUTED, CallStatus.DENIED]
    env.clock.advance(31)  # the first worker's lease runs out

    resumed = await env.runtime().resume(first.id)
    outcomes = [
        await resumed.call("lookup", {"order_id": "A-1"}),
        await resumed.call("refund", {"order_id": "A-1", "amount": "10.00"}),
    ]
    assert all(o.replayed for o in outcomes)
    assert outcomes[1].result == {
        "refunded": "10.00",
        "order_id": "A-1",
        "scopes": ["payments:refund"],
    }
    assert len(env.ledger.effects("refund")) == 1
    with pytest.raises(ReplayMismatch, match="journal holds a call to refund"):
        await resumed.call("refund", {"order_id": "A-1", "amount": "11.00"})


async def test_a_live_worker_keeps_its_run(env: Env) -> None:
    run = await env.runtime().start_run(env.spec())
    with pytest.raises(RunBusy, match="held by worker"):
        await env.runtime().resume(run.id)


async def test_a_terminal_run_never_resumes(env: Env) -> None:
    run = await env.runtime().start_run(env.spec())
    await run.complete()
    with pytest.raises(RunTerminated, match="already ended completed"):
        await env.runtime().resume(run.id)
    with pytest.raises(RunTerminated):
        await run.complete()


async def test_a_run_stored_by_a_newer_proctor_is_not_taken_over(env: Env) -> None:
    import sqlalchemy as sa

    from proctor.errors import RunSchemaTooNew
    from proctor.store.tables import runs

    rt = env.runtime()
    run = await rt.start_run(env.spec())
    await run.release()
    with rt.store.write() as conn:
        conn.execute(sa.update(runs).where(runs.c.id == run.id).values(schema_version=99))
    with pytest.raises(RunSchemaTooNew, match="schema version 99"):
        await env.runtime().resume(run.id)
