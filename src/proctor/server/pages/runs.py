"""The runs page (with filters) and a run's timeline, live while the run is active."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from proctor.errors import RunNotFound
from proctor.runs.views import RunFilter, load_run, run_tenant
from proctor.server import queries, views
from proctor.server.pages._base import (
    PAGE_SIZE,
    PageProblem,
    PageUser,
    User,
    asked_choice,
    asked_moment,
    asked_name,
    render_fragment,
    render_page,
    router,
    runtime_of,
    tenant_scope,
)
from proctor.server.params import MAX_OFFSET, MAX_USD, Identifier
from proctor.server.schemas import RunPage
from proctor.states import Reason, RunState

# -- runs ---------------------------------------------------------------------------------


@router.get("/runs")
def runs_page(
    request: Request,
    user: User,
    tenant: str | None = None,
    workflow: str | None = None,
    state: str | None = None,
    reason: str | None = None,
    since: str | None = None,
    until: str | None = None,
    cost_above: str | None = None,
    release: str | None = None,
    page: Annotated[int, Query(le=MAX_OFFSET // PAGE_SIZE)] = 1,
) -> HTMLResponse:
    page = max(page, 1)
    threshold: Decimal | None = None
    if cost_above:
        try:
            threshold = Decimal(cost_above)
        except InvalidOperation:
            threshold = Decimal(-1)
        if not threshold.is_finite() or threshold < 0:
            raise PageProblem(400, f"cost above {cost_above!r} is not an amount in USD")
        if threshold > MAX_USD:
            raise PageProblem(400, f"cost above: at most {MAX_USD} USD")
    token = user.token
    f = RunFilter(
        tenant_scope(token, asked_name(tenant, "tenant")),
        asked_name(workflow, "workflow"),
        asked_choice(RunState, state, "state"),
        asked_choice(Reason, reason, "reason"),
        asked_moment(since, "since"),
        asked_moment(until, "until"),
        cost_above=threshold,
        release=asked_name(release, "release"),
    )
    offset = (page - 1) * PAGE_SIZE
    if token.tenant is not None and tenant not in (None, "", token.tenant):
        result = RunPage(items=[], total=0, limit=PAGE_SIZE, offset=offset)
    else:
        with runtime_of(request).store.read() as conn:
            result = queries.list_runs(conn, f, PAGE_SIZE, offset)
    asked = {
        "tenant": tenant or "",
        "workflow": workflow or "",
        "state": state or "",
        "reason": reason or "",
        "since": since or "",
        "until": until or "",
        "cost_above": cost_above or "",
        "release": release or "",
    }
    kept = {k: v for k, v in asked.items() if v}
    pages = max(1, -(-result.total // PAGE_SIZE))
    return render_page(
        request,
        user,
        "runs.html",
        runs=result,
        asked=asked,
        states=list(RunState),
        reasons=list(Reason),
        page=page,
        pages=pages,
        prev_url=f"/runs?{urlencode(kept | {'page': page - 1})}" if page > 1 else None,
        next_url=f"/runs?{urlencode(kept | {'page': page + 1})}" if page < pages else None,
    )


def _timeline(request: Request, user: PageUser, run_id: str) -> views.Timeline:
    with runtime_of(request).store.read() as conn:
        tenant = run_tenant(conn, run_id)
        if tenant is None or not user.token.sees(tenant):
            raise RunNotFound(f"no run {run_id}")
        run = load_run(conn, run_id)
    return views.timeline(run)


@router.get("/runs/{run_id}")
def run_page(request: Request, user: User, run_id: Identifier) -> HTMLResponse:
    return render_page(request, user, "run.html", t=_timeline(request, user, run_id))


@router.get("/runs/{run_id}/live")
def run_live(request: Request, user: User, run_id: Identifier) -> HTMLResponse:
    return render_fragment(request, "_timeline.html", t=_timeline(request, user, run_id))
