"""AnthropicModel through the real ``anthropic`` SDK against a local Messages API server."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from proctor.errors import ModelError
from proctor.models import (
    AssistantMessage,
    ModelRequest,
    SystemMessage,
    TokenUsage,
    ToolCall,
    ToolResultMessage,
    ToolSchema,
    UserMessage,
)
from proctor.models.anthropic import UNPARSED_ARGUMENTS, AnthropicModel

from .wire import Reply, WireServer

REFUND = ToolSchema(
    name="refund",
    description="Refund an order.",
    parameters={
        "type": "object",
        "properties": {"order_id": {"type": "string"}, "amount": {"type": "number"}},
        "required": ["order_id", "amount"],
    },
)
LOOKUP = ToolSchema(
    name="lookup_order",
    description="Look an order up.",
    parameters={"type": "object", "properties": {"order_id": {"type": "string"}}},
)
REQUEST = ModelRequest(
    messages=(
        SystemMessage(content="You are a support agent."),
        UserMessage(content="Refund order A-1, it arrived broken.", trusted=False),
    ),
    tools=(LOOKUP, REFUND),
    max_output_tokens=256,
)


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(block_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": block_id, "name": name, "input": arguments}


def message(
    *blocks: dict[str, Any], stop_reason: str = "end_turn", usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5-20261020",
        "content": list(blocks),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage
        or {
            "input_tokens": 120,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 12,
        },
    }


def error(status: int, kind: str, text_: str, **headers: str) -> Reply:
    body = {"type": "error", "error": {"type": kind, "message": text_}, "request_id": "req_01"}
    return Reply(body, status=status, headers={k.replace("_", "-"): v for k, v in headers.items()})


ANSWER = Reply(message(text("Your refund is on its way.")))


@pytest.fixture
async def model(wire: WireServer) -> AsyncIterator[AnthropicModel]:
    async with AnthropicModel(
        "claude-sonnet-5-5",
        api_key="sk-ant-test",
        base_url=wire.url,
        timeout_s=2.0,
        max_retries=2,
        backoff_base_s=0.001,
    ) as m:
        yield m


def sent_key(headers: dict[str, str]) -> str | None:
    """The API key, as whichever header the SDK version sends it in."""
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


async def test_a_plain_answer_is_final(model: AnthropicModel, wire: WireServer) -> None:
    wire.reply(ANSWER)

    response = await model.complete(REQUEST)

    assert model.name == "anthropic:claude-sonnet-5-5"
    assert response.is_final
    assert response.content == "Your refund is on its way."
    assert response.model == "claude-sonnet-5-5-20261020"
    assert response.stop_reason == "end_turn"
    assert response.latency_ms > 0
    assert response.id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert response.server_address == "127.0.0.1"
    assert response.server_port == int(wire.url.rsplit(":", 1)[1])
    assert wire.paths() == ["/v1/messages"]
    assert sent_key(wire.requests[0].headers) == "sk-ant-test"
    assert "anthropic-version" in wire.requests[0].headers


async def test_one_tool_use_is_a_proposal(model: AnthropicModel, wire: WireServer) -> None:
    block = tool_use("toolu_01A", "refund", {"order_id": "A-1", "amount": 12.5})
    wire.reply(Reply(message(block, stop_reason="tool_use")))

    response = await model.complete(REQUEST)

    assert response.content is None
    assert response.tool_calls == (
        ToolCall(id="toolu_01A", tool="refund", arguments='{"amount": 12.5, "order_id": "A-1"}'),
    )
    assert response.stop_reason == "tool_use"


async def test_several_tool_uses_are_a_plan_in_order(
    model: AnthropicModel, wire: WireServer
) -> None:
    wire.reply(
        Reply(
            message(
                text("I'll look the order up, then refund it."),
                tool_use("toolu_1", "lookup_order", {"order_id": "A-1"}),
                tool_use("toolu_2", "refund", {"order_id": "A-1", "amount": 12.5}),
                stop_reason="tool_use",
            )
        )
    )

    response = await model.complete(REQUEST)

    assert [(c.id, c.tool) for c in response.tool_calls] == [
        ("toolu_1", "lookup_order"),
        ("toolu_2", "refund"),
    ]
    assert response.content == "I'll look the order up, then refund it."


async def test_tool_use_input_becomes_canonical_json_text(
    model: AnthropicModel, wire: WireServer
) -> None:
    arguments = {"order_id": "A-1", "amount": 12.5, "meta": {"z": [1, 2], "a": "é"}}
    wire.reply(Reply(message(tool_use("toolu_1", "refund", arguments))))

    response = await model.complete(REQUEST)

    text_ = response.tool_calls[0].arguments
    assert text_ == json.dumps(arguments, sort_keys=True)
    assert json.loads(text_) == arguments


async def test_the_request_places_system_tools_and_tool_results(
    model: AnthropicModel, wire: WireServer
) -> None:
    wire.reply(ANSWER)
    plan = (
        ToolCall(id="toolu_1", tool="lookup_order", arguments='{"order_id":"A-1"}'),
        ToolCall(id="toolu_2", tool="refund", arguments='{"order_id":"A-1","amount":12.5}'),
    )
    request = ModelRequest(
        messages=(
            *REQUEST.messages,
            AssistantMessage(content="Checking first.", tool_calls=plan),
            ToolResultMessage(
                tool_call_id="toolu_1", tool="lookup_order", content='{"status":"delivered"}'
            ),
            ToolResultMessage(
                tool_call_id="toolu_2", tool="refund", content="refused by policy", is_error=True
            ),
            SystemMessage(content="Be brief."),
        ),
        tools=(LOOKUP, REFUND),
        max_output_tokens=300,
        temperature=0.2,
    )

    await model.complete(request)

    sent = wire.requests[0].body
    assert sent["model"] == "claude-sonnet-5-5"
    assert sent["max_tokens"] == 300
    assert sent["system"] == "You are a support agent.\n\nBe brief."
    assert sent["messages"] == [
        {"role": "user", "content": [text("Refund order A-1, it arrived broken.")]},
        {
            "role": "assistant",
            "content": [
                text("Checking first."),
                tool_use("toolu_1", "lookup_order", {"order_id": "A-1"}),
                tool_use("toolu_2", "refund", {"order_id": "A-1", "amount": 12.5}),
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": '{"status":"delivered"}',
                    "is_error": False,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "refused by policy",
                    "is_error": True,
                },
            ],
        },
    ]
    assert sent["tools"] == [
        {"name": t.name, "description": t.description, "input_schema": t.parameters}
        for t in (LOOKUP, REFUND)
    ]
    assert "temperature" not in sent


async def test_no_system_and_no_tools_send_neither(model: AnthropicModel, wire: WireServer) -> None:
    wire.reply(ANSWER)

    await model.complete(ModelRequest(messages=(UserMessage(content="hi"),)))

    sent = wire.requests[0].body
    assert "system" not in sent
    assert "tools" not in sent
    assert sent["messages"] == [{"role": "user", "content": [text("hi")]}]


async def test_malformed_arguments_from_another_model_are_carried_whole(
    model: AnthropicModel, wire: WireServer
) -> None:
    wire.reply(ANSWER)
    malformed = '{"order_id": "A-1", "amount": }'
    request = ModelRequest(
        messages=(
            UserMessage(content="Refund A-1."),
            AssistantMessage(tool_calls=(ToolCall(id="c1", tool="refund", arguments=malformed),)),
            ToolResultMessage(
                tool_call_id="c1", tool="refund", content="arguments are not JSON", is_error=True
            ),
        )
    )

    await model.complete(request)

    assistant = wire.requests[0].body["messages"][1]
    assert assistant == {
        "role": "assistant",
        "content": [tool_use("c1", "refund", {UNPARSED_ARGUMENTS: malformed})],
    }


async def test_usage_counts_cache_writes_as_input_and_reads_apart(
    model: AnthropicModel, wire: WireServer
) -> None:
    usage = {
        "input_tokens": 150,
        "cache_creation_input_tokens": 2000,
        "cache_read_input_tokens": 5000,
        "output_tokens": 80,
    }
    wire.reply(Reply(message(text("done"), usage=usage)))

    response = await model.complete(REQUEST)

    assert response.usage == TokenUsage(
        input_tokens=2150, cached_input_tokens=5000, output_tokens=80, reasoning_tokens=0
    )


async def test_usage_takes_reported_thinking_out_of_output(
    model: AnthropicModel, wire: WireServer
) -> None:
    usage = {
        "input_tokens": 150,
        "cache_creation_input_tokens": None,
        "cache_read_input_tokens": None,
        "output_tokens": 500,
        "output_tokens_details": {"thinking_tokens": 420},
    }
    wire.reply(Reply(message(text("done"), usage=usage)))

    response = await model.complete(REQUEST)

    assert response.usage == TokenUsage(
        input_tokens=150, cached_input_tokens=0, output_tokens=80, reasoning_tokens=420
    )


async def test_a_429_is_retried_after_the_servers_retry_after(
    model: AnthropicModel, wire: WireServer
) -> None:
    wire.reply(error(429, "rate_limit_error", "Rate limited.", retry_after="0.3"), ANSWER)

    started = time.perf_counter()
    response = await model.complete(REQUEST)

    assert time.perf_counter() - started >= 0.3
    assert response.content == "Your refund is on its way."
    assert len(wire.requests) == 2


async def test_a_500_twice_then_success(model: AnthropicModel, wire: WireServer) -> None:
    failure = error(500, "api_error", "Internal server error.")
    wire.reply(failure, failure, ANSWER)

    response = await model.complete(REQUEST)

    assert response.content == "Your refund is on its way."
    assert len(wire.requests) == 3


async def test_overloaded_every_time_gives_up_retryable(
    model: AnthropicModel, wire: WireServer
) -> None:
    wire.always(error(529, "overloaded_error", "Overloaded"))

    with pytest.raises(ModelError) as raised:
        await model.complete(REQUEST)

    assert (raised.value.retryable, raised.value.status) == (True, 529)
    assert len(wire.requests) == 3
    assert "anthropic:claude-sonnet-5-5" in str(raised.value)
    assert "Overloaded" in str(raised.value)


async def test_a_500_every_time_gives_up_retryable(model: AnthropicModel, wire: WireServer) -> None:
    wire.always(error(500, "api_error", "Internal server error."))

    with pytest.raises(ModelError) as raised:
        await model.complete(REQUEST)

    assert (raised.value.retryable, raised.value.status) == (True, 500)
    assert len(wire.requests) == 3


async def test_a_400_is_not_retried(model: AnthropicModel, wire: WireServer) -> None:
    wire.always(error(400, "invalid_request_error", "tools.0.input_schema: invalid"))

    with pytest.raises(ModelError) as raised:
        await model.complete(REQUEST)

    assert (raised.value.retryable, raised.value.status) == (False, 400)
    assert len(wire.requests) == 1
    assert "tools.0.input_schema: invalid" in str(raised.value)


async def test_a_timeout_is_retried_then_gives_up(wire: WireServer) -> None:
    wire.always(Reply(message(text("too late")), delay_s=5.0))
    async with AnthropicModel(
        "claude-sonnet-5-5",
        api_key="sk-ant-test",
        base_url=wire.url,
        timeout_s=0.2,
        max_retries=1,
        backoff_base_s=0.001,
    ) as model:
        with pytest.raises(ModelError) as raised:
            await model.complete(REQUEST)

    assert (raised.value.retryable, raised.value.status) == (True, None)
    assert len(wire.requests) == 2


async def test_a_refused_connection_is_retryable(unused_port: int) -> None:
    async with AnthropicModel(
        "claude-sonnet-5-5",
        api_key="sk-ant-test",
        base_url=f"http://127.0.0.1:{unused_port}",
        max_retries=1,
        backoff_base_s=0.001,
    ) as model:
        with pytest.raises(ModelError) as raised:
            await model.complete(REQUEST)

    assert (raised.value.retryable, raised.value.status) == (True, None)
