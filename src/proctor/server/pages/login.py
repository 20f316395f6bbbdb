"""Logging in with a bearer token, and out: a session cookie in between."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from proctor.server.pages._base import (
    User,
    render_page,
    router,
    runtime_of,
    sessions_of,
)
from proctor.server.session import (
    COOKIE,
    LIFETIME,
    LOGIN_COOKIE,
    check_csrf,
    clear_cookie,
    set_cookie,
)
from proctor.server.tokens import hash_secret, verify_token

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
    response = render_page(
        request, None, "login.html", status, form_token=form_token, next=next_path, error=error
    )
    set_cookie(response, request, LOGIN_COOKIE, form_token, max_age=3600)
    return response


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    if sessions_of(request).get(request.cookies.get(COOKIE)) is not None:
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
    found = verify_token(runtime_of(request).store, secret) if secret else None
    if found is None:
        return _login_form(request, _safe_next(next), "That token is unknown or revoked.", 401)
    sessions = sessions_of(request)
    sessions.end(request.cookies.get(COOKIE))
    session_id, _ = sessions.open(hash_secret(secret), found.name)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_cookie(response, request, COOKIE, session_id, max_age=int(LIFETIME.total_seconds()))
    clear_cookie(response, request, LOGIN_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, user: User, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, user.session.csrf, csrf)
    sessions_of(request).end(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    clear_cookie(response, request, COOKIE)
    return response
