"""Security headers on every answer of the service, whichever part of it answers.

Pages set their own Content-Security-Policy (``pages._base.PAGE_CSP``: scripts and
styles from ``/static`` only, nothing inline) and the API docs theirs (Swagger UI's
assets served from the installed package, no network needed, and its one inline script
by hash); every other answer (JSON, ``/metrics``,
static files, errors) gets ``API_CSP``, which lets nothing load or run. Nothing may
frame the service, nothing is sniffed, no Referer leaves it, and no answer but a static
file is cached: the answers hold runs, approvals and costs.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proctor.errors import missing_extra

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
"""For answers that are not pages: nothing loads, nothing runs, nothing frames them."""
STATIC_PREFIXES = ("/static/", "/api/v1/docs/assets/")
"""Files that never change while a version runs: the only answers a browser may cache."""
DOCS_ASSETS = STATIC_PREFIXES[1]

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
        static = str(scope.get("path", "")).startswith(STATIC_PREFIXES)

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


def swagger_ui_assets() -> Path:
    """Swagger UI's script, stylesheet and icon, as the fastapi-offline package ships
    them (a current Swagger UI 5, which reads the OpenAPI 3.1 FastAPI writes)."""
    try:
        import fastapi_offline
    except ModuleNotFoundError as exc:
        raise missing_extra("server", exc.name, "the API docs page") from exc
    return Path(fastapi_offline.__file__).parent / "static"


def install_docs(app: FastAPI, docs_url: str, openapi_url: str) -> None:
    """The API's interactive docs (Swagger UI) under a policy that admits exactly them,
    its files served by the service itself: the page works without the internet."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_assets()), name="docs-assets")
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{app.title} API",
        swagger_js_url=f"{DOCS_ASSETS}swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}favicon.png",
    )
    body = bytes(page.body).decode()
    csp = (
        f"default-src 'none'; script-src 'self' {_script_hashes(body)}; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )

    async def docs() -> HTMLResponse:
        return HTMLResponse(body, headers={"Content-Security-Policy": csp})

    app.add_api_route(docs_url, docs, methods=["GET"], include_in_schema=False)
