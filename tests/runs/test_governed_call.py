"""The governed call, stage by stage, as an embedding application sees it."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from proctor import CallStatus, RunState
from proctor.audit import EntryKind
from proctor.states import StepStatus
from proctor.store.tables import audit_entries, steps
from tests.shop import Env


def kinds(env: Env, run_id: str) -> list[str]:
    with env.runtimes[0].store.read() as conn:
        return [
            k
            for (k,) in conn.execute(
                sa.select(audit_entries.c.kind)
                .where(audit_entries.c.run_id == run_id)
                .order_by(audit_entries.c.seq)
            )
        ]


async def test_allowed_call_runs_once_with_its_key_and_scopes(env: Env) -> None:
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    outcome = await run.call("refund", {"order_id": "A-1", "amount": "20.50"}, reason="late")
    assert outcome.status is CallStatus.EXECUTED
    assert outcome.decision is not None
    assert outcome.decision.policy_ids == ("refund-small",)
    assert outcome.result == {"refunded": "20.50", "order_id": "A-1", "scopes": ["payments:refund"]}
    assert env.ledger.effects("refund") == [(f"{run.id}/0", "refund", "A-1:20.50")]
    assert kinds(env, run.id) == ["run.opened", "action.intent", "action.outcome"]
    with rt.store.read() as conn:
        row = conn.execute(sa.select(steps).where(steps.c.run_id == run.id)).one()
    assert row.status == StepStatus.SUCCEEDED
    assert row.idempotency_key == f"{run.id}/0"
    assert row.decision["bundle_version"] == str(rt.policy.version)
    assert set(row.timings_us) >= {"budget", "decide", "record_intent", "execute"}


async def test_denied_call_never_runs_and_the_run_goes_on(env: Env) -> None:
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    outcome = await run.call("refund", {"order_id": "A-1", "amount": "5000"})
    assert outcome.status is CallStatus.DENIED
    assert outcome.decision is not None
    assert outcome.decision.policy_ids == ()
    assert "default deny" in outcome.decision.reason
    assert env.ledger.effects() == []
    assert run.state is RunState.RUNNING
    assert (await run.call("lookup", {"order_id": "A-1"})).status is CallStatus.EXECUTED
    assert kinds(env, run.id)[1] == EntryKind.ACTION_DENIED


async def test_a_policy_sees_calls_so_far(env: Env) -> None:
    policy = (
        (env.bundle / "policy.cedar").read_text()
        + """
@id("two-notes-at-most")
forbid(principal, action == Action::"note", resource)
when { context.run.calls_by_tool.note >= 2 };
"""
    )
    (env.bundle / "policy.cedar").write_text(policy)
    run = await env.runtime().start_run(env.spec())
    statuses = [(await run.call("note", {"text": str(i)})).status for i in range(3)]
    assert statuses == [CallStatus.EXECUTED, CallStatus.EXECUTED, CallStatus.DENIED]


async def test_tool_that_raises_is_recorded_and_the_run_stays_alive(env: Env) -> None:
    run = await env.runtime().start_run(env.spec())
    outcome = await run.call("explode", {"reason": "disk full"})
    assert outcome.status is CallStatus.FAILED
    assert outcome.error == {"kind": "error", "type": "RuntimeError", "message": "boom: disk full"}
    assert run.state is RunState.RUNNING
    assert kinds(env, run.id)[-1] == "action.outcome"


async def test_transient_errors_of_idempotent_tools_are_retried_a_bounded_number_of_times(
    env: Env,
) -> None:
    from tests.shop import make_tools

    rt = env.runtime(tools=make_tools(env.ledger, flaky_failures=2))
    run = await rt.start_run(env.spec())
    assert (await run.call("flaky_read", {"q": "x"})).status is CallStatus.EXECUTED
    assert env.ledger.attempts("flaky_read") == 3

    rt2 = env.runtime(tools=make_tools(env.ledger, flaky_failures=5))
    run2 = await rt2.start_run(env.spec())
    outcome = await run2.call("flaky_read", {"q": "y"})
    assert outcome.status is CallStatus.FAILED
    assert env.ledger.attempts("flaky_read") == 3 + 3  # one try and max_retries=2 retries


async def test_a_write_that_times_out_without_reconcile_hands_the_run_off(env: Env) -> None:
    run = await env.runtime().start_run(env.spec())
    outcome = await run.call("slow_write", {})
    assert outcome.status is CallStatus.OUTCOME_UNKNOWN
    assert run.state is RunState.HANDED_OFF
    assert run.reason == "outcome_unknown"
    assert env.ledger.attempts("slow_write") == 1


async def test_a_sync_tool_still_running_after_its_timeout_is_not_reconciled_too_early(
    env: Env,
) -> None:
    run = await env.runtime().start_run(env.spec())
    outcome = await run.call("slow_sync_write", {})
    assert outcome.status is CallStatus.OUTCOME_UNKNOWN
    assert outcome.error is not None
    assert outcome.error["kind"] == "still_running"
    assert run.state is RunState.HANDED_OFF
    assert "action.reconciled" not in kinds(env, run.id)
    await asyncio.sleep(0.5)  # the thread finishes and applies its effect, once
    assert len(env.ledger.effects("slow_sync_write")) == 1


async def test_sensitive_fields_never_reach_the_store(env: Env) -> None:
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    outcome = await run.call("send_email", {"to": "carol@example.com", "body": "hello"})
    assert outcome.status is CallStatus.EXECUTED
    assert env.ledger.effects("send_email")[0][2] == "carol@example.com:hello"
    with rt.store.read() as conn:
        for table in ("steps", "audit_payloads", "runs", "audit_entries"):
            dump = str(conn.exec_driver_sql(f"SELECT * FROM {table}").all())
            assert "carol@example.com" not in dump, table


async def test_audit_log_of_a_normal_run_verifies(env: Env) -> None:
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    await run.call("lookup", {"order_id": "A-1"})
    await run.call("refund", {"order_id": "A-1", "amount": "5000"})
    await run.complete()
    report = rt.verify_audit()
    assert report.ok, report.problems
    # opened, intent, outcome, denied, safe mode after the denial, completed
    assert report.checked == 6
    assert report.checkpoints == 1
