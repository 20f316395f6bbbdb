"""``proctor approvals``: the queue of calls waiting for a person."""

from __future__ import annotations

import typer
from rich.table import Table

from proctor.approvals import Approver
from proctor.cli._common import APP_OPTION, console, fails_clearly, run_async, runtime
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
) -> None:
    """Show approval requests, oldest first."""
    rt = runtime(None)
    now = rt.clock.now()
    requests = rt.approvals.list(tenant=tenant, status=None if all_ else ApprovalStatus.PENDING)
    table = Table(title="Approval requests")
    for column in (
        "id",
        "run",
        "step",
        "tenant",
        "tool",
        "needs role",
        "requested by",
        "status",
        "expires",
    ):
        table.add_column(column, no_wrap=column in ("id", "run"))
    for r in requests:
        status = "overdue" if r.overdue(now) else r.status.value
        if r.decided_by:
            status += f" by {r.decided_by}"
        table.add_row(
            r.id,
            r.run_id,
            str(r.step),
            r.tenant,
            r.tool,
            " or ".join(r.roles),
            r.requester,
            status,
            f"{r.expires_at:%Y-%m-%d %H:%M}",
        )
    console.print(table if requests else "No approval requests.")


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
    request = decide(approval_id, approver, reason)
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
    approval_id: str = typer.Argument(..., help="The request's id (see `proctor approvals list`)."),
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
    approval_id: str = typer.Argument(..., help="The request's id (see `proctor approvals list`)."),
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
