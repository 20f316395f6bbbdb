"""Who may do what: one test per rule, and one error shape for every failure."""

from __future__ import annotations

import hashlib

import httpx
import pytest
import sqlalchemy as sa

from proctor.errors import TokenError
from proctor.server.tokens import Role, create_token, list_tokens, revoke_token, verify_token
from proctor.store.tables import api_tokens

from .conftest import World


def assert_error(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message", "status"}
    assert body["error"]["type"] == kind
    assert body["error"]["status"] == status
    assert body["error"]["message"]


async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/runs")
    assert_error(response, 401, "Unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_an_unknown_token_is_401(client: httpx.AsyncClient) -> None:
    for value in ("Bearer pct_not-a-token", "Bearer nonsense", "Basic dXNlcjpwdw=="):
        response = await client.get("/api/v1/runs", headers={"Authorization": value})
        assert_error(response, 401, "Unauthorized")


async def test_a_revoked_token_is_401(client: httpx.AsyncClient, world: World) -> None:
    assert (await client.get("/api/v1/runs", headers=world.auth("vera"))).status_code == 200
    revoke_token(world.rt.store, "vera", world.env.clock.now())
    assert_error(await client.get("/api/v1/runs", headers=world.auth("vera")), 401, "Unauthorized")


async def test_a_viewer_cannot_approve(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(
        f"/api/v1/approvals/{world.approval}/approve",
        headers=world.auth("vera"),
        json={"reason": "looks fine"},
    )
    assert_error(response, 403, "Forbidden")
    assert world.rt.approvals.get(world.approval).status.value == "pending"


@pytest.mark.parametrize("name", ["vera", "sam", "root"])
async def test_every_role_reads_what_a_viewer_reads(
    client: httpx.AsyncClient, world: World, name: str
) -> None:
    # Each role includes the one before: an approver or admin reads all a viewer does.
    for path in ("/api/v1/runs", "/api/v1/approvals", "/api/v1/costs", "/api/v1/evals"):
        response = await client.get(path, headers=world.auth(name))
        assert response.status_code == 200, (path, response.text)
    status = await client.get("/api/v1/audit/status", headers=world.auth(name))
    assert status.status_code == 200, status.text
    assert status.json()["ok"] is True


async def test_a_tenant_token_sees_only_its_tenant_in_lists(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = world.auth("acme-viewer")
    runs = (await client.get("/api/v1/runs", headers=auth)).json()
    assert [r["id"] for r in runs["items"]] == [world.held_run]
    other = (await client.get("/api/v1/runs", headers=auth, params={"tenant": "globex"})).json()
    assert other["items"] == []
    globex = await client.get("/api/v1/approvals", headers=world.auth("globex-sam"))
    assert globex.json() == {"items": [], "next": None}
    costs = (await client.get("/api/v1/costs", headers=world.auth("acme-viewer"))).json()
    assert {r["tenant"] for r in costs["items"]} == {"acme"}


async def test_another_tenants_run_or_approval_is_404(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(
        f"/api/v1/runs/{world.other_run}", headers=world.auth("acme-viewer")
    )
    assert_error(response, 404, "RunNotFound")
    decided = await client.post(
        f"/api/v1/approvals/{world.approval}/approve",
        headers=world.auth("globex-sam"),
        json={"reason": "ok"},
    )
    assert_error(decided, 404, "ApprovalNotFound")
    assert world.rt.approvals.get(world.approval).status.value == "pending"


async def test_nobody_approves_a_request_they_raised(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        f"/api/v1/approvals/{world.approval}/approve",
        headers=world.auth("alice"),
        json={"reason": "my own refund"},
    )
    assert_error(response, 403, "NotAllowedToApprove")
    assert "own request" in response.json()["error"]["message"]


async def test_a_role_the_policy_does_not_name_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        f"/api/v1/approvals/{world.approval}/approve",
        headers=world.auth("sam"),
        json={"reason": "ok", "role": "intern"},
    )
    assert_error(response, 403, "NotAllowedToApprove")


async def test_an_approver_without_the_policy_role_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    # clerk may approve billing requests; this one needs a supervisor.
    for body in ({"reason": "fine"}, {"reason": "fine", "role": "supervisor"}):
        response = await client.post(
            f"/api/v1/approvals/{world.approval}/approve", headers=world.auth("clerk"), json=body
        )
        assert_error(response, 403, "Forbidden")
    assert world.rt.approvals.get(world.approval).status.value == "pending"


def test_a_viewer_token_cannot_hold_policy_roles(world: World) -> None:
    with pytest.raises(TokenError, match="viewer"):
        create_token(world.rt.store, "v2", Role.VIEWER, None, world.env.clock.now(), ["supervisor"])


async def test_the_error_shape_of_a_404(client: httpx.AsyncClient, world: World) -> None:
    missing = await client.get("/api/v1/runs/run_missing", headers=world.auth("vera"))
    assert_error(missing, 404, "RunNotFound")
    assert_error(await client.get("/api/v1/nowhere"), 404, "NotFound")
    approval = await client.post(
        "/api/v1/approvals/apr_missing/deny", headers=world.auth("sam"), json={"reason": "x"}
    )
    assert_error(approval, 404, "ApprovalNotFound")


async def test_the_error_shape_of_a_422(client: httpx.AsyncClient, world: World) -> None:
    bad_query = await client.get("/api/v1/runs", headers=world.auth("vera"), params={"limit": 0})
    assert_error(bad_query, 422, "InvalidRequest")
    assert "limit" in bad_query.json()["error"]["message"]
    no_reason = await client.post(
        f"/api/v1/approvals/{world.approval}/approve", headers=world.auth("sam"), json={}
    )
    assert_error(no_reason, 422, "InvalidRequest")
    bad_state = await client.get(
        "/api/v1/runs", headers=world.auth("vera"), params={"state": "sleeping"}
    )
    assert_error(bad_state, 422, "InvalidRequest")


async def test_the_error_shape_of_a_405(client: httpx.AsyncClient, world: World) -> None:
    assert_error(
        await client.delete("/api/v1/runs", headers=world.auth("root")), 405, "MethodNotAllowed"
    )


def test_tokens_are_stored_only_as_hashes(world: World) -> None:
    with world.rt.store.read() as conn:
        rows = conn.execute(sa.select(api_tokens)).all()
    stored = " ".join(str(v) for row in rows for v in row)
    for name, secret in world.secrets.items():
        assert secret.startswith("pct_")
        assert secret not in stored
        assert hashlib.sha256(secret.encode()).hexdigest() in stored
        token = verify_token(world.rt.store, secret)
        assert token is not None
        assert token.name == name
    assert {t.name for t in list_tokens(world.rt.store)} == set(world.secrets)


async def test_an_admin_without_a_policy_role_is_told_why_it_cannot_approve(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        f"/api/v1/approvals/{world.approval}/approve",
        headers=world.auth("ops"),
        json={"reason": "looks fine"},
    )
    assert_error(response, 403, "Forbidden")
    message = response.json()["error"]["message"]
    assert "needs the policy role supervisor; token ops holds none" in message
    assert "admin role manages the service but decides in no policy role" in message
    assert "--role admin --policy-role supervisor" in message
    assert world.rt.approvals.get(world.approval).status.value == "pending"
