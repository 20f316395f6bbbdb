"""Workers claim ready agent runs from the shared store: each run by one worker only."""

from __future__ import annotations

import asyncio
from collections import Counter

import proctor
from proctor.runtime import Runtime
from proctor.states import RunState
from proctor.worker import Worker
from tests.shop import Env

CONVERSATION = [{"role": "user", "content": "look up A-1"}]


async def _queue(rt: Runtime, env: Env, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        run = await rt.start_run(env.spec())
        run.save_conversation(CONVERSATION)
        await run.release()
        ids.append(run.id)
    return ids


async def test_workers_on_one_store_drive_each_queued_run_once(env: Env) -> None:
    first, second, third = env.runtime(), env.runtime(), env.runtime()
    ids = await _queue(first, env, 12)
    driven: list[tuple[str, str]] = []

    def driver(rt: Runtime) -> Worker:
        async def drive(run_id: str) -> None:
            run = await rt.resume(run_id)
            driven.append((run_id, rt.services.lease.worker_id))
            await asyncio.sleep(0.01)  # the others claim meanwhile
            await run.call("lookup", {"order_id": "A-1"})
            await run.complete()

        return Worker(rt, drive, concurrency=3, poll_s=0.01)

    workers = [driver(rt) for rt in (first, second, third)]
    await asyncio.gather(*(w.serve(until_idle=True) for w in workers))
    assert Counter(run_id for run_id, _ in driven) == Counter(ids)  # each once, none left
    assert sum(w.driven for w in workers) == 12
    assert len({worker for _, worker in driven}) > 1  # the work was shared
    with first.store.read() as conn:
        for run_id in ids:
            run = proctor.runs.views.load_run(conn, run_id, history=False)
            assert run.state is RunState.COMPLETED
    assert first.verify_audit().ok


async def test_a_run_held_or_awaiting_approval_is_not_claimed_until_approved(env: Env) -> None:
    rt, other = env.runtime(), env.runtime()
    held = await rt.start_run(env.spec())
    held.save_conversation(CONVERSATION)  # an agent run its worker still holds
    waiting = await rt.start_run(env.spec())
    waiting.save_conversation(CONVERSATION)
    outcome = await waiting.call("refund", {"order_id": "A-1", "amount": "500.00"})
    assert outcome.status is proctor.CallStatus.AWAITING_APPROVAL
    assert await other.claim(10) == []
    rt.approvals.approve(outcome.approval_id or "", proctor.Approver("sam", "supervisor"), "ok")
    assert await other.claim(10) == [waiting.id]  # approved: ready for any worker
    assert await rt.claim(10) == []  # now held by the other worker
