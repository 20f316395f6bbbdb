"""What a decision is made on: the run's established facts, the clock, a resource hook
that sees the run; and all of it recorded with the decision."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from proctor import CallStatus, Effect, ResourceRef, Trust, tool
from proctor.testing import ManualClock, TestEnvironment
from proctor.tools import RunView


@tool(
    effect=Effect.READ,
    trust=Trust.TRUSTED,
    facts=lambda result: {"verified_customer": result["customer_id"]} if result["ok"] else {},
)
def verify_identity(customer_id: str, code: str) -> dict[str, Any]:
    """Check the one-time code the customer read out."""
    return {"customer_id": customer_id, "ok": code == "424242"}


def _account(args: Any, run: RunView) -> ResourceRef:
    verified = run.facts.get("verified_customer") == args.customer_id
    return ResourceRef("Account", args.customer_id, {"verified": verified, "tenant": run.tenant})


@tool(effect=Effect.WRITE, trust=Trust.TRUSTED, resource=_account, targets=["customer_id"])
def change_address(customer_id: str, address: str) -> dict[str, Any]:
    """Change a customer's postal address."""
    return {"customer_id": customer_id}


POLICY = """
@id("reads")
permit(principal, action in Action::"read", resource);

@id("change-verified-in-hours")
permit(principal, action == Action::"change_address", resource)
when {
  resource.verified && context.run.facts has verified_customer &&
  context.now.hour >= 8 && context.now.hour < 20
};
"""


async def test_facts_a_tool_established_and_the_clock_decide_later_calls() -> None:
    clock = ManualClock(datetime(2026, 12, 4, 10, 0, tzinfo=UTC))
    async with TestEnvironment(POLICY, tools=[verify_identity, change_address], clock=clock) as env:
        run = await env.start_run()
        change = {"customer_id": "c-2077", "address": "1 Main St"}
        assert (await run.call("change_address", change)).status is CallStatus.DENIED
        await run.call("verify_identity", {"customer_id": "c-2077", "code": "424242"})
        allowed = await run.call("change_address", change)
        assert allowed.status is CallStatus.EXECUTED
        clock.advance(11 * 3600)  # 21:00: out of hours
        late = await run.call("change_address", change)
        assert late.status is CallStatus.DENIED

        inputs = run.steps[2].decision.inputs
        assert inputs is not None
        assert inputs["resource"] == {
            "type": "Account",
            "id": "c-2077",
            "attrs": {"verified": True, "tenant": env.spec().tenant},
        }
        assert inputs["run"]["facts"] == {"verified_customer": "c-2077"}
        assert inputs["context"]["now"]["hour"] == 10
        # The customer id is an identifier of the verification's record.
        assert inputs["context"]["provenance"] == {"customer_id": "known", "address": "unknown"}
        assert inputs["tools"] == env.runtime.tools.version


def test_the_tools_version_changes_with_a_declaration_or_a_hook() -> None:
    from proctor.tools import ToolRegistry

    base = ToolRegistry([verify_identity, change_address]).version
    assert ToolRegistry([verify_identity, change_address]).version == base

    @tool(effect=Effect.WRITE, trust=Trust.TRUSTED, resource=_account, name="change_address")
    def no_targets(customer_id: str, address: str) -> dict[str, Any]:
        """Change a customer's postal address."""
        return {"customer_id": customer_id}

    def _other_hook(args: Any) -> ResourceRef:
        return ResourceRef("Account", args.customer_id)

    @tool(
        effect=Effect.WRITE,
        trust=Trust.TRUSTED,
        resource=_other_hook,
        targets=["customer_id"],
        name="change_address",
    )
    def other_hook(customer_id: str, address: str) -> dict[str, Any]:
        """Change a customer's postal address."""
        return {"customer_id": customer_id}

    assert ToolRegistry([verify_identity, no_targets]).version != base
    assert ToolRegistry([verify_identity, other_hook]).version != base
