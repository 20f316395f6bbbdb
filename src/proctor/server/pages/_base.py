"""What every page shares: formatting, templates, who is asking, rendering, errors as pages."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import jinja2
import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from proctor.errors import ProctorError
from proctor.runtime import Runtime
from proctor.server import queue
from proctor.server.params import checked_moment, name_or_problem
from proctor.server.session import (
    COOKIE,
    CsrfRejected,
    Session,
    Sessions,
)
from proctor.server.tokens import ApiToken, Role, live_token
from proctor.states import Reason, RunState

log = logging.getLogger(__name__)

HERE = Path(__file__).parent.parent
"""The service's folder: ``templates/`` and ``static/``."""
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


def num(value: int | float | Decimal | None) -> str:
    """A count with thousands separators: 12,345."""
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def ago(seconds: float) -> str:
    """An age in the largest unit that fits: ``45 s``, ``12 min``, ``3 h``, ``2 d``."""
    s = max(0.0, float(seconds))
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s // 60:.0f} min"
    if s < 86400:
        return f"{s / 3600:.1f} h".replace(".0 h", " h")
    return f"{s / 86400:.1f} d".replace(".0 d", " d")


def percent(share: float) -> str:
    """A share as a percentage people read: ``0%``, ``<0.1%``, ``0.4%``, ``37%``, ``120%``."""
    value = share * 100
    if 0 < value < 0.1:
        return "<0.1%"
    if value == 0 or value >= 10:
        return f"{value:.0f}%"
    return f"{value:.1f}%"


def when_text(raw: str | datetime | None) -> str:
    """An ISO time (as eval manifests keep it) as the pages show times, in UTC."""
    if raw is None or isinstance(raw, datetime):
        return when(raw)
    try:
        return when(datetime.fromisoformat(raw))
    except ValueError:
        return raw


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
    env.filters.update(
        money=money,
        when=when,
        took=took,
        pretty=pretty,
        stamp=stamp,
        num=num,
        ago=ago,
        when_text=when_text,
        percent=percent,
    )
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


class LoginNeeded(Exception):
    pass


class PageProblem(Exception):
    """Shown as an error page with this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


def current_user(request: Request) -> PageUser:
    """The logged-in person, with their token as it is now; else off to the login page."""
    sessions = sessions_of(request)
    session_id = request.cookies.get(COOKIE)
    session = sessions.get(session_id)
    if session is None:
        raise LoginNeeded
    token = live_token(runtime_of(request).store, session.token_hash)
    if token is None:  # revoked since login: the session ends with it
        sessions.end(session_id)
        raise LoginNeeded
    user = PageUser(token, session)
    request.state.page_user = user
    return user


User = Annotated[PageUser, Depends(current_user)]


def tenant_scope(token: ApiToken, asked: str | None) -> str | None:
    return token.tenant if token.tenant is not None else asked


# -- rendering ----------------------------------------------------------------------------


def render_page(
    request: Request, user: PageUser | None, name: str, code: int = 200, **context: Any
) -> HTMLResponse:
    pending = 0
    if user is not None:
        with runtime_of(request).store.read() as conn:
            pending = queue.pending_count(conn, user.token.tenant)
    base = {
        "user": user,
        "csrf": user.session.csrf if user else "",
        "flashes": user.session.take_flashes() if user else [],
        "pending": pending,
        "path": request.url.path,
    }
    return templates.TemplateResponse(request, name, base | context, status_code=code)


def render_fragment(request: Request, name: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    user: PageUser | None = getattr(request.state, "page_user", None)
    try:
        return render_page(request, user, "error.html", status, status=status, message=message)
    except Exception:  # the store is down, say: still answer with the message
        log.exception("the error page could not be rendered")
        return HTMLResponse(f"<h1>{status}</h1>", status_code=status)


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


class PageRoute(APIRoute):
    """Page routes answer in HTML whatever goes wrong, and send security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginNeeded:
                if request.url.path.endswith("/live"):
                    response = Response(status_code=401)  # the script reloads, to log in
                else:
                    response = login_redirect(request)
            except CsrfRejected as exc:
                response = await run_in_threadpool(error_page, request, 403, str(exc))
            except PageProblem as exc:
                response = await run_in_threadpool(error_page, request, exc.status, str(exc))
            except ProctorError as exc:
                response = await run_in_threadpool(error_page, request, exc.http_status, str(exc))
            except RequestValidationError as exc:
                problems = "; ".join(str(e.get("msg", "invalid")) for e in exc.errors())
                response = await run_in_threadpool(error_page, request, 400, problems)
            except Exception:
                log.exception("page %s failed", request.url.path)
                response = await run_in_threadpool(
                    error_page, request, 500, "internal error; the server log has the details"
                )
            response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["X-Frame-Options"] = "DENY"
            response.headers["Referrer-Policy"] = "same-origin"
            response.headers["Cache-Control"] = "no-store"
            return response

        return guarded


router = APIRouter(route_class=PageRoute, include_in_schema=False)


# -- what was asked ----------------------------------------------------------------------


_E = TypeVar("_E", RunState, Reason)


def asked_choice(kind: type[_E], raw: str | None, what: str) -> _E | None:
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise PageProblem(400, f"no {what} {raw!r}; choose one from the list") from None


def asked_moment(raw: str | None, what: str) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise PageProblem(400, f"{what} {raw!r} is not a date (YYYY-MM-DD)") from None
    try:
        return checked_moment(moment)
    except ValueError as exc:
        raise PageProblem(400, f"{what}: {exc}") from None


def asked_name(raw: str | None, what: str) -> str | None:
    """A tenant or workflow from a filter form; empty means any."""
    if not raw:
        return None
    try:
        return name_or_problem(raw, what)
    except ValueError as exc:
        raise PageProblem(400, str(exc)) from None
