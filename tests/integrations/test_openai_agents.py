"""OpenAI Agents SDK agents governed by proctor: the real SDK, driven by its own
``ScriptedModel``, with no network."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("agents")

import mcp.types as mcp
from agents import Agent, RunState
from agents.mcp import MCPServer
from agents.testing import ScriptedModel, assistant_message, function_call
from agents.usage import Usage

from proctor import Approver, Runtime, Settings
from proctor.budgets import BudgetCaps
from proctor.integrations import openai_agents as oai
from proctor.integrations.governor import Governor
from proctor.runs.views import RunView, list_runs, load_run
from proctor.states import ApprovalStatus, Reason
from proctor.states import RunState as ProctorRunState

from .openai_agents_worker import (
    DECLARATIONS,
    SPEC,
    Ledger,
    support_agent,
    support_tools,
    write_bundle,
)

ROOT = Path(__file__).resolve().parents[2]
SUPERVISOR = Approver("sam", "supervisor")


@dataclass
class World:
    folder: Path
    db_url: str
    runtime: Runtime
    governor: Governor
    ledger: Ledger

    def agent(self, *steps: Any) -> tuple[Agent[Any], ScriptedModel]:
        model = ScriptedModel(list(steps))
        return support_agent(self.ledger, model, self.governor), model

    def runs(self) -> list[RunView]:
        with self.runtime.store.read() as conn:
            return [load_run(conn, r.id) for r in list_runs(conn)]

    def only_run(self) -> RunView:
        [found] = self.runs()
        return found


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Iterator[World]:
    write_bundle(tmp_path / "bundle")
    rt = Runtime(
        policy=tmp_path / "bundle",
        settings=Settings(home=tmp_path / "home", db_url=db_url, lease_s=1.0),
    )
    yield World(
        tmp_path, db_url, rt, Governor(rt, SPEC, DECLARATIONS), Ledger(tmp_path / "ledger.txt")
    )
    rt.close()


def tool_output(model: ScriptedModel, call_id: str) -> str:
    """What the model was given as the output of its call ``call_id``."""
    for call in model.calls:
        for item in call.input if isinstance(call.input, list) else []:
            if (
                isinstance(item, dict)
                and item.get("type") == "function_call_output"
                and (item.get("call_id") == call_id)
            ):
                return str(item["output"])
    raise AssertionError(f"the model never saw an output for {call_id}")


def refund(amount: Any, call_id: str) -> Any:
    return function_call("refund", {"order_id": "A-1", "amount": amount}, call_id=call_id)


async def test_an_allowed_call_runs_in_the_gate_keyed_by_the_sdk_call_id(world: World) -> None:
    lookup = function_call("lookup_order", {"order_id": "A-1"}, call_id="call_1")
    agent, model = world.agent([lookup], [assistant_message("Delivered.")])

    result = await oai.run(agent, "where is A-1?", governor=world.governor, session="conv-1")

    assert result.final_output == "Delivered."
    assert tool_output(model, "call_1") == "order A-1: 120 EUR, delivered"
    assert world.ledger.counts() == {"lookup_order:call_1": 1}
    run = world.only_run()
    assert (run.session, run.state) == ("conv-1", ProctorRunState.COMPLETED)
    assert [(s.tool, s.call_id, s.status.value) for s in run.steps] == [
        ("lookup_order", "call_1", "succeeded")
    ]
    assert world.runtime.verify_audit().ok


async def test_a_denied_call_is_told_to_the_model_and_never_runs(world: World) -> None:
    agent, model = world.agent([refund(1000, "call_1")], [assistant_message("I cannot.")])

    await oai.run(agent, "refund 1000", governor=world.governor, session="conv-1")

    assert world.ledger.counts() == {}
    assert tool_output(model, "call_1").startswith("Not allowed: refund was denied by policy")
    assert [s.status.value for s in world.only_run().steps] == ["denied"]
    assert world.runtime.verify_audit().ok


async def test_invalid_arguments_name_the_field_and_the_model_may_repair(world: World) -> None:
    agent, model = world.agent(
        [refund("lots", "call_1")], [refund(20, "call_2")], [assistant_message("Refunded.")]
    )

    await oai.run(agent, "refund a little", governor=world.governor, session="conv-1")

    told = tool_output(model, "call_1")
    assert "amount" in told
    assert "Correct the arguments" in told
    assert world.ledger.counts() == {"refund:call_2": 1}
    assert [s.call_id for s in world.only_run().steps] == ["call_2"]


async def test_approved_in_proctor_the_resumed_call_runs_once(world: World) -> None:
    # The model makes a call that needs approval and, in the same turn, one that does not.
    look = function_call("lookup_order", {"order_id": "A-1"}, call_id="call_look")
    agent, model = world.agent([refund(200, "call_big"), look])
    first = await oai.run(agent, "refund 200", governor=world.governor, session="conv-1")

    # The SDK interrupted the run; proctor holds the approval request. The lookup ran,
    # or waits behind the refund if the SDK proposed it second.
    held = [i.call_id for i in first.interruptions]
    assert held[0] == "call_big"
    [request] = world.runtime.approvals.list(tenant="acme")
    assert (request.tool, request.roles) == ("refund", ("supervisor",))
    assert "refund:call_big" not in world.ledger.counts()
    saved = first.to_state().to_string()

    state = await RunState.from_string(agent, saved)
    assert (await oai.apply_approvals(state, world.governor, "conv-1")).pending == held

    world.runtime.approvals.approve(request.id, SUPERVISOR, "receipt checked")
    model.extend([[assistant_message("Refunded.")]])
    state = await RunState.from_string(agent, saved)
    done = await oai.resume(agent, state, governor=world.governor, session="conv-1", end=False)
    assert done.final_output == "Refunded."
    assert tool_output(model, "call_big") == "refunded 200 EUR on A-1"
    assert world.ledger.counts() == {"refund:call_big": 1, "lookup_order:call_look": 1}

    # Resuming the same interrupted state again (a process that lost the newer one):
    # the journal answers, nothing runs twice.
    model.extend([[assistant_message("Refunded.")]])
    state = await RunState.from_string(agent, saved)
    await oai.resume(agent, state, governor=world.governor, session="conv-1")
    assert world.ledger.counts() == {"refund:call_big": 1, "lookup_order:call_look": 1}
    run = world.only_run()
    assert run.state is ProctorRunState.COMPLETED
    assert sorted((s.call_id, s.status.value) for s in run.steps) == [
        ("call_big", "succeeded"),
        ("call_look", "succeeded"),
    ]
    assert world.runtime.verify_audit().ok


async def test_two_calls_needing_approval_in_one_turn_are_decided_in_turn(world: World) -> None:
    agent, model = world.agent([refund(200, "call_one"), refund(300, "call_two")])
    first = await oai.run(agent, "refund twice", governor=world.governor, session="conv-1")
    assert sorted(i.call_id for i in first.interruptions) == ["call_one", "call_two"]
    # proctor holds one request at a time: the second call waits behind the first.
    [request] = world.runtime.approvals.list(tenant="acme")
    first_id = world.only_run().steps[request.step].call_id
    world.runtime.approvals.approve(request.id, SUPERVISOR, "ok")

    second = await oai.resume(agent, first.to_state(), governor=world.governor, session="conv-1")
    assert world.ledger.counts() == {f"refund:{first_id}": 1}
    [held] = [i.call_id for i in second.interruptions]
    assert held != first_id
    [request] = world.runtime.approvals.list(tenant="acme")  # its own request now
    world.runtime.approvals.approve(request.id, SUPERVISOR, "ok")

    model.extend([[assistant_message("Both refunded.")]])
    done = await oai.resume(agent, second.to_state(), governor=world.governor, session="conv-1")
    assert done.final_output == "Both refunded."
    assert world.ledger.counts() == {"refund:call_one": 1, "refund:call_two": 1}
    assert world.runtime.verify_audit().ok


async def test_a_refusal_in_proctor_reaches_the_model_and_the_run_can_stop(world: World) -> None:
    agent, model = world.agent([refund(200, "call_big")], [assistant_message("Sorry.")])
    first = await oai.run(agent, "refund 200", governor=world.governor, session="conv-1")
    [request] = world.runtime.approvals.list(tenant="acme")
    world.runtime.approvals.deny(request.id, SUPERVISOR, "no receipt")

    state = first.to_state()
    applied = await oai.apply_approvals(state, world.governor, "conv-1")
    assert (applied.rejected, applied.approval_ids) == (["call_big"], {"call_big": request.id})
    await oai.run(agent, state, governor=world.governor, session="conv-1", end=False)

    assert world.ledger.counts() == {}
    assert (
        tool_output(model, "call_big")
        == "Not allowed: sam refused refund (no receipt); it did not run."
    )
    await world.governor.end("conv-1", "handed_off", reason=Reason.POLICY_DENIED, detail="refused")
    assert world.only_run().state is ProctorRunState.HANDED_OFF


@pytest.mark.parametrize("decision", ["pending", "denied"])
async def test_an_approval_in_the_sdk_alone_runs_nothing(world: World, decision: str) -> None:
    agent, model = world.agent([refund(200, "call_big")], [assistant_message("ok")])
    first = await oai.run(agent, "refund 200", governor=world.governor, session="conv-1")
    [request] = world.runtime.approvals.list(tenant="acme")
    if decision == "denied":
        world.runtime.approvals.deny(request.id, SUPERVISOR, "no receipt")

    state = first.to_state()
    for item in state.get_interruptions():
        state.approve(item)  # the SDK's own approval, bypassing proctor's queue
    await oai.run(agent, state, governor=world.governor, session="conv-1", end=False)

    assert world.ledger.counts() == {}
    told = tool_output(model, "call_big")
    assert told.startswith("Waiting for approval" if decision == "pending" else "Not allowed")
    status = world.runtime.approvals.get(request.id).status
    assert status is (ApprovalStatus.PENDING if decision == "pending" else ApprovalStatus.DENIED)


async def test_tools_of_nested_agents_are_governed(world: World) -> None:
    lookup, refund_tool = support_tools(world.ledger)
    billing_model = ScriptedModel(
        [[refund(30, "call_small")], [refund(100, "call_mid")], [assistant_message("billed")]]
    )
    billing = Agent(name="billing", model=billing_model, tools=[refund_tool])
    shipping_model = ScriptedModel(
        [
            [function_call("lookup_order", {"order_id": "A-1"}, call_id="call_ship")],
            [assistant_message("shipped")],
        ]
    )
    shipping = Agent(name="shipping", model=shipping_model, tools=[lookup])
    front = ScriptedModel(
        [
            [function_call("billing", {"input": "refund A-1"}, call_id="call_billing")],
            [function_call("transfer_to_shipping", {}, call_id="call_handoff")],
        ]
    )
    agent = oai.govern(
        Agent(
            name="front",
            model=front,
            tools=[billing.as_tool("billing", "Refunds and invoices.")],
            handoffs=[shipping],
        ),
        world.governor,
        DECLARATIONS,
    )

    first = await oai.run(agent, "refund then ship", governor=world.governor, session="conv-1")
    # The agent used as a tool asked for approval: the interruption reaches the top run.
    assert [i.call_id for i in first.interruptions] == ["call_mid"]
    assert world.ledger.counts() == {"refund:call_small": 1}
    [request] = world.runtime.approvals.list(tenant="acme")
    world.runtime.approvals.approve(request.id, SUPERVISOR, "ok")

    done = await oai.resume(agent, first.to_state(), governor=world.governor, session="conv-1")

    assert done.final_output == "shipped"
    assert world.ledger.counts() == {
        "refund:call_small": 1,
        "refund:call_mid": 1,
        "lookup_order:call_ship": 1,
    }
    run = world.only_run()
    assert [s.call_id for s in run.steps] == ["call_small", "call_mid", "call_ship"]
    assert world.runtime.verify_audit().ok


class NotesServer(MCPServer):
    """An MCP server in memory: its tools are listed when the SDK runs the agent."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger

    @property
    def name(self) -> str:
        return "notes"

    async def connect(self) -> None:
        pass

    async def cleanup(self) -> None:
        pass

    async def list_tools(self, run_context: Any = None, agent: Any = None) -> list[mcp.Tool]:
        schema = {"type": "object", "properties": {"text": {"type": "string"}}}
        return [mcp.Tool(name="add_note", description="Add a note.", inputSchema=schema)]

    async def call_tool(
        self, tool_name: str, arguments: dict[str, Any] | None, meta: Any = None
    ) -> mcp.CallToolResult:
        self.ledger.add(f"{tool_name}:{(arguments or {}).get('text')}")
        return mcp.CallToolResult(content=[mcp.TextContent(type="text", text="noted")])

    async def list_prompts(self) -> Any:
        raise NotImplementedError

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError


async def test_tools_of_an_mcp_server_are_governed(world: World) -> None:
    model = ScriptedModel(
        [
            [
                function_call("add_note", {"text": "customer called"}, call_id="call_1"),
                function_call("add_note", {"text": "password is hunter2"}, call_id="call_2"),
            ],
            [assistant_message("Noted.")],
        ]
    )
    agent = oai.govern(
        Agent(name="notes", model=model, mcp_servers=[NotesServer(world.ledger)]),
        world.governor,
        DECLARATIONS,
    )

    await oai.run(agent, "take notes", governor=world.governor, session="conv-1")

    assert world.ledger.counts() == {"add_note:customer called": 1}
    assert "noted" in tool_output(model, "call_1")
    assert tool_output(model, "call_2").startswith("Not allowed: add_note was denied by policy")
    run = world.only_run()
    assert [(s.call_id, s.status.value) for s in run.steps] == [
        ("call_1", "succeeded"),
        ("call_2", "denied"),
    ]


async def test_model_usage_counts_against_the_run_budget(world: World) -> None:
    spec = SPEC.model_copy(update={"budget": BudgetCaps(model_tokens=100)})
    heavy = Usage(requests=1, input_tokens=120, output_tokens=30, total_tokens=150)
    agent, _ = world.agent({"output": [refund(20, "call_1")], "usage": heavy})

    with pytest.raises(oai.RunStopped, match="budget"):
        await oai.run(agent, "refund", governor=world.governor, session="conv-1", spec=spec)

    assert world.ledger.counts() == {}
    run = world.only_run()
    assert (run.state, run.reason) == (ProctorRunState.FAILED_SAFE, Reason.BUDGET_EXCEEDED)
    assert run.usage.model_tokens == 150


def _worker(world: World, *args: str, code: int = 0) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.integrations.openai_agents_worker", args[0],
         str(world.folder), world.db_url, *args[1:]],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == code, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1]) if code == 0 else {}


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_after_a_crash_the_approved_call_runs_exactly_once(world: World) -> None:
    # Process 1 gets the interruption, saves the SDK's RunState and is gone.
    started = _worker(world, "start")
    assert started["pending"] == ["call_big"]
    approval_id = started["approvals"]["call_big"]
    assert world.ledger.counts() == {}

    world.runtime.approvals.approve(approval_id, SUPERVISOR, "receipt checked")

    # Process 2 loads the state, resumes, runs the call and dies before saving anything.
    _worker(world, "resume", "--die-after-tool", code=17)
    assert world.ledger.counts() == {"refund:call_big": 1}

    # Process 3 resumes the same saved state: the journal answers, nothing runs twice.
    finished = _worker(world, "resume")
    assert finished == {"final": "refund done", "ledger": {"refund:call_big": 1}}
    run = world.only_run()
    assert run.state is ProctorRunState.COMPLETED
    assert [(s.call_id, s.status.value) for s in run.steps] == [("call_big", "succeeded")]
    assert world.runtime.verify_audit().ok


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_the_example_runs_each_call_once_and_prints_its_summary_last() -> None:
    example = Path(__file__).parents[2] / "examples" / "openai_agents" / "main.py"
    done = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary == {
        "framework": "openai-agents",
        "executed": ["lookup_order"],
        "denied": ["delete_account"],
        "approved_then_executed": ["issue_refund"],
        "executions_per_key": {"lookup_order:call_lookup": 1, "issue_refund:call_refund": 1},
        "audit_verified": True,
    }
