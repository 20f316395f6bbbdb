"""The pages, as a person in a browser uses them: log in, look, decide."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import httpx
import pytest

from proctor.evals.html import write_report
from proctor.server.app import create_app
from proctor.server.pages import money
from proctor.server.session import IDLE
from proctor.server.tokens import revoke_token
from proctor.states import ApprovalStatus
from proctor.testing import FunctionModel
from tests.evals.test_gate import make_report

from .conftest import REQUEST, USAGE, World, _answer

BASE = "https://proctor.test"  # the session cookie is Secure
HOSTILE = "<script>alert(1)</script>"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


async def login(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    form = await client.get("/login")
    assert form.status_code == 200
    return await client.post(
        "/login", data={"token": secret, "csrf": csrf_of(form.text), "next": "/approvals"}
    )


@asynccontextmanager
async def logged_in(
    world: World, name: str, *, resume: bool = False
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser logged in with the named token."""
    app = create_app(world.rt, resume_runs=resume)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        response = await login(c, world.secrets[name])
        assert response.status_code == 303, response.text
        yield c


@pytest.fixture
async def anon(world: World) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(world.rt))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        yield c


async def pending_form(client: httpx.AsyncClient) -> str:
    page = await client.get("/approvals")
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


# -- login and the session cookie ---------------------------------------------------------


async def test_login_opens_a_session_in_an_httponly_samesite_cookie(
    anon: httpx.AsyncClient, world: World
) -> None:
    response = await login(anon, world.secrets["vera"])
    assert response.status_code == 303
    assert response.headers["location"] == "/approvals"
    [cookie] = [c for c in response.headers.get_list("set-cookie") if "proctor_session=" in c]
    attributes = {a.strip().split("=")[0].lower(): a for a in cookie.split(";")}
    assert "httponly" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=lax"
    assert attributes["path"].strip() == "Path=/"
    assert "secure" in attributes
    assert world.secrets["vera"] not in cookie  # the cookie holds a session id, never the token
    runs = await anon.get("/runs")
    assert runs.status_code == 200
    assert world.held_run in runs.text
    assert world.other_run in runs.text
    assert "vera" in runs.text


async def test_over_https_the_cookie_is_secure(world: World) -> None:
    transport = httpx.ASGITransport(app=create_app(world.rt))
    async with httpx.AsyncClient(transport=transport, base_url="https://proctor.test") as c:
        response = await login(c, world.secrets["vera"])
    [cookie] = [x for x in response.headers.get_list("set-cookie") if "proctor_session=" in x]
    assert "secure" in cookie.lower()


async def test_a_bad_token_does_not_log_in(anon: httpx.AsyncClient, world: World) -> None:
    response = await login(anon, "pct_not-a-real-token")
    assert response.status_code == 401
    assert "unknown or revoked" in response.text
    assert "proctor_session" not in anon.cookies
    assert (await anon.get("/runs")).status_code == 303


async def test_login_needs_its_form_token(anon: httpx.AsyncClient, world: World) -> None:
    await anon.get("/login")
    response = await anon.post("/login", data={"token": world.secrets["vera"], "csrf": "forged"})
    assert response.status_code == 403
    assert "proctor_session" not in anon.cookies


async def test_pages_send_strangers_to_login_and_back(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/approvals")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fapprovals"
    assert (await anon.get("/")).headers["location"] == "/runs"
    assert (await anon.get("/approvals/live")).status_code == 401  # the script reloads
    form = await anon.get("/login?next=//evil.example/x")
    assert 'value="/runs"' in form.text  # never an open redirect


async def test_revoking_a_token_ends_its_sessions(world: World) -> None:
    async with logged_in(world, "sam") as client:
        assert (await client.get("/runs")).status_code == 200
        revoke_token(world.rt.store, "sam", world.env.clock.now())
        response = await client.get("/runs")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
        assert (await login(client, world.secrets["sam"])).status_code == 401


async def test_a_session_ends_when_idle_and_at_logout(world: World) -> None:
    async with logged_in(world, "vera") as client:
        world.env.clock.advance(IDLE.total_seconds() + 1)
        assert (await client.get("/runs")).status_code == 303
    async with logged_in(world, "vera") as client:
        csrf = csrf_of((await client.get("/runs")).text)
        response = await client.post("/logout", data={"csrf": csrf})
        assert response.status_code == 303
        assert (await client.get("/runs")).status_code == 303


async def test_pages_send_security_headers(world: World) -> None:
    async with logged_in(world, "vera") as client:
        response = await client.get("/runs")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    text = response.text.replace(BASE, "")
    assert "http://" not in text  # nothing from elsewhere
    assert "https://" not in text


# -- deciding -----------------------------------------------------------------------------


async def test_a_post_without_the_csrf_token_decides_nothing(world: World) -> None:
    async with logged_in(world, "sam") as client:
        good = await pending_form(client)
        url = f"/approvals/{world.approval}/approve"
        missing = await client.post(url, data={"reason": "ok"})
        wrong = await client.post(url, data={"reason": "ok", "csrf": good[:-2] + "xx"})
        foreign = await client.post(
            url,
            data={"reason": "ok", "csrf": good},
            headers={"Origin": "https://evil.example"},
        )
    for response in (missing, wrong, foreign):
        assert response.status_code == 403
        assert "Traceback" not in response.text
    assert "security token" in missing.text
    assert "another site" in foreign.text
    assert world.rt.approvals.get(world.approval).status is ApprovalStatus.PENDING


async def test_a_viewer_sees_no_buttons_and_cannot_approve(world: World) -> None:
    async with logged_in(world, "vera") as client:
        queue = await client.get("/approvals")
        assert "refund" in queue.text
        assert "Open →" in queue.text
        page = await client.get(f"/approvals/{world.approval}")
        assert ">Approve<" not in page.text
        assert ">Deny<" not in page.text
        assert "vera is a viewer" in page.text
        response = await client.post(
            f"/approvals/{world.approval}/approve",
            data={"reason": "ok", "csrf": csrf_of(page.text)},
        )
    assert response.status_code == 403
    assert "approver or admin" in response.text
    assert world.rt.approvals.get(world.approval).status is ApprovalStatus.PENDING


async def test_nobody_approves_their_own_request(world: World) -> None:
    async with logged_in(world, "alice") as client:
        page = await client.get(f"/approvals/{world.approval}")
        assert ">Approve<" not in page.text
        assert "nobody approves their own request" in page.text
        response = await client.post(
            f"/approvals/{world.approval}/approve",
            data={"reason": "trust me", "csrf": csrf_of(page.text)},
        )
    assert response.status_code == 403
    assert "nobody approves their own request" in response.text
    assert world.rt.approvals.get(world.approval).status is ApprovalStatus.PENDING


async def test_the_queue_shows_the_call_its_policy_and_the_run_so_far(world: World) -> None:
    async with logged_in(world, "sam") as client:
        page = await client.get(f"/approvals/{world.approval}")
        live = await client.get("/approvals/live")
    assert ">Approve<" in page.text
    assert ">Deny<" in page.text
    assert "refund-supervised" in page.text
    assert "&#34;amount&#34;: &#34;500.00&#34;" in page.text  # the stored arguments
    assert "supervisor" in page.text
    assert world.held_run in page.text
    assert 'data-count="1"' in live.text
    assert f'id="approval-{world.approval}"' in live.text
    # Why the call was held: where each argument came from.
    assert "Where the arguments came from" in page.text
    assert '<code>amount</code> <span class="badge s-unknown">unknown</span>' in page.text


async def test_approving_in_the_page_resumes_the_run(world: World) -> None:
    async with logged_in(world, "sam", resume=True) as client:
        csrf = await pending_form(client)
        response = await client.post(
            f"/approvals/{world.approval}/approve",
            data={"reason": "customer verified", "csrf": csrf},
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == f"/runs/{world.held_run}"
        timeline = await client.get(response.headers["location"])
        queue = await client.get("/approvals")
    request = world.rt.approvals.get(world.approval)
    assert request.status is ApprovalStatus.APPROVED
    assert (request.decided_by, request.decider_role) == ("sam", "supervisor")
    assert world.env.ledger.effects("refund") == [(f"{world.held_run}/0", "refund", "A-1:500.00")]
    assert "resumed here" in timeline.text
    assert "customer verified" in timeline.text
    assert "by <strong>sam</strong> as supervisor" in timeline.text
    assert "waited" in timeline.text
    assert "No approvals are waiting" in queue.text
    assert world.rt.verify_audit().ok


async def test_denying_in_the_page(world: World) -> None:
    async with logged_in(world, "root") as client:
        csrf = await pending_form(client)
        response = await client.post(
            f"/approvals/{world.approval}/deny", data={"reason": "not eligible", "csrf": csrf}
        )
        again = await client.post(
            f"/approvals/{world.approval}/approve", data={"reason": "oops", "csrf": csrf}
        )
    assert response.status_code == 303
    assert world.rt.approvals.get(world.approval).status is ApprovalStatus.DENIED
    assert again.status_code == 409
    assert "already denied by root" in again.text
    assert world.env.ledger.effects() == []


async def test_a_decision_needs_a_reason(world: World) -> None:
    async with logged_in(world, "sam") as client:
        csrf = await pending_form(client)
        response = await client.post(
            f"/approvals/{world.approval}/approve", data={"reason": "  ", "csrf": csrf}
        )
    assert response.status_code == 422
    assert "give a reason" in response.text
    assert world.rt.approvals.get(world.approval).status is ApprovalStatus.PENDING


# -- tenants ------------------------------------------------------------------------------


async def test_a_tenant_token_sees_only_its_tenant(world: World) -> None:
    async with logged_in(world, "acme-viewer") as client:
        runs = await client.get("/runs")
        asked_other = await client.get("/runs", params={"tenant": "globex"})
        other = await client.get(f"/runs/{world.other_run}")
        costs = await client.get("/costs")
        evals = await client.get("/evals")
    assert world.held_run in runs.text
    assert world.other_run not in runs.text
    assert world.other_run not in asked_other.text
    assert other.status_code == 404
    assert "no run" in other.text
    assert "globex" not in other.text
    assert "acme" in costs.text
    assert evals.status_code == 403
    async with logged_in(world, "globex-sam") as client:
        queue = await client.get("/approvals")
        assert world.approval not in queue.text
        response = await client.post(
            f"/approvals/{world.approval}/approve",
            data={"reason": "ok", "csrf": csrf_of(queue.text)},
        )
        held = await client.get(f"/runs/{world.held_run}")
    assert response.status_code == 404
    assert held.status_code == 404
    assert world.rt.approvals.get(world.approval).status is ApprovalStatus.PENDING


# -- runs, timelines, costs, reports ------------------------------------------------------


async def test_the_runs_list_filters(world: World) -> None:
    async with logged_in(world, "vera") as client:

        async def shown(**params: str) -> set[str]:
            response = await client.get("/runs", params=params)
            assert response.status_code == 200, response.text
            return set(re.findall(r'href="/runs/(run_[^"]+)"', response.text))

        assert await shown() == {world.held_run, world.other_run}
        assert await shown(state="awaiting_approval") == {world.held_run}
        assert await shown(tenant="globex") == {world.other_run}
        assert await shown(workflow="billing") == {world.other_run}
        assert await shown(cost_above="0") == {world.held_run}
        assert await shown(since="2026-01-02") == set()
        assert await shown(until="2026-01-02", state="") == {world.held_run, world.other_run}
        bad = await client.get("/runs", params={"state": "sleeping"})
    assert bad.status_code == 400
    assert "no state &#39;sleeping&#39;" in bad.text


async def test_the_timeline_has_decisions_policies_latency_and_model_calls(
    world: World,
) -> None:
    done = await world.rt.start_run(world.env.spec(requester="carol"))
    await done.call("lookup", {"order_id": "A-9"})
    await done.complete("answered")
    async with logged_in(world, "vera") as client:
        page = await client.get(f"/runs/{done.id}")
        held = await client.get(f"/runs/{world.held_run}")
        live = await client.get(f"/runs/{world.held_run}/live")
    assert page.status_code == 200
    assert "lookup" in page.text
    assert "succeeded" in page.text
    assert re.search(r"\d+\.\d\d ms", page.text)  # the call's latency from its timings
    assert str(world.rt.policy.version) in held.text  # the bundle version that decided
    assert "refund-supervised" in held.text
    assert held.text.count("model call</strong>") == 2
    assert "1,000 in" in held.text
    assert "100 out" in held.text
    assert "awaiting_approval" in held.text
    assert 'data-active="true"' in live.text
    assert "completed" in page.text
    assert "answered" in page.text
    assert 'data-active="false"' in page.text  # a finished run is not polled


async def test_the_cost_page_draws_the_figures(world: World) -> None:
    one = world.rt.prices.cost("openai:gpt-4o-mini", USAGE)
    async with logged_in(world, "vera") as client:
        page = await client.get("/costs")
        later = await client.get("/costs", params={"since": "2026-01-02"})
    assert page.status_code == 200
    svgs = re.findall(r"<svg .*?</svg>", page.text, flags=re.S)
    assert len(svgs) == 3
    day, workflow, tenant = svgs
    total = money(2 * one)
    assert "2026-01-01" in day
    assert total in day
    assert "<title" in day
    assert 'role="img"' in day
    assert ">support<" in workflow
    assert total in workflow
    assert ">acme<" in tenant
    assert total in tenant
    assert "globex" not in tenant  # no model calls: no bar
    assert f'<dd id="total-cost">{total}</dd>' in page.text
    assert world.held_run in page.text  # among the costliest runs
    assert f'<dd id="total-cost">{money(Decimal(0))}</dd>' in later.text
    assert "No model calls in this period" in later.text


async def test_the_cost_page_lists_outliers_as_the_api_does(world: World) -> None:
    model = FunctionModel(_answer, name="openai:gpt-4o-mini")
    runs = []
    for asks in [1] * 8 + [5]:
        run = await world.rt.start_run(world.env.spec(workflow="triage"))
        for _ in range(asks):
            await run.ask(model, REQUEST)
        runs.append(run.id)
    async with logged_in(world, "vera") as client:
        page = await client.get("/costs")
        api = await client.get("/api/v1/costs", headers=world.auth("vera"))
    [outlier] = api.json()["outliers"]
    assert outlier["run_id"] == runs[-1]
    table = page.text.split('id="outliers"')[1].split("</table>")[0]
    assert re.findall(r'href="/runs/(run_[^"]+)"', table) == [runs[-1]]
    assert money(Decimal(outlier["cost_usd"])) in table


async def test_hostile_values_are_escaped(world: World) -> None:
    run = await world.rt.start_run(world.env.spec(tenant=HOSTILE, requester=HOSTILE))
    await run.call("lookup", {"order_id": "X-1"})
    async with logged_in(world, "root") as client:
        csrf = await pending_form(client)
        await client.post(
            f"/approvals/{world.approval}/deny", data={"reason": HOSTILE, "csrf": csrf}
        )
        pages = [
            await client.get("/runs"),
            await client.get(f"/runs/{run.id}"),
            await client.get(f"/runs/{world.held_run}"),
            await client.get("/runs", params={"tenant": HOSTILE}),
            await client.get("/costs", params={"tenant": HOSTILE}),
        ]
    for page in pages:
        assert page.status_code == 200
        assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1].text
    assert "&lt;script&gt;" in pages[2].text  # the decision's reason


async def test_eval_reports_list_show_and_serve_their_html(world: World) -> None:
    reports = world.rt.settings.home / "reports"
    report = make_report(failed=1, failure_text=HOSTILE)
    write_report(report, reports / "latest")
    (reports / "latest.json").write_text(report.model_dump_json())
    (reports / "broken.json").write_text("{not json")
    async with logged_in(world, "vera") as client:
        listing = await client.get("/evals")
        shown = await client.get("/evals/latest")
        html = await client.get("/evals/latest/report.html")
        broken = await client.get("/evals/broken")
        escape = await client.get("/evals/..%2F..%2Fproctor")
        link = await client.get("/evals/latest/runs/run_0000")
    assert 'href="/evals/latest"' in listing.text
    assert 'href="/evals/broken"' in listing.text
    assert shown.status_code == 200
    assert "95.0%" in shown.text  # 19 of 20
    assert "&lt;script&gt;" in shown.text
    assert "<script>alert" not in shown.text
    assert 'href="/evals/latest/report.html"' in shown.text
    assert html.status_code == 200
    assert html.text == (reports / "latest" / "report.html").read_text()
    assert "default-src 'none'" in html.headers["content-security-policy"]
    assert "is not an eval report" in broken.text
    assert escape.status_code == 404
    assert link.headers["location"] == "/runs/run_0000"


async def test_the_timeline_shows_calls_outside_the_plan(world: World) -> None:
    from proctor.runs.plans import PlannedCall

    run = await world.rt.start_run(world.env.spec())
    run.commit_plan([PlannedCall("lookup", {"order_id": "A-1"})])
    await run.call("lookup", {"order_id": "A-1"})
    await run.call("send_email", {"to": "carol@example.com", "body": "hi"})
    await run.complete()
    async with logged_in(world, "sam") as client:
        page = await client.get(f"/runs/{run.id}")
    assert page.status_code == 200
    assert "as planned" in page.text
    assert '<span class="badge s-deviation">outside the plan</span>' in page.text
