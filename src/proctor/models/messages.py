"""One vocabulary for what goes to a model and what comes back, stored and loaded alike."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolCall(_Frozen):
    """A call a model proposes. ``arguments`` is the JSON text exactly as the model wrote it:
    it may be malformed, and the governed call decides what to make of it."""

    id: str
    tool: str
    arguments: str


class SystemMessage(_Frozen):
    role: Literal["system"] = "system"
    content: str


class UserMessage(_Frozen):
    role: Literal["user"] = "user"
    content: str
    trusted: bool = True
    """False for third-party text (a customer's message): it may carry injected instructions."""


class AssistantMessage(_Frozen):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


class ToolResultMessage(_Frozen):
    role: Literal["tool"] = "tool"
    tool_call_id: str
    tool: str
    content: str
    """The result as JSON text, or the error the call met."""
    is_error: bool = False
    trusted: bool = True
    step: int | None = None
    """The run's journal step the call became; ``None`` when it never became one (invalid)."""


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolResultMessage,
    Field(discriminator="role"),
]
MESSAGES: TypeAdapter[list[Message]] = TypeAdapter(list[Message])
"""Validates and dumps a conversation: the one way messages are stored and loaded."""


class ToolSchema(_Frozen):
    """A tool as a model sees it."""

    name: str
    description: str
    parameters: dict[str, Any]
    """JSON Schema of the arguments (an object)."""


class ModelRequest(_Frozen):
    messages: tuple[Message, ...]
    tools: tuple[ToolSchema, ...] = ()
    max_output_tokens: int = Field(default=1024, gt=0)
    """The most the model may write, reasoning included: the worst case a budget reserves."""
    temperature: float = 0.0


class TokenUsage(_Frozen):
    """Tokens of one model call, each counted once.

    Providers report them differently (OpenAI counts cached input inside its
    prompt tokens and reasoning inside its completion tokens; Anthropic reports
    cache reads apart); each provider normalises to these four disjoint counts.
    """

    input_tokens: int = Field(default=0, ge=0)
    """Input billed at the full rate (cached input not included)."""
    cached_input_tokens: int = Field(default=0, ge=0)
    """Input read from the provider's prompt cache."""
    output_tokens: int = Field(default=0, ge=0)
    """Visible output (reasoning not included)."""
    reasoning_tokens: int = Field(default=0, ge=0)
    """Hidden reasoning output; billed as output."""

    @property
    def total(self) -> int:
        return (
            self.input_tokens
            + self.cached_input_tokens
            + self.output_tokens
            + self.reasoning_tokens
        )


class ModelResponse(_Frozen):
    """One model call's answer: no tool calls is a final answer; one is a proposal; several,
    a plan to check as a whole before any of it runs."""

    model: str
    """The model id that answered, as the provider names it."""
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: TokenUsage = TokenUsage()
    latency_ms: float = 0.0
    stop_reason: str = "stop"
    id: str | None = None
    """The provider's id for this answer (``chatcmpl-…``, ``msg_…``), when it gives one."""
    server_address: str | None = None
    """The host the request went to, when it went over the network."""
    server_port: int | None = None

    @property
    def is_final(self) -> bool:
        return not self.tool_calls
