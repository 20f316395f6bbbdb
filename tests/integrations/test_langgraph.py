"""LangGraph graphs governed by proctor: a thread is a run, a tool call runs only as
proctor decides, an approval is a LangGraph interrupt, and a call id runs once, across
the node's re-run, a replay from an earlier checkpoint, and a resume in a new process.

The graphs are real LangGraph graphs (a ``ToolNode`` graph and ``create_agent``) driven
by LangChain's fake chat model. Run as a script, this module is the crash test's worker.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import tools_condition
from langgraph.types import Command

from proctor.approvals import Approver
from proctor.integrations import Declarations, Governor
from proctor.integrations.langgraph import SPEC_KEY, LangGraphGovernor, RunStopped, current_call
from proctor.runs.model import RunSpec
from proctor.runs.views import RunView, load_run
from proctor.runtime import Runtime
from proctor.states import Reason, RunState
from proctor.testing import TestEnvironment
from proctor.tools import ToolDeclaration

POLICY = """
@id("reads")
permit(principal, action == Action::"get_order", resource);

@id("no-deletes")
forbid(principal, action == Action::"delete_account", resource);

@id("large-refunds")
@approval("supervisor")
permit(principal, action == Action::"refund", resource) when { context.args.amount > 100 };
"""
DECLARED = Declarations(
    {
        "get_*": ToolDeclaration("read", trust="trusted"),
        "delete_account": ToolDeclaration("destructive"),
        "refund": ToolDeclaration("irreversible"),
    }
)
ran: list[tuple[str, str]] = []  # (tool, idempotency key) of every real execution


@tool
def get_order(order_id: str) -> str:
    """Look an order up."""
    ran.append(("get_order", _key()))
    return f"order {order_id}: 300 EUR"


@tool
def delete_account(customer_id: str) -> str:
    """Delete an account."""
    ran.append(("delete_account", _key()))
    return "deleted"


@tool
def refund(order_id: str, amount: int) -> str:
    """Refund an order."""
    ran.append(("refund", _key()))
    return f"refunded {amount} on {order_id}"


TOOLS: list[BaseTool] = [get_order, delete_account, refund]


def _key() -> str:
    ctx = current_call()
    assert ctx is not None, "a governed tool runs inside proctor's gate"
    return ctx.idempotency_key


class Model(GenericFakeChatModel):
    """LangChain's fake chat model; ``create_agent`` binds tools, the script ignores them."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Model:
        return self


def model(*turns: AIMessage) -> Model:
    return Model(messages=iter([*turns, AIMessage(content="done")]))


def calls(*calls: tuple[str, dict[str, Any], str], tokens: int = 0) -> AIMessage:
    usage = {"input_tokens": tokens, "output_tokens": 0, "total_tokens": tokens}
    return AIMessage(
        content="",
        tool_calls=[{"name": n, "args": a, "id": i} for n, a, i in calls],
        usage_metadata=usage if tokens else None,
    )


def tool_node_graph(
    governed: LangGraphGovernor, chat: Model, saver: BaseCheckpointSaver[Any]
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """A hand-built agent: a model node and a governed ``ToolNode``."""

    async def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [await chat.ainvoke(state["messages"])]}

    def agent_sync(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [chat.invoke(state["messages"])]}

    from langchain_core.runnables import RunnableLambda

    graph = StateGraph(MessagesState)
    graph.add_node("agent", RunnableLambda(agent_sync, afunc=agent))
    graph.add_node("tools", governed.tool_node(TOOLS))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, ["tools", END])
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=saver)


def agent_graph(governed: LangGraphGovernor, chat: Model) -> Any:
    return create_agent(
        chat, tools=TOOLS, middleware=[governed.middleware()], checkpointer=InMemorySaver()
    )


def thread(name: str, **configurable: Any) -> Any:
    return {"configurable": {"thread_id": name, **configurable}}


def tool_messages(result: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in result["messages"] if isinstance(m, ToolMessage)]


def run_of(runtime: Runtime, run_id: str) -> RunView:
    with runtime.store.read() as conn:
        return load_run(conn, run_id)


@pytest.fixture
async def kit(db_url: str) -> AsyncIterator[TestEnvironment]:
    ran.clear()
    async with TestEnvironment(POLICY, db_url=db_url) as env:
        yield env


def governed(env: TestEnvironment, runtime: Runtime | None = None) -> LangGraphGovernor:
    return LangGraphGovernor(Governor(runtime or env.new_runtime(), env.spec(), DECLARED), TOOLS)


async def test_allowed_and_denied_calls_in_the_threads_run(kit: TestEnvironment) -> None:
    gov = governed(kit)
    chat = model(
        calls(
            ("get_order", {"order_id": "A"}, "c1"),
            ("delete_account", {"customer_id": "C"}, "c2"),
            tokens=50,
        )
    )
    graph = tool_node_graph(gov, chat, InMemorySaver())
    config = {**thread("t-1"), "callbacks": [gov.usage_callback()]}
    result = await graph.ainvoke({"messages": [("user", "hi")]}, config)

    ok, denied = tool_messages(result)
    assert (ok.status, ok.content) == ("success", "order A: 300 EUR")
    assert denied.status == "error"
    assert denied.tool_call_id == "c2"
    assert "denied by policy (forbidden by no-deletes); it did not run" in str(denied.content)
    assert [name for name, _ in ran] == ["get_order"]

    run_id = gov.governor.run_id("t-1")
    assert run_id is not None
    assert await gov.finish(config, result) == run_id
    view = run_of(gov.governor.runtime, run_id)
    assert (view.session, view.state) == ("t-1", RunState.COMPLETED)
    assert view.usage.model_tokens == 50
    assert ran == [("get_order", f"{run_id}/0")]
    assert gov.governor.runtime.verify_audit().ok


async def test_approval_is_an_interrupt_and_proctors_record_decides(kit: TestEnvironment) -> None:
    gov = governed(kit)
    agent = agent_graph(gov, model(calls(("refund", {"order_id": "A", "amount": 300}, "c1"))))
    config = thread("t-2")
    first = await agent.ainvoke({"messages": [("user", "refund A")]}, config)
    [pending] = first["__interrupt__"]
    ticket = pending.value
    assert ticket["tool"] == "refund"
    assert ticket["args"] == {"order_id": "A", "amount": 300}
    assert ticket["policy_ids"] == ["large-refunds"]
    assert ticket["roles"] == ["supervisor"]
    assert ticket["tool_call_id"] == "c1"

    # A resume value that claims approval while proctor's request is pending: interrupts again.
    again = await agent.ainvoke(Command(resume={"approved": True}), config)
    [still] = again["__interrupt__"]
    assert still.value["approval_id"] == ticket["approval_id"]
    assert ran == []

    Runtime_ = kit.new_runtime()  # a supervisor decides elsewhere
    Runtime_.approvals.approve(ticket["approval_id"], Approver("sam", "supervisor"), "ok")
    done = await agent.ainvoke(Command(resume={"approved": True}), config)
    assert "__interrupt__" not in done
    [message] = tool_messages(done)
    assert (message.status, message.content) == ("success", "refunded 300 on A")
    assert ran == [("refund", f"{ticket['run_id']}/0")]
    # The agent ended: its middleware completed the run.
    assert run_of(gov.governor.runtime, ticket["run_id"]).state is RunState.COMPLETED
    assert gov.governor.runtime.verify_audit().ok


async def test_parallel_calls_wait_for_the_approval_then_each_runs_once(
    kit: TestEnvironment,
) -> None:
    gov = governed(kit)
    both = calls(
        ("refund", {"order_id": "A", "amount": 300}, "c1"), ("get_order", {"order_id": "B"}, "c2")
    )
    agent = agent_graph(gov, model(both))
    config = thread("t-9")
    first = await agent.ainvoke({"messages": [("user", "refund A, show B")]}, config)
    waiting = first["__interrupt__"]
    assert {i.value["tool_call_id"] for i in waiting} == {"c1", "c2"}
    assert {i.value["approval_id"] for i in waiting} == {waiting[0].value["approval_id"]}
    assert ran == []  # the read waits with the refund: nothing runs while a person decides

    approval_id = waiting[0].value["approval_id"]
    kit.new_runtime().approvals.approve(approval_id, Approver("sam", "supervisor"), "ok")
    done = await agent.ainvoke(Command(resume={i.id: "go" for i in waiting}), config)
    assert sorted((m.name, m.status) for m in tool_messages(done)) == [
        ("get_order", "success"),
        ("refund", "success"),
    ]
    assert sorted(name for name, _ in ran) == ["get_order", "refund"]


async def test_a_refusal_in_proctor_wins_over_a_resume_value_saying_approved(
    kit: TestEnvironment,
) -> None:
    gov = governed(kit)
    agent = agent_graph(gov, model(calls(("refund", {"order_id": "A", "amount": 300}, "c1"))))
    config = thread("t-3")
    first = await agent.ainvoke({"messages": [("user", "refund A")]}, config)
    ticket = first["__interrupt__"][0].value
    kit.new_runtime().approvals.deny(ticket["approval_id"], Approver("sam", "supervisor"), "no")

    done = await agent.ainvoke(Command(resume={"approved": True}), config)
    [message] = tool_messages(done)
    assert message.status == "error"
    assert message.content == "Not allowed: sam refused refund (no); it did not run."
    assert ran == []


async def test_the_approved_call_runs_once_when_the_node_is_replayed(kit: TestEnvironment) -> None:
    """LangGraph re-runs the interrupted node on resume, and again when a thread is
    replayed from an earlier checkpoint: the call id answers from the journal."""
    gov, saver = governed(kit), InMemorySaver()
    graph = tool_node_graph(
        gov, model(calls(("refund", {"order_id": "A", "amount": 300}, "c1"))), saver
    )
    config = thread("t-4")
    first = await graph.ainvoke({"messages": [("user", "refund A")]}, config)
    ticket = first["__interrupt__"][0].value
    assert await gov.finish(config, first) is None  # interrupted: the run waits
    gov.governor.runtime.approvals.approve(
        ticket["approval_id"], Approver("sam", "supervisor"), "ok"
    )
    await graph.ainvoke(Command(resume="go"), config)
    assert len(ran) == 1

    before_tools = [s async for s in graph.aget_state_history(config) if s.next == ("tools",)]
    replay_graph = tool_node_graph(gov, model(), saver)
    replayed = await replay_graph.ainvoke(None, before_tools[-1].config)
    assert tool_messages(replayed)[-1].content == "refunded 300 on A"
    assert ran == [("refund", f"{ticket['run_id']}/0")]


async def test_invalid_arguments_reach_the_model_and_too_many_stop_the_graph(
    kit: TestEnvironment,
) -> None:
    gov = governed(kit)
    chat = model(
        calls(("refund", {"order_id": "A"}, "c1")),
        calls(("get_order", {"order_id": "A"}, "c2")),
        calls(("get_order", {"id": "A"}, "c3")),
    )
    spec = kit.spec(max_invalid_actions=1, requester="bob")
    graph = tool_node_graph(gov, chat, InMemorySaver())
    config = thread("t-5", **{SPEC_KEY: spec})
    with pytest.raises(RunStopped, match="invalid"):
        await graph.ainvoke({"messages": [("user", "refund A")]}, config)
    state = await graph.aget_state(config)
    first_error = next(m for m in state.values["messages"] if isinstance(m, ToolMessage))
    assert first_error.status == "error"
    assert "field 'amount' is required" in str(first_error.content)
    assert [name for name, _ in ran] == ["get_order"]  # the repaired turn ran
    [view] = [
        run_of(gov.governor.runtime, r.id)
        for r in _runs(gov.governor.runtime)
        if r.session == "t-5"
    ]
    assert (view.state, view.reason, view.requester) == (
        RunState.FAILED_SAFE,
        Reason.INVALID_ACTIONS,
        "bob",
    )


def _runs(runtime: Runtime) -> Sequence[RunView]:
    from proctor.runs.views import list_runs

    with runtime.store.read() as conn:
        return list_runs(conn)


async def test_model_usage_counts_against_the_run_and_its_dollar_cap_stops_it(db_url: str) -> None:
    ran.clear()
    capped = "label: t\nbudgets:\n  run:\n    usd: 1\n"
    async with TestEnvironment(POLICY, db_url=db_url, proctor_yaml=capped) as env:
        gov = governed(env)
        costly = calls(("get_order", {"order_id": "A"}, "c1"), tokens=400_000)
        costly.response_metadata = {"model_name": "gpt-4o", "model_provider": "openai"}
        agent = agent_graph(gov, model(costly))
        with pytest.raises(RunStopped, match="budget"):
            await agent.ainvoke({"messages": [("user", "A?")]}, thread("t-6"))
        [view] = [v for v in _runs(gov.governor.runtime) if v.session == "t-6"]
        view = run_of(gov.governor.runtime, view.id)
        assert view.usage.model_tokens == 400_000
        assert view.usage.usd == Decimal("1")  # 400k input tokens of gpt-4o at $2.50 per million
        assert (view.state, view.reason) == (RunState.FAILED_SAFE, Reason.BUDGET_EXCEEDED)
        assert ran == []


async def test_stopping_at_a_pending_approval_hands_the_run_off(kit: TestEnvironment) -> None:
    gov = governed(kit)
    agent = agent_graph(gov, model(calls(("refund", {"order_id": "A", "amount": 300}, "c1"))))
    config = thread("t-7")
    first = await agent.ainvoke({"messages": [("user", "refund A")]}, config)
    ticket = first["__interrupt__"][0].value
    assert await gov.stop(config, "customer withdrew the request") == ticket["run_id"]
    view = run_of(gov.governor.runtime, ticket["run_id"])
    assert (view.state, view.reason) == (RunState.HANDED_OFF, Reason.POLICY_DENIED)
    assert gov.governor.approval(ticket["approval_id"]).status.value == "denied"
    assert ran == []


def test_a_synchronous_graph_is_governed_too(tmp_path: Path) -> None:
    ran.clear()
    with TestEnvironment(POLICY) as env:
        gov = governed(env)
        chat = model(
            calls(
                ("get_order", {"order_id": "A"}, "c1"),
                ("delete_account", {"customer_id": "C"}, "c2"),
            )
        )
        graph = tool_node_graph(gov, chat, InMemorySaver())
        result = graph.invoke({"messages": [("user", "hi")]}, thread("t-8"))
        assert [m.status for m in tool_messages(result)] == ["success", "error"]
        assert [name for name, _ in ran] == ["get_order"]


# -- a crash between the approval and the resume -----------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_resumed_in_a_new_process_the_approved_call_runs_once(tmp_path: Path) -> None:
    """The first process interrupts and exits; a supervisor approves; a new process
    resumes the thread from LangGraph's SQLite checkpointer, twice. (On SQLite only:
    taking a run over from another process is tested on both stores by the core.)"""
    with TestEnvironment(POLICY) as kit:
        _crash_and_resume(kit, tmp_path)


def _crash_and_resume(kit: TestEnvironment, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    checkpoints = tmp_path / "checkpoints.db"
    args = [str(kit.bundle), kit.db_url, str(kit.home), str(checkpoints), str(ledger)]
    first = _worker("start", *args)
    ticket = first["interrupt"]
    assert ticket["tool"] == "refund"
    assert _executions(ledger) == {}

    kit.runtime.approvals.approve(ticket["approval_id"], Approver("sam", "supervisor"), "ok")
    resumed = _worker("resume", *args)
    assert resumed["messages"][-2:] == [["success", "refunded 300 on A"], ["ai", "done"]]
    assert _executions(ledger) == {f"{ticket['run_id']}/0": 1}
    view = run_of(kit.runtime, ticket["run_id"])
    assert (view.state, view.session) == (RunState.COMPLETED, "t-crash")
    assert kit.runtime.verify_audit().ok


def _worker(*argv: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *argv], capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _executions(ledger: Path) -> dict[str, int]:
    if not ledger.exists():
        return {}
    with sqlite3.connect(ledger) as conn:
        rows = conn.execute("SELECT key, COUNT(*) FROM executions GROUP BY key").fetchall()
    return dict(rows)


async def _work(
    step: str, bundle: str, db_url: str, home: str, checkpoints: str, ledger: str
) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from proctor.settings import Settings

    @tool("refund")
    def durable_refund(order_id: str, amount: int) -> str:
        """Refund an order."""
        with sqlite3.connect(ledger) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS executions (key TEXT)")
            conn.execute("INSERT INTO executions VALUES (?)", (_key(),))
        return f"refunded {amount} on {order_id}"

    runtime = Runtime(
        policy=bundle, settings=Settings(home=Path(home), db_url=db_url), telemetry=None
    )
    spec = RunSpec(
        agent="test-agent", role="agent", tenant="test", workflow="test", requester="tester"
    )
    gov = LangGraphGovernor(Governor(runtime, spec, DECLARED), [durable_refund])
    script = [calls(("refund", {"order_id": "A", "amount": 300}, "c1"))] if step == "start" else []
    chat = Model(messages=iter([*script, AIMessage(content="done")]))
    config = thread("t-crash")
    async with AsyncSqliteSaver.from_conn_string(checkpoints) as saver:
        agent = create_agent(
            chat, tools=[durable_refund], middleware=[gov.middleware()], checkpointer=saver
        )
        try:
            if step == "start":
                result = await agent.ainvoke({"messages": [("user", "refund A")]}, config)
                return {"interrupt": result["__interrupt__"][0].value}
            result = await agent.ainvoke(Command(resume="go"), config)
            again = await agent.ainvoke(Command(resume="go"), config)  # nothing left to resume
            assert "__interrupt__" not in again
        finally:
            runtime.close()
    return {
        "messages": [
            [m.status if isinstance(m, ToolMessage) else m.type, m.content]
            for m in result["messages"]
        ]
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_work(*sys.argv[1:]))))


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_the_example_runs_each_call_once_and_prints_its_summary_last() -> None:
    example = Path(__file__).parents[2] / "examples" / "langgraph" / "main.py"
    done = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["executed"] == ["lookup_order"]
    assert summary["denied"] == ["delete_account"]
    assert summary["approved_then_executed"] == ["issue_refund"]
    assert sorted(summary["executions_per_key"].values()) == [1, 1]
    assert summary["audit_verified"] is True
