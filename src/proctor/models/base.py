"""The seam every model provider implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from proctor.models.messages import ModelRequest, ModelResponse


@runtime_checkable
class Model(Protocol):
    """Messages and tool schemas in; one response (final answer, proposal or plan) out."""

    @property
    def name(self) -> str:
        """``provider:model``, e.g. ``openai:gpt-4o-mini``, ``simulated:cheap``."""
        ...

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Answer once. Raises ``ModelError`` (retryable or not) when no answer came."""
        ...
