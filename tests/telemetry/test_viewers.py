"""What a trace viewer (Phoenix, Langfuse, Jaeger) needs from a run's spans: errors it can
filter on, span kinds it recognises, tool spans linked to the model call that proposed
them, sessions and users, spans in the order things ran, and content only when asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proctor import CallStatus, RunSpec, Runtime, Settings
from proctor.agent import AgentConfig
from proctor.agent.factory import build_agent
from proctor.approvals import Approver
from proctor.examples.support import BUNDLE, SYSTEM_PROMPT, SupportPlaybook, World, support_tools
from proctor.runs.trace import run_spans
from proctor.runs.views import load_run, stored_conversation
from proctor.states import Reason
from proctor.telemetry import SpanRecord
from tests.shop import Env

from .receiver import HttpReceiver

PLANTED = "jane.doe@example.com"


def _spans(rt: Runtime, run_id: str, **kwargs: Any) -> dict[str, SpanRecord]:
    with rt.store.read() as conn:
        run = load_run(conn, run_id)
    return {s.key: s for s in run_spans(run, **kwargs)}


async def test_refused_calls_and_runs_that_did_not_complete_are_errors(env: Env) -> None:
    rt = env.runtime()
    # A refund over every permit: denied; the run is handed off.
    denied = await rt.start_run(env.spec())
    assert (await denied.call("lookup", {"order_id": "A-1"})).status is CallStatus.EXECUTED
    refused = await denied.call("refund", {"order_id": "A-1", "amount": "5000.00"})
    assert refused.status is CallStatus.DENIED
    await denied.hand_off(Reason.POLICY_DENIED, "the refund was denied")
    # A refund a supervisor refuses.
    held = await rt.start_run(env.spec())
    waiting = await held.call("refund", {"order_id": "A-2", "amount": "500.00"})
    assert waiting.approval_id is not None
    rt.approvals.deny(waiting.approval_id, Approver("sam", "supervisor"), "not eligible")
    await (await rt.resume(held.id)).resume_pending()
    # A refund nobody decided in time: the run is handed off.
    late = await rt.start_run(env.spec())
    expiring = await late.call("refund", {"order_id": "A-3", "amount": "500.00"})
    assert expiring.approval_id is not None
    env.clock.advance(10**6)
    assert rt.approvals.expire(expiring.approval_id)

    first = _spans(rt, denied.id)
    assert first["run"].error == "policy_denied"
    assert first["step/0"].error is None  # the lookup succeeded
    assert first["step/1"].error == "denied"
    second = _spans(rt, held.id)
    assert second["step/0"].error == "approval_denied"
    assert second["step/0/approval"].error == "approval_denied"
    third = _spans(rt, late.id)
    assert third["run"].error == "approval_expired"
    assert third["step/0"].error == "approval_expired"
    assert third["step/0/approval"].error == "approval_expired"

    done = await rt.start_run(env.spec())
    await done.call("lookup", {"order_id": "A-4"})
    await done.complete("answered")
    assert all(s.error is None for s in _spans(rt, done.id).values())


async def _agent_run(tmp_path: Path, request: str, **settings: Any) -> tuple[Runtime, str]:
    world = World.create(tmp_path / "world.db")
    rt = Runtime(
        policy=BUNDLE,
        tools=support_tools(world),
        settings=Settings(home=tmp_path / "home"),
        **settings,
    )
    agent = build_agent(
        rt, "simulated", playbook=SupportPlaybook(), config=AgentConfig(system_prompt=SYSTEM_PROMPT)
    )
    try:
        spec = RunSpec(
            agent="support-agent",
            role="support_agent",
            tenant="acme",
            workflow="support",
            requester="customer:c-101",
            session="chat-77",
        )
        result = await agent.run(request, spec)
    finally:
        await agent.aclose()
    return rt, result.run_id


async def test_tool_spans_name_the_model_call_that_proposed_them_and_follow_the_clock(
    tmp_path: Path,
) -> None:
    rt, run_id = await _agent_run(tmp_path, "Please open a ticket for order A-1016, it broke")
    try:
        with rt.store.read() as conn:
            sealed = stored_conversation(conn, run_id)
        assert sealed is not None
        proposed = {
            c["id"]: c["tool"]
            for m in rt.sealer.open(sealed["sealed"])
            if m["role"] == "assistant"
            for c in m.get("tool_calls") or ()
        }
        described = {t.name: t.description for t in rt.tools}
        spans = _spans(rt, run_id, tools=described)
    finally:
        rt.close()
    tools = [s for s in spans.values() if s.name.startswith("execute_tool ")]
    chats = sorted((s for s in spans.values() if s.name.startswith("chat ")), key=lambda s: s.start)
    assert tools
    assert len(chats) >= 2
    for span in tools:
        a = span.attributes
        assert proposed[str(a["gen_ai.tool.call.id"])] == a["gen_ai.tool.name"]
        assert a["gen_ai.tool.description"] == described[str(a["gen_ai.tool.name"])]
        assert a["gen_ai.conversation.id"] == "chat-77"
        assert a["user.id"] == "customer:c-101"
    # The simulated model claims 0.3 to 1.6 s a call; the calls take milliseconds. On
    # the real clock every tool call runs after the model call that proposed it and
    # before the next one: the model spans are not pulled back to the run's start.
    for span in tools:
        before = [c for c in chats if c.end is not None and c.end <= span.start]
        after = [c for c in chats if c.start >= (span.end or span.start)]
        assert before, f"{span.name} starts before any model call ended"
        assert after, f"{span.name} ends after the last model call started"


async def test_content_is_on_spans_only_when_asked_and_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_receiver: HttpReceiver
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", http_receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    request = f"Please open a ticket for order A-1016, it broke; write to {PLANTED}"

    rt, quiet = await _agent_run(tmp_path / "off", request)
    rt.close()
    off = [s for s in http_receiver.received.spans() if s["attributes"]["proctor.run.id"] == quiet]
    assert off
    for span in off:
        assert not {k for k in span["attributes"] if "messages" in k or "call.arguments" in k}
        assert "input.value" not in span["attributes"]

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    rt, told = await _agent_run(tmp_path / "on", request)
    rt.close()
    on = [s for s in http_receiver.received.spans() if s["attributes"]["proctor.run.id"] == told]
    root = next(s for s in on if s["name"].startswith("invoke_agent "))
    assert root["attributes"]["input.value"].startswith("Please open a ticket for order A-1016")
    first = min((s for s in on if s["name"].startswith("chat ")), key=lambda s: s["start"])
    sent = json.loads(first["attributes"]["gen_ai.input.messages"])
    assert sent[0]["role"] == "user"
    assert sent[0]["parts"][0]["content"].startswith("Please open a ticket")
    instructions = json.loads(first["attributes"]["gen_ai.system_instructions"])
    assert instructions[0]["content"] == SYSTEM_PROMPT
    answered = json.loads(first["attributes"]["gen_ai.output.messages"])
    [call] = [p for p in answered[0]["parts"] if p["type"] == "tool_call"][:1]
    tool = next(
        s
        for s in on
        if s["name"].startswith("execute_tool ")
        and s["attributes"]["gen_ai.tool.call.id"] == call["id"]
    )
    assert json.loads(tool["attributes"]["gen_ai.tool.call.arguments"]) == call["arguments"]
    assert "gen_ai.tool.call.result" in tool["attributes"]
    # Whole in the sealed conversation, masked on every span that left.
    text = repr([s["attributes"] for s in on])
    assert PLANTED not in text
    assert "[redacted:email]" in text


def test_a_capture_setting_that_is_not_true_or_false_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from proctor.errors import ConfigError
    from proctor.telemetry import content_capture_wanted

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "yes please")
    with pytest.raises(ConfigError, match="use true or false"):
        content_capture_wanted()
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "false")
    assert content_capture_wanted() is False
