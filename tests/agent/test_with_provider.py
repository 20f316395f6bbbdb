"""The agent over the real OpenAI SDK and a local server speaking its protocol."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from proctor import RunState
from proctor.agent import Agent
from proctor.models.openai import OpenAIModel
from tests.models.test_openai import completion, tool_call
from tests.models.wire import Reply, WireServer
from tests.shop import Env

BROKEN = '{"order_id": "A-1", "amount": }'
GOOD = '{"order_id": "A-1", "amount": "20.00"}'


@pytest.fixture
def wire() -> Iterator[WireServer]:
    server = WireServer()
    yield server
    server.stop()


def model(wire: WireServer) -> OpenAIModel:
    return OpenAIModel(
        "gpt-4o-mini", base_url=f"{wire.url}/v1", api_key="test-key", backoff_base_s=0.001
    )


async def test_a_malformed_tool_call_is_repaired_and_the_refund_runs_once(
    env: Env, wire: WireServer
) -> None:
    wire.reply(
        Reply(
            completion(tool_calls=[tool_call("c1", "refund", BROKEN)], finish_reason="tool_calls")
        ),
        Reply(completion(tool_calls=[tool_call("c2", "refund", GOOD)], finish_reason="tool_calls")),
        Reply(completion(content="Refunded $20.")),
    )
    agent = Agent(env.runtime(), model(wire))
    try:
        result = await agent.run("Refund $20 on A-1", env.spec())
    finally:
        await agent.aclose()
    assert (result.state, result.answer) == (RunState.COMPLETED, "Refunded $20.")
    assert len(env.ledger.effects("refund")) == 1
    # The repair request carried the tool error back to the model, on the wire.
    sent = wire.requests[1].body["messages"]
    assert sent[-1]["role"] == "tool"
    assert "not valid JSON" in sent[-1]["content"]
    assert result.cost_usd > 0


async def test_malformed_calls_past_the_limit_fail_the_run_safe(env: Env, wire: WireServer) -> None:
    broken = Reply(
        completion(tool_calls=[tool_call("c1", "refund", BROKEN)], finish_reason="tool_calls")
    )
    wire.reply(broken, broken, broken)
    agent = Agent(env.runtime(), model(wire))
    try:
        result = await agent.run("Refund $20 on A-1", env.spec(max_invalid_actions=2))
    finally:
        await agent.aclose()
    assert (result.state, result.reason) == (RunState.FAILED_SAFE, "invalid_actions")
    assert env.ledger.effects() == []


async def test_a_provider_that_keeps_failing_fails_the_run_safe(env: Env, wire: WireServer) -> None:
    wire.always(Reply({"error": {"message": "overloaded", "type": "server_error"}}, status=503))
    agent = Agent(env.runtime(), model(wire))
    try:
        result = await agent.run("Refund $20 on A-1", env.spec())
    finally:
        await agent.aclose()
    assert (result.state, result.reason) == (RunState.FAILED_SAFE, "model_error")
    assert len(wire.requests) == 3  # one try and two retries
