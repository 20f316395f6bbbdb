"""What every framework integration shares: sessions as runs, calls keyed by the
framework's call ids, and verdicts the framework can hand to its model.

A framework names its conversation (a LangGraph thread, an OpenAI Agents SDK
session, a pydantic-ai conversation): that session is one proctor run while it
goes on, taken over from the store by whichever process continues it. Each tool
call the framework makes carries the framework's own id for it, stable across
the framework's resume: proposed again, a call answers from the journal, or runs
once its approval is granted in proctor, and never runs twice.

The framework's tools are declared like ``@tool`` functions (``Declarations``:
effect, trust, sinks... by name or pattern) and built from their JSON Schema, so
they are validated as strictly. The framework executes the call itself, inside
the gate (``execute``): the intent entry is durable before the side effect.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from proctor.approvals import ApprovalRequest
from proctor.errors import (
    ConfigError,
    InvalidAction,
    LeaseLost,
    ReplayMismatch,
    RunFailure,
    ToolDefinitionError,
)
from proctor.models.messages import TokenUsage
from proctor.policy import DecisionEffect
from proctor.runs.model import CallOutcome, CallStatus, RunSpec, StepRecord
from proctor.runs.run import Run
from proctor.runtime import Runtime
from proctor.states import ApprovalStatus, Reason, RunState, StepStatus
from proctor.tools import Tool, ToolContext, ToolDeclaration

Execute = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]
"""How the framework runs one call of a tool: the validated arguments, and the context
(its ``idempotency_key`` is the same on every retry of the step)."""

log = logging.getLogger("proctor")

_EXECUTING: ContextVar[tuple[str, Execute] | None] = ContextVar("proctor_execute", default=None)


class Declarations:
    """What each of a framework's tools declares, by exact name or ``fnmatch`` pattern.

    ``Declarations({"get_*": ToolDeclaration("read", trust="trusted"),
    "send_email": ToolDeclaration("irreversible", sinks=["to"])})``. A tool no entry
    names is refused when it is built, unless a ``default`` is given: nothing runs
    undeclared.
    """

    def __init__(
        self,
        declared: Mapping[str, ToolDeclaration] | None = None,
        *,
        default: ToolDeclaration | None = None,
    ) -> None:
        self._declared = dict(declared or {})
        self.default = default

    def of(self, name: str) -> ToolDeclaration:
        found = self._declared.get(name)
        if found is not None:
            return found
        for pattern, declaration in self._declared.items():
            if fnmatch.fnmatchcase(name, pattern):
                return declaration
        if self.default is not None:
            return self.default
        raise ToolDefinitionError(
            f"tool {name!r} has no declaration, so proctor cannot govern it: declare what "
            f"it does, e.g. Declarations({{{name!r}: ToolDeclaration('write')}}) (effects: "
            "read, write, destructive, irreversible), or give Declarations(default=...)"
        )


@dataclass(frozen=True)
class ApprovalTicket:
    """A call held for a person's approval, as a framework's interrupt carries it."""

    approval_id: str
    run_id: str
    step: int
    tool: str
    args: Mapping[str, Any]
    """As stored: redacted."""
    roles: tuple[str, ...]
    """Who may approve."""
    policy_ids: tuple[str, ...]
    """The policies that asked for approval."""
    reason: str
    expires_at: str
    requester: str

    @property
    def how(self) -> str:
        role = self.roles[0] if self.roles else "ROLE"
        return (
            f"proctor approvals approve {self.approval_id} --as NAME --role {role} "
            f"--reason WHY (or deny); or POST /api/v1/approvals/{self.approval_id}/approve"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "approval_id": self.approval_id,
            "run_id": self.run_id,
            "step": self.step,
            "tool": self.tool,
            "args": dict(self.args),
            "roles": list(self.roles),
            "policy_ids": list(self.policy_ids),
            "reason": self.reason,
            "expires_at": self.expires_at,
            "requester": self.requester,
            "how": self.how,
        }


VerdictStatus = Literal["executed", "denied", "awaiting_approval", "invalid", "failed", "stopped"]


@dataclass(frozen=True)
class Verdict:
    """What became of one framework tool call, in the words its model should read."""

    status: VerdictStatus
    message: str = ""
    result: Any = None
    approval: ApprovalTicket | None = None
    outcome: CallOutcome | None = None

    @property
    def executed(self) -> bool:
        return self.status == "executed"

    @property
    def replayed(self) -> bool:
        """The journal answered: nothing ran again."""
        return self.outcome is not None and self.outcome.replayed

    def for_model(self) -> str:
        """The text to hand back as the tool's output when it did not run."""
        return self.message


class Governor:
    """Governs one framework's tool calls with a runtime, for runs of ``spec``."""

    def __init__(
        self, runtime: Runtime, spec: RunSpec, declarations: Declarations | None = None
    ) -> None:
        self.runtime = runtime
        self.spec = spec
        self.declarations = declarations or Declarations()
        self._runs: dict[str, Run] = {}
        self._locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Lock]
        ] = weakref.WeakKeyDictionary()

    # -- tools ---------------------------------------------------------------------------

    def tool(
        self,
        name: str,
        description: str,
        input_schema: Mapping[str, Any],
        execute: Execute | None = None,
    ) -> Tool:
        """The framework's tool as a governed one, declared by ``declarations``, and added
        to the runtime. ``execute`` runs it outside a framework call (after a crash, to
        settle a read); a framework call passes its own to ``call``."""
        declaration = self.declarations.of(name)
        return self.add(
            declaration.schema_tool(name, description, input_schema, _via(name, execute))
        )

    def add(self, tool: Tool) -> Tool:
        """Add a tool to the runtime's registry; one of the same name and declaration is
        kept, one whose declaration changed (an MCP server's new schema) replaces it."""
        registry = self.runtime.tools
        if tool.name in registry:
            present = registry.get(tool.name)
            if present.declaration() == tool.declaration():
                return present
        return registry.put(tool)

    # -- calls ---------------------------------------------------------------------------

    async def call(
        self,
        session: str,
        tool: str,
        args: Mapping[str, Any] | str | bytes,
        *,
        call_id: str,
        execute: Execute | None = None,
        spec: RunSpec | None = None,
    ) -> Verdict:
        """Govern one call the framework's model made in ``session``; ``execute`` is how
        the framework runs it, inside the gate, if every stage lets it."""
        async with self._lock(session):
            token = _EXECUTING.set((tool, execute)) if execute is not None else None
            try:
                try:
                    return await self._call(await self._run(session, spec), tool, args, call_id)
                except LeaseLost:
                    # Another worker took the run over and gave it back: take it again.
                    self._runs.pop(session, None)
                    return await self._call(await self._run(session, spec), tool, args, call_id)
            finally:
                if token is not None:
                    _EXECUTING.reset(token)

    async def _call(
        self, run: Run, tool: str, args: Mapping[str, Any] | str | bytes, call_id: str
    ) -> Verdict:
        if run.state is RunState.AWAITING_APPROVAL and run.step_for(call_id) is None:
            held = self._ticket(run, _waiting(run))
            await self._let_go(run)
            return Verdict(
                "awaiting_approval",
                f"Not made yet: the run waits for approval {held.approval_id} of "
                f"{held.tool}; propose {tool} again once it is decided.",
                approval=held,
            )
        try:
            if isinstance(args, str | bytes):
                outcome = await run.call_json(tool, args, call_id=call_id)
            else:
                outcome = await run.call(tool, args, call_id=call_id)
        except InvalidAction as exc:
            return Verdict("invalid", f"{exc} Correct the arguments and call again.")
        except ReplayMismatch as exc:
            return Verdict("invalid", str(exc))
        except RunFailure as exc:
            self._forget(run)
            return Verdict("stopped", f"The run was stopped: {exc}")
        verdict = self._verdict(run, outcome)
        if outcome.status is CallStatus.AWAITING_APPROVAL or run.state.terminal:
            await self._let_go(run)
        return verdict

    async def hold(
        self,
        session: str,
        tool: str,
        args: Mapping[str, Any] | str | bytes,
        *,
        call_id: str,
        spec: RunSpec | None = None,
    ) -> ApprovalTicket | None:
        """Whether a framework that asks before it runs a tool (the OpenAI Agents SDK's
        ``needs_approval``) should hold this call for a person: the ticket of the pending
        request it waits on, or None to let it run (its call is governed then).

        A call the policy holds is proposed now, so its request is in proctor's queue; a
        call proposed before is held while its request is pending; a new call of a
        session that waits on another's request is held behind it. Runs nothing.
        """
        async with self._lock(session):
            run = await self._run(session, spec)
            step = run.step_for(call_id)
            if step is not None:
                pending = step.status is StepStatus.AWAITING_APPROVAL and self._pending(step)
                ticket = self._ticket(run, step) if pending else None
            elif run.state is RunState.AWAITING_APPROVAL:
                ticket = self._ticket(run, _waiting(run))
            else:
                try:
                    decision = await run.preview(run.propose(tool, args))
                except InvalidAction:
                    return None  # running it records it and tells the model what to fix
                if decision.effect is not DecisionEffect.REQUIRE_APPROVAL:
                    return None
                # Under the same lock the run learns nothing new: the call reuses the
                # preview's decision, and is held without running.
                verdict = await self._call(run, tool, args, call_id)
                return verdict.approval if verdict.status == "awaiting_approval" else None
            if run.state is RunState.AWAITING_APPROVAL:
                await self._let_go(run)
            return ticket

    def _pending(self, step: StepRecord) -> bool:
        request = self._request(step)
        return request is not None and request.status is ApprovalStatus.PENDING

    def _verdict(self, run: Run, outcome: CallOutcome) -> Verdict:
        tool = outcome.tool
        step = run.steps[outcome.step]
        if outcome.status is CallStatus.EXECUTED:
            return Verdict("executed", result=outcome.result, outcome=outcome)
        if outcome.status is CallStatus.AWAITING_APPROVAL:
            ticket = self._ticket(run, step)
            who = " or ".join(ticket.roles)
            return Verdict(
                "awaiting_approval",
                f"Waiting for approval: {tool} needs a person's approval ({who}, approval "
                f"{ticket.approval_id}); it has not run. It runs once approved.",
                approval=ticket,
                outcome=outcome,
            )
        if outcome.status is CallStatus.DENIED:
            return Verdict("denied", self._denial(step, outcome), outcome=outcome)
        detail = (outcome.error or {}).get("message", outcome.status.value)
        if outcome.status is CallStatus.OUTCOME_UNKNOWN:
            detail = (
                f"{tool} may or may not have taken effect ({detail}); it will not be retried "
                "and a person will check"
            )
            return Verdict("failed", detail, outcome=outcome)
        return Verdict("failed", f"{tool} failed: {detail}", outcome=outcome)

    def _denial(self, step: StepRecord, outcome: CallOutcome) -> str:
        tool = outcome.tool
        if step.status is StepStatus.DENIED:
            why = outcome.decision.reason if outcome.decision else "denied"
            return f"Not allowed: {tool} was denied by policy ({why}); it did not run."
        request = self._request(step)
        if step.status is StepStatus.APPROVAL_EXPIRED or request is None:
            return f"Not allowed: no one approved {tool} in time; it did not run."
        by = request.decided_by or "the approver"
        why = f" ({request.decision_reason})" if request.decision_reason else ""
        return f"Not allowed: {by} refused {tool}{why}; it did not run."

    def _ticket(self, run: Run, step: StepRecord) -> ApprovalTicket:
        request = self._request(step)
        assert request is not None, "a step awaiting approval has a request"
        decision = step.decision
        return ApprovalTicket(
            approval_id=request.id,
            run_id=run.id,
            step=step.idx,
            tool=step.tool,
            args=step.args,
            roles=request.roles,
            policy_ids=request.policy_ids,
            reason=decision.reason if decision else "",
            expires_at=request.expires_at.isoformat(timespec="seconds"),
            requester=request.requester,
        )

    def _request(self, step: StepRecord) -> ApprovalRequest | None:
        return None if step.approval_id is None else self.runtime.approvals.get(step.approval_id)

    # -- the run -------------------------------------------------------------------------

    def approval(self, approval_id: str) -> ApprovalRequest:
        """An approval request as proctor holds it: its status is the one that counts."""
        return self.runtime.approvals.get(approval_id)

    def run_id(self, session: str) -> str | None:
        """The run serving ``session`` now, if one is going."""
        held = self._runs.get(session)
        if held is not None and not held.state.terminal:
            return held.id
        return self.runtime.live_run_of(self.spec.tenant, session)

    async def usage(
        self,
        session: str,
        *,
        tokens: int = 0,
        usd: Decimal = Decimal(0),
        model: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        spec: RunSpec | None = None,
    ) -> None:
        """Count the framework's model usage against the session's run: its caps hold
        from the next call on. Give ``usd``, or the ``model`` and its token counts, which
        the bundle's prices turn into dollars (a model without a price counts tokens)."""
        if model is not None and usd == 0:
            usd = self._priced(model, input_tokens, output_tokens)
        tokens = tokens or input_tokens + output_tokens
        if tokens == 0 and usd == 0:
            return
        async with self._lock(session):
            run = await self._run(session, spec)
            await run.charge(tokens=tokens, usd=usd)

    def _priced(self, model: str, input_tokens: int, output_tokens: int) -> Decimal:
        counted = TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens)
        try:
            return self.runtime.prices.cost(model, counted)
        except ConfigError:
            log.warning("no price for model %r: its tokens are counted, not its cost", model)
            return Decimal(0)

    async def release(self, session: str) -> None:
        """The conversation left this process: let any process take its run at once,
        instead of after this one's lease."""
        async with self._lock(session):
            held = self._runs.get(session)
            if held is not None:
                if not held.state.terminal:
                    await held.release()
                self._forget(held)

    async def end(
        self,
        session: str,
        how: Literal["completed", "handed_off", "failed_safe"],
        *,
        reason: Reason | None = None,
        detail: str | None = None,
    ) -> str | None:
        """End the session's run as the framework's run ended; the run's id, or None if
        the session has no run going."""
        async with self._lock(session):
            if self.run_id(session) is None:
                return None
            run = await self._run(session, None)
            if run.state is RunState.AWAITING_APPROVAL and how == "completed":
                how, reason = "handed_off", reason or Reason.ESCALATED
                detail = detail or "the framework's run ended while a call awaited approval"
            if how == "completed":
                await run.complete(detail)
            elif how == "handed_off":
                await run.hand_off(reason or Reason.ESCALATED, detail)
            else:
                await run.fail_safe(reason or Reason.TOOL_ERROR, detail)
            self._forget(run)
            return run.id

    async def _run(self, session: str, spec: RunSpec | None) -> Run:
        held = self._runs.get(session)
        # A run that waited on a person may have been decided elsewhere since: take it
        # again from the store.
        if held is not None and held.state is RunState.RUNNING:
            return held
        chosen = (spec or self.spec).model_copy(update={"session": session})
        run = await self.runtime.session_run(chosen)
        self._runs[session] = run
        return run

    async def _let_go(self, run: Run) -> None:
        """A person decides next, in any process: let whichever continues take the run."""
        await run.release()
        self._forget(run)

    def _forget(self, run: Run) -> None:
        for session, held in list(self._runs.items()):
            if held is run:
                del self._runs[session]

    def _lock(self, session: str) -> asyncio.Lock:
        # One call of a session at a time: a run is one task's. Per event loop, since a
        # framework's synchronous API may run each call in a loop of its own; a loop's
        # locks go with it.
        locks = self._locks.setdefault(asyncio.get_running_loop(), {})
        lock = locks.get(session)
        if lock is None:
            lock = locks[session] = asyncio.Lock()
        return lock


def _waiting(run: Run) -> StepRecord:
    return next(s for s in reversed(run.steps) if s.status is StepStatus.AWAITING_APPROVAL)


def _via(name: str, default: Execute | None) -> Execute:
    """The tool's function: the framework call's own ``execute`` while one runs, else the
    default (a read settled after a crash)."""

    async def execute(args: dict[str, Any], ctx: ToolContext) -> Any:
        current = _EXECUTING.get()
        if current is not None and current[0] == name:
            return await current[1](args, ctx)
        if default is None:
            raise RuntimeError(
                f"{name} runs only within its framework's call; give Governor.tool an "
                "execute to run it otherwise"
            )
        return await default(args, ctx)

    return execute
