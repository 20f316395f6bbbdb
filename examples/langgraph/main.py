"""A LangGraph support agent whose tool calls go through proctor; offline, one command.

python examples/langgraph/main.py

The model is LangChain's fake chat model, scripted: it looks an order up (allowed),
tries to delete the customer's account (denied by policy), and refunds the order
(held for a supervisor's approval). The graph interrupts with the approval ticket; a
supervisor approves in proctor; the graph resumes with ``Command(resume=...)`` and the
refund runs once. The last line printed is a JSON summary.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from proctor import Approver, RunSpec, Runtime, Settings
from proctor.integrations import Declarations, Governor
from proctor.integrations.langgraph import LangGraphGovernor, current_call
from proctor.runs.views import load_run
from proctor.states import StepStatus
from proctor.tools import ToolDeclaration

POLICY = Path(__file__).parent / "policy"
EFFECTS: Counter[str] = Counter()  # side effects, by idempotency key
NAMES: dict[str, str] = {}


def _effect(name: str) -> str:
    ctx = current_call()
    key = ctx.idempotency_key if ctx else "ungoverned"
    EFFECTS[key] += 1
    NAMES[key] = name
    return key


@tool
def lookup_order(order_id: str) -> str:
    """Look an order up."""
    _effect("lookup_order")
    return f"order {order_id}: 2 items, 240 EUR, delivered"


@tool
def delete_account(customer_id: str) -> str:
    """Delete a customer's account."""
    _effect("delete_account")
    return f"account {customer_id} deleted"


@tool
def issue_refund(order_id: str, amount: int) -> str:
    """Refund an order, in whole euros."""
    key = _effect("issue_refund")
    return f"refunded {amount} EUR on {order_id} (key {key})"


class ScriptedModel(GenericFakeChatModel):
    """LangChain's fake chat model; tools are bound by the script, not by the model."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self


def script() -> ScriptedModel:
    def call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
        return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])

    return ScriptedModel(
        messages=iter(
            [
                call("lookup_order", {"order_id": "A-1"}, "call_lookup"),
                call("delete_account", {"customer_id": "C-7"}, "call_delete"),
                call("issue_refund", {"order_id": "A-1", "amount": 240}, "call_refund"),
                AIMessage(content="The refund of 240 EUR is on its way."),
            ]
        )
    )


def by_call(steps: Any) -> dict[str, int]:
    """Executions counted by idempotency key, shown per tool call (tool:call id)."""
    names = {s.idempotency_key: f"{s.tool}:{s.call_id}" for s in steps}
    return {names.get(key, key): count for key, count in EFFECTS.items()}


async def main(home: Path) -> dict[str, Any]:
    runtime = Runtime(policy=POLICY, settings=Settings(home=home))
    spec = RunSpec(
        agent="support-bot",
        role="support_agent",
        tenant="acme",
        workflow="support",
        requester="alice",
    )
    declared = Declarations(
        {
            "lookup_order": ToolDeclaration("read", trust="trusted"),
            "delete_account": ToolDeclaration("destructive"),
            "issue_refund": ToolDeclaration("irreversible"),
        }
    )
    tools = [lookup_order, delete_account, issue_refund]
    governed = LangGraphGovernor(Governor(runtime, spec, declared), tools)
    agent = create_agent(
        script(), tools=tools, middleware=[governed.middleware()], checkpointer=InMemorySaver()
    )
    config: Any = {"configurable": {"thread_id": "ticket-4711"}}

    first = await agent.ainvoke(
        {"messages": [("user", "Refund order A-1, close my account")]}, config
    )
    [pending] = first["__interrupt__"]
    ticket = pending.value
    print("interrupted:", ticket["tool"], ticket["args"], "policy", ticket["policy_ids"])
    runtime.approvals.approve(ticket["approval_id"], Approver("sam", "supervisor"), "receipt ok")
    done = await agent.ainvoke(Command(resume={"approved": True}), config)

    messages = [m for m in done["messages"] if isinstance(m, ToolMessage)]
    for m in messages:
        print(f"{m.name}: {m.status}: {m.content}")
    with runtime.store.read() as conn:
        view = load_run(conn, ticket["run_id"])
    print("run", view.id, view.state.value, "session", view.session)
    ran = [s for s in view.steps if s.status is StepStatus.SUCCEEDED]
    summary = {
        "framework": "langgraph",
        "executed": [s.tool for s in ran if s.approval_id is None],
        "denied": [s.tool for s in view.steps if s.status is StepStatus.DENIED],
        "approved_then_executed": [s.tool for s in ran if s.approval_id is not None],
        "executions_per_key": by_call(view.steps),
        "audit_verified": runtime.verify_audit().ok,
    }
    runtime.close()
    return summary


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="proctor-langgraph-") as home:
        print(json.dumps(asyncio.run(main(Path(home)))))
