"""The governed call, as a forward-only pipeline of stages.

    validate → budget → decide → deny
                               → request approval
                               → record intent → execute → record outcome

Each stage is a function of a small typed input that returns a value; none
goes back. The intent entry is committed durably before the tool runs, and the
outcome is recorded after it. A call whose outcome was lost is reconciled with
the tool's system of record, never blindly retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from proctor.budgets import run_cap_breach
from proctor.errors import BudgetExceeded, InvalidAction, PayloadTooLarge, TooManyInvalidActions
from proctor.ids import new_id
from proctor.policy import Decision, DecisionEffect, PolicyRequest
from proctor.policy.decision import inputs_of
from proctor.runs import journal
from proctor.runs.leases import heartbeat
from proctor.runs.live import LiveRun
from proctor.runs.model import CallOutcome, CallStatus, StepRecord
from proctor.runs.plans import plan_context
from proctor.runs.provenance import flagged
from proctor.runs.steps import NewStep, Outcome, Proposal
from proctor.services import Services
from proctor.states import Mode, StepStatus
from proctor.tools import Effect, Tool, ToolContext, ToolStillRunning, TransientToolError

STATUS_OF_STEP = {
    StepStatus.SUCCEEDED: CallStatus.EXECUTED,
    StepStatus.DENIED: CallStatus.DENIED,
    StepStatus.APPROVAL_DENIED: CallStatus.DENIED,
    StepStatus.APPROVAL_EXPIRED: CallStatus.DENIED,
    StepStatus.FAILED: CallStatus.FAILED,
    StepStatus.OUTCOME_UNKNOWN: CallStatus.OUTCOME_UNKNOWN,
    StepStatus.AWAITING_APPROVAL: CallStatus.AWAITING_APPROVAL,
}


# -- validate ----------------------------------------------------------------------------


def proposal(
    services: Services, tenant: str, tool: str, args: Mapping[str, Any] | str | bytes
) -> Proposal:
    """Parse the arguments strictly into the tool's model; ``InvalidAction`` if they do not
    fit, or are over the tenant's size limit (checked first: detectors and the parser
    read every byte). Records nothing."""
    t = services.tools.get(tool)
    try:
        services.redaction.check_size(tenant, args, f"arguments of {tool}")
    except PayloadTooLarge as exc:
        raise InvalidAction(tool, str(exc)) from None
    parsed = t.validate(args) if isinstance(args, Mapping) else t.validate_json(args)
    dumped = parsed.model_dump(mode="json")
    return Proposal(t, parsed, dumped, services.sealer.mac([t.name, dumped]))


async def validate(live: LiveRun, tool: str, args: Mapping[str, Any] | str | bytes) -> Proposal:
    """A proposal; a misfit is recorded, counted against the run's tolerance, and raised
    as ``InvalidAction``."""
    try:
        return proposal(live.services, live.tenant, tool, args)
    except InvalidAction as exc:
        await invalid(live, exc)
        raise


async def invalid(live: LiveRun, exc: InvalidAction) -> None:
    record = live.record
    await live.recorder.invalid(record, exc)
    if record.invalid_actions > record.spec.max_invalid_actions:
        detail = (
            f"{record.invalid_actions} invalid actions (limit "
            f"{record.spec.max_invalid_actions}); last: {exc}"
        )
        await live.fail(TooManyInvalidActions(f"run {live.id} failed safe: {detail}"), detail)


# -- budget ------------------------------------------------------------------------------


async def check_budget(live: LiveRun) -> None:
    """The run's caps hold before its next call, or the run fails safe."""
    record = live.record
    active = (live.services.clock.now() - record.created_at).total_seconds() - record.paused_s
    breach = run_cap_breach(record.spec.budget, record.usage, active)
    if breach is not None:
        detail = f"budget reached: {breach}"
        await live.fail(
            BudgetExceeded(f"run {live.id} failed safe before its next call: {detail}"), detail
        )


# -- decide ------------------------------------------------------------------------------


async def preview(live: LiveRun, proposal: Proposal) -> Decision:
    """Decide without recording; kept for ``governed`` while the run learns nothing new."""
    decision = await decide(live, proposal, live.provenance.of(proposal.args))
    live.previewed = (live.generation, proposal, decision)
    return decision


def previewed(live: LiveRun, proposal: Proposal) -> Decision | None:
    """The decision a preview of this same call made, if the run has not changed since."""
    if live.previewed is None:
        return None
    generation, seen, decision = live.previewed
    live.previewed = None
    same = seen.tool is proposal.tool and seen.args_hash == proposal.args_hash
    return decision if same and generation == live.generation else None


async def decide(live: LiveRun, proposal: Proposal, provenance: dict[str, str]) -> Decision:
    """What policy says of this call now, with the run's facts and each argument's origin."""
    t, s = proposal.tool, live.services
    try:
        resource = await t.resource_of(proposal.parsed, live.view)
    except Exception as exc:
        # A call whose resource cannot be looked up cannot be decided: fail closed.
        error = s.redaction.text(live.tenant, f"{type(exc).__name__}: {exc}")
        return Decision(
            effect=DecisionEffect.DENY,
            approval_roles=(),
            policy_ids=(),
            bundle_version=s.version,
            latency_us=0.0,
            errors=(f"resource lookup failed: {error}",),
            reason=f"cannot decide: the resource of {t.name} could not be looked up",
            inputs={"resource_error": error, "tools": s.tools.version},
        )
    request = PolicyRequest(
        principal=live.principal,
        tool=t.name,
        effect_class=t.effect.value,
        resource=resource,
        args=proposal.parsed.model_dump(),
        run=live.facts.snapshot(),
        extra_context={
            "provenance": provenance,
            **flagged(provenance, t),
            "plan": plan_context(live.plan, t, proposal.args),
            "now": moment(s.clock.now()),
        },
    )
    decision = s.policy.decide(request)
    if live.beside is not None:  # log only: never enforced
        live.beside_decision = (proposal.args_hash, live.beside[1].decide(request))
    return replace(decision, inputs={**inputs_of(request), "tools": s.tools.version})


def moment(now: datetime) -> dict[str, Any]:
    """``context.now``: the time of the decision, in UTC, in the parts policies compare."""
    return {
        "iso": now.isoformat(timespec="seconds"),
        "epoch": int(now.timestamp()),
        "date": now.date().isoformat(),
        "hour": now.hour,
        "weekday": now.strftime("%a").lower(),
    }


# -- the three ways on -------------------------------------------------------------------


async def governed(
    live: LiveRun, proposal: Proposal, reason: str | None, call_id: str | None = None
) -> CallOutcome:
    """A new call through every stage after validation; ``call_id`` is the caller's own id
    for it, which replays this step when the same call is proposed again."""
    s, record = live.services, live.record
    clock = s.clock
    started = clock.monotonic()
    await check_budget(live)
    budget_done = clock.monotonic()
    provenance = live.provenance.of(proposal.args)
    safe_before(live, proposal.tool, provenance)
    decision = previewed(live, proposal) or await decide(live, proposal, provenance)
    decided = clock.monotonic()
    timings = {"budget": (budget_done - started) * 1e6, "decide": (decided - budget_done) * 1e6}
    step = NewStep.of(record, proposal, decision, reason, s.redaction, s.sealer, call_id)
    live.cursor += 1
    if decision.effect is DecisionEffect.DENY:
        denied = await live.recorder.denied(record, step)
        outcome = CallOutcome(live.id, denied.idx, denied.tool, CallStatus.DENIED, decision)
    elif decision.effect is DecisionEffect.REQUIRE_APPROVAL:
        expires = s.clock.now() + timedelta(seconds=s.policy.settings.approvals.ttl_s)
        waiting = await live.recorder.approval_requested(record, step, new_id("apr"), expires)
        outcome = CallOutcome(
            live.id,
            waiting.idx,
            waiting.tool,
            CallStatus.AWAITING_APPROVAL,
            decision,
            approval_id=waiting.approval_id,
        )
    else:
        executing = await live.recorder.intent(record, step)
        notify_intent(live, executing)
        timings["record_intent"] = (clock.monotonic() - decided) * 1e6
        outcome = await execute_and_record(live, proposal, executing, timings)
    decided_beside(live, proposal, outcome.step, decision)
    safe_after(live, proposal.tool, decision)
    return outcome


def decided_beside(live: LiveRun, proposal: Proposal, step: int, decision: Decision) -> None:
    """Record what the bundle beside the live one decided of this call, if one did."""
    beside, made = live.beside, live.beside_decision
    live.beside_decision = None
    if beside is None or made is None or made[0] != proposal.args_hash:
        return
    with live.services.store.write(durable=False) as conn:
        journal.insert_beside(
            conn,
            live.id,
            step,
            beside[0],
            proposal.tool.name,
            decision,
            made[1],
            live.services.clock.now(),
        )


def notify_intent(live: LiveRun, step: StepRecord) -> None:
    for observer in live.services.observers:
        observer.after_intent(live.id, step.idx, step.tool)


def safe_before(live: LiveRun, t: Tool, provenance: dict[str, str]) -> None:
    """A call whose sink or target came from outside content puts the run in safe mode
    before it is decided: the call itself is decided in safe mode."""
    if live.record.spec.mode is Mode.SAFE:
        return
    if live.services.policy.settings.routing.safe_after_untrusted_argument:
        flags = flagged(provenance, t)
        named = flags["untrusted_sinks"] + flags["untrusted_targets"]
        if named:
            enter_safe_mode(
                live, f"{t.name} has arguments from outside content: {', '.join(sorted(named))}"
            )


def safe_after(live: LiveRun, t: Tool, decision: Decision) -> None:
    """A denial puts the rest of the run in safe mode."""
    record = live.record
    if record.spec.mode is Mode.SAFE or record.state.terminal:
        return
    routing = live.services.policy.settings.routing
    if routing.safe_after_denial and decision.effect is DecisionEffect.DENY:
        enter_safe_mode(live, f"policy denied {t.name}")


def enter_safe_mode(live: LiveRun, reason: str) -> None:
    if live.record.spec.mode is Mode.SAFE:
        return
    live.recorder.mode_changed(live.record, Mode.SAFE, reason)
    live.facts.base["mode"] = Mode.SAFE.value
    live.generation += 1


# -- execute and record ------------------------------------------------------------------


async def execute_and_record(
    live: LiveRun, proposal: Proposal, step: StepRecord, timings: dict[str, float]
) -> CallOutcome:
    """Run the tool under its lease, settle a lost outcome, and record what it did."""
    t, clock = proposal.tool, live.services.clock
    began = clock.monotonic()
    worst = (t.max_retries + 1 if t.idempotent else 1) * t.timeout_s
    beating = heartbeat(live.services, live.recorder, live.record, worst)
    try:
        outcome = await execute(live, proposal, step)
    finally:
        if beating is not None:
            beating.cancel()
    timings["execute"] = (clock.monotonic() - began) * 1e6
    for observer in live.services.observers:
        observer.after_execute(live.id, step.idx, t.name)
    still_running = outcome.error is not None and outcome.error["kind"] == "still_running"
    if outcome.status is StepStatus.OUTCOME_UNKNOWN and not still_running:
        # A thread still running could apply the effect after any answer: don't ask.
        outcome = await reconcile(live, proposal, step, outcome)
    return await record_outcome(
        live,
        proposal.tool,
        step,
        outcome,
        timings,
        unknown=f"step {step.idx} ({t.name}) may or may not have taken effect; "
        "check the system of record before continuing",
    )


async def record_outcome(
    live: LiveRun,
    t: Tool,
    step: StepRecord,
    outcome: Outcome,
    timings: dict[str, float],
    *,
    unknown: str,
) -> CallOutcome:
    visible = await live.recorder.outcome(live.record, step, t, outcome, timings, unknown=unknown)
    if outcome.status is not StepStatus.OUTCOME_UNKNOWN:
        live.record.usage.tool_calls += 1
    if outcome.status is StepStatus.SUCCEEDED:
        live.learn(t, step, outcome.result)
    return CallOutcome(
        live.id,
        step.idx,
        t.name,
        STATUS_OF_STEP[outcome.status],
        step.decision,
        visible,
        step.error,
        step.approval_id,
    )


def _error_info(exc: BaseException, kind: str) -> dict[str, Any]:
    message = str(exc) or type(exc).__name__
    return {"kind": kind, "type": type(exc).__name__, "message": message[:500]}


def _context(live: LiveRun, t: Tool, step: StepRecord, attempt: int = 1) -> ToolContext:
    credential = live.services.credentials(t, live.id, live.tenant)
    return ToolContext(live.id, step.idx, live.tenant, step.idempotency_key, credential, attempt)


async def execute(live: LiveRun, proposal: Proposal, step: StepRecord) -> Outcome:
    """Run the tool; retry transient errors of idempotent tools, a bounded number of times."""
    t = proposal.tool
    attempt = 0
    while True:
        attempt += 1
        retry = t.idempotent and attempt <= t.max_retries
        try:
            result = await t.invoke(proposal.parsed, _context(live, t, step, attempt))
            return _within_limit(live, t, Outcome(StepStatus.SUCCEEDED, result, None, attempt))
        except TransientToolError as exc:
            if not retry:
                return Outcome(StepStatus.FAILED, None, _error_info(exc, "transient"), attempt)
        except TimeoutError as exc:
            if not retry:
                # A write that timed out may have happened: its outcome is unknown.
                status = (
                    StepStatus.FAILED if t.effect is Effect.READ else StepStatus.OUTCOME_UNKNOWN
                )
                kind = "still_running" if isinstance(exc, ToolStillRunning) else "timeout"
                return Outcome(status, None, _error_info(exc, kind), attempt)
        except Exception as exc:
            return Outcome(StepStatus.FAILED, None, _error_info(exc, "error"), attempt)
        await asyncio.sleep(live.services.retry_backoff_s * 2 ** (attempt - 1))


def _within_limit(live: LiveRun, t: Tool, outcome: Outcome) -> Outcome:
    """A result over the tenant's size limit is not recorded: a read's call fails, and a
    write's, whose effect happened, succeeds with a note in place of its result."""
    try:
        live.services.redaction.check_size(live.tenant, outcome.result, f"result of {t.name}")
    except PayloadTooLarge as exc:
        if t.effect is Effect.READ:
            return Outcome(StepStatus.FAILED, None, _error_info(exc, "too_large"), outcome.attempts)
        return Outcome(StepStatus.SUCCEEDED, {"omitted": str(exc)}, None, outcome.attempts)
    return outcome


async def reconcile(
    live: LiveRun, proposal: Proposal, step: StepRecord, lost: Outcome | None
) -> Outcome:
    """Ask the tool's system of record what became of a step whose outcome was lost."""
    t = proposal.tool
    try:
        answer = await t.reconciled(proposal.parsed, _context(live, t, step))
    except Exception as exc:
        answer, failure = None, f"the reconcile hook raised {type(exc).__name__}: {exc}"
    else:
        failure = "the tool has no reconcile hook"
    if answer is None:
        detail = failure
    elif answer.happened:
        detail = "the system of record has the effect"
    else:
        detail = "the system of record does not have the effect"
    happened = None if answer is None else answer.happened
    await live.recorder.reconciled(live.record, step, happened, detail)
    error = None if lost is None else lost.error
    attempts = 0 if lost is None else lost.attempts
    if answer is None:
        return Outcome(
            StepStatus.OUTCOME_UNKNOWN,
            None,
            error or {"kind": "unknown", "message": detail},
            attempts,
        )
    if answer.happened:
        return _within_limit(live, t, Outcome(StepStatus.SUCCEEDED, answer.result, None, attempts))
    return Outcome(
        StepStatus.FAILED, None, error or {"kind": "not_applied", "message": detail}, attempts
    )
