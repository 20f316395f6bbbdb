"""Approvals: only the right person, once, before expiry; the run resumes elsewhere."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from proctor import (
    ApprovalAlreadyDecided,
    ApprovalExpired,
    ApprovalNotFound,
    Approver,
    CallStatus,
    NotAllowedToApprove,
    RunState,
    RunStateError,
    RunTerminated,
    Runtime,
)
from proctor.states import ApprovalStatus, StepStatus
from proctor.store.tables import steps
from tests.shop import Env

BIG_REFUND = {"order_id": "A-1", "amount": "500.00"}


async def paused(env: Env) -> tuple[str, str]:
    run = await env.runtime().start_run(env.spec())
    outcome = await run.call("refund", BIG_REFUND)
    assert outcome.status is CallStatus.AWAITING_APPROVAL
    assert outcome.decision is not None
    assert outcome.decision.approval_roles == ("supervisor",)
    assert run.state is RunState.AWAITING_APPROVAL
    with pytest.raises(RunStateError, match="awaiting approval"):
        await run.call("lookup", {"order_id": "A-1"})
    assert outcome.approval_id is not None
    return run.id, outcome.approval_id


async def test_approved_call_runs_once_when_another_runtime_resumes(env: Env) -> None:
    run_id, approval_id = await paused(env)
    assert env.ledger.effects() == []
    request = env.runtime().approvals.approve(approval_id, Approver("sam", "supervisor"), "ok")
    assert request.status is ApprovalStatus.APPROVED
    assert request.decided_by == "sam"

    run = await env.runtime().resume(run_id)
    outcome = await run.resume_pending()
    assert outcome is not None
    assert outcome.status is CallStatus.EXECUTED
    assert run.state is RunState.RUNNING
    assert await run.resume_pending() is None  # nothing waits any more
    assert env.ledger.effects("refund") == [(f"{run_id}/0", "refund", "A-1:500.00")]
    assert env.runtimes[0].verify_audit().ok


async def test_denied_approval_never_runs(env: Env) -> None:
    run_id, approval_id = await paused(env)
    env.runtime().approvals.deny(approval_id, Approver("sam", "supervisor"), "not eligible")
    run = await env.runtime().resume(run_id)
    outcome = await run.resume_pending()
    assert outcome is None or outcome.status is CallStatus.DENIED
    assert run.steps[0].status is StepStatus.APPROVAL_DENIED
    assert env.ledger.effects() == []
    assert run.state is RunState.RUNNING


async def test_a_released_run_is_taken_over_at_once(env: Env) -> None:
    run_id, approval_id = await paused(env)
    env.runtime().approvals.approve(approval_id, Approver("sam", "supervisor"), "ok")
    cli_like = await env.runtime().resume(run_id)
    await cli_like.resume_pending()
    await cli_like.release()
    agent_worker = await env.runtime().resume(run_id)  # no RunBusy, no waiting for the lease
    assert agent_worker.state is RunState.RUNNING


@pytest.mark.parametrize(
    ("approver", "message"),
    [
        (Approver("sam", "agent"), "needs the role supervisor"),
        (Approver("alice", "supervisor"), "nobody approves their own request"),
        (Approver("bot", "supervisor"), "an agent never approves"),
    ],
)
async def test_only_the_named_role_approves_and_never_the_requester_or_agent(
    env: Env, approver: Approver, message: str
) -> None:
    _, approval_id = await paused(env)
    with pytest.raises(NotAllowedToApprove, match=message):
        env.runtime().approvals.approve(approval_id, approver, "ok")
    assert env.runtime().approvals.get(approval_id).status is ApprovalStatus.PENDING


async def test_an_approval_is_decided_once(env: Env) -> None:
    _, approval_id = await paused(env)
    queue = env.runtime().approvals
    queue.approve(approval_id, Approver("sam", "supervisor"), "ok")
    with pytest.raises(ApprovalAlreadyDecided, match="already approved by sam"):
        queue.deny(approval_id, Approver("kim", "supervisor"), "changed my mind")
    with pytest.raises(ApprovalNotFound):
        queue.approve("apr_nope", Approver("sam", "supervisor"), "ok")


async def test_an_expired_request_cannot_be_approved_and_hands_the_run_off(env: Env) -> None:
    run_id, approval_id = await paused(env)
    env.clock.advance(3601)
    rt = env.runtime()
    with pytest.raises(ApprovalExpired, match="handed off"):
        rt.approvals.approve(approval_id, Approver("sam", "supervisor"), "late")
    assert rt.approvals.get(approval_id).status is ApprovalStatus.EXPIRED
    with pytest.raises(RunTerminated):
        await rt.resume(run_id)
    with rt.store.read() as conn:
        status = conn.execute(sa.select(steps.c.status).where(steps.c.run_id == run_id)).scalar()
    assert status == StepStatus.APPROVAL_EXPIRED
    assert env.ledger.effects() == []
    assert rt.verify_audit().ok


async def test_sweeping_expires_overdue_requests(env: Env) -> None:
    await paused(env)
    rt = env.runtime()
    assert rt.approvals.expire_overdue() == 0
    env.clock.advance(7200)
    assert rt.approvals.expire_overdue() == 1
    assert rt.approvals.list() == []


def emails_need_approval(env: Env) -> None:
    policy = (env.bundle / "policy.cedar").read_text()
    policy = policy.replace('@id("email-anyone")', '@id("email-anyone")\n@approval("supervisor")')
    (env.bundle / "policy.cedar").write_text(policy)


def sealed_args(rt: Runtime, run_id: str) -> str | None:
    with rt.store.read() as conn:
        query = sa.select(steps.c.sealed_args).where(steps.c.run_id == run_id)
        return conn.execute(query).scalar()


async def test_sensitive_arguments_survive_the_pause_sealed(env: Env) -> None:
    emails_need_approval(env)
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    outcome = await run.call("send_email", {"to": "dan@example.com", "body": "refund ok"})
    assert outcome.approval_id is not None
    with rt.store.read() as conn:
        for table in ("steps", "audit_payloads", "approvals"):
            assert "dan@example.com" not in str(
                conn.exec_driver_sql(f"SELECT * FROM {table}").all()
            )
    rt.approvals.approve(outcome.approval_id, Approver("sam", "supervisor"), "ok")
    resumed = await env.runtime().resume(run.id)
    done = await resumed.resume_pending()
    assert done is not None
    assert done.status is CallStatus.EXECUTED
    assert env.ledger.effects("send_email")[0][2] == "dan@example.com:refund ok"
    assert sealed_args(rt, run.id) is None  # dropped once the step has its outcome


async def test_a_denied_call_drops_its_sealed_arguments(env: Env) -> None:
    emails_need_approval(env)
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    outcome = await run.call("send_email", {"to": "erin@example.com", "body": "hi"})
    assert outcome.approval_id is not None
    assert sealed_args(rt, run.id) is not None
    rt.approvals.deny(outcome.approval_id, Approver("sam", "supervisor"), "no")
    assert sealed_args(rt, run.id) is None
