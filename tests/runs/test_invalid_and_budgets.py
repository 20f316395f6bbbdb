"""Malformed proposals never execute; budgets stop a run before the next side effect."""

from __future__ import annotations

from decimal import Decimal

import pytest

from proctor import BudgetExceeded, InvalidAction, RunState, RunTerminated, TooManyInvalidActions
from tests.shop import Env


@pytest.mark.parametrize(
    ("tool", "raw", "field", "message"),
    [
        ("refund", '{"order_id": "A-1", "amount": ', "(arguments)", "not valid JSON"),
        ("refund", '{"order_id": 7, "amount": "1.00"}', "order_id", "valid string"),
        ("refund", '{"order_id": "A-1"}', "amount", "'amount' is required (expected Decimal)"),
        (
            "refund",
            '{"order_id": "A-1", "amount": "1", "memo": "x"}',
            "memo",
            "'memo' is not an argument of refund",
        ),
        ("wire_money", '{"to": "x"}', "tool", "unknown tool 'wire_money'"),
        ("refund", "[1, 2]", "(arguments)", "refund takes: order_id: str, amount: Decimal"),
    ],
)
async def test_invalid_actions_name_the_tool_and_field_and_never_run(
    env: Env, tool: str, raw: str, field: str, message: str
) -> None:
    run = await env.runtime().start_run(env.spec())
    with pytest.raises(InvalidAction) as caught:
        await run.call_json(tool, raw)
    assert caught.value.tool == tool
    assert caught.value.field == field
    assert message in str(caught.value)
    assert env.ledger.effects() == []
    assert run.state is RunState.RUNNING


async def test_too_many_invalid_actions_fail_the_run_safe(env: Env) -> None:
    run = await env.runtime().start_run(env.spec(max_invalid_actions=2))
    for _ in range(2):
        with pytest.raises(InvalidAction):
            await run.call("refund", {"order_id": "A-1", "amount": 3.5, "extra": True})
    with pytest.raises(TooManyInvalidActions, match="3 invalid actions"):
        await run.call("refund", {"order_id": "A-1"})
    assert run.state is RunState.FAILED_SAFE
    assert run.reason == "invalid_actions"
    with pytest.raises(RunTerminated):
        await run.call("lookup", {"order_id": "A-1"})


async def test_a_zero_budget_allows_no_call(env: Env) -> None:
    run = await env.runtime().start_run(env.spec(budget={"tool_calls": 0}))
    with pytest.raises(BudgetExceeded, match="tool calls 0 of 0"):
        await run.call("refund", {"order_id": "A-1", "amount": "1.00"})
    assert run.state is RunState.FAILED_SAFE
    assert run.reason == "budget_exceeded"
    assert env.ledger.effects() == []


async def test_the_tool_call_cap_stops_before_the_next_side_effect(env: Env) -> None:
    run = await env.runtime().start_run(env.spec(budget={"tool_calls": 2}))
    for amount in ("1.00", "2.00"):
        await run.call("refund", {"order_id": "A-1", "amount": amount})
    with pytest.raises(BudgetExceeded):
        await run.call("refund", {"order_id": "A-1", "amount": "3.00"})
    assert len(env.ledger.effects()) == 2


async def test_model_tokens_and_usd_caps(env: Env) -> None:
    run = await env.runtime().start_run(env.spec(budget={"model_tokens": 1000, "usd": "0.50"}))
    await run.charge(tokens=999, usd=Decimal("0.10"))
    await run.call("lookup", {"order_id": "A-1"})
    await run.charge(tokens=1)
    with pytest.raises(BudgetExceeded, match="model tokens 1000 of 1000"):
        await run.call("lookup", {"order_id": "A-1"})

    run2 = await env.runtime().start_run(env.spec(budget={"usd": "0.50"}))
    await run2.charge(usd=Decimal("0.50"))
    with pytest.raises(BudgetExceeded, match="USD"):
        await run2.call("lookup", {"order_id": "A-1"})


async def test_wall_time_excludes_time_waiting_for_approval(env: Env) -> None:
    run = await env.runtime().start_run(env.spec(budget={"wall_time_s": 60}))
    env.clock.advance(30)
    await run.call("lookup", {"order_id": "A-1"})
    env.clock.advance(31)
    with pytest.raises(BudgetExceeded, match="wall time"):
        await run.call("lookup", {"order_id": "A-1"})


def test_a_negative_budget_is_a_configuration_error(env: Env) -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        env.spec(budget={"tool_calls": -1})


async def test_caps_the_spec_leaves_open_come_from_the_bundle(env: Env) -> None:
    yaml = env.bundle / "proctor.yaml"
    yaml.write_text(yaml.read_text() + "budgets:\n  run:\n    tool_calls: 1\n    usd: '2.00'\n")
    run = await env.runtime().start_run(env.spec(budget={"usd": "0.50"}))
    await run.call("lookup", {"order_id": "A-1"})
    with pytest.raises(BudgetExceeded, match="tool calls 1 of 1"):
        await run.call("lookup", {"order_id": "A-1"})
    with env.runtimes[0].store.read() as conn:
        stored = conn.exec_driver_sql("SELECT budget FROM runs").scalar()
    assert "0.50" in str(stored)  # the spec's own cap wins over the bundle's


def test_effect_class_names_are_not_tool_names() -> None:
    from proctor import Effect, ToolDefinitionError, tool

    with pytest.raises(ToolDefinitionError, match="name of an effect class"):

        @tool(effect=Effect.WRITE, name="write")
        def write_it(x: int) -> int:
            return x


async def test_wall_time_on_the_same_handle_excludes_the_approval_wait(env: Env) -> None:
    from proctor import Approver

    run = await env.runtime().start_run(env.spec(budget={"wall_time_s": 60}))
    outcome = await run.call("refund", {"order_id": "A-1", "amount": "500.00"})
    assert outcome.approval_id is not None
    env.clock.advance(3000)  # a long wait for the supervisor
    env.runtimes[0].approvals.approve(outcome.approval_id, Approver("sam", "supervisor"), "ok")
    done = await run.resume_pending()
    assert done is not None
    assert done.status.value == "executed"
    await run.call("lookup", {"order_id": "A-1"})  # still within its 60 active seconds
