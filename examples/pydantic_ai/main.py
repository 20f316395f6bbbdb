"""A pydantic-ai support agent governed by proctor, offline (a scripted FunctionModel).

python examples/pydantic_ai/main.py

The model looks an order up (allowed), tries to delete the customer's account
(denied: it reads why), and refunds the order (a supervisor must approve: the agent
run ends with DeferredToolRequests). The supervisor approves in proctor; the agent
resumes from its message history and the refund runs, once. The last line printed is
a JSON summary.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic_ai import Agent, DeferredToolRequests, RunContext
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.toolsets import FunctionToolset

from proctor import Approver, RunSpec, Runtime, Settings, ToolDeclaration
from proctor.integrations import Declarations, Governor
from proctor.integrations.pydantic_ai import Proctor, deferred_results
from proctor.runs.views import list_runs, load_run

POLICY = Path(__file__).parent / "policy"

executions: Counter[str] = Counter()
"""Real executions of each call's side effect, by tool and tool call id."""

support: FunctionToolset[None] = FunctionToolset()


@support.tool
def lookup_order(ctx: RunContext[None], order_id: str) -> dict[str, Any]:
    """Look an order up."""
    executions[f"lookup_order:{ctx.tool_call_id}"] += 1
    return {"order_id": order_id, "status": "delivered", "total": 120}


@support.tool
def delete_account(ctx: RunContext[None], customer_id: str) -> str:
    """Delete a customer's account."""
    executions[f"delete_account:{ctx.tool_call_id}"] += 1
    return f"deleted {customer_id}"


@support.tool
def issue_refund(ctx: RunContext[None], order_id: str, amount: int) -> dict[str, Any]:
    """Refund an order, in whole euros."""
    executions[f"issue_refund:{ctx.tool_call_id}"] += 1
    return {"order_id": order_id, "refunded": amount}


PLAN: list[tuple[str, dict[str, Any]]] = [
    ("lookup_order", {"order_id": "A-1"}),
    ("delete_account", {"customer_id": "C-7"}),
    ("issue_refund", {"order_id": "A-1", "amount": 120}),
]


def scripted(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """The model: the next planned call after each answer, then a reply."""
    for part in messages[-1].parts:
        if isinstance(part, ToolReturnPart) and part.outcome == "failed":
            print(f"model read from {part.tool_name}: {part.model_response_str()}")
    made = sum(isinstance(m, ModelResponse) for m in messages)
    if made < len(PLAN):
        tool, args = PLAN[made]
        return ModelResponse(parts=[ToolCallPart(tool, args, tool_call_id=f"call-{made}")])
    return ModelResponse(parts=[TextPart("Refunded A-1; the account stays.")])


async def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        runtime = Runtime(policy=POLICY, settings=Settings(home=Path(home)))
        governor = Governor(
            runtime,
            RunSpec(
                agent="support-bot",
                role="support_agent",
                tenant="acme",
                workflow="support",
                requester="alice",
            ),
            Declarations(
                {
                    "lookup_order": ToolDeclaration("read"),
                    "delete_account": ToolDeclaration("destructive"),
                    "issue_refund": ToolDeclaration("irreversible"),
                }
            ),
        )
        agent = Agent(
            FunctionModel(scripted),
            toolsets=[support],
            output_type=[str, DeferredToolRequests],
            capabilities=[Proctor(governor)],
        )

        first = await agent.run("Refund order A-1 and clean up.", conversation_id="ticket-42")
        assert isinstance(first.output, DeferredToolRequests)
        for call in first.output.approvals:
            ticket = first.output.metadata[call.tool_call_id]["proctor"]
            print(f"{call.tool_name} waits for approval {ticket['approval_id']}: {ticket['how']}")
            runtime.approvals.approve(
                ticket["approval_id"], Approver("sam", "supervisor"), "receipt checked"
            )

        resumed = await agent.run(
            message_history=first.all_messages(),
            deferred_tool_results=deferred_results(governor, first.output),
        )
        print("agent:", resumed.output)

        with runtime.store.read() as conn:
            [listed] = list_runs(conn)
            run = load_run(conn, listed.id)
        print(f"run {run.id}: {run.state.value}, steps {[s.status.value for s in run.steps]}")
        summary = {
            "framework": "pydantic-ai",
            "executed": [
                s.tool for s in run.steps if s.status == "succeeded" and s.approval_id is None
            ],
            "denied": [s.tool for s in run.steps if s.status in ("denied", "approval_denied")],
            "approved_then_executed": [
                s.tool for s in run.steps if s.status == "succeeded" and s.approval_id
            ],
            "executions_per_key": dict(executions),
            "audit_verified": runtime.verify_audit().ok,
        }
        runtime.close()
        return summary


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
