"""A run taken over from the store: calls already made answer from the journal.

A resumed run's code proposes its calls again, in order; each one the journal
holds returns its recorded outcome instead of running again. A step that waited
for approval runs once it is approved, and a step whose worker died while it
executed is settled with the tool's system of record.
"""

from __future__ import annotations

from proctor.approvals import REQUESTER, ApprovalQueue, Approver
from proctor.errors import ReplayMismatch
from proctor.runs import gate
from proctor.runs.gate import STATUS_OF_STEP
from proctor.runs.live import LiveRun
from proctor.runs.model import CallOutcome, StepRecord
from proctor.runs.steps import Outcome, Proposal
from proctor.states import ApprovalStatus, StepStatus
from proctor.tools import Effect


async def replay(
    live: LiveRun, approvals: ApprovalQueue, step: StepRecord, proposal: Proposal
) -> CallOutcome:
    """The journal's answer to a call proposed again, which must be the same call."""
    _same_call(live, step, proposal, "a resumed run must make the same calls in the same order")
    live.cursor += 1
    return await answer(live, approvals, step, proposal)


async def replay_call(
    live: LiveRun, approvals: ApprovalQueue, step: StepRecord, proposal: Proposal
) -> CallOutcome:
    """The journal's answer to a call proposed again under the caller's id for it: made
    once, whatever the order of the calls around it."""
    _same_call(live, step, proposal, f"call id {step.call_id!r} names another call")
    return await answer(live, approvals, step, proposal)


def _same_call(live: LiveRun, step: StepRecord, proposal: Proposal, rule: str) -> None:
    if step.tool != proposal.tool.name or step.args_hash != proposal.args_hash:
        raise ReplayMismatch(
            f"run {live.id} step {step.idx}: the journal holds a call to {step.tool} "
            f"but the code now proposes {proposal.tool.name} with other arguments; {rule}"
        )


async def answer(
    live: LiveRun, approvals: ApprovalQueue, step: StepRecord, proposal: Proposal
) -> CallOutcome:
    """A journaled step's outcome; one that waited for approval runs now if approved."""
    if step.status is StepStatus.AWAITING_APPROVAL:
        executed = await run_if_approved(live, approvals, step, proposal)
        if executed is not None:
            return executed
    return recorded(live, step, replayed=True)


def recorded(live: LiveRun, step: StepRecord, *, replayed: bool) -> CallOutcome:
    """A step's outcome as the journal holds it."""
    return CallOutcome(
        live.id,
        step.idx,
        step.tool,
        STATUS_OF_STEP[step.status],
        step.decision,
        live.whole_result(step),
        step.error,
        step.approval_id,
        replayed=replayed,
    )


def stored_proposal(live: LiveRun, step: StepRecord) -> Proposal:
    """A journaled step as the call it was (its arguments whole, unsealed)."""
    s = live.services
    t = s.tools.get(step.tool)
    parsed = t.validate(live.real_args(step))
    return Proposal(t, parsed, parsed.model_dump(mode="json"), step.args_hash)


async def resume_pending(live: LiveRun, approvals: ApprovalQueue) -> CallOutcome | None:
    """Run the step that waited for approval, if it was approved. ``None`` if nothing waits."""
    live.ensure_live()
    pending = [s for s in live.record.steps if s.status is StepStatus.AWAITING_APPROVAL]
    if not pending:
        return None
    step = pending[-1]
    proposal = stored_proposal(live, step)
    live.cursor = max(live.cursor, step.idx + 1)
    executed = await run_if_approved(live, approvals, step, proposal)
    return executed if executed is not None else recorded(live, step, replayed=False)


async def refuse(live: LiveRun, approvals: ApprovalQueue, reason: str) -> CallOutcome | None:
    """The requester refuses the call the run waits on, and the run goes on without it."""
    waiting = [
        s.approval_id
        for s in live.record.steps
        if s.status is StepStatus.AWAITING_APPROVAL and s.approval_id
    ]
    if not waiting:
        return None
    approvals.deny(waiting[-1], Approver(live.record.spec.requester, REQUESTER), reason)
    return await resume_pending(live, approvals)


async def run_if_approved(
    live: LiveRun, approvals: ApprovalQueue, step: StepRecord, proposal: Proposal
) -> CallOutcome | None:
    """Execute a step whose approval was granted; take in a denial or expiry."""
    assert step.approval_id is not None, "a step awaiting approval has an approval id"
    request = approvals.get(step.approval_id)
    if request.overdue(live.services.clock.now()):
        approvals.expire(request.id)  # hands the run off, exports its spans
        live.refresh()
        return None
    if request.status is not ApprovalStatus.PENDING:
        live.refresh()  # the decision or expiry moved the stored run on
    if request.status is not ApprovalStatus.APPROVED:
        return None
    await gate.check_budget(live)
    await live.recorder.approved_intent(live.record, step, proposal.tool)
    gate.notify_intent(live, step)
    return await gate.execute_and_record(live, proposal, step, {})


async def recover(live: LiveRun) -> None:
    """After a crash: settle every step that was executing when its worker died."""
    for step in live.record.steps:
        if step.status is StepStatus.EXECUTING:
            await settle(live, step)


async def settle(live: LiveRun, step: StepRecord) -> None:
    proposal = stored_proposal(live, step)
    t = proposal.tool
    if t.reconcile_fn is None and t.effect is Effect.READ:
        # A read has no effect to repeat: run it again.
        await gate.execute_and_record(live, proposal, step, {})
        return
    outcome = await gate.reconcile(live, proposal, step, None)
    if outcome.status is StepStatus.FAILED:
        # The system of record says it did not happen: running it now is safe.
        await gate.execute_and_record(live, proposal, step, {})
        return
    await gate.record_outcome(
        live,
        t,
        step,
        Outcome(outcome.status, outcome.result, outcome.error, 0),
        {},
        unknown=f"step {step.idx} ({t.name}) was running when its worker stopped and it "
        "has no reconcile hook: check the system of record before continuing",
    )
