"""Governed tools: each call of an agent's function or MCP tool goes through proctor's
gate, inside the session the calling code names, and asks proctor whether it needs
approval before the SDK runs it."""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from agents import Agent, FunctionTool, Handoff, RunContextWrapper
from agents.exceptions import AgentsException
from agents.tool import Tool as SdkTool
from agents.tool_context import ToolContext as SdkToolContext
from pydantic_core import to_jsonable_python

from proctor.integrations.governor import Declarations, Governor
from proctor.runs.model import RunSpec
from proctor.tools import ToolContext

_Invoke = Callable[[SdkToolContext[Any], str], Awaitable[Any]]


class RunStopped(AgentsException):
    """proctor stopped the session's run (a budget, too many invalid calls): the SDK run
    ends with this exception and no further call of the session runs."""


# -- the session a call belongs to ---------------------------------------------------------


@dataclass(frozen=True)
class SessionRef:
    """The session calls belong to, and the run spec to open its run with (None: the
    governor's)."""

    id: str
    spec: RunSpec | None


_SESSION: ContextVar[SessionRef | None] = ContextVar("proctor_oai_session", default=None)
_Execute = Callable[[dict[str, Any]], Awaitable[Any]]
_EXECUTING: ContextVar[tuple[str, _Execute] | None] = ContextVar("proctor_oai_exec", default=None)


@contextmanager
def proctor_session(session: str, spec: RunSpec | None = None) -> Iterator[None]:
    """Calls made inside belong to ``session`` (one conversation, one proctor run), under
    ``spec`` if given (else the governor's). ``run`` and ``resume`` do this for you."""
    token = _SESSION.set(SessionRef(session, spec))
    try:
        yield
    finally:
        _SESSION.reset(token)


def _current(tool: str) -> SessionRef:
    found = _SESSION.get()
    if found is None:
        raise RuntimeError(
            f"{tool} is governed by proctor but was called outside a session: run the agent "
            "with proctor.integrations.openai_agents.run(agent, input, governor=..., "
            "session=...) or inside `with proctor_session(...)`"
        )
    return found


# -- governed tools ------------------------------------------------------------------------


def govern(
    agent: Agent[Any], governor: Governor, declarations: Declarations | None = None
) -> Agent[Any]:
    """Govern the function tools of ``agent`` and of every agent reachable from it (its
    handoffs, and agents it uses as tools), in place; returns ``agent``.

    Each tool is declared by ``declarations`` (default: the governor's). Its
    ``on_invoke_tool`` then runs inside proctor's gate and its ``needs_approval`` asks
    proctor. An agent used as a tool is not itself a governed call: its tools are.
    Calling ``govern`` again is harmless.
    """
    declared = declarations or governor.declarations
    seen: set[int] = set()
    pending: list[Agent[Any]] = [agent]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        tools: list[SdkTool] = []
        for t in current.tools:
            if isinstance(t, FunctionTool) and t._is_agent_tool:
                nested = t._agent_instance
                if isinstance(nested, Agent):
                    pending.append(nested)
                tools.append(t)
            elif isinstance(t, FunctionTool):
                tools.append(_governed(t, governor, declared))
            else:
                tools.append(t)  # hosted tools run on OpenAI's side: see the docs
        current.tools = tools
        if current.mcp_servers:
            _govern_mcp(current, governor, declared)
        for h in current.handoffs:
            target = h if isinstance(h, Agent) else _handoff_agent(h)
            if target is not None:
                pending.append(target)
    return agent


def _govern_mcp(agent: Agent[Any], governor: Governor, declarations: Declarations) -> None:
    """The agent's MCP tools are listed at run time, each turn: govern them as listed."""
    if getattr(agent, _GOVERNED_BY, None) is governor:
        return
    listed = agent.get_mcp_tools

    async def get_mcp_tools(run_context: RunContextWrapper[Any]) -> list[SdkTool]:
        return [
            _governed(t, governor, declarations) if isinstance(t, FunctionTool) else t
            for t in await listed(run_context)
        ]

    object.__setattr__(agent, "get_mcp_tools", get_mcp_tools)
    object.__setattr__(agent, _GOVERNED_BY, governor)


def _handoff_agent(h: Handoff[Any, Any]) -> Agent[Any] | None:
    ref = h._agent_ref
    target = ref() if ref is not None else None
    return target if isinstance(target, Agent) else None


_GOVERNED_BY = "__proctor_governor__"


def _governed(t: FunctionTool, governor: Governor, declarations: Declarations) -> FunctionTool:
    if getattr(t, _GOVERNED_BY, None) is governor:
        return t
    name = t.name
    declaration = declarations.of(name)
    governor.add(declaration.schema_tool(name, t.description, t.params_json_schema, _via(name)))
    original: _Invoke = t.on_invoke_tool

    async def on_invoke_tool(ctx: SdkToolContext[Any], arguments: str) -> Any:
        session = _current(name)
        produced: list[Any] = []

        async def execute(args: dict[str, Any]) -> Any:
            output = await original(ctx, json.dumps(args))
            produced.append(output)
            return _plain(output)

        token = _EXECUTING.set((name, execute))
        try:
            verdict = await governor.call(
                session.id, name, arguments, call_id=ctx.tool_call_id, spec=session.spec
            )
        finally:
            _EXECUTING.reset(token)
        if verdict.status == "stopped":
            raise RunStopped(verdict.message)
        if verdict.executed:
            return produced[-1] if produced else verdict.result
        return verdict.for_model()

    async def needs_approval(
        ctx: RunContextWrapper[Any], params: dict[str, Any], call_id: str
    ) -> bool:
        return await requires_approval(governor, _current(name), name, params, call_id)

    governed = copy.copy(t)
    governed.on_invoke_tool = on_invoke_tool
    governed.needs_approval = needs_approval
    setattr(governed, _GOVERNED_BY, governor)
    return governed


def _via(name: str) -> Callable[[dict[str, Any], ToolContext], Awaitable[Any]]:
    """The proctor tool's function: the SDK invocation that is going on."""

    async def call(args: dict[str, Any], ctx: ToolContext) -> Any:
        current = _EXECUTING.get()
        if current is None or current[0] != name:
            raise RuntimeError(
                f"{name} is an OpenAI Agents SDK tool: it runs only when the SDK invokes it"
            )
        return await current[1](args)

    return call


def _plain(output: Any) -> Any:
    """What proctor stores of a tool's output: JSON values (the SDK's output objects and
    pydantic models as their fields, anything else as text)."""
    return to_jsonable_python(output, fallback=str)


async def requires_approval(
    governor: Governor, session: SessionRef, tool: str, params: dict[str, Any], call_id: str
) -> bool:
    """Whether the SDK should hold this call for approval: proctor holds it, or policy
    requires approval (then the request is recorded in proctor now)."""
    held = await governor.hold(session.id, tool, params, call_id=call_id, spec=session.spec)
    return held is not None
