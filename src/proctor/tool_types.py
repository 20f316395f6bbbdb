"""The values a tool's declaration and its calls are made of: its effect class, whose
words its result carries, the context and credential a call gets, the run's view a
resource hook may read."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from proctor.errors import ToolDefinitionError
from proctor.policy import ResourceRef


class Effect(StrEnum):
    """What running the tool does to the world."""

    READ = "read"
    WRITE = "write"
    DESTRUCTIVE = "destructive"
    """It deletes, revokes, cancels or removes something."""
    IRREVERSIBLE = "irreversible"


class Trust(StrEnum):
    """Whose words a tool's result carries.

    ``TRUSTED``: records of a system the deployment trusts (ids, statuses, amounts);
    its values make an argument ``known``. ``UNTRUSTED``: outside content (an email, a
    web page, a file, a chat message) that may carry injected instructions. A tool whose
    records hold outside content in some fields names those fields with ``untrusted=``.
    """

    TRUSTED = "trusted"
    UNTRUSTED = "untrusted"


@dataclass(frozen=True)
class Credential:
    """What a tool may use while it runs: a token limited to its declared scopes."""

    scopes: frozenset[str]
    token: str | None = None


@dataclass(frozen=True)
class ToolContext:
    """Handed to a tool that declares a ``ToolContext`` parameter."""

    run_id: str
    step: int
    tenant: str
    idempotency_key: str
    """The same on every retry and every resume of this step: pass it to the system you call."""
    credential: Credential
    attempt: int = 1


@dataclass(frozen=True)
class Reconciliation:
    """A tool's answer, after a crash, to: did the effect with this idempotency key happen?"""

    happened: bool
    result: Any = None


RESERVED_NAMES = frozenset(e.value for e in Effect)


class ToolStillRunning(TimeoutError):
    """A synchronous tool passed its timeout; its thread goes on and may still take effect."""


@dataclass(frozen=True)
class RunView:
    """What a resource hook may know of the run deciding a call: read-only."""

    run_id: str
    tenant: str
    workflow: str
    agent: str
    requester: str
    facts: Mapping[str, Any]
    """Facts tools established earlier in the run (``facts=`` on a tool)."""


ResourceFn = (
    Callable[[BaseModel], ResourceRef | Awaitable[ResourceRef]]
    | Callable[[BaseModel, RunView], ResourceRef | Awaitable[ResourceRef]]
)
FactsFn = Callable[[Any], Mapping[str, Any]]
ReconcileFn = Callable[[BaseModel, ToolContext], Reconciliation | Awaitable[Reconciliation]]


NAME = re.compile(r"[A-Za-z0-9_]+")
SCHEMA_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
"""Names of tools described elsewhere (MCP, OpenAPI) may hold dots and dashes too."""


def check_name(name: object, pattern: re.Pattern[str]) -> None:
    if not isinstance(name, str) or not pattern.fullmatch(name):
        allowed = "letters, digits and underscores"
        if pattern is SCHEMA_NAME:
            allowed += ", dots and dashes"
        raise ToolDefinitionError(f"tool name {name!r}: use {allowed}")
    if name in RESERVED_NAMES:
        raise ToolDefinitionError(
            f"tool name {name!r} is the name of an effect class, which policies use "
            "as an action group; rename the tool"
        )


PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[\])?(\.[A-Za-z_][A-Za-z0-9_]*(\[\])?)*")


def check_declared(
    tool_name: str, arguments: Sequence[str], what: str, names: frozenset[str]
) -> None:
    unknown = sorted(names - set(arguments))
    if unknown:
        raise ToolDefinitionError(
            f"tool {tool_name}: {what} {', '.join(unknown)} are not arguments of it "
            f"(it takes {', '.join(arguments) or 'none'})"
        )
