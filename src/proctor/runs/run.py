"""A live run and the governed call: validate → budget → decide → record → execute → record.

Every side effect goes through ``Run.call``. The intent entry is committed
durably before the tool runs; the outcome is recorded after. A run resumed in
another process replays its journal: calls already made return their recorded
outcome instead of running again, and a step whose outcome was lost in a
crash is reconciled with the tool's system of record, never blindly retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel

from proctor.audit.events import (
    ActionApprovalRequested,
    ActionDenied,
    ActionIntent,
    ActionInvalid,
    ActionOutcome,
    ActionReconciled,
    RunModeChanged,
    RunRouted,
    RunStateChanged,
)
from proctor.budgets import daily_scopes
from proctor.errors import (
    BudgetExceeded,
    InvalidAction,
    ReplayMismatch,
    RunStateError,
    RunTerminated,
    TooManyInvalidActions,
)
from proctor.ids import idempotency_key, new_id
from proctor.jsonvalue import digest
from proctor.models import Model, ModelRequest, ModelResponse
from proctor.policy import Decision, PolicyRequest, Principal
from proctor.policy import Effect as PolicyEffect
from proctor.redaction import redact_fields
from proctor.runs import journal
from proctor.runs.facts import RunFacts
from proctor.runs.model import CallOutcome, CallStatus, RunRecord, StepRecord, Usage
from proctor.runs.provenance import UNTRUSTED, Provenance
from proctor.states import ApprovalStatus, Mode, Reason, RunState, StepStatus
from proctor.store.tables import approvals, runs, steps
from proctor.tools import Effect, Tool, ToolContext, ToolStillRunning, TransientToolError, Trust

if TYPE_CHECKING:
    from proctor.runtime import Runtime

_STATUS_OF_STEP = {
    StepStatus.SUCCEEDED: CallStatus.EXECUTED,
    StepStatus.DENIED: CallStatus.DENIED,
    StepStatus.APPROVAL_DENIED: CallStatus.DENIED,
    StepStatus.APPROVAL_EXPIRED: CallStatus.DENIED,
    StepStatus.FAILED: CallStatus.FAILED,
    StepStatus.OUTCOME_UNKNOWN: CallStatus.OUTCOME_UNKNOWN,
    StepStatus.AWAITING_APPROVAL: CallStatus.AWAITING_APPROVAL,
}


log = logging.getLogger("proctor")

_EXECUTED = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED})


def _error_info(exc: BaseException, kind: str) -> dict[str, Any]:
    message = str(exc) or type(exc).__name__
    return {"kind": kind, "type": type(exc).__name__, "message": message[:500]}


class Run:
    """The handle through which an agent's calls are governed. One task at a time."""

    def __init__(
        self, runtime: Runtime, record: RunRecord, *, lease_until: datetime | None
    ) -> None:
        self._rt = runtime
        self._record = record
        self._cursor = 0
        self._lease_until = lease_until
        self._version = str(runtime.policy.version)
        self._principal = Principal(record.spec.agent, record.spec.role, record.spec.tenant)
        self._facts = RunFacts.of(runtime.tools, record.spec)
        self._provenance = Provenance()
        trusted_results: list[Any] = []  # they ground arguments once the request is known
        for step in record.steps:
            if step.status is StepStatus.SUCCEEDED and step.tool in runtime.tools:
                t = runtime.tools.get(step.tool)
                self._facts.count(t, step.args)
                if t.trust is Trust.UNTRUSTED:
                    self._provenance.distrust(self._whole_result(step))
                else:
                    trusted_results.append(self._whole_result(step))
        self._trusted_results = trusted_results
        # Calls made count against the budget from the journal, so they survive a crash.
        record.usage.tool_calls = sum(s.status in _EXECUTED for s in record.steps)

    # -- what the run is ---------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def state(self) -> RunState:
        return self._record.state

    @property
    def reason(self) -> str | None:
        return self._record.reason

    @property
    def usage(self) -> Usage:
        return self._record.usage

    @property
    def steps(self) -> tuple[StepRecord, ...]:
        return tuple(self._record.steps)

    @property
    def tenant(self) -> str:
        return self._record.spec.tenant

    @property
    def bundle_version(self) -> str:
        """The version of the policy bundle this worker decides with (the run may have
        started under another; the runs table keeps that one)."""
        return self._version

    # -- the governed call -------------------------------------------------------------

    async def call(
        self, tool: str, args: Mapping[str, Any], *, reason: str | None = None
    ) -> CallOutcome:
        """Propose a call with Python values; it runs only if every stage lets it."""
        self._ensure_not_terminal()
        try:
            t = self._rt.tools.get(tool)
            parsed = t.validate(args)
        except InvalidAction as exc:
            await self._invalid(exc)
            raise
        return await self._governed(t, parsed, reason)

    async def call_json(
        self, tool: str, args_json: str | bytes, *, reason: str | None = None
    ) -> CallOutcome:
        """Propose a call whose arguments are a JSON object, as a model writes them."""
        self._ensure_not_terminal()
        try:
            t = self._rt.tools.get(tool)
            parsed = t.validate_json(args_json)
        except InvalidAction as exc:
            await self._invalid(exc)
            raise
        return await self._governed(t, parsed, reason)

    async def _governed(self, t: Tool, parsed: BaseModel, reason: str | None) -> CallOutcome:
        if reason is not None:  # the model's own words: stored, so redacted first
            reason = self._rt.redaction.text(self.tenant, reason)
        idx = self._cursor
        args = parsed.model_dump(mode="json")
        args_hash = self._rt.sealer.mac([t.name, args])
        if idx < len(self._record.steps):
            return await self._replay(self._record.steps[idx], t, parsed, args_hash)
        if self._record.state is RunState.AWAITING_APPROVAL:
            raise RunStateError(
                f"run {self.id} is awaiting approval of step {idx - 1}; no new call runs "
                "until it is decided and the run is resumed"
            )
        clock = self._rt.clock
        started = clock.monotonic()
        await self._check_budget()
        budget_done = clock.monotonic()
        provenance = self._provenance.of(args)
        decision = await self._decide(t, parsed, provenance)
        decided = clock.monotonic()
        step = StepRecord(
            idx=idx,
            tool=t.name,
            args=self._redact(t, args),
            args_hash=args_hash,
            status=StepStatus.EXECUTING,
            decision=decision.to_json(),
            idempotency_key=idempotency_key(self.id, idx),
        )
        timings = {"budget": (budget_done - started) * 1e6, "decide": (decided - budget_done) * 1e6}
        self._cursor += 1
        if decision.effect is PolicyEffect.DENY:
            outcome = self._record_denied(t, step, decision, reason)
        elif decision.effect is PolicyEffect.REQUIRE_APPROVAL:
            outcome = self._request_approval(t, step, args, decision, reason)
        else:
            self._record_intent(t, step, args, decision, reason, approval_id=None)
            timings["record_intent"] = (clock.monotonic() - decided) * 1e6
            outcome = await self._execute_and_record(t, parsed, step, decision, timings)
        self._route_after(t, decision, provenance)
        return outcome

    def _route_after(self, t: Tool, decision: Decision, provenance: dict[str, str]) -> None:
        """Governance routes too: what this call met puts the rest of the run in safe mode."""
        if self.mode is Mode.SAFE or self._record.state.terminal:
            return
        routing = self._rt.policy.settings.routing
        untrusted = sorted(name for name, p in provenance.items() if p == UNTRUSTED)
        if routing.safe_after_denial and decision.effect is PolicyEffect.DENY:
            self.enter_safe_mode(f"policy denied {t.name}")
        elif routing.safe_after_untrusted_argument and untrusted:
            self.enter_safe_mode(
                f"{t.name} had arguments from untrusted content: {', '.join(untrusted)}"
            )

    @property
    def mode(self) -> Mode:
        return self._record.spec.mode

    def trust(self, text: str) -> None:
        """Text from whoever the run acts for (the request): values found in it are trusted.

        From then on an argument found in no trusted text (the request, trusted tools'
        results) and no untrusted one is ``ungrounded``: the model made it up.
        """
        first = not self._provenance.grounding
        self._provenance.trust(text)
        if first:
            for result in self._trusted_results:
                self._provenance.trust(result)
            self._trusted_results.clear()

    def enter_safe_mode(self, reason: str) -> None:
        """From now on the run is in safe mode; policies see ``context.run.mode == "safe"``."""
        if self.mode is Mode.SAFE:
            return
        previous = self.mode
        self._record.spec = self._record.spec.model_copy(update={"mode": Mode.SAFE})
        self._facts.base["mode"] = Mode.SAFE.value
        with self._rt.store.write() as conn:
            journal.update_run(conn, self.id, mode=Mode.SAFE.value)
            self._append(conn, RunModeChanged(previous.value, Mode.SAFE.value, reason), None)

    def note_route(self, intent: str, tier: str, model: str, reason: str) -> None:
        """Record how the request was routed: into the audit log with the run."""
        with self._rt.store.write() as conn:
            self._append(conn, RunRouted(intent, tier, model, reason), None)

    # -- stages ------------------------------------------------------------------------

    async def _invalid(self, exc: InvalidAction) -> None:
        record = self._record
        record.invalid_actions += 1
        with self._rt.store.write() as conn:
            self._append(
                conn,
                ActionInvalid(exc.tool, exc.field, str(exc), record.invalid_actions),
                step=None,
            )
            journal.update_run(conn, self.id, invalid_actions=record.invalid_actions)
        if record.invalid_actions > record.spec.max_invalid_actions:
            detail = (
                f"{record.invalid_actions} invalid actions (limit "
                f"{record.spec.max_invalid_actions}); last: {exc}"
            )
            await self.fail_safe(Reason.INVALID_ACTIONS, detail)
            raise TooManyInvalidActions(f"run {self.id} failed safe: {detail}") from exc

    async def _check_budget(self) -> None:
        caps, used = self._record.spec.budget, self._record.usage
        breach = None
        if caps.tool_calls is not None and used.tool_calls >= caps.tool_calls:
            breach = f"tool calls {used.tool_calls} of {caps.tool_calls}"
        elif caps.model_tokens is not None and used.model_tokens >= caps.model_tokens:
            breach = f"model tokens {used.model_tokens} of {caps.model_tokens}"
        elif caps.usd is not None and used.usd >= caps.usd:
            breach = f"USD {used.usd} of {caps.usd}"
        elif caps.wall_time_s is not None:
            active = self._active_seconds()
            if active >= caps.wall_time_s:
                breach = f"wall time {active:.1f}s of {caps.wall_time_s}s"
        if breach is not None:
            detail = f"budget reached: {breach}"
            await self.fail_safe(Reason.BUDGET_EXCEEDED, detail)
            raise BudgetExceeded(f"run {self.id} failed safe before its next call: {detail}")

    def _active_seconds(self) -> float:
        elapsed = (self._rt.clock.now() - self._record.created_at).total_seconds()
        return elapsed - self._record.paused_s

    async def _decide(
        self, t: Tool, parsed: BaseModel, provenance: dict[str, str] | None = None
    ) -> Decision:
        try:
            resource = await t.resource_of(parsed)
        except Exception as exc:
            # A call whose resource cannot be looked up cannot be decided: fail closed.
            return Decision(
                effect=PolicyEffect.DENY,
                approval_roles=(),
                policy_ids=(),
                bundle_version=self.bundle_version,
                latency_us=0.0,
                errors=(f"resource lookup failed: {type(exc).__name__}: {exc}",),
                reason=f"cannot decide: the resource of {t.name} could not be looked up",
            )
        request = PolicyRequest(
            principal=self._principal,
            tool=t.name,
            effect_class=t.effect.value,
            resource=resource,
            args=parsed.model_dump(),
            run=self._facts.snapshot(),
            extra_context={"provenance": provenance} if provenance is not None else {},
        )
        return self._rt.policy.decide(request)

    def _step_row(
        self, t: Tool, step: StepRecord, args: dict[str, Any] | None, reason: str | None
    ) -> dict[str, Any]:
        """The journal row of a new step; the real arguments sealed if redaction changed them."""
        sealed = None if args is None or step.args == args else self._rt.sealer.seal(args)
        return {
            "run_id": self.id,
            "idx": step.idx,
            "tool": step.tool,
            "args": step.args,
            "args_hash": step.args_hash,
            "sealed_args": sealed,
            "sealed_result": None,
            "reason": reason,
            "status": step.status.value,
            "decision": step.decision,
            "idempotency_key": step.idempotency_key,
            "approval_id": step.approval_id,
            "result": None,
            "error": None,
            "attempts": 0,
            "timings_us": {},
            "created_at": self._rt.clock.now(),
            "finished_at": None,
        }

    def _record_denied(
        self, t: Tool, step: StepRecord, decision: Decision, reason: str | None
    ) -> CallOutcome:
        step.status = StepStatus.DENIED
        with self._rt.store.write() as conn:
            journal.insert_step(conn, self._step_row(t, step, None, reason))
            self._append(conn, ActionDenied(t.name, step.args, reason, step.decision), step.idx)
        self._record.steps.append(step)
        return CallOutcome(self.id, step.idx, t.name, CallStatus.DENIED, decision)

    def _request_approval(
        self,
        t: Tool,
        step: StepRecord,
        args: dict[str, Any],
        decision: Decision,
        reason: str | None,
    ) -> CallOutcome:
        rt, now = self._rt, self._rt.clock.now()
        step.status = StepStatus.AWAITING_APPROVAL
        step.approval_id = new_id("apr")
        expires = now + timedelta(seconds=rt.policy.settings.approvals.ttl_s)
        with rt.store.write() as conn:
            journal.insert_step(conn, self._step_row(t, step, args, reason))
            conn.execute(
                approvals.insert(),
                {
                    "id": step.approval_id,
                    "run_id": self.id,
                    "step": step.idx,
                    "tenant": self.tenant,
                    "tool": t.name,
                    "roles": list(decision.approval_roles),
                    "policy_ids": list(decision.policy_ids),
                    "requester": self._record.spec.requester,
                    "agent": self._record.spec.agent,
                    "status": ApprovalStatus.PENDING.value,
                    "created_at": now,
                    "expires_at": expires,
                },
            )
            self._append(
                conn,
                ActionApprovalRequested(
                    t.name,
                    step.args,
                    reason,
                    step.decision,
                    step.approval_id,
                    list(decision.approval_roles),
                    expires.isoformat(),
                ),
                step.idx,
            )
            self._set_state(conn, RunState.AWAITING_APPROVAL, None, f"step {step.idx}")
        self._record.steps.append(step)
        return CallOutcome(
            self.id,
            step.idx,
            t.name,
            CallStatus.AWAITING_APPROVAL,
            decision,
            approval_id=step.approval_id,
        )

    def _record_intent(
        self,
        t: Tool,
        step: StepRecord,
        args: dict[str, Any],
        decision: Decision,
        reason: str | None,
        *,
        approval_id: str | None,
    ) -> None:
        """Durably, before the side effect: the step is executing and the log says why."""
        rt = self._rt
        intent = ActionIntent(
            t.name,
            step.args,
            reason,
            step.decision,
            step.idempotency_key,
            approval_id,
            sorted(t.scopes),
        )
        with rt.store.write(durable=True) as conn:
            if approval_id is None:
                journal.insert_step(conn, self._step_row(t, step, args, reason))
            else:
                journal.set_step_status(conn, self.id, step.idx, StepStatus.EXECUTING)
            self._append(conn, intent, step.idx)
            self._keep_lease(conn)
        if approval_id is None:
            self._record.steps.append(step)
        step.status = StepStatus.EXECUTING
        for observer in rt.observers:
            observer.after_intent(self.id, step.idx, t.name)

    async def _execute_and_record(
        self,
        t: Tool,
        parsed: BaseModel,
        step: StepRecord,
        decision: Decision,
        timings: dict[str, float],
    ) -> CallOutcome:
        clock = self._rt.clock
        began = clock.monotonic()
        heartbeat = self._heartbeat_for(t)
        try:
            status, result, error, attempts = await self._execute(t, parsed, step)
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
        timings["execute"] = (clock.monotonic() - began) * 1e6
        for observer in self._rt.observers:
            observer.after_execute(self.id, step.idx, t.name)
        still_running = error is not None and error["kind"] == "still_running"
        if status is StepStatus.OUTCOME_UNKNOWN and not still_running:
            # A thread still running could apply the effect after any answer: don't ask.
            status, result, error = await self._reconcile(t, parsed, step, error)
        visible = self._record_outcome(
            t,
            step,
            status,
            result,
            error,
            attempts,
            timings,
            unknown=f"step {step.idx} ({t.name}) may or may not have taken effect; "
            "check the system of record before continuing",
        )
        return CallOutcome(
            self.id,
            step.idx,
            t.name,
            _STATUS_OF_STEP[status],
            decision,
            visible,
            error,
            step.approval_id,
        )

    def _heartbeat_for(self, t: Tool) -> asyncio.Task[None] | None:
        """Keep the lease while a call may outlive it, so no other worker takes the run over."""
        rt = self._rt
        worst = (t.max_retries + 1 if t.idempotent else 1) * t.timeout_s
        left = (self._lease_until - rt.clock.now()).total_seconds() if self._lease_until else 0
        if worst < left:
            return None
        return asyncio.create_task(self._keep_lease_while_running())

    async def _keep_lease_while_running(self) -> None:
        while True:
            await asyncio.sleep(self._rt.lease_s / 3)
            try:
                with self._rt.store.write(durable=False) as conn:
                    self._lease_until = None  # force a renewal
                    self._keep_lease(conn)
            except Exception as exc:
                # The call cannot be stopped from here; say loudly that the run may be
                # taken over while it is in flight.
                log.error("run %s: could not keep its lease during a call: %s", self.id, exc)
                return

    async def _execute(
        self, t: Tool, parsed: BaseModel, step: StepRecord
    ) -> tuple[StepStatus, Any, dict[str, Any] | None, int]:
        """Run the tool; retry transient errors of idempotent tools, a bounded number of times."""
        credential = self._rt.credentials(t, self.id, self.tenant)
        attempt = 0
        while True:
            attempt += 1
            ctx = ToolContext(
                self.id, step.idx, self.tenant, step.idempotency_key, credential, attempt
            )
            retry = t.idempotent and attempt <= t.max_retries
            try:
                return StepStatus.SUCCEEDED, await t.invoke(parsed, ctx), None, attempt
            except TransientToolError as exc:
                if not retry:
                    return StepStatus.FAILED, None, _error_info(exc, "transient"), attempt
            except TimeoutError as exc:
                if not retry:
                    # A write that timed out may have happened: its outcome is unknown.
                    status = (
                        StepStatus.FAILED if t.effect is Effect.READ else StepStatus.OUTCOME_UNKNOWN
                    )
                    kind = "still_running" if isinstance(exc, ToolStillRunning) else "timeout"
                    return status, None, _error_info(exc, kind), attempt
            except Exception as exc:
                return StepStatus.FAILED, None, _error_info(exc, "error"), attempt
            await asyncio.sleep(self._rt.retry_backoff_s * 2 ** (attempt - 1))

    async def _reconcile(
        self, t: Tool, parsed: BaseModel, step: StepRecord, error: dict[str, Any] | None
    ) -> tuple[StepStatus, Any, dict[str, Any] | None]:
        """Ask the tool's system of record what became of a step whose outcome was lost."""
        ctx = ToolContext(
            self.id,
            step.idx,
            self.tenant,
            step.idempotency_key,
            self._rt.credentials(t, self.id, self.tenant),
        )
        try:
            answer = await t.reconciled(parsed, ctx)
        except Exception as exc:
            answer, failure = None, f"the reconcile hook raised {type(exc).__name__}: {exc}"
        else:
            failure = "the tool has no reconcile hook"
        happened = None if answer is None else answer.happened
        detail = (
            failure
            if answer is None
            else (
                "the system of record has the effect"
                if answer.happened
                else "the system of record does not have the effect"
            )
        )
        with self._rt.store.write() as conn:
            self._append(conn, ActionReconciled(t.name, happened, detail), step.idx)
        if answer is None:
            return StepStatus.OUTCOME_UNKNOWN, None, error or {"kind": "unknown", "message": detail}
        if answer.happened:
            return StepStatus.SUCCEEDED, answer.result, None
        return StepStatus.FAILED, None, error or {"kind": "not_applied", "message": detail}

    def _record_outcome(
        self,
        t: Tool,
        step: StepRecord,
        status: StepStatus,
        result: Any,
        error: dict[str, Any] | None,
        attempts: int,
        timings: dict[str, float],
        *,
        unknown: str,
    ) -> Any:
        """Record what the call did. An unknown outcome hands the run off in the same commit.
        Returns the result as the caller sees it."""
        rt, clock = self._rt, self._rt.clock
        is_unknown = status is StepStatus.OUTCOME_UNKNOWN
        began = clock.monotonic()
        # The caller sees the result with the tool's declared fields masked (a model never
        # reads them); storage also gets the tenant's redaction of everything else.
        visible = redact_fields(result, t.sensitive)
        stored = self._redact(t, result)
        sealed = None if stored == visible else rt.sealer.seal(visible)
        error = self._redact(t, error)
        outcome = ActionOutcome(
            t.name,
            status.value,
            None if status is not StepStatus.SUCCEEDED else digest(stored),
            error,
            attempts,
            timings.get("execute", 0.0),
        )
        # Not fsynced on its own: the next durable commit carries it to disk. A power
        # loss before then leaves the step "executing", which resume reconciles.
        with rt.store.write(durable=is_unknown) as conn:
            self._append(conn, outcome, step.idx)
            timings["record_outcome"] = (clock.monotonic() - began) * 1e6
            journal.finish_step(
                conn,
                {
                    "rid": self.id,
                    "sidx": step.idx,
                    "status": status.value,
                    "result": stored,
                    "error": error,
                    "attempts": attempts,
                    "timings_us": timings,
                    "finished_at": clock.now(),
                    "sealed_result": sealed,
                },
            )
            if is_unknown:
                self._set_state(conn, RunState.HANDED_OFF, Reason.OUTCOME_UNKNOWN, unknown)
        if is_unknown:
            self._rt.run_ended(self.id)
        step.status, step.result, step.error = status, stored, error
        step.sealed_result = sealed
        if not is_unknown:
            self._record.usage.tool_calls += 1
        if status is StepStatus.SUCCEEDED:
            self._facts.count(t, step.args)
            if t.trust is Trust.UNTRUSTED:
                self._provenance.distrust(result)
            elif self._provenance.grounding:
                self._provenance.trust(result)
        return visible

    # -- replay and resume -------------------------------------------------------------

    async def _replay(
        self, step: StepRecord, t: Tool, parsed: BaseModel, args_hash: str
    ) -> CallOutcome:
        if step.tool != t.name or step.args_hash != args_hash:
            raise ReplayMismatch(
                f"run {self.id} step {step.idx}: the journal holds a call to {step.tool} "
                f"but the code now proposes {t.name} with other arguments; a resumed run must "
                "make the same calls in the same order"
            )
        self._cursor += 1
        if step.status is StepStatus.AWAITING_APPROVAL:
            executed = await self._run_if_approved(step, t, parsed)
            if executed is not None:
                return executed
        decision = self._decision_of(step)
        return CallOutcome(
            self.id,
            step.idx,
            step.tool,
            _STATUS_OF_STEP[step.status],
            decision,
            self._whole_result(step),
            step.error,
            step.approval_id,
            replayed=True,
        )

    async def preview(self, tool: str, args_json: str | bytes) -> Decision:
        """What policy would decide for this call now. Records nothing, runs nothing;
        raises ``InvalidAction`` (unrecorded) when the call does not fit its tool."""
        t = self._rt.tools.get(tool)
        parsed = t.validate_json(args_json)
        return await self._decide(t, parsed, self._provenance.of(parsed.model_dump(mode="json")))

    def seek(self, step: int) -> None:
        """Continue after ``step`` journaled calls instead of replaying them (for code that
        keeps its own state, such as the agent loop)."""
        if not 0 <= step <= len(self._record.steps):
            raise ValueError(f"run {self.id} has {len(self._record.steps)} steps, not {step}")
        self._cursor = step

    @property
    def position(self) -> int:
        """How many journaled calls this handle has made or replayed."""
        return self._cursor

    def save_conversation(self, conversation: Any) -> None:
        """Keep the agent's conversation with the run, sealed: it holds tool results whole."""
        with self._rt.store.write(durable=False) as conn:
            journal.update_run(
                conn, self.id, conversation={"sealed": self._rt.sealer.seal(conversation)}
            )

    def load_conversation(self) -> Any:
        with self._rt.store.read() as conn:
            stored = conn.execute(
                sa.select(runs.c.conversation).where(runs.c.id == self.id)
            ).scalar_one()
        return None if stored is None else self._rt.sealer.open(stored["sealed"])

    async def resume_pending(self) -> CallOutcome | None:
        """Run the step that waited for approval, if it was approved. ``None`` if nothing waits."""
        self._ensure_not_terminal()
        pending = [s for s in self._record.steps if s.status is StepStatus.AWAITING_APPROVAL]
        if not pending:
            return None
        step = pending[-1]
        t = self._rt.tools.get(step.tool)
        parsed = t.validate(self._real_args(t, step))
        self._cursor = max(self._cursor, step.idx + 1)
        executed = await self._run_if_approved(step, t, parsed)
        if executed is not None:
            return executed
        return CallOutcome(
            self.id,
            step.idx,
            step.tool,
            _STATUS_OF_STEP[step.status],
            self._decision_of(step),
            approval_id=step.approval_id,
        )

    async def _run_if_approved(
        self, step: StepRecord, t: Tool, parsed: BaseModel
    ) -> CallOutcome | None:
        """Execute a step whose approval was granted; record a denial or expiry."""
        approval_id = step.approval_id
        assert approval_id is not None, "a step awaiting approval has an approval id"
        with self._rt.store.read() as conn:
            row = conn.execute(sa.select(approvals).where(approvals.c.id == approval_id)).one()
        verdict = ApprovalStatus(row.status)
        if verdict is ApprovalStatus.PENDING and self._rt.clock.now() >= row.expires_at:
            self._rt.approvals.expire(approval_id)  # hands the run off, exports its spans
            await self._refresh()
            return None
        if verdict is ApprovalStatus.EXPIRED:
            await self._refresh()  # the expiry handed the run off
            return None
        if verdict is not ApprovalStatus.PENDING:
            await self._refresh()  # the decision moved the stored run on, and its pause ended
        if verdict is not ApprovalStatus.APPROVED:
            return None
        await self._check_budget()
        decision = self._decision_of(step)
        self._record_intent(
            t, step, parsed.model_dump(mode="json"), decision, None, approval_id=step.approval_id
        )
        return await self._execute_and_record(t, parsed, step, decision, {})

    async def recover(self) -> None:
        """After a crash: settle any step that was executing when its worker died."""
        for step in self._record.steps:
            if step.status is StepStatus.EXECUTING:
                await self._settle(step)

    async def _settle(self, step: StepRecord) -> None:
        t = self._rt.tools.get(step.tool)
        parsed = t.validate(self._real_args(t, step))
        decision = self._decision_of(step)
        if t.reconcile_fn is None and t.effect is Effect.READ:
            # A read has no effect to repeat: run it again.
            await self._execute_and_record(t, parsed, step, decision, {})
            return
        status, result, error = await self._reconcile(t, parsed, step, None)
        if status is StepStatus.FAILED:
            # The system of record says it did not happen: running it now is safe.
            await self._execute_and_record(t, parsed, step, decision, {})
            return
        self._record_outcome(
            t,
            step,
            status,
            result,
            error,
            0,
            {},
            unknown=f"step {step.idx} ({t.name}) was running when its worker stopped and it "
            "has no reconcile hook: check the system of record before continuing",
        )

    def _redact(self, t: Tool, value: Any) -> Any:
        """What is stored of an argument, result or error: the tenant's redaction, with
        the tool's sensitive fields declared."""
        return self._rt.redaction.value(self.tenant, value, t.sensitive)

    def _whole_result(self, step: StepRecord) -> Any:
        """A step's result as the tool returned it: replay and grounding need it whole."""
        if step.sealed_result is None:
            return step.result
        return self._rt.sealer.open(step.sealed_result)

    def _real_args(self, t: Tool, step: StepRecord) -> dict[str, Any]:
        """The arguments as proposed: unsealed if redaction changed them in storage."""
        with self._rt.store.read() as conn:
            sealed = conn.execute(
                sa.select(steps.c.sealed_args).where(
                    steps.c.run_id == self.id, steps.c.idx == step.idx
                )
            ).scalar_one()
        return dict(self._rt.sealer.open(sealed)) if sealed else step.args

    @staticmethod
    def _decision_of(step: StepRecord) -> Decision:
        d = step.decision
        return Decision(
            effect=PolicyEffect(d["effect"]),
            approval_roles=tuple(d["approval_roles"]),
            policy_ids=tuple(d["policy_ids"]),
            bundle_version=d["bundle_version"],
            latency_us=float(d["latency_us"]),
            errors=tuple(d.get("errors", ())),
            reason=d.get("reason", ""),
        )

    async def _refresh(self) -> None:
        """Take in what an approval decision or expiry changed in the stored run."""
        with self._rt.store.read() as conn:
            fresh = journal.load_run(conn, self.id)
        record = self._record
        record.state, record.reason, record.paused_s = fresh.state, fresh.reason, fresh.paused_s
        for mine, stored in zip(record.steps, fresh.steps, strict=False):
            mine.status = stored.status

    # -- usage and ending --------------------------------------------------------------

    async def ask(self, model: Model, request: ModelRequest) -> ModelResponse:
        """One model call, paid for before it is made.

        The call's worst case (every input token uncached, every output token
        written) must fit the run's caps and the day's workflow and tenant
        budgets; it is reserved against the daily budgets, which every worker
        shares, and replaced by the real cost when the answer comes. A call
        that could cross a cap is not made: the run ends
        ``failed_safe(budget_exceeded)``.
        """
        self._ensure_not_terminal()
        rt = self._rt
        worst_usd, worst_tokens = rt.prices.worst_case(model.name, request)
        await self._check_model_budget(worst_usd, worst_tokens)
        spec = self._record.spec
        budgets = rt.policy.settings.budgets
        scopes = daily_scopes(spec.tenant, spec.workflow, budgets.tenant, budgets.workflow)
        day = rt.clock.now().date().isoformat()
        try:
            held = rt.ledger.reserve(scopes, day, worst_usd, worst_tokens)
        except BudgetExceeded as exc:
            await self.fail_safe(Reason.BUDGET_EXCEEDED, str(exc))
            raise BudgetExceeded(f"run {self.id} failed safe before a model call: {exc}") from None
        try:
            response = await model.complete(request)
        except BaseException:
            rt.ledger.release(held)
            raise
        cost = rt.prices.cost(model.name, response.usage)
        usage = self._record.usage
        usage.model_tokens += response.usage.total
        usage.usd += cost
        with rt.store.write(durable=False) as conn:  # one commit: the ledger, the run, the call
            rt.ledger.settle(conn, held, cost, response.usage.total)
            journal.update_run(conn, self.id, usage=usage.to_json())
            journal.record_model_call(
                conn, self.id, spec, model.name, response, cost, held.nano_usd, rt.clock.now()
            )
        return response

    async def _check_model_budget(self, worst_usd: Decimal, worst_tokens: int) -> None:
        caps, used = self._record.spec.budget, self._record.usage
        breach = None
        if caps.model_tokens is not None and used.model_tokens + worst_tokens > caps.model_tokens:
            breach = (
                f"model tokens {used.model_tokens} + up to {worst_tokens} of {caps.model_tokens}"
            )
        elif caps.usd is not None and used.usd + worst_usd > caps.usd:
            breach = f"USD {used.usd} + up to {worst_usd:.6f} of {caps.usd}"
        if breach is not None:
            detail = f"budget would be crossed: {breach}"
            await self.fail_safe(Reason.BUDGET_EXCEEDED, detail)
            raise BudgetExceeded(f"run {self.id} failed safe before a model call: {detail}")

    async def charge(self, *, tokens: int = 0, usd: Decimal = Decimal(0)) -> None:
        """Count model usage against the run's budget."""
        if tokens < 0 or usd < 0:
            raise ValueError("usage to charge must not be negative")
        usage = self._record.usage
        usage.model_tokens += tokens
        usage.usd += usd
        with self._rt.store.write(durable=False) as conn:
            journal.update_run(conn, self.id, usage=usage.to_json())

    async def release(self) -> None:
        """Let another worker take the run at once, instead of after this worker's lease."""
        if self._record.state.terminal:
            return
        with self._rt.store.write() as conn:
            journal.release(conn, self.id, self._rt.worker_id)
        self._lease_until = None

    async def complete(self, detail: str | None = None) -> None:
        await self._end(RunState.COMPLETED, Reason.DONE, detail)

    async def hand_off(self, reason: Reason, detail: str | None = None) -> None:
        await self._end(RunState.HANDED_OFF, reason, detail)

    async def fail_safe(self, reason: Reason, detail: str | None = None) -> None:
        await self._end(RunState.FAILED_SAFE, reason, detail)

    async def _end(self, state: RunState, reason: Reason, detail: str | None) -> None:
        self._ensure_not_terminal()
        with self._rt.store.write() as conn:
            self._set_state(conn, state, reason, detail)
        self._rt.run_ended(self.id)

    # -- helpers -----------------------------------------------------------------------

    def _ensure_not_terminal(self) -> None:
        if self._record.state.terminal:
            raise RunTerminated(
                f"run {self.id} already ended {self._record.state} ({self._record.reason}); "
                "start a new run"
            )

    def _append(self, conn: sa.Connection, event: Any, step: int | None) -> None:
        self._rt.audit.append(
            conn,
            self.tenant,
            event,
            run_id=self.id,
            step=step,
            bundle_version=self.bundle_version,
        )

    def _keep_lease(self, conn: sa.Connection) -> None:
        """Hold the run while it works; a paused run was released and is taken back here."""
        rt = self._rt
        now = rt.clock.now()
        if self._lease_until is None or (self._lease_until - now).total_seconds() < rt.lease_s / 2:
            lease = timedelta(seconds=rt.lease_s)
            journal.claim(conn, self.id, rt.worker_id, now, lease)  # RunBusy if held elsewhere
            self._lease_until = now + lease

    def _set_state(
        self, conn: sa.Connection, state: RunState, reason: Reason | None, detail: str | None
    ) -> None:
        record, now = self._record, self._rt.clock.now()
        previous = record.state
        if detail is not None:
            detail = self._rt.redaction.text(self.tenant, detail)
        values: dict[str, Any] = {
            "state": state.value,
            "reason": reason.value if reason else None,
            "reason_detail": detail,
            "updated_at": now,
            "usage": record.usage.to_json(),
        }
        if state is not RunState.RUNNING:
            values.update(owner=None, lease_until=None)
            self._lease_until = None
        if state.terminal:
            values["ended_at"] = now
            journal.drop_seals(conn, self.id)
        journal.update_run(conn, self.id, **values)
        self._append(
            conn,
            RunStateChanged(previous.value, state.value, reason.value if reason else None, detail),
            None,
        )
        if state.terminal:
            self._rt.audit.checkpoint(conn, self.tenant)
        record.state, record.reason = state, reason.value if reason else None
