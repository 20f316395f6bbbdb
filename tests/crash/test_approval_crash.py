"""A worker dies while its call awaits approval; others approve and resume, in other processes."""

from __future__ import annotations

import pytest

from proctor.states import StepStatus

from .conftest import Crash, Trail, events_of, key

pytestmark = [pytest.mark.crash, pytest.mark.slow]

BIG_REFUND_RESULT = {"refunded": "500.00", "order_id": "A-1", "scopes": ["payments:refund"]}
PAUSED: Trail = [
    ("run.opened", None),
    ("action.approval_requested", 0),
    ("run.state", None),  # running -> awaiting_approval
]
APPROVED: Trail = [*PAUSED, ("approval.decided", 0), ("run.state", 0)]  # -> running
FOLLOW_UP_AND_END: Trail = [("action.intent", 1), ("action.outcome", 1), ("run.state", None)]


def crash_awaiting_approval(crash: Crash) -> tuple[str, str]:
    """A worker proposes a big refund, gets it queued for approval, and dies."""
    events = crash.worker("start", "--script", "big_refund", "--kill-after-calls", "1", killed=True)
    run_id = events[0]["run_id"]
    [outcome] = events_of(events, "outcome", "start")
    assert outcome["status"] == "awaiting_approval"
    assert outcome["approval_id"] is not None
    # The pause is durable and the run holds no lease: anyone may pick it up later.
    run = crash.run_row(run_id)
    assert (run.state, run.owner, run.lease_until) == ("awaiting_approval", None, None)
    [step] = crash.step_rows(run_id)
    assert step.status == StepStatus.AWAITING_APPROVAL
    assert crash.trail(run_id) == PAUSED
    assert crash.invocations("refund") == {}

    approved = crash.worker("approve", "--approval", outcome["approval_id"])
    assert approved == [{"event": "approved", "status": "approved", "decided_by": "sam"}]
    run = crash.run_row(run_id)
    assert (run.state, run.owner) == ("running", None)
    assert crash.invocations("refund") == {}  # approving does not run the call
    assert crash.trail(run_id) == APPROVED
    return run_id, outcome["approval_id"]


def assert_refunded_once(crash: Crash, run_id: str) -> None:
    assert crash.invocations("refund") == {key(run_id, 0): 1}
    assert crash.effects("refund") == {key(run_id, 0): "A-1:500.00"}
    assert [s.status for s in crash.step_rows(run_id)] == ["succeeded", "succeeded"]
    run = crash.run_row(run_id)
    assert (run.state, run.reason) == ("completed", "done")


async def test_approved_after_the_worker_died_runs_once_and_replays(crash: Crash) -> None:
    run_id, approval_id = crash_awaiting_approval(crash)

    events = crash.worker(
        "resume", "--run", run_id, "--pending", "--replay", "big_refund",
        "--then", "followup", "--complete",
    )  # fmt: skip

    [resumed] = events_of(events, "state", "resumed")
    assert (resumed["state"], resumed["steps"]) == ("running", ["awaiting_approval"])
    [pending] = events_of(events, "outcome", "pending")
    assert (pending["step"], pending["status"], pending["replayed"]) == (0, "executed", False)
    assert pending["approval_id"] == approval_id
    assert pending["result"] == BIG_REFUND_RESULT
    # The worker's code, run again from the top: the journal answers, nothing runs.
    [replayed] = events_of(events, "outcome", "replay")
    assert (replayed["step"], replayed["status"], replayed["replayed"]) == (0, "executed", True)
    assert replayed["result"] == BIG_REFUND_RESULT
    [then] = events_of(events, "outcome", "then")
    assert (then["step"], then["status"], then["replayed"]) == (1, "executed", False)

    assert_refunded_once(crash, run_id)
    [intent] = crash.payloads(run_id, "action.intent")[:1]
    assert (intent["approval_id"], intent["idempotency_key"]) == (approval_id, key(run_id, 0))
    trail = crash.trail(run_id)
    assert trail == [*APPROVED, ("action.intent", 0), ("action.outcome", 0), *FOLLOW_UP_AND_END]
    crash.verify(run_id, trail)


async def test_replaying_the_code_runs_the_approved_call_once(crash: Crash) -> None:
    run_id, _ = crash_awaiting_approval(crash)

    # No resume_pending: the agent's code simply runs again from the top.
    events = crash.worker(
        "resume", "--run", run_id, "--replay", "big_refund", "--then", "followup", "--complete"
    )

    [first] = events_of(events, "outcome", "replay")
    assert (first["step"], first["status"], first["replayed"]) == (0, "executed", False)
    assert first["result"] == BIG_REFUND_RESULT
    assert_refunded_once(crash, run_id)
    trail = crash.trail(run_id)
    assert trail == [*APPROVED, ("action.intent", 0), ("action.outcome", 0), *FOLLOW_UP_AND_END]
    crash.verify(run_id, trail)


@pytest.mark.parametrize(
    ("point", "happened"), [("after_intent", False), ("in_tool", True), ("after_execute", True)]
)
async def test_resumer_killed_while_running_the_approved_call(
    crash: Crash, point: str, happened: bool
) -> None:
    run_id, approval_id = crash_awaiting_approval(crash)

    # The process that resumes the approved call dies in the middle of it too.
    events = crash.worker(
        "resume", "--run", run_id, "--pending", "--kill-at", point, "--kill-tool", "refund",
        killed=True,
    )  # fmt: skip
    assert events[-1] == {"event": "kill", "point": point, "step": 0, "tool": "refund"}
    assert crash.trail(run_id) == [*APPROVED, ("action.intent", 0)]
    assert crash.step_rows(run_id)[0].status == StepStatus.EXECUTING
    assert crash.invocations("refund") == ({key(run_id, 0): 1} if happened else {})
    await crash.assert_busy(run_id)
    crash.wait_out_lease(run_id)

    events = crash.worker(
        "resume", "--run", run_id, "--replay", "big_refund", "--then", "followup", "--complete"
    )

    [resumed] = events_of(events, "state", "resumed")
    assert (resumed["state"], resumed["steps"]) == ("running", ["succeeded"])
    [replayed] = events_of(events, "outcome", "replay")
    assert (replayed["status"], replayed["replayed"]) == ("executed", True)
    assert_refunded_once(crash, run_id)
    [reconciled] = crash.payloads(run_id, "action.reconciled")
    assert reconciled["happened"] is happened
    [intent] = crash.payloads(run_id, "action.intent")[:1]
    assert intent["approval_id"] == approval_id
    trail = crash.trail(run_id)
    assert trail == [
        *APPROVED,
        ("action.intent", 0),
        ("action.reconciled", 0),
        ("action.outcome", 0),
        *FOLLOW_UP_AND_END,
    ]
    crash.verify(run_id, trail)
