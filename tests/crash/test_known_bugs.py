"""Crash-resume bugs found in src/ and not fixed yet, pinned as strict expected failures.

Each test states the behaviour the design promises and fails today. ``strict=True``
turns a fix into a failure of the suite (XPASS): whoever fixes the bug removes the
marker (or moves the test to test_regressions.py) and the test guards the fix.
"""

from __future__ import annotations

import pytest

from proctor.states import StepStatus

from .conftest import Crash, events_of, key

pytestmark = pytest.mark.crash


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="BUG: Run._execute_and_record (and Run._settle) record an unknown outcome and hand "
    "the run off in two transactions; a crash between them leaves a running run whose step is "
    "outcome_unknown, and Run.recover only settles executing steps, so the run goes on",
)
async def test_a_crash_before_the_hand_off_of_an_unknown_outcome_still_hands_off(
    crash: Crash,
) -> None:
    # slow_write times out (a write: its outcome is unknown, and it has no reconcile hook).
    events = crash.worker(
        "start", "--script", "slow_write", "--kill-at", "before_hand_off", killed=True
    )
    run_id = events[0]["run_id"]
    assert events[-1]["point"] == "before_hand_off"
    [step] = crash.step_rows(run_id)
    assert (step.status, step.idempotency_key) == (StepStatus.OUTCOME_UNKNOWN, key(run_id, 0))
    assert crash.trail(run_id) == [
        ("run.opened", None),
        ("action.intent", 0),
        ("action.reconciled", 0),
        ("action.outcome", 0),
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
