"""The runs page (with filters) and a run's timeline, live while the run is active."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from proctor.errors import RunNotFound
from proctor.runs.views import RunFilter, RunView, count_runs, list_runs, load_run, run_tenant
from proctor.server import views
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
from proctor.states import Reason, RunState

# -- runs ---------------------------------------------------------------------------------

MAX_SEARCH = 200


SORTS = {
    "newest": "newest first",
    "oldest": "oldest first",
    "cost": "costliest first",
    "duration": "longest first",
}


@router.get("/runs")
def runs_page(
    request: Request,
    user: User,
    q: str | None = None,
    tenant: str | None = None,
    workflow: str | None = None,
    state: str | None = None,
    reason: str | None = None,
    since: str | None = None,
    until: str | None = None,
    cost_above: str | None = None,
    sort: str | None = None,
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
    if sort and sort not in SORTS:
        raise PageProblem(400, f"sort by {', '.join(SORTS)}; not {sort!r}")
    text = (q or "").strip()
    if len(text) > MAX_SEARCH:
        raise PageProblem(400, f"search for at most {MAX_SEARCH} characters")
    token = user.token
    f = RunFilter(
        tenant_scope(token, asked_name(tenant, "tenant")),
        asked_name(workflow, "workflow"),
        asked_choice(RunState, state, "state"),
        asked_choice(Reason, reason, "reason"),
        asked_moment(since, "since"),
        asked_moment(until, "until"),
        cost_above=threshold,
        text=text or None,
        release=asked_name(release, "release"),
    )
    offset = (page - 1) * PAGE_SIZE
    found: list[RunView] = []
    total = 0
    if token.tenant is None or tenant in (None, "", token.tenant):
        with runtime_of(request).store.read() as conn:
            total = count_runs(conn, f)
            found = list_runs(conn, f, limit=PAGE_SIZE, offset=offset, order=sort or "newest")
    asked = {
        "q": text,
        "tenant": tenant or "",
        "workflow": workflow or "",
        "state": state or "",
        "reason": reason or "",
        "since": since or "",
        "until": until or "",
        "cost_above": cost_above or "",
        "sort": sort or "",
        "release": release or "",
    }
    kept = {k: v for k, v in asked.items() if v}
    pages = max(1, -(-total // PAGE_SIZE))

    def sorted_by(order: str) -> str:
        return "/runs?" + urlencode(
            {k: v for k, v in kept.items() if k != "sort"} | {"sort": order}
        )

    return render_page(
        request,
        user,
        "runs.html",
        runs=found,
        total=total,
        asked=asked,
        states=list(RunState),
        reasons=list(Reason),
        sorts=SORTS,
        sort_url={order: sorted_by(order) for order in SORTS},
        page=page,
        pages=pages,
        prev_url=f"/runs?{urlencode(kept | {'page': page - 1})}" if page > 1 else None,
        next_url=f"/runs?{urlencode(kept | {'page': page + 1})}" if page < pages else None,
    )


def _timeline(request: Request, user: PageUser, run_id: str) -> views.Timeline:
    runtime = runtime_of(request)
    with runtime.store.read() as conn:
        tenant = run_tenant(conn, run_id)
        if tenant is None or not user.token.sees(tenant):
            raise RunNotFound(f"no run {run_id}")
        run = load_run(conn, run_id)
    return views.timeline(run, runtime.clock.now())


@router.get("/runs/{run_id}")
def run_page(request: Request, user: User, run_id: Identifier) -> HTMLResponse:
    return render_page(request, user, "run.html", t=_timeline(request, user, run_id))


@router.get("/runs/{run_id}/live")
def run_live(request: Request, user: User, run_id: Identifier) -> HTMLResponse:
    return render_fragment(request, "_timeline.html", t=_timeline(request, user, run_id))
