"""Runs' spans arrive at an OTLP receiver, over HTTP/protobuf and gRPC, redacted."""

from __future__ import annotations

from typing import Any

import pytest

from proctor import CallStatus
from proctor.approvals import Approver
from proctor.models import ModelRequest, ModelResponse, TokenUsage, UserMessage
from proctor.states import Reason, RunState
from proctor.telemetry import trace_id_of
from proctor.testing import FunctionModel
from tests.shop import Env

from .receiver import GrpcReceiver, HttpReceiver

SECRETS = {
    "email": "jane.doe@example.com",
    "card": "4111 1111 1111 1111",
    "key": "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
}
PLANTED = " ".join(SECRETS.values())
REQUEST = f"Refund order A-1 for {PLANTED}"
USAGE = TokenUsage(input_tokens=900, cached_input_tokens=100, output_tokens=40, reasoning_tokens=8)

CLIENT, INTERNAL = 3, 1  # OTLP span kinds
STATUS_ERROR = 2


def _answer(_: ModelRequest) -> ModelResponse:
    return ModelResponse(
        model="gpt-4o-mini-2024-07-18",
        content=f"Done. Contact {PLANTED}.",
        usage=USAGE,
        latency_ms=250.0,
    )


def _export_to(monkeypatch: pytest.MonkeyPatch, endpoint: str, protocol: str) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    if protocol == "grpc":
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")


async def _governed_run(env: Env) -> tuple[str, str]:
    """A run over two runtimes (two processes): model calls, a read, a failing write, an
    email and a refund that waits for a supervisor; approved, resumed elsewhere, completed.
    Secrets are planted in the request, a model answer, tool arguments, a tool's error
    and the approver's note."""
    first = env.runtime()
    run = await first.start_run(env.spec())
    run.trust(REQUEST)
    env.clock.advance(1)  # the model is asked a second into the run

    def answer(request: ModelRequest) -> ModelResponse:
        # It takes 250 ms on the run's clock and claims 1.6 s: the span follows the clock.
        env.clock.advance(0.25)
        return _answer(request).model_copy(update={"latency_ms": 1600.0})

    model = FunctionModel(answer, name="openai:gpt-4o-mini")
    request = ModelRequest(messages=(UserMessage(content=REQUEST),), max_output_tokens=200)
    await run.ask(model, request)
    await run.ask(model, request)
    assert (await run.call("lookup", {"order_id": "A-1"})).status is CallStatus.EXECUTED
    failed = await run.call("explode", {"reason": f"card {SECRETS['card']} declined"})
    assert failed.status is CallStatus.FAILED
    email = {"to": SECRETS["email"], "body": PLANTED}
    assert (await run.call("send_email", email)).status is CallStatus.EXECUTED
    held = await run.call("refund", {"order_id": "A-1", "amount": "500.00"})
    assert held.status is CallStatus.AWAITING_APPROVAL
    assert held.approval_id is not None
    env.clock.advance(90)

    second = env.runtime()  # the approver's and the resuming worker's process
    second.approvals.approve(
        held.approval_id, Approver("sam", "supervisor"), f"ok, asked {SECRETS['email']}"
    )
    resumed = await second.resume(run.id)
    outcome = await resumed.resume_pending()
    assert outcome is not None
    assert outcome.status is CallStatus.EXECUTED
    await resumed.complete()
    first.close()
    second.close()  # flushes
    return run.id, held.approval_id


def _tree(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in spans}


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
async def test_a_run_arrives_as_one_trace_with_its_tree(
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
    http_receiver: HttpReceiver,
    grpc_receiver: GrpcReceiver,
    protocol: str,
) -> None:
    receiver = http_receiver if protocol == "http/protobuf" else grpc_receiver
    _export_to(monkeypatch, receiver.endpoint, protocol)
    run_id, approval_id = await _governed_run(env)

    spans = receiver.received.spans()
    names = sorted(s["name"] for s in spans)
    assert names == sorted(
        [
            "invoke_agent bot",
            "chat gpt-4o-mini",
            "chat gpt-4o-mini",
            *(f"execute_tool {t}" for t in ("lookup", "explode", "send_email", "refund")),
            *(f"proctor.decide {t}" for t in ("lookup", "explode", "send_email", "refund")),
            *(f"proctor.execute {t}" for t in ("lookup", "explode", "send_email", "refund")),
            "proctor.approval refund",
        ]
    )
    # One trace, the run's; every span once, though the run ran in two runtimes.
    assert {s["trace_id"] for s in spans} == {trace_id_of(run_id)}
    assert len({s["span_id"] for s in spans}) == len(spans)
    tree = _tree(spans)
    root = tree["invoke_agent bot"]
    assert root["parent_span_id"] is None
    assert root["resource"]["service.name"] == "proctor"
    assert root["scope"] == "proctor"
    ids = {s["span_id"]: s for s in spans}
    for s in spans:
        if s["name"].startswith(("chat ", "execute_tool ")):
            assert s["parent_span_id"] == root["span_id"], s["name"]
        elif s is not root:
            tool = s["name"].split()[-1]
            assert ids[s["parent_span_id"]]["name"] == f"execute_tool {tool}", s["name"]
        assert root["start"] <= s["start"] <= s["end"] <= root["end"], s["name"]

    assert root["attributes"]["proctor.run.id"] == run_id
    assert root["attributes"]["proctor.tenant"] == "acme"
    assert root["attributes"]["proctor.workflow"] == "support"
    assert root["attributes"]["proctor.run.state"] == "completed"
    assert root["attributes"]["proctor.run.reason"] == "done"
    assert root["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    assert root["attributes"]["proctor.cost.usd"] > 0

    chat = next(s for s in spans if s["name"].startswith("chat "))
    a = chat["attributes"]
    assert chat["kind"] == CLIENT
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    # The conventions count cached input within input, reasoning within output.
    assert a["gen_ai.usage.input_tokens"] == 1000
    assert a["gen_ai.usage.cache_read.input_tokens"] == 100
    assert a["gen_ai.usage.output_tokens"] == 48
    assert a["gen_ai.usage.reasoning.output_tokens"] == 8
    assert a["proctor.cost.usd"] > 0
    assert chat["end"] - chat["start"] == 250_000_000
    # Each call starts when it was asked, one after the other on the run's clock; the
    # latency the model claimed does not pull them back to the run's start.
    chats = sorted(s["start"] - root["start"] for s in spans if s["name"].startswith("chat "))
    assert chats == [10**9, 10**9 + 250_000_000]
    assert a["gen_ai.request.max_tokens"] == 200
    assert a["gen_ai.request.temperature"] == 0.0
    assert a["openinference.span.kind"] == "LLM"
    # Sessions and users in viewers: a run without a framework session is its own.
    assert a["gen_ai.conversation.id"] == run_id
    assert root["attributes"]["session.id"] == run_id
    assert root["attributes"]["user.id"] == "alice"
    assert root["attributes"]["openinference.span.kind"] == "AGENT"
    kinds = {s["name"].split()[0]: s["attributes"]["openinference.span.kind"] for s in spans}
    assert kinds == {
        "invoke_agent": "AGENT",
        "chat": "LLM",
        "execute_tool": "TOOL",
        "proctor.decide": "GUARDRAIL",
        "proctor.approval": "GUARDRAIL",
        "proctor.execute": "CHAIN",
    }

    refund = tree["execute_tool refund"]["attributes"]
    assert refund["gen_ai.tool.name"] == "refund"
    assert refund["proctor.step"] == 3
    assert refund["proctor.step.status"] == "succeeded"
    decide = tree["proctor.decide refund"]["attributes"]
    assert decide["proctor.decision.effect"] == "require_approval"
    assert decide["proctor.policy.ids"] == ["refund-supervised"]
    assert decide["proctor.approval.roles"] == ["supervisor"]
    assert decide["proctor.bundle.version"]
    wait = tree["proctor.approval refund"]
    assert wait["attributes"]["proctor.approval.id"] == approval_id
    assert wait["attributes"]["proctor.approval.status"] == "approved"
    assert wait["attributes"]["proctor.approval.decided_by"] == "sam"
    assert wait["attributes"]["proctor.approval.decider_role"] == "supervisor"
    assert wait["attributes"]["proctor.approval.reason"] == "ok, asked [redacted:email]"
    assert wait["end"] - wait["start"] == 90 * 10**9

    boom = tree["execute_tool explode"]
    assert boom["status"] == STATUS_ERROR
    assert boom["attributes"]["error.type"] == "error"
    assert "[redacted:card]" in boom["attributes"]["proctor.error.message"]

    # No argument or result is an attribute, and no planted secret arrived anywhere.
    raw = receiver.received.raw()
    for secret in SECRETS.values():
        assert secret.encode() not in raw
    # Fragments are looked for in the text that arrived, not in the raw bytes: four
    # bytes of a timing or an id can spell "4111" by chance.
    text = repr([(s["name"], s["attributes"], s["resource"]) for s in spans])
    assert "4111" not in text
    assert "A-1" not in text


async def test_nothing_is_exported_before_the_run_ends(
    env: Env, monkeypatch: pytest.MonkeyPatch, http_receiver: HttpReceiver
) -> None:
    _export_to(monkeypatch, http_receiver.endpoint, "http/protobuf")
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    await run.call("lookup", {"order_id": "A-1"})
    held = await run.call("refund", {"order_id": "A-1", "amount": "500.00"})
    assert held.status is CallStatus.AWAITING_APPROVAL
    rt.close()
    assert http_receiver.received.count() == 0  # paused: its spans go out once, at its end


async def test_a_run_ended_by_an_unknown_outcome_or_expiry_is_exported(
    env: Env, monkeypatch: pytest.MonkeyPatch, http_receiver: HttpReceiver
) -> None:
    _export_to(monkeypatch, http_receiver.endpoint, "http/protobuf")
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    held = await run.call("refund", {"order_id": "A-1", "amount": "500.00"})
    assert held.status is CallStatus.AWAITING_APPROVAL
    env.clock.advance(7200)  # past the approval's time to live
    assert await run.resume_pending() is not None
    assert run.state is RunState.HANDED_OFF
    assert run.reason == Reason.APPROVAL_EXPIRED.value
    rt.close()
    spans = _tree(http_receiver.received.spans())
    assert spans["invoke_agent bot"]["attributes"]["proctor.run.reason"] == "approval_expired"
    assert spans["proctor.approval refund"]["attributes"]["proctor.approval.status"] == "expired"


async def test_the_service_name_comes_from_the_environment(
    env: Env, monkeypatch: pytest.MonkeyPatch, http_receiver: HttpReceiver
) -> None:
    _export_to(monkeypatch, http_receiver.endpoint, "http/protobuf")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "support-agents")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme")
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    await run.complete()
    rt.close()
    spans = http_receiver.received.spans()
    assert [s["resource"]["service.name"] for s in spans] == ["support-agents"]
    (headers,) = http_receiver.headers
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["x-tenant"] == "acme"
