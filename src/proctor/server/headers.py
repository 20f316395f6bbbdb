"""Security headers on every answer of the service, whichever part of it answers.

Pages set their own Content-Security-Policy (``pages._base.PAGE_CSP``: scripts and
styles from ``/static`` only, nothing inline) and the API docs theirs (Swagger UI from
its CDN, and its one inline script by hash); every other answer (JSON, ``/metrics``,
static files, errors) gets ``API_CSP``, which lets nothing load or run. Nothing may
frame the service, nothing is sniffed, no Referer leaves it, and no answer but a static
file is cached: the answers hold runs, approvals and costs.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
"""For answers that are not pages: nothing loads, nothing runs, nothing frames them."""
SWAGGER_CDN = "https://cdn.jsdelivr.net"
STATIC_PREFIX = "/static/"

_FIXED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: a page's form post names its own page in Referer,
    # which the CSRF check compares when a browser sends no Origin.
    "Referrer-Policy": "same-origin",
}


class SecurityHeaders:
    """ASGI middleware: adds the headers to every HTTP answer, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(STATIC_PREFIX)

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _FIXED.items():
                    headers[name] = value
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = API_CSP
                if not static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_guarded)


def _script_hashes(html: str) -> str:
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in scripts
    )


def install_docs(app: FastAPI, docs_url: str, openapi_url: str) -> None:
    """The API's interactive docs (Swagger UI) under a policy that admits exactly them."""
    page = get_swagger_ui_html(openapi_url=openapi_url, title=f"{app.title} API")
    body = bytes(page.body).decode()
    csp = (
        f"default-src 'none'; script-src {SWAGGER_CDN} {_script_hashes(body)}; "
        f"style-src {SWAGGER_CDN} 'unsafe-inline'; img-src 'self' data: https:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )

    async def docs() -> HTMLResponse:
        return HTMLResponse(body, headers={"Content-Security-Policy": csp})

    app.add_api_route(docs_url, docs, methods=["GET"], include_in_schema=False)
