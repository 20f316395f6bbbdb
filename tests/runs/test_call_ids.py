"""A call made under the caller's own id (a framework's tool call id) runs once, however
often, in whatever order and in whichever process it is proposed again; a session (a
framework's conversation) is one run while it goes on."""

from __future__ import annotations

import pytest

from proctor import CallStatus, InvalidAction, ReplayMismatch
from proctor.approvals import Approver
from proctor.runs.views import load_run
from tests.shop import Env

SMALL = {"order_id": "A-1", "amount": "10.00"}
LARGE = {"order_id": "A-1", "amount": "500.00"}


async def test_the_same_call_id_runs_once_in_any_order(env: Env) -> None:
    run = await env.runtime().start_run(env.spec())
    first = await run.call("refund", SMALL, call_id="call-1")
    look = await run.call("lookup", {"order_id": "A-1"}, call_id="call-2")
    again = await run.call("refund", SMALL, call_id="call-1")
    assert (first.status, look.status, again.status) == (CallStatus.EXECUTED,) * 3
    assert again.replayed
    assert again.step == first.step
    assert again.result == first.result
    assert len(env.ledger.effects("refund")) == 1
    with pytest.raises(ReplayMismatch, match="call id 'call-1' names another call"):
        await run.call("refund", {"order_id": "A-1", "amount": "11.00"}, call_id="call-1")

    env.clock.advance(31)  # this worker stops; another takes the run over
    resumed = await env.runtime().resume(run.id)
    replayed = [
        await resumed.call("lookup", {"order_id": "A-1"}, call_id="call-2"),
        await resumed.call("refund", SMALL, call_id="call-1"),
    ]
    assert all(o.replayed for o in replayed)
    fresh = await resumed.call("refund", SMALL, call_id="call-3")
    assert fresh.status is CallStatus.EXECUTED
    assert not fresh.replayed
    assert len(env.ledger.effects("refund")) == 2
    with env.runtimes[0].store.read() as conn:
        steps = load_run(conn, run.id).steps
    assert [s.call_id for s in steps] == ["call-1", "call-2", "call-3"]


async def test_an_approved_call_runs_once_when_proposed_again_elsewhere(env: Env) -> None:
    spec = env.spec(session="thread-7")
    run = await env.runtime().session_run(spec)
    waiting = await run.call("refund", LARGE, call_id="c-9")
    assert waiting.status is CallStatus.AWAITING_APPROVAL
    again = await run.call("refund", LARGE, call_id="c-9")
    assert again.status is CallStatus.AWAITING_APPROVAL
    assert again.approval_id == waiting.approval_id
    await run.release()

    approver = env.runtime()
    assert waiting.approval_id is not None
    approver.approvals.approve(waiting.approval_id, Approver("sam", "supervisor"), "ok")
    for _ in range(2):  # the framework re-runs its node, twice
        other = await env.runtime().session_run(spec)
        assert other.id == run.id
        done = await other.call("refund", LARGE, call_id="c-9")
        assert done.status is CallStatus.EXECUTED
        await other.release()
    assert len(env.ledger.effects("refund")) == 1


async def test_a_refused_call_never_runs_however_often_proposed(env: Env) -> None:
    run = await env.runtime().session_run(env.spec(session="s"))
    waiting = await run.call("refund", LARGE, call_id="c-1")
    assert waiting.approval_id is not None
    env.runtime().approvals.deny(waiting.approval_id, Approver("sam", "supervisor"), "no")
    for _ in range(2):
        refused = await run.call("refund", LARGE, call_id="c-1")
        assert refused.status is CallStatus.DENIED
    assert env.ledger.effects("refund") == []


async def test_an_invalid_call_proposed_again_is_counted_once(env: Env) -> None:
    run = await env.runtime().start_run(env.spec(max_invalid_actions=1))
    for _ in range(3):
        with pytest.raises(InvalidAction):
            await run.call("refund", {"order_id": "A-1"}, call_id="bad")
    assert (
        await run.call("lookup", {"order_id": "A-1"}, call_id="ok")
    ).status is CallStatus.EXECUTED


async def test_a_session_is_one_run_while_it_goes_on(env: Env) -> None:
    rt = env.runtime()
    first = await rt.session_run(env.spec(session="thread-1"))
    taken = await rt.session_run(env.spec(session="thread-1"))  # fences ``first`` off
    assert taken.id == first.id
    other_tenant = await rt.session_run(env.spec(session="thread-1", tenant="globex"))
    other_thread = await rt.session_run(env.spec(session="thread-2"))
    assert len({first.id, other_tenant.id, other_thread.id}) == 3
    await taken.complete()
    assert rt.live_run_of("acme", "thread-1") is None
    next_turn = await rt.session_run(env.spec(session="thread-1"))
    assert next_turn.id != first.id
    with rt.store.read() as conn:
        assert load_run(conn, next_turn.id).session == "thread-1"
    with pytest.raises(ValueError, match="needs a spec with a session"):
        await rt.session_run(env.spec())
