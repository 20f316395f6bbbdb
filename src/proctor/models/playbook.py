"""The brain of the simulated model: what an application's playbook tells it to do.

``SimulatedModel`` knows how to be a model (seeded, priced, cut short at its
output limit) and how to go wrong; a ``Playbook`` knows the application. For
each request it reads the conversation and gives a ``Turn``: the calls to
propose now or the final answer, and what the faults need to strike
realistically: the calls third-party text asked for (``injected``) and calls
the request never asked for (``forbidden``). It also names the arguments that
hold ids (with how to invent one that does not exist) and amounts, which the
``invent_id`` and ``wrong_argument`` faults change.

``answered`` reads, from any conversation, the calls made since the latest
trusted request and what came back: a playbook builds on it, and so does the
``repeat_call`` fault.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from proctor.models.messages import AssistantMessage, Message, ToolResultMessage, UserMessage

__all__ = [
    "Answered",
    "Call",
    "IdArgument",
    "Playbook",
    "Turn",
    "answered",
    "json_object",
    "latest_request",
    "third_party",
]


@dataclass(frozen=True)
class Call:
    """A call the model means to make."""

    tool: str
    args: dict[str, Any]

    def arguments(self) -> str:
        """The JSON text a model writes for it."""
        return json.dumps(self.args)


@dataclass(frozen=True)
class Turn:
    """What the playbook says for one request."""

    calls: tuple[Call, ...] = ()
    """The calls to propose now; none means the model answers with ``answer``."""
    answer: str | None = None
    """The final answer, in plain text, when there is no call to make."""
    injected: tuple[Call, ...] = ()
    """Calls that third-party text seen so far tells the agent to make, not made yet
    (what the ``obey_injection`` fault proposes)."""
    forbidden: tuple[Call, ...] = ()
    """Calls the request never asked for, some to tools that do not exist (what the
    ``forbidden_tool`` fault picks one of)."""


@dataclass(frozen=True)
class IdArgument:
    """An argument that holds an identifier, and how to make up one that does not exist."""

    name: str
    """The argument's name, e.g. ``order_id``."""
    invent: Callable[[random.Random], str]
    """An id of the same shape that names nothing, drawn from the generator given."""


class Playbook(Protocol):
    """What the simulated model knows of an application. See the module."""

    @property
    def id_arguments(self) -> Sequence[IdArgument]:
        """Arguments holding ids, in the order the faults consider them."""
        ...

    @property
    def amount_arguments(self) -> Sequence[str]:
        """Arguments holding amounts of money as text (``"30.00"``)."""
        ...

    def turn(self, messages: Sequence[Message]) -> Turn:
        """The next step for this conversation, and the faults' targets."""
        ...


# -- reading a conversation -----------------------------------------------------------------


@dataclass(frozen=True)
class Answered:
    """A call the model made, and what came back."""

    tool: str
    arguments: str
    """The arguments exactly as proposed."""
    args: dict[str, Any] | None
    """The arguments parsed; ``None`` when they are not a JSON object."""
    content: str
    is_error: bool
    step: int | None
    trusted: bool

    @property
    def invalid(self) -> bool:
        """Rejected before it became a step: as if it never happened."""
        return self.is_error and self.step is None

    @property
    def result(self) -> dict[str, Any] | None:
        """The result, when the call ran and returned a JSON object."""
        if self.is_error:
            return None
        return json_object(self.content)


def json_object(text: str) -> dict[str, Any] | None:
    """``text`` parsed, when it is a JSON object."""
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _request_index(messages: Sequence[Message]) -> int:
    start = -1
    for i, m in enumerate(messages):
        if isinstance(m, UserMessage) and m.trusted:
            start = i
    return start


def latest_request(messages: Sequence[Message]) -> str:
    """The latest trusted user message (the request being worked on); empty if none."""
    start = _request_index(messages)
    found = messages[start] if start >= 0 else None
    return found.content if isinstance(found, UserMessage) else ""


def answered(messages: Sequence[Message]) -> tuple[Answered, ...]:
    """The calls made since the latest trusted request, with their results, in order."""
    proposed: dict[str, str] = {}
    done: list[Answered] = []
    for m in messages[_request_index(messages) + 1 :]:
        if isinstance(m, AssistantMessage):
            proposed.update((c.id, c.arguments) for c in m.tool_calls)
        elif isinstance(m, ToolResultMessage):
            arguments = proposed.get(m.tool_call_id, "")
            done.append(
                Answered(
                    m.tool,
                    arguments,
                    json_object(arguments),
                    m.content,
                    m.is_error,
                    m.step,
                    m.trusted,
                )
            )
    return tuple(done)


def third_party(messages: Sequence[Message]) -> tuple[str, ...]:
    """Untrusted user messages (someone else's words) anywhere in the conversation."""
    return tuple(m.content for m in messages if isinstance(m, UserMessage) and not m.trusted)
