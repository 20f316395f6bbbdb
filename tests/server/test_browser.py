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
from proctor.runs import Origin
from proctor.server.app import create_app
from proctor.server.tokens import Role, create_token
from proctor.states import RunState
from tests.evals.test_gate import make_report

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

            # The queue: one line a request; the line opens the request's card.
            line = page.locator(f"#approval-{approval_id}")
            expect(line).to_contain_text("issue_refund")
            expect(line).to_contain_text("520.00")
            expect(line).to_contain_text("supervisor")
            line.get_by_role("link", name="Decide →").click()
            expect(page).to_have_url(f"{base}/approvals/{approval_id}")
            card = page.locator(f"#approval-{approval_id}")
            expect(card).to_contain_text('"amount": "520.00"')
            expect(card).to_contain_text('"order_id": "A-1002"')
            expect(card).to_contain_text("refund-needs-supervisor")
            expect(card).to_contain_text("lookup_order")  # the run so far
            expect(card).to_contain_text(REQUEST)  # the customer's request
            reason = "Parcel received back at the warehouse; refund approved"
            card.locator("textarea[name=reason]").fill(reason)

            # Another request arrives: the count in the navigation shows it without a
            # reload. (Its own thread: Playwright holds this one's event loop.)
            with ThreadPoolExecutor(1) as other:
                other.submit(_ask_for_refund, home, world).result()
            expect(page.locator("#pending-count")).to_have_text("2")
            expect(card.locator("textarea[name=reason]")).to_have_value(reason)

            card.get_by_role("button", name="Approve").click()
            expect(page).to_have_url(f"{base}/runs/{run_id}")
            expect(page.locator(".flash.ok")).to_contain_text("resumed here")
            expect(page.locator("#run-state")).to_contain_text("completed", timeout=15_000)
            expect(page.locator("#run-live")).to_contain_text("by sam as supervisor")
            expect(page.locator("#run-live")).to_contain_text(reason)

            expect(page.locator("#run-request")).to_have_text(REQUEST)
            expect(page.locator("#run-answer")).to_be_visible(timeout=15_000)
            assert blocked == []
        finally:
            browser.close()
    [refund] = world.refunds("A-1002")  # once, for the approved run only
    assert refund.amount == Decimal("520.00")


SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "browser"
"""Where the screenshots go: the repository's test output, which git ignores."""
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
ASKED = (
    "Please open a ticket for order A-1016, the blender is broken",
    "Where is order A-1001?",
    "Draft an email to customer c-103 about the partial refund on order A-1006",
    "Please change the email of customer c-101 to jo.new@example.net",
    REQUEST,
)


def _fill(home: Path, world: World) -> dict[str, str]:
    """Runs to look at: some done, two held for people (one an email change), one of an
    eval held too, and two eval reports to compare."""

    async def go() -> dict[str, str]:
        rt = _runtime(home, world)
        agent = _agent(rt)
        ids: dict[str, str] = {}
        try:
            for n, request in enumerate(ASKED):
                spec = RunSpec(
                    agent="support-agent",
                    role="support_agent",
                    tenant="acme" if n % 2 == 0 else "globex",
                    workflow="support",
                    requester=f"customer:c-10{n + 1}",
                )
                result = await agent.run(request, spec)
                ids[request] = result.run_id
                if result.approval_id is not None:
                    ids[f"approval:{request}"] = result.approval_id
            tried = RunSpec(
                agent="acme-eval-agent",
                role="support_agent",
                tenant="acme",
                workflow="support",
                requester="customer",
                origin=Origin.EVAL,
            )
            await agent.run("Refund $300 on order A-1003, it never arrived", tried)
        finally:
            await agent.aclose()
            rt.close()
        return ids

    ids = asyncio.run(go())
    reports = home / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "baseline.json").write_text(make_report(40, failed=1).model_dump_json())
    (reports / "candidate.json").write_text(make_report(40, failed=7, cost=0.012).model_dump_json())
    return ids


@pytest.mark.slow
@pytest.mark.timeout(300)  # a server, a browser, a dozen pages at two widths
def test_the_pages_at_desktop_and_phone_widths(served: tuple[str, Path, World]) -> None:
    """Screenshots of every page a person works in, at a desktop's and a phone's width
    (``test-output/browser/``, to look at); at a phone's width no page scrolls sideways."""
    sync_api = _playwright()
    base, home, world = served
    ids = _fill(home, world)
    rt = _runtime(home, world)
    try:
        secret, _ = create_token(
            rt.store, "sam", Role.APPROVER, None, rt.clock.now(), policy_roles=["supervisor"]
        )
    finally:
        rt.close()
    email = next(v for k, v in ids.items() if k.startswith("approval:Please change"))
    pages = {
        "runs": "/runs",
        "run": f"/runs/{ids[ASKED[0]]}",
        "run-waiting": f"/runs/{ids[REQUEST]}",
        "approvals": "/approvals",
        "approval-card": f"/approvals/{email}",
        "costs": "/costs",
        "eval-comparison": "/evals/compare?baseline=baseline&candidate=candidate",
    }
    SHOTS.mkdir(parents=True, exist_ok=True)
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            for label, (width, height) in WIDTHS.items():
                page = browser.new_page(viewport={"width": width, "height": height})
                page.set_default_timeout(10_000)
                page.goto(f"{base}/login")
                page.fill("#token", secret)
                page.get_by_role("button", name="Log in").click()
                for name, path in pages.items():
                    page.goto(base + path)
                    expect(page.locator("main h1").first).to_be_visible()
                    assert "Error" not in page.title(), (name, page.title())
                    shot = SHOTS / f"{name}-{label}.png"
                    page.screenshot(path=str(shot), full_page=True)
                    print(f"screenshot: {shot}")
                    wide = page.evaluate("document.documentElement.scrollWidth")
                    assert wide <= width, f"{name} is {wide} px wide at {width} px"
                page.close()
        finally:
            browser.close()
