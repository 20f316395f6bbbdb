"""Costs with charts, and the eval reports under the proctor home."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from proctor.errors import Forbidden
from proctor.policy.settings import RunBudgetSettings
from proctor.server import evalcompare, queries, views
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
    runtime = runtime_of(request)
    today = runtime.clock.now().date().isoformat()
    # A service without the app's bundle knows no caps: it shows the use alone.
    bundle = runtime.services.bundle
    budgets = views.budget_use(
        today,
        runtime.ledger.usage_on(today),
        bundle.settings.budgets if bundle is not None else RunBudgetSettings(),
        tenant_scope(token, asked_name(tenant, "tenant")),
    )
    asked = {"tenant": tenant or "", "since": since or "", "until": until or ""}
    return render_page(
        request,
        user,
        "costs.html",
        v=view,
        budgets=budgets,
        today=today,
        asked=asked,
        outlier_score=queries.OUTLIER_SCORE,
        outlier_min_runs=queries.MIN_RUNS_FOR_OUTLIERS,
    )


# -- eval reports -------------------------------------------------------------------------

evals_list = views.list_reports


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
        reports=evals_list(home),
        folder=views.reports_dir(home),
    )


def _report(request: Request, user: PageUser, name: str) -> views.ReportEntry:
    entry = views.load_report(_reports_home(request, user), name)
    if entry is None:
        raise PageProblem(404, f"no eval report {name}; the eval reports page lists them")
    return entry


@router.get("/evals/compare")
def compare_page(
    request: Request, user: User, baseline: str | None = None, candidate: str | None = None
) -> HTMLResponse:
    """Two reports side by side, and what ``proctor eval gate`` decides for them."""
    home = _reports_home(request, user)
    reports = evals_list(home)
    if not baseline or not candidate:
        raise PageProblem(400, "choose a baseline and a candidate report to compare")
    before, after = _report(request, user, baseline), _report(request, user, candidate)
    for entry in (before, after):
        if entry.report is None:
            raise PageProblem(422, entry.problem or f"eval report {entry.name} cannot be read")
    assert before.report is not None
    assert after.report is not None
    return render_page(
        request,
        user,
        "compare.html",
        before=before,
        after=after,
        c=evalcompare.comparison(before.report, after.report),
        reports=reports,
    )


@router.get("/evals/{name}")
def eval_page(
    request: Request,
    user: User,
    name: Identifier,
    outcome: str | None = None,
    label: str | None = None,
    state: str | None = None,
    q: str | None = None,
) -> HTMLResponse:
    entry = _report(request, user, name)
    if outcome and outcome not in evalcompare.OUTCOMES:
        raise PageProblem(400, f"outcome is one of {', '.join(evalcompare.OUTCOMES)}")
    f = evalcompare.ScenarioFilter(outcome or None, label or None, state or None, q or None)
    report = entry.report
    return render_page(
        request,
        user,
        "eval.html",
        e=entry,
        results=evalcompare.scenarios(report, f) if report else [],
        labels=evalcompare.labels_of(report) if report else [],
        states=evalcompare.states_of(report) if report else [],
        asked={"outcome": outcome or "", "label": label or "", "state": state or "", "q": q or ""},
        others=[r for r in evals_list(_reports_home(request, user)) if r.name != name],
    )


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
