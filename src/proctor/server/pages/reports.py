"""Costs with charts, and the eval reports under the proctor home."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from proctor.errors import Forbidden
from proctor.server import queries, views
from proctor.server.pages._base import (
    REPORT_CSP,
    PageProblem,
    PageUser,
    User,
    asked_moment,
    asked_name,
    render_page,
    router,
    runtime_of,
    tenant_scope,
)
from proctor.server.params import Identifier

# -- costs --------------------------------------------------------------------------------


@router.get("/costs")
def costs_page(
    request: Request,
    user: User,
    tenant: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> HTMLResponse:
    token = user.token
    if token.tenant is not None and tenant not in (None, "", token.tenant):
        raise PageProblem(404, f"no tenant {tenant} for {token.name}")
    with runtime_of(request).store.read() as conn:
        view = views.cost_view(
            conn,
            tenant_scope(token, asked_name(tenant, "tenant")),
            asked_moment(since, "since"),
            asked_moment(until, "until"),
        )
    asked = {"tenant": tenant or "", "since": since or "", "until": until or ""}
    return render_page(
        request,
        user,
        "costs.html",
        v=view,
        asked=asked,
        outlier_score=queries.OUTLIER_SCORE,
        outlier_min_runs=queries.MIN_RUNS_FOR_OUTLIERS,
    )


# -- eval reports -------------------------------------------------------------------------


def _reports_home(request: Request, user: PageUser) -> Path:
    if user.token.tenant is not None:
        # Reports cover the whole deployment's scenario bank, not one tenant's runs.
        raise Forbidden(
            f"eval reports cover every tenant; {user.token.name} is confined to {user.token.tenant}"
        )
    return runtime_of(request).settings.home


@router.get("/evals")
def evals_page(request: Request, user: User) -> HTMLResponse:
    home = _reports_home(request, user)
    return render_page(
        request,
        user,
        "evals.html",
        reports=views.list_reports(home),
        folder=views.reports_dir(home),
    )


def _report(request: Request, user: PageUser, name: str) -> views.ReportEntry:
    entry = views.load_report(_reports_home(request, user), name)
    if entry is None:
        raise PageProblem(404, f"no eval report {name}; the eval reports page lists them")
    return entry


@router.get("/evals/{name}")
def eval_page(request: Request, user: User, name: Identifier) -> HTMLResponse:
    return render_page(request, user, "eval.html", e=_report(request, user, name))


@router.get("/evals/{name}/report.html")
def eval_html(request: Request, user: User, name: Identifier) -> Response:
    entry = _report(request, user, name)
    if entry.html_path is None:
        raise PageProblem(404, f"eval report {name} has no HTML report beside it")
    response = FileResponse(entry.html_path, media_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = REPORT_CSP
    return response


_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@router.get("/evals/{name}/runs/{run_id}")
def eval_run_link(name: Identifier, run_id: Identifier) -> RedirectResponse:
    """The HTML report links runs relatively (``runs/ID``): send them to the timeline."""
    if not _RUN_ID.match(run_id):
        raise PageProblem(404, f"no run {run_id}")
    return RedirectResponse(f"/runs/{run_id}", status_code=303)
