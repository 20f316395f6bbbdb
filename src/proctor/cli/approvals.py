"""``proctor approvals``: the queue of calls waiting for a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer

from proctor.approvals import ApprovalRequest, Approver
from proctor.cli._common import (
    APP_OPTION,
    compact_table,
    console,
    fails_clearly,
    full_id,
    print_json,
    run_async,
    runtime,
    shortened,
    when,
)
from proctor.runtime import Runtime
from proctor.states import ApprovalStatus

app = typer.Typer(
    help="List, approve and deny calls that policy holds for approval.", no_args_is_help=True
)


@app.command("list")
@fails_clearly
def list_(
    tenant: str | None = typer.Option(None, help="Only this tenant's requests."),
    all_: bool = typer.Option(False, "--all", help="Decided and expired requests too."),
    as_json: bool = typer.Option(False, "--json", help="Print the requests as JSON (full ids)."),
) -> None:
    """Show approval requests, oldest first. Ids are shown by their shortest unique start,
    which `approve` and `deny` accept."""
    rt = runtime(None)
    now = rt.clock.now()
    requests = rt.approvals.list(tenant=tenant, status=None if all_ else ApprovalStatus.PENDING)
    if as_json:
        print_json([_request_json(r, now) for r in requests])
        return
    if not requests:
        console.print("No approval requests.")
        return
    short = shortened(rt, "apr", (r.id for r in requests))
    runs = shortened(rt, "run", {r.run_id for r in requests})
    wide = console.width >= 100  # room for the run and the tenant
    extra = ("run", "tenant") if wide else ()
    table = compact_table("request", "tool", "needs", *extra, "status", "expires")
    today = now.date()
    for r in requests:
        status = "overdue" if r.overdue(now) else r.status.value
        if r.decided_by:
            status += f" by {r.decided_by}"
        table.add_row(
            short[r.id],
            r.tool,
            " or ".join(r.roles),
            *((f"{runs[r.run_id]}/{r.step}", r.tenant) if wide else ()),
            status,
            when(r.expires_at, today),
        )
    console.print(table)


def _request_json(r: ApprovalRequest, now: datetime) -> dict[str, Any]:
    return {
        "id": r.id,
        "run_id": r.run_id,
        "step": r.step,
        "tenant": r.tenant,
        "tool": r.tool,
        "roles": list(r.roles),
        "policy_ids": list(r.policy_ids),
        "requester": r.requester,
        "agent": r.agent,
        "status": "overdue" if r.overdue(now) else r.status.value,
        "created_at": r.created_at.isoformat(),
        "expires_at": r.expires_at.isoformat(),
        "decided_by": r.decided_by,
        "decider_role": r.decider_role,
        "decision_reason": r.decision_reason,
    }


def _decide(
    rt: Runtime,
    approval_id: str,
    verdict: ApprovalStatus,
    name: str,
    role: str,
    reason: str,
    resume: bool,
) -> None:
    approver = Approver(name, role)
    decide = rt.approvals.approve if verdict is ApprovalStatus.APPROVED else rt.approvals.deny
    request = decide(full_id(rt, "apr", approval_id), approver, reason)
    console.print(f"{request.id} {verdict.value} by {name} ({role}).")
    if not resume:
        console.print(
            f"Run {request.run_id} is ready to resume, by a worker with its tools:\n"
            f"  proctor run --resume {request.run_id}   (an agent run)\n"
            f"  proctor runs resume {request.run_id} --app MODULE:APP   (code of your own)"
        )
        return
    run = run_async(rt.resume(request.run_id))
    outcome = run_async(run.resume_pending())
    run_async(run.release())  # the agent's own worker continues it from here
    if outcome is not None:
        console.print(
            f"Run {run.id} resumed: step {outcome.step} ({outcome.tool}) {outcome.status.value}."
        )


@app.command("approve")
@fails_clearly
def approve(
    approval_id: str = typer.Argument(
        ..., help="The request's id, or its start (see `proctor approvals list`)."
    ),
    as_: str = typer.Option(..., "--as", help="Your name, as it goes into the audit log."),
    role: str = typer.Option(..., help="The role you approve in; the policy names which."),
    reason: str = typer.Option(..., help="Why; it goes into the audit log."),
    app_ref: str | None = APP_OPTION,
) -> None:
    """Approve a call; with --app (or PROCTOR_APP) the run resumes here and the call runs once."""
    rt = runtime(app_ref)
    _decide(rt, approval_id, ApprovalStatus.APPROVED, as_, role, reason, app_ref is not None)


@app.command("deny")
@fails_clearly
def deny(
    approval_id: str = typer.Argument(
        ..., help="The request's id, or its start (see `proctor approvals list`)."
    ),
    as_: str = typer.Option(..., "--as", help="Your name, as it goes into the audit log."),
    role: str = typer.Option(..., help="The role you decide in; the policy names which."),
    reason: str = typer.Option(..., help="Why; it goes into the audit log."),
    app_ref: str | None = APP_OPTION,
) -> None:
    """Deny a call: it never runs, and the run continues without it."""
    rt = runtime(app_ref)
    _decide(rt, approval_id, ApprovalStatus.DENIED, as_, role, reason, app_ref is not None)


@app.command("expire")
@fails_clearly
def expire() -> None:
    """Expire overdue requests; their runs are handed off to a person."""
    count = runtime(None).approvals.expire_overdue()
    console.print(f"Expired {count} overdue approval request(s).")
