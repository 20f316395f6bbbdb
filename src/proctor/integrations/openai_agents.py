"""Governance for agents written with the OpenAI Agents SDK (the ``openai-agents`` extra).

``govern(agent, governor)`` replaces the function tools of an agent, and of every agent
it hands off to or uses as a tool, with governed ones: each call the model makes is
validated, decided by policy, written to the audit log as an intent, and only then
executed by the tool's own ``on_invoke_tool``. The SDK's tool call id is the proctor
call id, so a call is never executed twice, whatever the SDK replays on resume.

When policy requires approval, the tool's ``needs_approval`` says so, the approval is
recorded in proctor, and the SDK interrupts the run (``result.interruptions``).
``apply_approvals`` turns proctor's decisions into ``RunState.approve`` / ``reject``;
``resume`` does that and continues the run. Approving in the SDK grants nothing: a call
runs only once proctor's approval is granted.

``run`` and ``resume`` name the session (one conversation, one proctor run), count the
model's usage against the run's budget, and end the run when the SDK run ends.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, FunctionTool, Handoff, RunContextWrapper, RunHooks, Runner, RunState
from agents.exceptions import AgentsException, MaxTurnsExceeded
from agents.items import ModelResponse, ToolApprovalItem, TResponseInputItem
from agents.memory import Session as SdkSession
from agents.result import RunResult
from agents.run_context import AgentHookContext
from agents.tool import Tool as SdkTool
from agents.tool_context import ToolContext as SdkToolContext
from pydantic import BaseModel

from proctor.errors import InvalidAction
from proctor.integrations.governor import Declarations, Governor
from proctor.policy import DecisionEffect
from proctor.runs.model import RunSpec
from proctor.runs.run import Run
from proctor.runs.views import steps_of
from proctor.states import ApprovalStatus, Reason, StepStatus
from proctor.states import RunState as ProctorRunState
from proctor.tools import ToolContext

__all__ = [
    "Applied",
    "RunStopped",
    "apply_approvals",
    "govern",
    "proctor_session",
    "resume",
    "run",
]

_Invoke = Callable[[SdkToolContext[Any], str], Awaitable[Any]]


class RunStopped(AgentsException):
    """proctor stopped the session's run (a budget, too many invalid calls): the SDK run
    ends with this exception and no further call of the session runs."""


# -- the session a call belongs to ---------------------------------------------------------


@dataclass(frozen=True)
class _Session:
    id: str
    spec: RunSpec | None


_SESSION: ContextVar[_Session | None] = ContextVar("proctor_oai_session", default=None)
_Execute = Callable[[dict[str, Any]], Awaitable[Any]]
_EXECUTING: ContextVar[tuple[str, _Execute] | None] = ContextVar("proctor_oai_exec", default=None)


@contextmanager
def proctor_session(session: str, spec: RunSpec | None = None) -> Iterator[None]:
    """Calls made inside belong to ``session`` (one conversation, one proctor run), under
    ``spec`` if given (else the governor's). ``run`` and ``resume`` do this for you."""
    token = _SESSION.set(_Session(session, spec))
    try:
        yield
    finally:
        _SESSION.reset(token)


def _current(tool: str) -> _Session:
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
        return await _requires_approval(governor, _current(name), name, params, call_id)

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
    """What proctor stores of a tool's output: JSON values."""
    if output is None or isinstance(output, str | int | float | bool | list | dict):
        return output
    if isinstance(output, BaseModel):
        return output.model_dump(mode="json")
    if dataclasses.is_dataclass(output) and not isinstance(output, type):
        return json.loads(json.dumps(dataclasses.asdict(output), default=str))
    return str(output)


async def _requires_approval(
    governor: Governor, session: _Session, tool: str, params: dict[str, Any], call_id: str
) -> bool:
    """Whether the SDK should hold this call for approval: proctor holds it, or policy
    requires approval (then the request is recorded in proctor now)."""
    # The governor has no preview: decide with the session's run handle, under its lock.
    async with governor._lock(session.id):
        run = await governor._run(session.id, session.spec)
        if run.state is ProctorRunState.AWAITING_APPROVAL and not _waits(governor, run):
            await _let_go(governor, run)  # decided since this handle was taken: take it again
            run = await governor._run(session.id, session.spec)
        step = run.step_for(call_id)
        if step is not None or run.state is ProctorRunState.AWAITING_APPROVAL:
            # Proposed before: held while its request is pending. Or another call of the
            # session waits: this one is proposed after it.
            hold = _waits(governor, run, step.idx) if step is not None else True
            if run.state is ProctorRunState.AWAITING_APPROVAL:
                await _let_go(governor, run)  # a person decides next, in any process
            return hold
        try:
            decision = await run.preview(run.propose(tool, params))
        except InvalidAction:
            return False  # invoking records it and tells the model what to fix
        if decision.effect is not DecisionEffect.REQUIRE_APPROVAL:
            return False
    # Propose it now: proctor records the approval request (the preview's decision is
    # reused, so nothing runs here).
    verdict = await governor.call(session.id, tool, params, call_id=call_id, spec=session.spec)
    return verdict.status == "awaiting_approval"


def _waits(governor: Governor, run: Run, step: int | None = None) -> bool:
    """Whether a call of the run (or call ``step``) waits on a pending approval request."""
    return any(
        s.status is StepStatus.AWAITING_APPROVAL
        and s.approval_id is not None
        and (step is None or s.idx == step)
        and governor.approval(s.approval_id).status is ApprovalStatus.PENDING
        for s in run.steps
    )


async def _let_go(governor: Governor, run: Run) -> None:
    await run.release()
    governor._forget(run)


# -- approvals -----------------------------------------------------------------------------


@dataclass
class Applied:
    """What ``apply_approvals`` did to each interruption, by SDK tool call id."""

    approved: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    """Still waiting in proctor (or behind a call that waits): resuming interrupts again."""
    approval_ids: dict[str, str] = field(default_factory=dict)
    """call id -> proctor approval id, for each interruption proctor holds."""

    @property
    def decided(self) -> bool:
        return not self.pending


async def apply_approvals(
    state: RunState[Any, Any], governor: Governor, session: str, *, spec: RunSpec | None = None
) -> Applied:
    """Approve or reject each interruption of ``state`` as proctor decided its call.

    proctor's approval queue counts: approved there → ``state.approve``; denied or
    expired → ``state.reject`` with the reason the model reads; still pending → left as
    it is. A call that was held behind another one is proposed to proctor now: it is
    held again, with its own request, if policy requires approval, else approved in the
    SDK, which then invokes it through proctor. So is a call the SDK held because its
    arguments are not JSON: proctor refuses it as invalid.
    """
    current = _Session(session, spec)
    held = _approval_ids(governor, current)
    applied = Applied()
    unseen: list[ToolApprovalItem] = []
    for item in state.get_interruptions():
        call_id = item.call_id or ""
        approval_id = held.get(call_id)
        if approval_id is None:
            unseen.append(item)
            continue
        request = governor.approval(approval_id)
        if request.status is ApprovalStatus.APPROVED:
            state.approve(item)
            applied.approved.append(call_id)
        elif request.status is ApprovalStatus.PENDING:
            applied.pending.append(call_id)
        else:
            by = request.decided_by or "no one in time"
            why = f" ({request.decision_reason})" if request.decision_reason else ""
            refusal = f"Not allowed: {by} refused {request.tool}{why}; it did not run."
            state.reject(item, rejection_message=refusal)
            applied.rejected.append(call_id)
    for item in unseen:
        call_id, args = item.call_id or "", _arguments(item)
        name = item.tool_name
        # Arguments that are not JSON: invoking it through proctor refuses it as invalid.
        proposable = bool(name and call_id) and args is not None
        if proposable and await _requires_approval(
            governor, current, name or "", args or {}, call_id
        ):
            applied.pending.append(call_id)
            continue
        state.approve(item)
        applied.approved.append(call_id)
    found = _approval_ids(governor, current)
    applied.approval_ids = {
        c: found[c] for c in [*applied.approved, *applied.rejected, *applied.pending] if c in found
    }
    return applied


def _approval_ids(governor: Governor, session: _Session) -> dict[str, str]:
    """call id -> approval id, for the calls of the session's run that asked for one."""
    run_id = governor.runtime.live_run_of((session.spec or governor.spec).tenant, session.id)
    if run_id is None:
        return {}
    with governor.runtime.store.read() as conn:
        return {
            s.call_id: s.approval_id
            for s in steps_of(conn, run_id)
            if s.call_id is not None and s.approval_id is not None
        }


def _arguments(item: ToolApprovalItem) -> dict[str, Any] | None:
    try:
        parsed = json.loads(item.arguments or "")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


# -- runs ----------------------------------------------------------------------------------


async def run(
    agent: Agent[Any],
    input: str | list[TResponseInputItem] | RunState[Any, Any],
    *,
    governor: Governor,
    session: str | SdkSession,
    spec: RunSpec | None = None,
    end: bool = True,
    hooks: RunHooks[Any] | None = None,
    **runner: Any,
) -> RunResult:
    """``Runner.run`` with the session's calls governed and its model usage counted.

    ``session``: the conversation's id, or an SDK ``Session`` (its ``session_id`` names
    the proctor run, and the SDK keeps the history in it). ``spec``: the run's spec for
    this invocation (default: the governor's). When the SDK run ends with a final output
    and ``end`` is true, the proctor run is completed; interrupted, it stays open for
    ``resume``. Any other ``runner`` keyword goes to ``Runner.run``.
    """
    if isinstance(session, str):
        sid = session
    else:
        sid = session.session_id
        runner["session"] = session
    usage = _UsageHooks(governor, _Session(sid, spec), hooks)
    with proctor_session(sid, spec):
        try:
            result = await Runner.run(agent, input, hooks=usage, **runner)
        except RunStopped:
            raise  # proctor ended the run already
        except Exception as exc:
            reason = Reason.LOOP if isinstance(exc, MaxTurnsExceeded) else Reason.MODEL_ERROR
            await governor.end(sid, "failed_safe", reason=reason, detail=f"{type(exc).__name__}")
            raise
    if end and not result.interruptions:
        await governor.end(sid, "completed")
    return result


async def resume(
    agent: Agent[Any],
    state: RunState[Any, Any],
    *,
    governor: Governor,
    session: str | SdkSession,
    spec: RunSpec | None = None,
    **options: Any,
) -> RunResult:
    """Apply proctor's decisions to ``state`` (``apply_approvals``) and continue the run."""
    sid = session if isinstance(session, str) else session.session_id
    await apply_approvals(state, governor, sid, spec=spec)
    return await run(agent, state, governor=governor, session=session, spec=spec, **options)


class _UsageHooks(RunHooks[Any]):
    """Counts each model response's tokens against the session's run, then calls the
    user's hooks."""

    def __init__(self, governor: Governor, session: _Session, inner: RunHooks[Any] | None):
        self._governor, self._session, self._inner = governor, session, inner

    async def on_llm_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], response: ModelResponse
    ) -> None:
        used = response.usage
        await self._governor.usage(
            self._session.id,
            tokens=used.total_tokens,
            model=agent.model if isinstance(agent.model, str) else None,
            input_tokens=used.input_tokens,
            output_tokens=used.output_tokens,
            spec=self._session.spec,
        )
        if self._inner is not None:
            await self._inner.on_llm_end(context, agent, response)

    async def on_llm_start(
        self,
        context: RunContextWrapper[Any],
        agent: Agent[Any],
        system_prompt: str | None,
        input_items: list[TResponseInputItem],
    ) -> None:
        if self._inner is not None:
            await self._inner.on_llm_start(context, agent, system_prompt, input_items)

    async def on_agent_start(self, context: AgentHookContext[Any], agent: Any) -> None:
        if self._inner is not None:
            await self._inner.on_agent_start(context, agent)

    async def on_agent_end(self, context: AgentHookContext[Any], agent: Any, output: Any) -> None:
        if self._inner is not None:
            await self._inner.on_agent_end(context, agent, output)

    async def on_handoff(
        self, context: RunContextWrapper[Any], from_agent: Any, to_agent: Any
    ) -> None:
        if self._inner is not None:
            await self._inner.on_handoff(context, from_agent, to_agent)

    async def on_tool_start(self, context: RunContextWrapper[Any], agent: Any, tool: Any) -> None:
        if self._inner is not None:
            await self._inner.on_tool_start(context, agent, tool)

    async def on_tool_end(
        self, context: RunContextWrapper[Any], agent: Any, tool: Any, result: object
    ) -> None:
        if self._inner is not None:
            await self._inner.on_tool_end(context, agent, tool, result)
