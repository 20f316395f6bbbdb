"""The approval queue, live, and deciding from it: approve or deny with a reason."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from proctor.errors import Forbidden
from proctor.server import views
from proctor.server.deciding import Resumer, decide_and_resume
from proctor.server.pages._base import (
    PageProblem,
    PageUser,
    User,
    render_fragment,
    render_page,
    router,
    runtime_of,
)
from proctor.server.session import check_csrf
from proctor.states import ApprovalStatus

# -- approvals ----------------------------------------------------------------------------


def _queue(request: Request, user: PageUser) -> dict[str, Any]:
    runtime = runtime_of(request)
    pending = runtime.approvals.list(tenant=user.token.tenant, status=ApprovalStatus.PENDING)
    with runtime.store.read() as conn:
        items = views.approval_queue(conn, pending, user.token)
    return {
        "items": items,
        "version": views.queue_version(pending),
        "csrf": user.session.csrf,
        "verdict_help": VERDICT_HELP,
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
def approvals_page(request: Request, user: User) -> HTMLResponse:
    return render_page(request, user, "approvals.html", **_queue(request, user))


@router.get("/approvals/live")
def approvals_live(request: Request, user: User) -> HTMLResponse:
    return render_fragment(request, "_queue.html", **_queue(request, user))


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
