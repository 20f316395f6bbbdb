"""Open a run, make allowed, denied and approval-needing calls, approve one, verify the log."""

from __future__ import annotations

from dataclasses import dataclass, field

from proctor.approvals import Approver
from proctor.audit import VerifyReport
from proctor.runs import CallOutcome, RunSpec
from proctor.runtime import Runtime
from proctor.states import RunState


@dataclass
class Walkthrough:
    run_id: str = ""
    calls: list[tuple[str, CallOutcome]] = field(default_factory=list)
    state: RunState = RunState.RUNNING
    report: VerifyReport | None = None


async def run_walkthrough(rt: Runtime) -> Walkthrough:
    out = Walkthrough()
    spec = RunSpec(
        agent="support-bot",
        role="support_agent",
        tenant="demo",
        workflow="refunds",
        requester="customer:c-42",
    )
    run = await rt.start_run(spec)
    out.run_id = run.id
    proposals = [
        ("look up the order", "lookup_order", {"order_id": "A-1001"}),
        (
            "refund $20 (within the agent's limit)",
            "issue_refund",
            {"order_id": "A-1001", "amount": "20.00"},
        ),
        (
            "refund $5,000 (more than the order)",
            "issue_refund",
            {"order_id": "A-1001", "amount": "5000.00"},
        ),
        (
            "refund $400 (needs a supervisor)",
            "issue_refund",
            {"order_id": "A-1001", "amount": "400.00"},
        ),
    ]
    for label, tool_name, args in proposals:
        out.calls.append((label, await run.call(tool_name, args, reason=label)))
    pending = out.calls[-1][1]
    if pending.approval_id is not None:
        rt.approvals.approve(
            pending.approval_id, Approver("sam", "supervisor"), "customer's claim checked"
        )
        resumed = await rt.resume(run.id)
        outcome = await resumed.resume_pending()
        if outcome is not None:
            out.calls.append(("approved by sam (supervisor), then resumed", outcome))
        run = resumed
    await run.complete("walkthrough finished")
    out.state = run.state
    out.report = rt.verify_audit()
    return out
