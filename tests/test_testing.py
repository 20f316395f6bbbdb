"""The test kit users test their agents with: scripted models, the clock, a test environment."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import proctor.testing
from proctor import CallStatus, Effect, RunState, RunTerminated, Settings, tool
from proctor.agent import Agent
from proctor.models import (
    ModelRequest,
    ModelResponse,
    TokenUsage,
    ToolCall,
    ToolResultMessage,
    ToolSchema,
    UserMessage,
)
from proctor.testing import (
    FunctionModel,
    ManualClock,
    ScriptedModel,
    ScriptError,
    TestEnvironment,
    answer,
    call,
    call_json,
    plan,
)

POLICY = """
@id("reads")
permit(principal, action == Action::"lookup_order", resource);

@id("refund-small")
permit(principal, action == Action::"issue_refund", resource)
when { context.args.amount.lessThanOrEqual(decimal("100.00")) };

@id("refund-supervised")
@approval("supervisor")
permit(principal, action == Action::"issue_refund", resource)
when { context.args.amount.lessThanOrEqual(decimal("1000.00")) };
"""
REFUNDS: list[tuple[str, Decimal]] = []


@tool(effect=Effect.READ)
def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order."""
    return {"order_id": order_id, "status": "delivered"}


@tool(effect=Effect.IRREVERSIBLE)
def issue_refund(order_id: str, amount: Decimal) -> str:
    """Refund part of an order."""
    REFUNDS.append((order_id, amount))
    return "refunded"


TOOLS = (ToolSchema(name="lookup_order", description="", parameters={"type": "object"}),)


def request(text: str = "Where is A-1?", tools: tuple[ToolSchema, ...] = TOOLS) -> ModelRequest:
    return ModelRequest(messages=(UserMessage(content=text),), tools=tools)


def test_the_kit_exports_what_its_page_documents() -> None:
    assert sorted(proctor.testing.__all__) == [
        "Call",
        "FunctionModel",
        "ManualClock",
        "ScriptError",
        "ScriptedModel",
        "Step",
        "TestEnvironment",
        "answer",
        "call",
        "call_json",
        "plan",
    ]


# -- scripts -----------------------------------------------------------------------------


async def test_a_script_answers_step_by_step() -> None:
    usage = TokenUsage(input_tokens=10, output_tokens=2)
    offered = (*TOOLS, ToolSchema(name="issue_refund", description="", parameters={}))
    model = ScriptedModel(
        [
            call("lookup_order", order_id="A-1"),
            plan(
                call("issue_refund", order_id="A-1", amount=Decimal("20.00")),
                call_json("issue_refund", '{"order_id": '),
            ),
            answer("Refunded $20.", usage=usage),
        ],
        name="openai:gpt-4o",
    )
    first = await model.complete(request(tools=offered))
    second = await model.complete(request(tools=offered))
    third = await model.complete(request(tools=offered))
    model.assert_done()

    assert first.tool_calls == (
        ToolCall(id="call_1_0", tool="lookup_order", arguments='{"order_id": "A-1"}'),
    )
    assert [json.loads(second.tool_calls[0].arguments)] == [{"order_id": "A-1", "amount": "20.00"}]
    assert second.tool_calls[1].arguments == '{"order_id": '
    assert len({c.id for c in (*first.tool_calls, *second.tool_calls)}) == 3
    assert (third.is_final, third.content, third.usage) == (True, "Refunded $20.", usage)
    assert model.name == "openai:gpt-4o"
    assert len(model.requests) == 3


async def test_a_hand_built_response_and_the_default_usage() -> None:
    usage = TokenUsage(input_tokens=300, output_tokens=60)
    built = ModelResponse(model="gpt-4o", content="hi")
    model = ScriptedModel([built, answer("bye")], usage=usage)
    assert await model.complete(request()) is built
    assert (await model.complete(request())).usage == usage


async def test_a_call_nobody_scripted_says_which_and_what_was_asked() -> None:
    model = ScriptedModel([answer("Shipped.")])
    await model.complete(request())
    with pytest.raises(ScriptError) as raised:
        await model.complete(request("And where is A-2?"))
    message = str(raised.value)
    assert "model call 2 was not scripted (the script has 1 step(s))" in message
    assert "user: 'And where is A-2?'" in message
    assert "tools offered: lookup_order" in message
    # Even if the code under test swallowed it, the test still fails.
    with pytest.raises(ScriptError, match="model call 2 was not scripted"):
        model.assert_done()


async def test_the_last_message_may_be_a_tool_result() -> None:
    model = ScriptedModel([])
    result = ToolResultMessage(tool_call_id="c1", tool="lookup_order", content='{"ok": true}')
    with pytest.raises(ScriptError, match=r"tool result of lookup_order: '\{\"ok\": true\}'"):
        await model.complete(ModelRequest(messages=(UserMessage(content="hi"), result)))


async def test_steps_left_unused_are_listed() -> None:
    model = ScriptedModel(
        [call("lookup_order", order_id="A-1"), call("lookup_order", order_id="A-2"), answer("ok")]
    )
    await model.complete(request())
    with pytest.raises(ScriptError) as raised:
        model.assert_done()
    assert str(raised.value) == (
        "simulated:cheap: 2 scripted step(s) were never asked for (the model was called "
        '1 time(s)): step 2: call lookup_order({"order_id": "A-2"}); step 3: answer \'ok\''
    )


async def test_a_call_to_a_tool_the_request_does_not_offer() -> None:
    model = ScriptedModel([call("issue_refund", order_id="A-1", amount="20.00")])
    with pytest.raises(ScriptError) as raised:
        await model.complete(request())
    assert "step 1 of the script calls 'issue_refund'" in str(raised.value)
    assert "tools offered: lookup_order" in str(raised.value)

    inventive = ScriptedModel([call("drop_tables")], allow_unoffered_tools=True)
    assert (await inventive.complete(request())).tool_calls[0].tool == "drop_tables"


def test_a_plan_needs_a_call() -> None:
    with pytest.raises(ValueError, match="use answer"):
        plan()


async def test_a_function_plays_the_model_sync_or_async() -> None:
    def sync(r: ModelRequest) -> ModelResponse:
        return ModelResponse(model="echo", content=str(r.messages[-1].content))

    async def asynchronous(r: ModelRequest) -> ModelResponse:
        return sync(r)

    for fn in (sync, asynchronous):
        model = FunctionModel(fn, name="openai:gpt-4o-mini")
        assert (await model.complete(request("hello"))).content == "hello"
        assert (model.name, len(model.requests)) == ("openai:gpt-4o-mini", 1)


def test_the_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2026, 3, 1, tzinfo=UTC)
    clock.advance(90)
    assert clock.now() == datetime(2026, 3, 1, 0, 1, 30, tzinfo=UTC)
    assert ManualClock().now() == datetime(2026, 1, 1, tzinfo=UTC)


# -- the test environment ----------------------------------------------------------------


def test_an_environment_lives_in_a_temporary_directory_removed_at_the_end() -> None:
    with TestEnvironment(POLICY, tools=[lookup_order]) as env:
        folder = env.directory
        assert isinstance(env.bundle, Path)
        assert (env.bundle / "policy.cedar").read_text() == POLICY
        assert env.runtime is env.runtime
        assert env.runtime.telemetry is None
        assert isinstance(env.runtime.clock, ManualClock)
        assert env.runtime.settings.database_url == f"sqlite:///{folder / 'proctor.db'}"
    assert not folder.exists()
    assert env.runtimes == []


async def test_a_governed_run_in_an_environment(db_url: str) -> None:
    yaml = "label: shop\napprovals:\n  ttl_s: 60\n"
    async with TestEnvironment(
        POLICY, proctor_yaml=yaml, tools=[lookup_order, issue_refund], db_url=db_url
    ) as env:
        assert env.runtime.policy.version.label == "shop"
        run = await env.start_run(tenant="acme")
        small = await run.call("issue_refund", {"order_id": "A-1", "amount": "20.00"})
        big = await run.call("issue_refund", {"order_id": "A-1", "amount": "500.00"})
        assert (small.status, big.status) == (CallStatus.EXECUTED, CallStatus.AWAITING_APPROVAL)
        assert big.decision is not None
        assert big.decision.policy_ids == ("refund-supervised",)

        env.clock.advance(61)  # type: ignore[attr-defined]  # past the approval's ttl
        other = env.new_runtime()  # another process, on the same store
        assert other is not env.runtime
        assert other.approvals.expire_overdue() == 1
        with pytest.raises(RunTerminated):
            await other.resume(run.id)
    assert env.runtimes == []


def test_settings_and_a_directory_to_keep(tmp_path: Path) -> None:
    env = TestEnvironment(POLICY, directory=tmp_path, settings=Settings(lease_s=5))
    try:
        assert (env.runtime.settings.lease_s, env.runtime.settings.home) == (5, tmp_path / "home")
    finally:
        env.close()
    assert (tmp_path / "bundle" / "policy.cedar").exists()  # a given directory is kept


def test_run_specs_change_from_the_environments_own() -> None:
    env = TestEnvironment()
    try:
        spec = env.spec(tenant="globex", budget={"tool_calls": 3})
        assert (spec.agent, spec.tenant, spec.budget.tool_calls) == ("test-agent", "globex", 3)
        with pytest.raises(ValueError, match="tenant"):
            env.spec(tenant="")
    finally:
        env.close()


def test_cedar_text_or_a_bundle_not_both(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        TestEnvironment(POLICY, bundle=tmp_path)


async def test_an_agent_under_test_with_a_scripted_model() -> None:
    REFUNDS.clear()
    model = ScriptedModel(
        [
            call("lookup_order", order_id="A-1"),
            call("issue_refund", order_id="A-1", amount="20.00"),
            answer("Refunded $20."),
        ]
    )
    async with TestEnvironment(POLICY, tools=[lookup_order, issue_refund]) as env:
        result = await Agent(env.runtime, model).run("Refund $20 on A-1", env.spec())
    assert (result.state, result.answer) == (RunState.COMPLETED, "Refunded $20.")
    assert [("A-1", Decimal("20.00"))] == REFUNDS
    model.assert_done()
