"""A worker dies part-way through a multi-call run; the resumed code replays what was done."""

from __future__ import annotations

import pytest

from .conftest import Crash, Trail, events_of, key

pytestmark = [pytest.mark.crash, pytest.mark.slow]


def calls(*steps: int) -> Trail:
    return [entry for s in steps for entry in (("action.intent", s), ("action.outcome", s))]


def assert_each_side_effect_once(crash: Crash, run_id: str) -> None:
    assert crash.invocations("lookup") == {"": 1}
    assert crash.invocations("refund") == {key(run_id, 1): 1, key(run_id, 3): 1}
    assert crash.invocations("send_email") == {key(run_id, 2): 1}
    assert crash.effects("refund") == {key(run_id, 1): "A-1:20.00", key(run_id, 3): "A-2:30.00"}
    assert list(crash.effects("send_email")) == [key(run_id, 2)]
    assert [s.status for s in crash.step_rows(run_id)] == ["succeeded"] * 4
    run = crash.run_row(run_id)
    assert (run.state, run.reason) == ("completed", "done")


async def test_killed_between_calls_replays_the_done_calls_and_goes_on(crash: Crash) -> None:
    events = crash.worker("start", "--script", "support", "--kill-after-calls", "2", killed=True)
    run_id = events[0]["run_id"]
    done = events_of(events, "outcome", "start")
    assert [(o["step"], o["tool"], o["status"]) for o in done] == [
        (0, "lookup", "executed"),
        (1, "refund", "executed"),
    ]
    assert crash.trail(run_id) == [("run.opened", None), *calls(0, 1)]
    await crash.assert_busy(run_id)
    crash.wait_out_lease(run_id)

    events = crash.worker("resume", "--run", run_id, "--replay", "support", "--complete")

    [resumed] = events_of(events, "state", "resumed")
    assert (resumed["state"], resumed["steps"]) == ("running", ["succeeded", "succeeded"])
    replay = events_of(events, "outcome", "replay")
    assert [(o["step"], o["status"], o["replayed"]) for o in replay] == [
        (0, "executed", True),
        (1, "executed", True),
        (2, "executed", False),
        (3, "executed", False),
    ]
    assert replay[1]["result"] == done[1]["result"]
    assert_each_side_effect_once(crash, run_id)
    trail = crash.trail(run_id)
    assert trail == [("run.opened", None), *calls(0, 1, 2, 3), ("run.state", None)]
    crash.verify(run_id, trail)


async def test_killed_in_a_later_call_reconciles_it_and_replays_the_rest(crash: Crash) -> None:
    events = crash.worker(
        "start", "--script", "support", "--kill-at", "after_intent", "--kill-tool", "refund",
        "--kill-step", "3", killed=True,
    )  # fmt: skip
    run_id = events[0]["run_id"]
    assert len(events_of(events, "outcome", "start")) == 3
    assert crash.trail(run_id) == [("run.opened", None), *calls(0, 1, 2), ("action.intent", 3)]
    await crash.assert_busy(run_id)
    crash.wait_out_lease(run_id)

    events = crash.worker("resume", "--run", run_id, "--replay", "support", "--complete")

    [resumed] = events_of(events, "state", "resumed")
    assert resumed["steps"] == ["succeeded"] * 4
    replay = events_of(events, "outcome", "replay")
    assert [(o["step"], o["replayed"]) for o in replay] == [(i, True) for i in range(4)]
    assert_each_side_effect_once(crash, run_id)
    assert [p["happened"] for p in crash.payloads(run_id, "action.reconciled")] == [False]
    trail = crash.trail(run_id)
    assert trail == [
        ("run.opened", None),
        *calls(0, 1, 2),
        ("action.intent", 3),
        ("action.reconciled", 3),
        ("action.outcome", 3),
        ("run.state", None),
    ]
    crash.verify(run_id, trail)
