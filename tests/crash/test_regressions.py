"""Crash-resume cases that once broke: the budget after a crash, a call outliving its
lease, an approval given after its run ended, and a death between an unknown outcome
and the hand-off it calls for."""

from __future__ import annotations

import json
import time

import pytest

from proctor.states import StepStatus

from .conftest import LEASE_S, Crash, events_of, key

pytestmark = [pytest.mark.crash, pytest.mark.slow]


async def test_the_tool_call_budget_survives_a_crash(crash: Crash) -> None:
    events = crash.worker(
        "start", "--script", "support", "--tool-calls", "2", "--kill-after-calls", "2",
        killed=True,
    )  # fmt: skip
    run_id = events[0]["run_id"]
    assert len(events_of(events, "outcome", "start")) == 2  # the whole budget is spent
    await crash.assert_busy(run_id)
    crash.wait_out_lease(run_id)

    events = crash.worker("resume", "--run", run_id, "--replay", "support")

    replay = events_of(events, "outcome", "replay")
    assert [(o["step"], o["replayed"]) for o in replay] == [(0, True), (1, True)]
    assert [e["type"] for e in events_of(events, "error", "replay")] == ["BudgetExceeded"]
    assert crash.invocations("send_email") == {}
    assert crash.invocations("refund") == {key(run_id, 1): 1}
    run = crash.run_row(run_id)
    assert (run.state, run.reason) == ("failed_safe", "budget_exceeded")


async def test_a_slow_call_outliving_the_lease_is_not_executed_twice(crash: Crash) -> None:
    slow_s = 2.5 * LEASE_S
    first = crash.spawn(
        "start", "--script", "refund", "--slow-tool", "refund", "--slow-s", str(slow_s)
    )
    assert first.stdout is not None
    line = first.stdout.readline()
    assert line, Crash.finish(first)
    run_id = json.loads(line)["run_id"]
    # Wait until the first worker is inside its (slow) refund: intent durable, effect not yet.
    deadline = time.monotonic() + 30
    while crash.invocations("refund") != {key(run_id, 0): 1}:
        assert first.poll() is None, Crash.finish(first)
        assert time.monotonic() < deadline, "the first worker never reached its refund"
        time.sleep(0.02)
    assert crash.trail(run_id) == [("run.opened", None), ("action.intent", 0)]
    await crash.assert_busy(run_id)

    # A second worker keeps trying to take the run over while the first is still alive.
    second = crash.worker("resume", "--run", run_id, "--wait-busy", "10", "--replay", "refund")
    first_events = Crash.finish(first)

    # It tried while the first worker was alive, and was kept out until that one was done.
    [kept_out] = events_of(second, "was_busy")
    assert kept_out["tries"] >= 1
    assert crash.invocations("refund") == {key(run_id, 0): 1}
    assert crash.effects("refund") == {key(run_id, 0): "A-1:20.00"}
    [outcome] = events_of(first_events, "outcome", "start")
    assert outcome["status"] == "executed"
    [replayed] = events_of(second, "outcome", "replay")
    assert (replayed["status"], replayed["replayed"]) == ("executed", True)
    trail = crash.trail(run_id)
    assert trail == [("run.opened", None), ("action.intent", 0), ("action.outcome", 0)]
    crash.verify(run_id, trail)


async def test_approving_a_stale_request_never_revives_a_handed_off_run(crash: Crash) -> None:
    events = crash.worker("start", "--script", "big_refund", "--kill-after-calls", "1", killed=True)
    run_id = events[0]["run_id"]
    [paused] = events_of(events, "outcome", "start")
    # The worker is gone; an operator takes the run over and hands it to a person.
    ended = crash.worker("resume", "--run", run_id, "--hand-off")
    assert events_of(ended, "state", "end")[0]["state"] == "handed_off"
    assert crash.run_row(run_id).state == "handed_off"

    # Later, a supervisor works through the queue and approves the stale request.
    [refused] = crash.worker("approve", "--approval", paused["approval_id"])
    assert (refused["event"], refused["type"]) == ("approval_refused", "ApprovalExpired")
    assert "withdrawn" in refused["message"]
    assert crash.rt.approvals.get(paused["approval_id"]).status == "expired"
    [terminated] = crash.worker("resume", "--run", run_id, "--pending")
    assert terminated["event"] == "terminated"

    assert crash.invocations("refund") == {}
    run = crash.run_row(run_id)
    assert (run.state, run.reason) == ("handed_off", "escalated")


async def test_a_crash_before_the_hand_off_of_an_unknown_outcome_still_hands_off(
    crash: Crash,
) -> None:
    # slow_write times out (a write: its outcome is unknown, and it has no reconcile hook).
    events = crash.worker(
        "start", "--script", "slow_write", "--kill-at", "before_hand_off", killed=True
    )
    run_id = events[0]["run_id"]
    assert events[-1]["point"] == "before_hand_off"
    # The outcome and the hand-off are one commit: the death took both with it.
    [step] = crash.step_rows(run_id)
    assert (step.status, step.idempotency_key) == (StepStatus.EXECUTING, key(run_id, 0))
    assert crash.trail(run_id) == [
        ("run.opened", None),
        ("action.intent", 0),
        ("action.reconciled", 0),
    ]
    await crash.assert_busy(run_id)
    crash.wait_out_lease(run_id)

    events = crash.worker("resume", "--run", run_id, "--replay", "slow_write", "--then", "followup")

    # What the design promises: nobody continues past a step that may or may not have
    # happened until a person has checked the system of record.
    assert crash.invocations("lookup") == {}
    assert events_of(events, "outcome", "then") == []
    run = crash.run_row(run_id)
    assert (run.state, run.reason) == ("handed_off", "outcome_unknown")
