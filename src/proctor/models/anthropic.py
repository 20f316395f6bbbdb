"""Anthropic's Messages API, through the official ``anthropic`` SDK.

System messages go to the top-level ``system`` parameter; tool results travel
as ``tool_result`` blocks in a user turn and proposed calls as ``tool_use``
blocks, whose ``input`` is a JSON object: a ``ToolCall`` carries it as
``json.dumps(input, sort_keys=True)``. Consecutive messages of one role are
merged into one turn, as the API requires of the results of a plan.
The SDK's own retries are off; ``proctor.models._retry`` retries 429s, 5xx
(529 "overloaded" included), timeouts and connection errors.

Usage: cache writes are billed input, so they count as ``input_tokens``; cache
reads are ``cached_input_tokens``; thinking tokens, when the API reports them
apart, are taken out of ``output_tokens`` into ``reasoning_tokens``.
``stop_reason`` is the API's as sent (``end_turn``, ``tool_use``,
``max_tokens``, ``stop_sequence``, ``refusal``, ...).

``ModelRequest.temperature`` is not sent: the API version the SDK speaks
(2026-10-21) refuses sampling parameters on every model.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Literal

import anthropic

from proctor.errors import ModelError
from proctor.models._reported import count, part
from proctor.models._retry import (
    Failure,
    RetryPolicy,
    call_with_retries,
    error_detail,
    no_response_failure,
    status_failure,
)
from proctor.models.messages import (
    AssistantMessage,
    Message,
    ModelRequest,
    ModelResponse,
    SystemMessage,
    TokenUsage,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)

if TYPE_CHECKING:
    from anthropic.types import ContentBlockParam, MessageParam, ToolParam, Usage
    from anthropic.types import Message as AnthropicMessage

    from proctor.models.messages import ToolSchema

DEFAULT_BASE_URL = "https://api.anthropic.com"
"""Where requests go when no ``base_url`` is given."""

UNPARSED_ARGUMENTS = "_unparsed_arguments"
"""The key a ``tool_use`` input carries arguments under when they were not a JSON object."""

_Role = Literal["user", "assistant"]


class AnthropicModel:
    """A Claude model with tool use.

    Holds a connection pool: close it with ``await model.aclose()`` or use the
    model as an async context manager.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 8.0,
        retry_after_max_s: float = 30.0,
    ) -> None:
        """``model`` as Anthropic names it; ``base_url`` without ``/v1``.

        ``timeout_s`` bounds each attempt's connect, read and write;
        ``max_retries`` counts attempts after the first.
        """
        if not model:
            raise ValueError("model must name the model to call, e.g. 'claude-sonnet-5-5'")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be more than 0 seconds, got {timeout_s}")
        self._model = model
        self._retry = RetryPolicy(
            max_retries=max_retries,
            backoff_base_s=backoff_base_s,
            backoff_max_s=backoff_max_s,
            retry_after_max_s=retry_after_max_s,
        )
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url or DEFAULT_BASE_URL,
            timeout=timeout_s,
            max_retries=0,
        )

    @property
    def name(self) -> str:
        return f"anthropic:{self._model}"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """One Messages API call; ``latency_ms`` covers every attempt and wait."""
        started = time.perf_counter()
        message = await call_with_retries(
            lambda: self._create(request),
            classify=_classify,
            policy=self._retry,
            model=self.name,
        )
        latency_ms = (time.perf_counter() - started) * 1000.0
        url = self._client.base_url
        where = {"server_address": url.host, "server_port": _port(url.scheme, url.port)}
        return _response(message, self.name, latency_ms).model_copy(
            update={"id": message.id or None, **where}
        )

    async def _create(self, request: ModelRequest) -> AnthropicMessage:
        # Optional fields travel in the body, left out when empty, on every SDK version.
        optional: dict[str, object] = {}
        system = "\n\n".join(m.content for m in request.messages if isinstance(m, SystemMessage))
        if system:
            optional["system"] = system
        if request.tools:
            optional["tools"] = [_tool(t) for t in request.tools]
        return await self._client.messages.create(
            model=self._model,
            max_tokens=request.max_output_tokens,
            messages=_turns(request.messages),
            extra_body=optional,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.close()

    async def __aenter__(self) -> AnthropicModel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _turns(messages: tuple[Message, ...]) -> list[MessageParam]:
    """User and assistant turns, each a list of blocks; consecutive same-role messages merge."""
    turns: list[tuple[_Role, list[ContentBlockParam]]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            continue
        role: _Role = "assistant" if isinstance(message, AssistantMessage) else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    return [
        {"role": "user", "content": blocks}
        if role == "user"
        else {"role": "assistant", "content": blocks}
        for role, blocks in turns
    ]


def _blocks(message: UserMessage | AssistantMessage | ToolResultMessage) -> list[ContentBlockParam]:
    if isinstance(message, ToolResultMessage):
        return [
            {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content,
                "is_error": message.is_error,
            }
        ]
    blocks: list[ContentBlockParam] = []
    if message.content:  # the API refuses empty text blocks
        blocks.append({"type": "text", "text": message.content})
    if isinstance(message, AssistantMessage):
        blocks.extend(
            {"type": "tool_use", "id": call.id, "name": call.tool, "input": _input(call.arguments)}
            for call in message.tool_calls
        )
    return blocks


def _input(arguments: str) -> dict[str, object]:
    """A call's arguments as the object ``tool_use`` needs; text that is not a JSON object
    (a malformed call from another model) is carried whole under ``UNPARSED_ARGUMENTS``."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return {UNPARSED_ARGUMENTS: arguments}
    if not isinstance(value, dict):
        return {UNPARSED_ARGUMENTS: arguments}
    return value


def _tool(tool: ToolSchema) -> ToolParam:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}


def _response(message: AnthropicMessage, name: str, latency_ms: float) -> ModelResponse:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            if not isinstance(block.input, dict):
                raise ModelError(
                    f"{name} proposed {block.name!r} with input that is not a JSON object; "
                    "check that the server speaks Anthropic's Messages API.",
                    retryable=False,
                )
            arguments = json.dumps(block.input, sort_keys=True)
            calls.append(ToolCall(id=block.id, tool=block.name, arguments=arguments))
    return ModelResponse(
        model=message.model or name.removeprefix("anthropic:"),
        content="".join(texts) if texts else None,
        tool_calls=tuple(calls),
        usage=_usage(message.usage),
        latency_ms=latency_ms,
        stop_reason=str(message.stop_reason or "end_turn"),
    )


def _usage(usage: Usage) -> TokenUsage:
    """Disjoint counts: cache writes are full-rate input, cache reads apart, thinking apart."""
    output = count(usage, "output_tokens")
    thinking = min(count(part(usage, "output_tokens_details"), "thinking_tokens"), output)
    return TokenUsage(
        input_tokens=count(usage, "input_tokens") + count(usage, "cache_creation_input_tokens"),
        cached_input_tokens=count(usage, "cache_read_input_tokens"),
        output_tokens=output - thinking,
        reasoning_tokens=thinking,
    )


def _classify(exc: Exception) -> Failure | None:
    if isinstance(exc, anthropic.APIStatusError):
        return status_failure(
            exc.status_code, error_detail(exc.body, exc.message), exc.response.headers
        )
    if isinstance(exc, anthropic.APIConnectionError):  # a timeout is one too
        return no_response_failure(exc.message)
    if isinstance(exc, anthropic.AnthropicError):
        return Failure(retryable=False, status=None, detail=str(exc))
    return None


def _port(scheme: str, port: int | None) -> int | None:
    """The port asked, the scheme's default when the URL names none."""
    return port or {"https": 443, "http": 80}.get(scheme)
