"""An OpenAI-compatible model: OpenAI, and any server that speaks its chat completions API.

vLLM, Ollama, llama.cpp's server and a LiteLLM proxy work through ``base_url``.
Requests go through the official ``openai`` SDK with its own retries turned off;
``proctor.models._retry`` retries 429s, 5xx, timeouts and connection errors.

Usage is normalised to proctor's four disjoint counts: OpenAI counts cached
input inside ``prompt_tokens`` and reasoning inside ``completion_tokens``, so
both are taken out of the full-rate input and visible output.
``stop_reason`` is the API's ``finish_reason`` as sent (``stop``, ``length``,
``tool_calls``, ``content_filter``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

import openai

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
    from openai.types import CompletionUsage
    from openai.types.chat import (
        ChatCompletion,
        ChatCompletionMessageParam,
        ChatCompletionMessageToolCallParam,
        ChatCompletionToolParam,
    )

    from proctor.models.messages import ToolSchema

DEFAULT_BASE_URL = "https://api.openai.com/v1"
"""Where requests go when no ``base_url`` is given."""

MaxTokensParam = Literal["max_completion_tokens", "max_tokens"]
"""The request field that carries ``ModelRequest.max_output_tokens``."""


class OpenAIModel:
    """A chat completions model with tool calling.

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
        max_tokens_param: MaxTokensParam | None = None,
        send_temperature: bool = True,
    ) -> None:
        """``model`` as the server names it; ``base_url`` such as ``http://localhost:11434/v1``.

        ``timeout_s`` bounds each attempt's connect, read and write;
        ``max_retries`` counts attempts after the first. ``max_tokens_param``
        picks the field for the output limit: by default ``max_completion_tokens``
        on OpenAI's own API (its reasoning models accept no other) and
        ``max_tokens`` on any other ``base_url`` (every compatible server reads it).
        ``send_temperature=False`` leaves ``ModelRequest.temperature`` out, for
        reasoning models that refuse any but their default (o-series, gpt-5).
        """
        if not model:
            raise ValueError("model must name the model to call, e.g. 'gpt-4o-mini'")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be more than 0 seconds, got {timeout_s}")
        self._model = model
        self._retry = RetryPolicy(
            max_retries=max_retries,
            backoff_base_s=backoff_base_s,
            backoff_max_s=backoff_max_s,
            retry_after_max_s=retry_after_max_s,
        )
        url = base_url or DEFAULT_BASE_URL
        self._max_tokens_param: MaxTokensParam = max_tokens_param or (
            "max_completion_tokens" if url.rstrip("/") == DEFAULT_BASE_URL else "max_tokens"
        )
        self._send_temperature = send_temperature
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=url,
            timeout=timeout_s,
            max_retries=0,
        )

    @property
    def name(self) -> str:
        return f"openai:{self._model}"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """One chat completion; ``latency_ms`` covers every attempt and wait."""
        started = time.perf_counter()
        completion = await call_with_retries(
            lambda: self._create(request),
            classify=_classify,
            policy=self._retry,
            model=self.name,
        )
        latency_ms = (time.perf_counter() - started) * 1000.0
        url = self._client.base_url
        where = {"server_address": url.host, "server_port": _port(url.scheme, url.port)}
        return _response(completion, self.name, latency_ms).model_copy(
            update={"id": completion.id or None, **where}
        )

    async def _create(self, request: ModelRequest) -> ChatCompletion:
        # Optional fields travel in the body, left out when empty, on every SDK version.
        optional: dict[str, object] = {self._max_tokens_param: request.max_output_tokens}
        if request.tools:
            optional["tools"] = [_tool(t) for t in request.tools]
        if self._send_temperature:
            optional["temperature"] = request.temperature
        return await self._client.chat.completions.create(
            model=self._model,
            messages=[_message(m) for m in request.messages],
            extra_body=optional,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.close()

    async def __aenter__(self) -> OpenAIModel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _message(message: Message) -> ChatCompletionMessageParam:
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": message.content}
    if isinstance(message, UserMessage):
        return {"role": "user", "content": message.content}
    if isinstance(message, ToolResultMessage):
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    return _assistant(message)


def _assistant(message: AssistantMessage) -> ChatCompletionMessageParam:
    if not message.tool_calls:
        return {"role": "assistant", "content": message.content or ""}
    calls: list[ChatCompletionMessageToolCallParam] = [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": call.tool, "arguments": call.arguments},
        }
        for call in message.tool_calls
    ]
    return {"role": "assistant", "content": message.content, "tool_calls": calls}


def _tool(tool: ToolSchema) -> ChatCompletionToolParam:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def _response(completion: ChatCompletion, name: str, latency_ms: float) -> ModelResponse:
    if not completion.choices:
        raise ModelError(
            f"{name} answered with no choices, so there is nothing to act on; "
            "check that the server offers chat completions for this model.",
            retryable=False,
        )
    choice = completion.choices[0]
    message = choice.message
    calls: list[ToolCall] = []
    for call in message.tool_calls or ():
        if call.type != "function":
            raise ModelError(
                f"{name} answered with a {call.type!r} tool call; proctor offers only "
                "function tools, so check that the server can call tools.",
                retryable=False,
            )
        calls.append(
            ToolCall(id=call.id, tool=call.function.name, arguments=call.function.arguments)
        )
    return ModelResponse(
        model=completion.model or name.removeprefix("openai:"),
        content=message.content if message.content is not None else message.refusal,
        tool_calls=tuple(calls),
        usage=_usage(completion.usage),
        latency_ms=latency_ms,
        stop_reason=str(choice.finish_reason or "stop"),
    )


def _usage(usage: CompletionUsage | None) -> TokenUsage:
    """Disjoint counts: cached input out of the prompt, reasoning out of the completion."""
    prompt = count(usage, "prompt_tokens")
    completion = count(usage, "completion_tokens")
    cached = min(count(part(usage, "prompt_tokens_details"), "cached_tokens"), prompt)
    reasoning = min(count(part(usage, "completion_tokens_details"), "reasoning_tokens"), completion)
    return TokenUsage(
        input_tokens=prompt - cached,
        cached_input_tokens=cached,
        output_tokens=completion - reasoning,
        reasoning_tokens=reasoning,
    )


def _classify(exc: Exception) -> Failure | None:
    if isinstance(exc, openai.APIStatusError):
        return status_failure(
            exc.status_code, error_detail(exc.body, exc.message), exc.response.headers
        )
    if isinstance(exc, openai.APIConnectionError):  # a timeout is one too
        return no_response_failure(exc.message)
    if isinstance(exc, openai.OpenAIError):
        return Failure(retryable=False, status=None, detail=str(exc))
    return None


def _port(scheme: str, port: int | None) -> int | None:
    """The port asked, the scheme's default when the URL names none."""
    return port or {"https": 443, "http": 80}.get(scheme)
