"""Page sessions: log in once with a bearer token, then a cookie; and CSRF checks.

Sessions are kept server-side, in this process's memory, keyed by the SHA-256 of a
random id that is the cookie's only content. Chosen over signed cookies because
logging out then really ends a session (a copied signed cookie would stay valid until
it expires) and because no key has to be derived or rotated. The cost: a restart logs
everyone out, and several service processes need sticky sessions; ``proctor serve``
runs one process, and the pages are an operator's console, so both are acceptable.

A session remembers the hash of the token it was opened with, never the token; every
request looks the token up again (see ``tokens.live_token``), so revoking a token, or
changing its role, takes effect at the next request. Sessions end after
``LIFETIME`` in any case, or after ``IDLE`` without a request.

The cookie is HttpOnly, SameSite=Lax, Path=/, and Secure, unless the service was built
to serve plain HTTP on loopback (``proctor serve --insecure-http-on-loopback``). Lax
rather than Strict so that a link to an approval (in a chat message or an
e-mail) opens it while logged in; every change is a POST, which Lax never carries
across sites, and every POST also checks a per-session CSRF token (constant-time) and
the Origin or Referer header when the browser sends one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "proctor_session"
LOGIN_COOKIE = "proctor_login"
"""A pre-session cookie for the login form's CSRF token (double submit)."""
LIFETIME = timedelta(hours=8)
IDLE = timedelta(hours=1)
MAX_SESSIONS = 10_000
"""A bound on memory: at the limit, the oldest sessions end first."""


class CsrfRejected(Exception):
    """A form post that did not prove it came from a page of this service."""


@dataclass
class Session:
    token_hash: str
    """The SHA-256 of the token it was opened with (the api_tokens row's hash)."""
    token_name: str
    csrf: str
    created_at: datetime
    last_seen: datetime
    flashes: list[tuple[str, str]] = field(default_factory=list)
    """Messages for the next page shown: (kind, text), kind ``ok`` or ``error``."""

    def flash(self, kind: str, text: str) -> None:
        self.flashes.append((kind, text))

    def take_flashes(self) -> list[tuple[str, str]]:
        taken, self.flashes = self.flashes, []
        return taken


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    """The live sessions of this process. Thread-safe: pages run in a thread pool."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._by_key: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, token_hash: str, token_name: str) -> tuple[str, Session]:
        """A new session (always a new id: no session fixation); returns the cookie value."""
        session_id = secrets.token_urlsafe(32)
        now = self._now()
        session = Session(token_hash, token_name, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._sweep(now)
            while len(self._by_key) >= MAX_SESSIONS:
                oldest = min(self._by_key, key=lambda k: self._by_key[k].created_at)
                del self._by_key[oldest]
            self._by_key[_key(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None (unknown, expired or idle too long)."""
        if not session_id:
            return None
        now = self._now()
        key = _key(session_id)
        with self._lock:
            session = self._by_key.get(key)
            if session is None:
                return None
            if now >= session.created_at + LIFETIME or now >= session.last_seen + IDLE:
                del self._by_key[key]
                return None
            session.last_seen = now
            return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._by_key.pop(_key(session_id), None)

    def __len__(self) -> int:
        return len(self._by_key)

    def _sweep(self, now: datetime) -> None:
        dead = [
            k
            for k, s in self._by_key.items()
            if now >= s.created_at + LIFETIME or now >= s.last_seen + IDLE
        ]
        for k in dead:
            del self._by_key[k]


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=_secure(request))


def _secure(request: Request) -> bool:
    """Secure unless the operator serves plain HTTP on loopback on purpose: behind a proxy
    that ends TLS the service sees http while the browser speaks https."""
    return not getattr(request.app.state, "insecure_http", False)


def check_origin(request: Request) -> None:
    """Refuse a post whose Origin (or, without one, Referer) is another site.

    Hosts are compared, not schemes: behind a proxy that ends TLS the service may see
    http while the browser says https. Neither header sent: the CSRF token decides.
    """
    own = request.headers.get("host", "")
    origin = request.headers.get("origin")
    if origin is not None:
        if origin == "null" or urlsplit(origin).netloc != own:
            raise CsrfRejected(f"the form was posted from another site ({origin})")
        return
    referer = request.headers.get("referer")
    if referer and urlsplit(referer).netloc != own:
        raise CsrfRejected("the form was posted from another site")


def check_csrf(request: Request, expected: str, given: str | None) -> None:
    """Refuse a post without this session's CSRF token, or from another site."""
    check_origin(request)
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfRejected(
            "the form's security token is missing or stale; reload the page and try again"
        )
