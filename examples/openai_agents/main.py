"""An OpenAI Agents SDK support agent governed by proctor, offline.

python examples/openai_agents/main.py

The agent looks an order up (allowed), tries to delete the customer's account (denied by
policy: the model reads why), and refunds 80 EUR (policy requires a supervisor):
the SDK run is interrupted, the approval is granted in proctor, and the run is
resumed from the SDK's saved RunState. Resuming the same saved state a second
time, as a process that lost the newer one would, runs nothing again. The model
is the SDK's ScriptedModel: no API key, no network.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from agents import Agent, RunState, function_tool, set_tracing_disabled
from agents.items import ToolCallOutputItem
from agents.testing import ScriptedModel, assistant_message, function_call
from agents.tool_context import ToolContext

from proctor import Approver, RunSpec, Runtime, Settings, ToolDeclaration
from proctor.integrations import openai_agents as oai
from proctor.integrations.governor import Declarations, Governor
from proctor.runs.views import load_run
from proctor.states import StepStatus

POLICY = Path(__file__).parent / "policy"
SESSION = "ticket-4711"  # one conversation, one proctor run

executions: Counter[str] = Counter()
"""Real executions of each call's side effect: 2 would mean something ran twice."""


@function_tool
def lookup_order(ctx: ToolContext[Any], order_id: str) -> str:
    """Look an order up."""
    executions[f"lookup_order:{ctx.tool_call_id}"] += 1
    return f"order {order_id}: 120 EUR, delivered"


@function_tool
def delete_account(ctx: ToolContext[Any], customer_id: str) -> str:
    """Delete a customer's account."""
    executions[f"delete_account:{ctx.tool_call_id}"] += 1
    return f"account {customer_id} deleted"


@function_tool
def issue_refund(ctx: ToolContext[Any], order_id: str, amount: int) -> str:
    """Refund part of an order, in EUR."""
    executions[f"issue_refund:{ctx.tool_call_id}"] += 1
    return f"refunded {amount} EUR on {order_id}"


DECLARATIONS = Declarations(
    {
        "lookup_order": ToolDeclaration("read"),
        "delete_account": ToolDeclaration("destructive"),
        "issue_refund": ToolDeclaration("irreversible"),
    }
)

MODEL = ScriptedModel(
    [
        [function_call("lookup_order", {"order_id": "A-1"}, call_id="call_lookup")],
        [function_call("delete_account", {"customer_id": "C-7"}, call_id="call_delete")],
        [function_call("issue_refund", {"order_id": "A-1", "amount": 80}, call_id="call_refund")],
    ]
)


async def main() -> None:
    set_tracing_disabled(True)
    with tempfile.TemporaryDirectory() as home:
        rt = Runtime(
            policy=POLICY,
            settings=Settings(home=Path(home), db_url=f"sqlite:///{home}/proctor.db"),
        )
        spec = RunSpec(
            agent="support-bot",
            role="support_agent",
            tenant="acme",
            workflow="support",
            requester="alice",
        )
        governor = Governor(rt, spec, DECLARATIONS)
        agent = oai.govern(
            Agent(name="support", model=MODEL, tools=[lookup_order, delete_account, issue_refund]),
            governor,
        )

        first = await oai.run(
            agent, "A-1 arrived broken: refund 80 EUR", governor=governor, session=SESSION
        )
        for item in first.new_items:
            if isinstance(item, ToolCallOutputItem):
                print("the model read:", item.output)
        [held] = first.interruptions
        print("interrupted:", held.tool_name, held.arguments)
        saved = first.to_state().to_string()  # what an application keeps while it waits

        [request] = rt.approvals.list(tenant="acme")
        print("proctor holds approval", request.id, "for", request.tool, "by", request.roles)
        rt.approvals.approve(request.id, Approver("sam", "supervisor"), "photo of damage")

        MODEL.extend([[assistant_message("Refunded 80 EUR on A-1.")]])
        state = await RunState.from_string(agent, saved)
        done = await oai.resume(agent, state, governor=governor, session=SESSION, end=False)
        print("resumed:", done.final_output)

        # The same saved state resumed again: the journal answers, nothing runs twice.
        MODEL.extend([[assistant_message("Refunded 80 EUR on A-1.")]])
        again = await RunState.from_string(agent, saved)
        await oai.resume(agent, again, governor=governor, session=SESSION)

        with rt.store.read() as conn:
            steps = load_run(conn, request.run_id).steps
        ran = [s for s in steps if s.status is StepStatus.SUCCEEDED]
        summary = {
            "framework": "openai-agents",
            "executed": [s.tool for s in ran if s.approval_id is None],
            "denied": [s.tool for s in steps if s.status is StepStatus.DENIED],
            "approved_then_executed": [s.tool for s in ran if s.approval_id is not None],
            "executions_per_key": dict(executions),
            "audit_verified": rt.verify_audit().ok,
        }
        rt.close()
    print(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main())
