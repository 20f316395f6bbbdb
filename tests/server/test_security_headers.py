"""Every answer of the service carries its security headers; the pages work under their
Content-Security-Policy (no inline script or style); the session cookie is Secure unless
the operator serves plain HTTP on loopback on purpose; /metrics needs a token unless it
is declared public."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from proctor.server.app import create_app

from .conftest import World
from .test_pages import BASE, login

API_PATHS = [
    ("/api/v1/runs", "root", 200),
    ("/api/v1/runs", None, 401),
    ("/api/v1/runs?limit=0", "root", 422),
    ("/api/v1/runs/run_nope", "root", 404),
    ("/api/v1/approvals", "vera", 200),
    ("/api/v1/costs", "root", 200),
    ("/api/v1/audit/status", "acme-viewer", 200),
    ("/api/v1/nowhere", None, 404),
    ("/api/v1/openapi.json", None, 200),
    ("/healthz", None, 200),
    ("/metrics", "root", 200),
    ("/metrics", None, 401),
]


def assert_guarded(response: httpx.Response) -> None:
    h = response.headers
    assert h["x-content-type-options"] == "nosniff"
    assert h["x-frame-options"] == "DENY"
    assert h["referrer-policy"] in ("no-referrer", "same-origin")
    csp = h["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp


@pytest.mark.parametrize(("path", "who", "status"), API_PATHS)
async def test_every_api_answer_carries_the_security_headers_and_is_not_cached(
    client: httpx.AsyncClient, world: World, path: str, who: str | None, status: int
) -> None:
    response = await client.get(path, headers=world.auth(who) if who else {})
    assert response.status_code == status, response.text
    assert_guarded(response)
    assert response.headers["cache-control"] == "no-store"


async def test_a_post_and_an_error_of_the_api_carry_them_too(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        f"/api/v1/approvals/{world.approval}/approve",
        headers=world.auth("alice"),  # the requester: refused
        json={"reason": "mine"},
    )
    assert response.status_code == 403
    assert_guarded(response)
    assert response.headers["cache-control"] == "no-store"


@pytest.fixture
async def browser(world: World) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(world.rt)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://proctor.test"
    ) as c:
        assert (await login(c, world.secrets["root"])).status_code == 303
        yield c


def _inline_code(html: str) -> list[str]:
    """Script and style that would need 'unsafe-inline': inline scripts, style elements
    and attributes, event handler attributes, javascript: URLs."""
    found = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    found += re.findall(r"<style\b", html)
    found += re.findall(r"\sstyle\s*=", html)
    found += re.findall(r"\son[a-z]+\s*=", html)
    found += re.findall(r"javascript:", html, flags=re.IGNORECASE)
    return found


async def test_every_page_works_under_its_policy(browser: httpx.AsyncClient, world: World) -> None:
    pages = [
        "/runs",
        f"/runs/{world.held_run}",
        f"/runs/{world.held_run}/live",
        "/approvals",
        "/approvals/live",
        "/costs",
        "/evals",
        "/runs/run_nope",  # an error page
    ]
    for path in pages:
        response = await browser.get(path)
        assert response.status_code in (200, 404), (path, response.status_code)
        assert_guarded(response)
        assert response.headers["cache-control"] == "no-store", path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp, path
        assert "'unsafe-inline'" not in csp, path
        assert _inline_code(response.text) == [], path


async def test_the_login_page_static_files_and_redirects_carry_them(
    world: World,
) -> None:
    app = create_app(world.rt)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        for path in ("/login", "/static/proctor.js", "/static/proctor.css", "/runs", "/"):
            response = await c.get(path)
            assert response.status_code in (200, 303, 307), (path, response.status_code)
            assert_guarded(response)
        login_page = await c.get("/login")
        assert login_page.headers["cache-control"] == "no-store"
        assert _inline_code(login_page.text) == []


async def test_the_api_docs_run_their_one_inline_script_by_its_hash(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/docs")
    assert response.status_code == 200
    assert_guarded(response)
    csp = response.headers["content-security-policy"]
    scripts = re.findall(r"<script>(.*?)</script>", response.text, flags=re.DOTALL)
    assert scripts, "Swagger UI starts with an inline script"
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "'unsafe-eval'" not in csp


# -- the session cookie -------------------------------------------------------------------


def _session_cookie(response: httpx.Response) -> str:
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    found = [c for c in cookies if c.startswith("proctor_session=")]
    assert found, cookies
    return found[0].lower()


async def test_the_session_cookies_are_secure_even_when_the_service_sees_plain_http(
    world: World,
) -> None:
    # Behind a proxy that ends TLS, the service sees http: the cookies are Secure all the
    # same (the login form's cookie as the session's).
    app = create_app(world.rt)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://proctor.test"
    ) as c:
        form = await c.get("/login")
    cookies = [v.lower() for k, v in form.headers.multi_items() if k == "set-cookie"]
    assert cookies
    assert all("; secure" in c for c in cookies)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://proctor.test"
    ) as c:
        response = await login(c, world.secrets["vera"])
    assert response.status_code == 303
    assert "; secure" in _session_cookie(response)


async def test_plain_http_on_loopback_is_an_explicit_choice(world: World) -> None:
    app = create_app(world.rt, insecure_http=True)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as c:
        response = await login(c, world.secrets["vera"])
        assert response.status_code == 303
        assert "; secure" not in _session_cookie(response)
        assert (await c.get("/approvals")).status_code == 200  # the browser sends it back


# -- /metrics -----------------------------------------------------------------------------


async def test_metrics_need_a_token_that_sees_every_tenant_unless_declared_public(
    world: World,
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(world.rt)), base_url=BASE
    ) as c:
        assert (await c.get("/metrics")).status_code == 401
        assert (await c.get("/metrics", headers=world.auth("acme-viewer"))).status_code == 403
        assert (await c.get("/metrics", headers=world.auth("vera"))).status_code == 200
    public = create_app(world.rt, public_metrics=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=public), base_url=BASE) as c:
        response = await c.get("/metrics")
        assert response.status_code == 200
        assert_guarded(response)


# -- proctor serve ------------------------------------------------------------------------


@pytest.fixture
def serve_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any]]:
    import typer
    import uvicorn

    from proctor.cli import serve

    monkeypatch.setenv("PROCTOR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROCTOR_DB_URL", raising=False)
    monkeypatch.delenv("PROCTOR_APP", raising=False)
    seen: dict[str, Any] = {}

    def fake_run(app: FastAPI, host: str, port: int, log_config: dict[str, Any]) -> None:
        seen.update(app=app, host=host)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    command = typer.Typer()
    command.command()(serve.serve)
    return command, seen


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "example.com", "::"])
def test_serve_refuses_plain_http_off_loopback(
    serve_cli: tuple[Any, dict[str, Any]], host: str
) -> None:
    command, seen = serve_cli
    result = CliRunner().invoke(command, ["--host", host, "--insecure-http-on-loopback"])
    assert result.exit_code != 0
    assert "loopback" in result.output
    assert "app" not in seen  # never served


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_serve_takes_plain_http_on_loopback_when_asked(
    serve_cli: tuple[Any, dict[str, Any]], host: str
) -> None:
    command, seen = serve_cli
    result = CliRunner().invoke(command, ["--host", host, "--insecure-http-on-loopback"])
    assert result.exit_code == 0, result.output
    assert seen["app"].state.insecure_http is True


def test_serve_guards_metrics_unless_told_they_are_public(
    serve_cli: tuple[Any, dict[str, Any]],
) -> None:
    command, seen = serve_cli
    assert CliRunner().invoke(command, []).exit_code == 0
    assert seen["app"].state.insecure_http is False
    assert TestClient(seen["app"]).get("/metrics").status_code == 401
    assert CliRunner().invoke(command, ["--public-metrics"]).exit_code == 0
    assert TestClient(seen["app"]).get("/metrics").status_code == 200
