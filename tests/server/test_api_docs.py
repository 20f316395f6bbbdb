"""The API docs at /api/v1/docs work without the internet: Swagger UI's files come from
the service itself, and a browser that can reach nothing else renders every operation."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from proctor import Runtime, Settings
from proctor.server.app import create_app

from .test_browser import CHROMIUM, _free_port, _playwright


async def test_the_docs_page_loads_nothing_from_elsewhere(client: httpx.AsyncClient) -> None:
    page = await client.get("/api/v1/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    urls += re.findall(r"""url:\s*['"]([^'"]+)['"]""", page.text)
    assert urls, page.text
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    csp = page.headers["content-security-policy"]
    assert "http" not in csp  # nothing but the service itself may be loaded
    for asset, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css")):
        answer = await client.get(f"/api/v1/docs/assets/{asset}")
        assert answer.status_code == 200
        assert kind in answer.headers["content-type"]
        assert len(answer.content) > 10_000
        assert "no-store" not in answer.headers.get("cache-control", "")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    rt = Runtime(policy=None, settings=Settings(home=tmp_path / "home"))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(rt), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="proctor-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start within 10 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        rt.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_swagger_ui_renders_with_no_network_but_the_service(served: str, tmp_path: Path) -> None:
    sync_api = _playwright()
    elsewhere: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            def only_the_service(route: object) -> None:
                request = route.request  # type: ignore[attr-defined]
                if request.url.startswith(served):
                    route.continue_()  # type: ignore[attr-defined]
                else:
                    elsewhere.append(request.url)
                    route.abort()  # type: ignore[attr-defined]

            page.route("**/*", only_the_service)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{served}/api/v1/docs")
            sync_api.expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
            assert page.locator(".opblock").count() > 10  # every route of the API
            sync_api.expect(page.locator(".information-container")).to_contain_text("proctor")
            page.screenshot(path=str(tmp_path / "api-docs.png"), full_page=False)
        finally:
            browser.close()
    assert elsewhere == []
    assert errors == []
