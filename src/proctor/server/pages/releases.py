"""The releases page: the stable release and the canary, their SLO figures against their
targets, what a shadow or dry-run candidate did, every transition, and the rollback switch.

Releases belong to the deployment, not a tenant: the page and its switch are for tokens
that see every tenant; rolling back needs an admin's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from proctor.errors import Forbidden
from proctor.releases.registry import transitions
from proctor.releases.reports import dry_run_report, shadow_report
from proctor.runs.views import RunFilter, count_runs
from proctor.server.pages._base import PageProblem, PageUser, User, render_page, router, runtime_of
from proctor.server.session import check_csrf
from proctor.server.tokens import Role


def _deployment_wide(user: PageUser) -> None:
    if user.token.tenant is not None:
        raise Forbidden(
            f"releases are the deployment's: {user.token.name} is scoped to tenant "
            f"{user.token.tenant}; use a token that sees every tenant"
        )


@router.get("/releases")
def releases_page(request: Request, user: User) -> HTMLResponse:
    _deployment_wide(user)
    runtime = runtime_of(request)
    channels = runtime.releases.channels()
    releases = {r.id: r for r in runtime.releases.all()}
    verdict = runtime.monitor.verdict()
    with runtime.store.read() as conn:
        counts = {rid: count_runs(conn, RunFilter(release=rid)) for rid in releases}
        shadowed = shadow_report(conn, channels.shadow.release) if channels.shadow else None
        decided = dry_run_report(conn, channels.dry_run.release) if channels.dry_run else None
        history = list(reversed(transitions(conn)))
    breach = next((t for t in history if t.kind == "release.slo_breached"), None)
    context: dict[str, Any] = {
        "channels": channels,
        "releases": releases,
        "counts": counts,
        "verdict": verdict,
        "shadowed": shadowed,
        "decided": decided,
        "history": history[:30],
        "breach": breach,
        "admin": user.token.role is Role.ADMIN,
    }
    return render_page(request, user, "releases.html", **context)


@router.post("/releases/rollback")
def rollback(
    request: Request,
    user: User,
    reason: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, user.session.csrf, csrf)
    _deployment_wide(user)
    if user.token.role is not Role.ADMIN:
        raise Forbidden(
            f"rolling back needs an admin token; {user.token.name} is {user.token.role}"
        )
    if not reason.strip():
        raise PageProblem(422, "say why you roll back; it goes into the audit log")
    runtime = runtime_of(request)
    was = runtime.releases.rollback(user.token.name, reason.strip())
    runtime.serving.changed()
    stable = runtime.releases.channels().stable
    user.session.flash(
        "ok", f"Rolled back {was}: {stable.release if stable else '-'} serves every new run."
    )
    return RedirectResponse("/releases", status_code=303)
