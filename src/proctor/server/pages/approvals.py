"""The approval queue, live, and deciding from it: approve or deny with a reason."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from proctor.approvals import Approver
from proctor.errors import ApprovalNotFound, Forbidden
from proctor.server import queue
from proctor.server.deciding import Resumer, decide_and_resume
from proctor.server.pages._base import (
    PageProblem,
    PageUser,
    User,
    asked_name,
    render_fragment,
    render_page,
    router,
    runtime_of,
)
from proctor.server.params import Identifier
from proctor.server.queue import QueueFilter
from proctor.server.session import check_csrf
from proctor.states import ApprovalStatus

# -- approvals ----------------------------------------------------------------------------


def _filter(
    role: str | None, tenant: str | None, tool: str | None, tests: str | None
) -> QueueFilter:
    return QueueFilter(
        role=role or None,
        tenant=asked_name(tenant, "tenant"),
        tool=tool or None,
        tests=tests in ("1", "on", "true"),
    )


def _queue(request: Request, user: PageUser, f: QueueFilter) -> dict[str, Any]:
    runtime = runtime_of(request)
    pending = runtime.approvals.list(tenant=user.token.tenant, status=ApprovalStatus.PENDING)
    with runtime.store.read() as conn:
        q = queue.approval_queue(conn, pending, user.token, f)
    asked = {
        "role": f.role or "",
        "tenant": f.tenant or "",
        "tool": f.tool or "",
        "tests": "1" if f.tests else "",
    }
    query = urlencode({k: v for k, v in asked.items() if v})
    return {
        "q": q,
        "asked": asked,
        "live_url": "/approvals/live" + (f"?{query}" if query else ""),
        "now": runtime.clock.now(),
    }


VERDICT_HELP = {
    "trusted": "the requester's own words",
    "known": "a record the deployment trusts",
    "untrusted": "outside content: an email, a page, a message, a file",
    "ungrounded": "in nothing the run was given: the model made it up",
    "unknown": "too short to say",
}
"""What each provenance verdict tells an approver."""


@router.get("/approvals")
def approvals_page(
    request: Request,
    user: User,
    role: str | None = None,
    tenant: str | None = None,
    tool: str | None = None,
    tests: str | None = None,
) -> HTMLResponse:
    f = _filter(role, tenant, tool, tests)
    return render_page(request, user, "approvals.html", **_queue(request, user, f))


@router.get("/approvals/live")
def approvals_live(
    request: Request,
    user: User,
    role: str | None = None,
    tenant: str | None = None,
    tool: str | None = None,
    tests: str | None = None,
) -> HTMLResponse:
    f = _filter(role, tenant, tool, tests)
    return render_fragment(request, "_queue.html", **_queue(request, user, f))


@router.get("/approvals/{approval_id}")
def approval_page(request: Request, user: User, approval_id: Identifier) -> HTMLResponse:
    """One request in full. Whoever may decide it sees its arguments whole (the approval
    queue reveals them and logs it); everyone else sees them as stored."""
    runtime = runtime_of(request)
    found = runtime.approvals.get(approval_id)
    if not user.token.sees(found.tenant):
        raise ApprovalNotFound(f"no approval request {approval_id}")
    with runtime.store.read() as conn:
        item = queue.approval_card(conn, found, user.token)
    if item.can_decide and found.status is ApprovalStatus.PENDING:
        approver = Approver(user.token.name, item.roles[0])
        item = dataclasses.replace(item, revealed=runtime.approvals.reveal(found.id, approver))
    return render_page(
        request,
        user,
        "approval.html",
        i=item,
        now=runtime.clock.now(),
        verdict_help=VERDICT_HELP,
    )


async def _decide(
    request: Request,
    user: PageUser,
    approval_id: str,
    reason: str,
    role: str,
    csrf: str,
    verdict: ApprovalStatus,
) -> Response:
    check_csrf(request, user.session.csrf, csrf)
    if not user.decides:
        raise Forbidden(
            f"deciding needs a token with the role approver or admin; "
            f"{user.token.name} is {user.token.role}"
        )
    if not reason.strip():
        raise PageProblem(422, "give a reason for the decision; it goes into the audit log")
    resumer: Resumer = request.app.state.resumer
    result = await decide_and_resume(
        runtime_of(request), resumer, approval_id, user.token, reason, role or None, verdict
    )
    user.session.flash("ok", f"{verdict.value.capitalize()} {approval_id}: {result.message}")
    return RedirectResponse(f"/runs/{quote(result.run_id)}", status_code=303)


@router.post("/approvals/{approval_id}/approve")
async def approve(
    request: Request,
    user: User,
    approval_id: str,
    reason: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    return await _decide(request, user, approval_id, reason, role, csrf, ApprovalStatus.APPROVED)


@router.post("/approvals/{approval_id}/deny")
async def deny(
    request: Request,
    user: User,
    approval_id: str,
    reason: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    return await _decide(request, user, approval_id, reason, role, csrf, ApprovalStatus.DENIED)
