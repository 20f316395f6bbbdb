"""The support tools: declarations, reconcile hooks, redaction, scopes; the bundle and the app."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from proctor import (
    Approver,
    CallStatus,
    Credential,
    Effect,
    RunSpec,
    Runtime,
    Settings,
    ToolContext,
    Trust,
)
from proctor.examples.support import BUNDLE, TOOL_NAMES, Refused, World, app, support_tools
from proctor.policy import CellKind, PolicyBundle, check_bundle, permission_matrix
from proctor.tools import ToolRegistry

from .conftest import Support


def test_the_tools_and_their_declarations(world: World) -> None:
    tools = ToolRegistry(support_tools(world))
    assert tuple(t.name for t in tools) == TOOL_NAMES
    assert tools.effects() == {
        "lookup_order": "read",
        "lookup_customer": "read",
        "create_ticket": "write",
        "issue_refund": "irreversible",
        "draft_email": "write",
        "send_email": "irreversible",
        "escalate": "write",
        "update_account_email": "irreversible",
        "delete_customer_data": "irreversible",
    }
    # Every tool says whose words its result carries: the customer's note is theirs.
    assert all(t.trust is Trust.TRUSTED for t in tools)
    assert tools.get("lookup_order").untrusted == ("customer_note",)
    assert tools.get("lookup_order").reads_outside_content
    assert not tools.get("lookup_customer").reads_outside_content
    assert tools.get("send_email").sinks == {"to"}
    assert tools.get("update_account_email").sinks == {"new_email"}
    assert tools.get("issue_refund").targets == {"order_id"}
    assert tools.get("delete_customer_data").targets == {"customer_id"}
    assert tools.get("issue_refund").scopes == {"payments:refund"}
    assert tools.get("send_email").sensitive == {"to"}
    assert tools.get("update_account_email").sensitive == {"new_email"}
    assert tools.get("lookup_customer").sensitive == {"email", "phone"}
    assert all(t.reconcile_fn is not None for t in tools if t.effect is not Effect.READ)


def context(key: str, scopes: frozenset[str] = frozenset({"payments:refund"})) -> ToolContext:
    return ToolContext("run_x", 0, "acme", key, Credential(scopes))


async def test_the_refund_reconcile_hook_answers_by_idempotency_key(world: World) -> None:
    issue_refund = ToolRegistry(support_tools(world)).get("issue_refund")
    args = issue_refund.validate({"order_id": "A-1001", "amount": "20.00", "reason": "late"})
    before = await issue_refund.reconciled(args, context("run_x/0"))
    assert before is not None
    assert not before.happened
    result = await issue_refund.invoke(args, context("run_x/0"))
    after = await issue_refund.reconciled(args, context("run_x/0"))
    assert after is not None
    assert after.happened
    assert after.result == result
    other = await issue_refund.reconciled(args, context("run_x/1"))
    assert other is not None
    assert not other.happened


async def test_the_refund_tool_refuses_what_policy_should_have_stopped(world: World) -> None:
    issue_refund = ToolRegistry(support_tools(world)).get("issue_refund")
    args = issue_refund.validate({"order_id": "A-1005", "amount": "10.00", "reason": "x"})
    with pytest.raises(Refused, match="already fully refunded"):
        await issue_refund.invoke(args, context("k"))
    fine = issue_refund.validate({"order_id": "A-1001", "amount": "10.00", "reason": "x"})
    with pytest.raises(PermissionError, match="payments:refund"):
        await issue_refund.invoke(fine, context("k", frozenset()))


async def test_a_reconciled_effect_is_found_through_the_run(support: Support) -> None:
    run = await support.start()
    outcome = await run.call(
        "issue_refund", {"order_id": "A-1001", "amount": "15.00", "reason": "late"}
    )
    assert outcome.status is CallStatus.EXECUTED
    key = run.steps[0].idempotency_key
    made = support.world.refund(key)
    assert made is not None
    assert made.amount == Decimal("15.00")


def _store_text(db: Path) -> str:
    """Every value in every table of the proctor store, as text."""
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        parts = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    parts.append(
                        value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    )
        return "\n".join(parts)
    finally:
        conn.close()


async def test_sensitive_fields_never_reach_the_store(support: Support, tmp_path: Path) -> None:
    run = await support.start()
    looked = await run.call("lookup_customer", {"customer_id": "c-101"})
    assert looked.result["email"] == "[redacted]"
    assert looked.result["name"] == "Maria Lopez"
    sent = await run.call(
        "send_email", {"to": "maria.lopez@example.com", "subject": "Hi", "body": "Hello"}
    )
    assert sent.status is CallStatus.EXECUTED
    change = await run.call(
        "update_account_email", {"customer_id": "c-102", "new_email": "james.c@example.org"}
    )
    assert change.approval_id is not None
    support.runtime.approvals.approve(change.approval_id, Approver("sam", "supervisor"), "ok")
    done = await run.resume_pending()
    assert done is not None
    assert done.status is CallStatus.EXECUTED
    other = await run.call(
        "send_email", {"to": "attacker@evil.example", "subject": "Invoice", "body": "..."}
    )
    assert other.status is CallStatus.AWAITING_APPROVAL
    assert support.world.customer("c-102").email == "james.c@example.org"

    text = _store_text(tmp_path / "home" / "proctor.db")
    assert "support-bot" in text  # the scan does read the store
    for secret in (
        "maria.lopez@example.com",
        "+1-415-555-0101",
        "james.c@example.org",
        "james.chen@example.com",
        "attacker@evil.example",
    ):
        assert secret.lower() not in text.lower(), secret


async def test_tools_get_only_their_scopes(world: World, tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    rt = Runtime(
        policy=BUNDLE,
        tools=support_tools(world),
        settings=Settings(home=home, db_url=f"sqlite:///{home / 'p.db'}"),
        credentials=lambda t, run_id, tenant: Credential(frozenset()),
    )
    try:
        run = await rt.start_run(
            RunSpec(agent="b", role="support_agent", tenant="t", workflow="w", requester="r")
        )
        outcome = await run.call(
            "issue_refund", {"order_id": "A-1001", "amount": "15.00", "reason": "late"}
        )
        assert outcome.status is CallStatus.FAILED
        assert outcome.error is not None
        assert "payments:refund" in outcome.error["message"]
        assert world.refunds() == []
    finally:
        rt.close()


def test_the_bundle_checks_clean_and_names_every_policy(bundle: PolicyBundle) -> None:
    assert check_bundle(BUNDLE) == []
    assert str(bundle.version).startswith("support-v1@")
    ids = [p.id for p in bundle.policies]
    assert all(".cedar:" not in policy_id for policy_id in ids), ids
    assert bundle.settings.approvals.ttl_s > 0
    assert bundle.settings.budgets.run.tool_calls is not None


def test_the_permission_matrix(bundle: PolicyBundle, world: World) -> None:
    tools = ToolRegistry(support_tools(world)).effects()
    matrix = permission_matrix(bundle, tools=tools)
    assert matrix.roles == ("support_agent",)
    cell = matrix.cell("support_agent", "lookup_order")
    assert cell.kind is CellKind.ALLOWED
    update = matrix.cell("support_agent", "update_account_email")
    assert update.kind is CellKind.NEEDS_APPROVAL
    assert update.approval_roles == ("supervisor",)
    for name in tools:
        assert not matrix.cell("support_agent", name).errors, name


def test_app_keeps_its_world_under_the_proctor_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCTOR_HOME", str(tmp_path / "home"))
    first = app()
    assert first.policy == BUNDLE
    assert [t.name for t in first.tools] == list(TOOL_NAMES)
    world = World(tmp_path / "home" / "support-world.db")
    world.create_ticket("k", "c-101", "Late", "Parcel is late")
    app()  # opening again keeps the world
    assert len(world.tickets()) == 1
