"""proctor for pydantic-ai: every tool call an agent makes passes proctor's gate.

``Proctor`` is a pydantic-ai capability. It wraps the agent's assembled toolset (its
function tools, MCP servers, any toolset; not its output tools) in a
``GovernedToolset``, counts each model response's usage against the run, and ends the
run when the agent run ends. ``GovernedToolset`` can also wrap one toolset alone.

A conversation (``RunContext.conversation_id``, or the ``session`` function's answer) is
one proctor run; a tool call's ``tool_call_id`` keys it, so the call never runs twice,
whichever process resumes the conversation. A call that needs a person's approval ends
the agent run with ``DeferredToolRequests``; the person decides in proctor;
``deferred_results`` builds the ``DeferredToolResults`` to resume with from proctor's
decisions, and proctor, not those results, decides whether the call runs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic_ai import (
    AbstractToolset,
    AgentRunResult,
    ApprovalRequired,
    DeferredToolRequests,
    DeferredToolResults,
    ModelRetry,
    RunContext,
    ToolDenied,
    ToolFailed,
    UnexpectedModelBehavior,
    UsageLimitExceeded,
)
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.exceptions import ModelAPIError
from pydantic_ai.messages import ModelResponse, ToolCallPart
from pydantic_ai.models import ModelRequestContext
from pydantic_ai.toolsets import ToolsetTool, WrapperToolset
from pydantic_core import to_jsonable_python

from proctor.errors import ConfigError
from proctor.integrations.governor import Governor, Verdict
from proctor.runs.model import RunSpec
from proctor.states import ApprovalStatus, Reason
from proctor.tools import ToolContext

__all__ = ["ApprovalPending", "GovernedToolset", "Proctor", "RunStopped", "deferred_results"]

SessionOf = Callable[[RunContext[Any]], str]
"""The proctor session of an agent run: by default its ``conversation_id``."""
SpecOf = RunSpec | Callable[[RunContext[Any]], RunSpec] | None
"""The run spec a session's run starts with: the governor's when ``None``; a function of
the run context (its ``deps``) to choose one per agent run."""

METADATA_KEY = "proctor"
"""Where a deferred call's metadata holds proctor's approval ticket."""


class RunStopped(RuntimeError):
    """proctor stopped the session's run (a budget, too many invalid calls): it ended
    ``failed_safe``, and the agent run ends with this error."""


class ApprovalPending(RuntimeError):
    """``deferred_results`` was asked for decisions proctor does not have yet."""

    def __init__(self, approval_ids: list[str]) -> None:
        self.approval_ids = approval_ids
        super().__init__(
            f"approval{'s' if len(approval_ids) > 1 else ''} {', '.join(approval_ids)} still "
            "pending in proctor: decide first (proctor approvals approve|deny ID), then resume"
        )


def _conversation(ctx: RunContext[Any]) -> str:
    if not ctx.conversation_id:
        raise ValueError("the agent run has no conversation_id; pass session= to Proctor")
    return ctx.conversation_id


@dataclass
class GovernedToolset(WrapperToolset[Any]):
    """A toolset whose every call proctor governs: validated strictly on the model's own
    arguments, budgeted, decided by policy, journaled before it runs, run at most once
    per ``tool_call_id``.

    The wrapped toolset still executes the call (``call_tool``), inside proctor's gate.
    What the model reads when a call did not run: a denial or a failure as the tool's
    failed result (``ToolFailed``), invalid arguments as a retry naming the field
    (``ModelRetry``). A call held for approval raises ``ApprovalRequired``, so the agent's
    ``output_type`` must include ``DeferredToolRequests``.
    """

    governor: Governor = field(kw_only=True)
    session: SessionOf = field(default=_conversation, kw_only=True)
    spec: SpecOf = field(default=None, kw_only=True)
    _known: dict[str, str] = field(default_factory=dict, kw_only=True, repr=False)

    async def get_tools(self, ctx: RunContext[Any]) -> dict[str, ToolsetTool[Any]]:
        tools = await self.wrapped.get_tools(ctx)
        for name, tool in tools.items():
            definition = tool.tool_def
            schema = definition.parameters_json_schema
            known = json.dumps([definition.description, schema], sort_keys=True, default=str)
            if self._known.get(name) != known:
                # Tools appear at run time (an MCP server lists them): register each as it
                # comes; an undeclared one stops the run here, before the model sees it.
                self.governor.tool(name, definition.description or name, schema)
                self._known[name] = known
        return tools

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> Any:
        call_id = ctx.tool_call_id
        if call_id is None:
            raise ValueError(f"{name} called without a tool_call_id: proctor keys calls on it")
        ran: list[Any] = []
        refused: list[ModelRetry | ToolFailed] = []

        async def execute(args: dict[str, Any], _: ToolContext) -> Any:
            # What runs is what proctor validated and policy decided on (for an approved
            # call: what was approved), parsed as the tool parses its model's arguments.
            validated = tool.args_validator.validate_json(
                json.dumps(args), context=ctx.validation_context
            )
            try:
                result = await self.wrapped.call_tool(name, validated, ctx, tool)
            except (ModelRetry, ToolFailed) as exc:
                refused.append(exc)  # the step failed; the model gets the tool's own words
                raise
            ran.append(result)
            return to_jsonable_python(result, serialize_unknown=True, bytes_mode="base64")

        verdict = await self.governor.call(
            self.session(ctx),
            name,
            _model_args(ctx, call_id, tool_args),
            call_id=call_id,
            execute=execute,
            spec=_spec(self.spec, ctx),
        )
        if verdict.status == "failed" and refused:
            raise refused[0]
        return _answer(verdict, ran)


def _answer(verdict: Verdict, ran: list[Any]) -> Any:
    if verdict.status == "executed":
        # The tool's own value when it ran now; the journal's (plain JSON) on a replay.
        return ran[0] if ran else verdict.result
    if verdict.status == "awaiting_approval":
        assert verdict.approval is not None
        raise ApprovalRequired(
            metadata={
                METADATA_KEY: verdict.approval.to_json(),
                # False: held behind another call's approval, not proposed yet.
                "proposed": verdict.outcome is not None,
                "message": verdict.for_model(),
            }
        )
    if verdict.status == "invalid":
        raise ModelRetry(verdict.for_model())
    if verdict.status == "stopped":
        raise RunStopped(verdict.for_model())
    raise ToolFailed(verdict.for_model())  # denied, or failed: the model reads why


def _model_args(ctx: RunContext[Any], call_id: str, validated: dict[str, Any]) -> Any:
    """The arguments as the model wrote them, from the call in the history: proctor
    validates those strictly (pydantic-ai's validation before ``call_tool`` coerces)."""
    for message in reversed(ctx.messages):
        if not isinstance(message, ModelResponse):
            continue
        for part in message.parts:
            if isinstance(part, ToolCallPart) and part.tool_call_id == call_id:
                return part.args if part.args is not None else {}
    return to_jsonable_python(validated)


def _spec(spec: SpecOf, ctx: RunContext[Any]) -> RunSpec | None:
    return spec(ctx) if callable(spec) else spec


@dataclass
class Proctor(AbstractCapability[Any]):
    """Governs an agent with proctor: ``Agent(..., capabilities=[Proctor(governor)],
    output_type=[str, DeferredToolRequests])``.

    - every tool of the agent's toolsets (``GovernedToolset``; output tools excepted);
    - each model response's tokens and price (the bundle's ``prices:``, else
      pydantic-ai's table) are charged to the run, so its caps cover the model too;
    - the agent run's end ends the proctor run: ``completed``; still going when the run
      ended with ``DeferredToolRequests`` (resume it); ``failed_safe`` when it raised.
    """

    governor: Governor
    session: SessionOf = field(default=_conversation, kw_only=True)
    spec: SpecOf = field(default=None, kw_only=True)
    _known: dict[str, str] = field(default_factory=dict, kw_only=True, repr=False)

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None  # holds a runtime: not spec-serializable

    def get_wrapper_toolset(self, toolset: AbstractToolset[Any]) -> AbstractToolset[Any]:
        return GovernedToolset(
            toolset,
            governor=self.governor,
            session=self.session,
            spec=self.spec,
            _known=self._known,
        )

    async def after_model_request(
        self,
        ctx: RunContext[Any],
        *,
        request_context: ModelRequestContext,
        response: ModelResponse,
    ) -> ModelResponse:
        await _charge(self.governor, self.session(ctx), response, _spec(self.spec, ctx))
        return response

    async def after_run(
        self, ctx: RunContext[Any], *, result: AgentRunResult[Any]
    ) -> AgentRunResult[Any]:
        if not isinstance(result.output, DeferredToolRequests):
            await self.governor.end(self.session(ctx), "completed")
        return result

    async def on_run_error(
        self, ctx: RunContext[Any], *, error: BaseException
    ) -> AgentRunResult[Any]:
        if not isinstance(error, asyncio.CancelledError | RunStopped):
            # A cancelled run is like a crash: the run stays to be resumed.
            reason = _reason(error)
            await self.governor.end(
                self.session(ctx), "failed_safe", reason=reason, detail=_detail(error)
            )
        raise error


def _reason(error: BaseException) -> Reason:
    if isinstance(error, UsageLimitExceeded):
        return Reason.BUDGET_EXCEEDED
    if isinstance(error, UnexpectedModelBehavior) and "max retries" in error.message:
        return Reason.INVALID_ACTIONS
    if isinstance(error, ModelAPIError | UnexpectedModelBehavior):
        return Reason.MODEL_ERROR
    return Reason.TOOL_ERROR


def _detail(error: BaseException) -> str:
    return f"the agent run failed: {type(error).__name__}: {error}"[:500]


async def _charge(
    governor: Governor, session: str, response: ModelResponse, spec: RunSpec | None
) -> None:
    """Count one model response: priced from the bundle's ``prices:`` when it names the
    model (``provider:model``), else from pydantic-ai's price table; a model neither
    prices (a test model) counts its tokens only."""
    used = response.usage
    tokens = used.input_tokens + used.output_tokens
    name = f"{response.provider_name}:{response.model_name}" if response.provider_name else None
    if name is not None:
        try:
            governor.runtime.prices.price(name)
        except ConfigError:
            pass
        else:
            await governor.usage(
                session,
                model=name,
                input_tokens=used.input_tokens,
                output_tokens=used.output_tokens,
                spec=spec,
            )
            return
    try:
        usd = Decimal(str(response.cost().total_price))
    except (LookupError, ValueError, AssertionError):
        usd = Decimal(0)
    await governor.usage(session, tokens=tokens, usd=usd, spec=spec)


def deferred_results(governor: Governor, requests: DeferredToolRequests) -> DeferredToolResults:
    """``DeferredToolResults`` from proctor's decisions on the calls ``requests`` holds:
    approved -> ``True``; refused or expired -> ``ToolDenied`` with why, for the model.

    Resume with ``agent.run(message_history=..., deferred_tool_results=...)``. proctor
    decides again when each call is proposed on resume: a call it has not approved does
    not run, whatever the results say. A call held behind another's approval is proposed
    then for the first time. Raises ``ApprovalPending`` while a decision is missing.
    """
    approvals: dict[str, bool | ToolDenied] = {}
    pending: list[str] = []
    for call in requests.approvals:
        meta = requests.metadata.get(call.tool_call_id, {})
        ticket = meta.get(METADATA_KEY)
        if not isinstance(ticket, dict):
            continue  # not proctor's: someone else answers it
        request = governor.approval(str(ticket["approval_id"]))
        if request.status is ApprovalStatus.PENDING:
            pending.append(request.id)
        elif request.status is ApprovalStatus.APPROVED or not meta.get("proposed", True):
            approvals[call.tool_call_id] = True
        else:
            why = f" ({request.decision_reason})" if request.decision_reason else ""
            approvals[call.tool_call_id] = ToolDenied(
                f"Not allowed: {request.decided_by} refused {request.tool}{why}; it did not run."
                if request.decided_by
                else f"Not allowed: no one approved {request.tool} in time; it did not run."
            )
    if pending:
        raise ApprovalPending(sorted(set(pending)))
    return DeferredToolResults(approvals=dict(approvals))
