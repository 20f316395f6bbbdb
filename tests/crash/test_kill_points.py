"""SIGKILL a worker at each durable point of one governed call, then resume in a new process.

Kill points: right after the intent entry is durable (the tool has not run), inside
the tool after its effect is committed in the system of record, and after the tool
returned but before its outcome is recorded. A new process takes the run over once
the dead worker's lease expires, and must neither lose an audit entry nor repeat a
side effect.
"""

from __future__ import annotations

import pytest

from proctor.states import StepStatus

from .conftest import Crash, events_of, key

pytestmark = [pytest.mark.crash, pytest.mark.slow]

REFUND_RESULT = {"refunded": "20.00", "order_id": "A-1", "scopes": ["payments:refund"]}
RECONCILED_RESULT = {"refunded": "20.00", "order_id": "A-1"}
CONTINUED = [
    ("run.opened", None),
    ("action.intent", 0),
    ("action.reconciled", 0),
    ("action.outcome", 0),
    ("action.intent", 1),  # the follow-up lookup of the resumed run
    ("action.outcome", 1),
    ("run.state", None),  # completed
]
HANDED_OFF = [
    ("run.opened", None),
    ("action.intent", 0),
    ("action.reconciled", 0),
    ("action.outcome", 0),
    ("run.state", None),  # handed off
]


async def crash_during_call(crash: Crash, script: str, point: str, tool: str) -> str:
    """Start a run whose worker dies at ``point`` of its one call; the run id, lease expired."""
    events = crash.worker(
        "start", "--script", script, "--kill-at", point, "--kill-tool", tool, killed=True
    )
    run_id = events[0]["run_id"]
    assert events[-1] == {"event": "kill", "point": point, "step": 0, "tool": tool}
    # What the crash left: the intent is durable, the outcome is not.
    assert crash.trail(run_id) == [("run.opened", None), ("action.intent", 0)]
    [step] = crash.step_rows(run_id)
    assert step.status == StepStatus.EXECUTING
    assert step.idempotency_key == key(run_id, 0)
    assert crash.run_row(run_id).state == "running"
    await crash.assert_busy(run_id)
    crash.wait_out_lease(run_id)
    return run_id


def resume_and_continue(crash: Crash, run_id: str, script: str) -> list[dict[str, object]]:
    return crash.worker(
        "resume", "--run", run_id, "--replay", script, "--then", "followup", "--complete"
    )


async def test_refund_killed_after_intent_runs_exactly_once_on_resume(crash: Crash) -> None:
    run_id = await crash_during_call(crash, "refund", "after_intent", "refund")
    assert crash.invocations("refund") == {}  # killed before the tool ran
    assert crash.effects("refund") == {}

    events = resume_and_continue(crash, run_id, "refund")

    # Recovered before any code ran again: the reconcile found no effect, so it ran now.
    [resumed] = events_of(events, "state", "resumed")
    assert resumed["state"] == "running"
    assert resumed["steps"] == ["succeeded"]
    [replayed] = events_of(events, "outcome", "replay")
    assert replayed["status"] == "executed"
    assert replayed["replayed"] is True
    assert replayed["result"] == REFUND_RESULT
    [then] = events_of(events, "outcome", "then")
    assert (then["step"], then["status"], then["replayed"]) == (1, "executed", False)
    assert events_of(events, "state", "end")[0]["state"] == "completed"

    assert crash.invocations("refund") == {key(run_id, 0): 1}
    assert crash.effects("refund") == {key(run_id, 0): "A-1:20.00"}
    step = crash.step_rows(run_id)[0]
    assert (step.status, step.attempts, step.result) == ("succeeded", 1, REFUND_RESULT)
    assert [p["happened"] for p in crash.payloads(run_id, "action.reconciled")] == [False]
    assert [p["status"] for p in crash.payloads(run_id, "action.outcome")] == [
        "succeeded",
        "succeeded",
    ]
    trail = crash.trail(run_id)
    assert trail == CONTINUED
    crash.verify(run_id, trail)


@pytest.mark.parametrize("point", ["in_tool", "after_execute"])
async def test_refund_killed_after_its_effect_is_reconciled_never_rerun(
    crash: Crash, point: str
) -> None:
    run_id = await crash_during_call(crash, "refund", point, "refund")
    assert crash.invocations("refund") == {key(run_id, 0): 1}
    assert crash.effects("refund") == {key(run_id, 0): "A-1:20.00"}

    events = resume_and_continue(crash, run_id, "refund")

    [resumed] = events_of(events, "state", "resumed")
    assert (resumed["state"], resumed["steps"]) == ("running", ["succeeded"])
    [replayed] = events_of(events, "outcome", "replay")
    assert (replayed["status"], replayed["replayed"]) == ("executed", True)
    assert replayed["result"] == RECONCILED_RESULT  # what the system of record reported
    assert events_of(events, "state", "end")[0]["state"] == "completed"

    assert crash.invocations("refund") == {key(run_id, 0): 1}  # never re-executed
    assert crash.ledger.attempts("refund") == 1
    assert crash.effects("refund") == {key(run_id, 0): "A-1:20.00"}
    step = crash.step_rows(run_id)[0]
    assert (step.status, step.attempts, step.result) == ("succeeded", 0, RECONCILED_RESULT)
    [reconciled] = crash.payloads(run_id, "action.reconciled")
    assert (reconciled["tool"], reconciled["happened"]) == ("refund", True)
    outcome = crash.payloads(run_id, "action.outcome")[0]
    assert (outcome["status"], outcome["attempts"]) == ("succeeded", 0)
    trail = crash.trail(run_id)
    assert trail == CONTINUED
    crash.verify(run_id, trail)


@pytest.mark.parametrize("point", ["after_intent", "in_tool", "after_execute"])
async def test_email_without_reconcile_hook_is_handed_off_never_resent(
    crash: Crash, point: str
) -> None:
    run_id = await crash_during_call(crash, "send_email", point, "send_email")
    sent_before = 0 if point == "after_intent" else 1
    assert sum(crash.invocations("send_email").values()) == sent_before

    events = crash.worker("resume", "--run", run_id, "--replay", "send_email", "--complete")

    [resumed] = events_of(events, "state", "resumed")
    assert resumed["state"] == "handed_off"
    assert resumed["reason"] == "outcome_unknown"
    assert resumed["steps"] == ["outcome_unknown"]
    # The resumed code cannot go on: the run ended, handed off to a person.
    [error] = events_of(events, "error", "replay")
    assert error["type"] == "RunTerminated"
    assert events_of(events, "outcome") == []

    expected = {key(run_id, 0): 1} if sent_before else {}
    assert crash.invocations("send_email") == expected  # not sent by the resume
    assert len(crash.effects("send_email")) == sent_before
    run = crash.run_row(run_id)
    assert (run.state, run.reason, run.owner) == ("handed_off", "outcome_unknown", None)
    assert run.ended_at is not None
    step = crash.step_rows(run_id)[0]
    assert (step.status, step.attempts, step.result) == ("outcome_unknown", 0, None)
    [reconciled] = crash.payloads(run_id, "action.reconciled")
    assert reconciled["happened"] is None
    assert reconciled["detail"] == "the tool has no reconcile hook"
    [state] = crash.payloads(run_id, "run.state")
    assert (state["previous"], state["state"], state["reason"]) == (
        "running",
        "handed_off",
        "outcome_unknown",
    )
    trail = crash.trail(run_id)
    assert trail == HANDED_OFF
    crash.verify(run_id, trail)


async def test_read_killed_after_intent_simply_runs_again(crash: Crash) -> None:
    run_id = await crash_during_call(crash, "lookup", "after_intent", "lookup")
    assert crash.invocations("lookup") == {}

    events = resume_and_continue(crash, run_id, "lookup")

    [resumed] = events_of(events, "state", "resumed")
    assert (resumed["state"], resumed["steps"]) == ("running", ["succeeded"])
    [replayed] = events_of(events, "outcome", "replay")
    assert (replayed["status"], replayed["replayed"]) == ("executed", True)
    assert replayed["result"] == {"order_id": "A-1", "status": "delivered"}
    # One run of step 0 by the resume, one of the follow-up lookup; nothing else.
    assert crash.invocations("lookup") == {"": 2}
    assert [s.status for s in crash.step_rows(run_id)] == ["succeeded", "succeeded"]
    trail = crash.trail(run_id)
    # A read has no effect to check: no reconcile entry, it just ran again.
    assert trail == [entry for entry in CONTINUED if entry[0] != "action.reconciled"]
    crash.verify(run_id, trail)


async def test_refund_survives_a_second_crash_while_the_resume_reruns_it(crash: Crash) -> None:
    run_id = await crash_during_call(crash, "refund", "after_intent", "refund")

    # The resumer finds no effect, runs the refund, and dies before recording its outcome.
    events = crash.worker(
        "resume", "--run", run_id, "--kill-at", "after_execute", "--kill-tool", "refund",
        killed=True,
    )  # fmt: skip
    assert events == [{"event": "kill", "point": "after_execute", "step": 0, "tool": "refund"}]
    assert crash.invocations("refund") == {key(run_id, 0): 1}
    assert crash.trail(run_id) == CONTINUED[:3]  # opened, intent, reconciled (not applied)
    assert crash.step_rows(run_id)[0].status == StepStatus.EXECUTING
    await crash.assert_busy(run_id)
    crash.wait_out_lease(run_id)

    events = resume_and_continue(crash, run_id, "refund")

    [replayed] = events_of(events, "outcome", "replay")
    assert (replayed["status"], replayed["replayed"]) == ("executed", True)
    assert replayed["result"] == RECONCILED_RESULT
    assert crash.invocations("refund") == {key(run_id, 0): 1}
    assert crash.effects("refund") == {key(run_id, 0): "A-1:20.00"}
    assert [p["happened"] for p in crash.payloads(run_id, "action.reconciled")] == [False, True]
    trail = crash.trail(run_id)
    assert trail == [*CONTINUED[:3], ("action.reconciled", 0), *CONTINUED[3:]]
    crash.verify(run_id, trail)
