"""The pages in a real browser (Debian's Chromium, driven by Playwright) over a real server.

An agent of the support example asks to refund $520; the policy holds it for a
supervisor. A supervisor logs in with a token, sees the request in the approval queue
(which refreshes itself when another request arrives), approves it with a reason, and
watches the run's timeline until the run completes.

Skipped where Chromium or Playwright is missing, unless PROCTOR_REQUIRE_BROWSER=1 (as CI
sets it): then their absence is a failure.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from proctor import RunSpec, Runtime, Settings
from proctor.agent import Agent, AgentConfig
from proctor.agent.factory import build_agent
from proctor.examples.support import BUNDLE, SYSTEM_PROMPT, SupportPlaybook, World, support_tools
from proctor.server.app import create_app
from proctor.server.tokens import Role, create_token
from proctor.states import RunState

CHROMIUM = Path("/usr/bin/chromium")
REQUEST = "Refund $520 on order A-1002, the customer sent it back"
REQUIRE = os.environ.get("PROCTOR_REQUIRE_BROWSER") == "1"


def _playwright() -> Any:
    problem = None
    if not CHROMIUM.exists():
        problem = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        from playwright import sync_api
    except ImportError:
        problem = "the playwright package is not installed (pip install 'proctor[test]')"
    if problem is not None:
        if REQUIRE:
            pytest.fail(problem + "; PROCTOR_REQUIRE_BROWSER=1 makes this a failure")
        pytest.skip(problem)
    return sync_api


def _runtime(home: Path, world: World) -> Runtime:
    return Runtime(policy=BUNDLE, tools=support_tools(world), settings=Settings(home=home))


def _agent(rt: Runtime) -> Agent:
    config = AgentConfig(system_prompt=SYSTEM_PROMPT)
    return build_agent(rt, "simulated", playbook=SupportPlaybook(), config=config)


def _ask_for_refund(home: Path, world: World) -> tuple[str, str]:
    """Run the request in its own runtime (another process, as it were) until it waits."""

    async def go() -> tuple[str, str]:
        rt = _runtime(home, world)
        agent = _agent(rt)
        try:
            spec = RunSpec(
                agent="support-agent",
                role="support_agent",
                tenant="acme",
                workflow="support",
                requester="customer",
            )
            result = await agent.run(REQUEST, spec)
        finally:
            await agent.aclose()
            rt.close()
        assert result.state is RunState.AWAITING_APPROVAL, result
        assert result.approval_id is not None
        return result.run_id, result.approval_id

    return asyncio.run(go())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, World]]:
    """The service on a free port, with the app's tools and model: it resumes runs."""
    home = tmp_path / "home"
    world = World.create(tmp_path / "world.db")
    rt = _runtime(home, world)
    app = create_app(rt, resume_runs=True, agent=_agent)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="proctor-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start within 10 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", home, world
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        rt.close()


@pytest.mark.slow
@pytest.mark.timeout(300)  # starts a server and a browser
def test_a_supervisor_approves_a_large_refund_in_the_browser(
    served: tuple[str, Path, World], tmp_path: Path
) -> None:
    sync_api = _playwright()
    base, home, world = served
    run_id, approval_id = _ask_for_refund(home, world)
    rt = _runtime(home, world)
    try:
        secret, _ = create_token(
            rt.store, "sam", Role.APPROVER, None, rt.clock.now(), policy_roles=["supervisor"]
        )
    finally:
        rt.close()
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(10_000)
            # The pages work under their Content-Security-Policy: nothing is blocked.
            blocked: list[str] = []
            page.on(
                "console",
                lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
            )
            page.goto(f"{base}/approvals")
            expect(page).to_have_url(f"{base}/login?next=%2Fapprovals")
            page.fill("#token", secret)
            page.get_by_role("button", name="Log in").click()
            expect(page).to_have_url(f"{base}/approvals")

            card = page.locator(f"#approval-{approval_id}")
            expect(card).to_contain_text("issue_refund")
            expect(card).to_contain_text('"amount": "520.00"')
            expect(card).to_contain_text('"order_id": "A-1002"')
            expect(card).to_contain_text("refund-needs-supervisor")
            expect(card).to_contain_text("lookup_order")  # the run so far
            reason = "Parcel received back at the warehouse; refund approved"
            card.locator("textarea[name=reason]").fill(reason)

            # Another request arrives: the queue shows it without a reload, and keeps
            # what was typed. (Its own thread: Playwright holds this one's event loop.)
            with ThreadPoolExecutor(1) as other:
                _, second = other.submit(_ask_for_refund, home, world).result()
            expect(page.locator(f"#approval-{second}")).to_be_visible()
            expect(page.locator("#pending-count")).to_have_text("2")
            card = page.locator(f"#approval-{approval_id}")
            expect(card.locator("textarea[name=reason]")).to_have_value(reason)

            card.get_by_role("button", name="Approve").click()
            expect(page).to_have_url(f"{base}/runs/{run_id}")
            expect(page.locator(".flash.ok")).to_contain_text("resumed here")
            expect(page.locator("#run-state")).to_contain_text("completed", timeout=15_000)
            expect(page.locator("#run-live")).to_contain_text("by sam as supervisor")
            expect(page.locator("#run-live")).to_contain_text(reason)

            shot = tmp_path / "approved-refund-run.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
            page.goto(f"{base}/costs")
            expect(page.locator("h1")).to_contain_text("Model costs")
            page.screenshot(path=str(tmp_path / "costs.png"), full_page=True)
            assert blocked == []
        finally:
            browser.close()
    [refund] = world.refunds("A-1002")  # once, for the approved run only
    assert refund.amount == Decimal("520.00")
