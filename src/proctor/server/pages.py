"""The service's pages: server-rendered HTML over the same store and rules as the API.

Runs (with filters), a run's timeline, the approval queue (approve or deny, live), costs
with charts, and the eval reports. A person logs in once with a bearer token and then
holds a session cookie (see ``session.py``). Every page applies the API's rules: a
tenant-scoped token sees only its tenant, viewers only read, and a decision goes
through ``decide_and_resume`` exactly as the API's does. Errors are shown on a page,
with the same message the API would give.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode

import jinja2
import orjson
from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from proctor.errors import Forbidden, ProctorError, RunNotFound
from proctor.runtime import Runtime
from proctor.server import queries, views
from proctor.server.deciding import Resumer, decide_and_resume
from proctor.server.schemas import RunPage
from proctor.server.session import (
    COOKIE,
    LIFETIME,
    LOGIN_COOKIE,
    CsrfRejected,
    Session,
    Sessions,
    check_csrf,
    clear_cookie,
    set_cookie,
)
from proctor.server.tokens import ApiToken, Role, hash_secret, live_token, verify_token
from proctor.states import ApprovalStatus, Reason, RunState

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
PAGE_SIZE = 50
RUN_REFRESH_MS = 2000
QUEUE_REFRESH_MS = 4000

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
"""For a stored HTML eval report: its own inline styles, and nothing that runs."""


# -- formatting ---------------------------------------------------------------------------


def money(value: Decimal | float | int | None) -> str:
    """USD for people: cents when large, more digits for the fractions models cost."""
    d = Decimal(str(value or 0))
    if d == 0:
        return "$0.00"
    if abs(d) >= 1:
        return f"${d:,.2f}"
    if abs(d) >= Decimal("0.01"):
        return f"${d:.4f}"
    return f"${d:.6f}"


def when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def took(value: timedelta | float | None) -> str:
    """A duration: ms under a second, then s, min, h."""
    if value is None:
        return ""
    s = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def stamp(seconds: float) -> str:
    """A file's modification time (seconds since the epoch), in UTC."""
    return when(datetime.fromtimestamp(seconds, UTC))


def pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is escaped, whatever the template's name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=money, when=when, took=took, pretty=pretty, stamp=stamp)
    env.globals.update(RUN_REFRESH_MS=RUN_REFRESH_MS, QUEUE_REFRESH_MS=QUEUE_REFRESH_MS)
    return env


templates = Jinja2Templates(env=_environment())


# -- who is asking ------------------------------------------------------------------------


@dataclass(frozen=True)
class PageUser:
    token: ApiToken
    session: Session

    @property
    def decides(self) -> bool:
        return self.token.role in (Role.APPROVER, Role.ADMIN)


class _LoginNeeded(Exception):
    pass


class _PageProblem(Exception):
    """Shown as an error page with this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


def _user(request: Request) -> PageUser:
    """The logged-in person, with their token as it is now; else off to the login page."""
    sessions = _sessions(request)
    session_id = request.cookies.get(COOKIE)
    session = sessions.get(session_id)
    if session is None:
        raise _LoginNeeded
    token = live_token(_runtime(request).store, session.token_hash)
    if token is None:  # revoked since login: the session ends with it
        sessions.end(session_id)
        raise _LoginNeeded
    user = PageUser(token, session)
    request.state.page_user = user
    return user


User = Annotated[PageUser, Depends(_user)]


def _scope(token: ApiToken, asked: str | None) -> str | None:
    return token.tenant if token.tenant is not None else asked


# -- rendering ----------------------------------------------------------------------------


def _page(
    request: Request, user: PageUser | None, name: str, code: int = 200, **context: Any
) -> HTMLResponse:
    pending = 0
    if user is not None:
        with _runtime(request).store.read() as conn:
            pending = views.pending_count(conn, user.token.tenant)
    base = {
        "user": user,
        "csrf": user.session.csrf if user else "",
        "flashes": user.session.take_flashes() if user else [],
        "pending": pending,
        "path": request.url.path,
    }
    return templates.TemplateResponse(request, name, base | context, status_code=code)


def _fragment(request: Request, name: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context)


def _error_page(request: Request, status: int, message: str) -> HTMLResponse:
    user: PageUser | None = getattr(request.state, "page_user", None)
    try:
        return _page(request, user, "error.html", status, status=status, message=message)
    except Exception:  # the store is down, say: still answer with the message
        log.exception("the error page could not be rendered")
        return HTMLResponse(f"<h1>{status}</h1>", status_code=status)


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


class _PageRoute(APIRoute):
    """Page routes answer in HTML whatever goes wrong, and send security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except _LoginNeeded:
                if request.url.path.endswith("/live"):
                    response = Response(status_code=401)  # the script reloads, to log in
                else:
                    response = _login_redirect(request)
            except CsrfRejected as exc:
                response = await run_in_threadpool(_error_page, request, 403, str(exc))
            except _PageProblem as exc:
                response = await run_in_threadpool(_error_page, request, exc.status, str(exc))
            except ProctorError as exc:
                response = await run_in_threadpool(_error_page, request, exc.http_status, str(exc))
            except RequestValidationError as exc:
                problems = "; ".join(str(e.get("msg", "invalid")) for e in exc.errors())
                response = await run_in_threadpool(_error_page, request, 400, problems)
            except Exception:
                log.exception("page %s failed", request.url.path)
                response = await run_in_threadpool(
                    _error_page, request, 500, "internal error; the server log has the details"
                )
            response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["X-Frame-Options"] = "DENY"
            response.headers["Referrer-Policy"] = "same-origin"
            response.headers["Cache-Control"] = "no-store"
            return response

        return guarded


router = APIRouter(route_class=_PageRoute, include_in_schema=False)


def install_pages(app: FastAPI) -> None:
    """Add the pages and their static files to the service (``create_app`` calls it)."""
    runtime: Runtime = app.state.runtime
    app.state.sessions = Sessions(runtime.clock.now)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")


# -- login --------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/runs"
    return target


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/runs", status_code=303)


def _login_form(
    request: Request, next_path: str, error: str | None = None, status: int = 200
) -> HTMLResponse:
    form_token = secrets.token_urlsafe(32)
    response = _page(
        request, None, "login.html", status, form_token=form_token, next=next_path, error=error
    )
    set_cookie(response, request, LOGIN_COOKIE, form_token, max_age=3600)
    return response


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    if _sessions(request).get(request.cookies.get(COOKIE)) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_form(request, _safe_next(next))


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, request.cookies.get(LOGIN_COOKIE) or "", csrf)
    secret = token.strip()
    found = verify_token(_runtime(request).store, secret) if secret else None
    if found is None:
        return _login_form(request, _safe_next(next), "That token is unknown or revoked.", 401)
    sessions = _sessions(request)
    sessions.end(request.cookies.get(COOKIE))
    session_id, _ = sessions.open(hash_secret(secret), found.name)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_cookie(response, request, COOKIE, session_id, max_age=int(LIFETIME.total_seconds()))
    clear_cookie(response, request, LOGIN_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, user: User, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, user.session.csrf, csrf)
    _sessions(request).end(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    clear_cookie(response, request, COOKIE)
    return response


# -- runs ---------------------------------------------------------------------------------


_E = TypeVar("_E", RunState, Reason)


def _choice(kind: type[_E], raw: str | None, what: str) -> _E | None:
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise _PageProblem(400, f"no {what} {raw!r}; choose one from the list") from None


def _moment(raw: str | None, what: str) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise _PageProblem(400, f"{what} {raw!r} is not a date (YYYY-MM-DD)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
    page: int = 1,
) -> HTMLResponse:
    page = max(page, 1)
    threshold: Decimal | None = None
    if cost_above:
        try:
            threshold = Decimal(cost_above)
        except InvalidOperation:
            threshold = Decimal(-1)
        if not threshold.is_finite() or threshold < 0:
            raise _PageProblem(400, f"cost above {cost_above!r} is not an amount in USD")
    token = user.token
    f = queries.RunFilter(
        _scope(token, tenant or None),
        workflow or None,
        _choice(RunState, state, "state"),
        _choice(Reason, reason, "reason"),
        _moment(since, "since"),
        _moment(until, "until"),
        threshold,
    )
    offset = (page - 1) * PAGE_SIZE
    if token.tenant is not None and tenant not in (None, "", token.tenant):
        result = RunPage(items=[], total=0, limit=PAGE_SIZE, offset=offset)
    else:
        with _runtime(request).store.read() as conn:
            result = queries.list_runs(conn, f, PAGE_SIZE, offset)
    asked = {
        "tenant": tenant or "",
        "workflow": workflow or "",
        "state": state or "",
        "reason": reason or "",
        "since": since or "",
        "until": until or "",
        "cost_above": cost_above or "",
    }
    kept = {k: v for k, v in asked.items() if v}
    pages = max(1, -(-result.total // PAGE_SIZE))
    return _page(
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
    with _runtime(request).store.read() as conn:
        tenant = queries.run_tenant(conn, run_id)
        if tenant is None or not user.token.sees(tenant):
            raise RunNotFound(f"no run {run_id}")
        return views.timeline(conn, run_id)


@router.get("/runs/{run_id}")
def run_page(request: Request, user: User, run_id: str) -> HTMLResponse:
    return _page(request, user, "run.html", t=_timeline(request, user, run_id))


@router.get("/runs/{run_id}/live")
def run_live(request: Request, user: User, run_id: str) -> HTMLResponse:
    return _fragment(request, "_timeline.html", t=_timeline(request, user, run_id))


# -- approvals ----------------------------------------------------------------------------


def _queue(request: Request, user: PageUser) -> dict[str, Any]:
    runtime = _runtime(request)
    pending = runtime.approvals.list(tenant=user.token.tenant, status=ApprovalStatus.PENDING)
    with runtime.store.read() as conn:
        items = views.approval_queue(conn, pending, user.token)
    return {"items": items, "version": views.queue_version(pending), "csrf": user.session.csrf}


@router.get("/approvals")
def approvals_page(request: Request, user: User) -> HTMLResponse:
    return _page(request, user, "approvals.html", **_queue(request, user))


@router.get("/approvals/live")
def approvals_live(request: Request, user: User) -> HTMLResponse:
    return _fragment(request, "_queue.html", **_queue(request, user))


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
        raise _PageProblem(422, "give a reason for the decision; it goes into the audit log")
    resumer: Resumer = request.app.state.resumer
    result = await decide_and_resume(
        _runtime(request), resumer, approval_id, user.token, reason, role or None, verdict
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
        raise _PageProblem(404, f"no tenant {tenant} for {token.name}")
    with _runtime(request).store.read() as conn:
        view = views.cost_view(
            conn,
            _scope(token, tenant or None),
            _moment(since, "since"),
            _moment(until, "until"),
        )
    asked = {"tenant": tenant or "", "since": since or "", "until": until or ""}
    return _page(
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
    return _runtime(request).settings.home


@router.get("/evals")
def evals_page(request: Request, user: User) -> HTMLResponse:
    home = _reports_home(request, user)
    return _page(
        request,
        user,
        "evals.html",
        reports=views.list_reports(home),
        folder=views.reports_dir(home),
    )


def _report(request: Request, user: PageUser, name: str) -> views.ReportEntry:
    entry = views.load_report(_reports_home(request, user), name)
    if entry is None:
        raise _PageProblem(404, f"no eval report {name}; the eval reports page lists them")
    return entry


@router.get("/evals/{name}")
def eval_page(request: Request, user: User, name: str) -> HTMLResponse:
    return _page(request, user, "eval.html", e=_report(request, user, name))


@router.get("/evals/{name}/report.html")
def eval_html(request: Request, user: User, name: str) -> Response:
    entry = _report(request, user, name)
    if entry.html_path is None:
        raise _PageProblem(404, f"eval report {name} has no HTML report beside it")
    response = FileResponse(entry.html_path, media_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = REPORT_CSP
    return response


_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@router.get("/evals/{name}/runs/{run_id}")
def eval_run_link(name: str, run_id: str) -> RedirectResponse:
    """The HTML report links runs relatively (``runs/ID``): send them to the timeline."""
    if not _RUN_ID.match(run_id):
        raise _PageProblem(404, f"no run {run_id}")
    return RedirectResponse(f"/runs/{run_id}", status_code=303)
