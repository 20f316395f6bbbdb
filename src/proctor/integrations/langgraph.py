"""LangGraph: every tool call of a ``ToolNode`` or a ``create_agent`` agent goes through proctor.

``LangGraphGovernor`` wraps a ``Governor``. Its ``awrap_tool_call`` / ``wrap_tool_call``
are the ``ToolNode`` tool-call wrapper hook, and ``middleware()`` gives the same as an
``AgentMiddleware`` for ``langchain.agents.create_agent``. A LangGraph thread
(``config["configurable"]["thread_id"]``) is one proctor run (its session); a tool call
is keyed by the model's tool call id. The real LangChain tool runs inside proctor's gate
(the handler LangGraph passes the wrapper), after the intent entry is durable.

A call that needs approval becomes ``interrupt(ticket)``; resumed with
``Command(resume=...)``, the node runs again and proctor answers by the call id: the call
runs once if proctor recorded an approval, is refused if proctor recorded a denial, and
interrupts again while the request is pending, whatever the resume value says.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

from langchain.agents.middleware import AgentMiddleware, AgentState
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.config import get_config
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.runtime import Runtime as GraphRuntime
from langgraph.types import Command, interrupt
from pydantic import BaseModel

from proctor.approvals import REQUESTER, Approver
from proctor.errors import ConfigError, ProctorError
from proctor.integrations.governor import Governor, Verdict
from proctor.runs.model import RunSpec
from proctor.runs.views import load_run
from proctor.states import Reason, RunState
from proctor.tools import ToolContext

__all__ = [
    "REQUESTER_KEY",
    "SPEC_KEY",
    "LangGraphGovernor",
    "RunStopped",
    "current_call",
]

SPEC_KEY = "proctor_spec"
"""``config["configurable"][SPEC_KEY]``: a ``RunSpec`` for the thread's run, in place of
the governor's (read when the thread's run starts)."""
REQUESTER_KEY = "proctor_requester"
"""``config["configurable"][REQUESTER_KEY]``: who asked, in the governor's spec."""

Outcome = ToolMessage | Command[Any]
Handler = Callable[[ToolCallRequest], Awaitable[Outcome]]
SyncHandler = Callable[[ToolCallRequest], Outcome]

_CALL: ContextVar[ToolContext | None] = ContextVar("proctor_langgraph_call", default=None)


def current_call() -> ToolContext | None:
    """Inside a governed LangChain tool: the call's proctor context. Its
    ``idempotency_key`` is the same on every retry and resume of the call; pass it to
    the system the tool writes to."""
    return _CALL.get()


class RunStopped(ProctorError):
    """proctor stopped the thread's run (too many invalid calls, a budget reached): the
    graph stops here rather than going on without governance."""


def tool_schema(tool: BaseTool) -> dict[str, Any]:
    """The JSON Schema of the arguments the model gives ``tool`` (injected ones left out)."""
    schema = tool.tool_call_schema
    if isinstance(schema, dict):
        return schema
    if issubclass(schema, BaseModel):
        return schema.model_json_schema()
    return schema.schema()  # a pydantic.v1 model


class LangGraphGovernor:
    """Governs a LangGraph graph's tool calls with ``governor``.

    ``tools`` are declared up front (each needs an entry in the governor's
    ``Declarations``); a tool first seen in a call is declared then.
    """

    def __init__(self, governor: Governor, tools: Sequence[BaseTool] = ()) -> None:
        self.governor = governor
        self._declared: set[str] = set()
        self._sync_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        for t in tools:
            self.declare(t)

    def declare(self, tool: BaseTool) -> None:
        """Make ``tool`` a proctor tool, built from its arguments' JSON Schema."""
        if tool.name not in self._declared:
            self.governor.tool(tool.name, tool.description, tool_schema(tool))
            self._declared.add(tool.name)

    def tool_node(self, tools: Sequence[BaseTool], **kwargs: Any) -> ToolNode:
        """A ``ToolNode`` whose every call goes through proctor."""
        for t in tools:
            self.declare(t)
        return ToolNode(
            tools,
            wrap_tool_call=self.wrap_tool_call,
            awrap_tool_call=self.awrap_tool_call,
            **kwargs,
        )

    def middleware(self) -> ProctorMiddleware:
        """The same, for ``create_agent(..., middleware=[...])``; it also reports model
        usage and ends the run when the agent ends."""
        return ProctorMiddleware(self)

    def usage_callback(self) -> UsageCallback:
        """A callback handler (``config["callbacks"]``) that reports every chat model's
        token usage to the thread's run, for graphs built without ``create_agent``."""
        return UsageCallback(self)

    # -- the wrapper hook ----------------------------------------------------------------

    async def awrap_tool_call(self, request: ToolCallRequest, handler: Handler) -> Outcome:
        """``ToolNode(awrap_tool_call=...)``: the call runs only if proctor lets it."""
        config = _config_of(request)
        session, spec = self.session_of(config), self.spec_of(config)
        if request.tool is not None:
            self.declare(request.tool)
        made: list[Outcome] = []

        async def execute(args: dict[str, Any], ctx: ToolContext) -> Any:
            token = _CALL.set(ctx)
            try:
                out = await handler(_with_args(request, args))
            finally:
                _CALL.reset(token)
            return _recorded(made, out)

        call = request.tool_call
        while True:
            verdict = await self.governor.call(
                session,
                call["name"],
                call["args"],
                call_id=_id(request),
                execute=execute,
                spec=spec,
            )
            if verdict.status != "awaiting_approval":
                return self._answer(request, verdict, made)
            self._wait(request, verdict)

    def wrap_tool_call(self, request: ToolCallRequest, handler: SyncHandler) -> Outcome:
        """``ToolNode(wrap_tool_call=...)``, for ``graph.invoke``: the same, one call of
        a thread at a time (in the node's worker thread, on an event loop of its own)."""
        config = _config_of(request)
        session, spec = self.session_of(config), self.spec_of(config)
        if request.tool is not None:
            self.declare(request.tool)
        made: list[Outcome] = []

        async def execute(args: dict[str, Any], ctx: ToolContext) -> Any:
            token = _CALL.set(ctx)
            try:
                out = handler(_with_args(request, args))
            finally:
                _CALL.reset(token)
            return _recorded(made, out)

        call = request.tool_call
        while True:
            with self._sync_session(session):
                verdict = _run_sync(
                    self.governor.call(
                        session,
                        call["name"],
                        call["args"],
                        call_id=_id(request),
                        execute=execute,
                        spec=spec,
                    )
                )
            if verdict.status != "awaiting_approval":
                return self._answer(request, verdict, made)
            self._wait(request, verdict)

    def _wait(self, request: ToolCallRequest, verdict: Verdict) -> None:
        """Interrupt the graph with the ticket; a resume value only wakes the call up:
        it is proposed again, and proctor's record of the decision answers."""
        assert verdict.approval is not None
        interrupt(
            {
                **verdict.approval.to_json(),
                "tool_call_id": _id(request),
                "message": verdict.message,
            }
        )

    def _answer(self, request: ToolCallRequest, verdict: Verdict, made: list[Outcome]) -> Outcome:
        call = request.tool_call
        if made:  # it ran here: what the tool returned, as LangGraph made it
            return made[-1]
        if verdict.executed:  # it ran before: the journal answers
            return ToolMessage(
                content=_content(verdict.result), name=call["name"], tool_call_id=_id(request)
            )
        if verdict.status == "stopped":
            raise RunStopped(verdict.message)
        return ToolMessage(
            content=verdict.for_model(),
            name=call["name"],
            tool_call_id=_id(request),
            status="error",
        )

    # -- the thread's run ----------------------------------------------------------------

    def session_of(self, config: RunnableConfig) -> str:
        thread = (config.get("configurable") or {}).get("thread_id")
        if not thread:
            raise ConfigError(
                "a governed graph runs in a thread: compile it with a checkpointer and "
                "pass config={'configurable': {'thread_id': ...}}"
            )
        return str(thread)

    def spec_of(self, config: RunnableConfig) -> RunSpec | None:
        configurable = config.get("configurable") or {}
        spec = configurable.get(SPEC_KEY)
        requester = configurable.get(REQUESTER_KEY)
        if spec is not None and not isinstance(spec, RunSpec):
            spec = RunSpec.model_validate(spec)
        if requester:
            spec = (spec or self.governor.spec).model_copy(update={"requester": str(requester)})
        return spec

    def _state(self, session: str) -> RunState | None:
        run_id = self.governor.run_id(session)
        if run_id is None:
            return None
        with self.governor.runtime.store.read() as conn:
            return load_run(conn, run_id).state

    async def finish(self, config: RunnableConfig, result: Any = None) -> str | None:
        """Call when the graph's invocation returns: a graph that ended completes the
        thread's run; one interrupted for an approval (``result`` has ``__interrupt__``,
        or the run waits) leaves it waiting. The run's id, or ``None`` if it goes on."""
        session = self.session_of(config)
        if _interrupted(result) or self._state(session) is RunState.AWAITING_APPROVAL:
            return None
        return await self.governor.end(session, "completed")

    async def stop(self, config: RunnableConfig, reason: str) -> str | None:
        """The requester stops at a refused or pending approval instead of resuming: the
        pending request is refused in the requester's name, and the run is handed off."""
        session = self.session_of(config)
        run_id = self.governor.run_id(session)
        if run_id is None:
            return None
        runtime = self.governor.runtime
        with runtime.store.read() as conn:
            tenant = load_run(conn, run_id).tenant
        for request in runtime.approvals.list(tenant=tenant):
            if request.run_id == run_id:
                runtime.approvals.deny(request.id, Approver(request.requester, REQUESTER), reason)
        return await self.governor.end(
            session, "handed_off", reason=Reason.POLICY_DENIED, detail=reason
        )

    async def usage(self, config: RunnableConfig, message: BaseMessage) -> None:
        """Count one model answer's usage (``AIMessage.usage_metadata``) against the run;
        priced from the bundle's prices when the answer names its model."""
        if not isinstance(message, AIMessage) or not message.usage_metadata:
            return
        meta, info = message.usage_metadata, message.response_metadata or {}
        name, provider = info.get("model_name") or info.get("model"), info.get("model_provider")
        await self.governor.usage(
            self.session_of(config),
            tokens=int(meta.get("total_tokens", 0)),
            model=(f"{provider}:{name}" if provider else str(name)) if name else None,
            input_tokens=int(meta.get("input_tokens", 0)),
            output_tokens=int(meta.get("output_tokens", 0)),
            spec=self.spec_of(config),
        )

    @contextmanager
    def _sync_session(self, session: str) -> Iterator[None]:
        with self._guard:
            lock = self._sync_locks.setdefault(session, threading.Lock())
        with lock:
            yield


class ProctorMiddleware(AgentMiddleware[AgentState[Any], Any]):
    """``create_agent(..., middleware=[governed.middleware()])``: tool calls through
    proctor, model usage counted, and the run completed when the agent ends."""

    def __init__(self, governed: LangGraphGovernor) -> None:
        super().__init__()
        self.governed = governed

    @property
    def name(self) -> str:
        return "proctor"

    async def awrap_tool_call(self, request: ToolCallRequest, handler: Handler) -> Outcome:
        return await self.governed.awrap_tool_call(request, handler)

    def wrap_tool_call(self, request: ToolCallRequest, handler: SyncHandler) -> Outcome:
        return self.governed.wrap_tool_call(request, handler)

    async def aafter_model(
        self, state: AgentState[Any], runtime: GraphRuntime[Any]
    ) -> dict[str, Any] | None:
        await self.governed.usage(get_config(), state["messages"][-1])
        return None

    def after_model(
        self, state: AgentState[Any], runtime: GraphRuntime[Any]
    ) -> dict[str, Any] | None:
        config = get_config()
        session = self.governed.session_of(config)
        with self.governed._sync_session(session):
            _run_sync(self.governed.usage(config, state["messages"][-1]))
        return None

    async def aafter_agent(
        self, state: AgentState[Any], runtime: GraphRuntime[Any]
    ) -> dict[str, Any] | None:
        await self.governed.finish(get_config())
        return None

    def after_agent(
        self, state: AgentState[Any], runtime: GraphRuntime[Any]
    ) -> dict[str, Any] | None:
        config = get_config()
        with self.governed._sync_session(self.governed.session_of(config)):
            _run_sync(self.governed.finish(config))
        return None


class UsageCallback(AsyncCallbackHandler):
    """Reports chat models' usage to the run of the thread they ran in."""

    def __init__(self, governed: LangGraphGovernor) -> None:
        self.governed = governed
        self._threads: dict[Any, str] = {}

    async def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: Any,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        thread = (metadata or {}).get("thread_id")
        if thread:
            self._threads[run_id] = str(thread)

    async def on_llm_end(self, response: LLMResult, *, run_id: Any, **kwargs: Any) -> None:
        thread = self._threads.pop(run_id, None)
        if thread is None:
            return
        config: RunnableConfig = {"configurable": {"thread_id": thread}}
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                if isinstance(message, BaseMessage):
                    await self.governed.usage(config, message)


# -- helpers ---------------------------------------------------------------------------


def _config_of(request: ToolCallRequest) -> RunnableConfig:
    runtime = getattr(request, "runtime", None)
    config = getattr(runtime, "config", None)
    return cast(RunnableConfig, config) if config else get_config()


def _id(request: ToolCallRequest) -> str:
    call_id = request.tool_call.get("id")
    if not call_id:
        raise ConfigError(f"the model's call of {request.tool_call['name']} has no tool call id")
    return str(call_id)


def _with_args(request: ToolCallRequest, args: dict[str, Any]) -> ToolCallRequest:
    """The request with the arguments proctor validated (schema defaults filled in)."""
    return request.override(tool_call={**request.tool_call, "args": args})


class _ToolReportedError(Exception):
    """The tool answered with an error message: the step is recorded as failed."""


def _recorded(made: list[Outcome], out: Outcome) -> Any:
    """Keep what LangGraph made of the call; give proctor its JSON for the journal."""
    made.append(out)
    if isinstance(out, ToolMessage):
        if out.status == "error":
            raise _ToolReportedError(str(out.content))
        return out.content
    update = out.update
    messages = update.get("messages", []) if isinstance(update, Mapping) else []
    return {"command": [m.content for m in messages if isinstance(m, ToolMessage)]}


def _content(result: Any) -> str | list[str | dict[Any, Any]]:
    if isinstance(result, str):
        return result
    if isinstance(result, list) and all(isinstance(b, str | dict) for b in result):
        return cast("list[str | dict[Any, Any]]", result)
    import json

    return json.dumps(result, default=str)


def _interrupted(result: Any) -> bool:
    if isinstance(result, Mapping):
        return bool(result.get("__interrupt__"))
    return bool(getattr(result, "interrupts", ()))


def _run_sync(coro: Awaitable[Verdict] | Awaitable[None] | Awaitable[str | None]) -> Any:
    """Run a governor coroutine from LangGraph's synchronous API, on a loop of this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(cast("Any", coro))
    cast("Any", coro).close()
    raise ConfigError(
        "a governed graph was invoked synchronously inside a running event loop: use "
        "ainvoke / astream there"
    )
