"""The SDK run as a proctor run: its session, its model usage, its end."""

from __future__ import annotations

from typing import Any

from agents import Agent, RunContextWrapper, RunHooks, Runner, RunState
from agents.exceptions import MaxTurnsExceeded
from agents.items import ModelResponse, TResponseInputItem
from agents.memory import Session as SdkSession
from agents.result import RunResult
from agents.run_context import AgentHookContext

from proctor.integrations.governor import Governor
from proctor.integrations.openai_agents.approvals import apply_approvals
from proctor.integrations.openai_agents.tools import RunStopped, SessionRef, proctor_session
from proctor.runs.model import RunSpec
from proctor.states import Reason


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
    usage = _UsageHooks(governor, SessionRef(sid, spec), hooks)
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

    def __init__(self, governor: Governor, session: SessionRef, inner: RunHooks[Any] | None):
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
