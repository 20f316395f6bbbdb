"""pydantic-ai agents governed by proctor: real pydantic-ai, its ``FunctionModel`` scripting
the model's tool calls, no network.

The tools count their real executions in a file, so a call that ran twice, in this
process or in another, shows."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from pydantic import TypeAdapter
from pydantic_ai import (
    Agent,
    DeferredToolRequests,
    DeferredToolResults,
    RunContext,
    ToolDenied,
    UnexpectedModelBehavior,
)
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.toolsets import FunctionToolset

from proctor import Approver, BudgetCaps, RunSpec, Runtime, Settings
from proctor.clock import SystemClock
from proctor.integrations.governor import Declarations, Governor
from proctor.integrations.pydantic_ai import (
    ApprovalPending,
    Proctor,
    RunStopped,
    deferred_results,
)
from proctor.runs.views import RunView, list_runs, load_run
from proctor.testing import TestEnvironment
from proctor.tools import ToolDeclaration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "pydantic_ai" / "main.py"

POLICY = """
@id("reads")
permit(principal in Role::"support_agent", action in Action::"read", resource);

@id("refund-supervised")
@approval("supervisor")
permit(principal in Role::"support_agent", action == Action::"issue_refund", resource)
when { context.args.amount <= 500 };
"""

DECLARATIONS = Declarations(
    {
        "lookup_order": ToolDeclaration("read"),
        "delete_workspace": ToolDeclaration("destructive"),
        "issue_refund": ToolDeclaration("irreversible"),
    }
)

SPEC = RunSpec(
    agent="support-bot",
    role="support_agent",
    tenant="acme",
    workflow="support",
    requester="alice",
)
SUPERVISOR = Approver("sam", "supervisor")


class Shop:
    """The tools; each real execution is a line in ``effects``, keyed by tool and call id."""

    def __init__(self, effects: Path) -> None:
        self.effects = effects

    def _ran(self, tool: str, ctx: RunContext[Any]) -> None:
        with self.effects.open("a") as f:
            f.write(f"{tool}:{ctx.tool_call_id}\n")

    def runs(self) -> Counter[str]:
        if not self.effects.exists():
            return Counter()
        return Counter(self.effects.read_text().split())

    def toolset(self) -> FunctionToolset[Any]:
        tools: FunctionToolset[Any] = FunctionToolset()

        @tools.tool
        def lookup_order(ctx: RunContext[Any], order_id: str, limit: int = 5) -> dict[str, Any]:
            """Look an order up."""
            self._ran("lookup_order", ctx)
            return {"order_id": order_id, "status": "delivered", "total": 120}

        @tools.tool
        def delete_workspace(ctx: RunContext[Any], workspace_id: str) -> str:
            """Delete a customer's workspace."""
            self._ran("delete_workspace", ctx)
            return f"deleted {workspace_id}"

        @tools.tool
        def issue_refund(ctx: RunContext[Any], order_id: str, amount: int) -> dict[str, Any]:
            """Refund an order."""
            self._ran("issue_refund", ctx)
            return {"refunded": amount, "order_id": order_id}

        return tools


class Script:
    """A model that makes the planned calls, one per response, then answers with the
    last thing it read. ``read`` is every tool answer it was shown."""

    def __init__(self, *calls: tuple[str, dict[str, Any] | str]) -> None:
        self.calls = calls
        self.read: list[str] = []

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        for part in messages[-1].parts:
            if isinstance(part, ToolReturnPart):
                self.read.append(part.model_response_str())
        made = sum(isinstance(m, ModelResponse) for m in messages)
        if made < len(self.calls):
            tool, args = self.calls[made]
            return ModelResponse(parts=[ToolCallPart(tool, args, tool_call_id=f"call-{made}")])
        return ModelResponse(parts=[TextPart(f"done; read: {self.read[-1] if self.read else ''}")])


def agent(shop: Shop, governor: Governor, script: Script, **options: Any) -> Agent[None, Any]:
    return Agent(
        FunctionModel(script),
        toolsets=[shop.toolset()],
        output_type=[str, DeferredToolRequests],
        capabilities=[Proctor(governor)],
        **options,
    )


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Iterator[TestEnvironment]:
    with TestEnvironment(
        POLICY, db_url=db_url, directory=tmp_path / "proctor", clock=SystemClock()
    ) as e:
        yield e


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    return Shop(tmp_path / "effects.txt")


def governor_of(env: TestEnvironment, runtime: Runtime | None = None, **spec: Any) -> Governor:
    return Governor(runtime or env.runtime, SPEC.model_copy(update=spec), DECLARATIONS)


def the_run(env: TestEnvironment) -> RunView:
    """The one run the test made, as the store holds it."""
    with env.runtime.store.read() as conn:
        [listed] = list_runs(conn)
        return load_run(conn, listed.id)


async def test_an_allowed_call_runs_once_and_the_run_completes(
    env: TestEnvironment, shop: Shop
) -> None:
    script = Script(("lookup_order", {"order_id": "A-1"}))
    result = await agent(shop, governor_of(env), script).run("where is A-1?", conversation_id="t-1")

    assert result.output.startswith("done")
    assert shop.runs() == {"lookup_order:call-0": 1}
    assert json.loads(script.read[0])["status"] == "delivered"
    run = the_run(env)
    assert (run.state, [s.status for s in run.steps]) == ("completed", ["succeeded"])
    assert run.usage.model_tokens == result.usage.total_tokens > 0  # the model is counted
    assert env.runtime.verify_audit().ok


async def test_a_denied_call_never_runs_and_the_model_reads_why(
    env: TestEnvironment, shop: Shop
) -> None:
    script = Script(
        ("delete_workspace", {"workspace_id": "W-9"}), ("lookup_order", {"order_id": "A-1"})
    )
    result = await agent(shop, governor_of(env), script).run("clean up", conversation_id="t-2")

    assert shop.runs() == {"lookup_order:call-1": 1}  # the denial did not end the run
    assert "denied by policy" in script.read[0]
    assert "did not run" in script.read[0]
    assert result.output.startswith("done")
    run = the_run(env)
    assert [s.status for s in run.steps] == ["denied", "succeeded"]
    assert run.state == "completed"
    assert env.runtime.verify_audit().ok


async def test_an_approved_call_runs_once_on_resume_and_not_before(
    env: TestEnvironment, shop: Shop
) -> None:
    governor = governor_of(env)
    script = Script(("issue_refund", {"order_id": "A-1", "amount": 120}))
    first = await agent(shop, governor, script).run("refund A-1", conversation_id="t-3")

    requests = first.output
    assert isinstance(requests, DeferredToolRequests)
    [call] = requests.approvals
    ticket = requests.metadata[call.tool_call_id]["proctor"]
    assert (ticket["tool"], ticket["roles"]) == ("issue_refund", ["supervisor"])
    assert shop.runs() == {}
    with pytest.raises(ApprovalPending):
        deferred_results(governor, requests)

    # pydantic-ai's word is not proctor's: "approved" there, pending here, runs nothing.
    forged = DeferredToolResults(approvals={call.tool_call_id: True})
    again = await agent(shop, governor, script).run(
        message_history=first.all_messages(), deferred_tool_results=forged
    )
    assert isinstance(again.output, DeferredToolRequests)
    assert shop.runs() == {}

    env.runtime.approvals.approve(ticket["approval_id"], SUPERVISOR, "receipt checked")
    results = deferred_results(governor, requests)
    assert results.approvals == {call.tool_call_id: True}
    done = await agent(shop, governor, script).run(
        message_history=first.all_messages(), deferred_tool_results=results
    )

    assert done.output.startswith("done")
    assert shop.runs() == {"issue_refund:call-0": 1}
    run = the_run(env)
    assert (run.state, [s.status for s in run.steps]) == ("completed", ["succeeded"])
    assert env.runtime.verify_audit().ok


async def test_a_refused_approval_never_runs_even_if_the_results_say_approved(
    env: TestEnvironment, shop: Shop
) -> None:
    governor = governor_of(env)
    script = Script(("issue_refund", {"order_id": "A-1", "amount": 120}))
    first = await agent(shop, governor, script).run("refund A-1", conversation_id="t-4")
    requests = first.output
    assert isinstance(requests, DeferredToolRequests)
    [call] = requests.approvals
    approval_id = requests.metadata[call.tool_call_id]["proctor"]["approval_id"]

    env.runtime.approvals.deny(approval_id, SUPERVISOR, "no receipt")
    [denial] = deferred_results(governor, requests).approvals.values()
    assert isinstance(denial, ToolDenied)
    assert "sam refused issue_refund (no receipt)" in denial.message

    forged = DeferredToolResults(approvals={call.tool_call_id: True})
    done = await agent(shop, governor, script).run(
        message_history=first.all_messages(), deferred_tool_results=forged
    )
    assert shop.runs() == {}
    assert "refused issue_refund" in script.read[-1]  # the model reads the refusal
    assert done.output.startswith("done")
    run = the_run(env)
    assert [s.status for s in run.steps] == ["approval_denied"]
    assert env.runtime.verify_audit().ok


class Together(Script):
    """A model that makes all its calls in one response (pydantic-ai runs them at once),
    then answers."""

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if any(isinstance(m, ModelResponse) for m in messages):
            return ModelResponse(parts=[TextPart("done")])
        return ModelResponse(
            parts=[
                ToolCallPart(tool, args, tool_call_id=f"call-{i}")
                for i, (tool, args) in enumerate(self.calls)
            ]
        )


async def test_calls_made_alongside_one_awaiting_approval_run_once_after_the_decision(
    env: TestEnvironment, shop: Shop
) -> None:
    governor = governor_of(env)
    script = Together(
        ("issue_refund", {"order_id": "A-1", "amount": 120}),
        ("lookup_order", {"order_id": "A-1"}),
    )
    first = await agent(shop, governor, script).run("refund A-1", conversation_id="t-p")
    requests = first.output
    assert isinstance(requests, DeferredToolRequests)
    tickets = {
        c.tool_name: requests.metadata[c.tool_call_id]["proctor"] for c in requests.approvals
    }
    approval_id = tickets["issue_refund"]["approval_id"]
    # Whichever ran first, the lookup waits on the refund's approval or already ran.
    assert {t["approval_id"] for t in tickets.values()} == {approval_id}
    assert shop.runs().keys() <= {"lookup_order:call-1"}

    env.runtime.approvals.approve(approval_id, SUPERVISOR, "receipt checked")
    await agent(shop, governor, script).run(
        message_history=first.all_messages(),
        deferred_tool_results=deferred_results(governor, requests),
    )

    assert shop.runs() == {"issue_refund:call-0": 1, "lookup_order:call-1": 1}
    run = the_run(env)
    assert run.state == "completed"
    assert sorted(s.status for s in run.steps) == ["succeeded", "succeeded"]


async def test_a_refusal_the_user_stops_at_hands_the_run_off(
    env: TestEnvironment, shop: Shop
) -> None:
    governor = governor_of(env)
    script = Script(("issue_refund", {"order_id": "A-1", "amount": 120}))
    first = await agent(shop, governor, script).run("refund A-1", conversation_id="t-5")
    assert isinstance(first.output, DeferredToolRequests)
    [call] = first.output.approvals
    approval_id = first.output.metadata[call.tool_call_id]["proctor"]["approval_id"]
    env.runtime.approvals.deny(approval_id, SUPERVISOR, "no receipt")

    await governor.end("t-5", "handed_off", detail="refund refused; a person takes over")

    run = the_run(env)
    assert (run.state, run.reason) == ("handed_off", "escalated")
    assert shop.runs() == {}


async def test_invalid_arguments_never_run_and_the_model_reads_the_field(
    env: TestEnvironment, shop: Shop
) -> None:
    script = Script(
        ("lookup_order", {"order_id": "A-1", "limit": "3"}),  # pydantic-ai coerces; proctor not
        ("lookup_order", {"limit": 3}),  # pydantic-ai refuses it itself
        ("lookup_order", {"order_id": "A-1", "limit": 3}),
    )
    result = await agent(shop, governor_of(env), script, retries=3).run(
        "look", conversation_id="t-6"
    )

    assert "'limit'" in script.read[0]
    assert "order_id" in script.read[1]
    assert shop.runs() == {"lookup_order:call-2": 1}
    assert result.output.startswith("done")
    run = the_run(env)
    assert [s.status for s in run.steps] == ["succeeded"]
    assert run.state == "completed"


async def test_invalid_arguments_past_the_tolerance_stop_the_run(
    env: TestEnvironment, shop: Shop
) -> None:
    script = Script(*[("lookup_order", {"order_id": "A-1", "limit": "3"})] * 4)
    with pytest.raises(RunStopped, match="invalid"):
        await agent(shop, governor_of(env), script, retries=5).run("look", conversation_id="t-7")

    assert shop.runs() == {}
    run = the_run(env)
    assert (run.state, run.reason) == ("failed_safe", "invalid_actions")
    assert env.runtime.verify_audit().ok


async def test_pydantic_ais_own_retries_exceeded_end_the_run_failed_safe(
    env: TestEnvironment, shop: Shop
) -> None:
    script = Script(*[("lookup_order", {"limit": 3})] * 3)  # no order_id: pydantic-ai refuses
    with pytest.raises(UnexpectedModelBehavior, match="exceeded max retries"):
        await agent(shop, governor_of(env), script).run("look", conversation_id="t-r")

    assert shop.runs() == {}
    run = the_run(env)
    assert (run.state, run.reason, run.steps) == ("failed_safe", "invalid_actions", ())


async def test_an_agents_own_tools_are_governed_too(env: TestEnvironment, shop: Shop) -> None:
    deleted: list[str] = []
    own = Agent(
        FunctionModel(Script(("delete_workspace", {"workspace_id": "W-9"}))),
        output_type=[str, DeferredToolRequests],
        capabilities=[Proctor(governor_of(env))],
    )

    @own.tool_plain
    def delete_workspace(workspace_id: str) -> str:
        deleted.append(workspace_id)
        return "deleted"

    await own.run("clean up", conversation_id="t-o")

    assert deleted == []
    assert [s.status for s in the_run(env).steps] == ["denied"]


async def test_model_usage_counts_against_the_runs_budget(env: TestEnvironment, shop: Shop) -> None:
    script = Script(("lookup_order", {"order_id": "A-1"}), ("lookup_order", {"order_id": "A-2"}))
    governor = governor_of(env, budget=BudgetCaps(model_tokens=60))
    with pytest.raises(RunStopped, match="budget"):
        await agent(shop, governor, script).run("look", conversation_id="t-8")

    run = the_run(env)
    assert (run.state, run.reason) == ("failed_safe", "budget_exceeded")
    assert shop.runs() == {"lookup_order:call-0": 1}


class Priced(Script):
    """The scripted model answering as ``acme:m1``, which the bundle prices."""

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        response = super().__call__(messages, info)
        response.provider_name = "acme"
        return response


async def test_model_usage_is_priced_from_the_bundle_and_a_usd_cap_stops_the_run(
    tmp_path: Path, db_url: str, shop: Shop
) -> None:
    prices = 'prices:\n  acme:m1: {input: "1000", cached_input: "0", output: "1000"}\n'
    with TestEnvironment(
        POLICY, proctor_yaml=f"label: t\n{prices}", db_url=db_url, directory=tmp_path / "p"
    ) as env:
        script = Priced(*[("lookup_order", {"order_id": "A-1"})] * 3)
        priced = Agent(
            FunctionModel(script, model_name="m1"),
            toolsets=[shop.toolset()],
            output_type=[str, DeferredToolRequests],
            capabilities=[Proctor(governor_of(env, budget=BudgetCaps(usd=Decimal("0.1"))))],
        )
        with pytest.raises(RunStopped, match="budget"):
            await priced.run("look", conversation_id="t-usd")

        run = the_run(env)
        assert (run.state, run.reason) == ("failed_safe", "budget_exceeded")
        assert run.usage.usd == Decimal(run.usage.model_tokens) * 1000 / 1_000_000
        assert shop.runs() == {"lookup_order:call-0": 1}  # ~51 tokens: $0.051; then over


async def test_an_undeclared_tool_stops_the_run_before_the_model_sees_it(
    env: TestEnvironment, shop: Shop
) -> None:
    governor = Governor(env.runtime, SPEC, Declarations({"lookup_order": ToolDeclaration("read")}))
    script = Script(("delete_workspace", {"workspace_id": "W-9"}))
    with pytest.raises(Exception, match="delete_workspace"):
        await agent(shop, governor, script).run("clean up", conversation_id="t-9")
    assert shop.runs() == {}


async def test_the_example_allows_denies_and_runs_the_approved_call_once() -> None:
    spec = importlib.util.spec_from_file_location("pai_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    assert await example.main() == {
        "framework": "pydantic-ai",
        "executed": ["lookup_order"],
        "denied": ["delete_account"],
        "approved_then_executed": ["issue_refund"],
        "executions_per_key": {"lookup_order:call-0": 1, "issue_refund:call-2": 1},
        "audit_verified": True,
    }


# -- a crash between the approval and the resume -----------------------------------------

WORKER = """
import asyncio, sys
from tests.integrations.test_pydantic_ai import worker
print(asyncio.run(worker(*sys.argv[1:])))
"""
REQUESTS = TypeAdapter(DeferredToolRequests)
LEASE_S = 1.0
"""A dead worker's hold on the run lapses this fast, so the next process may take it."""


class DiesOnReading(Script):
    """The process dies as the model is shown the tool's answer: the call ran and its
    outcome is journaled, the agent run never ended."""

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if any(isinstance(p, ToolReturnPart) for p in messages[-1].parts):
            os._exit(3)
        return super().__call__(messages, info)


def crash_env(folder: Path, db_url: str) -> TestEnvironment:
    return TestEnvironment(
        POLICY,
        db_url=db_url,
        directory=folder / "proctor",
        clock=SystemClock(),
        settings=Settings(lease_s=LEASE_S),
    )


async def worker(step: str, directory: str, db_url: str) -> dict[str, Any]:
    """One process's part: ``start`` runs until the approval and saves the conversation;
    ``resume`` (or ``resume-and-die``) loads it, asks proctor for its decisions, resumes."""
    folder = Path(directory)
    shop = Shop(folder / "effects.txt")
    calls = [("issue_refund", {"order_id": "A-1", "amount": 120})]
    with crash_env(folder, db_url) as env:
        governor = governor_of(env)
        if step == "start":
            result = await agent(shop, governor, Script(*calls)).run(
                "refund A-1", conversation_id="t-c"
            )
            assert isinstance(result.output, DeferredToolRequests)
            (folder / "conversation.json").write_bytes(result.all_messages_json())
            (folder / "requests.json").write_bytes(REQUESTS.dump_json(result.output))
            return {}
        history = ModelMessagesTypeAdapter.validate_json(
            (folder / "conversation.json").read_bytes()
        )
        requests = REQUESTS.validate_json((folder / "requests.json").read_bytes())
        script = DiesOnReading(*calls) if step == "resume-and-die" else Script(*calls)
        result = await agent(shop, governor, script).run(
            message_history=history, deferred_tool_results=deferred_results(governor, requests)
        )
        return {"output": result.output, "read": script.read}


def process(step: str, directory: Path, db_url: str, *, exits: int = 0) -> str:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, step, str(directory), db_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == exits, done.stderr
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_an_approval_decided_after_the_process_died_runs_once_in_a_new_one(
    tmp_path: Path, db_url: str
) -> None:
    process("start", tmp_path, db_url)
    shop = Shop(tmp_path / "effects.txt")
    requests = REQUESTS.validate_json((tmp_path / "requests.json").read_bytes())
    [call] = requests.approvals
    approval_id = requests.metadata[call.tool_call_id]["proctor"]["approval_id"]
    assert shop.runs() == {}

    with crash_env(tmp_path, db_url) as env:
        env.runtime.approvals.approve(approval_id, SUPERVISOR, "receipt checked")
        # The resuming process runs the refund and dies before its agent run ends.
        process("resume-and-die", tmp_path, db_url, exits=3)
        assert shop.runs() == {"issue_refund:call-0": 1}
        assert the_run(env).state == "running"

        # This process resumes the same conversation again: the journal answers.
        await asyncio.sleep(LEASE_S)
        out = await worker("resume", str(tmp_path), db_url)

        assert shop.runs() == {"issue_refund:call-0": 1}
        assert json.loads(out["read"][0]) == {"refunded": 120, "order_id": "A-1"}
        run = the_run(env)
        assert (run.state, [s.status for s in run.steps]) == ("completed", ["succeeded"])
        assert env.runtime.verify_audit().ok
