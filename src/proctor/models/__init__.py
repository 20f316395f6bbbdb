"""Models: the protocol, the message vocabulary, providers and prices."""

from proctor.models.base import Model
from proctor.models.messages import (
    MESSAGES,
    AssistantMessage,
    Message,
    ModelRequest,
    ModelResponse,
    SystemMessage,
    TokenUsage,
    ToolCall,
    ToolResultMessage,
    ToolSchema,
    UserMessage,
)

__all__ = [
    "MESSAGES",
    "AssistantMessage",
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "SystemMessage",
    "TokenUsage",
    "ToolCall",
    "ToolResultMessage",
    "ToolSchema",
    "UserMessage",
]
