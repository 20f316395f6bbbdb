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
from proctor.models.playbook import Playbook, Turn

__all__ = [
    "MESSAGES",
    "AssistantMessage",
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "Playbook",
    "SystemMessage",
    "TokenUsage",
    "ToolCall",
    "ToolResultMessage",
    "ToolSchema",
    "Turn",
    "UserMessage",
]
