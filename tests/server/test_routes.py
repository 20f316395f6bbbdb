"""Every route, as an operator's script or dashboard calls it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx

from proctor.evals.html import write_report
from proctor.server.app import create_app
from proctor.states import ApprovalStatus, RunState
from proctor.store.tables import runs
from tests.evals.test_gate import make_report

from .conftest import USAGE, World


async def test_healthz_needs_no_token_and_checks_the_store(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_openapi_describes_the_api(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    assert {
        "/api/v1/runs",
        "/api/v1/runs/{run_id}",
        "/api/v1/approvals",
        "/api/v1/approvals/{approval_id}/approve",
        "/api/v1/approvals/{approval_id}/deny",
        "/api/v1/costs",
        "/api/v1/audit/status",
        "/api/v1/evals",
        "/api/v1/evals/{name}",
        "/healthz",
    } <= set(paths)


async def test_runs_list_newest_first_with_filters_and_pages(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = world.auth("vera")
    page = (await client.get("/api/v1/runs", headers=auth)).json()
    assert page == {"items": page["items"], "next": None}  # the one list shape
    assert [r["id"] for r in page["items"]] == [world.other_run, world.held_run]

    async def ids(**params: str) -> list[str]:
        response = await client.get("/api/v1/runs", headers=auth, params=params)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["items"]]

    assert await ids(tenant="globex") == [world.other_run]
    assert await ids(workflow="support") == [world.held_run]
    assert await ids(state=RunState.AWAITING_APPROVAL.value) == [world.held_run]
    assert await ids(cost_above="0") == [world.held_run]
    assert await ids(cost_above="1") == []
    assert await ids(since="2026-01-01T00:00:30Z") == [world.other_run]
    assert await ids(until="2026-01-01T00:00:30Z") == [world.held_run]
    first = (await client.get("/api/v1/runs", headers=auth, params={"limit": 1})).json()
    assert [r["id"] for r in first["items"]] == [world.other_run]
    assert first["next"] is not None
    params = {"limit": "1", "cursor": first["next"]}
    second = (await client.get("/api/v1/runs", headers=auth, params=params)).json()
    assert ([r["id"] for r in second["items"]], second["next"]) == ([world.held_run], None)
    assert await ids(reason="done") == []


async def test_run_detail_has_steps_decisions_approvals_tokens_and_cost(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(f"/api/v1/runs/{world.held_run}", headers=world.auth("vera"))
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["run"]["state"] == "awaiting_approval"
    assert detail["run"]["bundle_version"]
    [step] = detail["steps"]
    assert step["tool"] == "refund"
    assert step["status"] == "awaiting_approval"
    assert step["policy_ids"] == ["refund-supervised"]
    assert step["approval_id"] == world.approval
    [approval] = detail["approvals"]
    assert approval["roles"] == ["supervisor"]
    assert len(detail["model_calls"]) == 2
    assert detail["tokens"] == 2 * 1100
    one = world.rt.prices.cost("openai:gpt-4o-mini", USAGE)
    assert Decimal(detail["cost_usd"]) >= 2 * one > 0
    assert Decimal(detail["run"]["cost_usd"]) == Decimal(detail["cost_usd"])
    assert detail["usage"]["model_tokens"] == 2 * 1100
    # The span tree as telemetry would export it: the run, its model calls, its tool call.
    spans = {s["key"]: s for s in detail["spans"]}
    names = sorted(s["name"] for s in detail["spans"])
    assert "execute_tool refund" in names
    assert sum(n.startswith("chat ") for n in names) == 2
    [root] = [s for s in detail["spans"] if s["parent"] is None]
    assert root["end"] is None  # the run is still waiting
    assert all(s["parent"] in spans for s in detail["spans"] if s is not root)
    assert {s["trace_id"] for s in detail["spans"]} == {root["trace_id"]}


async def test_pending_approvals(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/api/v1/approvals", headers=world.auth("vera"))
    assert response.json() == {"items": response.json()["items"], "next": None}
    assert [a["id"] for a in response.json()["items"]] == [world.approval]


async def test_approving_records_the_token_name_and_leaves_the_run_to_a_worker(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        f"/api/v1/approvals/{world.approval}/approve",
        headers=world.auth("sam"),
        json={"reason": "customer verified"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["approval"]["status"] == "approved"
    assert body["approval"]["decided_by"] == "sam"
    assert body["approval"]["decider_role"] == "supervisor"
    assert body["resumed"] is False
    assert "ready to resume" in body["message"]
    assert world.rt.approvals.get(world.approval).decided_by == "sam"
    assert world.env.ledger.effects() == []  # nothing ran: resuming is a worker's job
    assert world.rt.verify_audit().ok


async def test_denying_through_the_api(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(
        f"/api/v1/approvals/{world.approval}/deny",
        headers=world.auth("root"),
        json={"reason": "not eligible"},
    )
    assert response.status_code == 200, response.text
    assert world.rt.approvals.get(world.approval).status is ApprovalStatus.DENIED
    again = await client.post(
        f"/api/v1/approvals/{world.approval}/approve",
        headers=world.auth("sam"),
        json={"reason": "changed my mind"},
    )
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "ApprovalAlreadyDecided"


async def test_a_server_with_the_tools_resumes_the_approved_call(world: World) -> None:
    transport = httpx.ASGITransport(app=create_app(world.rt, resume_runs=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://proctor.test") as c:
        response = await c.post(
            f"/api/v1/approvals/{world.approval}/approve",
            headers=world.auth("sam"),
            json={"reason": "ok"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["resumed"] is True
    assert response.json()["run_state"] == "running"
    assert world.env.ledger.effects("refund") == [(f"{world.held_run}/0", "refund", "A-1:500.00")]


async def test_costs_per_tenant_workflow_model_and_day(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get("/api/v1/costs", headers=world.auth("vera"))
    assert response.status_code == 200, response.text
    costs = response.json()
    [row] = costs["items"]
    assert costs["next"] is None
    assert (row["tenant"], row["workflow"], row["model"], row["day"], row["calls"]) == (
        "acme",
        "support",
        "openai:gpt-4o-mini",
        "2026-01-01",
        2,
    )
    assert [r["run_id"] for r in costs["top_runs"]] == [world.held_run]
    assert Decimal(costs["total_usd"]) == Decimal(row["cost_usd"]) > 0
    scoped = await client.get("/api/v1/costs", headers=world.auth("vera"), params={"tenant": "x"})
    assert scoped.json()["items"] == []


async def test_audit_status(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/api/v1/audit/status", headers=world.auth("vera"))
    assert response.status_code == 200, response.text
    status = response.json()
    assert status["ok"] is True
    assert status["tenants"] == 2
    assert status["problems"] == []
    scoped = await client.get("/api/v1/audit/status", headers=world.auth("acme-viewer"))
    assert scoped.json()["tenants"] == 1


async def test_a_run_another_worker_holds_keeps_the_decision_and_is_not_resumed(
    world: World,
) -> None:
    with world.rt.store.write() as conn:
        conn.execute(
            runs.update()
            .where(runs.c.id == world.held_run)
            .values(owner="wrk_elsewhere", lease_until=world.env.clock.now() + timedelta(hours=1))
        )
    transport = httpx.ASGITransport(app=create_app(world.rt, resume_runs=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://proctor.test") as c:
        response = await c.post(
            f"/api/v1/approvals/{world.approval}/approve",
            headers=world.auth("sam"),
            json={"reason": "ok"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resumed"] is False
    assert "wrk_elsewhere" in body["message"]
    assert body["approval"]["status"] == "approved"
    assert world.env.ledger.effects() == []


async def test_eval_reports_are_listed_and_served(client: httpx.AsyncClient, world: World) -> None:
    reports = world.rt.settings.home / "reports"
    report = make_report(failed=1)
    write_report(report, reports / "nightly")
    (reports / "broken.json").write_text("{not json")
    listed = await client.get("/api/v1/evals", headers=world.auth("vera"))
    assert listed.status_code == 200, listed.text
    assert {(e["name"], e["has_html"]) for e in listed.json()["items"]} == {
        ("nightly", True),
        ("broken", False),
    }
    one = await client.get("/api/v1/evals", headers=world.auth("vera"), params={"limit": 1})
    assert len(one.json()["items"]) == 1
    rest = await client.get(
        "/api/v1/evals", headers=world.auth("vera"), params={"cursor": one.json()["next"]}
    )
    assert len(rest.json()["items"]) == 1
    assert rest.json()["next"] is None
    shown = await client.get("/api/v1/evals/nightly", headers=world.auth("vera"))
    assert shown.status_code == 200, shown.text
    assert shown.json()["summary"]["runs"] == report.summary.runs
    missing = await client.get("/api/v1/evals/nope", headers=world.auth("vera"))
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "ReportNotFound"
    broken = await client.get("/api/v1/evals/broken", headers=world.auth("vera"))
    assert broken.status_code == 500
    assert "is not an eval report" in broken.json()["error"]["message"]
    # Reports cover every tenant: a token confined to one does not read them.
    confined = await client.get("/api/v1/evals", headers=world.auth("acme-viewer"))
    assert confined.status_code == 403
