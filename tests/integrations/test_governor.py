"""What every framework integration relies on: a session is a run, a call id runs once,
an approval decided in proctor is the one that counts, and the model reads why."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from proctor.approvals import Approver
from proctor.errors import RunBusy, ToolDefinitionError
from proctor.integrations import Declarations, Governor
from proctor.runs.views import load_run
from proctor.states import Reason, RunState
from proctor.testing import TestEnvironment
from proctor.tools import Effect, ToolContext, ToolDeclaration

POLICY = """
@id("reads")
permit(principal, action == Action::"get_order", resource);

@id("small-refunds")
permit(principal, action == Action::"refund", resource) when { context.args.amount <= 100 };

@id("large-refunds")
@approval("supervisor")
permit(principal, action == Action::"refund", resource) when { context.args.amount > 100 };
"""
REFUND = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}, "amount": {"type": "integer"}},
    "required": ["order_id", "amount"],
}
ORDER = {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}
DECLARED = Declarations(
    {"refund": ToolDeclaration("irreversible"), "get_*": ToolDeclaration("read", trust="trusted")}
)


class Framework:
    """What a framework does: it runs its own tools, and counts what ran."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, dict[str, Any]]] = []

    def execute(self, name: str) -> Any:
        async def run(args: dict[str, Any], ctx: ToolContext) -> Any:
            self.ran.append((name, args))
            return {"done": name, "key": ctx.idempotency_key}

        return run


@pytest.fixture
async def kit(db_url: str) -> AsyncIterator[TestEnvironment]:
    async with TestEnvironment(
        POLICY, db_url=db_url, proctor_yaml="label: t\nbudgets:\n  run:\n    usd: 1\n"
    ) as env:
        yield env


def governor(env: TestEnvironment, **overrides: Any) -> Governor:
    gov = Governor(env.new_runtime(**overrides), env.spec(), DECLARED)
    gov.tool("refund", "Refund an order.", REFUND)
    gov.tool("get_order", "Look an order up.", ORDER)
    return gov


def test_a_tool_nothing_declares_is_refused() -> None:
    with pytest.raises(ToolDefinitionError, match="'delete_user' has no declaration"):
        DECLARED.of("delete_user")
    assert DECLARED.of("get_customer").effect is Effect.READ
    default = Declarations(default=ToolDeclaration("write"))
    assert default.of("anything").effect is Effect.WRITE


async def test_allowed_denied_and_invalid_calls(kit: TestEnvironment) -> None:
    gov, fw = governor(kit), Framework()
    ok = await gov.call(
        "t-1", "refund", {"order_id": "A", "amount": 5}, call_id="1", execute=fw.execute("refund")
    )
    assert ok.executed
    assert ok.result["done"] == "refund"
    bad = await gov.call(
        "t-1", "refund", '{"order_id": "A"}', call_id="2", execute=fw.execute("refund")
    )
    assert bad.status == "invalid"
    assert "field 'amount' is required" in bad.for_model()
    unknown = await gov.call("t-1", "wire_money", {}, call_id="3")
    assert unknown.status == "invalid"
    assert "unknown tool 'wire_money'" in unknown.message
    assert fw.ran == [("refund", {"order_id": "A", "amount": 5})]


async def test_an_approval_counts_only_as_proctor_decides_it(kit: TestEnvironment) -> None:
    gov, fw = governor(kit), Framework()
    large = {"order_id": "A", "amount": 500}
    held = await gov.call("t-1", "refund", large, call_id="9", execute=fw.execute("refund"))
    assert held.status == "awaiting_approval"
    assert held.approval is not None
    ticket = held.approval.to_json()
    assert ticket["roles"] == ["supervisor"]
    assert ticket["policy_ids"] == ["large-refunds"]
    assert ticket["args"] == large
    assert "proctor approvals approve" in ticket["how"]
    # Another call of the session waits with it; nothing runs while a person decides.
    other = await gov.call(
        "t-1", "get_order", {"order_id": "A"}, call_id="10", execute=fw.execute("get_order")
    )
    assert other.status == "awaiting_approval"
    assert other.approval is not None
    assert other.approval.approval_id == held.approval.approval_id
    still = await gov.call("t-1", "refund", large, call_id="9", execute=fw.execute("refund"))
    assert still.status == "awaiting_approval"
    assert fw.ran == []

    kit.new_runtime().approvals.approve(
        held.approval.approval_id, Approver("sam", "supervisor"), "ok"
    )
    resumed = governor(kit)  # another process continues the conversation
    for _ in range(2):
        done = await resumed.call("t-1", "refund", large, call_id="9", execute=fw.execute("refund"))
        assert done.executed
    assert fw.ran == [("refund", large)]
    assert resumed.run_id("t-1") == held.approval.run_id
    assert await resumed.end("t-1", "completed") == held.approval.run_id
    assert resumed.runtime.verify_audit().ok


async def test_a_refusal_reaches_the_model_and_nothing_runs(kit: TestEnvironment) -> None:
    gov, fw = governor(kit), Framework()
    large = {"order_id": "A", "amount": 500}
    held = await gov.call("t-1", "refund", large, call_id="9", execute=fw.execute("refund"))
    assert held.approval is not None
    gov.runtime.approvals.deny(held.approval.approval_id, Approver("sam", "supervisor"), "too much")
    refused = await gov.call("t-1", "refund", large, call_id="9", execute=fw.execute("refund"))
    assert refused.status == "denied"
    assert refused.for_model() == "Not allowed: sam refused refund (too much); it did not run."
    assert fw.ran == []


async def test_usage_counts_against_the_run_and_the_cap_stops_it(kit: TestEnvironment) -> None:
    gov, fw = governor(kit), Framework()
    await gov.usage("t-1", tokens=1000, usd=Decimal("0.50"))
    first = await gov.call(
        "t-1", "get_order", {"order_id": "A"}, call_id="0", execute=fw.execute("get_order")
    )
    assert first.executed
    # 400k tokens in and 50k out of gpt-4.1 cost $0.80 + $0.40 at its built-in price.
    await gov.usage("t-1", model="openai:gpt-4.1", input_tokens=400_000, output_tokens=50_000)
    stopped = await gov.call(
        "t-1", "get_order", {"order_id": "A"}, call_id="1", execute=fw.execute("get_order")
    )
    assert stopped.status == "stopped"
    assert "budget reached" in stopped.message
    assert fw.ran == [("get_order", {"order_id": "A"})]
    assert gov.run_id("t-1") is None  # the next turn of the conversation is a new run


async def test_a_conversation_that_ends_while_a_call_waits_is_handed_off(
    kit: TestEnvironment,
) -> None:
    gov, fw = governor(kit), Framework()
    held = await gov.call(
        "t-1", "refund", {"order_id": "A", "amount": 500}, call_id="9", execute=fw.execute("refund")
    )
    assert held.approval is not None
    assert await gov.end("t-1", "completed") == held.approval.run_id
    with gov.runtime.store.read() as conn:
        view = load_run(conn, held.approval.run_id)
    assert view.state is RunState.HANDED_OFF
    assert view.reason is Reason.ESCALATED
    assert view.session == "t-1"
    assert await gov.end("t-1", "completed") is None


async def test_a_released_conversation_is_taken_at_once_by_another_process(
    kit: TestEnvironment,
) -> None:
    gov, fw = governor(kit), Framework()
    done = await gov.call(
        "t-1", "get_order", {"order_id": "A"}, call_id="1", execute=fw.execute("get_order")
    )
    assert done.outcome is not None
    other = kit.new_runtime()
    with pytest.raises(RunBusy):
        await other.resume(done.outcome.run_id)  # this process's lease is live
    await gov.release("t-1")
    taken = await other.resume(done.outcome.run_id)
    assert taken.id == done.outcome.run_id
