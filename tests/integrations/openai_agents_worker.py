"""The support agent the OpenAI Agents SDK tests govern, and a worker process for the
crash test: ``python -m tests.integrations.openai_agents_worker start|resume ...``.

Each tool counts its real executions by SDK call id in a ledger file, so a call that
ran twice shows 2 whichever process ran it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from agents import (
    Agent,
    FunctionTool,
    RunContextWrapper,
    RunHooks,
    RunState,
    function_tool,
    set_tracing_disabled,
)
from agents.testing import ScriptedModel, assistant_message, function_call
from agents.tool import Tool as SdkTool
from agents.tool_context import ToolContext as SdkToolContext

from proctor import RunSpec, Runtime, Settings
from proctor.integrations import openai_agents as oai
from proctor.integrations.governor import Declarations, Governor
from proctor.tools import ToolDeclaration

set_tracing_disabled(True)

POLICY = """
@id("lookup")
permit(principal, action == Action::"lookup_order", resource);

@id("refund-small")
permit(principal, action == Action::"refund", resource)
when { context.args.amount <= 50 };

@id("refund-supervised")
@approval("supervisor")
permit(principal, action == Action::"refund", resource)
when { context.args.amount > 50 && context.args.amount <= 500 };

@id("notes")
permit(principal, action == Action::"add_note", resource);

@id("no-secrets-in-notes")
forbid(principal, action == Action::"add_note", resource)
when { context.args.text like "*password*" };
"""

DECLARATIONS = Declarations(
    {
        "lookup_order": ToolDeclaration("read"),
        "refund": ToolDeclaration("irreversible"),
        "add_note": ToolDeclaration("write"),
    }
)
SPEC = RunSpec(
    agent="support-bot", role="agent", tenant="acme", workflow="support", requester="alice"
)


class Ledger:
    """Real executions of the tools' side effects, one line per execution."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, key: str) -> None:
        with self.path.open("a") as f:
            f.write(key + "\n")

    def counts(self) -> dict[str, int]:
        if not self.path.exists():
            return {}
        return dict(Counter(self.path.read_text().splitlines()))


def support_tools(ledger: Ledger) -> list[FunctionTool]:
    @function_tool
    def lookup_order(ctx: SdkToolContext[Any], order_id: str) -> str:
        """Look an order up."""
        ledger.add(f"lookup_order:{ctx.tool_call_id}")
        return f"order {order_id}: 120 EUR, delivered"

    @function_tool
    def refund(ctx: SdkToolContext[Any], order_id: str, amount: int) -> str:
        """Refund part of an order."""
        ledger.add(f"refund:{ctx.tool_call_id}")
        return f"refunded {amount} EUR on {order_id}"

    return [lookup_order, refund]


def support_agent(ledger: Ledger, model: ScriptedModel, governor: Governor) -> Agent[Any]:
    tools: list[SdkTool] = list(support_tools(ledger))
    return oai.govern(Agent(name="support", model=model, tools=tools), governor, DECLARATIONS)


def write_bundle(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policy.cedar").write_text(POLICY)
    (folder / "proctor.yaml").write_text("label: openai-agents-test\n")
    return folder


# -- the worker ----------------------------------------------------------------------------


class _DieAfterTool(RunHooks[Any]):
    async def on_tool_end(
        self, context: RunContextWrapper[Any], agent: Any, tool: Any, result: object
    ) -> None:
        os._exit(17)  # the process dies after the side effect, before the SDK moves on


async def _work(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(args.folder)
    ledger = Ledger(folder / "ledger.txt")
    rt = Runtime(
        policy=folder / "bundle",
        settings=Settings(home=folder / "home", db_url=args.db_url, lease_s=1.0),
    )
    governor = Governor(rt, SPEC, DECLARATIONS)
    state_file = folder / "state.json"
    if args.command == "start":
        big = function_call("refund", {"order_id": "A-1", "amount": 200}, call_id="call_big")
        model = ScriptedModel([[big]])
        agent = support_agent(ledger, model, governor)
        result = await oai.run(agent, "refund A-1: 200", governor=governor, session="conv-1")
        state_file.write_text(result.to_state().to_string())
        applied = await oai.apply_approvals(result.to_state(), governor, "conv-1")
        return {"pending": applied.pending, "approvals": applied.approval_ids}
    model = ScriptedModel([[assistant_message("refund done")]])
    agent = support_agent(ledger, model, governor)
    state = await RunState.from_string(agent, state_file.read_text())
    hooks = _DieAfterTool() if args.die_after_tool else None
    result = await oai.resume(agent, state, governor=governor, session="conv-1", hooks=hooks)
    return {"final": result.final_output, "ledger": ledger.counts()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["start", "resume"])
    parser.add_argument("folder")
    parser.add_argument("db_url")
    parser.add_argument("--die-after-tool", action="store_true")
    print(json.dumps(asyncio.run(_work(parser.parse_args()))), flush=True)
    os._exit(0)  # no clean shutdown: the next process finds only what was made durable


if __name__ == "__main__":
    main()
