"""OpenAIModel through the real ``openai`` SDK against a local chat completions server."""

from __future__ import annotations

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
from proctor.models.openai import OpenAIModel

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


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def completion(
    *,
    content: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str = "stop",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-9xYz",
        "object": "chat.completion",
        "created": 1764000000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0aa8d3e20b",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": usage
        or {
            "prompt_tokens": 120,
            "completion_tokens": 12,
            "total_tokens": 132,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
    }


def error(status: int, message: str, code: str, **headers: str) -> Reply:
    body = {"error": {"message": message, "type": code, "param": None, "code": code}}
    return Reply(body, status=status, headers={k.replace("_", "-"): v for k, v in headers.items()})


ANSWER = Reply(completion(content="Your refund is on its way."))


@pytest.fixture
async def model(wire: WireServer) -> AsyncIterator[OpenAIModel]:
    async with OpenAIModel(
        "gpt-4o-mini",
        api_key="sk-test",
        base_url=f"{wire.url}/v1",
        timeout_s=2.0,
        max_retries=2,
        backoff_base_s=0.001,
    ) as m:
        yield m


async def test_a_plain_answer_is_final(model: OpenAIModel, wire: WireServer) -> None:
    wire.reply(ANSWER)

    response = await model.complete(REQUEST)

    assert model.name == "openai:gpt-4o-mini"
    assert response.is_final
    assert response.content == "Your refund is on its way."
    assert response.model == "gpt-4o-mini-2024-07-18"
    assert response.stop_reason == "stop"
    assert response.latency_ms > 0
    # What a trace names: the provider's id for the answer and the server asked.
    assert response.id == "chatcmpl-9xYz"
    assert response.server_address == "127.0.0.1"
    assert response.server_port == int(wire.url.rsplit(":", 1)[1])
    assert wire.paths() == ["/v1/chat/completions"]
    assert wire.requests[0].headers["authorization"] == "Bearer sk-test"


async def test_one_tool_call_is_a_proposal(model: OpenAIModel, wire: WireServer) -> None:
    call = tool_call("call_Ab12", "refund", '{"order_id": "A-1", "amount": 12.5}')
    wire.reply(Reply(completion(tool_calls=[call], finish_reason="tool_calls")))

    response = await model.complete(REQUEST)

    assert response.content is None
    assert response.tool_calls == (
        ToolCall(id="call_Ab12", tool="refund", arguments='{"order_id": "A-1", "amount": 12.5}'),
    )
    assert response.stop_reason == "tool_calls"


async def test_several_tool_calls_are_a_plan_in_order(model: OpenAIModel, wire: WireServer) -> None:
    calls = [
        tool_call("call_1", "lookup_order", '{"order_id":"A-1"}'),
        tool_call("call_2", "refund", '{"order_id":"A-1","amount":12.5}'),
    ]
    wire.reply(Reply(completion(content="Checking first.", tool_calls=calls)))

    response = await model.complete(REQUEST)

    assert [(c.id, c.tool) for c in response.tool_calls] == [
        ("call_1", "lookup_order"),
        ("call_2", "refund"),
    ]
    assert response.content == "Checking first."


async def test_malformed_arguments_pass_through_verbatim(
    model: OpenAIModel, wire: WireServer
) -> None:
    malformed = '{"order_id": "A-1", "amount": }'
    wire.reply(Reply(completion(tool_calls=[tool_call("call_x", "refund", malformed)])))

    response = await model.complete(REQUEST)

    assert response.tool_calls[0].arguments == malformed


async def test_the_request_carries_tools_messages_and_limits(
    model: OpenAIModel, wire: WireServer
) -> None:
    wire.reply(ANSWER)
    call = ToolCall(id="call_1", tool="lookup_order", arguments='{"order_id":"A-1"}')
    request = ModelRequest(
        messages=(
            *REQUEST.messages,
            AssistantMessage(content=None, tool_calls=(call,)),
            ToolResultMessage(
                tool_call_id="call_1", tool="lookup_order", content='{"status":"delivered"}'
            ),
            AssistantMessage(content="It was delivered."),
        ),
        tools=(LOOKUP, REFUND),
        max_output_tokens=300,
        temperature=0.2,
    )

    await model.complete(request)

    sent = wire.requests[0].body
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"] == [
        {"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": "Refund order A-1, it arrived broken."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [tool_call("call_1", "lookup_order", '{"order_id":"A-1"}')],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"status":"delivered"}'},
        {"role": "assistant", "content": "It was delivered."},
    ]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
            },
        }
        for t in (LOOKUP, REFUND)
    ]
    assert sent["max_tokens"] == 300
    assert "max_completion_tokens" not in sent
    assert sent["temperature"] == 0.2
    assert "stream" not in sent or sent["stream"] is False


async def test_no_tools_sends_no_tools_field(model: OpenAIModel, wire: WireServer) -> None:
    wire.reply(ANSWER)

    await model.complete(ModelRequest(messages=(UserMessage(content="hi"),)))

    assert "tools" not in wire.requests[0].body


async def test_a_reasoning_model_gets_max_completion_tokens_and_no_temperature(
    wire: WireServer,
) -> None:
    wire.reply(ANSWER)
    async with OpenAIModel(
        "o4-mini",
        api_key="sk-test",
        base_url=f"{wire.url}/v1",
        max_tokens_param="max_completion_tokens",
        send_temperature=False,
    ) as model:
        await model.complete(REQUEST)

    sent = wire.requests[0].body
    assert sent["max_completion_tokens"] == 256
    assert "max_tokens" not in sent
    assert "temperature" not in sent


async def test_usage_is_normalised_to_four_disjoint_counts(
    model: OpenAIModel, wire: WireServer
) -> None:
    usage = {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 1000, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 250,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    wire.reply(Reply(completion(content="done", usage=usage)))

    response = await model.complete(REQUEST)

    assert response.usage == TokenUsage(
        input_tokens=200, cached_input_tokens=1000, output_tokens=50, reasoning_tokens=250
    )
    assert response.usage.total == 1500


async def test_usage_without_details_counts_none_cached_or_reasoning(
    model: OpenAIModel, wire: WireServer
) -> None:
    usage = {"prompt_tokens": 40, "completion_tokens": 7, "total_tokens": 47}
    wire.reply(Reply(completion(content="done", usage=usage)))

    response = await model.complete(REQUEST)

    assert response.usage == TokenUsage(input_tokens=40, output_tokens=7)


async def test_a_429_is_retried_after_the_servers_retry_after(
    model: OpenAIModel, wire: WireServer
) -> None:
    wire.reply(error(429, "Rate limit reached.", "rate_limit_exceeded", retry_after="0.3"), ANSWER)

    started = time.perf_counter()
    response = await model.complete(REQUEST)
    waited = time.perf_counter() - started

    assert response.content == "Your refund is on its way."
    assert len(wire.requests) == 2
    assert waited >= 0.3


async def test_a_long_retry_after_is_capped(wire: WireServer) -> None:
    wire.reply(error(429, "Slow down.", "rate_limit_exceeded", retry_after="3600"), ANSWER)
    async with OpenAIModel(
        "gpt-4o-mini",
        api_key="sk-test",
        base_url=f"{wire.url}/v1",
        backoff_base_s=0.001,
        retry_after_max_s=0.01,
    ) as model:
        started = time.perf_counter()
        await model.complete(REQUEST)

    assert time.perf_counter() - started < 2
    assert len(wire.requests) == 2


async def test_a_500_twice_then_success(model: OpenAIModel, wire: WireServer) -> None:
    failure = error(500, "The server had an error.", "server_error")
    wire.reply(failure, failure, ANSWER)

    response = await model.complete(REQUEST)

    assert response.content == "Your refund is on its way."
    assert len(wire.requests) == 3


async def test_a_500_every_time_gives_up_retryable(model: OpenAIModel, wire: WireServer) -> None:
    wire.always(error(500, "The server had an error.", "server_error"))

    with pytest.raises(ModelError) as raised:
        await model.complete(REQUEST)

    assert raised.value.retryable is True
    assert raised.value.status == 500
    assert len(wire.requests) == 3  # max_retries + 1
    message = str(raised.value)
    assert "openai:gpt-4o-mini" in message
    assert "HTTP 500" in message
    assert "3 attempt(s)" in message
    assert "The server had an error." in message


async def test_a_400_is_not_retried(model: OpenAIModel, wire: WireServer) -> None:
    wire.always(error(400, "Invalid schema for function 'refund'.", "invalid_request_error"))

    with pytest.raises(ModelError) as raised:
        await model.complete(REQUEST)

    assert raised.value.retryable is False
    assert raised.value.status == 400
    assert len(wire.requests) == 1
    assert "Invalid schema for function 'refund'." in str(raised.value)
    assert "will not help" in str(raised.value)


@pytest.mark.parametrize(
    ("status", "hint"), [(401, "API key"), (404, "model name"), (422, "request")]
)
async def test_other_4xx_are_not_retried(
    model: OpenAIModel, wire: WireServer, status: int, hint: str
) -> None:
    wire.always(error(status, "No.", "invalid_request_error"))

    with pytest.raises(ModelError) as raised:
        await model.complete(REQUEST)

    assert (raised.value.retryable, raised.value.status) == (False, status)
    assert hint in str(raised.value)
    assert len(wire.requests) == 1


async def test_a_timeout_is_retried_then_gives_up(wire: WireServer) -> None:
    wire.always(Reply(completion(content="too late"), delay_s=5.0))
    async with OpenAIModel(
        "gpt-4o-mini",
        api_key="sk-test",
        base_url=f"{wire.url}/v1",
        timeout_s=0.2,
        max_retries=1,
        backoff_base_s=0.001,
    ) as model:
        with pytest.raises(ModelError) as raised:
            await model.complete(REQUEST)

    assert raised.value.retryable is True
    assert raised.value.status is None
    assert "no response" in str(raised.value)
    assert len(wire.requests) == 2


async def test_a_slow_answer_then_a_quick_one(wire: WireServer) -> None:
    wire.reply(Reply(completion(content="too late"), delay_s=5.0), ANSWER)
    async with OpenAIModel(
        "gpt-4o-mini",
        api_key="sk-test",
        base_url=f"{wire.url}/v1",
        timeout_s=0.2,
        backoff_base_s=0.001,
    ) as model:
        response = await model.complete(REQUEST)

    assert response.content == "Your refund is on its way."
    assert len(wire.requests) == 2


async def test_a_refused_connection_is_retryable(unused_port: int) -> None:
    async with OpenAIModel(
        "gpt-4o-mini",
        api_key="sk-test",
        base_url=f"http://127.0.0.1:{unused_port}/v1",
        max_retries=1,
        backoff_base_s=0.001,
    ) as model:
        with pytest.raises(ModelError) as raised:
            await model.complete(REQUEST)

    assert (raised.value.retryable, raised.value.status) == (True, None)


async def test_no_choices_cannot_be_mapped(model: OpenAIModel, wire: WireServer) -> None:
    body = completion(content="x")
    body["choices"] = []
    wire.reply(Reply(body))

    with pytest.raises(ModelError) as raised:
        await model.complete(REQUEST)

    assert raised.value.retryable is False
    assert "no choices" in str(raised.value)
    assert len(wire.requests) == 1
